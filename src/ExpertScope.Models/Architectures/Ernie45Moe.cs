using ExpertScope.Core;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Architectures;

/// <summary>
/// <c>ernie4_5-moe</c>: ERNIE-4.5-21B-A3B and ERNIE-4.5-300B-A47B. Grouped-query attention with RoPE NORM (an
/// <c>attn_output.bias</c> is loaded by llama.cpp but never added, so it is ignored here too);
/// <c>leading_dense_block_count</c> dense SwiGLU blocks first, then MoE blocks every
/// <c>interleave_moe_layer_step</c> blocks. Routing as llama.cpp's graph fixes it: softmax over all experts, an optional
/// <c>exp_probs_b</c> selection bias used only to choose, top-k, weights renormalised, no <c>expert_weights_scale</c>.
/// With <c>expert_shared_feed_forward_length</c> &gt; 0 an ungated shared expert of that width is added.
/// </summary>
public sealed class Ernie45Moe : IArchitecture
{
    /// <summary>The GGUF <c>general.architecture</c> value.</summary>
    public const string ArchitectureName = "ernie4_5-moe";

    /// <inheritdoc/>
    public string Name => ArchitectureName;

    /// <inheritdoc/>
    public string Description => "ERNIE-4.5 MoE (leading dense blocks, softmax top-k with selection bias, renormalised, shared expert)";

    /// <inheritdoc/>
    public ModelDefinition Build(ModelSource source, ModelLoadOptions options)
    {
        var hp = StandardParts.ReadWithExperts(source, options);
        int expertFfn = source.Integer("expert_feed_forward_length");
        int sharedFfn = source.OptionalInt32("expert_shared_feed_forward_length") ?? 0;
        int step = source.Integer("interleave_moe_layer_step");
        int leadingDense = source.OptionalInt32("leading_dense_block_count") ?? 0;
        var (groups, groupsKept) = ExpertGroupSettings.Read(source, hp.ExpertCount);

        var blocks = new DecoderBlock[hp.BlockCount];
        for (int layer = 0; layer < hp.BlockCount; layer++)
        {
            var attention = StandardParts.GroupedQueryAttention(source, hp, layer, RopeStyle.Normal, QkNormMode.None, options, applyOutputBias: false);
            IFeedForward feedForward;
            if (layer < leadingDense)
            {
                feedForward = StandardParts.SwiGlu(source, layer, hp.EmbeddingLength, hp.FeedForwardLength);
            }
            else if ((layer + 1) % step != 0)
            {
                // llama.cpp loads MoE tensors for every block past the dense ones but runs the dense FFN here, which it
                // never loaded: such a file does not run there, so it is refused rather than guessed at.
                throw new ExpertScopeException(
                    $"{source.FilePath}: block {layer} follows the {leadingDense} leading dense blocks but is not an MoE block with {source.Architecture}.interleave_moe_layer_step = {step}; llama.cpp cannot run such a file (ERNIE-4.5 files use step 1).");
            }
            else
            {
                var router = new RouterConfig(hp.ExpertCount, hp.ExpertUsedCount, GatingFunction.Softmax, NormalizeWeights: true, WeightScale: 1f, groups, groupsKept);
                var shared = sharedFfn > 0
                    ? StandardParts.UngatedSharedExperts(source, layer, hp.EmbeddingLength, sharedFfn)
                    : null;
                var bias = source.OptionalVector(StandardParts.BlockTensor(layer, "exp_probs_b.bias"), hp.ExpertCount);
                feedForward = StandardParts.Moe(source, layer, hp.EmbeddingLength, expertFfn, router, shared, bias);
            }

            blocks[layer] = StandardParts.Block(source, hp, layer, attention, feedForward);
        }

        var (embedding, norm, output) = StandardParts.Head(source, hp);
        return new ModelDefinition(hp, embedding, blocks, norm, output);
    }
}
