using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Architectures;

/// <summary>
/// Builders for parts that several architectures share under llama.cpp's standard tensor names
/// (<c>blk.{i}.attn_q.weight</c>, <c>blk.{i}.ffn_gate_exps.weight</c>, ...). Architecture files say which to use.
/// </summary>
public static class StandardParts
{
    /// <summary><c>blk.{layer}.{name}</c>.</summary>
    public static string BlockTensor(int layer, string name) => $"blk.{layer}.{name}";

    /// <summary>Embedding, final norm and output head (tied to the embedding when <c>output.weight</c> is absent).</summary>
    public static (LinearWeight Embedding, RmsNorm OutputNorm, LinearWeight Output) Head(ModelSource source, ModelHyperparameters hp)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(hp);
        var embedding = source.Linear("token_embd.weight", hp.EmbeddingLength, hp.VocabularySize);
        var norm = source.Norm("output_norm.weight", hp.EmbeddingLength, hp.RmsEpsilon);
        var output = source.OptionalLinear("output.weight", hp.EmbeddingLength, hp.VocabularySize) ?? embedding;
        return (embedding, norm, output);
    }

    /// <summary>Standard grouped-query attention with optional biases and QK norm.</summary>
    /// <param name="source">The checkpoint.</param>
    /// <param name="hp">Common hyperparameters (the rotary width is <c>rope.dimension_count</c>, which may be partial).</param>
    /// <param name="layer">GGUF block index.</param>
    /// <param name="ropeStyle">Rotation pairing.</param>
    /// <param name="qkNorm">Where the q/k RMS norms apply.</param>
    /// <param name="options">Load options (cache precision, attention switches).</param>
    /// <param name="attentionScale">Multiplier of q·k; null = 1/sqrt(head dimension).</param>
    /// <param name="applyOutputBias">
    /// False where llama.cpp's graph never adds <c>attn_output.bias</c> although it loads it (ERNIE-4.5).
    /// </param>
    public static Attention GroupedQueryAttention(
        ModelSource source,
        ModelHyperparameters hp,
        int layer,
        RopeStyle ropeStyle,
        QkNormMode qkNorm,
        ModelLoadOptions options,
        float? attentionScale = null,
        bool applyOutputBias = true)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(hp);
        ArgumentNullException.ThrowIfNull(options);
        int e = hp.EmbeddingLength;
        int qWidth = hp.HeadCount * hp.HeadDimension;
        int kvWidth = hp.KvHeadCount * hp.HeadDimension;
        string T(string name) => BlockTensor(layer, name);
        var query = source.Linear(T("attn_q.weight"), e, qWidth);
        var key = source.Linear(T("attn_k.weight"), e, kvWidth);
        var value = source.Linear(T("attn_v.weight"), e, kvWidth);
        var output = source.Linear(T("attn_output.weight"), qWidth, e);
        RmsNorm? queryNorm = null;
        RmsNorm? keyNorm = null;
        if (qkNorm != QkNormMode.None)
        {
            bool perHead = qkNorm == QkNormMode.PerHead;
            queryNorm = source.Norm(T("attn_q_norm.weight"), perHead ? hp.HeadDimension : qWidth, hp.RmsEpsilon);
            keyNorm = source.Norm(T("attn_k_norm.weight"), perHead ? hp.HeadDimension : kvWidth, hp.RmsEpsilon);
        }

        var weights = new AttentionWeights(
            query,
            key,
            value,
            output,
            source.OptionalVector(T("attn_q.bias"), qWidth),
            source.OptionalVector(T("attn_k.bias"), kvWidth),
            source.OptionalVector(T("attn_v.bias"), kvWidth),
            applyOutputBias ? source.OptionalVector(T("attn_output.bias"), e) : null,
            queryNorm,
            keyNorm);
        var rope = new Rope(hp.RopeDimensions, hp.RopeBase, ropeStyle);
        var attentionOptions = new AttentionOptions(
            hp.HeadCount,
            hp.KvHeadCount,
            hp.HeadDimension,
            rope,
            attentionScale ?? 1.0f / MathF.Sqrt(hp.HeadDimension),
            qkNorm,
            options.CachePrecision,
            options.Attention);
        return new Attention(attentionOptions, weights);
    }

    /// <summary>A dense SwiGLU FFN from <c>{prefix}gate</c>, <c>{prefix}up</c>, <c>{prefix}down</c> (prefix <c>ffn_</c> or a shared-expert variant's suffix).</summary>
    public static SwiGluFfn SwiGlu(ModelSource source, int layer, int embedding, int feedForward, string suffix = "")
    {
        ArgumentNullException.ThrowIfNull(source);
        return new SwiGluFfn(
            source.Linear(BlockTensor(layer, $"ffn_gate{suffix}.weight"), embedding, feedForward),
            source.Linear(BlockTensor(layer, $"ffn_up{suffix}.weight"), embedding, feedForward),
            source.Linear(BlockTensor(layer, $"ffn_down{suffix}.weight"), feedForward, embedding));
    }

    /// <summary>The routed experts of a block (<c>ffn_{gate,up,down}_exps</c>) with the router <c>ffn_gate_inp</c>.</summary>
    public static MoeLayer Moe(
        ModelSource source,
        int layer,
        int embedding,
        int expertFeedForward,
        RouterConfig router,
        SharedExperts? shared,
        ReadOnlySpan<float> selectionBias = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(router);
        int x = router.ExpertCount;
        var gates = source.ExpertStack(BlockTensor(layer, "ffn_gate_exps.weight"), embedding, expertFeedForward, x);
        var ups = source.ExpertStack(BlockTensor(layer, "ffn_up_exps.weight"), embedding, expertFeedForward, x);
        var downs = source.ExpertStack(BlockTensor(layer, "ffn_down_exps.weight"), expertFeedForward, embedding, x);
        var experts = new ExpertWeights[x];
        for (int i = 0; i < x; i++)
        {
            experts[i] = new ExpertWeights(gates[i], ups[i], downs[i]);
        }

        return new MoeLayer(
            source.Linear(BlockTensor(layer, "ffn_gate_inp.weight"), embedding, x),
            new Router(layer, router, selectionBias),
            experts,
            shared);
    }

    /// <summary>A block with the standard norm names around the given attention and feed-forward.</summary>
    public static DecoderBlock Block(ModelSource source, ModelHyperparameters hp, int layer, IAttention attention, IFeedForward feedForward)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(hp);
        return new DecoderBlock(
            layer,
            source.Norm(BlockTensor(layer, "attn_norm.weight"), hp.EmbeddingLength, hp.RmsEpsilon),
            attention,
            source.Norm(BlockTensor(layer, "ffn_norm.weight"), hp.EmbeddingLength, hp.RmsEpsilon),
            feedForward);
    }

    /// <summary>The hyperparameters of a mixture-of-experts model, refused unless it has experts and a sensible k.</summary>
    /// <exception cref="Core.ExpertScopeException">A required key is missing, or no experts or k out of range.</exception>
    public static ModelHyperparameters ReadWithExperts(ModelSource source, ModelLoadOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        var hp = ModelHyperparameters.Read(source);
        RequireExperts(source, hp);
        return hp;
    }

    /// <summary>Ungated shared experts stored fused as one SwiGLU (<c>ffn_{gate,up,down}_shexp</c>) of the given width.</summary>
    public static SharedExperts UngatedSharedExperts(ModelSource source, int layer, int embedding, int width) =>
        new(SwiGlu(source, layer, embedding, width, "_shexp"), Gate: null);

    /// <summary>Checks that the model has experts and a sensible k.</summary>
    /// <exception cref="Core.ExpertScopeException">No experts or k out of range.</exception>
    public static void RequireExperts(ModelSource source, ModelHyperparameters hp)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(hp);
        if (hp.ExpertCount < 1 || hp.ExpertUsedCount < 1 || hp.ExpertUsedCount > hp.ExpertCount)
        {
            throw new Core.ExpertScopeException(
                $"{source.FilePath}: '{hp.Architecture}' needs expert_count > 0 and 0 < expert_used_count <= expert_count (got {hp.ExpertCount} and {hp.ExpertUsedCount}).");
        }
    }
}
