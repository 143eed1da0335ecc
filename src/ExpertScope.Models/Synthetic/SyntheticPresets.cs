namespace ExpertScope.Models.Synthetic;

/// <summary>Named model shapes for <c>make-model --preset</c>: tiny ones for tests and the demo, real per-layer dimensions for benchmarks.</summary>
public static class SyntheticPresets
{
    private static readonly Dictionary<string, (string Description, SyntheticModelSpec Spec)> Presets = new(StringComparer.OrdinalIgnoreCase)
    {
        ["tiny-olmoe"] = ("olmoe: hidden 64, 3 blocks, 8 experts (top-4), QK-norm", Tiny("olmoe") with { KeyValueHeadCount = 4 }),
        ["tiny-mixtral"] = ("llama with experts: hidden 64, 3 blocks, 8 experts (top-2), GQA", Tiny("llama") with { ExpertUsedCount = 2 }),
        ["tiny-qwen2moe"] = ("qwen2moe: 8 experts (top-4) + gated shared expert", Tiny("qwen2moe") with { SharedExpertFeedForwardLength = 64, FeedForwardLength = 128 }),
        ["tiny-qwen3moe"] = ("qwen3moe: 8 experts (top-4), per-head QK-norm", Tiny("qwen3moe") with { FeedForwardLength = 128 }),
        ["tiny-phimoe"] = ("phimoe (Phi-3.5-MoE): 8 experts (top-2, renormalised), RMS norm with bias, biased attention and head, LongRoPE factors", Tiny("phimoe") with
        {
            ExpertUsedCount = 2, RopeOriginalContextLength = 128,
        }),
        ["tiny-deepseek2"] = ("deepseek2 (V2-Lite style): MLA, 1 dense block, 2 shared experts, softmax top-3", TinyDeepSeek() with
        {
            QueryLoraRank = 0, SharedExpertCount = 2, GatingFunction = 1, ExpertWeightsScale = 1f, ExpertWeightsNormalized = false,
        }),
        ["tiny-deepseek3"] = ("deepseek2 (V3 style): MLA with q compression, sigmoid, selection bias, 4 groups keep 2", TinyDeepSeek() with
        {
            QueryLoraRank = 24, SharedExpertCount = 1, GatingFunction = 2, ExpertGroupCount = 4, ExpertGroupUsedCount = 2,
            ExpertWeightsScale = 2.5f, ExpertWeightsNormalized = true, HasSelectionBias = true,
        }),
        ["tiny-deepseek"] = ("deepseek (DeepSeekMoE): multi-head attention, 1 dense block, 2 shared experts, 16 fine-grained experts, softmax top-4", Tiny("deepseek") with
        {
            KeyValueHeadCount = 4, ExpertCount = 16, FeedForwardLength = 64, LeadingDenseBlockCount = 1, SharedExpertCount = 2, RouterLogitScale = 1.5f,
        }),
        ["tiny-ernie4_5-moe"] = ("ernie4_5-moe: GQA, 1 dense block, shared expert, selection bias, softmax top-3 renormalised", Tiny("ernie4_5-moe") with
        {
            ExpertUsedCount = 3, FeedForwardLength = 64, LeadingDenseBlockCount = 1, SharedExpertFeedForwardLength = 64, HasSelectionBias = true, RouterLogitScale = 2f,
        }),
        ["tiny-glm4moe"] = ("glm4moe (GLM-4.5 style): 1 dense + 2 MoE blocks + 1 NextN block, sigmoid top-3, selection bias, 4 groups keep 2, shared expert, partial RoPE, q/k/v biases, QK norm", TinyGlm()),
        ["tiny-granitemoe"] = ("granitemoe (Granite 3.0 MoE style): 8 experts (top-3); embedding, attention, residual and logit multipliers", TinyGranite()),
        ["tiny-granitemoe-shared"] = ("granitemoe with a shared expert (Granite MoE shared style), otherwise as tiny-granitemoe", TinyGranite() with { SharedExpertFeedForwardLength = 64 }),
        ["tiny-gpt-oss"] = ("gpt-oss: 8 experts (top-4), biases, sinks, sliding window 4 on even blocks, YaRN x4", Tiny("gpt-oss") with
        {
            SlidingWindow = 4, YarnFactor = 4f,
        }),
        ["tiny-llama4"] = ("llama4: 4 blocks (MoE every 2nd, the 4th without RoPE), 8 experts (top-1) + shared expert, RoPE frequency factors", Tiny("llama4") with
        {
            BlockCount = 4, ExpertUsedCount = 1, FeedForwardLength = 64, MoeLayerStep = 2, HasRopeFrequencyFactors = true,
        }),
        ["olmoe-1b-7b-4l"] = ("OLMoE-1B-7B per-layer dimensions, 4 blocks: hidden 2048, 16 heads, 64 experts (top-8), expert FFN 1024, vocab 50304", new SyntheticModelSpec
        {
            Architecture = "olmoe", EmbeddingLength = 2048, BlockCount = 4, HeadCount = 16, KeyValueHeadCount = 16, HeadDimension = 128,
            ExpertCount = 64, ExpertUsedCount = 8, ExpertFeedForwardLength = 1024, FeedForwardLength = 1024, VocabularySize = 50304,
            ContextLength = 4096, Name = "expertscope-synthetic-olmoe-1b-7b-4l",
        }),
        ["qwen3-30b-a3b-2l"] = ("Qwen3-30B-A3B per-layer dimensions, 2 blocks: hidden 2048, 32/4 heads of 128, 128 experts (top-8), expert FFN 768, vocab 151936", new SyntheticModelSpec
        {
            Architecture = "qwen3moe", EmbeddingLength = 2048, BlockCount = 2, HeadCount = 32, KeyValueHeadCount = 4, HeadDimension = 128,
            ExpertCount = 128, ExpertUsedCount = 8, ExpertFeedForwardLength = 768, FeedForwardLength = 6144, VocabularySize = 151936,
            ContextLength = 4096, Name = "expertscope-synthetic-qwen3-30b-a3b-2l",
        }),
        ["qwen3-30b-a3b"] = ("Qwen3-30B-A3B's full dimensions, 48 blocks: hidden 2048, 32/4 heads of 128, 128 experts (top-8), expert FFN 768, vocab 151936 (30.5B weights; use --type q4_K_M, ~18 GB)", new SyntheticModelSpec
        {
            Architecture = "qwen3moe", EmbeddingLength = 2048, BlockCount = 48, HeadCount = 32, KeyValueHeadCount = 4, HeadDimension = 128,
            ExpertCount = 128, ExpertUsedCount = 8, ExpertFeedForwardLength = 768, FeedForwardLength = 6144, VocabularySize = 151936,
            ContextLength = 40960, Name = "expertscope-synthetic-qwen3-30b-a3b",
        }),
    };

