using ExpertScope.Core;

namespace ExpertScope.Models.Routing;

/// <summary>
/// A named point of the forward pass. Names are llama.cpp's graph names (<see cref="HookSite.GraphName"/>), so a
/// trace lines up with llama.cpp's eval-callback dumps.
/// </summary>
public enum HookKind
{
    /// <summary><c>attn_norm</c>: RMS-normed block input <c>[T, E]</c>.</summary>
    AttentionNorm,

    /// <summary><c>kqv_out</c>: attention heads concatenated, before the output projection <c>[T, heads*head_dim]</c>.</summary>
    AttentionHeads,

    /// <summary><c>attn_out</c>: attention output after the output projection <c>[T, E]</c>.</summary>
    AttentionOutput,

    /// <summary><c>ffn_inp</c>: residual stream after attention <c>[T, E]</c>.</summary>
    FeedForwardInput,

    /// <summary><c>ffn_norm</c>: RMS-normed input of the feed-forward part <c>[T, E]</c>.</summary>
    FeedForwardNorm,

    /// <summary><c>ffn_moe_logits</c>: router logits <c>[T, X]</c>.</summary>
    RouterLogits,

    /// <summary><c>ffn_moe_probs</c>: after the gating function <c>[T, X]</c>.</summary>
    RouterProbabilities,

    /// <summary><c>ffn_moe_probs_biased</c>: selection scores = probs + selection bias <c>[T, X]</c> (models with a bias only).</summary>
    RouterBiasedScores,

    /// <summary><c>ffn_moe_probs_masked</c>: selection scores with dropped groups at -inf <c>[T, X]</c> (group-limited routing only).</summary>
    RouterMaskedScores,

    /// <summary><c>ffn_moe_weights</c>: unbiased probabilities of the selected experts <c>[T, k]</c>.</summary>
    RouterWeights,

    /// <summary><c>ffn_moe_weights_norm</c>: weights divided by their (clamped) sum <c>[T, k]</c> (normalising routers only).</summary>
    RouterWeightsNormalized,

    /// <summary><c>ffn_moe_weights_scaled</c>: weights times the routed scale <c>[T, k]</c> (scale ≠ 1 only).</summary>
    RouterWeightsScaled,

    /// <summary>
    /// <c>ffn_moe_route</c>: the whole routing decision of a layer at once, delivered as a <see cref="RouterView"/>
    /// (selected experts — llama.cpp's <c>ffn_moe_topk</c> — groups, final weights).
    /// </summary>
    Router,

    /// <summary>
    /// <c>ffn_moe_down</c>: each selected expert's down-projection output before its mixing weight, <c>[T, k, E]</c> in
    /// selection order (slots whose weight is 0 are not computed and hold zeros). Emitted only when an observer asks.
    /// </summary>
    ExpertDownOutputs,

    /// <summary>
    /// <c>ffn_moe_weighted</c>: each selected expert's output times its mixing weight, <c>[T, k, E]</c> in selection
    /// order (its sum over k is <c>ffn_moe_out</c>).
    /// </summary>
    WeightedExpertOutputs,

    /// <summary><c>ffn_moe_out</c>: weighted sum of the routed experts' outputs <c>[T, E]</c>.</summary>
    ExpertOutput,

    /// <summary><c>ffn_shexp</c>: shared experts' output before any gate <c>[T, E]</c>.</summary>
    SharedExpert,

    /// <summary><c>ffn_shexp_gate_inp</c>: the shared-expert gate's logit <c>[T, 1]</c>.</summary>
    SharedExpertGateInput,

    /// <summary><c>ffn_shexp_gate</c>: sigmoid of the gate logit <c>[T, 1]</c>.</summary>
    SharedExpertGate,

    /// <summary><c>ffn_shexp_out</c>: gated shared-expert output <c>[T, E]</c>.</summary>
    SharedExpertOutput,

    /// <summary><c>ffn_out</c>: feed-forward output (routed + shared, or the dense FFN) <c>[T, E]</c>.</summary>
    FeedForwardOutput,

    /// <summary><c>l_out</c>: residual stream after the block <c>[T, E]</c>.</summary>
    LayerOutput,

    /// <summary><c>result_norm</c>: final RMS norm <c>[T, E]</c> (layer -1).</summary>
    ResultNorm,

    /// <summary><c>result_output</c>: logits <c>[T, V]</c> (layer -1).</summary>
    ResultOutput,

    /// <summary><c>ffn_moe_logits_biased</c>: router logits plus the router's bias <c>[T, X]</c> (gpt-oss).</summary>
    RouterBiasedLogits,

    /// <summary><c>ffn_moe_weights_softmax</c>: softmax over the selected experts' logits <c>[T, k]</c> (gpt-oss's gating).</summary>
    RouterWeightsSoftmax,
}

/// <summary>A hook site: what (<see cref="Kind"/>) at which block (<see cref="Layer"/>; -1 for the model's head).</summary>
/// <param name="Kind">The activation.</param>
/// <param name="Layer">The GGUF block index, or -1 for <see cref="HookKind.ResultNorm"/> / <see cref="HookKind.ResultOutput"/>.</param>
public readonly record struct HookSite(HookKind Kind, int Layer)
{
    /// <summary>The site's llama.cpp graph name without the layer (<c>ffn_moe_probs</c>).</summary>
    public string GraphName => Kind switch
    {
        HookKind.AttentionNorm => "attn_norm",
        HookKind.AttentionHeads => "kqv_out",
        HookKind.AttentionOutput => "attn_out",
        HookKind.FeedForwardInput => "ffn_inp",
        HookKind.FeedForwardNorm => "ffn_norm",
        HookKind.RouterLogits => "ffn_moe_logits",
        HookKind.RouterProbabilities => "ffn_moe_probs",
        HookKind.RouterBiasedScores => "ffn_moe_probs_biased",
        HookKind.RouterMaskedScores => "ffn_moe_probs_masked",
        HookKind.RouterWeights => "ffn_moe_weights",
        HookKind.RouterWeightsNormalized => "ffn_moe_weights_norm",
        HookKind.RouterWeightsScaled => "ffn_moe_weights_scaled",
        HookKind.Router => "ffn_moe_route",
        HookKind.ExpertDownOutputs => "ffn_moe_down",
        HookKind.WeightedExpertOutputs => "ffn_moe_weighted",
        HookKind.ExpertOutput => "ffn_moe_out",
        HookKind.SharedExpert => "ffn_shexp",
        HookKind.SharedExpertGateInput => "ffn_shexp_gate_inp",
        HookKind.SharedExpertGate => "ffn_shexp_gate",
        HookKind.SharedExpertOutput => "ffn_shexp_out",
        HookKind.FeedForwardOutput => "ffn_out",
        HookKind.LayerOutput => "l_out",
        HookKind.ResultNorm => "result_norm",
        HookKind.ResultOutput => "result_output",
        HookKind.RouterBiasedLogits => "ffn_moe_logits_biased",
        HookKind.RouterWeightsSoftmax => "ffn_moe_weights_softmax",
        _ => Kind.ToString(),
    };

    /// <summary>The site as llama.cpp names the tensor: <c>ffn_moe_probs-3</c>, or <c>result_norm</c> for layer -1.</summary>
    public override string ToString() =>
        Layer < 0 ? GraphName : GraphName + "-" + Layer.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The block as a typed index (throws for the head sites).</summary>
    public LayerIndex LayerIndex => Layer >= 0 ? new LayerIndex(Layer) : throw new InvalidOperationException($"{this} belongs to no block.");
}
