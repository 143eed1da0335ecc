using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// ggml's generic <c>vec_dot</c> kernels (<c>ggml-cpu/quants.c</c>, the ones llama.cpp runs on a CPU build without
/// architecture-specific code): integer dot products per block, combined in float in ggml's exact order, so the
/// results equal llama.cpp's. The vectorized versions only change how the integer sums are formed (integer
/// addition is exact in any order) and keep every float operation, so they return the same bits.
/// </summary>
internal static unsafe class QuantizedDots
{
    /// <summary>
    /// Whether the integer sums may use AVX-VNNI and AVX-512 VBMI byte permutes where the CPU has them; tests turn
    /// it off to run the plain Vector256 path as well.
    /// </summary>
    internal static bool UseAdvancedIsa { get; set; } = true;

    /// <summary>
    /// Whether <see cref="NibbleDot4"/> uses AVX-VNNI where .NET exposes it; tests turn it off to run the AVX2 form of
    /// the same kernels on CPUs that have both.
    /// </summary>
    internal static bool PreferVnni { get; set; } = true;

    /// <summary>
    /// Lane k = the sum of the four products <c>a[4k..4k+3] * b[4k..4k+3]</c> (a unsigned, at most 31; b signed): AVX-VNNI's
    /// <c>vpdpbusd</c> where .NET has it, else AVX2's pairwise byte multiply-add then word multiply-add by ones. The
    /// AVX2 form is exact here because a pair of products stays within int16 (2 * 31 * 128 &lt; 32768), so both forms
    /// give the same lanes. (.NET 10 has no AVX-512 VNNI class, so CPUs with AVX-512 VNNI but not AVX-VNNI take the
    /// AVX2 form.)
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> NibbleDot4(Vector256<byte> a, Vector256<sbyte> b) =>
        AvxVnni.IsSupported && PreferVnni
            ? AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, a, b)
            : Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a, b), Vector256.Create((short)1));

    /// <summary>
    /// <see cref="NibbleDot4"/> times a sub-block scale: lane k = <c>scale * (a[4k..4k+3] . b[4k..4k+3])</c>, with
    /// <paramref name="scalePairs"/> holding the scale (0..63) in both 16-bit halves of every dword. Without AVX-VNNI the
    /// scale joins the word multiply-add that widens the byte pairs (a pair of products is at most 2 * 31 * 128, times
    /// 63 twice stays far within int32), so one instruction does what a multiply-add by ones and a 32-bit multiply did;
    /// the lanes are the same integers either way.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> ScaledNibbleDot4(Vector256<byte> a, Vector256<sbyte> b, Vector256<int> scalePairs) =>
        AvxVnni.IsSupported && PreferVnni
            ? AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, a, b) * (scalePairs & Vector256.Create(0xFFFF))
            : Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a, b), scalePairs.AsInt16());

    /// <summary>ggml's <c>vec_dot_q8_0_q8_0</c>: sumf += sumi * (dx * dy) per block.</summary>
    public static float Q8_0Reference(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockQ8_0>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8_0>(activations);
        float sum = 0;
        for (int ib = 0; ib < x.Length; ib++)
        {
            ref readonly var xb = ref x[ib];
            ref readonly var yb = ref y[ib];
            int sumi = 0;
            for (int j = 0; j < BlockQ8_0.Size; j++)
            {
                sumi += xb.Qs[j] * yb.Qs[j];
            }

            sum += sumi * (ScalarFormats.HalfToSingle(xb.D) * ScalarFormats.HalfToSingle(yb.D));
        }

        return sum;
    }

    /// <summary>Vectorized <see cref="Q8_0Reference"/> (AVX-VNNI or Vector256 integer sums).</summary>
    public static float Q8_0(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            return Q8_0Reference(weights, activations);
        }

        var x = MemoryMarshal.Cast<byte, BlockQ8_0>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8_0>(activations);
        var xq = MemoryMarshal.Cast<byte, sbyte>(weights);
        var yq = MemoryMarshal.Cast<byte, sbyte>(activations);
        float sum = 0;
        for (int ib = 0; ib < x.Length; ib++)
        {
            int offset = ib * sizeof(BlockQ8_0) + sizeof(ushort);
            var a = Vector256.Create(xq.Slice(offset, 32));
            var b = Vector256.Create(yq.Slice(offset, 32));
            int sumi = SignedDot32(a, b);
            sum += sumi * (ScalarFormats.HalfToSingle(x[ib].D) * ScalarFormats.HalfToSingle(y[ib].D));
        }

        return sum;
    }

    /// <summary>ggml's <c>vec_dot_q4_0_q8_0</c>: sumf += sumi * dx * dy per block (note: no parentheses, unlike Q8_0).</summary>
    public static float Q4_0Reference(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockQ4_0>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8_0>(activations);
        float sum = 0;
        for (int ib = 0; ib < x.Length; ib++)
        {
            ref readonly var xb = ref x[ib];
            ref readonly var yb = ref y[ib];
            int sumi0 = 0;
            int sumi1 = 0;
            for (int j = 0; j < 16; j++)
            {
                int v0 = (xb.Qs[j] & 0x0F) - 8;
                int v1 = (xb.Qs[j] >> 4) - 8;
                sumi0 += v0 * yb.Qs[j];
                sumi1 += v1 * yb.Qs[j + 16];
            }

            int sumi = sumi0 + sumi1;
            sum += sumi * ScalarFormats.HalfToSingle(xb.D) * ScalarFormats.HalfToSingle(yb.D);
        }

        return sum;
    }

    /// <summary>Vectorized <see cref="Q4_0Reference"/>.</summary>
    public static float Q4_0(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            return Q4_0Reference(weights, activations);
        }

        var x = MemoryMarshal.Cast<byte, BlockQ4_0>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8_0>(activations);
        var yq = MemoryMarshal.Cast<byte, sbyte>(activations);
        var lowMask = Vector128.Create((byte)0x0F);
        float sum = 0;
        for (int ib = 0; ib < x.Length; ib++)
        {
            var packed = Vector128.Create(weights.Slice(ib * sizeof(BlockQ4_0) + sizeof(ushort), 16));
            var nibbles = Vector256.Create(packed & lowMask, Vector128.ShiftRightLogical(packed, 4));
            var b = Vector256.Create(yq.Slice(ib * sizeof(BlockQ8_0) + sizeof(ushort), 32));

            // sum((q - 8) * y) = sum(q * y) - 8 * sum(y), exact in integers.
            int sumi = UnsignedSignedDot32(nibbles, b) - 8 * UnsignedSignedDot32(Vector256.Create((byte)1), b);
            sum += sumi * ScalarFormats.HalfToSingle(x[ib].D) * ScalarFormats.HalfToSingle(y[ib].D);
        }

        return sum;
    }

    /// <summary>
    /// ggml's <c>vec_dot_q4_K_q8_K</c>: per block, eight int32 lane sums (lane = position mod 8) of
    /// scale * q4 * q8, added into eight float partial sums; the mins come from the Q8_K group sums.
    /// </summary>
    public static float Q4KReference(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockQ4K>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        Span<sbyte> aux8 = stackalloc sbyte[BlockQ4K.Size];
        Span<short> aux16 = stackalloc short[8];
        Span<int> aux32 = stackalloc int[8];
        Span<float> sums = stackalloc float[8];
        sums.Clear();
        float sumf = 0;
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var xb = ref x[i];
            ref readonly var yb = ref y[i];
            var scalesAndMins = weights.Slice(i * sizeof(BlockQ4K) + 4, 12);
            aux32.Clear();
            for (int j = 0; j < BlockQ4K.Size / 64; j++)
            {
                for (int l = 0; l < 32; l++)
                {
                    aux8[64 * j + l] = (sbyte)(xb.Qs[32 * j + l] & 0xF);
                    aux8[64 * j + 32 + l] = (sbyte)(xb.Qs[32 * j + l] >> 4);
                }
            }

            int sumi = 0;
            for (int j = 0; j < BlockQ4K.Size / 16; j++)
            {
                sumi += yb.BlockSums[j] * KQuantScales.ScaleMin(j / 2, scalesAndMins).Min;
            }

            int position = 0;
            for (int j = 0; j < BlockQ4K.Size / 32; j++)
            {
                int scale = KQuantScales.ScaleMin(j, scalesAndMins).Scale;
                for (int group = 0; group < 4; group++)
                {
                    for (int l = 0; l < 8; l++)
                    {
                        aux16[l] = (short)(yb.Qs[position + l] * aux8[position + l]);
                    }

                    for (int l = 0; l < 8; l++)
                    {
                        aux32[l] += scale * aux16[l];
                    }

                    position += 8;
                }
            }

            float d = ScalarFormats.HalfToSingle(xb.D) * yb.D;
            for (int l = 0; l < 8; l++)
            {
                sums[l] += d * aux32[l];
            }

            float dmin = ScalarFormats.HalfToSingle(xb.DMin) * yb.D;
            sumf -= dmin * sumi;
        }

        for (int l = 0; l < 8; l++)
        {
            sumf += sums[l];
        }

        return sumf;
    }

    /// <summary>Vectorized <see cref="Q4KReference"/>: the eight lane sums are the lanes of a Vector256&lt;int&gt;.</summary>
    public static float Q4K(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            return Q4KReference(weights, activations);
        }

        var x = MemoryMarshal.Cast<byte, BlockQ4K>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        var yq = MemoryMarshal.Cast<byte, sbyte>(activations);
        var lowMask = Vector256.Create((byte)0x0F);
        var sums = Vector256<float>.Zero;
        float sumf = 0;
        for (int i = 0; i < x.Length; i++)
        {
            var blockBytes = weights.Slice(i * sizeof(BlockQ4K), sizeof(BlockQ4K));
            var scalesAndMins = blockBytes.Slice(4, 12);
            var q8 = yq.Slice(i * sizeof(BlockQ8K) + sizeof(float), BlockQ8K.Size);
            var bsums = MemoryMarshal.Cast<byte, short>(activations.Slice(i * sizeof(BlockQ8K) + sizeof(float) + BlockQ8K.Size, 32));

            var lanes = Vector256<int>.Zero;
            int sumi = 0;
            for (int j = 0; j < 4; j++)
            {
                var (scale0, min0) = KQuantScales.ScaleMin(2 * j, scalesAndMins);
                var (scale1, min1) = KQuantScales.ScaleMin(2 * j + 1, scalesAndMins);
                sumi += (bsums[4 * j] + bsums[4 * j + 1]) * min0 + (bsums[4 * j + 2] + bsums[4 * j + 3]) * min1;
                var packed = Vector256.Create(blockBytes.Slice(16 + 32 * j, 32));
                var activations0 = Vector256.Create(q8.Slice(64 * j, 32));
                var activations1 = Vector256.Create(q8.Slice(64 * j + 32, 32));
                if (UseAdvancedIsa && Avx2.IsSupported && Avx512Vbmi.VL.IsSupported)
                {
                    // Gather the four positions of each lane class (p mod 8 = l) into dword l, so that one
                    // four-product dot per sub-block yields ggml's eight lane sums directly.
                    packed = Avx512Vbmi.VL.PermuteVar32x8(packed, LaneClassOrder);
                    activations0 = Avx512Vbmi.VL.PermuteVar32x8(activations0.AsByte(), LaneClassOrder).AsSByte();
                    activations1 = Avx512Vbmi.VL.PermuteVar32x8(activations1.AsByte(), LaneClassOrder).AsSByte();
                    lanes += NibbleDot4(packed & lowMask, activations0) * scale0;
                    lanes += NibbleDot4(Vector256.ShiftRightLogical(packed, 4), activations1) * scale1;
                }
                else
                {
                    lanes += LaneSums8(packed & lowMask, activations0) * scale0;
                    lanes += LaneSums8(Vector256.ShiftRightLogical(packed, 4), activations1) * scale1;
                }
            }

            float d = ScalarFormats.HalfToSingle(x[i].D) * y[i].D;
            sums += Vector256.Create(d) * Vector256.ConvertToSingle(lanes);
            float dmin = ScalarFormats.HalfToSingle(x[i].DMin) * y[i].D;
            sumf -= dmin * sumi;
        }

        for (int l = 0; l < 8; l++)
        {
            sumf += sums.GetElement(l);
        }

        return sumf;
    }

    /// <summary>Vectorized ggml <c>vec_dot_q5_K_q8_K</c> (reference: <see cref="ReferenceDots.Q5K"/>): Q4_K's lane sums with 5-bit quants.</summary>
    public static float Q5K(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            return ReferenceDots.Q5K(weights, activations);
        }

        var x = MemoryMarshal.Cast<byte, BlockQ5K>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        var yq = MemoryMarshal.Cast<byte, sbyte>(activations);
        var lowMask = Vector256.Create((byte)0x0F);
        var one = Vector256.Create((byte)1);
        bool permute = UseAdvancedIsa && Avx2.IsSupported && Avx512Vbmi.VL.IsSupported;
        var sums = Vector256<float>.Zero;
        float sumf = 0;
        for (int i = 0; i < x.Length; i++)
        {
            var blockBytes = weights.Slice(i * sizeof(BlockQ5K), sizeof(BlockQ5K));
            var scalesAndMins = blockBytes.Slice(4, 12);
            var q8 = yq.Slice(i * sizeof(BlockQ8K) + sizeof(float), BlockQ8K.Size);
            var bsums = MemoryMarshal.Cast<byte, short>(activations.Slice(i * sizeof(BlockQ8K) + sizeof(float) + BlockQ8K.Size, 32));
            var high = Vector256.Create(blockBytes.Slice(16, 32));
            if (permute)
            {
                high = Avx512Vbmi.VL.PermuteVar32x8(high, LaneClassOrder);
            }

            var lanes = Vector256<int>.Zero;
            int sumi = 0;
            for (int j = 0; j < 4; j++)
            {
                var (scale0, min0) = KQuantScales.ScaleMin(2 * j, scalesAndMins);
                var (scale1, min1) = KQuantScales.ScaleMin(2 * j + 1, scalesAndMins);
                sumi += (bsums[4 * j] + bsums[4 * j + 1]) * min0 + (bsums[4 * j + 2] + bsums[4 * j + 3]) * min1;
                var packed = Vector256.Create(blockBytes.Slice(48 + 32 * j, 32));
                var activations0 = Vector256.Create(q8.Slice(64 * j, 32));
                var activations1 = Vector256.Create(q8.Slice(64 * j + 32, 32));
                if (permute)
                {
                    packed = Avx512Vbmi.VL.PermuteVar32x8(packed, LaneClassOrder);
                    activations0 = Avx512Vbmi.VL.PermuteVar32x8(activations0.AsByte(), LaneClassOrder).AsSByte();
                    activations1 = Avx512Vbmi.VL.PermuteVar32x8(activations1.AsByte(), LaneClassOrder).AsSByte();
                }

                var a0 = (packed & lowMask) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(high, 2 * j) & one, 4);
                var a1 = Vector256.ShiftRightLogical(packed, 4) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(high, 2 * j + 1) & one, 4);
                if (permute)
                {
                    lanes += NibbleDot4(a0, activations0) * scale0;
                    lanes += NibbleDot4(a1, activations1) * scale1;
                }
                else
                {
                    lanes += LaneSums8(a0, activations0) * scale0;
                    lanes += LaneSums8(a1, activations1) * scale1;
                }
            }

            float d = ScalarFormats.HalfToSingle(x[i].D) * y[i].D;
            sums += Vector256.Create(d) * Vector256.ConvertToSingle(lanes);
            float dmin = ScalarFormats.HalfToSingle(x[i].DMin) * y[i].D;
            sumf -= dmin * sumi;
        }

        for (int l = 0; l < 8; l++)
        {
            sumf += sums.GetElement(l);
        }

        return sumf;
    }

    /// <summary>
    /// ggml's <c>vec_dot_q6_K_q8_K</c>: like Q4_K with sixteen sub-blocks of 16, signed 6-bit quants and no mins.
    /// </summary>
    public static float Q6KReference(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        var x = MemoryMarshal.Cast<byte, BlockQ6K>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        Span<sbyte> aux8 = stackalloc sbyte[BlockQ6K.Size];
        Span<short> aux16 = stackalloc short[8];
        Span<int> aux32 = stackalloc int[8];
        Span<float> sums = stackalloc float[8];
        sums.Clear();
        float sumf = 0;
        for (int i = 0; i < x.Length; i++)
        {
            ref readonly var xb = ref x[i];
            ref readonly var yb = ref y[i];
            aux32.Clear();
            for (int half = 0; half < 2; half++)
            {
                int a = 128 * half;
                int ql = 64 * half;
                int qh = 32 * half;
                for (int l = 0; l < 32; l++)
                {
                    aux8[a + l] = (sbyte)(((xb.Ql[ql + l] & 0xF) | (((xb.Qh[qh + l] >> 0) & 3) << 4)) - 32);
                    aux8[a + l + 32] = (sbyte)(((xb.Ql[ql + l + 32] & 0xF) | (((xb.Qh[qh + l] >> 2) & 3) << 4)) - 32);
                    aux8[a + l + 64] = (sbyte)(((xb.Ql[ql + l] >> 4) | (((xb.Qh[qh + l] >> 4) & 3) << 4)) - 32);
                    aux8[a + l + 96] = (sbyte)(((xb.Ql[ql + l + 32] >> 4) | (((xb.Qh[qh + l] >> 6) & 3) << 4)) - 32);
                }
            }

            int position = 0;
            for (int j = 0; j < BlockQ6K.Size / 16; j++)
            {
                int scale = xb.Scales[j];
                for (int group = 0; group < 2; group++)
                {
                    for (int l = 0; l < 8; l++)
                    {
                        aux16[l] = (short)(yb.Qs[position + l] * aux8[position + l]);
                    }

                    for (int l = 0; l < 8; l++)
                    {
                        aux32[l] += scale * aux16[l];
                    }

                    position += 8;
                }
            }

            float d = ScalarFormats.HalfToSingle(xb.D) * yb.D;
            for (int l = 0; l < 8; l++)
            {
                sums[l] += d * aux32[l];
            }
        }

        for (int l = 0; l < 8; l++)
        {
            sumf += sums[l];
        }

        return sumf;
    }

    /// <summary>Vectorized <see cref="Q6KReference"/>.</summary>
    public static float Q6K(ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            return Q6KReference(weights, activations);
        }

        var x = MemoryMarshal.Cast<byte, BlockQ6K>(weights);
        var y = MemoryMarshal.Cast<byte, BlockQ8K>(activations);
        var yq = MemoryMarshal.Cast<byte, sbyte>(activations);
        var lowMask = Vector256.Create((byte)0x0F);
        var twoBits = Vector256.Create((byte)3);
        var offset = Vector256.Create((sbyte)32);
        var sums = Vector256<float>.Zero;
        for (int i = 0; i < x.Length; i++)
        {
            var blockBytes = weights.Slice(i * sizeof(BlockQ6K), sizeof(BlockQ6K));
            var scales = MemoryMarshal.Cast<byte, sbyte>(blockBytes.Slice(192, 16));
            var q8 = yq.Slice(i * sizeof(BlockQ8K) + sizeof(float), BlockQ8K.Size);
            var lanes = Vector256<int>.Zero;
            for (int half = 0; half < 2; half++)
            {
                var ql0 = Vector256.Create(blockBytes.Slice(64 * half, 32));
                var ql1 = Vector256.Create(blockBytes.Slice(64 * half + 32, 32));
                var qh = Vector256.Create(blockBytes.Slice(128 + 32 * half, 32));
                var q1 = ((ql0 & lowMask) | Vector256.ShiftLeft(qh & twoBits, 4)).AsSByte() - offset;
                var q2 = ((ql1 & lowMask) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(qh, 2) & twoBits, 4)).AsSByte() - offset;
                var q3 = (Vector256.ShiftRightLogical(ql0, 4) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(qh, 4) & twoBits, 4)).AsSByte() - offset;
                var q4 = (Vector256.ShiftRightLogical(ql1, 4) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(qh, 6), 4)).AsSByte() - offset;
                var sc = scales.Slice(8 * half);
                var q8h = q8.Slice(128 * half);
                if (UseAdvancedIsa && Avx512Vbmi.VL.IsSupported)
                {
                    lanes += PermutedScaledLaneSums16(q1, Vector256.Create(q8h.Slice(0, 32)), sc[0], sc[1]);
                    lanes += PermutedScaledLaneSums16(q2, Vector256.Create(q8h.Slice(32, 32)), sc[2], sc[3]);
                    lanes += PermutedScaledLaneSums16(q3, Vector256.Create(q8h.Slice(64, 32)), sc[4], sc[5]);
                    lanes += PermutedScaledLaneSums16(q4, Vector256.Create(q8h.Slice(96, 32)), sc[6], sc[7]);
                }
                else
                {
                    lanes += ScaledLaneSums16(q1, Vector256.Create(q8h.Slice(0, 32)), sc[0], sc[1]);
                    lanes += ScaledLaneSums16(q2, Vector256.Create(q8h.Slice(32, 32)), sc[2], sc[3]);
                    lanes += ScaledLaneSums16(q3, Vector256.Create(q8h.Slice(64, 32)), sc[4], sc[5]);
                    lanes += ScaledLaneSums16(q4, Vector256.Create(q8h.Slice(96, 32)), sc[6], sc[7]);
                }
            }

            float d = ScalarFormats.HalfToSingle(x[i].D) * y[i].D;
            sums += Vector256.Create(d) * Vector256.ConvertToSingle(lanes);
        }

        float sumf = 0;
        for (int l = 0; l < 8; l++)
        {
            sumf += sums.GetElement(l);
        }

        return sumf;
    }

    /// <summary>Byte order that puts positions l, l + 8, l + 16, l + 24 of 32 into dword l.</summary>
    internal static Vector256<byte> LaneClassOrder { get; } = Vector256.Create(
        (byte)0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27, 4, 12, 20, 28, 5, 13, 21, 29, 6, 14, 22, 30, 7, 15, 23, 31);

    /// <summary>
    /// <see cref="ScaledLaneSums16"/> with byte permutes and pairwise multiply-adds: after <see cref="LaneClassOrder"/>,
    /// word 2l holds the products at positions l and l + 8 (first sub-block) and word 2l + 1 those at 16 + l and
    /// 24 + l (second), so one multiply-add against (scale0, scale1) pairs gives lane l. |a| &lt;= 32 keeps every
    /// intermediate far from int16 saturation.
    /// </summary>
    private static Vector256<int> PermutedScaledLaneSums16(Vector256<sbyte> a, Vector256<sbyte> b, int scale0, int scale1)
    {
        var pa = Avx512Vbmi.VL.PermuteVar32x8(a.AsByte(), LaneClassOrder).AsSByte();
        var pb = Avx512Vbmi.VL.PermuteVar32x8(b.AsByte(), LaneClassOrder).AsSByte();

        // |b| * (a * sign(b)) = a * b; |-128| reads as 128 unsigned and a is never -128.
        var pairs = Avx2.MultiplyAddAdjacent(Avx2.Abs(pb), Avx2.Sign(pa, pb));
        var scales = Vector256.Create((int)((ushort)scale0 | ((uint)(ushort)scale1 << 16))).AsInt16();
        return Avx2.MultiplyAddAdjacent(pairs, scales);
    }

    /// <summary>Sum over 32 positions of a[i] * b[i] (signed bytes).</summary>
    private static int SignedDot32(Vector256<sbyte> a, Vector256<sbyte> b)
    {
        if (UseAdvancedIsa && AvxVnni.IsSupported)
        {
            // VNNI multiplies unsigned by signed bytes: sum(a * b) = sum((a + 128) * b) - 128 * sum(b), exact for
            // every input (the usual |a| * sign(b, a) trick overflows when a and b are both -128).
            var shifted = (a.AsByte() ^ Vector256.Create((byte)0x80));
            var products = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, shifted, b);
            var sums = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Vector256.Create((byte)1), b);
            return Vector256.Sum(products) - 128 * Vector256.Sum(sums);
        }

        var (a0, a1) = Vector256.Widen(a);
        var (b0, b1) = Vector256.Widen(b);
        return WidenSum(a0 * b0) + WidenSum(a1 * b1);
    }

    /// <summary>Sum over 32 positions of a[i] * b[i] with a unsigned (at most 255) and b signed.</summary>
    private static int UnsignedSignedDot32(Vector256<byte> a, Vector256<sbyte> b)
    {
        if (UseAdvancedIsa && AvxVnni.IsSupported)
        {
            return Vector256.Sum(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, a, b));
        }

        var (a0, a1) = Vector256.Widen(a);
        var (b0, b1) = Vector256.Widen(b);
        return WidenSum(a0.AsInt16() * b0) + WidenSum(a1.AsInt16() * b1);
    }

    private static int WidenSum(Vector256<short> values)
    {
        var (low, high) = Vector256.Widen(values);
        return Vector256.Sum(low + high);
    }

    /// <summary>
    /// For 32 positions (a unsigned 0..31, b signed): lane l of the result is the sum of a[p] * b[p] over the
    /// positions p with p mod 8 == l, as ggml's eight-lane loop accumulates them.
    /// </summary>
    private static Vector256<int> LaneSums8(Vector256<byte> a, Vector256<sbyte> b)
    {
        var (a0, a1) = Vector256.Widen(a);
        var (b0, b1) = Vector256.Widen(b);

        // Products fit in int16 (|31 * 128| * 2 < 32768). Lane k of the sum holds positions k and k + 16.
        var products = a0.AsInt16() * b0 + a1.AsInt16() * b1;
        var (low, high) = Vector256.Widen(products);
        return low + high;
    }

    /// <summary>
    /// For 32 positions of two 16-wide sub-blocks: lane l = scale0 * sum over the first 16 positions p with
    /// p mod 8 == l of a[p] * b[p], plus scale1 times the same over the next 16.
    /// </summary>
    private static Vector256<int> ScaledLaneSums16(Vector256<sbyte> a, Vector256<sbyte> b, int scale0, int scale1)
    {
        var (a0, a1) = Vector256.Widen(a);
        var (b0, b1) = Vector256.Widen(b);
        var (p00, p01) = Vector256.Widen(a0 * b0);
        var (p10, p11) = Vector256.Widen(a1 * b1);
        return (p00 + p01) * scale0 + (p10 + p11) * scale1;
    }
}
