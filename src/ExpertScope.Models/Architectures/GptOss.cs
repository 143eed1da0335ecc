using ExpertScope.Core;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Architectures;

/// <summary>
/// <c>gpt-oss</c> (gpt-oss-20b, gpt-oss-120b; llama.cpp's <c>openai-moe.cpp</c>). Grouped-query attention with
/// q/k/v/o biases, a learned sink logit per head (<c>attn_sinks</c>), RoPE NEOX (YaRN when the file says so), and
/// sliding-window attention on the layers llama.cpp's <c>set_swa_pattern</c> marks: with the pattern p
/// (<c>attention.sliding_window_pattern</c>, default 2) layer l slides when l mod p &lt; p − 1, so even layers slide
/// and odd layers attend to everything. The router has a bias and chooses by its logits; the mixing weights are a
/// softmax over the k chosen logits (<c>LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX_WEIGHT</c>). Experts have biases and the
/// clamped SwiGLU (<c>swiglu_oai</c>). The feed-forward norm is <c>post_attention_norm</c>.
/// </summary>
public sealed class GptOss : IArchitecture
{
    /// <inheritdoc/>
    public string Name => "gpt-oss";

    /// <inheritdoc/>
    public string Description => "gpt-oss (attention sinks, alternating sliding-window attention, biased router and experts, softmax over the top-k logits, clamped SwiGLU)";

    /// <summary>Whether llama.cpp's <c>set_swa_pattern(period)</c> gives layer <paramref name="layer"/> sliding-window attention.</summary>
    public static bool IsSlidingLayer(int layer, int period) => period == 0 || layer % period < period - 1;

    /// <inheritdoc/>
    public ModelDefinition Build(ModelSource source, ModelLoadOptions options)
    {
        var hp = StandardParts.ReadWithExperts(source, options);
        int expertFeedForward = source.Integer("expert_feed_forward_length");
        int window = source.Integer("attention.sliding_window");

        int period = source.OptionalInt32("attention.sliding_window_pattern") ?? 2;
        float slidingBase = (float)(source.OptionalNumber("rope.freq_base_swa") ?? hp.RopeBase);
        var scaling = ReadRopeScaling(source, hp);
        var keyWindow = new KeyWindow(KeyWindowKind.Sliding, window);

        var blocks = new DecoderBlock[hp.BlockCount];
        for (int layer = 0; layer < hp.BlockCount; layer++)
        {
            string T(string name) => StandardParts.BlockTensor(layer, name);
            bool sliding = IsSlidingLayer(layer, period);
            var standard = StandardParts.GroupedQueryAttention(source, hp, layer, RopeStyle.Neox, QkNormMode.None, options);
            if (standard.Weights.OutputBias is null)
            {
                throw new ExpertScopeException($"{source.FilePath}: tensor '{T("attn_output.bias")}' is missing (architecture '{source.Architecture}').");
            }

            var attention = new Attention(
                standard.Options with
                {
                    Rope = new Rope(hp.RopeDimensions, sliding ? slidingBase : hp.RopeBase, RopeStyle.Neox, scaling),
                    Scale = 1.0f / MathF.Sqrt(hp.RopeDimensions),
                    KeyWindow = sliding ? keyWindow : null,
                },
                standard.Weights with { Sinks = source.Vector(T("attn_sinks.weight"), hp.HeadCount) });

            var router = new RouterConfig(hp.ExpertCount, hp.ExpertUsedCount, GatingFunction.SoftmaxWeight, NormalizeWeights: false);
            blocks[layer] = new DecoderBlock(
                layer,
                source.Norm(T("attn_norm.weight"), hp.EmbeddingLength, hp.RmsEpsilon),
                attention,
                source.Norm(T("post_attention_norm.weight"), hp.EmbeddingLength, hp.RmsEpsilon),
                Experts(source, hp, layer, expertFeedForward, router));
        }

        var (embedding, norm, output) = StandardParts.Head(source, hp);
        return new ModelDefinition(hp, embedding, blocks, norm, output);
    }

    private static MoeLayer Experts(ModelSource source, ModelHyperparameters hp, int layer, int feedForward, RouterConfig router)
    {
        string T(string name) => StandardParts.BlockTensor(layer, name);
        int e = hp.EmbeddingLength;
        int x = hp.ExpertCount;
        var gates = source.ExpertStack(T("ffn_gate_exps.weight"), e, feedForward, x);
        var ups = source.ExpertStack(T("ffn_up_exps.weight"), e, feedForward, x);
        var downs = source.ExpertStack(T("ffn_down_exps.weight"), feedForward, e, x);
        var gateBiases = source.VectorStack(T("ffn_gate_exps.bias"), feedForward, x);
        var upBiases = source.VectorStack(T("ffn_up_exps.bias"), feedForward, x);
        var downBiases = source.VectorStack(T("ffn_down_exps.bias"), e, x);
        var experts = new ExpertWeights[x];
        for (int i = 0; i < x; i++)
        {
            experts[i] = new ExpertWeights(gates[i], ups[i], downs[i], gateBiases[i], upBiases[i], downBiases[i]);
        }

        return new MoeLayer(
            source.Linear(T("ffn_gate_inp.weight"), e, x),
            new Router(layer, router, logitBias: source.Vector(T("ffn_gate_inp.bias"), x)),
            experts,
            shared: null,
            ClampedSwiGlu.GptOss);
    }

    /// <summary>
    /// RoPE scaling as llama.cpp's context setup resolves it for an architecture without a YaRN log multiplier:
    /// frequency scale 1/factor; for YaRN ext_factor 1 and attn_factor = (1 + 0.1 ln s) / (1 + 0.1 ln s) · attn_factor
    /// (ggml's rope multiplies the 1 + 0.1 ln s back in), beta_fast 32, beta_slow 1, the original context from
    /// <c>rope.scaling.original_context_length</c> (default the training context). gpt-oss files carry YaRN ×32.
    /// </summary>
    private static RopeScaling? ReadRopeScaling(ModelSource source, ModelHyperparameters hp)
    {
        string type = source.OptionalString("rope.scaling.type") ?? "linear";
        float factor = (float)(source.OptionalNumber("rope.scaling.factor") ?? 0);
        float extraFactor = (float)(source.OptionalNumber("rope.scaling.attn_factor") ?? 1);
        float frequencyScale = factor == 0f ? 1f : 1f / factor;
        int original = source.OptionalInt32("rope.scaling.original_context_length") ?? hp.ContextLength;
        switch (type.ToUpperInvariant())
        {
            case "NONE":
                return extraFactor == 1f ? null : new RopeScaling(1f, 0f, extraFactor, 32f, 1f, original);
            case "LINEAR":
                return frequencyScale == 1f && extraFactor == 1f ? null : new RopeScaling(frequencyScale, 0f, extraFactor, 32f, 1f, original);
            case "YARN":
                float s = 1f / frequencyScale;
                float magnitude = DeepSeekRopeScaling.MagnitudeScale(s, 1f);
                float attentionFactor = magnitude * (1f / (1f + (0.1f * MathF.Log(s)))) * extraFactor;
                return new RopeScaling(frequencyScale, 1f, attentionFactor, 32f, 1f, original);
            default:
                throw new ExpertScopeException($"{source.FilePath}: {source.Architecture}.rope.scaling.type '{type}' is not supported (none, linear, yarn).");
        }
    }
}
