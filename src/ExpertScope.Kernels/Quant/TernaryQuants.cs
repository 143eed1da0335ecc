using System.Runtime.InteropServices;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// ggml <c>block_tq1_0</c>: 256 ternary weights (BitNet b1.58 / TriLM), x = (t - 1) * d, t in 0..2.
/// Layout (54 bytes): uint8 qs[48] (five base-3 digits per byte, stored as a fixed-point fraction) |
/// uint8 qh[4] (four digits per byte) | f16 d.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockTQ1_0
{
    /// <summary>Elements per block.</summary>
    public const int Size = 256;

    /// <summary>Five ternary digits per byte.</summary>
    public fixed byte Qs[(Size - 4 * Size / 64) / 5];

    /// <summary>Four ternary digits per byte.</summary>
    public fixed byte Qh[Size / 64];

    /// <summary>Scale, float16 bits.</summary>
    public ushort D;
}

/// <summary>
/// ggml <c>block_tq2_0</c>: 256 ternary weights with 2 bits each, x = (q - 1) * d.
/// Layout (66 bytes): uint8 qs[64] (bits 2l..2l+1 of byte 32k + m hold weight 128k + 32l + m) | f16 d.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockTQ2_0
{
    /// <summary>Elements per block.</summary>
    public const int Size = 256;

    /// <summary>Four 2-bit values per byte.</summary>
    public fixed byte Qs[Size / 4];

    /// <summary>Scale, float16 bits.</summary>
    public ushort D;
}

/// <summary>The ternary formats TQ1_0 and TQ2_0 (reference kernels).</summary>
internal static unsafe class TernaryQuants
{
    /// <summary>ggml's <c>dequantize_row_tq1_0</c>: digit n of byte q is ((q * 3^n mod 256) * 3) >> 8.</summary>
    public static void DequantizeTQ1_0(ReadOnlySpan<byte> source, Span<float> destination)
    {
        ReadOnlySpan<byte> powersOfThree = [1, 3, 9, 27, 81, 243];
        var blocks = MemoryMarshal.Cast<byte, BlockTQ1_0>(source);
        const int qsLength = (BlockTQ1_0.Size - 4 * BlockTQ1_0.Size / 64) / 5;
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            var y = destination.Slice(i * BlockTQ1_0.Size, BlockTQ1_0.Size);
            int output = 0;

            // The first 32 bytes hold digits 0..4 for 32 weights each, the last 16 bytes the same for 16 weights.
            for (int j = 0; j < qsLength - qsLength % 32; j += 32)
            {
                for (int n = 0; n < 5; n++)
                {
                    for (int m = 0; m < 32; m++)
                    {
                        y[output++] = Digit(block.Qs[j + m], powersOfThree[n], d);
                    }
                }
            }

            for (int j = qsLength - qsLength % 32; j < qsLength; j += 16)
            {
                for (int n = 0; n < 5; n++)
                {
                    for (int m = 0; m < 16; m++)
                    {
                        y[output++] = Digit(block.Qs[j + m], powersOfThree[n], d);
                    }
                }
            }

            for (int n = 0; n < 4; n++)
            {
                for (int j = 0; j < BlockTQ1_0.Size / 64; j++)
                {
                    y[output++] = Digit(block.Qh[j], powersOfThree[n], d);
                }
            }
        }

        static float Digit(byte packed, byte power, float d)
        {
            byte q = (byte)(packed * power);
            int digit = (q * 3) >> 8;
            return (float)(digit - 1) * d;
        }
    }

    /// <summary>ggml's <c>dequantize_row_tq2_0</c>.</summary>
    public static void DequantizeTQ2_0(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockTQ2_0>(source);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            var y = destination.Slice(i * BlockTQ2_0.Size, BlockTQ2_0.Size);
            int output = 0;
            for (int j = 0; j < BlockTQ2_0.Size / 4; j += 32)
            {
                for (int l = 0; l < 4; l++)
                {
                    for (int m = 0; m < 32; m++)
                    {
                        int q = (block.Qs[j + m] >> (l * 2)) & 3;
                        y[output++] = (float)(q - 1) * d;
                    }
                }
            }
        }
    }
}
