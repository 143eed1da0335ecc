using System.Runtime.InteropServices;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// ggml <c>block_mxfp4</c>: 32 E2M1 weights sharing one E8M0 exponent (OCP microscaling).
/// Layout (17 bytes): uint8 e (E8M0) | uint8 qs[16] (low nibble = weight j, high nibble = weight j + 16).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockMxfp4
{
    /// <summary>Elements per block.</summary>
    public const int Size = 32;

    /// <summary>Shared exponent, E8M0.</summary>
    public byte E;

    /// <summary>4-bit E2M1 codes.</summary>
    public fixed byte Qs[Size / 2];
}

/// <summary>
/// ggml <c>block_nvfp4</c> (type 40): 64 E2M1 weights in four groups of 16, each with a UE4M3 scale.
/// Layout (36 bytes): uint8 d[4] (UE4M3) | uint8 qs[32] (group s uses bytes 8s..8s+7: low nibble = weight j,
/// high nibble = weight j + 8 of the group).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockNvfp4
{
    /// <summary>Elements per block.</summary>
    public const int Size = 64;

    /// <summary>Elements per scale group.</summary>
    public const int GroupSize = 16;

    /// <summary>One UE4M3 scale per group of 16.</summary>
    public fixed byte D[Size / GroupSize];

    /// <summary>4-bit E2M1 codes.</summary>
    public fixed byte Qs[Size / 2];
}

/// <summary>The FP4 formats MXFP4 and NVFP4 (reference kernels).</summary>
internal static unsafe class Fp4Quants
{
    /// <summary>ggml's <c>dequantize_row_mxfp4</c>: y = kvalues[q] * 2^(e-128) (levels doubled, scale halved).</summary>
    public static void DequantizeMxfp4(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockMxfp4>(source);
        var levels = GgmlTables.KValuesFp4;
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.E8M0ToSingleHalf(block.E);
            var y = destination.Slice(i * BlockMxfp4.Size, BlockMxfp4.Size);
            for (int j = 0; j < BlockMxfp4.Size / 2; j++)
            {
                y[j] = levels[block.Qs[j] & 0x0F] * d;
                y[j + BlockMxfp4.Size / 2] = levels[block.Qs[j] >> 4] * d;
            }
        }
    }

    /// <summary>ggml's <c>dequantize_row_nvfp4</c>: y = kvalues[q] * (UE4M3 scale / 2) per group of 16.</summary>
    public static void DequantizeNvfp4(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockNvfp4>(source);
        var levels = GgmlTables.KValuesFp4;
        const int half = BlockNvfp4.GroupSize / 2;
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            for (int s = 0; s < BlockNvfp4.Size / BlockNvfp4.GroupSize; s++)
            {
                float d = ScalarFormats.UE4M3ToSingleHalf(block.D[s]);
                var y = destination.Slice(i * BlockNvfp4.Size + s * BlockNvfp4.GroupSize, BlockNvfp4.GroupSize);
                for (int j = 0; j < half; j++)
                {
                    byte packed = block.Qs[s * half + j];
                    y[j] = levels[packed & 0x0F] * d;
                    y[j + half] = levels[packed >> 4] * d;
                }
            }
        }
    }

    /// <summary>
    /// ggml's <c>quantize_row_mxfp4_ref</c>: e = floor(log2(amax)) - 2 + 127 (so the largest level, 6, covers amax),
    /// each value the nearest level (first of equals).
    /// </summary>
    public static void QuantizeMxfp4(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockMxfp4>(destination);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = source.Slice(i * BlockMxfp4.Size, BlockMxfp4.Size);
            float amax = 0f;
            for (int j = 0; j < x.Length; j++)
            {
                if (amax < MathF.Abs(x[j]))
                {
                    amax = MathF.Abs(x[j]);
                }
            }

            // log2f as the C library computes it (MathF.Log2 calls the platform's log2f).
            byte e = amax > 0f ? (byte)(MathF.Floor(MathF.Log2(amax)) - 2 + 127) : (byte)0;
            float d = ScalarFormats.E8M0ToSingleHalf(e);
            ref var block = ref blocks[i];
            block.E = e;
            for (int j = 0; j < BlockMxfp4.Size / 2; j++)
            {
                block.Qs[j] = (byte)(NearestLevel(x[j], d) | (NearestLevel(x[j + BlockMxfp4.Size / 2], d) << 4));
            }
        }
    }

    /// <summary>ggml's <c>quantize_row_nvfp4_ref</c>: per group of 16, UE4M3 scale of amax / 6, then nearest levels.</summary>
    public static void QuantizeNvfp4(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockNvfp4>(destination);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref var block = ref blocks[i];
            for (int s = 0; s < 4; s++)
            {
                var x = source.Slice(i * BlockNvfp4.Size + s * BlockNvfp4.GroupSize, BlockNvfp4.GroupSize);
                float amax = 0f;
                for (int j = 0; j < x.Length; j++)
                {
                    if (amax < MathF.Abs(x[j]))
                    {
                        amax = MathF.Abs(x[j]);
                    }
                }

                byte scale = SingleToUE4M3(amax / 6f);
                block.D[s] = scale;
                float d = ScalarFormats.UE4M3ToSingleHalf(scale);
                for (int j = 0; j < 8; j++)
                {
                    block.Qs[s * 8 + j] = (byte)(NearestLevel(x[j], d) | (NearestLevel(x[j + 8], d) << 4));
                }
            }
        }
    }

    /// <summary>ggml's <c>best_index_mxfp4</c>: the first level i minimizing |kvalues[i] * d - x|.</summary>
    private static int NearestLevel(float x, float d)
    {
        var levels = GgmlTables.KValuesFp4;
        int best = 0;
        float bestError = MathF.Abs(levels[0] * d - x);
        for (int i = 1; i < 16; i++)
        {
            float error = MathF.Abs(levels[i] * d - x);
            if (error < bestError)
            {
                best = i;
                bestError = error;
            }
        }

        return best;
    }

    /// <summary>ggml's <c>fp32_to_ue4m3</c>: truncating exponent, mantissa rounded half up, saturating at 0x7E (448).</summary>
    private static byte SingleToUE4M3(float x)
    {
        if (!(x > 0f))
        {
            return 0;
        }

        x = Math.Min(x, 448f);
        uint bits = BitConverter.SingleToUInt32Bits(x);
        int exponent = (int)((bits >> 23) & 0xFF) - 127 + 7;
        int mantissa = (int)((bits >> 20) & 0x7);
        if (exponent <= 0)
        {
            int subnormal = Math.Min(7, (int)(x * 512f + 0.5f));
            return subnormal < 1 ? (byte)0 : (byte)subnormal;
        }

        if (exponent >= 15)
        {
            return 0x7E;
        }

        mantissa += (int)((bits >> 19) & 1);
        if (mantissa > 7)
        {
            mantissa = 0;
            exponent++;
            if (exponent >= 15)
            {
                return 0x7E;
            }
        }

        return (byte)((exponent << 3) | mantissa);
    }
}
