using ExpertScope.Core;

namespace ExpertScope.Models.Synthetic;

/// <summary>
/// The shape of a seeded random-weight model: a real architecture's metadata and tensor layout with chosen
/// dimensions. Random weights carry no meaning; these models exist so that tests, the main job and benchmarks
/// run on files the project writes itself.
/// </summary>
public sealed record SyntheticModelSpec
{
    /// <summary>GGUF <c>general.architecture</c>: <c>llama</c>, <c>qwen2moe</c>, <c>qwen3moe</c>, <c>olmoe</c>, <c>deepseek2</c>, <c>deepseek</c>, <c>ernie4_5-moe</c>, <c>glm4moe</c>, <c>granitemoe</c>, <c>phimoe</c>, <c>gpt-oss</c> or <c>llama4</c>.</summary>
    public required string Architecture { get; init; }

    /// <summary>Hidden size (<c>embedding_length</c>).</summary>
    public required int EmbeddingLength { get; init; }

    /// <summary>Number of blocks.</summary>
    public required int BlockCount { get; init; }

    /// <summary>Query heads.</summary>
    public required int HeadCount { get; init; }

    /// <summary>Key/value heads (GQA when smaller than <see cref="HeadCount"/>).</summary>
    public required int KeyValueHeadCount { get; init; }

    /// <summary>Per-head dimension of q, k and v (ignored by MLA, which has its own lengths).</summary>
    public required int HeadDimension { get; init; }

    /// <summary>Routed experts per MoE block.</summary>
    public required int ExpertCount { get; init; }

    /// <summary>Experts chosen per token (k).</summary>
    public required int ExpertUsedCount { get; init; }

    /// <summary>Hidden size of one routed expert's SwiGLU.</summary>
    public required int ExpertFeedForwardLength { get; init; }

    /// <summary>Hidden size of dense feed-forward blocks (DeepSeek and ERNIE leading blocks) and the GGUF <c>feed_forward_length</c>.</summary>
    public int FeedForwardLength { get; init; }

    /// <summary>Shared experts (DeepSeek: count of shared experts, each <see cref="ExpertFeedForwardLength"/> wide; Qwen2-MoE: one shared expert of <see cref="SharedExpertFeedForwardLength"/>).</summary>
    public int SharedExpertCount { get; init; }

    /// <summary>Qwen2-MoE's and ERNIE-4.5's shared expert width (<c>expert_shared_feed_forward_length</c>; ERNIE: 0 = none).</summary>
    public int SharedExpertFeedForwardLength { get; init; }

    /// <summary>DeepSeek and ERNIE-4.5: leading dense blocks.</summary>
    public int LeadingDenseBlockCount { get; init; }

    /// <summary>Llama 4: block i has experts when (i + 1) is a multiple of this (<c>interleave_moe_layer_step</c>), else a dense FFN.</summary>
    public int MoeLayerStep { get; init; }

    /// <summary>Llama 4: whether the file carries RoPE frequency factors (<c>rope_freqs.weight</c>, drawn from [1, 3)).</summary>
    public bool HasRopeFrequencyFactors { get; init; }

    /// <summary>Vocabulary size; learned merges are padded with unused tokens up to this size.</summary>
    public required int VocabularySize { get; init; }

    /// <summary>Context length written to the metadata.</summary>
    public int ContextLength { get; init; } = 256;

    /// <summary>
    /// Phi-3.5-MoE: <c>rope.scaling.original_context_length</c>, the context above which llama.cpp takes
    /// <c>rope_factors_long</c> instead of <c>rope_factors_short</c> (0 = not written, so the context length).
    /// </summary>
    public int RopeOriginalContextLength { get; init; }

    /// <summary>DeepSeek MLA: query compression rank (0 = no compression).</summary>
    public int QueryLoraRank { get; init; }

    /// <summary>DeepSeek MLA: compressed KV rank.</summary>
    public int KeyValueLoraRank { get; init; }

