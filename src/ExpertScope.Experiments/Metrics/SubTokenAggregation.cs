namespace ExpertScope.Experiments.Metrics;

/// <summary>Which sub-tokens of a multi-token word stand for the word.</summary>
public enum SubTokenMode
{
    /// <summary>The word's first token.</summary>
    First,

    /// <summary>The word's last token (the first position where the whole word has been read).</summary>
    Last,

    /// <summary>
    /// All tokens, aligned: sub-token i of one word is compared with sub-token i of the other and the metric is
    /// averaged (words of unequal length: see <see cref="SubTokenAggregation.Aggregate"/>). Identical routing scores
    /// as identical (κ = 1).
    /// </summary>
    Mean,
}

/// <summary>Turns a per-token metric into a per-word metric when a word spans several tokens.</summary>
public static class SubTokenAggregation
{
    /// <summary>
    /// Applies <paramref name="metric"/> to the tokens chosen by <paramref name="mode"/>. For
    /// <see cref="SubTokenMode.Mean"/> sub-tokens are compared position by position: with L the longer word's and S
    /// the shorter word's token count it effectively computes <c>(1 / L) Σ_{i &lt; L} metric(long[i], short[⌊i·S/L⌋])</c>,
    /// which is <c>(1 / n) Σ_i metric(A[i], B[i])</c> when both words have n tokens. Every token of both words takes
    /// part, and two words with identical routing score exactly as one token against itself (averaging every
    /// pairing instead would compare sub-token 1 with sub-token 2 and score identical routing below 1).
    /// </summary>
    /// <typeparam name="T">Per-token routing data (an expert set, a distribution, …).</typeparam>
    /// <param name="first">Per-token data of the word in the first context, in token order.</param>
    /// <param name="second">Per-token data of the word in the second context.</param>
    /// <param name="mode">Which tokens to use.</param>
    /// <param name="metric">The per-token metric.</param>
    /// <exception cref="ArgumentException">A word has no tokens.</exception>
    public static double Aggregate<T>(IReadOnlyList<T> first, IReadOnlyList<T> second, SubTokenMode mode, Func<T, T, double> metric)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        ArgumentNullException.ThrowIfNull(metric);
        if (first.Count == 0 || second.Count == 0)
        {
            throw new ArgumentException("Both words need at least one token.", first.Count == 0 ? nameof(first) : nameof(second));
        }

        switch (mode)
        {
            case SubTokenMode.First:
                return metric(first[0], second[0]);
            case SubTokenMode.Last:
                return metric(first[^1], second[^1]);
            case SubTokenMode.Mean:
                var longer = Math.Max(first.Count, second.Count);
                var sum = 0.0;
                for (var i = 0; i < longer; i++)
                {
                    // Position i of the longer word; the shorter word's token at the same relative position.
                    var a = first[first.Count == longer ? i : i * first.Count / longer];
                    var b = second[second.Count == longer ? i : i * second.Count / longer];
                    sum += metric(a, b);
                }

                return sum / longer;
            default:
                throw new ArgumentOutOfRangeException(nameof(mode), mode, "Unknown sub-token mode.");
        }
    }

    /// <summary>
    /// The element-wise mean of a word's per-token router distributions, one distribution for the word (to compare
    /// with <see cref="RouterDistance.JensenShannon"/>).
    /// </summary>
    /// <exception cref="ArgumentException">No distributions, or their lengths differ.</exception>
    public static float[] MeanDistribution(IReadOnlyList<float[]> distributions)
    {
        ArgumentNullException.ThrowIfNull(distributions);
        if (distributions.Count == 0)
        {
            throw new ArgumentException("At least one distribution is needed.", nameof(distributions));
        }

        var mean = new double[distributions[0].Length];
        foreach (var distribution in distributions)
        {
            if (distribution.Length != mean.Length)
            {
                throw new ArgumentException("Distributions differ in length.", nameof(distributions));
            }

            for (var index = 0; index < mean.Length; index++)
            {
                mean[index] += distribution[index];
            }
        }

        return [.. mean.Select(value => (float)(value / distributions.Count))];
    }
}
