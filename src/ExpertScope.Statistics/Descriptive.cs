namespace ExpertScope.Statistics;

/// <summary>Sample moments computed in two passes (mean first, then centred sums) for accuracy, as R does.</summary>
public static class Descriptive
{
    /// <summary>The arithmetic mean.</summary>
    /// <param name="values">At least one finite value.</param>
    /// <returns>Σx / n.</returns>
    public static double Mean(ReadOnlySpan<double> values)
    {
        Guard.Sample(values, 1, nameof(values));
        var sum = 0.0;
        foreach (var v in values)
        {
            sum += v;
        }

        var mean = sum / values.Length;

        // A second pass removes most of the rounding of the first (R's mean does the same).
        var residual = 0.0;
        foreach (var v in values)
        {
            residual += v - mean;
        }

        return mean + (residual / values.Length);
    }

    /// <summary>The unbiased sample variance Σ(x − x̄)² / (n − 1).</summary>
    /// <param name="values">At least two finite values.</param>
    /// <returns>The sample variance.</returns>
    public static double Variance(ReadOnlySpan<double> values)
    {
        Guard.Sample(values, 2, nameof(values));
        var mean = Mean(values);
        var sum = 0.0;
        foreach (var v in values)
        {
            var d = v - mean;
            sum += d * d;
        }

        return sum / (values.Length - 1);
    }

    /// <summary>The sample standard deviation √<see cref="Variance"/>.</summary>
    /// <param name="values">At least two finite values.</param>
    /// <returns>The sample standard deviation.</returns>
    public static double StandardDeviation(ReadOnlySpan<double> values) => Math.Sqrt(Variance(values));
}
