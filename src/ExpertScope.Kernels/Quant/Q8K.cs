using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

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

    /// <summary>
    /// Vectorized <see cref="QuantizeReference"/>, the same bytes. The largest magnitude is exact in any order, and
    /// the value that sets the scale's sign is the first one of that magnitude, as in the reference's scan. Each element
    /// gets the same float multiply and ggml's <c>nearest_int</c> (add 1.5 * 2^23, keep the mantissa bits), so ties
    /// round to even exactly as there; the clamp to 127 and the narrowing to bytes truncate as the reference's casts do,
    /// and the group sums are taken from the stored bytes. Blocks holding NaN or an infinity take the reference path.
    /// </summary>
    public static void Quantize(ReadOnlySpan<float> source, Span<byte> destination)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            QuantizeReference(source, destination);
            return;
        }

        var blocks = MemoryMarshal.Cast<byte, BlockQ8K>(destination);
        var exponent = Vector256.Create(0x7F800000u);
        var roundingShift = Vector256.Create(12582912f);
        var mantissa = Vector256.Create(0x007FFFFF);
        var bias = Vector256.Create(0x00400000);
        var largestQuant = Vector256.Create(127);
        fixed (float* values = source)
        {
            for (int i = 0; i < blocks.Length; i++)
            {
                float* x = values + (long)i * BlockQ8K.Size;
                var largest = Vector256<float>.Zero;
                var special = Vector256<uint>.Zero;
                for (int k = 0; k < BlockQ8K.Size; k += Vector256<float>.Count)
                {
                    var v = Vector256.Load(x + k);
                    largest = Vector256.Max(largest, Vector256.Abs(v));
                    special |= Vector256.Equals(v.AsUInt32() & exponent, exponent);
                }

                if (special != Vector256<uint>.Zero)
                {
                    QuantizeReference(new ReadOnlySpan<float>(x, BlockQ8K.Size), destination.Slice(i * sizeof(BlockQ8K), sizeof(BlockQ8K)));
                    continue;
                }

                var four = Vector128.Max(largest.GetLower(), largest.GetUpper());
                float amax = MathF.Max(MathF.Max(four.GetElement(0), four.GetElement(1)), MathF.Max(four.GetElement(2), four.GetElement(3)));
                if (amax == 0f)
                {
                    destination.Slice(i * sizeof(BlockQ8K), sizeof(BlockQ8K)).Clear();
                    continue;
                }

                float max = FirstOfMagnitude(x, amax);
                float inverseScale = -127f / max;
                var scale = Vector256.Create(inverseScale);
                ref var block = ref blocks[i];
                fixed (sbyte* qs = block.Qs)
                fixed (short* sums = block.BlockSums)
                {
                    for (int k = 0; k < BlockQ8K.Size; k += 32)
                    {
                        var q0 = NearestIntClamped(Vector256.Load(x + k) * scale, roundingShift, mantissa, bias, largestQuant);
                        var q1 = NearestIntClamped(Vector256.Load(x + k + 8) * scale, roundingShift, mantissa, bias, largestQuant);
                        var q2 = NearestIntClamped(Vector256.Load(x + k + 16) * scale, roundingShift, mantissa, bias, largestQuant);
                        var q3 = NearestIntClamped(Vector256.Load(x + k + 24) * scale, roundingShift, mantissa, bias, largestQuant);
                        var quants = Vector256.Narrow(Vector256.Narrow(q0, q1), Vector256.Narrow(q2, q3));
                        quants.Store(qs + k);
                        var (low, high) = Vector256.Widen(quants);
                        sums[k / 16] = Vector256.Sum(low);
                        sums[k / 16 + 1] = Vector256.Sum(high);
                    }
                }

                block.D = 1 / inverseScale;
            }
        }
    }

    /// <summary>The first of the 256 values whose magnitude is <paramref name="amax"/> (the reference keeps the first on ties).</summary>
    private static float FirstOfMagnitude(float* x, float amax)
    {
        var target = Vector256.Create(amax);
        for (int k = 0; ; k += Vector256<float>.Count)
        {
            uint hits = Vector256.Equals(Vector256.Abs(Vector256.Load(x + k)), target).ExtractMostSignificantBits();
            if (hits != 0)
            {
                return x[k + BitOperations.TrailingZeroCount(hits)];
            }
        }
    }

    /// <summary>min(127, ggml's <c>nearest_int(v)</c>) lane by lane.</summary>
    private static Vector256<int> NearestIntClamped(Vector256<float> v, Vector256<float> roundingShift, Vector256<int> mantissa, Vector256<int> bias, Vector256<int> largestQuant) =>
        Vector256.Min(((v + roundingShift).AsInt32() & mantissa) - bias, largestQuant);
}
