namespace ExpertScope.Experiments.Analyses;

/// <summary>
/// Next-token log-probabilities, negative log-likelihood and perplexity from raw logits, in double precision with
/// the max-shift log-sum-exp: log softmax(z)ᵢ = zᵢ − (M + log Σⱼ exp(zⱼ − M)), M = maxⱼ zⱼ, which never overflows.
/// </summary>
public static class LanguageModelScore
{
    /// <summary>log Σⱼ exp(zⱼ) computed as M + log Σⱼ exp(zⱼ − M).</summary>
    /// <exception cref="ArgumentException">The logits are empty or hold NaN or +∞ (−∞ entries are allowed: probability 0).</exception>
    public static double LogSumExp(ReadOnlySpan<float> logits)
    {
        if (logits.IsEmpty)
        {
            throw new ArgumentException("The logits are empty.", nameof(logits));
        }

        var max = double.NegativeInfinity;
        foreach (var logit in logits)
        {
            if (float.IsNaN(logit) || float.IsPositiveInfinity(logit))
            {
                throw new ArgumentException($"Logits must not be NaN or +infinity; found {logit}.", nameof(logits));
            }

            max = Math.Max(max, logit);
        }

        if (double.IsNegativeInfinity(max))
        {
            throw new ArgumentException("Every logit is -infinity, so no token has probability.", nameof(logits));
        }

        var sum = 0.0;
        foreach (var logit in logits)
        {
            sum += Math.Exp(logit - max);
        }

        return max + Math.Log(sum);
    }

    /// <summary>Writes log softmax(z) into <paramref name="destination"/> (natural log).</summary>
    /// <exception cref="ArgumentException">The destination is shorter than the logits, or the logits are invalid (see <see cref="LogSumExp"/>).</exception>
    public static void LogSoftmax(ReadOnlySpan<float> logits, Span<double> destination)
    {
        if (destination.Length < logits.Length)
        {
            throw new ArgumentException("The destination is shorter than the logits.", nameof(destination));
        }

        var normalizer = LogSumExp(logits);
        for (var index = 0; index < logits.Length; index++)
        {
            destination[index] = logits[index] - normalizer;
        }
    }

    /// <summary>−log p(target) = log Σⱼ exp(zⱼ) − z_target, in nats.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The target is outside the vocabulary.</exception>
    public static double NegativeLogLikelihood(ReadOnlySpan<float> logits, int target)
    {
        if ((uint)target >= (uint)logits.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(target), target, $"The target is outside the vocabulary of {logits.Length}.");
        }

        return LogSumExp(logits) - logits[target];
    }

    /// <summary>
    /// Perplexity exp((1/T) Σₜ −log p(targetₜ)) of <paramref name="targets"/> under the logits rows
    /// ([T, vocabulary] row-major; row t predicts targets[t]).
    /// </summary>
    /// <exception cref="ArgumentException">The logits are not T whole rows, or there are no targets.</exception>
    public static double Perplexity(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, int vocabulary)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabulary, 1);
        if (targets.IsEmpty || logits.Length != targets.Length * vocabulary)
        {
            throw new ArgumentException($"Expected {targets.Length} rows of {vocabulary} logits and at least one target; got {logits.Length} logits.", nameof(logits));
        }

        var accumulator = new PerplexityAccumulator();
        for (var row = 0; row < targets.Length; row++)
        {
            accumulator.Add(logits.Slice(row * vocabulary, vocabulary), targets[row]);
        }

        return accumulator.Perplexity;
    }
}

/// <summary>Accumulates negative log-likelihoods token by token; perplexity = exp(mean NLL).</summary>
public sealed class PerplexityAccumulator
{
    private double _sum;

    /// <summary>Tokens scored so far.</summary>
    public long Count { get; private set; }

    /// <summary>Mean negative log-likelihood in nats.</summary>
    /// <exception cref="InvalidOperationException">Nothing was added.</exception>
    public double MeanNegativeLogLikelihood => Count > 0 ? _sum / Count : throw new InvalidOperationException("No tokens were scored.");

    /// <summary>exp(mean NLL).</summary>
    /// <exception cref="InvalidOperationException">Nothing was added.</exception>
    public double Perplexity => Math.Exp(MeanNegativeLogLikelihood);

    /// <summary>Scores one prediction.</summary>
    public void Add(ReadOnlySpan<float> logits, int target) => AddNegativeLogLikelihood(LanguageModelScore.NegativeLogLikelihood(logits, target));

    /// <summary>Adds an NLL computed elsewhere (nats, non-negative up to rounding).</summary>
    /// <exception cref="ArgumentException">The value is NaN or negative beyond rounding.</exception>
    public void AddNegativeLogLikelihood(double negativeLogLikelihood)
    {
        if (!(negativeLogLikelihood >= -1e-9))
        {
            throw new ArgumentException($"A negative log-likelihood must be non-negative; found {negativeLogLikelihood}.", nameof(negativeLogLikelihood));
        }

        _sum += Math.Max(0, negativeLogLikelihood);
        Count++;
    }
}
