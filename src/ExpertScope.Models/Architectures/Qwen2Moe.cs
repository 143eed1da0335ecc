using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Architectures;

/// <summary>
/// <c>qwen2moe</c> (Qwen1.5-MoE, Qwen2-MoE). Differs from Mixtral: RoPE NEOX, optional q/k/v biases, routed weights
/// NOT renormalised, plus a shared expert (<c>ffn_{gate,up,down}_shexp</c>) scaled per token by
/// <c>sigmoid(ffn_gate_inp_shexp · x)</c>. Expert FFN size <c>expert_feed_forward_length</c>
/// (default feed_forward_length / k); shared size <c>expert_shared_feed_forward_length</c> (default feed_forward_length).
/// </summary>
public sealed class Qwen2Moe : IArchitecture
{
    /// <inheritdoc/>
    public string Name => "qwen2moe";

    /// <inheritdoc/>
    public string Description => "Qwen2-MoE (softmax top-k, not renormalised, gated shared expert)";

    /// <inheritdoc/>
    public ModelDefinition Build(ModelSource source, ModelLoadOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        var hp = ModelHyperparameters.Read(source);
        StandardParts.RequireExperts(source, hp);
        int expertFfn = source.OptionalInt32("expert_feed_forward_length") ?? hp.FeedForwardLength / hp.ExpertUsedCount;
        int sharedFfn = source.OptionalInt32("expert_shared_feed_forward_length") ?? hp.FeedForwardLength;
        var blocks = new DecoderBlock[hp.BlockCount];
        for (int layer = 0; layer < hp.BlockCount; layer++)
        {
            var attention = StandardParts.GroupedQueryAttention(source, hp, layer, RopeStyle.Neox, QkNormMode.None, options);
            var router = new RouterConfig(
                hp.ExpertCount,
                hp.ExpertUsedCount,
                GatingFunction.Softmax,
                NormalizeWeights: false,
                WeightScale: (float)(source.OptionalNumber("expert_weights_scale") ?? 1.0));
            var shared = new SharedExperts(
                StandardParts.SwiGlu(source, layer, hp.EmbeddingLength, sharedFfn, "_shexp"),
                source.Linear(StandardParts.BlockTensor(layer, "ffn_gate_inp_shexp.weight"), hp.EmbeddingLength, 1));
            var moe = StandardParts.Moe(source, layer, hp.EmbeddingLength, expertFfn, router, shared);
            blocks[layer] = StandardParts.Block(source, hp, layer, attention, moe);
        }

        var (embedding, norm, output) = StandardParts.Head(source, hp);
        return new ModelDefinition(hp, embedding, blocks, norm, output);
    }
}
