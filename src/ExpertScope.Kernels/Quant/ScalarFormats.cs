using System.Runtime.CompilerServices;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// Bit-exact scalar conversions between float32 and the small float formats ggml stores scales in
/// (float16, bfloat16, E8M0, UE4M3), written to return exactly what ggml's helpers in <c>ggml-impl.h</c> return.
/// </summary>
public static class ScalarFormats
{
    /// <summary>All 65536 float16 values as float32, the table ggml's CPU backend also reads (256 KiB, built once).</summary>
    private static readonly float[] HalfTable = BuildHalfTable();

    /// <summary>Float16 bits to float32 (exact; every half value is representable).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HalfToSingle(ushort bits) => HalfTable[bits];

    /// <summary>
    /// Float32 to float16 bits, rounding to nearest even as ggml's <c>fp32_to_fp16</c> does; NaN becomes the
    /// quiet NaN <c>0x7E00</c> with the input's sign, as in ggml.
    /// </summary>
    public static ushort SingleToHalf(float value)
    {
        // ggml's branch-free version is IEEE round-to-nearest-even for every finite and infinite input, which
        // is what the runtime's conversion does; only NaN payloads differ, so NaN is handled as ggml does.
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7FFFFFFFu) > 0x7F800000u)
        {
            return (ushort)((bits >> 16 & 0x8000u) | 0x7E00u);
        }

        return BitConverter.HalfToUInt16Bits((Half)value);
    }

    private static float[] BuildHalfTable()
    {
        // The runtime's conversion is exact; a table avoids its per-call cost in the scalar kernels.
        var table = new float[65536];
        for (int bits = 0; bits < table.Length; bits++)
        {
            table[bits] = (float)BitConverter.UInt16BitsToHalf((ushort)bits);
        }

        return table;
    }

    /// <summary>Bfloat16 bits to float32 (the bits are the high half of the float).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BFloat16ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>Float32 to bfloat16 bits: round to nearest even, NaN forced quiet (ggml's <c>fp32_to_bf16</c>).</summary>
    public static ushort SingleToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7FFFFFFFu) > 0x7F800000u)
        {
            return (ushort)((bits >> 16) | 64);
        }

        return (ushort)((bits + (0x7FFFu + ((bits >> 16) & 1))) >> 16);
    }

    /// <summary>Half of the E8M0 value <c>2^(e-127)</c>, i.e. <c>2^(e-128)</c> (ggml's <c>e8m0_to_fp32_half</c>, MXFP4 scales).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float E8M0ToSingleHalf(byte exponent) =>
        BitConverter.UInt32BitsToSingle(exponent < 2 ? 0x00200000u << exponent : (uint)(exponent - 1) << 23);

    /// <summary>
    /// Half of an unsigned E4M3 value (bias 7, 3 mantissa bits; 0 and 0x7F read as zero), as ggml's
    /// <c>ue4m3_to_fp32</c> returns it for NVFP4 scales (halved because the FP4 levels are stored doubled).
    /// </summary>
    public static float UE4M3ToSingleHalf(byte value)
    {
        if (value == 0 || value == 0x7F)
        {
            return 0f;
        }

        int exponent = (value >> 3) & 0xF;
        int mantissa = value & 0x7;
        float raw = exponent == 0
            ? float.ScaleB(mantissa, -9)
            : float.ScaleB(1f + mantissa / 8f, exponent - 7);
        return raw * 0.5f;
    }
}
