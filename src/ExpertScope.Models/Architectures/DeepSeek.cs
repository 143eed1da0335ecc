using ExpertScope.Core;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Architectures;

/// <summary>
/// <c>deepseek</c>: DeepSeekMoE (DeepSeekMoE-16B base and chat, the deepseek-moe family). Differs from
/// <see cref="DeepSeek2"/>: plain multi-head attention with RoPE NORM over the whole head instead of latent attention,
/// and routing fixed by llama.cpp's <c>deepseek</c> graph whatever the file says: softmax over all experts, top-k,
/// weights not renormalised, times <c>expert_weights_scale</c> (0 or 1 = none). Like DeepSeek2:
/// <c>leading_dense_block_count</c> dense SwiGLU blocks first, then in every MoE block <c>expert_shared_count</c>
/// ungated shared experts, stored fused as one SwiGLU of width count · <c>expert_feed_forward_length</c>.
/// </summary>
public sealed class DeepSeek : IArchitecture
{
    /// <inheritdoc/>
    public string Name => "deepseek";

    /// <inheritdoc/>
    public string Description => "DeepSeekMoE (multi-head attention, leading dense blocks, shared + fine-grained experts, softmax top-k, not renormalised)";

    /// <inheritdoc/>
    public ModelDefinition Build(ModelSource source, ModelLoadOptions options)
    {
        var hp = StandardParts.ReadWithExperts(source, options);
        int expertFfn = source.Integer("expert_feed_forward_length");
        int sharedCount = source.OptionalInt32("expert_shared_count")
            ?? throw new ExpertScopeException($"{source.FilePath}: metadata key '{source.Architecture}.expert_shared_count' is missing (llama.cpp requires it for deepseek).");
        int leadingDense = source.OptionalInt32("leading_dense_block_count") ?? 0;
        float scale = (float)(source.OptionalNumber("expert_weights_scale") ?? 0);
        var (groups, groupsKept) = ExpertGroupSettings.Read(source, hp.ExpertCount);

        var blocks = new DecoderBlock[hp.BlockCount];
        for (int layer = 0; layer < hp.BlockCount; layer++)
        {
            var attention = StandardParts.GroupedQueryAttention(source, hp, layer, RopeStyle.Normal, QkNormMode.None, options);
            IFeedForward feedForward;
            if (layer < leadingDense)
            {
                feedForward = StandardParts.SwiGlu(source, layer, hp.EmbeddingLength, hp.FeedForwardLength);
            }
            else
            {
                var router = new RouterConfig(hp.ExpertCount, hp.ExpertUsedCount, GatingFunction.Softmax, NormalizeWeights: false, scale, groups, groupsKept);
                var shared = sharedCount > 0
                    ? StandardParts.UngatedSharedExperts(source, layer, hp.EmbeddingLength, sharedCount * expertFfn)
                    : null;
                feedForward = StandardParts.Moe(source, layer, hp.EmbeddingLength, expertFfn, router, shared);
            }

            blocks[layer] = StandardParts.Block(source, hp, layer, attention, feedForward);
        }

        var (embedding, norm, output) = StandardParts.Head(source, hp);
        return new ModelDefinition(hp, embedding, blocks, norm, output);
    }
}

/// <summary>
/// Group-limited routing as llama.cpp's <c>build_moe_ffn</c> applies it to every architecture whose file has
/// <c>expert_group_count</c> &gt; 1 (DeepSeek-V3 style: keep the <c>expert_group_used_count</c> groups whose two best
/// scores sum highest).
/// </summary>
internal static class ExpertGroupSettings
{
    /// <summary>(groups, groups kept), both 1 when the file does not ask for groups.</summary>
    /// <exception cref="ExpertScopeException">The experts cannot be split as asked.</exception>
    public static (int Groups, int Kept) Read(ModelSource source, int expertCount)
    {
        int groups = source.OptionalInt32("expert_group_count") ?? 0;
        int kept = source.OptionalInt32("expert_group_used_count") ?? 0;
        if (groups <= 1)
        {
            return (1, 1);
        }

        if (expertCount % groups != 0 || kept <= 0 || kept >= groups)
        {
            throw new ExpertScopeException(
                $"{source.FilePath}: {expertCount} experts cannot be split into {groups} groups keeping {kept} (llama.cpp needs 0 < kept < groups and equal groups).");
        }

        return (groups, kept);
    }
}
