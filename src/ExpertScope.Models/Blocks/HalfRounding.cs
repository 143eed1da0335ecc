using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ExpertScope.Models.Blocks;

/// <summary>
/// Rounds float32 values to the nearest float16 value (ties to even) and back, as an f16 cache or ggml's f16
/// accumulator does: <c>(float)(Half)x</c> for every x, eight lanes at a time with integer and float operations
/// (.NET 10 converts to and from <see cref="Half"/> one value at a time).
/// </summary>
internal static class HalfRounding
{
    /// <summary>2^-14, the smallest normal float16.</summary>
    private const float SmallestNormal = 6.1035156e-05f;

    /// <summary>The largest finite float16; from here on (and for NaN) the scalar conversion runs.</summary>
    private const float LargestFinite = 65504.0f;

    /// <summary>Rounds every value in place to its nearest float16.</summary>
    public static void Round(Span<float> values)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref float start = ref MemoryMarshal.GetReference(values);
            for (; i + 8 <= values.Length; i += 8)
            {
                var x = Vector256.LoadUnsafe(ref start, (nuint)i);
                var magnitude = Vector256.Abs(x);
                if (!Vector256.LessThanAll(magnitude, Vector256.Create(LargestFinite)))
                {
                    // Overflow to infinity, infinities and NaN payloads: the scalar conversion decides.
                    RoundScalar(values.Slice(i, 8));
                    continue;
                }

                Round(x).StoreUnsafe(ref start, (nuint)i);
            }
        }

        RoundScalar(values[i..]);
    }

    /// <summary>
    /// Eight finite values below 65504 in magnitude. Normal range: the 13 mantissa bits float16 lacks are rounded off
    /// to nearest, ties to even (add 0xFFF plus the lowest kept bit, clear them; a carry moves into the exponent).
    /// Subnormal range (below 2^-14): float16's spacing there is 2^-24, the float spacing of [0.5, 1), so
    /// <c>(|x| + 0.5) - 0.5</c> rounds |x| to it with the float addition's own ties-to-even. The sign is put back last.
    /// </summary>
    internal static Vector256<float> Round(Vector256<float> x)
    {
        var magnitude = Vector256.Abs(x);
        var sign = x.AsUInt32() & Vector256.Create(0x80000000u);
        var bits = magnitude.AsUInt32();
        var normal = (bits + Vector256.Create(0xFFFu) + ((bits >> 13) & Vector256.Create(1u))) & Vector256.Create(0xFFFFE000u);
        var subnormal = ((magnitude + Vector256.Create(0.5f)) - Vector256.Create(0.5f)).AsUInt32();
        var isSubnormal = Vector256.LessThan(magnitude, Vector256.Create(SmallestNormal)).AsUInt32();
        return (Vector256.ConditionalSelect(isSubnormal, subnormal, normal) | sign).AsSingle();
    }

    /// <summary>The reference: <c>(float)(Half)x</c> one value at a time.</summary>
    internal static void RoundScalar(Span<float> values)
    {
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (float)(Half)values[i];
        }
    }
}
