namespace ExpertScope.Experiments.Analyses;

/// <summary>A token of a logit-lens readout.</summary>
/// <param name="TokenId">Vocabulary id.</param>
/// <param name="Logit">Its logit.</param>
/// <param name="Probability">softmax probability.</param>
public readonly record struct TokenProbability(int TokenId, float Logit, double Probability);

/// <summary>
/// Logit-lens helpers: read an intermediate layer's logits (hidden state through the final norm and output head)
/// as a next-token distribution p = softmax(z), computed with log-sum-exp in double precision.
/// </summary>
public static class LogitLens
{
    /// <summary>The <paramref name="count"/> most probable tokens, highest first (ties: lower id first).</summary>
    /// <exception cref="ArgumentException">The logits are invalid (see <see cref="LanguageModelScore.LogSumExp"/>).</exception>
    public static IReadOnlyList<TokenProbability> TopTokens(ReadOnlySpan<float> logits, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var normalizer = LanguageModelScore.LogSumExp(logits);
        count = Math.Min(count, logits.Length);

        // A sorted buffer of the best `count` indices: O(V · count), fine for the handful a readout shows.
        var best = new List<int>(count + 1);
        for (var index = 0; index < logits.Length; index++)
        {
            var position = best.Count;
            while (position > 0 && logits[best[position - 1]] < logits[index])
            {
                position--;
            }

            if (position < count)
            {
                best.Insert(position, index);
                if (best.Count > count)
                {
                    best.RemoveAt(count);
                }
            }
        }

        var result = new TokenProbability[best.Count];
        for (var rank = 0; rank < best.Count; rank++)
        {
            var id = best[rank];
            result[rank] = new TokenProbability(id, logits[id], Math.Exp(logits[id] - normalizer));
        }

        return result;
    }

    /// <summary>Entropy of softmax(z) in nats: H = −Σ pᵢ log pᵢ = log Σ exp(z) − Σ pᵢ zᵢ.</summary>
    /// <exception cref="ArgumentException">The logits are invalid.</exception>
    public static double EntropyNats(ReadOnlySpan<float> logits)
    {
        var normalizer = LanguageModelScore.LogSumExp(logits);
        var entropy = 0.0;
        foreach (var logit in logits)
        {
            var logP = logit - normalizer;
            if (!double.IsNegativeInfinity(logP))
            {
                entropy -= Math.Exp(logP) * logP;
            }
        }

        return Math.Max(0, entropy);
    }

    /// <summary>Entropy of softmax(z) in bits: H_nats / ln 2.</summary>
    public static double EntropyBits(ReadOnlySpan<float> logits) => EntropyNats(logits) / Math.Log(2);

    /// <summary>
    /// KL(p_layer ‖ p_final) = Σᵢ p_layer,ᵢ (log p_layer,ᵢ − log p_final,ᵢ) in nats, both from log-softmax: how far
    /// the layer's readout is from the model's final distribution. +∞ when the layer gives probability to a token the
    /// final logits rule out (−∞).
    /// </summary>
    /// <exception cref="ArgumentException">Vocabulary sizes differ, or logits are invalid.</exception>
    public static double KullbackLeibler(ReadOnlySpan<float> layerLogits, ReadOnlySpan<float> finalLogits)
    {
        if (layerLogits.Length != finalLogits.Length)
        {
            throw new ArgumentException($"Vocabulary sizes differ ({layerLogits.Length} and {finalLogits.Length}).", nameof(finalLogits));
        }

        var layerNormalizer = LanguageModelScore.LogSumExp(layerLogits);
        var finalNormalizer = LanguageModelScore.LogSumExp(finalLogits);
        var divergence = 0.0;
        for (var index = 0; index < layerLogits.Length; index++)
        {
            var logP = layerLogits[index] - layerNormalizer;
            if (double.IsNegativeInfinity(logP))
            {
                continue;
            }

            var logQ = finalLogits[index] - finalNormalizer;
            if (double.IsNegativeInfinity(logQ))
            {
                return double.PositiveInfinity;
            }

            divergence += Math.Exp(logP) * (logP - logQ);
        }

        return Math.Max(0, divergence);
    }
}
