using System.Collections.Immutable;
using System.Globalization;
using ExpertScope.Core;

namespace ExpertScope.Models.Routing;

/// <summary>Which blocks an intervention applies to.</summary>
public sealed record LayerSelector
{
    private LayerSelector(ImmutableArray<int> layers) => Layers = layers;

    /// <summary>Every block (<see cref="Layers"/> is empty).</summary>
    public static LayerSelector All { get; } = new(ImmutableArray<int>.Empty);

    /// <summary>The selected block indices; empty means all blocks.</summary>
    public ImmutableArray<int> Layers { get; }

    /// <summary>Only the given GGUF block indices.</summary>
    /// <exception cref="ArgumentException">No index, or a negative one.</exception>
    public static LayerSelector Only(params int[] layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (layers.Length == 0 || layers.Any(l => l < 0))
        {
            throw new ArgumentException("Give at least one non-negative block index.", nameof(layers));
        }

        return new LayerSelector([.. layers.Distinct().Order()]);
    }

    /// <summary>True if block <paramref name="layer"/> is selected.</summary>
    public bool Includes(int layer) => Layers.IsEmpty || Layers.Contains(layer);

    /// <inheritdoc/>
    public bool Equals(LayerSelector? other) => other is not null && Layers.SequenceEqual(other.Layers);

    /// <inheritdoc/>
    public override int GetHashCode() => Layers.Aggregate(17, (hash, layer) => hash * 31 + layer);

    /// <inheritdoc/>
    public override string ToString() =>
        Layers.IsEmpty ? "all" : string.Join(",", Layers.Select(l => l.ToString(CultureInfo.InvariantCulture)));
}

/// <summary>
/// A change to the router's decision, as data (it prints into an experiment's manifest). All interventions are
/// applied in one place, <see cref="Router.Route"/>, the same way for every architecture.
/// </summary>
/// <param name="Layers">Blocks it applies to.</param>
public abstract record RouterIntervention(LayerSelector Layers);

/// <summary>The experts can never be selected (their selection scores become -inf before group and top-k selection).</summary>
/// <param name="Layers">Blocks it applies to.</param>
/// <param name="Experts">Experts to disable.</param>
public sealed record DisableExperts(LayerSelector Layers, ImmutableArray<ExpertId> Experts) : RouterIntervention(Layers)
{
    /// <inheritdoc/>
    public bool Equals(DisableExperts? other) => other is not null && Layers.Equals(other.Layers) && Experts.SequenceEqual(other.Experts);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Layers, Experts.Length);
}

/// <summary>
/// The experts are treated as absent from the checkpoint: the gating function (softmax or sigmoid) runs over the
/// remaining experts' logits only, in their original order, so the others' probabilities are exactly those of a
/// checkpoint with these experts sliced out (<c>prune</c>). Unlike <see cref="DisableExperts"/>, whose experts still
/// take part in the softmax denominator, this changes the mixing weights of a softmax router. Probabilities of
/// removed experts read 0 and their selection scores -inf.
/// </summary>
/// <param name="Layers">Blocks it applies to.</param>
/// <param name="Experts">Experts to remove.</param>
public sealed record RemoveExperts(LayerSelector Layers, ImmutableArray<ExpertId> Experts) : RouterIntervention(Layers)
{
    /// <inheritdoc/>
    public bool Equals(RemoveExperts? other) => other is not null && Layers.Equals(other.Layers) && Experts.SequenceEqual(other.Experts);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Layers, Experts.Length);
}

/// <summary>
/// The experts are always selected: they take the first slots (best score first) and the remaining slots go to
/// the best other experts. If more experts are forced than k, k grows to their count. Their mixing weights are
/// gathered from the unbiased probabilities like any selected expert.
/// </summary>
/// <param name="Layers">Blocks it applies to.</param>
/// <param name="Experts">Experts to force.</param>
public sealed record ForceExperts(LayerSelector Layers, ImmutableArray<ExpertId> Experts) : RouterIntervention(Layers)
{
    /// <inheritdoc/>
    public bool Equals(ForceExperts? other) => other is not null && Layers.Equals(other.Layers) && Experts.SequenceEqual(other.Experts);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Layers, Experts.Length);
}

/// <summary>Selects <paramref name="TopK"/> experts per token instead of the model's <c>expert_used_count</c>.</summary>
/// <param name="Layers">Blocks it applies to.</param>
/// <param name="TopK">Experts per token (1..expert count).</param>
public sealed record OverrideTopK(LayerSelector Layers, int TopK) : RouterIntervention(Layers);

/// <summary>
/// Routing runs as usual (k experts, weights normalised and scaled over all k), then only the first-ranked expert
/// is kept, weighted as <see cref="Weight"/> says: by default its own weight unchanged (unlike <c>OverrideTopK(1)</c>,
/// a normalising router does not rescale it to 1).
/// </summary>
/// <param name="Layers">Blocks it applies to.</param>
public sealed record KeepOnlyTopExpert(LayerSelector Layers) : RouterIntervention(Layers)
{
    /// <summary>The kept expert's weight (default <see cref="TopExpertWeight.Own"/>).</summary>
    public TopExpertWeight Weight { get; init; } = TopExpertWeight.Own;
}

/// <summary>
/// Per token, the <paramref name="Count"/> experts with the best selection scores (those routing would rank first)
/// can never be selected, and the next best take their slots, weighted as usual: DeepSeekMoE's redundancy test
/// (Dai et al. 2024, arXiv 2401.06066, "disable the top routed experts"). The mask is applied with
/// <see cref="DisableExperts"/>, before group-limited selection.
/// </summary>
/// <param name="Layers">Blocks it applies to.</param>
/// <param name="Count">Top-ranked experts disabled per token (0 = none; at most the expert count minus k).</param>
public sealed record DisableTopRankedExperts(LayerSelector Layers, int Count) : RouterIntervention(Layers);

/// <summary>The weight <see cref="KeepOnlyTopExpert"/> gives the one expert it keeps.</summary>
public enum TopExpertWeight
{
    /// <summary>Its own final weight in the k-expert routing (after any normalisation and scaling).</summary>
    Own,

    /// <summary>Exactly 1, for every router (MoE Lens's single expert; no normalisation or routed scaling factor).</summary>
    One,

    /// <summary>The sum of all k final weights (the top-k's whole mass moved onto the top expert).</summary>
    Mass,
}

/// <summary>Multiplies an expert's final mixing weight by <paramref name="Factor"/> wherever it is selected (0 ablates its output).</summary>
/// <param name="Layers">Blocks it applies to.</param>
/// <param name="Expert">The expert.</param>
/// <param name="Factor">Multiplier.</param>
public sealed record ScaleExpert(LayerSelector Layers, ExpertId Expert, float Factor) : RouterIntervention(Layers);

/// <summary>
/// The shared experts of the selected blocks are skipped: the feed-forward output is the routed mixture alone
/// (<c>ffn_out</c> = <c>ffn_moe_out</c>). Routing is unchanged. Blocks without shared experts are unaffected.
/// </summary>
/// <param name="Layers">Blocks it applies to.</param>
public sealed record DisableSharedExperts(LayerSelector Layers) : RouterIntervention(Layers);
