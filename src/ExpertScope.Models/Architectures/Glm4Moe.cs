using ExpertScope.Core;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Architectures;

/// <summary>
/// <c>glm4moe</c>: GLM-4.5, GLM-4.5-Air, GLM-4.6. Routing as DeepSeek-V3 (sigmoid scores, an <c>exp_probs_b</c> bias used
/// only to choose, optional expert groups, optional renormalisation and <c>expert_weights_scale</c>) with one ungated
/// shared expert; attention is grouped-query with q/k/v biases, optional per-head QK norm and partial RoPE NEOX
/// (<c>rope.dimension_count</c> of each head rotated). The feed-forward norm is stored as <c>post_attention_norm</c>;
/// the first <c>leading_dense_block_count</c> blocks are dense. The last <c>nextn_predict_layers</c> blocks are
/// multi-token-prediction heads that llama.cpp loads but never runs; they are skipped here too.
/// </summary>
public sealed class Glm4Moe : IArchitecture
{
    /// <summary>The GGUF <c>general.architecture</c> value.</summary>
    public const string ArchitectureName = "glm4moe";

    /// <inheritdoc/>
    public string Name => ArchitectureName;

    /// <inheritdoc/>
    public string Description => "GLM-4.5/4.6 (biased sigmoid routing with groups, shared expert, partial RoPE, q/k/v biases)";

    /// <inheritdoc/>
    public ModelDefinition Build(ModelSource source, ModelLoadOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        var stored = ModelHyperparameters.Read(source);
        int nextN = source.OptionalInt32("nextn_predict_layers") ?? 0;
        if (nextN < 0 || nextN >= stored.BlockCount)
        {
            throw new ExpertScopeException(
                $"{source.FilePath}: {ArchitectureName}.nextn_predict_layers = {nextN} must be at least 0 and below block_count ({stored.BlockCount}).");
        }

        RejectMultimodalRope(source);

        // The NextN blocks sit after the decoder blocks; the decoder is block_count - nextn_predict_layers deep.
        var hp = stored with { BlockCount = stored.BlockCount - nextN };
        StandardParts.RequireExperts(source, hp);
        int expertFfn = source.Integer("expert_feed_forward_length");
        int sharedCount = source.Integer("expert_shared_count");
        int leadingDense = source.OptionalInt32("leading_dense_block_count") ?? 0;
        var router = ReadRouter(source, hp);

        var blocks = new DecoderBlock[hp.BlockCount];
        for (int layer = 0; layer < hp.BlockCount; layer++)
        {
            bool qkNorm = source.File.FindTensor(StandardParts.BlockTensor(layer, "attn_q_norm.weight")) is not null;
            var attention = StandardParts.GroupedQueryAttention(
                source, hp, layer, RopeStyle.Neox, qkNorm ? QkNormMode.PerHead : QkNormMode.None, options);
            IFeedForward feedForward;
            if (layer < leadingDense)
            {
                feedForward = StandardParts.SwiGlu(source, layer, hp.EmbeddingLength, hp.FeedForwardLength);
            }
            else
            {
                // llama.cpp always adds the shared expert in MoE blocks (hence expert_shared_count >= 1); it is not gated.
                var shared = StandardParts.UngatedSharedExperts(source, layer, hp.EmbeddingLength, sharedCount * expertFfn);
                // llama.cpp requires the selection bias in every MoE block of this architecture.
                var bias = source.Vector(StandardParts.BlockTensor(layer, "exp_probs_b.bias"), hp.ExpertCount);
                feedForward = StandardParts.Moe(source, layer, hp.EmbeddingLength, expertFfn, router, shared, bias);
            }

            var block = new DecoderBlock(
                layer,
                source.Norm(StandardParts.BlockTensor(layer, "attn_norm.weight"), hp.EmbeddingLength, hp.RmsEpsilon),
                attention,
                source.Norm(StandardParts.BlockTensor(layer, "post_attention_norm.weight"), hp.EmbeddingLength, hp.RmsEpsilon),
                feedForward);
            blocks[layer] = block;
        }

        var (embedding, norm, output) = StandardParts.Head(source, hp);
        return new ModelDefinition(hp, embedding, blocks, norm, output);
    }

    /// <summary>The router of every MoE block, from the metadata (sigmoid when <c>expert_gating_func</c> is absent).</summary>
    private static RouterConfig ReadRouter(ModelSource source, ModelHyperparameters hp)
    {
        int gatingCode = source.OptionalInt32("expert_gating_func") ?? 0;
        var gating = gatingCode switch
        {
            0 or 2 => GatingFunction.Sigmoid, // 0 = unset: llama.cpp defaults glm4moe to sigmoid
            1 => GatingFunction.Softmax,
            _ => throw new ExpertScopeException(
                $"{source.FilePath}: {ArchitectureName}.expert_gating_func = {gatingCode} is not supported (1 = softmax, 2 = sigmoid)."),
        };
        int groups = source.OptionalInt32("expert_group_count") ?? 0;
        int groupsUsed = source.OptionalInt32("expert_group_used_count") ?? 0;
        if (groups > 1 && (hp.ExpertCount % groups != 0 || groupsUsed <= 0 || groupsUsed > groups))
        {
            throw new ExpertScopeException($"{source.FilePath}: {hp.ExpertCount} experts cannot be split into {groups} groups keeping {groupsUsed}.");
        }

        return new RouterConfig(
            hp.ExpertCount,
            hp.ExpertUsedCount,
            gating,
            source.OptionalBool("expert_weights_norm") ?? false,
            (float)(source.OptionalNumber("expert_weights_scale") ?? 0.0),
            Math.Max(1, groups),
            Math.Max(1, groupsUsed));
    }

    // Files with multimodal rope sections (GLM-4.5V style) take llama.cpp's M-RoPE path, which is not implemented.
    private static void RejectMultimodalRope(ModelSource source)
    {
        if (source.File.TryGet($"{ArchitectureName}.rope.dimension_sections")?.AsArray is { } sections
            && sections.Items.Cast<object>().Any(section => Convert.ToInt64(section, System.Globalization.CultureInfo.InvariantCulture) != 0))
        {
            throw new ExpertScopeException(
                $"{source.FilePath}: {ArchitectureName}.rope.dimension_sections is set (multimodal M-RoPE); only text files with plain partial RoPE are supported.");
        }
    }
}
