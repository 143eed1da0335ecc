using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// ggml <c>block_q4_0</c>: 32 weights, x = d * (q - 8).
/// Layout (18 bytes): f16 d | uint8 qs[16] (low nibble of byte j = weight j, high nibble = weight j + 16).
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal unsafe struct BlockQ4_0
{
    /// <summary>Elements per block.</summary>
    public const int Size = 32;

    /// <summary>Scale, float16 bits.</summary>
    public ushort D;

    /// <summary>Packed 4-bit quants.</summary>
    public fixed byte Qs[Size / 2];
}

/// <summary>Q4_0 kernels.</summary>
internal static unsafe class Q4_0
{
    /// <summary>ggml's <c>dequantize_row_q4_0</c>.</summary>
    public static void DequantizeReference(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ4_0>(source);
        for (int i = 0; i < blocks.Length; i++)
        {
            ref readonly var block = ref blocks[i];
            float d = ScalarFormats.HalfToSingle(block.D);
            var y = destination.Slice(i * BlockQ4_0.Size, BlockQ4_0.Size);
            for (int j = 0; j < BlockQ4_0.Size / 2; j++)
            {
                int x0 = (block.Qs[j] & 0x0F) - 8;
                int x1 = (block.Qs[j] >> 4) - 8;
                y[j] = x0 * d;
                y[j + BlockQ4_0.Size / 2] = x1 * d;
            }
        }
    }

    /// <summary>Vectorized dequantization: same integer values and one multiply each, so bit-identical to the reference.</summary>
    public static void Dequantize(ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (!Vector128.IsHardwareAccelerated || !Vector256.IsHardwareAccelerated)
        {
            DequantizeReference(source, destination);
            return;
        }

        var blocks = MemoryMarshal.Cast<byte, BlockQ4_0>(source);
        var eight = Vector128.Create((short)8);
        for (int i = 0; i < blocks.Length; i++)
        {
            var d = Vector256.Create(ScalarFormats.HalfToSingle(blocks[i].D));
            var y = destination.Slice(i * BlockQ4_0.Size, BlockQ4_0.Size);
            var packed = Vector128.Create(source.Slice(i * sizeof(BlockQ4_0) + sizeof(ushort), 16));
            var low = packed & Vector128.Create((byte)0x0F);
            var high = Vector128.ShiftRightLogical(packed, 4);
            var (l0, l1) = Vector128.Widen(low);
            var (h0, h1) = Vector128.Widen(high);
            Store(Vector128.AsInt16(l0) - eight, d, y);
            Store(Vector128.AsInt16(l1) - eight, d, y.Slice(8));
            Store(Vector128.AsInt16(h0) - eight, d, y.Slice(16));
            Store(Vector128.AsInt16(h1) - eight, d, y.Slice(24));
        }

        static void Store(Vector128<short> values, Vector256<float> scale, Span<float> y)
        {
            var widened = Vector256.Create(Vector128.WidenLower(values), Vector128.WidenUpper(values));
            (Vector256.ConvertToSingle(widened) * scale).CopyTo(y);
        }
    }

    /// <summary>
    /// ggml's <c>quantize_row_q4_0_ref</c>: d = max / -8 where max is the value of largest magnitude,
    /// q = min(15, (int8)(x / d + 8.5)).
    /// </summary>
    public static void QuantizeReference(ReadOnlySpan<float> source, Span<byte> destination)
    {
        var blocks = MemoryMarshal.Cast<byte, BlockQ4_0>(destination);
        for (int i = 0; i < blocks.Length; i++)
        {
            var x = source.Slice(i * BlockQ4_0.Size, BlockQ4_0.Size);
            float amax = 0f;
            float max = 0f;
            for (int j = 0; j < x.Length; j++)
            {
                if (amax < MathF.Abs(x[j]))
                {
                    amax = MathF.Abs(x[j]);
                    max = x[j];
                }
            }

            float d = max / -8f;
            float id = d != 0f ? 1f / d : 0f;
            ref var block = ref blocks[i];
            block.D = ScalarFormats.SingleToHalf(d);
            for (int j = 0; j < BlockQ4_0.Size / 2; j++)
            {
                float x0 = x[j] * id;
                float x1 = x[j + BlockQ4_0.Size / 2] * id;
                byte q0 = (byte)Math.Min(15, (int)(sbyte)(x0 + 8.5f));
                byte q1 = (byte)Math.Min(15, (int)(sbyte)(x1 + 8.5f));
                block.Qs[j] = (byte)(q0 | (q1 << 4));
            }
        }
    }
}
