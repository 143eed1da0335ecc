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

/// <summary>Teacher-forced perplexity of a model on token sequences, optionally under router interventions.</summary>
public static class Perplexity
{
    /// <summary>
    /// Runs each sequence (cut to the model's context length) from position 0 and sums −ln softmax(logits)[next]
    /// (log-sum-exp in double) over every position that has a next token.
    /// </summary>
    public static PerplexityResult Evaluate(MoeModel model, IEnumerable<IReadOnlyList<int>> sequences, IReadOnlyList<RouterIntervention>? interventions = null, int? threads = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sequences);
        var options = new RunOptions { Interventions = interventions ?? [], ThreadCount = threads };
        int context = model.Hyperparameters.ContextLength;
        double total = 0;
        long count = 0;
        foreach (var sequence in sequences)
        {
            int length = Math.Min(sequence.Count, context);
            if (length < 2)
            {
                continue;
            }

            var tokens = sequence.Take(length).ToArray();
            var logits = model.Run(tokens, options);
            for (int t = 0; t + 1 < length; t++)
            {
                total += NegativeLogProbability(logits.Row(t), tokens[t + 1]);
                count++;
            }
        }

        return new PerplexityResult(total, count);
    }

    /// <summary>−ln softmax(<paramref name="logits"/>)[<paramref name="target"/>], computed in double.</summary>
    public static double NegativeLogProbability(ReadOnlySpan<float> logits, int target)
    {
        double max = double.NegativeInfinity;
        foreach (float v in logits)
        {
            max = Math.Max(max, v);
        }

        double sum = 0;
        foreach (float v in logits)
        {
            sum += Math.Exp(v - max);
        }

        return max + Math.Log(sum) - logits[target];
    }
}
