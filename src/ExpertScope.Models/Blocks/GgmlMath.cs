using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ExpertScope.Models.Blocks;

/// <summary>
/// Elementwise functions computed the way llama.cpp's portable x86-64 CPU build computes them, so that outputs
/// agree to the last bit where possible: a fast vector exp (an Arm optimized-routines polynomial with a documented
/// error of about 1.5 ulp) for softmax and SiLU over groups of four, and the C library's <c>expf</c> for the rest.
/// Agreement matters because llama.cpp's f16 key/value cache rounds activations, and one differently rounded
/// value changes later layers by about 1e-4.
/// </summary>
internal static class GgmlMath
{
    private static readonly float Shift = BitConverter.UInt32BitsToSingle(0x4b400000);         // 1.5 * 2^23
    private static readonly float InverseLn2 = BitConverter.UInt32BitsToSingle(0x3fb8aa3b);
    private static readonly float Ln2High = BitConverter.UInt32BitsToSingle(0x3f317200);
    private static readonly float Ln2Low = BitConverter.UInt32BitsToSingle(0x35bfbe8e);
    private static readonly float C4 = BitConverter.UInt32BitsToSingle(0x3c072010);
    private static readonly float C3 = BitConverter.UInt32BitsToSingle(0x3d2b9f17);
    private static readonly float C2 = BitConverter.UInt32BitsToSingle(0x3e2aaf33);
    private static readonly float C1 = BitConverter.UInt32BitsToSingle(0x3efffedb);
    private static readonly float C0 = BitConverter.UInt32BitsToSingle(0x3f7ffff6);

    /// <summary>
    /// The vector exp: <c>exp(x) = 2^n * (1 + p(r))</c> with <c>n = round(x / ln 2)</c> and a degree-5 polynomial in
    /// the reduced argument; every operation is a separately rounded float operation (no fused multiply-add).
    /// </summary>
    public static float FastExp(float x)
    {
        float z = x * InverseLn2 + Shift;
        float n = z - Shift;
        float b = (x - n * Ln2High) - n * Ln2Low;
        uint e = BitConverter.SingleToUInt32Bits(z) << 23;
        float k = BitConverter.UInt32BitsToSingle(e + BitConverter.SingleToUInt32Bits(1.0f));
        float u = b * b;
        float j = ((C4 * b + C3) * u + (C2 * b + C1)) * u + C0 * b;
        if (!(MathF.Abs(n) > 126))
        {
            return j * k + k;
        }

        // Large |n|: split the scale in two so 2^n neither overflows nor underflows early.
        uint g = n <= 0 ? 0x82000000u : 0u;
        float s1 = BitConverter.UInt32BitsToSingle(g + 0x7f000000u);
        float s2 = BitConverter.UInt32BitsToSingle(e - g);
        return MathF.Abs(n) > 192 ? s1 * s1 : (s2 * j + s2) * s1;
    }

    /// <summary>SiLU <c>x / (1 + exp(-x))</c> with the vector exp.</summary>
    public static float FastSilu(float x) => x / (1.0f + FastExp(0.0f - x));

    /// <summary>SiLU with the C library's expf (ggml's scalar path).</summary>
    public static float Silu(float x) => x / (1.0f + MathF.Exp(-x));

    /// <summary>
    /// Softmax in place as ggml: subtract the max; exponentials by the vector exp in groups of four (each group
    /// summed pairwise in float, then added to a double sum), the tail by expf; scale by the float reciprocal.
    /// </summary>
    public static void Softmax(Span<float> values)
    {
        float max = float.NegativeInfinity;
        foreach (float v in values)
        {
            max = MathF.Max(max, v);
        }

        double sum = ExpMinusMax(values, max);
        float inverse = (float)(1.0 / sum);
        for (int j = 0; j < values.Length; j++)
        {
            values[j] *= inverse;
        }
    }

    /// <summary>
    /// ggml's softmax numerator in place: <c>values[i] = exp(values[i] - max)</c> by the vector exp in groups of four
    /// (the tail by expf), returning their sum accumulated in double with each group added pairwise in float first.
    /// Eight values at a time through <see cref="FastExp(Vector256{float})"/> where the hardware has 256-bit vectors;
    /// the same operations lane by lane, so the same bits as <see cref="ExpMinusMaxReference"/>.
    /// </summary>
    public static double ExpMinusMax(Span<float> values, float max)
    {
        double sum = 0;
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref float start = ref MemoryMarshal.GetReference(values);
            var shift = Vector256.Create(max);
            for (; i + 8 <= values.Length; i += 8)
            {
                var exps = FastExp(Vector256.LoadUnsafe(ref start, (nuint)i) - shift);
                exps.StoreUnsafe(ref start, (nuint)i);
                sum += (exps.GetElement(0) + exps.GetElement(1)) + (exps.GetElement(2) + exps.GetElement(3));
                sum += (exps.GetElement(4) + exps.GetElement(5)) + (exps.GetElement(6) + exps.GetElement(7));
            }
        }

