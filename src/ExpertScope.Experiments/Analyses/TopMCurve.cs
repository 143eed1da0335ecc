namespace ExpertScope.Experiments.Analyses;

/// <summary>A token's routed experts restricted to the m highest-weighted ones.</summary>
/// <param name="Experts">The kept experts, highest weight first.</param>
/// <param name="Weights">Their weights: the original ones, or rescaled to the original total when renormalised.</param>
public sealed record TopMSelection(IReadOnlyList<int> Experts, IReadOnlyList<float> Weights);

/// <summary>One point of a top-m curve: the mean of a quality measure when only m experts are kept, in one layer.</summary>
/// <param name="Layer">The layer (or −1 for a model-wide measure such as perplexity).</param>
/// <param name="M">Experts kept.</param>
/// <param name="Mean">Mean of the values added for (layer, m).</param>
/// <param name="Count">How many values.</param>
public sealed record TopMPoint(int Layer, int M, double Mean, long Count);

/// <summary>
/// Bookkeeping for "one expert vs the mixture" curves: for m = 1 … k, a measure (cosine similarity of the
/// truncated mixture to the full one, perplexity, …) averaged per layer; plus the top-m truncation itself.
/// </summary>
public sealed class TopMCurve
{
    private readonly SortedDictionary<(int Layer, int M), (double Sum, long Count)> _points = [];

    /// <summary>
    /// Keeps the m experts with the largest weights (ties: lower rank first, i.e. input order). With
    /// <paramref name="renormalize"/>, the kept weights are scaled by Σ all / Σ kept so the mixture keeps its total
    /// mass: w'ᵢ = wᵢ · (Σⱼ∈all wⱼ) / (Σⱼ∈kept wⱼ).
    /// </summary>
    /// <param name="experts">The token's routed experts.</param>
    /// <param name="weights">Their mixing weights.</param>
    /// <param name="m">How many to keep, 1 … k.</param>
    /// <param name="renormalize">Rescale the kept weights to the original total.</param>
    /// <exception cref="ArgumentException">Lengths differ, m is outside 1 … k, or a weight is negative or not finite.</exception>
    public static TopMSelection Select(ReadOnlySpan<int> experts, ReadOnlySpan<float> weights, int m, bool renormalize)
    {
        if (experts.Length != weights.Length)
        {
            throw new ArgumentException("Experts and weights differ in length.", nameof(weights));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(m, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(m, experts.Length);
        var total = 0.0;
        foreach (var weight in weights)
        {
            if (!float.IsFinite(weight) || weight < 0)
            {
                throw new ArgumentException($"Weights must be finite and non-negative; found {weight}.", nameof(weights));
            }

            total += weight;
        }

        var weightArray = weights.ToArray();
        var order = Enumerable.Range(0, experts.Length).OrderByDescending(index => weightArray[index]).ThenBy(index => index).Take(m).ToArray();
        var kept = order.Sum(index => (double)weightArray[index]);
        var scale = renormalize && kept > 0 ? total / kept : 1.0;
        var expertArray = experts.ToArray();
        return new TopMSelection(
            [.. order.Select(index => expertArray[index])],
            [.. order.Select(index => (float)(weightArray[index] * scale))]);
    }

    /// <summary>Adds one value for (layer, m).</summary>
    /// <exception cref="ArgumentException">The value is not finite, or m is below 1.</exception>
    public void Add(int layer, int m, double value)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(m, 1);
        if (!double.IsFinite(value))
        {
            throw new ArgumentException($"Values must be finite; found {value}.", nameof(value));
        }

        _points.TryGetValue((layer, m), out var entry);
        _points[(layer, m)] = (entry.Sum + value, entry.Count + 1);
    }

    /// <summary>Every (layer, m) point, ordered by layer then m.</summary>
    public IReadOnlyList<TopMPoint> Points() =>
        [.. _points.Select(point => new TopMPoint(point.Key.Layer, point.Key.M, point.Value.Sum / point.Value.Count, point.Value.Count))];

    /// <summary>The curve of one layer, ordered by m.</summary>
    public IReadOnlyList<TopMPoint> Curve(int layer) => [.. Points().Where(point => point.Layer == layer)];
}
