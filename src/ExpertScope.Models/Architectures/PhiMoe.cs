using ExpertScope.Core;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Architectures;

/// <summary>
/// <c>phimoe</c> (Phi-3.5-MoE). llama.cpp runs it with the Phi-3 graph (<c>src/models/phi3.cpp</c>), which differs
/// from Mixtral in:
/// <list type="bullet">
/// <item>norms: RMS norm times a scale plus a bias (<c>attn_norm</c>, <c>ffn_norm</c>, <c>output_norm</c>, each with
/// <c>.bias</c>). The checkpoint was trained with LayerNorm, but llama.cpp's graph asks for <c>LLM_NORM_RMS</c>, so
/// the mean is not subtracted; ExpertScope reproduces llama.cpp.</item>
/// <item>biases on q/k/v (optional), on the attention output and on the output head.</item>
/// <item>queries multiplied by 1/sqrt(head_dim) after RoPE, then attention with scale 1.</item>
/// <item>RoPE NEOX with LongRoPE's per-pair divisors: <c>rope_factors_long</c> when the context (padded to 256 as
/// llama.cpp pads it) exceeds <c>rope.scaling.original_context_length</c>, else <c>rope_factors_short</c>; cos and
/// sin are multiplied by <c>rope.scaling.attn_factor</c>.</item>
/// </list>
/// Routing is Mixtral's: softmax over all experts, top-k, weights renormalised to sum 1 (llama.cpp's stand-in for
/// Phi-3.5's sparsemixer; docs/models.md). Expert FFN size <c>feed_forward_length</c>.
/// </summary>
public sealed class PhiMoe : IArchitecture
{
    /// <summary>llama.cpp rounds the context up to a multiple of this before choosing long or short factors.</summary>
    private const int ContextPadding = 256;

    /// <inheritdoc/>
    public string Name => "phimoe";

    /// <inheritdoc/>
    public string Description => "Phi-3.5-MoE (softmax top-k renormalised, RMS norm with bias, LongRoPE factors)";

    /// <inheritdoc/>
    public ModelDefinition Build(ModelSource source, ModelLoadOptions options)
    {
        var hp = StandardParts.ReadWithExperts(source, options);
        if (source.File.FindTensor(StandardParts.BlockTensor(0, "attn_qkv.weight")) is not null)
        {
            throw new ExpertScopeException($"{source.FilePath}: tensor 'blk.0.attn_qkv.weight' is a fused q/k/v projection, which ExpertScope does not run for 'phimoe'; convert with separate attn_q/attn_k/attn_v.");
        }

        var rope = BuildRope(source, hp);
        int e = hp.EmbeddingLength;
        float epsilon = hp.RmsEpsilon;
        RmsNorm BiasedNorm(string name) =>
            new(source.Vector(name + ".weight", e), epsilon, source.Vector(name + ".bias", e));

        var blocks = new DecoderBlock[hp.BlockCount];
        for (int layer = 0; layer < hp.BlockCount; layer++)
        {
            var attention = Attention(source, hp, layer, rope, options);
            var router = new RouterConfig(hp.ExpertCount, hp.ExpertUsedCount, GatingFunction.Softmax, NormalizeWeights: true);
            var moe = StandardParts.Moe(source, layer, e, hp.FeedForwardLength, router, shared: null);
            blocks[layer] = new DecoderBlock(
                layer,
                BiasedNorm(StandardParts.BlockTensor(layer, "attn_norm")),
                attention,
                BiasedNorm(StandardParts.BlockTensor(layer, "ffn_norm")),
                moe);
        }

        var embedding = source.Linear("token_embd.weight", e, hp.VocabularySize);
        var output = source.Linear("output.weight", e, hp.VocabularySize);
        return new ModelDefinition(hp, embedding, blocks, BiasedNorm("output_norm"), output, OutputBias: source.Vector("output.bias", hp.VocabularySize));
    }

    /// <summary>
    /// The long or short LongRoPE factors llama.cpp's <c>get_rope_factors</c> picks at the context ExpertScope runs
    /// (the model's <c>context_length</c>, llama.cpp's default <c>-c 0</c>), or null when the file has neither.
    /// </summary>
    /// <param name="contextLength">The context (before llama.cpp's padding).</param>
    /// <param name="originalContextLength"><c>rope.scaling.original_context_length</c>.</param>
    public static string FactorTensorName(int contextLength, int originalContextLength)
    {
        int padded = (contextLength + ContextPadding - 1) / ContextPadding * ContextPadding;
        return padded > originalContextLength ? "rope_factors_long.weight" : "rope_factors_short.weight";
    }

    private static Rope BuildRope(ModelSource source, ModelHyperparameters hp)
    {
        string scalingType = source.OptionalString("rope.scaling.type") ?? "linear";
        if (scalingType is not ("linear" or "none"))
        {
            throw new ExpertScopeException($"{source.FilePath}: rope.scaling.type '{scalingType}' is not supported for 'phimoe' (llama.cpp's Phi-3.5-MoE files use linear with LongRoPE factors).");
        }

        if (hp.RopeDimensions != hp.HeadDimension)
        {
            throw new ExpertScopeException($"{source.FilePath}: 'phimoe' rotates whole heads, but rope.dimension_count is {hp.RopeDimensions} and the head size {hp.HeadDimension}.");
        }

        int original = source.OptionalInt32("rope.scaling.original_context_length") ?? hp.ContextLength;
        double factor = source.OptionalNumber("rope.scaling.factor") ?? 0.0;
        float frequencyScale = scalingType == "none" || factor == 0.0 ? 1.0f : (float)(1.0 / factor);
        float attentionFactor = (float)(source.OptionalNumber("rope.scaling.attn_factor") ?? 1.0);
        var factors = source.OptionalVector(FactorTensorName(hp.ContextLength, original), hp.HeadDimension / 2);
        RopeScaling? scaling = frequencyScale == 1.0f && attentionFactor == 1.0f
            ? null
            : new RopeScaling(frequencyScale, ExtrapolationFactor: 0.0f, attentionFactor, BetaFast: 32.0f, BetaSlow: 1.0f, original);
        return new Rope(hp.RopeDimensions, hp.RopeBase, RopeStyle.Neox, scaling, factors);
    }

    private static Attention Attention(ModelSource source, ModelHyperparameters hp, int layer, Rope rope, ModelLoadOptions options)
    {
        int e = hp.EmbeddingLength;
        int qWidth = hp.HeadCount * hp.HeadDimension;
        int kvWidth = hp.KvHeadCount * hp.HeadDimension;
        string T(string name) => StandardParts.BlockTensor(layer, name);
        var weights = new AttentionWeights(
            source.Linear(T("attn_q.weight"), e, qWidth),
            source.Linear(T("attn_k.weight"), e, kvWidth),
            source.Linear(T("attn_v.weight"), e, kvWidth),
            source.Linear(T("attn_output.weight"), qWidth, e),
            source.OptionalVector(T("attn_q.bias"), qWidth),
            source.OptionalVector(T("attn_k.bias"), kvWidth),
            source.OptionalVector(T("attn_v.bias"), kvWidth),
            source.Vector(T("attn_output.bias"), e));
        var attentionOptions = new AttentionOptions(
            hp.HeadCount,
            hp.KvHeadCount,
            hp.HeadDimension,
            rope,
            Scale: 1.0f,
            QkNormMode.None,
            options.CachePrecision,
            options.Attention,
            QueryScale: 1.0f / MathF.Sqrt(hp.HeadDimension));
        return new Attention(attentionOptions, weights);
    }
}
