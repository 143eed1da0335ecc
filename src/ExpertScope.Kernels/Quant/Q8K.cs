using System.Runtime.InteropServices;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// ggml <c>block_q8_K</c>: the activation type of the K-quant dot products; 256 values, x = d * q.
/// Layout (292 bytes): f32 d | int8 qs[256] | int16 bsums[16] (sum of each group of 16 quants).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockQ8K
{
    /// <summary>Elements per block.</summary>
    public const int Size = 256;

    /// <summary>Scale (float32, unlike the other blocks).</summary>
    public float D;

    /// <summary>Signed 8-bit quants.</summary>
    public fixed sbyte Qs[Size];

    /// <summary>Sums of the quants in groups of 16.</summary>
    public fixed short BlockSums[Size / 16];
}

/// <summary>Q8_K kernels.</summary>
internal static unsafe class Q8K
{
    /// <summary>ggml's <c>dequantize_row_q8_K</c>: y = d * q.</summary>
    public static void DequantizeReference(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ8K>(source);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            var y = destination.Slice(i * BlockQ8K.Size, BlockQ8K.Size);
            for (int j = 0; j < BlockQ8K.Size; j++)
            {
                y[j] = block.D * block.Qs[j];
            }
        }
    }

    /// <summary>
    /// ggml's <c>quantize_row_q8_K_ref</c>: scale -127 / max where max is the value of largest magnitude
    /// (so that value maps to -127), q = min(127, nearest_int(x * scale)), plus the group sums. An all-zero block
    /// gets d = 0 and zero quants and sums (ggml leaves its sums unwritten there).
    /// </summary>
    public static void QuantizeReference(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ8K>(destination);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = source.Slice(i * BlockQ8K.Size, BlockQ8K.Size);
            ref var block = ref blocks[i];
            float max = 0;
            float amax = 0;
            for (int j = 0; j < x.Length; j++)
            {
                float ax = MathF.Abs(x[j]);
                if (ax > amax)
                {
                    amax = ax;
                    max = x[j];
                }
            }

            if (amax == 0f)
            {
                destination.Slice(i * sizeof(BlockQ8K), sizeof(BlockQ8K)).Clear();
                continue;
            }

            float inverseScale = -127f / max;
            for (int j = 0; j < x.Length; j++)
            {
                block.Qs[j] = (sbyte)Math.Min(127, KQuantScales.NearestInt(inverseScale * x[j]));
            }

            for (int j = 0; j < BlockQ8K.Size / 16; j++)
            {
                int sum = 0;
                for (int ii = 0; ii < 16; ii++)
                {
                    sum += block.Qs[16 * j + ii];
                }

                block.BlockSums[j] = (short)sum;
            }

            block.D = 1 / inverseScale;
        }
    }
}
