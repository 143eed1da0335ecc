using ExpertScope.Core;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Architectures;

/// <summary>
/// <c>granitemoe</c>: IBM Granite 3.0/3.1 MoE (granite-3.0-1b-a400m, 3b-a800m, granite-3.1 MoE) and, with
/// <c>expert_shared_feed_forward_length</c> set, the shared-expert variant (llama.cpp runs both with one graph).
/// Routing as Mixtral (softmax top-k, renormalised); what differs are four multipliers: <c>embedding_scale</c> on the
/// embedded tokens, <c>attention.scale</c> on q·k (instead of 1/sqrt(head dim)), <c>residual_scale</c> on the attention
/// and feed-forward outputs before each residual add, and the logits divided by <c>logit_scale</c>. RoPE NORM over
/// the whole head; an optional ungated shared expert is added to the routed experts.
/// </summary>
public sealed class GraniteMoe : IArchitecture
{
    /// <summary>The GGUF <c>general.architecture</c> value.</summary>
    public const string ArchitectureName = "granitemoe";

    /// <inheritdoc/>
    public string Name => ArchitectureName;

    /// <inheritdoc/>
    public string Description => "Granite MoE (softmax top-k; embedding, attention, residual and logit multipliers; optional shared expert)";

    /// <inheritdoc/>
    public ModelDefinition Build(ModelSource source, ModelLoadOptions options)
    {
        var hp = StandardParts.ReadWithExperts(source, options);
        if (source.OptionalBool("rope.scaling.finetuned") == false)
        {
            // llama.cpp's Granite graph uses this key as a switch that turns RoPE off entirely.
            throw new ExpertScopeException($"{source.FilePath}: {ArchitectureName}.rope.scaling.finetuned = false (no RoPE) is not supported.");
        }

        if (hp.RopeDimensions != hp.HeadDimension)
        {
            throw new ExpertScopeException(
                $"{source.FilePath}: {ArchitectureName}.rope.dimension_count = {hp.RopeDimensions} must equal the head size {hp.HeadDimension} (llama.cpp's Granite graph rotates whole heads).");
        }

        float logitScale = source.Number("logit_scale");
        if (logitScale == 0f)
        {
            throw new ExpertScopeException($"{source.FilePath}: {ArchitectureName}.logit_scale is 0; the logits are divided by it.");
        }

        float residualScale = (float)(source.OptionalNumber("residual_scale") ?? 0.0);
        float embeddingScale = (float)(source.OptionalNumber("embedding_scale") ?? 0.0);
        float attentionScale = (float)(source.OptionalNumber("attention.scale") ?? 0.0);
        int sharedFfn = source.OptionalInt32("expert_shared_feed_forward_length") ?? 0;

        // llama.cpp sizes Granite's experts by feed_forward_length and ignores expert_weights_scale for it.
        var router = new RouterConfig(hp.ExpertCount, hp.ExpertUsedCount, GatingFunction.Softmax, NormalizeWeights: true);
        var blocks = new DecoderBlock[hp.BlockCount];
        for (int layer = 0; layer < hp.BlockCount; layer++)
        {
            var attention = StandardParts.GroupedQueryAttention(
                source, hp, layer, RopeStyle.Normal, QkNormMode.None, options, attentionScale == 0f ? null : attentionScale);
            var shared = sharedFfn > 0
                ? StandardParts.UngatedSharedExperts(source, layer, hp.EmbeddingLength, sharedFfn)
                : null;
            var moe = StandardParts.Moe(source, layer, hp.EmbeddingLength, hp.FeedForwardLength, router, shared);
            blocks[layer] = new DecoderBlock(
                layer,
                source.Norm(StandardParts.BlockTensor(layer, "attn_norm.weight"), hp.EmbeddingLength, hp.RmsEpsilon),
                attention,
                source.Norm(StandardParts.BlockTensor(layer, "ffn_norm.weight"), hp.EmbeddingLength, hp.RmsEpsilon),
                moe,
                residualScale);
        }

        var (embedding, norm, output) = StandardParts.Head(source, hp);
        return new ModelDefinition(hp, embedding, blocks, norm, output, embeddingScale, logitScale);
    }
}
