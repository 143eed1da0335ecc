using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ExpertScope.Models.Blocks;

/// <summary>
/// The two products of ggml's tiled flash-attention step for a block of query rows against one tile of cached
/// positions, register-blocked so that many independent sums are in flight at once. Each single sum still runs in
/// ggml's order (one dimension or one position at a time), each term joining as an <see cref="IMultiplyAdd"/>
/// says (a multiply then an add as ggml's portable build, or one fused multiply-add as its SIMD build's
/// <c>simd_gemm</c>), so every result equals the one-query loop's of the same arithmetic bit for bit; only the
/// interleaving of independent sums changes.
/// </summary>
internal static class TiledAttentionKernels
{
    /// <summary>How one term joins a sum: <c>sum + a·b</c> rounded twice (ggml's portable build) or once (its FMA build).</summary>
    internal interface IMultiplyAdd
    {
        static abstract Vector<float> Apply(Vector<float> sum, Vector<float> a, Vector<float> b);

        static abstract float Apply(float sum, float a, float b);
    }

    /// <summary>A multiply, then an add: <see cref="FloatArithmetic.Reference"/>.</summary>
    internal readonly struct SeparateMultiplyAdd : IMultiplyAdd
    {
        public static Vector<float> Apply(Vector<float> sum, Vector<float> a, Vector<float> b) => sum + a * b;

        public static float Apply(float sum, float a, float b) => sum + a * b;
    }

    /// <summary>One fused multiply-add: <see cref="FloatArithmetic.Fused"/>, as ggml's <c>simd_gemm</c> in a SIMD build.</summary>
    internal readonly struct FusedMultiplyAdd : IMultiplyAdd
    {
        public static Vector<float> Apply(Vector<float> sum, Vector<float> a, Vector<float> b) => Vector.FusedMultiplyAdd(a, b, sum);

        public static float Apply(float sum, float a, float b) => MathF.FusedMultiplyAdd(a, b, sum);
    }

    /// <summary>Keys per register block of <see cref="QueryKeyDots"/>; values' query rows per block of <see cref="AccumulateValues"/>.</summary>
    private const int Rows = 4;

    /// <summary>Query rows a block holds: two float vectors, one query per lane.</summary>
    internal static int QueryLanes => 2 * Vector<float>.Count;

    /// <summary>
    /// <c>dots[i · lanes + lane] = Σ_d queries[d · lanes + lane] · keys[(first + i) · stride + d]</c> for
    /// <c>i &lt; positions</c>, each sum in dimension order. <paramref name="transposedQueries"/> holds the block's
    /// queries dimension-major (<see cref="QueryLanes"/> lanes per dimension; unused lanes zero).
    /// </summary>
    internal static void QueryKeyDots<TMultiplyAdd>(
        ReadOnlySpan<float> transposedQueries,
        ReadOnlySpan<float> keys,
        int first,
        int positions,
        int stride,
        int dim,
        Span<float> dots)
        where TMultiplyAdd : struct, IMultiplyAdd
    {
        int width = Vector<float>.Count;
        int lanes = 2 * width;
        if (transposedQueries.Length < dim * lanes || dots.Length < positions * lanes ||
            (positions > 0 && keys.Length < (first + positions - 1) * stride + dim))
        {
            throw new ArgumentException("The query, key or result span is shorter than the tile needs.");
        }

        ref float query = ref MemoryMarshal.GetReference(transposedQueries);
        ref float result = ref MemoryMarshal.GetReference(dots);
        int i = 0;
        for (; i + Rows <= positions; i += Rows)
        {
            ref float key0 = ref Unsafe.Add(ref MemoryMarshal.GetReference(keys), (first + i) * stride);
            ref float key1 = ref Unsafe.Add(ref key0, stride);
            ref float key2 = ref Unsafe.Add(ref key1, stride);
            ref float key3 = ref Unsafe.Add(ref key2, stride);
            Vector<float> a0 = default, b0 = default, a1 = default, b1 = default;
            Vector<float> a2 = default, b2 = default, a3 = default, b3 = default;
            for (int d = 0; d < dim; d++)
            {
                var low = Vector.LoadUnsafe(ref query, (nuint)(d * lanes));
                var high = Vector.LoadUnsafe(ref query, (nuint)(d * lanes + width));
                var k0 = new Vector<float>(Unsafe.Add(ref key0, d));
                var k1 = new Vector<float>(Unsafe.Add(ref key1, d));
                var k2 = new Vector<float>(Unsafe.Add(ref key2, d));
                var k3 = new Vector<float>(Unsafe.Add(ref key3, d));
                a0 = TMultiplyAdd.Apply(a0, low, k0);
                b0 = TMultiplyAdd.Apply(b0, high, k0);
                a1 = TMultiplyAdd.Apply(a1, low, k1);
                b1 = TMultiplyAdd.Apply(b1, high, k1);
                a2 = TMultiplyAdd.Apply(a2, low, k2);
                b2 = TMultiplyAdd.Apply(b2, high, k2);
                a3 = TMultiplyAdd.Apply(a3, low, k3);
                b3 = TMultiplyAdd.Apply(b3, high, k3);
            }

            a0.StoreUnsafe(ref result, (nuint)(i * lanes));
            b0.StoreUnsafe(ref result, (nuint)(i * lanes + width));
            a1.StoreUnsafe(ref result, (nuint)((i + 1) * lanes));
            b1.StoreUnsafe(ref result, (nuint)((i + 1) * lanes + width));
            a2.StoreUnsafe(ref result, (nuint)((i + 2) * lanes));
            b2.StoreUnsafe(ref result, (nuint)((i + 2) * lanes + width));
            a3.StoreUnsafe(ref result, (nuint)((i + 3) * lanes));
            b3.StoreUnsafe(ref result, (nuint)((i + 3) * lanes + width));
        }

        for (; i < positions; i++)
        {
            ref float key = ref Unsafe.Add(ref MemoryMarshal.GetReference(keys), (first + i) * stride);
            Vector<float> a = default, b = default;
            for (int d = 0; d < dim; d++)
            {
                var k = new Vector<float>(Unsafe.Add(ref key, d));
                a = TMultiplyAdd.Apply(a, Vector.LoadUnsafe(ref query, (nuint)(d * lanes)), k);
                b = TMultiplyAdd.Apply(b, Vector.LoadUnsafe(ref query, (nuint)(d * lanes + width)), k);
            }

            a.StoreUnsafe(ref result, (nuint)(i * lanes));
            b.StoreUnsafe(ref result, (nuint)(i * lanes + width));
        }
    }

