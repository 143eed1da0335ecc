namespace ExpertScope.Core;

/// <summary>
/// Tensor element types, numbered exactly as ggml's <c>enum ggml_type</c> numbers them in GGUF files
/// (gaps are ids ggml retired; a file that uses one is refused).
/// </summary>
public enum GgmlType : uint
{
    /// <summary>IEEE float32.</summary>
    F32 = 0,
    /// <summary>IEEE float16.</summary>
    F16 = 1,
    /// <summary>32 weights: f16 scale, 4-bit quants.</summary>
    Q4_0 = 2,
    /// <summary>32 weights: f16 scale and min, 4-bit quants.</summary>
    Q4_1 = 3,
    /// <summary>32 weights: f16 scale, 5-bit quants.</summary>
    Q5_0 = 6,
    /// <summary>32 weights: f16 scale and min, 5-bit quants.</summary>
    Q5_1 = 7,
    /// <summary>32 weights: f16 scale, int8 quants.</summary>
    Q8_0 = 8,
    /// <summary>32 weights: f16 scale and sum, int8 quants (activation type).</summary>
    Q8_1 = 9,
    /// <summary>K-quant, 256 weights, 2.625 bits per weight.</summary>
    Q2_K = 10,
    /// <summary>K-quant, 256 weights, 3.4375 bits per weight.</summary>
    Q3_K = 11,
    /// <summary>K-quant, 256 weights, 4.5 bits per weight.</summary>
    Q4_K = 12,
    /// <summary>K-quant, 256 weights, 5.5 bits per weight.</summary>
    Q5_K = 13,
    /// <summary>K-quant, 256 weights, 6.5625 bits per weight.</summary>
    Q6_K = 14,
    /// <summary>K-quant activation type: float32 scale, int8 quants, int16 block sums.</summary>
    Q8_K = 15,
    /// <summary>i-quant, 2.0625 bits per weight.</summary>
    IQ2_XXS = 16,
    /// <summary>i-quant, 2.3125 bits per weight.</summary>
    IQ2_XS = 17,
    /// <summary>i-quant, 3.0625 bits per weight.</summary>
    IQ3_XXS = 18,
    /// <summary>i-quant, 1.5625 bits per weight.</summary>
    IQ1_S = 19,
    /// <summary>32 weights, non-linear 4-bit grid.</summary>
    IQ4_NL = 20,
    /// <summary>i-quant, 3.4375 bits per weight.</summary>
    IQ3_S = 21,
    /// <summary>i-quant, 2.5625 bits per weight.</summary>
    IQ2_S = 22,
    /// <summary>256 weights, non-linear 4-bit grid with 6-bit scales.</summary>
    IQ4_XS = 23,
    /// <summary>int8.</summary>
    I8 = 24,
    /// <summary>int16.</summary>
    I16 = 25,
    /// <summary>int32.</summary>
    I32 = 26,
    /// <summary>int64.</summary>
    I64 = 27,
    /// <summary>IEEE float64.</summary>
    F64 = 28,
    /// <summary>i-quant, 1.75 bits per weight.</summary>
    IQ1_M = 29,
    /// <summary>bfloat16.</summary>
    BF16 = 30,
    /// <summary>Ternary, 1.6875 bits per weight.</summary>
    TQ1_0 = 34,
    /// <summary>Ternary, 2.0625 bits per weight.</summary>
    TQ2_0 = 35,
    /// <summary>OCP microscaling FP4 (E2M1 values, E8M0 shared scale), 32 weights.</summary>
    MXFP4 = 39,
    /// <summary>NVIDIA FP4 (E2M1 values, FP8 E4M3 scales per 16), 64 weights.</summary>
    NVFP4 = 40,
    /// <summary>1-bit, 128 weights.</summary>
    Q1_0 = 41,
    /// <summary>2-bit, 64 weights.</summary>
    Q2_0 = 42,
}

