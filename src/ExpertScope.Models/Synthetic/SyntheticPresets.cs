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
        ["tiny-deepseek2"] = ("deepseek2 (V2-Lite style): MLA, 1 dense block, 2 shared experts, softmax top-3", TinyDeepSeek() with
        {
            QueryLoraRank = 0, SharedExpertCount = 2, GatingFunction = 1, ExpertWeightsScale = 1f, ExpertWeightsNormalized = false,
        }),
        ["tiny-deepseek3"] = ("deepseek2 (V3 style): MLA with q compression, sigmoid, selection bias, 4 groups keep 2", TinyDeepSeek() with
        {
            QueryLoraRank = 24, SharedExpertCount = 1, GatingFunction = 2, ExpertGroupCount = 4, ExpertGroupUsedCount = 2,
            ExpertWeightsScale = 2.5f, ExpertWeightsNormalized = true, HasSelectionBias = true,
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

    private static SyntheticModelSpec TinyDeepSeek() => Tiny("deepseek2") with
    {
        KeyValueHeadCount = 1, ExpertUsedCount = 3, FeedForwardLength = 128, LeadingDenseBlockCount = 1, KeyValueLoraRank = 32,
        QueryKeyNopeLength = 16, QueryKeyRopeLength = 8, ValueHeadLength = 16,
    };
}