    /// <summary>
    /// For every row r of <paramref name="rows"/>: <c>targets[rows[r]][j] += Σ_i weights[r · tile + i] ·
    /// values[(first + i) · stride + j]</c>, positions i in order, each term a multiply then an add.
    /// Target row t starts at <c>t · targetStride</c> in <paramref name="targets"/>.
    /// </summary>
    internal static void AccumulateValues<TMultiplyAdd>(
        ReadOnlySpan<float> weights,
        int tile,
        ReadOnlySpan<int> rows,
        ReadOnlySpan<float> values,
        int first,
        int positions,
        int stride,
        Span<float> targets,
        int targetStride,
        int dim)
        where TMultiplyAdd : struct, IMultiplyAdd
    {
        if (weights.Length < rows.Length * tile || positions > tile ||
            (positions > 0 && values.Length < (first + positions - 1) * stride + dim))
        {
            throw new ArgumentException("The weight or value span is shorter than the tile needs.");
        }

        foreach (int row in rows)
        {
            if (targets.Length < row * targetStride + dim)
            {
                throw new ArgumentException("A target row lies outside the target span.");
            }
        }

        int r = 0;
        for (; r + Rows <= rows.Length; r += Rows)
        {
            AccumulateFour<TMultiplyAdd>(weights.Slice(r * tile), tile, rows.Slice(r, Rows), values, first, positions, stride, targets, targetStride, dim);
        }

        for (; r < rows.Length; r++)
        {
            AccumulateOne<TMultiplyAdd>(weights.Slice(r * tile, tile), values, first, positions, stride, targets.Slice(rows[r] * targetStride, dim));
        }
    }

