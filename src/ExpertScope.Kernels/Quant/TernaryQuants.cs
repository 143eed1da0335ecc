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

    /// <summary>
    /// ggml's <c>quantize_row_tq1_0_ref</c>: d = max |x|, ternary digits t = round(x / d) + 1 packed five per byte
    /// as ceil(value * 256 / 243) (four per byte, shifted up one digit, in qh).
    /// </summary>
    public static void QuantizeTQ1_0(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockTQ1_0>(destination);
        const int qsLength = (BlockTQ1_0.Size - 4 * BlockTQ1_0.Size / 64) / 5;
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = source.Slice(i * BlockTQ1_0.Size, BlockTQ1_0.Size);
            float d = MaxAbs(x);
            float id = d != 0f ? 1f / d : 0f;
            ref var block = ref blocks[i];
            block.D = ScalarFormats.SingleToHalf(d);
            int offset = 0;
            for (int j = 0; j < qsLength - qsLength % 32; j += 32)
            {
                for (int m = 0; m < 32; m++)
                {
                    block.Qs[j + m] = Pack(x, offset + m, 32, 5, id, 1);
                }

                offset += 5 * 32;
            }

            for (int j = qsLength - qsLength % 32; j < qsLength; j += 16)
            {
                for (int m = 0; m < 16; m++)
                {
                    block.Qs[j + m] = Pack(x, offset + m, 16, 5, id, 1);
                }

                offset += 5 * 16;
            }

            for (int j = 0; j < BlockTQ1_0.Size / 64; j++)
            {
                block.Qh[j] = Pack(x, offset + j, BlockTQ1_0.Size / 64, 4, id, 3);
            }
        }

        static byte Pack(ReadOnlySpan<float> x, int start, int stride, int digits, float id, int finalFactor)
        {
            byte q = 0;
            for (int n = 0; n < digits; n++)
            {
                int digit = (int)MathF.Round(x[start + n * stride] * id, MidpointRounding.AwayFromZero) + 1;
                q = (byte)(q * 3 + digit);
            }

            q = (byte)(q * finalFactor);
            return (byte)((q * 256 + (243 - 1)) / 243);
        }
    }

    /// <summary>ggml's <c>quantize_row_tq2_0_ref</c>: d = max |x|, q = round(x / d) + 1 in 2 bits.</summary>
    public static void QuantizeTQ2_0(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockTQ2_0>(destination);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = source.Slice(i * BlockTQ2_0.Size, BlockTQ2_0.Size);
            float d = MaxAbs(x);
            float id = d != 0f ? 1f / d : 0f;
            ref var block = ref blocks[i];
            block.D = ScalarFormats.SingleToHalf(d);
            for (int j = 0; j < BlockTQ2_0.Size / 4; j += 32)
            {
                for (int m = 0; m < 32; m++)
                {
                    int q = 0;
                    for (int n = 0; n < 4; n++)
                    {
                        int digit = (int)MathF.Round(x[4 * j + m + n * 32] * id, MidpointRounding.AwayFromZero) + 1;
                        q += (digit & 3) << (2 * n);
                    }

                    block.Qs[j + m] = (byte)q;
                }
            }
        }
    }

    private static float MaxAbs(ReadOnlySpan<float> x)
    {
        float amax = 0f;
        foreach (float v in x)
        {
            amax = MathF.Max(amax, MathF.Abs(v));
        }

        return amax;
    }
}
