using System.Numerics;
using System.Runtime.InteropServices;

namespace ExpertScope.Models.Blocks;

/// <summary>
/// The float32 dot product as ggml's portable CPU kernel computes it: each product rounded to float, the sum
/// accumulated in double, the result rounded to float once. Double accumulation makes the result independent of
/// summation order (to within far less than a float ulp), so the vectorised loop matches the scalar one.
/// </summary>
internal static class DotProduct
{
    /// <summary><c>sum_i (float)(a[i] * b[i])</c> accumulated in double, returned as float.</summary>
    public static float Compute(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        int length = a.Length;
        int i = 0;
        double sum = 0;
        if (Vector.IsHardwareAccelerated && length >= Vector<float>.Count)
        {
            var va = MemoryMarshal.Cast<float, Vector<float>>(a);
            var vb = MemoryMarshal.Cast<float, Vector<float>>(b[..length]);
            var low = Vector<double>.Zero;
            var high = Vector<double>.Zero;
            var low2 = Vector<double>.Zero;
            var high2 = Vector<double>.Zero;
            int v = 0;

            // Two independent accumulator pairs hide the latency of the additions.
            for (; v + 1 < va.Length; v += 2)
            {
                Vector.Widen(va[v] * vb[v], out var productLow, out var productHigh);
                Vector.Widen(va[v + 1] * vb[v + 1], out var productLow2, out var productHigh2);
                low += productLow;
                high += productHigh;
                low2 += productLow2;
                high2 += productHigh2;
            }

            for (; v < va.Length; v++)
            {
                Vector.Widen(va[v] * vb[v], out var productLow, out var productHigh);
                low += productLow;
                high += productHigh;
            }

            sum = Vector.Sum((low + high) + (low2 + high2));
            i = va.Length * Vector<float>.Count;
        }

        for (; i < length; i++)
        {
            sum += a[i] * b[i];
        }

        return (float)sum;
    }
}
