using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ExpertScope.Models.Blocks;

/// <summary>
/// The float32 dot product of <see cref="FloatArithmetic.Fused"/>: sixteen float32 lanes, lane <c>j</c> accumulating
/// the elements <c>i ≡ j (mod 16)</c> in increasing order with fused multiply-adds, then a fixed pairwise reduction
/// (lane j + lane j+8, then j + j+4, then j + j+2, then 0 + 1). That is the shape of llama.cpp's SIMD
/// <c>vec_dot_f32</c> and of BLAS-style kernels, about three times cheaper than the double sums of
/// <see cref="DotProduct"/>. The order is fixed by the definition, not by the hardware: <see cref="Reference"/>
/// (scalar), the 512-bit and the 256-bit kernels and every tile shape give the same bits for the same pair, so
/// results do not depend on how rows and tokens are split among threads.
/// </summary>
internal static unsafe class FusedDotProduct
{
    /// <summary>Lanes of the canonical accumulator.</summary>
    public const int Lanes = 16;

    /// <summary>Which vector kernels run (tests switch it to compare all of them with <see cref="Reference"/>).</summary>
    internal static FusedKernel Kernel { get; set; } = DetectKernel();

    /// <summary>The plain definition: sixteen scalar lanes, <see cref="MathF.FusedMultiplyAdd"/>, the fixed reduction.</summary>
    public static float Reference(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Span<float> lanes = stackalloc float[Lanes];
        lanes.Clear();
        for (int i = 0; i < a.Length; i++)
        {
            lanes[i % Lanes] = MathF.FusedMultiplyAdd(a[i], b[i], lanes[i % Lanes]);
        }

        return Reduce(lanes);
    }

    /// <summary>The fixed reduction of sixteen lanes.</summary>
    internal static float Reduce(ReadOnlySpan<float> lanes)
    {
        Span<float> eight = stackalloc float[8];
        for (int j = 0; j < 8; j++)
        {
            eight[j] = lanes[j] + lanes[j + 8];
        }

        float a0 = eight[0] + eight[4], a1 = eight[1] + eight[5], a2 = eight[2] + eight[6], a3 = eight[3] + eight[7];
        return (a0 + a2) + (a1 + a3);
    }

    /// <summary>One dot product of <paramref name="a"/> and the first <c>a.Length</c> elements of <paramref name="b"/>.</summary>
    public static float Compute(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (b.Length < a.Length)
        {
            throw new ArgumentException("The second row is shorter than the first.", nameof(b));
        }

        fixed (float* pa = a)
        fixed (float* pb = b)
        {
            float result;
            Tile(pa, 0, 1, pb, 0, 1, a.Length, &result, 1);
            return result;
        }
    }

    /// <summary>
    /// Products of up to four weight rows with up to four activation rows (every pair), written to
    /// <c>output[token * outputStride + row]</c>. Rows are <paramref name="length"/> floats, <paramref name="rowStride"/>
    /// and <paramref name="tokenStride"/> floats apart.
    /// </summary>
    public static void Tile(
        float* weights, int rowStride, int rows, float* tokens, int tokenStride, int tokenCount, int length, float* output, int outputStride)
    {
        if (rows is < 1 or > 4 || tokenCount is < 1 or > 4)
        {
            throw new ArgumentOutOfRangeException(nameof(rows), "Tiles hold one to four rows and one to four tokens.");
        }

        // The 512-bit tiles take whole vectors only (a tail inside them makes the JIT keep the accumulators in memory);
        // other lengths go pair by pair, with the same bits.
        bool whole = length % Lanes == 0;
        switch (Kernel)
        {
            case FusedKernel.Vector512 when whole && rows == 4 && tokenCount == 4:
                Tile4x4Wide(weights, rowStride, tokens, tokenStride, length, output, outputStride);
                return;
            case FusedKernel.Vector512 when whole && tokenCount == 1:
                TileRowsx1Wide(weights, rowStride, rows, tokens, length, output);
                return;
            case FusedKernel.Vector512:
            case FusedKernel.Vector256:
                for (int t = 0; t < tokenCount; t++)
                {
                    for (int r = 0; r < rows; r++)
                    {
                        output[t * outputStride + r] = Single256(weights + (long)r * rowStride, tokens + (long)t * tokenStride, length);
                    }
                }

                return;
            default:
                for (int t = 0; t < tokenCount; t++)
                {
                    for (int r = 0; r < rows; r++)
                    {
                        output[t * outputStride + r] = Reference(
                            new ReadOnlySpan<float>(weights + (long)r * rowStride, length),
                            new ReadOnlySpan<float>(tokens + (long)t * tokenStride, length));
                    }
                }

                return;
        }
    }

