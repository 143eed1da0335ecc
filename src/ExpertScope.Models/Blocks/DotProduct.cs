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

    /// <summary>
    /// <see cref="Compute"/> for two weight rows and two activation rows at once (four results): each pair gets exactly
    /// <see cref="Compute"/>'s accumulators, additions and final sum, so the bits are the same; the shared loads are
    /// what makes it faster.
    /// </summary>
    public static void Compute2x2(
        ReadOnlySpan<float> a0, ReadOnlySpan<float> a1, ReadOnlySpan<float> b0, ReadOnlySpan<float> b1,
        out float a0b0, out float a0b1, out float a1b0, out float a1b1)
    {
        int length = a0.Length;
        if (!Vector.IsHardwareAccelerated || length < Vector<float>.Count || a1.Length != length || b0.Length < length || b1.Length < length)
        {
            a0b0 = Compute(a0, b0);
            a0b1 = Compute(a0, b1);
            a1b0 = Compute(a1, b0);
            a1b1 = Compute(a1, b1);
            return;
        }

        var va0 = MemoryMarshal.Cast<float, Vector<float>>(a0);
        var va1 = MemoryMarshal.Cast<float, Vector<float>>(a1);
        var vb0 = MemoryMarshal.Cast<float, Vector<float>>(b0[..length]);
        var vb1 = MemoryMarshal.Cast<float, Vector<float>>(b1[..length]);
        Accumulators s00 = default, s01 = default, s10 = default, s11 = default;
        int v = 0;
        for (; v + 1 < va0.Length; v += 2)
        {
            var x0 = va0[v];
            var x1 = va1[v];
            var y0 = vb0[v];
            var y1 = vb1[v];
            s00.AddEven(x0 * y0);
            s01.AddEven(x0 * y1);
            s10.AddEven(x1 * y0);
            s11.AddEven(x1 * y1);
            x0 = va0[v + 1];
            x1 = va1[v + 1];
            y0 = vb0[v + 1];
            y1 = vb1[v + 1];
            s00.AddOdd(x0 * y0);
            s01.AddOdd(x0 * y1);
            s10.AddOdd(x1 * y0);
            s11.AddOdd(x1 * y1);
        }

        for (; v < va0.Length; v++)
        {
            s00.AddEven(va0[v] * vb0[v]);
            s01.AddEven(va0[v] * vb1[v]);
            s10.AddEven(va1[v] * vb0[v]);
            s11.AddEven(va1[v] * vb1[v]);
        }

        int tail = va0.Length * Vector<float>.Count;
        a0b0 = Finish(s00.Sum(), a0, b0, tail);
        a0b1 = Finish(s01.Sum(), a0, b1, tail);
        a1b0 = Finish(s10.Sum(), a1, b0, tail);
        a1b1 = Finish(s11.Sum(), a1, b1, tail);
    }

    private static float Finish(double sum, ReadOnlySpan<float> a, ReadOnlySpan<float> b, int from)
    {
        for (int i = from; i < a.Length; i++)
        {
            sum += a[i] * b[i];
        }

        return (float)sum;
    }

    /// <summary><see cref="Compute"/>'s four double accumulators for one pair: even vectors go to the first two, odd ones to the others.</summary>
    private struct Accumulators
    {
        private Vector<double> _low;
        private Vector<double> _high;
        private Vector<double> _low2;
        private Vector<double> _high2;

        public void AddEven(Vector<float> product)
        {
            Vector.Widen(product, out var low, out var high);
            _low += low;
            _high += high;
        }

        public void AddOdd(Vector<float> product)
        {
            Vector.Widen(product, out var low, out var high);
            _low2 += low;
            _high2 += high;
        }

        public readonly double Sum() => Vector.Sum((_low + _high) + (_low2 + _high2));
    }
}