    /// <summary>DeepSeek MLA: non-rotary part of the query/key head.</summary>
    public int QueryKeyNopeLength { get; init; }

    /// <summary>DeepSeek MLA: rotary part of the query/key head (<c>rope.dimension_count</c>).</summary>
    public int QueryKeyRopeLength { get; init; }

    /// <summary>DeepSeek MLA: value head length.</summary>
    public int ValueHeadLength { get; init; }

    /// <summary>DeepSeek: 1 softmax, 2 sigmoid (<c>expert_gating_func</c>).</summary>
    public int GatingFunction { get; init; } = 1;

    /// <summary>DeepSeek V3: expert groups (0 = no group-limited routing).</summary>
    public int ExpertGroupCount { get; init; }

    /// <summary>DeepSeek V3: groups kept per token.</summary>
    public int ExpertGroupUsedCount { get; init; }

    /// <summary>DeepSeek: <c>expert_weights_scale</c>.</summary>
    public float ExpertWeightsScale { get; init; } = 1f;

    /// <summary>DeepSeek: <c>expert_weights_norm</c>.</summary>
    public bool ExpertWeightsNormalized { get; init; }

    /// <summary>DeepSeek V3 and ERNIE-4.5: whether blocks carry the <c>exp_probs_b</c> selection bias.</summary>
    public bool HasSelectionBias { get; init; }

    /// <summary>
    /// Spread of the router weights: the router logits of a unit-variance input have about this standard deviation.
    /// 4 makes 8-expert routing decisive; with many fine-grained experts a smaller value keeps several experts in play.
    /// </summary>
    public float RouterLogitScale { get; init; } = 4f;

    /// <summary>gpt-oss: <c>attention.sliding_window</c> of the sliding (even) layers.</summary>
    public int SlidingWindow { get; init; } = 128;

    /// <summary>gpt-oss: YaRN factor written as <c>rope.scaling.factor</c> (0 = no <c>rope.scaling</c> keys).</summary>
    public float YarnFactor { get; init; }

    /// <summary>Storage type of the routed expert tensors (<c>*_exps</c>).</summary>
    public GgmlType ExpertTensorType { get; init; } = GgmlType.F32;

    /// <summary>Storage type of every other matrix (norms, router and biases stay F32 as converters write them).</summary>
    public GgmlType DenseTensorType { get; init; } = GgmlType.F32;

    /// <summary>GLM: rotated values per head (<c>rope.dimension_count</c>; 0 = the whole head, key not written).</summary>
    public int RopeDimensionCount { get; init; }

    /// <summary>GLM: NextN (multi-token prediction) blocks at the end of <see cref="BlockCount"/> (<c>nextn_predict_layers</c>).</summary>
    public int NextNBlockCount { get; init; }

    /// <summary>Granite: <c>embedding_scale</c> (0 = key not written).</summary>
    public float EmbeddingScale { get; init; }

    /// <summary>Granite: <c>attention.scale</c> (0 = key not written).</summary>
    public float AttentionScale { get; init; }

    /// <summary>Granite: <c>residual_scale</c> (0 = key not written).</summary>
    public float ResidualScale { get; init; }

    /// <summary>Granite: <c>logit_scale</c> (required by llama.cpp for Granite).</summary>
    public float LogitScale { get; init; } = 1f;

    /// <summary>Seed of the weights.</summary>
    public ulong Seed { get; init; } = 20261124;

    /// <summary>A short description for <c>general.name</c>.</summary>
    public string Name { get; init; } = "expertscope-synthetic";

    /// <summary>True when block <paramref name="block"/> has experts (past the leading dense blocks, and on the MoE step when there is one).</summary>
    public bool IsMoeBlock(int block) => block >= LeadingDenseBlockCount && (MoeLayerStep <= 0 || (block + 1) % MoeLayerStep == 0);
}
