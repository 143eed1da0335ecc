using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Architectures;

/// <summary>
/// <c>qwen3moe</c> (Qwen3-30B-A3B style). Differs from Qwen2-MoE: RMS norm on q and k per head
/// (<c>attn_q_norm</c>/<c>attn_k_norm</c> of size head_dim, before RoPE), weights renormalised, no shared expert;
/// head size from <c>attention.key_length</c> (it need not be E / heads).
/// </summary>
public sealed class Qwen3Moe : IArchitecture
{
    /// <inheritdoc/>
    public string Name => "qwen3moe";

    /// <inheritdoc/>
    public string Description => "Qwen3-MoE (per-head QK norm, softmax top-k, renormalised)";

    /// <inheritdoc/>
    public ModelDefinition Build(ModelSource source, ModelLoadOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        var hp = ModelHyperparameters.Read(source);
        StandardParts.RequireExperts(source, hp);
        int expertFfn = source.OptionalInt32("expert_feed_forward_length") ?? hp.FeedForwardLength;
        var blocks = new DecoderBlock[hp.BlockCount];
        for (int layer = 0; layer < hp.BlockCount; layer++)
        {
            var attention = StandardParts.GroupedQueryAttention(source, hp, layer, RopeStyle.Neox, QkNormMode.PerHead, options);
            var router = new RouterConfig(
                hp.ExpertCount,
                hp.ExpertUsedCount,
                GatingFunction.Softmax,
                NormalizeWeights: true,
                WeightScale: (float)(source.OptionalNumber("expert_weights_scale") ?? 1.0));
            var moe = StandardParts.Moe(source, layer, hp.EmbeddingLength, expertFfn, router, shared: null);
            blocks[layer] = StandardParts.Block(source, hp, layer, attention, moe);
        }

        var (embedding, norm, output) = StandardParts.Head(source, hp);
        return new ModelDefinition(hp, embedding, blocks, norm, output);
    }
}
