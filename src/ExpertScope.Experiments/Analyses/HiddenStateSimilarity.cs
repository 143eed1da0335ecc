namespace ExpertScope.Experiments.Analyses;

/// <summary>
/// Cosine similarity between hidden states, for comparing the output of one (or the top m) experts with the full
/// mixture: cos(x, y) = Σ xᵢyᵢ / (‖x‖ ‖y‖), accumulated in double precision.
/// </summary>
public static class HiddenStateSimilarity
{
    /// <summary>cos(x, y) = x·y / (‖x‖ ‖y‖), in [−1, 1].</summary>
    /// <exception cref="ArgumentException">Lengths differ, a vector is empty or zero, or holds a non-finite value.</exception>
    public static double Cosine(ReadOnlySpan<float> first, ReadOnlySpan<float> second)
    {
        if (first.Length != second.Length || first.IsEmpty)
        {
            throw new ArgumentException($"Vectors must be non-empty and of one length ({first.Length} and {second.Length}).", nameof(second));
        }

        double dot = 0, firstNorm = 0, secondNorm = 0;
        for (var index = 0; index < first.Length; index++)
        {
            double x = first[index], y = second[index];
            dot += x * y;
            firstNorm += x * x;
            secondNorm += y * y;
        }

        if (!double.IsFinite(dot + firstNorm + secondNorm))
        {
            throw new ArgumentException("A hidden state holds a non-finite value.", nameof(first));
        }

        if (firstNorm == 0 || secondNorm == 0)
        {
            throw new ArgumentException("A zero vector has no direction, so its cosine similarity is undefined.", firstNorm == 0 ? nameof(first) : nameof(second));
        }

        // Rounding can push |cos| a hair past 1 for parallel vectors.
        return Math.Clamp(dot / Math.Sqrt(firstNorm * secondNorm), -1, 1);
    }

    /// <summary>The cosine of each token's row: both inputs are [tokens, dimension] row-major.</summary>
    /// <exception cref="ArgumentException">Lengths differ or are not a multiple of <paramref name="dimension"/>, or a row is zero.</exception>
    public static double[] PerToken(ReadOnlySpan<float> first, ReadOnlySpan<float> second, int dimension)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        if (first.Length != second.Length || first.Length % dimension != 0)
        {
            throw new ArgumentException($"Both inputs must hold whole rows of {dimension} values and match in length ({first.Length}, {second.Length}).", nameof(second));
        }

        var result = new double[first.Length / dimension];
        for (var row = 0; row < result.Length; row++)
        {
            result[row] = Cosine(first.Slice(row * dimension, dimension), second.Slice(row * dimension, dimension));
        }

        return result;
    }
}

/// <summary>Running mean of a per-token value (cosine similarity, say) for each layer: mean_l = Σ values / n_l.</summary>
public sealed class LayerMeans
{
    private readonly SortedDictionary<int, (double Sum, long Count)> _layers = [];

    /// <summary>The layers with at least one value, ascending.</summary>
    public IReadOnlyList<int> Layers => [.. _layers.Keys];

    /// <summary>Adds one value to a layer.</summary>
    /// <exception cref="ArgumentException">The value is not finite.</exception>
    public void Add(int layer, double value)
    {
        if (!double.IsFinite(value))
        {
            throw new ArgumentException($"Values must be finite; found {value}.", nameof(value));
        }

        _layers.TryGetValue(layer, out var entry);
        _layers[layer] = (entry.Sum + value, entry.Count + 1);
    }

    /// <summary>Adds the cosine similarity of two hidden states to a layer.</summary>
    public void AddCosine(int layer, ReadOnlySpan<float> first, ReadOnlySpan<float> second) =>
        Add(layer, HiddenStateSimilarity.Cosine(first, second));

    /// <summary>The number of values of a layer (0 when none).</summary>
    public long Count(int layer) => _layers.TryGetValue(layer, out var entry) ? entry.Count : 0;

    /// <summary>The mean of a layer's values.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The layer has no values.</exception>
    public double Mean(int layer) =>
        _layers.TryGetValue(layer, out var entry)
            ? entry.Sum / entry.Count
            : throw new ArgumentOutOfRangeException(nameof(layer), layer, "No values for this layer.");
}
