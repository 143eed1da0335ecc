namespace ExpertScope.Models.Routing;

/// <summary>
/// Receives activations during a forward pass, asked first (as ggml's eval callback): <see cref="Wants"/> is
/// called for each site, and only sites it accepts are materialised and passed to <c>Observe</c>. Views are valid
/// only during the call: copy what you keep.
/// </summary>
public interface IRouterObserver
{
    /// <summary>True if this observer wants <paramref name="site"/> in this pass.</summary>
    bool Wants(HookSite site);

    /// <summary>Receives a float activation (every site except <see cref="HookKind.Router"/>).</summary>
    void Observe(HookSite site, in ActivationView view)
    {
    }

    /// <summary>Receives the routing decision of one MoE layer (site kind <see cref="HookKind.Router"/>).</summary>
    void Observe(HookSite site, in RouterView view)
    {
    }
}

/// <summary>A float activation for a batch of tokens: row-major <c>[TokenCount, Width]</c>.</summary>
public readonly ref struct ActivationView
{
    /// <summary>Creates a view.</summary>
    public ActivationView(ReadOnlySpan<float> values, int tokenCount, int width, int firstPosition)
    {
        Values = values;
        TokenCount = tokenCount;
        Width = width;
        FirstPosition = firstPosition;
    }

    /// <summary>All values, <c>[TokenCount, Width]</c>.</summary>
    public ReadOnlySpan<float> Values { get; }

    /// <summary>Tokens in the batch.</summary>
    public int TokenCount { get; }

    /// <summary>Values per token.</summary>
    public int Width { get; }

    /// <summary>Sequence position of the batch's first token (0 for a prompt, later for generated tokens).</summary>
    public int FirstPosition { get; }

    /// <summary>Token <paramref name="token"/>'s values (index within the batch).</summary>
    public ReadOnlySpan<float> Row(int token) => Values.Slice(token * Width, Width);
}

/// <summary>
/// One MoE layer's routing decision for a batch of tokens, after every intervention. Arrays are row-major by token.
/// </summary>
public readonly ref struct RouterView
{
    /// <summary>Creates a view.</summary>
    public RouterView(
        int tokenCount,
        int expertCount,
        int selectedCount,
        int firstPosition,
        ReadOnlySpan<float> logits,
        ReadOnlySpan<float> probabilities,
        ReadOnlySpan<float> selectionScores,
        ReadOnlySpan<int> selectedGroups,
        ReadOnlySpan<int> selectedExperts,
        ReadOnlySpan<float> weights)
    {
        TokenCount = tokenCount;
        ExpertCount = expertCount;
        SelectedCount = selectedCount;
        FirstPosition = firstPosition;
        Logits = logits;
        Probabilities = probabilities;
        SelectionScores = selectionScores;
        SelectedGroups = selectedGroups;
        SelectedExperts = selectedExperts;
        Weights = weights;
    }

    /// <summary>Tokens in the batch.</summary>
    public int TokenCount { get; }

    /// <summary>Routed experts in the layer (X).</summary>
    public int ExpertCount { get; }

    /// <summary>Experts selected per token (k, after interventions).</summary>
    public int SelectedCount { get; }

    /// <summary>Sequence position of the batch's first token.</summary>
    public int FirstPosition { get; }

    /// <summary>Router logits <c>[T, X]</c>, before any bias.</summary>
    public ReadOnlySpan<float> Logits { get; }

    /// <summary>
    /// After the gating function (softmax or sigmoid) <c>[T, X]</c>; mixing weights are taken from here. For gpt-oss's
    /// <see cref="GatingFunction.SoftmaxWeight"/> the softmax over every expert's biased logit (its renormalised top-k
    /// are the mixing weights).
    /// </summary>
    public ReadOnlySpan<float> Probabilities { get; }

    /// <summary>The scores experts were chosen by <c>[T, X]</c>: probabilities + selection bias, disabled experts and dropped groups at -inf.</summary>
    public ReadOnlySpan<float> SelectionScores { get; }

    /// <summary>Kept expert groups <c>[T, groupsKept]</c>, best first; empty without group-limited routing.</summary>
    public ReadOnlySpan<int> SelectedGroups { get; }

    /// <summary>Selected experts <c>[T, k]</c> (llama.cpp <c>ffn_moe_topk</c>), forced experts first, then by descending selection score.</summary>
    public ReadOnlySpan<int> SelectedExperts { get; }

    /// <summary>Final mixing weights <c>[T, k]</c>, after normalisation, scaling and weight interventions.</summary>
    public ReadOnlySpan<float> Weights { get; }

    /// <summary>Token <paramref name="token"/>'s selected experts.</summary>
    public ReadOnlySpan<int> ExpertsOf(int token) => SelectedExperts.Slice(token * SelectedCount, SelectedCount);

    /// <summary>Token <paramref name="token"/>'s mixing weights, aligned with <see cref="ExpertsOf"/>.</summary>
    public ReadOnlySpan<float> WeightsOf(int token) => Weights.Slice(token * SelectedCount, SelectedCount);
}
