using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ExpertScope.Models.Blocks;

/// <summary>
/// The float32 dot product as ggml's portable CPU kernel computes it: each product rounded to float, the sum
/// accumulated in double, the result rounded to float once. Double accumulation makes the result independent of
/// summation order (to within far less than a float ulp), so the vectorised loop matches the scalar one.
/// </summary>
internal static class DotProduct
{
    /// <summary>
    /// True where the 512-bit kernels reproduce <see cref="ComputeVector"/>'s lanes: one 512-bit float vector is two
    /// consecutive <see cref="Vector{T}"/> (an even and an odd one), and widening its halves gives the even vector's
    /// (low, high) and the odd one's (low2, high2) accumulators side by side.
    /// </summary>
    internal static bool Uses512 { get; set; } = Vector512.IsHardwareAccelerated && Vector<float>.Count == 8;

    /// <summary><c>sum_i (float)(a[i] * b[i])</c> accumulated in double, returned as float.</summary>
    public static float Compute(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (!Uses512 || a.Length < Vector<float>.Count || b.Length < a.Length)
        {
            return ComputeVector(a, b);
        }

        int length = a.Length;
        ref float pa = ref MemoryMarshal.GetReference(a);
        ref float pb = ref MemoryMarshal.GetReference(b);
        var even = Vector512<double>.Zero;
        var odd = Vector512<double>.Zero;
        int i = 0;
        for (; i + 16 <= length; i += 16)
        {
            var product = Vector512.LoadUnsafe(ref pa, (nuint)i) * Vector512.LoadUnsafe(ref pb, (nuint)i);
            even += Avx512F.ConvertToVector512Double(product.GetLower());
            odd += Avx512F.ConvertToVector512Double(product.GetUpper());
        }

        if (i + 8 <= length)
        {
            even += Avx512F.ConvertToVector512Double(Vector256.LoadUnsafe(ref pa, (nuint)i) * Vector256.LoadUnsafe(ref pb, (nuint)i));
            i += 8;
        }

        return Finish(Fold(even, odd), a, b, i);
    }

    /// <summary><see cref="ComputeVector"/>'s final sum from the 512-bit accumulators.</summary>
    private static double Fold(Vector512<double> even, Vector512<double> odd) =>
        Vector.Sum(((even.GetLower() + even.GetUpper()) + (odd.GetLower() + odd.GetUpper())).AsVector());

    /// <summary>The <see cref="Vector{T}"/> kernel: the reference for the 512-bit paths (same bits).</summary>
    internal static float ComputeVector(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
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

        if (Uses512)
        {
            Compute2x2Wide(a0, a1, b0, b1, out a0b0, out a0b1, out a1b0, out a1b1);
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

    private static void Compute2x2Wide(
        ReadOnlySpan<float> a0, ReadOnlySpan<float> a1, ReadOnlySpan<float> b0, ReadOnlySpan<float> b1,
        out float a0b0, out float a0b1, out float a1b0, out float a1b1)
    {
        int length = a0.Length;
        ref float x0 = ref MemoryMarshal.GetReference(a0);
        ref float x1 = ref MemoryMarshal.GetReference(a1);
        ref float y0 = ref MemoryMarshal.GetReference(b0);
        ref float y1 = ref MemoryMarshal.GetReference(b1);
        Vector512<double> e00 = default, o00 = default, e01 = default, o01 = default;
        Vector512<double> e10 = default, o10 = default, e11 = default, o11 = default;
        int i = 0;
        for (; i + 16 <= length; i += 16)
        {
            var w0 = Vector512.LoadUnsafe(ref x0, (nuint)i);
            var w1 = Vector512.LoadUnsafe(ref x1, (nuint)i);
            var v0 = Vector512.LoadUnsafe(ref y0, (nuint)i);
            var v1 = Vector512.LoadUnsafe(ref y1, (nuint)i);
            var p = w0 * v0;
            e00 += Avx512F.ConvertToVector512Double(p.GetLower());
            o00 += Avx512F.ConvertToVector512Double(p.GetUpper());
            p = w0 * v1;
            e01 += Avx512F.ConvertToVector512Double(p.GetLower());
            o01 += Avx512F.ConvertToVector512Double(p.GetUpper());
            p = w1 * v0;
            e10 += Avx512F.ConvertToVector512Double(p.GetLower());
            o10 += Avx512F.ConvertToVector512Double(p.GetUpper());
            p = w1 * v1;
            e11 += Avx512F.ConvertToVector512Double(p.GetLower());
            o11 += Avx512F.ConvertToVector512Double(p.GetUpper());
        }

        if (i + 8 <= length)
        {
            var w0 = Vector256.LoadUnsafe(ref x0, (nuint)i);
            var w1 = Vector256.LoadUnsafe(ref x1, (nuint)i);
            var v0 = Vector256.LoadUnsafe(ref y0, (nuint)i);
            var v1 = Vector256.LoadUnsafe(ref y1, (nuint)i);
            e00 += Avx512F.ConvertToVector512Double(w0 * v0);
            e01 += Avx512F.ConvertToVector512Double(w0 * v1);
            e10 += Avx512F.ConvertToVector512Double(w1 * v0);
            e11 += Avx512F.ConvertToVector512Double(w1 * v1);
            i += 8;
        }

        a0b0 = Finish(Fold(e00, o00), a0, b0, i);
        a0b1 = Finish(Fold(e01, o01), a0, b1, i);
        a1b0 = Finish(Fold(e10, o10), a1, b0, i);
        a1b1 = Finish(Fold(e11, o11), a1, b1, i);
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
