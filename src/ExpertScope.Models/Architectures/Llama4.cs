using ExpertScope.Core;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Architectures;

/// <summary>
/// <c>llama4</c> (Llama-4-Scout-17B-16E, Llama-4-Maverick-17B-128E), as llama.cpp's <c>models/llama4.cpp</c> and
/// <c>build_moe_ffn</c> build it. Differs from Mixtral:
/// <list type="bullet">
/// <item>MoE blocks every <c>interleave_moe_layer_step</c> blocks (block i is MoE when (i + 1) is a multiple of it), dense
/// SwiGLU blocks (<c>feed_forward_length</c>) between them;</item>
/// <item>routing: sigmoid gating, experts chosen by their logits, weights not renormalised, and each weight multiplies
/// the selected expert's INPUT; an ungated shared expert of size <c>expert_feed_forward_length</c> beside them;</item>
/// <item>every fourth block (i + 1 a multiple of 4) skips RoPE and instead scales its queries by the attention
/// temperature (<see cref="AttentionTemperature"/>: floor scale 8192, scale 0.1, offset 1, all fixed by llama.cpp);</item>
/// <item>the other blocks RMS-norm every query and key head after RoPE without weights, except on 128-expert models
/// (llama.cpp keys this on its Maverick model type);</item>
/// <item>chunked local attention on the blocks of llama.cpp's sliding-window pattern
/// (<c>attention.sliding_window_pattern</c>, default 4: three chunked, one global). llama.cpp fixes the chunk at
/// 8192 positions whatever <c>attention.sliding_window</c> says; those blocks use <c>rope.freq_base_swa</c> when
/// present;</item>
/// <item>optional RoPE frequency factors (<c>rope_freqs.weight</c>, Llama 3.1-style scaling in Scout).</item>
/// </list>
/// A file with <c>attention.sliding_window</c> = 0 is refused: llama.cpp then ropes every block but the last and
/// aborts when it sets the temperature input.
/// </summary>
public sealed class Llama4 : IArchitecture
{
    /// <summary>llama.cpp's fixed chunk length (<c>n_swa</c>) for Llama 4's chunked attention.</summary>
    public const int ChunkLength = 8192;

    /// <summary>llama.cpp's fixed step of blocks without RoPE (<c>n_no_rope_layer_step</c>).</summary>
    public const int NoRopeStep = 4;

    /// <summary>llama.cpp's fixed temperature tuning of the blocks without RoPE.</summary>
    public static readonly AttentionTemperature Temperature = new(FloorScale: 8192, Scale: 0.1f, Offset: 1.0f);

    /// <inheritdoc/>
    public string Name => "llama4";

    /// <inheritdoc/>
    public string Description => "Llama 4 (interleaved MoE/dense, sigmoid top-k weighting the expert input, shared expert, chunked attention, no-RoPE blocks)";

    /// <inheritdoc/>
    public ModelDefinition Build(ModelSource source, ModelLoadOptions options)
    {
        var hp = StandardParts.ReadWithExperts(source, options);
        int expertFfn = source.Integer("expert_feed_forward_length");
        int moeStep = source.Integer("interleave_moe_layer_step");
        if (source.OptionalInt32("attention.sliding_window") == 0)
        {
            throw new ExpertScopeException(
                $"{source.FilePath}: '{Name}.attention.sliding_window' = 0 (no chunked attention) is not supported: llama.cpp aborts on such a file when it sets the attention temperature.");
        }

        if (hp.RopeDimensions != hp.HeadDimension)
        {
            throw new ExpertScopeException(
                $"{source.FilePath}: '{Name}.rope.dimension_count' = {hp.RopeDimensions} must equal the head size {hp.HeadDimension} (llama.cpp requires it for {Name}).");
        }

        int swaPattern = source.OptionalInt32("attention.sliding_window_pattern") ?? 4;
        float chunkedRopeBase = (float)(source.OptionalNumber("rope.freq_base_swa") ?? hp.RopeBase);
        var frequencyFactors = source.OptionalVector("rope_freqs.weight", hp.RopeDimensions / 2);
        bool normHeads = hp.ExpertCount != 128;
        var blocks = new DecoderBlock[hp.BlockCount];
        for (int layer = 0; layer < hp.BlockCount; layer++)
        {
            bool chunked = swaPattern == 0 || layer % swaPattern < swaPattern - 1;
            bool useRope = (layer + 1) % NoRopeStep != 0;
            var plain = StandardParts.GroupedQueryAttention(source, hp, layer, RopeStyle.Normal, QkNormMode.None, options);
            var rope = new Rope(hp.RopeDimensions, chunked ? chunkedRopeBase : hp.RopeBase, RopeStyle.Normal, frequencyFactors: frequencyFactors);
            var adjustments = new QueryKeyAdjustments(
                skipRope: !useRope,
                temperature: useRope ? null : Temperature,
                headNormEpsilon: useRope && normHeads ? hp.RmsEpsilon : null,
                hp.HeadDimension);
            var window = chunked ? new KeyWindow(KeyWindowKind.Chunked, ChunkLength) : null;
            var attention = new Attention(plain.Options with { Rope = rope, KeyWindow = window, Adjustments = adjustments }, plain.Weights);

            IFeedForward feedForward;
            if (moeStep > 0 && (layer + 1) % moeStep == 0)
            {
                var router = new RouterConfig(
                    hp.ExpertCount,
                    hp.ExpertUsedCount,
                    GatingFunction.Sigmoid,
                    NormalizeWeights: false,
                    SelectOnLogits: true,
                    WeightExpertInput: true);
                var shared = StandardParts.UngatedSharedExperts(source, layer, hp.EmbeddingLength, expertFfn);
                feedForward = StandardParts.Moe(source, layer, hp.EmbeddingLength, expertFfn, router, shared);
            }
            else
            {
                feedForward = StandardParts.SwiGlu(source, layer, hp.EmbeddingLength, hp.FeedForwardLength);
            }

            blocks[layer] = StandardParts.Block(source, hp, layer, attention, feedForward);
        }

        var (embedding, norm, output) = StandardParts.Head(source, hp);
        return new ModelDefinition(hp, embedding, blocks, norm, output);
    }
}
