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
}
