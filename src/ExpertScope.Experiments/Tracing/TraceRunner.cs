using System.Diagnostics;
using ExpertScope.Core;
using ExpertScope.Experiments.RoutingSources;
using ExpertScope.Experiments.Runs;
using ExpertScope.Experiments.Storage;
using ExpertScope.Models;
using ExpertScope.Models.Routing;

namespace ExpertScope.Experiments.Tracing;

/// <summary>A tokenized input of a trace run.</summary>
/// <param name="Sequence">The sequence id its rows carry.</param>
/// <param name="LineNumber">1-based input line, for messages.</param>
/// <param name="Tokens">Token ids, BOS included when the vocabulary adds one.</param>
/// <param name="OriginalLength">Tokens before any truncation to the context.</param>
public sealed record TokenizedPrompt(int Sequence, int LineNumber, IReadOnlyList<int> Tokens, int OriginalLength)
{
    /// <summary>True when the tokens were cut to the context length.</summary>
    public bool IsTruncated => Tokens.Count < OriginalLength;
}

/// <summary>What a trace run did.</summary>
/// <param name="Traced">Sequences run and written by this run.</param>
/// <param name="Skipped">Sequences skipped because the trace already held them.</param>
/// <param name="Tokens">Tokens run by this run.</param>
/// <param name="Rows">Rows written by this run.</param>
/// <param name="Elapsed">Time spent running and writing.</param>
/// <param name="Interrupted">True when cancellation stopped the run early (what finished was still written).</param>
public sealed record TraceRunSummary(int Traced, int Skipped, long Tokens, long Rows, TimeSpan Elapsed, bool Interrupted = false);

/// <summary>
/// Runs a model over tokenized inputs with a <see cref="RoutingTrace"/> observer and no output head, and writes one
/// row per (sequence, position, MoE layer, rank) to a trace writer, skipping sequences the trace already holds.
/// </summary>
public static class TraceRunner
{
    /// <summary>
    /// Tokenizes <paramref name="prompts"/> with the model's tokenizer (BOS as the vocabulary says). Special tokens
    /// written in a text are ordinary text unless <paramref name="parseSpecial"/>, as llama-perplexity reads text.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="prompts">The inputs.</param>
    /// <param name="truncate">Cut a sequence longer than the context to its first context-length tokens; otherwise it is an error.</param>
    /// <param name="source">The input file, named in errors.</param>
    /// <param name="parseSpecial">Parse special tokens written in the text (<c>--parse-special</c>).</param>
    /// <exception cref="ExpertScopeException">A sequence is longer than the context and <paramref name="truncate"/> is false.</exception>
    public static IReadOnlyList<TokenizedPrompt> Tokenize(MoeModel model, IEnumerable<Prompt> prompts, bool truncate, string source, bool parseSpecial = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompts);
        int context = model.Hyperparameters.ContextLength;
        var result = new List<TokenizedPrompt>();
        foreach (var prompt in prompts)
        {
            var tokens = model.Tokenizer.Encode(prompt.Text, parseSpecial: parseSpecial);
            if (tokens.Count == 0)
            {
                continue;
            }

            if (tokens.Count > context)
            {
                if (!truncate)
                {
                    throw new ExpertScopeException(
                        $"{source}:{prompt.LineNumber}: the text is {tokens.Count} tokens long, longer than the model's context of {context} tokens " +
                        "(shorten it, or pass --truncate to keep only its first tokens).");
                }

                result.Add(new TokenizedPrompt(prompt.Sequence, prompt.LineNumber, [.. tokens.Take(context)], tokens.Count));
            }
            else
            {
                result.Add(new TokenizedPrompt(prompt.Sequence, prompt.LineNumber, tokens, tokens.Count));
            }
        }

