using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Architectures;

/// <summary>
/// <c>olmoe</c> (OLMoE-1B-7B). Differs from Qwen3-MoE: the q/k RMS norms span the whole projection
/// (weights of size heads·head_dim) rather than each head, and weights are NOT renormalised. Expert FFN size is
/// <c>feed_forward_length</c>; RoPE NEOX.
/// </summary>
public sealed class Olmoe : IArchitecture
{
    /// <inheritdoc/>
    public string Name => "olmoe";

    /// <inheritdoc/>
    public string Description => "OLMoE (whole-projection QK norm, softmax top-k, not renormalised)";

    /// <inheritdoc/>
    public ModelDefinition Build(ModelSource source, ModelLoadOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        var hp = ModelHyperparameters.Read(source);
        StandardParts.RequireExperts(source, hp);
        var blocks = new DecoderBlock[hp.BlockCount];
        for (int layer = 0; layer < hp.BlockCount; layer++)
        {
            var attention = StandardParts.GroupedQueryAttention(source, hp, layer, RopeStyle.Neox, QkNormMode.WholeProjection, options);
            var router = new RouterConfig(
                hp.ExpertCount,
                hp.ExpertUsedCount,
                GatingFunction.Softmax,
                NormalizeWeights: false,
                WeightScale: (float)(source.OptionalNumber("expert_weights_scale") ?? 1.0));
            var moe = StandardParts.Moe(source, layer, hp.EmbeddingLength, hp.FeedForwardLength, router, shared: null);
            blocks[layer] = StandardParts.Block(source, hp, layer, attention, moe);
        }

        var (embedding, norm, output) = StandardParts.Head(source, hp);
        return new ModelDefinition(hp, embedding, blocks, norm, output);
    }
}