    private static FusedKernel DetectKernel()
    {
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
        {
            return FusedKernel.Vector512;
        }

        return Vector256.IsHardwareAccelerated && Fma.IsSupported ? FusedKernel.Vector256 : FusedKernel.Scalar;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Reduce(Vector512<float> lanes)
    {
        var eight = lanes.GetLower() + lanes.GetUpper();
        var four = eight.GetLower() + eight.GetUpper();
        return (four.GetElement(0) + four.GetElement(2)) + (four.GetElement(1) + four.GetElement(3));
    }

    /// <summary>Four rows by four tokens, <paramref name="length"/> a multiple of 16: sixteen accumulators in registers.</summary>
    private static void Tile4x4Wide(float* w, int rowStride, float* x, int tokenStride, int length, float* output, int outputStride)
    {
        float* w1 = w + rowStride, w2 = w1 + rowStride, w3 = w2 + rowStride;
        float* x1 = x + tokenStride, x2 = x1 + tokenStride, x3 = x2 + tokenStride;
        Vector512<float> s00 = default, s01 = default, s02 = default, s03 = default;
        Vector512<float> s10 = default, s11 = default, s12 = default, s13 = default;
        Vector512<float> s20 = default, s21 = default, s22 = default, s23 = default;
        Vector512<float> s30 = default, s31 = default, s32 = default, s33 = default;
        int i = 0;
        for (; i < length; i += Lanes)
        {
            var v0 = Avx512F.LoadVector512(x + i);
            var v1 = Avx512F.LoadVector512(x1 + i);
            var v2 = Avx512F.LoadVector512(x2 + i);
            var v3 = Avx512F.LoadVector512(x3 + i);
            var r = Avx512F.LoadVector512(w + i);
            s00 = Avx512F.FusedMultiplyAdd(r, v0, s00);
            s01 = Avx512F.FusedMultiplyAdd(r, v1, s01);
            s02 = Avx512F.FusedMultiplyAdd(r, v2, s02);
            s03 = Avx512F.FusedMultiplyAdd(r, v3, s03);
            r = Avx512F.LoadVector512(w1 + i);
            s10 = Avx512F.FusedMultiplyAdd(r, v0, s10);
            s11 = Avx512F.FusedMultiplyAdd(r, v1, s11);
            s12 = Avx512F.FusedMultiplyAdd(r, v2, s12);
            s13 = Avx512F.FusedMultiplyAdd(r, v3, s13);
            r = Avx512F.LoadVector512(w2 + i);
            s20 = Avx512F.FusedMultiplyAdd(r, v0, s20);
            s21 = Avx512F.FusedMultiplyAdd(r, v1, s21);
            s22 = Avx512F.FusedMultiplyAdd(r, v2, s22);
            s23 = Avx512F.FusedMultiplyAdd(r, v3, s23);
            r = Avx512F.LoadVector512(w3 + i);
            s30 = Avx512F.FusedMultiplyAdd(r, v0, s30);
            s31 = Avx512F.FusedMultiplyAdd(r, v1, s31);
            s32 = Avx512F.FusedMultiplyAdd(r, v2, s32);
            s33 = Avx512F.FusedMultiplyAdd(r, v3, s33);
        }

        float* o0 = output, o1 = o0 + outputStride, o2 = o1 + outputStride, o3 = o2 + outputStride;
        o0[0] = Reduce(s00);
        o1[0] = Reduce(s01);
        o2[0] = Reduce(s02);
        o3[0] = Reduce(s03);
        o0[1] = Reduce(s10);
        o1[1] = Reduce(s11);
        o2[1] = Reduce(s12);
        o3[1] = Reduce(s13);
        o0[2] = Reduce(s20);
        o1[2] = Reduce(s21);
        o2[2] = Reduce(s22);
        o3[2] = Reduce(s23);
        o0[3] = Reduce(s30);
        o1[3] = Reduce(s31);
        o2[3] = Reduce(s32);
        o3[3] = Reduce(s33);
    }

    /// <summary>One token against up to four rows: four independent chains keep the FMA units busy while streaming.</summary>
    /// <summary>How far ahead (in floats, 1 KB) the one-token tile prefetches each row.</summary>
    private const int PrefetchFloats = 256;

    private static void TileRowsx1Wide(float* w, int rowStride, int rows, float* x, int length, float* output)
    {
        // Rows past the last real one read row 0 again; their results are dropped.
        float* w1 = rows > 1 ? w + rowStride : w;
        float* w2 = rows > 2 ? w + 2L * rowStride : w;
        float* w3 = rows > 3 ? w + 3L * rowStride : w;
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
        int i = 0;
        for (; i < length; i += Lanes)
        {
            // One token: the four row streams come from memory (an F32 output head is hundreds of MB), so each is
            // prefetched 1 KB ahead into L2, as the one-token Q8_0 kernel does; prefetches change no result.
            Sse.Prefetch1(w + i + PrefetchFloats);
            Sse.Prefetch1(w1 + i + PrefetchFloats);
            Sse.Prefetch1(w2 + i + PrefetchFloats);
            Sse.Prefetch1(w3 + i + PrefetchFloats);
            var v = Avx512F.LoadVector512(x + i);
            s0 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(w + i), v, s0);
            s1 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(w1 + i), v, s1);
            s2 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(w2 + i), v, s2);
            s3 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(w3 + i), v, s3);
        }

        output[0] = Reduce(s0);
        if (rows > 1)
        {
            output[1] = Reduce(s1);
        }

        if (rows > 2)
        {
            output[2] = Reduce(s2);
        }

        if (rows > 3)
        {
            output[3] = Reduce(s3);
        }
    }

    /// <summary>One pair on 256-bit vectors: the sixteen lanes as a low and a high accumulator.</summary>
    private static float Single256(float* a, float* b, int length)
    {
        Vector256<float> low = default, high = default;
        int i = 0;
        for (; i + Lanes <= length; i += Lanes)
        {
            low = Fma.MultiplyAdd(Avx.LoadVector256(a + i), Avx.LoadVector256(b + i), low);
            high = Fma.MultiplyAdd(Avx.LoadVector256(a + i + 8), Avx.LoadVector256(b + i + 8), high);
        }

        if (i < length)
        {
            var padA = stackalloc float[Lanes];
            var padB = stackalloc float[Lanes];
            for (int j = 0; j < Lanes; j++)
            {
                padA[j] = i + j < length ? a[i + j] : 0f;
                padB[j] = i + j < length ? b[i + j] : 0f;
            }

            low = Fma.MultiplyAdd(Avx.LoadVector256(padA), Avx.LoadVector256(padB), low);
            high = Fma.MultiplyAdd(Avx.LoadVector256(padA + 8), Avx.LoadVector256(padB + 8), high);
        }

        var eight = low + high;
        var four = eight.GetLower() + eight.GetUpper();
        return (four.GetElement(0) + four.GetElement(2)) + (four.GetElement(1) + four.GetElement(3));
    }
}

/// <summary>Which implementation of <see cref="FusedDotProduct"/> runs (all give the same bits).</summary>
internal enum FusedKernel
{
    /// <summary>The scalar definition.</summary>
    Scalar,

    /// <summary>AVX2 + FMA: two 8-lane accumulators per pair.</summary>
    Vector256,

    /// <summary>AVX-512: one 16-lane accumulator per pair, tiles of 4 rows × 4 tokens.</summary>
    Vector512,
}