        return result;
    }

    /// <summary>
    /// Runs every sequence the trace does not hold yet and writes its rows; flushes the writer at the end.
    /// Progress counts tokens. Cancellation is checked between sequences: the run then stops, still flushes what
    /// finished, and reports <see cref="TraceRunSummary.Interrupted"/>, so only the sequence in flight is lost.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="sequences">The inputs, in the order to run them.</param>
    /// <param name="writer">The open trace (its finished sequences are skipped).</param>
    /// <param name="progress">Where progress goes.</param>
    /// <param name="includeProbabilities">Rows carry the full router distribution (the writer must have been opened with the <c>probs</c> column).</param>
    /// <param name="threadCount">Threads of the forward pass (null = processor count).</param>
    /// <param name="cancellationToken">Stops the run after the sequence in flight (see above).</param>
    public static async Task<TraceRunSummary> RunAsync(
        MoeModel model,
        IReadOnlyList<TokenizedPrompt> sequences,
        IRoutingTraceWriter writer,
        IProgressSink progress,
        bool includeProbabilities = false,
        int? threadCount = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sequences);
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(progress);
        var todo = sequences.Where(s => !writer.Contains(s.Sequence)).ToList();
        long doneTokens = sequences.Where(s => writer.Contains(s.Sequence)).Sum(s => (long)s.Tokens.Count);
        long totalTokens = sequences.Sum(s => (long)s.Tokens.Count);
        var stopwatch = Stopwatch.StartNew();
        long tokens = 0, rows = 0;
        int traced = 0;
        using (var task = progress.StartTask("tracing", totalTokens, doneTokens, "tokens"))
        {
            foreach (var sequence in todo)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    break;
                }

                var trace = new RoutingTrace(includeProbabilities);
                var options = new RunOptions { Observers = [trace], ThreadCount = threadCount, Logits = LogitsSelection.None };
                model.Run(sequence.Tokens.ToArray(), options);
                var sequenceRows = ToRows(sequence.Sequence, sequence.Tokens, model.Tokenizer.TokenToPiece, trace);
                // Never cancel a write half-way: the sequence is finished, so it is kept.
                await writer.WriteSequenceAsync(sequence.Sequence, sequenceRows, CancellationToken.None).ConfigureAwait(false);
                traced++;
                tokens += sequence.Tokens.Count;
                rows += sequenceRows.Count;
                task.Advance(sequence.Tokens.Count);
            }

            await writer.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }

        return new TraceRunSummary(traced, sequences.Count - todo.Count, tokens, rows, stopwatch.Elapsed, traced < todo.Count);
    }

    /// <summary>
    /// Like the engine overload, but takes routing from any <see cref="IRoutingSource"/> (a vLLM or SGLang server),
    /// <paramref name="batchSize"/> sequences per call so a server is kept busy. Ids-only sources write NaN weights and
    /// scores and no probabilities. Cancellation is checked between batches; finished batches are written.
    /// </summary>
    /// <param name="source">Where routing comes from.</param>
    /// <param name="sequences">The inputs (not truncated: a server tokenizes the whole text).</param>
    /// <param name="texts">Each sequence's text, by sequence id (what a server is sent).</param>
    /// <param name="tokenText">The text written for a token id.</param>
    /// <param name="writer">The open trace (its finished sequences are skipped).</param>
    /// <param name="progress">Where progress goes (sequences; for a server, requests/s).</param>
    /// <param name="batchSize">Sequences per call of the source.</param>
    /// <param name="cancellationToken">Stops the run after the batch in flight.</param>
    public static async Task<TraceRunSummary> RunAsync(
        IRoutingSource source,
        IReadOnlyList<TokenizedPrompt> sequences,
        IReadOnlyDictionary<int, string> texts,
        Func<int, string> tokenText,
        IRoutingTraceWriter writer,
        IProgressSink progress,
        int batchSize,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(sequences);
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(progress);
        if (sequences.FirstOrDefault(s => s.IsTruncated) is { } cut)
        {
            throw new ExpertScopeException($"line {cut.LineNumber}: a truncated sequence cannot be sent to a server (it tokenizes the whole text); shorten it");
        }

        var todo = sequences.Where(s => !writer.Contains(s.Sequence)).ToList();
        var stopwatch = Stopwatch.StartNew();
        long tokens = 0, rows = 0;
        int traced = 0;
        using (var task = progress.StartTask("routing requests", sequences.Count, sequences.Count - todo.Count, "requests"))
        {
            foreach (var batch in todo.Chunk(Math.Max(1, batchSize)))
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    break;
                }

                var prompts = batch.Select(s => new RoutingPrompt(
                    string.Create(System.Globalization.CultureInfo.InvariantCulture, $"line {s.LineNumber}"), texts[s.Sequence], s.Tokens, s.Tokens.Count)).ToList();
                var routed = await source.RouteAsync(prompts, cancellationToken).ConfigureAwait(false);
                for (var i = 0; i < batch.Length; i++)
                {
                    var sequenceRows = routed[i].ToTraceRows(batch[i].Sequence, batch[i].Tokens, tokenText);
                    await writer.WriteSequenceAsync(batch[i].Sequence, sequenceRows, CancellationToken.None).ConfigureAwait(false);
                    traced++;
                    tokens += batch[i].Tokens.Count;
                    rows += sequenceRows.Count;
                    task.Advance();
                }
            }

            await writer.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }

        return new TraceRunSummary(traced, sequences.Count - todo.Count, tokens, rows, stopwatch.Elapsed, traced < todo.Count);
    }

    /// <summary>
    /// The rows of one sequence's routing, ordered by position, layer, rank. Layers without routing (dense blocks)
    /// have no rows.
    /// </summary>
    /// <param name="sequence">The sequence id.</param>
    /// <param name="tokens">The sequence's tokens (one per recorded position).</param>
    /// <param name="tokenText">The text written for a token id.</param>
    /// <param name="trace">The routing recorded while running <paramref name="tokens"/>.</param>
    public static IReadOnlyList<RoutingTraceRow> ToRows(int sequence, IReadOnlyList<int> tokens, Func<int, string> tokenText, RoutingTrace trace)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(tokenText);
        ArgumentNullException.ThrowIfNull(trace);
        var layers = trace.Layers.ToArray();
        if (layers.Length > 0 && trace.PositionCount != tokens.Count)
        {
            throw new ArgumentException($"The trace holds {trace.PositionCount} positions but {tokens.Count} tokens were given.", nameof(trace));
        }

        var rows = new List<RoutingTraceRow>(tokens.Count * layers.Sum(trace.TopK));
        var texts = new Dictionary<int, string>();
        for (int position = 0; position < tokens.Count; position++)
        {
            int id = tokens[position];
            if (!texts.TryGetValue(id, out var text))
            {
                text = tokenText(id);
                texts[id] = text;
            }

            foreach (int layer in layers)
            {
                var experts = trace.ExpertsAt(layer, position);
                var weights = trace.WeightsAt(layer, position);
                var scores = trace.ScoresAt(layer, position);
                float[]? probabilities = trace.IncludesProbabilities ? trace.ProbabilitiesAt(layer, position).ToArray() : null;
                for (int rank = 0; rank < experts.Length; rank++)
                {
                    rows.Add(new RoutingTraceRow(sequence, position, id, text, layer, rank, experts[rank], weights[rank], scores[rank], probabilities));
                }
            }
        }

        return rows;
    }
}
