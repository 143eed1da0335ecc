using MathNet.Numerics.Distributions;

namespace ExpertScope.Statistics;

/// <summary>A statistic computed from one sample, e.g. the mean or the median.</summary>
/// <param name="sample">The (re)sample; valid only during the call.</param>
/// <returns>The statistic.</returns>
public delegate double SampleStatistic(ReadOnlySpan<double> sample);

/// <summary>A bootstrap confidence interval.</summary>
/// <param name="Estimate">The statistic on the original sample.</param>
/// <param name="Lower">Lower bound.</param>
/// <param name="Upper">Upper bound.</param>
/// <param name="ConfidenceLevel">Nominal coverage, e.g. 0.95.</param>
/// <param name="Resamples">Number of bootstrap resamples.</param>
/// <param name="StandardError">Standard deviation of the bootstrap replicates.</param>
public sealed record BootstrapInterval(
    double Estimate,
    double Lower,
    double Upper,
    double ConfidenceLevel,
    int Resamples,
    double StandardError);

/// <summary>
/// Seeded nonparametric bootstrap confidence intervals. Resampling uses <see cref="Random"/> seeded with the
/// caller's seed, so the same input and seed always give the same interval.
/// </summary>
public static class Bootstrap
{
    /// <summary>The mean, as a <see cref="SampleStatistic"/>.</summary>
    public static readonly SampleStatistic Mean = Descriptive.Mean;

    /// <summary>
    /// Percentile interval: the α/2 and 1 − α/2 quantiles (R's type-7 interpolation) of the bootstrap replicates.
    /// </summary>
    /// <param name="sample">The data (at least two values).</param>
    /// <param name="statistic">The statistic to bootstrap.</param>
    /// <param name="resamples">Number of resamples (at least 100).</param>
    /// <param name="seed">Seed of the resampling generator.</param>
    /// <param name="confidenceLevel">Coverage in (0, 1).</param>
    /// <returns>The interval.</returns>
    /// <exception cref="ArgumentException">The sample is too small or non-finite, or the statistic returns a non-finite value.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Resamples or confidence level are out of range.</exception>
    public static BootstrapInterval Percentile(
        ReadOnlySpan<double> sample,
        SampleStatistic statistic,
        int resamples,
        int seed,
        double confidenceLevel = 0.95)
    {
        var (estimate, replicates) = Resample(sample, statistic, resamples, seed, confidenceLevel);
        var alpha = 1.0 - confidenceLevel;
        return new BootstrapInterval(
            estimate,
            Quantile(replicates, alpha / 2.0),
            Quantile(replicates, 1.0 - (alpha / 2.0)),
            confidenceLevel,
            resamples,
            StandardDeviation(replicates));
    }

    /// <summary>
    /// Bias-corrected and accelerated (BCa) interval (Efron 1987): percentile levels shifted by the bias
    /// z₀ = Φ⁻¹(share of replicates below the estimate) and the jackknife acceleration
    /// a = Σ(θ̄ − θ₍ᵢ₎)³ / (6 [Σ(θ̄ − θ₍ᵢ₎)²]^{3/2}).
    /// </summary>
    /// <param name="sample">The data (at least two values).</param>
    /// <param name="statistic">The statistic to bootstrap.</param>
    /// <param name="resamples">Number of resamples (at least 100).</param>
    /// <param name="seed">Seed of the resampling generator.</param>
    /// <param name="confidenceLevel">Coverage in (0, 1).</param>
    /// <returns>The interval.</returns>
    /// <exception cref="ArgumentException">
    /// The sample is too small or non-finite, the statistic returns a non-finite value, or every replicate lies on
    /// one side of the estimate (the bias correction is infinite).
    /// </exception>
    /// <exception cref="ArgumentOutOfRangeException">Resamples or confidence level are out of range.</exception>
    public static BootstrapInterval BiasCorrectedAccelerated(
        ReadOnlySpan<double> sample,
        SampleStatistic statistic,
        int resamples,
        int seed,
        double confidenceLevel = 0.95)
    {
        var (estimate, replicates) = Resample(sample, statistic, resamples, seed, confidenceLevel);

        var below = 0;
        foreach (var r in replicates)
        {
            if (r < estimate)
            {
                below++;
            }
        }

        if (below == 0 || below == replicates.Length)
        {
            throw new ArgumentException(
                "Every bootstrap replicate lies on one side of the estimate, so the BCa bias correction is infinite; use the percentile interval.",
                nameof(sample));
        }

        var bias = Normal.InvCDF(0.0, 1.0, below / (double)replicates.Length);
        var acceleration = JackknifeAcceleration(sample, statistic);
        var alpha = 1.0 - confidenceLevel;
        return new BootstrapInterval(
            estimate,
            Quantile(replicates, AdjustedLevel(alpha / 2.0, bias, acceleration)),
            Quantile(replicates, AdjustedLevel(1.0 - (alpha / 2.0), bias, acceleration)),
            confidenceLevel,
            resamples,
            StandardDeviation(replicates));
    }