        return ExpMinusMaxScalar(values, max, i, sum);
    }

    /// <summary><see cref="ExpMinusMax"/> one value at a time: the reference the vector form is tested against.</summary>
    internal static double ExpMinusMaxReference(Span<float> values, float max) => ExpMinusMaxScalar(values, max, 0, 0);

    /// <summary>The scalar steps from <paramref name="i"/> on (a multiple of four), adding to <paramref name="sum"/> in order.</summary>
    private static double ExpMinusMaxScalar(Span<float> values, float max, int i, double sum)
    {
        for (; i + 3 < values.Length; i += 4)
        {
            float v0 = values[i] = FastExp(values[i] - max);
            float v1 = values[i + 1] = FastExp(values[i + 1] - max);
            float v2 = values[i + 2] = FastExp(values[i + 2] - max);
            float v3 = values[i + 3] = FastExp(values[i + 3] - max);
            sum += (v0 + v1) + (v2 + v3);
        }

        for (; i < values.Length; i++)
        {
            float v = values[i] = MathF.Exp(values[i] - max);
            sum += v;
        }

        return sum;
    }

    /// <summary><see cref="FastExp(float)"/> on eight lanes: the same float and integer operations, the branch as a select.</summary>
    public static Vector256<float> FastExp(Vector256<float> x)
    {
        var shift = Vector256.Create(Shift);
        var z = x * Vector256.Create(InverseLn2) + shift;
        var n = z - shift;
        var b = (x - n * Vector256.Create(Ln2High)) - n * Vector256.Create(Ln2Low);
        var e = z.AsUInt32() << 23;
        var k = (e + Vector256.Create(BitConverter.SingleToUInt32Bits(1.0f))).AsSingle();
        var u = b * b;
        var j = ((Vector256.Create(C4) * b + Vector256.Create(C3)) * u + (Vector256.Create(C2) * b + Vector256.Create(C1))) * u + Vector256.Create(C0) * b;
        var small = j * k + k;
        var magnitude = Vector256.Abs(n);
        var large = Vector256.GreaterThan(magnitude, Vector256.Create(126.0f));
        if (large == Vector256<float>.Zero)
        {
            return small;
        }

        var g = Vector256.ConditionalSelect(Vector256.LessThanOrEqual(n, Vector256<float>.Zero).AsUInt32(), Vector256.Create(0x82000000u), Vector256<uint>.Zero);
        var s1 = (g + Vector256.Create(0x7f000000u)).AsSingle();
        var s2 = (e - g).AsSingle();
        var huge = Vector256.ConditionalSelect(Vector256.GreaterThan(magnitude, Vector256.Create(192.0f)), s1 * s1, (s2 * j + s2) * s1);
        return Vector256.ConditionalSelect(large, huge, small);
    }

    /// <summary>
    /// <c>gate[i] = silu(gate[i]) * up[i]</c>, groups of four by the vector exp, the tail by expf (as ggml's swiglu).
    /// Eight values at a time where the hardware has 256-bit vectors: <see cref="FastSilu"/>'s operations lane by lane,
    /// so the same bits as <see cref="SwiGluReference"/>.
    /// </summary>
    public static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up, int rowLength)
    {
        for (int row = 0; row + rowLength <= gate.Length; row += rowLength)
        {
            int vectorEnd = row + (rowLength & ~3);
            int i = row;
            if (Vector256.IsHardwareAccelerated)
            {
                for (; i + 8 <= vectorEnd; i += 8)
                {
                    var x = Vector256.Create((ReadOnlySpan<float>)gate.Slice(i, 8));
                    var silu = x / (Vector256.Create(1.0f) + FastExp(Vector256<float>.Zero - x));
                    (silu * Vector256.Create(up.Slice(i, 8))).CopyTo(gate.Slice(i, 8));
                }
            }

            for (; i < row + rowLength; i++)
            {
                gate[i] = (i < vectorEnd ? FastSilu(gate[i]) : Silu(gate[i])) * up[i];
            }
        }
    }

    /// <summary><see cref="SwiGlu"/> one value at a time: the reference the vector form is tested against.</summary>
    internal static void SwiGluReference(Span<float> gate, ReadOnlySpan<float> up, int rowLength)
    {
        for (int row = 0; row + rowLength <= gate.Length; row += rowLength)
        {
            int vectorEnd = row + (rowLength & ~3);
            for (int i = row; i < row + rowLength; i++)
            {
                gate[i] = (i < vectorEnd ? FastSilu(gate[i]) : Silu(gate[i])) * up[i];
            }
        }
    }
}