    private static void AccumulateFour<TMultiplyAdd>(
        ReadOnlySpan<float> weights,
        int tile,
        ReadOnlySpan<int> rows,
        ReadOnlySpan<float> values,
        int first,
        int positions,
        int stride,
        Span<float> targets,
        int targetStride,
        int dim)
        where TMultiplyAdd : struct, IMultiplyAdd
    {
        int width = Vector<float>.Count;
        ref float w0 = ref MemoryMarshal.GetReference(weights);
        ref float w1 = ref Unsafe.Add(ref w0, tile);
        ref float w2 = ref Unsafe.Add(ref w1, tile);
        ref float w3 = ref Unsafe.Add(ref w2, tile);
        ref float t0 = ref Unsafe.Add(ref MemoryMarshal.GetReference(targets), rows[0] * targetStride);
        ref float t1 = ref Unsafe.Add(ref MemoryMarshal.GetReference(targets), rows[1] * targetStride);
        ref float t2 = ref Unsafe.Add(ref MemoryMarshal.GetReference(targets), rows[2] * targetStride);
        ref float t3 = ref Unsafe.Add(ref MemoryMarshal.GetReference(targets), rows[3] * targetStride);
        ref float valueRows = ref Unsafe.Add(ref MemoryMarshal.GetReference(values), first * stride);
        int j = 0;
        for (; j + 2 * width <= dim; j += 2 * width)
        {
            var a0 = Vector.LoadUnsafe(ref t0, (nuint)j);
            var b0 = Vector.LoadUnsafe(ref t0, (nuint)(j + width));
            var a1 = Vector.LoadUnsafe(ref t1, (nuint)j);
            var b1 = Vector.LoadUnsafe(ref t1, (nuint)(j + width));
            var a2 = Vector.LoadUnsafe(ref t2, (nuint)j);
            var b2 = Vector.LoadUnsafe(ref t2, (nuint)(j + width));
            var a3 = Vector.LoadUnsafe(ref t3, (nuint)j);
            var b3 = Vector.LoadUnsafe(ref t3, (nuint)(j + width));
            for (int i = 0; i < positions; i++)
            {
                ref float value = ref Unsafe.Add(ref valueRows, i * stride + j);
                var low = Vector.LoadUnsafe(ref value);
                var high = Vector.LoadUnsafe(ref value, (nuint)width);
                var p0 = new Vector<float>(Unsafe.Add(ref w0, i));
                var p1 = new Vector<float>(Unsafe.Add(ref w1, i));
                var p2 = new Vector<float>(Unsafe.Add(ref w2, i));
                var p3 = new Vector<float>(Unsafe.Add(ref w3, i));
                a0 = TMultiplyAdd.Apply(a0, p0, low);
                b0 = TMultiplyAdd.Apply(b0, p0, high);
                a1 = TMultiplyAdd.Apply(a1, p1, low);
                b1 = TMultiplyAdd.Apply(b1, p1, high);
                a2 = TMultiplyAdd.Apply(a2, p2, low);
                b2 = TMultiplyAdd.Apply(b2, p2, high);
                a3 = TMultiplyAdd.Apply(a3, p3, low);
                b3 = TMultiplyAdd.Apply(b3, p3, high);
            }

            a0.StoreUnsafe(ref t0, (nuint)j);
            b0.StoreUnsafe(ref t0, (nuint)(j + width));
            a1.StoreUnsafe(ref t1, (nuint)j);
            b1.StoreUnsafe(ref t1, (nuint)(j + width));
            a2.StoreUnsafe(ref t2, (nuint)j);
            b2.StoreUnsafe(ref t2, (nuint)(j + width));
            a3.StoreUnsafe(ref t3, (nuint)j);
            b3.StoreUnsafe(ref t3, (nuint)(j + width));
        }

        if (j < dim)
        {
            // Head sizes that are not a multiple of two vectors: the rest one row at a time.
            for (int r = 0; r < Rows; r++)
            {
                var target = targets.Slice(rows[r] * targetStride + j, dim - j);
                AccumulateColumns<TMultiplyAdd>(weights.Slice(r * tile, tile), values, first, positions, stride, j, target);
            }
        }
    }

    private static void AccumulateOne<TMultiplyAdd>(ReadOnlySpan<float> weights, ReadOnlySpan<float> values, int first, int positions, int stride, Span<float> target)
        where TMultiplyAdd : struct, IMultiplyAdd =>
        AccumulateColumns<TMultiplyAdd>(weights, values, first, positions, stride, 0, target);

    /// <summary><c>target[c] += Σ_i weights[i] · values[(first + i) · stride + column + c]</c>, positions in order.</summary>
    private static void AccumulateColumns<TMultiplyAdd>(ReadOnlySpan<float> weights, ReadOnlySpan<float> values, int first, int positions, int stride, int column, Span<float> target)
        where TMultiplyAdd : struct, IMultiplyAdd
    {
        int width = Vector<float>.Count;
        int c = 0;
        for (; c + width <= target.Length; c += width)
        {
            var sum = new Vector<float>(target.Slice(c, width));
            for (int i = 0; i < positions; i++)
            {
                sum = TMultiplyAdd.Apply(sum, new Vector<float>(weights[i]), new Vector<float>(values.Slice((first + i) * stride + column + c, width)));
            }

            sum.CopyTo(target.Slice(c, width));
        }

        for (; c < target.Length; c++)
        {
            float sum = target[c];
            for (int i = 0; i < positions; i++)
            {
                sum = TMultiplyAdd.Apply(sum, weights[i], values[(first + i) * stride + column + c]);
            }

            target[c] = sum;
        }
    }
}
