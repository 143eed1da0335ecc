using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Architectures;

/// <summary>
/// <c>llama</c> with experts (Mixtral): softmax over all experts, top-k, weights renormalised; RoPE NORM
/// (adjacent pairs: llama.cpp's converter permutes q/k for it). Without experts it is plain Llama with a dense
/// SwiGLU FFN. Tensors: <c>attn_{q,k,v,output}</c>, <c>ffn_gate_inp</c>, <c>ffn_{gate,up,down}_exps</c>
/// (or <c>ffn_{gate,up,down}</c>), norms <c>attn_norm</c>, <c>ffn_norm</c>.
/// </summary>
public sealed class Mixtral : IArchitecture
{
    /// <inheritdoc/>
    public string Name => "llama";

    /// <inheritdoc/>
    public string Description => "Llama / Mixtral (softmax top-k, renormalised)";

    /// <inheritdoc/>
    public ModelDefinition Build(ModelSource source, ModelLoadOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        var hp = ModelHyperparameters.Read(source);
        var blocks = new DecoderBlock[hp.BlockCount];
        for (int layer = 0; layer < hp.BlockCount; layer++)
        {
            var attention = StandardParts.GroupedQueryAttention(source, hp, layer, RopeStyle.Normal, QkNormMode.None, options);
            IFeedForward ffn;
            if (hp.ExpertCount > 0)
            {
                StandardParts.RequireExperts(source, hp);
                var router = new RouterConfig(
                    hp.ExpertCount,
                    hp.ExpertUsedCount,
                    GatingFunction.Softmax,
                    NormalizeWeights: true,
                    WeightScale: (float)(source.OptionalNumber("expert_weights_scale") ?? 1.0));
                ffn = StandardParts.Moe(source, layer, hp.EmbeddingLength, hp.FeedForwardLength, router, shared: null);
            }
            else
            {
                ffn = StandardParts.SwiGlu(source, layer, hp.EmbeddingLength, hp.FeedForwardLength);
            }

            blocks[layer] = StandardParts.Block(source, hp, layer, attention, ffn);
        }

        var (embedding, norm, output) = StandardParts.Head(source, hp);
        return new ModelDefinition(hp, embedding, blocks, norm, output);
    }
}
