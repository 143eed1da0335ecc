using ExpertScope.Models;
using ExpertScope.Models.Routing;

namespace ExpertScope.Experiments.Pruning;

/// <summary>Negative log-likelihood of a set of token sequences: total, count of predicted tokens, and perplexity.</summary>
/// <param name="NegativeLogLikelihood">Sum of −ln p(next token) in nats.</param>
/// <param name="PredictedTokens">Tokens predicted (each sequence's length minus one).</param>
public sealed record PerplexityResult(double NegativeLogLikelihood, long PredictedTokens)
{
    /// <summary>exp(mean NLL); NaN when nothing was predicted.</summary>
    public double Perplexity => PredictedTokens == 0 ? double.NaN : Math.Exp(NegativeLogLikelihood / PredictedTokens);
}

/// <summary>Teacher-forced perplexity of a corpus of token sequences, optionally under router interventions.</summary>
public static class Perplexity
{
    /// <summary>
    /// Scores each sequence (cut to the model's context length) with <see cref="Evaluation.Perplexity.Evaluate"/> in one
    /// window and pools the negative log-likelihoods, so the corpus perplexity is exp(total NLL / predicted tokens).
    /// Sequences shorter than two tokens predict nothing and are skipped.
    /// </summary>
    public static PerplexityResult Evaluate(MoeModel model, IEnumerable<IReadOnlyList<int>> sequences, IReadOnlyList<RouterIntervention>? interventions = null, int? threads = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sequences);
        var options = new RunOptions { Interventions = interventions ?? [], ThreadCount = threads };
        double total = 0;
        long count = 0;
        foreach (var sequence in sequences)
        {
            var result = EvaluateSequence(model, sequence, options);
            total += result.NegativeLogLikelihood;
            count += result.PredictedTokens;
        }

        return new PerplexityResult(total, count);
    }

    /// <summary>
    /// One sequence's share of <see cref="Evaluate"/> (cut to the context; nothing for fewer than two tokens). Adding the
    /// shares of the sequences in order gives exactly what <see cref="Evaluate"/> gives.
    /// </summary>
    public static PerplexityResult EvaluateSequence(MoeModel model, IReadOnlyList<int> sequence, RunOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sequence);
        ArgumentNullException.ThrowIfNull(options);
        int length = Math.Min(sequence.Count, model.Hyperparameters.ContextLength);
        if (length < 2)
        {
            return new PerplexityResult(0, 0);
        }

        var result = Evaluation.Perplexity.Evaluate(model, sequence.Take(length).ToArray(), length, null, options, "corpus sequence");
        return new PerplexityResult(result.NegativeLogLikelihood, result.ScoredTokens);
    }
}