    /// <summary>Preset names with a one-line description each.</summary>
    public static IEnumerable<(string Name, string Description)> All => Presets.Select(p => (p.Key, p.Value.Description));

    /// <summary>The spec of preset <paramref name="name"/>.</summary>
    /// <exception cref="Core.ExpertScopeException">Unknown preset; the message lists the known ones.</exception>
    public static SyntheticModelSpec Get(string name) =>
        Presets.TryGetValue(name, out var preset)
            ? preset.Spec with { Name = "expertscope-synthetic-" + name.ToLowerInvariant() }
            : throw new Core.ExpertScopeException($"unknown model preset '{name}'; known presets: {string.Join(", ", Presets.Keys)}");

    private static SyntheticModelSpec Tiny(string architecture) => new()
    {
        Architecture = architecture, EmbeddingLength = 64, BlockCount = 3, HeadCount = 4, KeyValueHeadCount = 2, HeadDimension = 16,
        ExpertCount = 8, ExpertUsedCount = 4, ExpertFeedForwardLength = 32, FeedForwardLength = 32, VocabularySize = 0, ContextLength = 128,
    };

    private static SyntheticModelSpec TinyGlm() => Tiny("glm4moe") with
    {
        BlockCount = 4, NextNBlockCount = 1, LeadingDenseBlockCount = 1, FeedForwardLength = 64, ExpertFeedForwardLength = 16, ExpertUsedCount = 3,
        RopeDimensionCount = 8, SharedExpertCount = 1, GatingFunction = 2, ExpertGroupCount = 4, ExpertGroupUsedCount = 2,
        ExpertWeightsScale = 2.5f, ExpertWeightsNormalized = true, HasSelectionBias = true,
    };

    // Granite 3.0 1B-A400M's multipliers, the attention one as 1/head size like its 1/64.
    private static SyntheticModelSpec TinyGranite() => Tiny("granitemoe") with
    {
        BlockCount = 2, ExpertUsedCount = 3, EmbeddingScale = 12f, AttentionScale = 0.0625f, ResidualScale = 0.22f, LogitScale = 6f,
    };

    private static SyntheticModelSpec TinyDeepSeek() => Tiny("deepseek2") with
    {
        KeyValueHeadCount = 1, ExpertUsedCount = 3, FeedForwardLength = 128, LeadingDenseBlockCount = 1, KeyValueLoraRank = 32,
        QueryKeyNopeLength = 16, QueryKeyRopeLength = 8, ValueHeadLength = 16,
    };
}
