using ExpertScope.Core;
using ExpertScope.Models;

namespace ExpertScope.Experiments.Evaluation;

/// <summary>The result of a perplexity evaluation.</summary>
/// <param name="Value">exp(mean negative log-likelihood) over the scored tokens.</param>
/// <param name="NegativeLogLikelihood">Sum of -ln p(token | prefix) over the scored tokens (natural log).</param>
/// <param name="ScoredTokens">Tokens whose probability was scored.</param>
/// <param name="TotalTokens">Tokens of the text, BOS included.</param>
/// <param name="Windows">Forward passes (windows) run.</param>
public sealed record PerplexityResult(double Value, double NegativeLogLikelihood, int ScoredTokens, int TotalTokens, int Windows);

/// <summary>
/// Perplexity of a token sequence under a model, exactly as the model's logits give it.
/// </summary>
/// <remarks>
/// A sequence that fits in the window (<c>context</c> tokens) is run once and every token after the first (the BOS)
/// is scored given all tokens before it. A longer sequence is scored in windows, as Hugging Face's strided perplexity:
/// window <c>w</c> covers tokens <c>[w·stride, w·stride + context)</c> (the last one cut at the end of the text) and
/// scores only the tokens no earlier window scored, each given the tokens before it in its window, so every token
/// of a later window has at least <c>context − stride</c> tokens of left context. A window's first token has no left
/// context in that window, so it is never scored; with <c>stride = context</c> those tokens are skipped.
/// Windows after the first start mid-text, without a BOS.
/// </remarks>
public static class Perplexity
{
    /// <summary>Scores <paramref name="tokens"/>.</summary>
    /// <param name="model">The model.</param>
    /// <param name="tokens">The tokens, BOS included as the vocabulary asks (at least two).</param>
    /// <param name="context">Window length (at most the model's context).</param>
    /// <param name="stride">Window step (1..<paramref name="context"/>); required when <paramref name="tokens"/> is longer than <paramref name="context"/>.</param>
    /// <param name="run">Interventions and threads used for every window (observers and logits selection are replaced).</param>
    /// <param name="source">What the tokens came from, named in errors.</param>
    /// <param name="cancellationToken">Stops between windows.</param>
    /// <exception cref="ExpertScopeException">Too few tokens, a window longer than the model's context, a bad stride, or a long text without a stride.</exception>
    public static PerplexityResult Evaluate(
        MoeModel model, IReadOnlyList<int> tokens, int context, int? stride, RunOptions? run, string source, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokens);
        int modelContext = model.Hyperparameters.ContextLength;
        if (context < 2 || context > modelContext)
        {
            throw new ExpertScopeException($"The window length {context} must be between 2 and the model's context of {modelContext} tokens.");
        }

        if (tokens.Count < 2)
        {
            throw new ExpertScopeException($"{source}: {tokens.Count} token(s); perplexity needs at least two (a token to predict after the first).");
        }

        if (stride is { } s && (s < 1 || s > context))
        {
            throw new ExpertScopeException($"The stride {s} must be between 1 and the window length {context}.");
        }

        if (tokens.Count > context && stride is null)
        {
            throw new ExpertScopeException(
                $"{source}: the text is {tokens.Count} tokens long, longer than the window of {context} tokens; " +
                "give --stride to score it in overlapping windows (see --help).");
        }

        var options = (run ?? RunOptions.Default) with { Observers = [], Logits = LogitsSelection.All };
        int step = stride ?? context;
        int scoredUpTo = 1;
        double total = 0;
        int scored = 0, windows = 0;
        var ids = tokens.ToArray();
        for (int begin = 0; ; begin += step)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int end = Math.Min(begin + context, ids.Length);
            int first = Math.Max(scoredUpTo, begin + 1);
            if (first < end)
            {
                var logits = model.Run(ids.AsSpan(begin, end - begin), options);
                windows++;
                for (int position = first; position < end; position++)
                {
                    total -= LogProbability(logits.Row(position - begin - 1), ids[position]);
                    scored++;
                }

                scoredUpTo = end;
            }

            if (end == ids.Length)
            {
                break;
            }
        }

        return new PerplexityResult(Math.Exp(total / scored), total, scored, ids.Length, windows);
    }

    /// <summary>ln softmax(<paramref name="logits"/>)[<paramref name="token"/>], in double precision (see <see cref="Analyses.LanguageModelScore"/>).</summary>
    public static double LogProbability(ReadOnlySpan<float> logits, int token) => -Analyses.LanguageModelScore.NegativeLogLikelihood(logits, token);
}
