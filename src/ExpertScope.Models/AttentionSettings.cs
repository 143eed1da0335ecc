using ExpertScope.Core;

namespace ExpertScope.Models;

/// <summary>
/// llama.cpp's switches that change attention numbers: the key and value cache types (<c>-ctk</c>/<c>-ctv</c>,
/// default f16) and flash attention (<c>-fa</c>, on by default on the CPU). Semantics of llama.cpp's CPU path
/// (<c>llm_graph_context::build_attn_mha</c> and ggml's CPU ops):
/// <list type="bullet">
/// <item>Flash attention on: an f32 key or value cache is cast to f16 before the kernel, so f32 gives the f16
/// numbers. The vector kernel converts the query to the key type's dot type (f16, bf16, Q8_0, ...), dots it with each
/// cached key, and runs one online softmax; values are accumulated in f16 when the value cache is f16, else in
/// float32 after dequantizing each value row. Micro-batches of 64 or more query rows with an f16 cache take the tiled
/// kernel (float32 query and accumulator).</item>
/// <item>Flash attention off: scores = key type's dot, scaled, then ggml's softmax (vector exp, double sum, float
/// reciprocal); each output value is the dot of the probabilities, converted to the value type's dot type (f16
/// rounding for an f16 cache), with the cached values, summed in double. A quantized value cache needs flash
/// attention, as in llama.cpp.</item>
/// </list>
/// </summary>
/// <param name="KeyType">Key cache type.</param>
/// <param name="ValueType">Value cache type.</param>
/// <param name="FlashAttention">Flash attention (llama.cpp's default on the CPU); false = <c>--no-flash-attn</c>.</param>
public sealed record AttentionSettings(GgmlType KeyType = GgmlType.F16, GgmlType ValueType = GgmlType.F16, bool FlashAttention = true)
{
    /// <summary>llama.cpp's defaults: f16 cache, flash attention on.</summary>
    public static AttentionSettings Default { get; } = new();

    /// <summary>The cache types llama.cpp accepts that the engine supports (llama.cpp's <c>kv_cache_types</c> less iq4_nl).</summary>
    public static IReadOnlyList<GgmlType> CacheTypes { get; } =
        [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1];

    /// <summary>True for llama.cpp's default numbers (f16 storage with flash attention, f32 included, as it is cast to f16).</summary>
    public bool IsLlamaDefault => FlashAttention && EffectiveKeyType == GgmlType.F16 && EffectiveValueType == GgmlType.F16;

    /// <summary>The key type the attention kernel sees: flash attention casts an f32 cache to f16.</summary>
    public GgmlType EffectiveKeyType => FlashAttention && KeyType == GgmlType.F32 ? GgmlType.F16 : KeyType;

    /// <summary>The value type the attention kernel sees: flash attention casts an f32 cache to f16.</summary>
    public GgmlType EffectiveValueType => FlashAttention && ValueType == GgmlType.F32 ? GgmlType.F16 : ValueType;

    /// <summary>
    /// The settings that differ from llama.cpp's defaults, as run folders record them (<c>cache_type_k</c>,
    /// <c>cache_type_v</c>, <c>flash_attn</c>): empty for the defaults, so runs made before the switches existed still
    /// resume, and any other request (even one that gives the default numbers) is kept as asked.
    /// </summary>
    public IReadOnlyDictionary<string, string> NonDefaultSettings()
    {
        var settings = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (KeyType != Default.KeyType)
        {
            settings["cache_type_k"] = GgmlTypes.Get(KeyType).Name;
        }

        if (ValueType != Default.ValueType)
        {
            settings["cache_type_v"] = GgmlTypes.Get(ValueType).Name;
        }

        if (FlashAttention != Default.FlashAttention)
        {
            settings["flash_attn"] = FlashAttention ? "on" : "off";
        }

        return settings;
    }

    /// <summary>Parses a cache type name as llama.cpp spells it (<c>f16</c>, <c>q8_0</c>, ...).</summary>
    /// <exception cref="ExpertScopeException">The name is not a supported cache type.</exception>
    public static GgmlType ParseCacheType(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (GgmlTypes.TryParse(name.Trim().ToLowerInvariant(), out var type) && CacheTypes.Contains(type))
        {
            return type;
        }

        throw new ExpertScopeException(
            $"cache type '{name}' is not supported (use {string.Join(", ", CacheTypes.Select(t => GgmlTypes.Get(t).Name))}).");
    }

    /// <summary>Checks the combination for a model whose key and value heads have the given lengths, as llama.cpp does at context creation.</summary>
    /// <exception cref="ExpertScopeException">A quantized value cache without flash attention, or a head length that is not whole blocks.</exception>
    public void Validate(int keyHeadLength, int valueHeadLength)
    {
        if (!CacheTypes.Contains(KeyType) || !CacheTypes.Contains(ValueType))
        {
            throw new ExpertScopeException($"cache types {GgmlTypes.Get(KeyType).Name}/{GgmlTypes.Get(ValueType).Name} are not supported.");
        }

        if (!FlashAttention && GgmlTypes.Get(ValueType).BlockSize > 1)
        {
            throw new ExpertScopeException(
                $"a quantized value cache ({GgmlTypes.Get(ValueType).Name}) requires flash attention, as in llama.cpp: drop --no-flash-attn or use --cache-type-v f16.");
        }

        CheckBlocks(KeyType, keyHeadLength, "key");
        CheckBlocks(ValueType, valueHeadLength, "value");

        static void CheckBlocks(GgmlType type, int headLength, string what)
        {
            int block = GgmlTypes.Get(type).BlockSize;
            if (headLength % block != 0)
            {
                throw new ExpertScopeException(
                    $"{what} cache type {GgmlTypes.Get(type).Name} has blocks of {block}, which do not divide the {what} head length {headLength}.");
            }
        }
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"cache k={GgmlTypes.Get(KeyType).Name} v={GgmlTypes.Get(ValueType).Name}, flash attention {(FlashAttention ? "on" : "off")}";
}