/// <summary>Storage facts of one <see cref="GgmlType"/>: how many elements a block holds and its size in bytes.</summary>
/// <param name="Type">The type.</param>
/// <param name="Name">ggml's lower-case name (<c>q4_K</c>).</param>
/// <param name="BlockSize">Elements per block (1 for plain types).</param>
/// <param name="TypeSize">Bytes per block.</param>
public readonly record struct GgmlTypeInfo(GgmlType Type, string Name, int BlockSize, int TypeSize)
{
    /// <summary>True for types whose elements are stored in blocks with shared scales.</summary>
    public bool IsQuantized => BlockSize > 1;

    /// <summary>Bytes needed for one row of <paramref name="elements"/> elements, or -1 if the count is not a whole number of blocks.</summary>
    public long RowBytes(long elements) => elements % BlockSize == 0 ? elements / BlockSize * TypeSize : -1;
}

/// <summary>The one table of storage facts for every ggml type (ggml's <c>type_traits</c>: block size and type size).</summary>
public static class GgmlTypes
{
    private static readonly Dictionary<GgmlType, GgmlTypeInfo> Table = new GgmlTypeInfo[]
    {
        new(GgmlType.F32, "f32", 1, 4),
        new(GgmlType.F16, "f16", 1, 2),
        new(GgmlType.Q4_0, "q4_0", 32, 18),
        new(GgmlType.Q4_1, "q4_1", 32, 20),
        new(GgmlType.Q5_0, "q5_0", 32, 22),
        new(GgmlType.Q5_1, "q5_1", 32, 24),
        new(GgmlType.Q8_0, "q8_0", 32, 34),
        new(GgmlType.Q8_1, "q8_1", 32, 36),
        new(GgmlType.Q2_K, "q2_K", 256, 84),
        new(GgmlType.Q3_K, "q3_K", 256, 110),
        new(GgmlType.Q4_K, "q4_K", 256, 144),
        new(GgmlType.Q5_K, "q5_K", 256, 176),
        new(GgmlType.Q6_K, "q6_K", 256, 210),
        new(GgmlType.Q8_K, "q8_K", 256, 292),
        new(GgmlType.IQ2_XXS, "iq2_xxs", 256, 66),
        new(GgmlType.IQ2_XS, "iq2_xs", 256, 74),
        new(GgmlType.IQ3_XXS, "iq3_xxs", 256, 98),
        new(GgmlType.IQ1_S, "iq1_s", 256, 50),
        new(GgmlType.IQ4_NL, "iq4_nl", 32, 18),
        new(GgmlType.IQ3_S, "iq3_s", 256, 110),
        new(GgmlType.IQ2_S, "iq2_s", 256, 82),
        new(GgmlType.IQ4_XS, "iq4_xs", 256, 136),
        new(GgmlType.I8, "i8", 1, 1),
        new(GgmlType.I16, "i16", 1, 2),
        new(GgmlType.I32, "i32", 1, 4),
        new(GgmlType.I64, "i64", 1, 8),
        new(GgmlType.F64, "f64", 1, 8),
        new(GgmlType.IQ1_M, "iq1_m", 256, 56),
        new(GgmlType.BF16, "bf16", 1, 2),
        new(GgmlType.TQ1_0, "tq1_0", 256, 54),
        new(GgmlType.TQ2_0, "tq2_0", 256, 66),
        new(GgmlType.MXFP4, "mxfp4", 32, 17),
        new(GgmlType.NVFP4, "nvfp4", 64, 36),
        new(GgmlType.Q1_0, "q1_0", 128, 18),
        new(GgmlType.Q2_0, "q2_0", 64, 18),
    }.ToDictionary(info => info.Type);

    /// <summary>Every known type.</summary>
    public static IEnumerable<GgmlTypeInfo> All => Table.Values;

    /// <summary>True when <paramref name="rawId"/> names a type this table knows.</summary>
    public static bool IsKnown(uint rawId) => Table.ContainsKey((GgmlType)rawId);

    /// <summary>The storage facts of <paramref name="type"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The type is not in the table.</exception>
    public static GgmlTypeInfo Get(GgmlType type) =>
        Table.TryGetValue(type, out var info) ? info : throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown ggml type id.");

    /// <summary>Looks a type up by ggml's name (case-insensitive: <c>q8_0</c>, <c>Q4_K</c>).</summary>
    public static bool TryParse(string name, out GgmlType type)
    {
        foreach (var info in Table.Values)
        {
            if (string.Equals(info.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                type = info.Type;
                return true;
            }
        }

        type = default;
        return false;
    }
}