    /// <summary>The type-7 sample quantile (R's default): linear interpolation between order statistics.</summary>
    /// <param name="sorted">Values sorted ascending (at least one).</param>
    /// <param name="probability">The level in [0, 1].</param>
    /// <returns>The quantile.</returns>
    public static double Quantile(ReadOnlySpan<double> sorted, double probability)
    {
        if (sorted.IsEmpty)
        {
            throw new ArgumentException("Cannot take a quantile of no values.", nameof(sorted));
        }

        Guard.Probability(probability, nameof(probability));
        var h = (sorted.Length - 1) * probability;
        var lower = (int)Math.Floor(h);
        var upper = Math.Min(lower + 1, sorted.Length - 1);
        return sorted[lower] + ((h - lower) * (sorted[upper] - sorted[lower]));
    }

    private static (double Estimate, double[] SortedReplicates) Resample(
        ReadOnlySpan<double> sample,
        SampleStatistic statistic,
        int resamples,
        int seed,
        double confidenceLevel)
    {
        ArgumentNullException.ThrowIfNull(statistic);
        Guard.Sample(sample, 2, nameof(sample));
        ArgumentOutOfRangeException.ThrowIfLessThan(resamples, 100);
        if (!(confidenceLevel > 0.0 && confidenceLevel < 1.0))
        {
            throw new ArgumentOutOfRangeException(nameof(confidenceLevel), confidenceLevel, "The confidence level must lie in (0, 1).");
        }

        var estimate = Checked(statistic(sample));
        var random = new Random(seed);
        var buffer = new double[sample.Length];
        var replicates = new double[resamples];
        for (var r = 0; r < resamples; r++)
        {
            for (var i = 0; i < buffer.Length; i++)
            {
                buffer[i] = sample[random.Next(sample.Length)];
            }

            replicates[r] = Checked(statistic(buffer));
        }

        Array.Sort(replicates);
        return (estimate, replicates);
    }

    private static double JackknifeAcceleration(ReadOnlySpan<double> sample, SampleStatistic statistic)
    {
        var n = sample.Length;
        var leaveOneOut = new double[n];
        var buffer = new double[n - 1];
        for (var i = 0; i < n; i++)
        {
            sample[..i].CopyTo(buffer);
            sample[(i + 1)..].CopyTo(buffer.AsSpan(i));
            leaveOneOut[i] = Checked(statistic(buffer));
        }

        var mean = leaveOneOut.Average();
        double squares = 0, cubes = 0;
        foreach (var value in leaveOneOut)
        {
            var d = mean - value;
            squares += d * d;
            cubes += d * d * d;
        }

        // A statistic that does not move under deletion has no skewness to correct.
        return squares == 0.0 ? 0.0 : cubes / (6.0 * Math.Pow(squares, 1.5));
    }

    private static double AdjustedLevel(double level, double bias, double acceleration)
    {
        var z = bias + Normal.InvCDF(0.0, 1.0, level);
        return Distributions.NormalCdf(bias + (z / (1.0 - (acceleration * z))));
    }

    private static double StandardDeviation(double[] values)
    {
        var mean = values.Average();
        var sum = 0.0;
        foreach (var v in values)
        {
            sum += (v - mean) * (v - mean);
        }

        return Math.Sqrt(sum / (values.Length - 1));
    }

    private static double Checked(double value) => double.IsFinite(value)
        ? value
        : throw new ArgumentException($"The statistic returned a non-finite value ({value}).", "statistic");
}
