using System.Text.Json;
using ExpertScope.Experiments.RoutingSources;
using ExpertScope.Experiments.Runs;
using ExpertScope.Experiments.Storage;
using ExpertScope.Models;
using ExpertScope.Models.Routing;

namespace ExpertScope.Experiments.Probes;

/// <summary>The routing of the positions a plan needs, by sentence, position and MoE layer.</summary>
public sealed class ProbeRouting
{
    private readonly Dictionary<(int Sentence, int Position), TokenRouting[]> _tokens = [];

    /// <summary>Creates an empty store for the given MoE layers.</summary>
    public ProbeRouting(IReadOnlyList<int> layers)
    {
        Layers = layers ?? throw new ArgumentNullException(nameof(layers));
    }

    /// <summary>MoE blocks, ascending.</summary>
    public IReadOnlyList<int> Layers { get; }

    /// <summary>Routed experts per layer (N), known once a token is stored; needed for κ when the routing holds ids only.</summary>
    public int ExpertCount { get; internal set; }

    /// <summary>Sentences run in this attempt (the rest came from the journal of an earlier one).</summary>
    public int SentencesRun { get; internal set; }

    /// <summary>Sentences taken from the journal of an earlier attempt.</summary>
    public int SentencesResumed { get; internal set; }

    /// <summary>Stores one token's routing, one entry per layer of <see cref="Layers"/>.</summary>
    public void Set(int sentence, int position, TokenRouting[] byLayer)
    {
        ArgumentNullException.ThrowIfNull(byLayer);
        if (byLayer.Length != Layers.Count)
        {
            throw new ArgumentException($"Expected {Layers.Count} layers, got {byLayer.Length}.", nameof(byLayer));
        }

        _tokens[(sentence, position)] = byLayer;
    }

    /// <summary>
    /// Every stored token's routing at layer index <paramref name="layerIndex"/>, in (sentence, position) order: the
    /// population the probes measure expert load on.
    /// </summary>
    public IEnumerable<TokenRouting> TokensAt(int layerIndex) =>
        _tokens.OrderBy(entry => entry.Key.Sentence).ThenBy(entry => entry.Key.Position).Select(entry => entry.Value[layerIndex]);

    /// <summary>The routing of a word's tokens at layer index <paramref name="layerIndex"/> (an index into <see cref="Layers"/>).</summary>
    public IReadOnlyList<TokenRouting> Word(WordOccurrence word, int layerIndex)
    {
        ArgumentNullException.ThrowIfNull(word);
        return [.. word.Tokens.Select(position => _tokens[(word.Sentence, position)][layerIndex])];
    }
}

/// <summary>
/// Runs the model once per planned sentence with a routing observer (no output head), writes every routing decision
/// to <c>trace.parquet</c>, and journals each sentence's needed routing so a resumed run skips it. A sentence is run up
/// to its last probed token only (later tokens cannot change the routing of earlier ones), so the trace holds those prefixes.
/// </summary>
public static class ProbeRunner
{
    /// <summary>The trace file name inside the output folder.</summary>
    public const string TraceFileName = "trace.parquet";

    private const string UnitPrefix = "sentence:";

    /// <summary>Routes every planned sentence that the journal does not already hold, with the in-process engine.</summary>
    /// <param name="model">The model.</param>
    /// <param name="plan">The plan.</param>
    /// <param name="folder">The run folder (manifest already checked).</param>
    /// <param name="metadata">Trace metadata (model hash, architecture, N, k).</param>
    /// <param name="threads">Forward-pass threads, or null for all cores.</param>
    /// <param name="checkpointEvery">Sentences between durable checkpoints.</param>
    /// <param name="progress">Progress display.</param>
    /// <param name="cancellationToken">Stops the run (finished checkpoints are kept).</param>
    public static Task<ProbeRouting> RunAsync(
        MoeModel model, ProbePlan plan, RunFolder folder, TraceMetadata metadata, int? threads, int checkpointEvery,
        IProgressSink progress, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        return RunAsync(new EngineRoutingSource(model, threads), plan, folder, metadata, checkpointEvery, progress, cancellationToken);
    }

    /// <summary>
    /// Routes every planned sentence that the journal does not already hold, taking the routing from
    /// <paramref name="source"/> (the engine, or a vLLM/SGLang server) <see cref="IRoutingSource.BatchSize"/> sentences at a time.
    /// </summary>
    /// <param name="source">Where routing comes from.</param>
    /// <param name="plan">The plan.</param>
    /// <param name="folder">The run folder (manifest already checked).</param>
    /// <param name="metadata">Trace metadata (model hash, architecture, N, k, routing source).</param>
    /// <param name="checkpointEvery">Sentences between durable checkpoints.</param>
    /// <param name="progress">Progress display.</param>
    /// <param name="cancellationToken">Stops the run (finished checkpoints are kept).</param>
    /// <param name="shard">Route only the sentences of this shard (index mod n = i); null: all.</param>
    public static async Task<ProbeRouting> RunAsync(
        IRoutingSource source, ProbePlan plan, RunFolder folder, TraceMetadata metadata, int checkpointEvery,
        IProgressSink progress, CancellationToken cancellationToken = default, Shard? shard = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(progress);
        var needed = plan.NeededPositions();
        var journaled = new Dictionary<int, SentenceRecord>();
        foreach (var record in folder.Journal.Records)
        {
            if (record.Unit.StartsWith(UnitPrefix, StringComparison.Ordinal) && record.Data is { } data
                && int.TryParse(record.Unit.AsSpan(UnitPrefix.Length), System.Globalization.CultureInfo.InvariantCulture, out var number))
            {
                journaled[number] = JsonSerializer.Deserialize<SentenceRecord>(data)
                    ?? throw new Core.ExpertScopeException($"{folder.Journal.Path}: empty record for {record.Unit}");
            }
        }

        var includeProbabilities = source.Detail.Probabilities;
        await using var writer = await ParquetTraceWriter.OpenAsync(
            folder.PathOf(TraceFileName), metadata, new TraceWriterOptions { IncludeProbabilities = includeProbabilities }, cancellationToken).ConfigureAwait(false);

        ProbeRouting? routing = null;
        var pending = new List<WorkRecord>();
        bool Selected(int sentence) => shard is not { } part || part.Includes(sentence);
        var selected = Enumerable.Range(0, plan.Sentences.Count).Count(Selected);
        var resumed = journaled.Count(entry => entry.Key < plan.Sentences.Count && Selected(entry.Key));
        // One request per sentence to a server, so its rate reads as requests/s.
        using var task = progress.StartTask("routing sentences", selected, resumed, source is ServerRoutingSource ? "requests" : "sentences");
        var toRun = new List<int>();
        for (var sentence = 0; sentence < plan.Sentences.Count; sentence++)
        {
            if (!Selected(sentence))
            {
                continue;
            }

            if (journaled.TryGetValue(sentence, out var saved) && writer.Contains(sentence))
            {
                routing ??= new ProbeRouting(saved.Layers);
                Restore(routing, sentence, saved);
            }
            else
            {
                // A sentence missing from either store is routed again: routing is deterministic, so it comes back the same.
                toRun.Add(sentence);
            }
        }

        foreach (var batch in toRun.Chunk(Math.Max(1, source.BatchSize)))
        {
            if (cancellationToken.IsCancellationRequested)
            {
                // Stopped between batches: journal what finished (the trace first), then stop.
                await Checkpoint(writer, folder, pending, CancellationToken.None).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
            }

            var prompts = batch.Select(sentence => new RoutingPrompt(
                "sentence " + sentence.ToString(System.Globalization.CultureInfo.InvariantCulture) + " ('" + plan.Sentences[sentence] + "')",
                plan.Sentences[sentence], plan.TokenIds[sentence], needed[sentence][^1] + 1)).ToList();
            var routed = await source.RouteAsync(prompts, cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < batch.Length; i++)
            {
                var sentence = batch[i];
                var sequence = routed[i];
                var layers = sequence.Layers.ToArray();
                routing ??= new ProbeRouting(layers);
                var record = Capture(sequence, needed[sentence]);
                Restore(routing, sentence, record);
                if (!writer.Contains(sentence))
                {
                    var tokens = plan.TokenIds[sentence].Take(sequence.PositionCount).ToArray();
                    await writer.WriteSequenceAsync(sentence, Rows(sequence, sentence, tokens, plan.TokenTexts[sentence]), cancellationToken).ConfigureAwait(false);
                }

                if (!journaled.ContainsKey(sentence))
                {
                    pending.Add(new WorkRecord(UnitPrefix + sentence.ToString(System.Globalization.CultureInfo.InvariantCulture), JsonSerializer.Serialize(record)));
                }

                task.Advance();
            }

            // Finished work is made durable even when a stop was asked for meanwhile (it is checked before the next batch).
            if (pending.Count >= checkpointEvery)
            {
                await Checkpoint(writer, folder, pending, CancellationToken.None).ConfigureAwait(false);
            }
        }

        await Checkpoint(writer, folder, pending, CancellationToken.None).ConfigureAwait(false);
        task.Complete();
        routing ??= new ProbeRouting([]);
        routing.SentencesRun = toRun.Count;
        routing.SentencesResumed = selected - toRun.Count;
        return routing;
    }

    private static async Task Checkpoint(ParquetTraceWriter writer, RunFolder folder, List<WorkRecord> pending, CancellationToken cancellationToken)
    {
        // The trace is made durable first, so a journaled sentence is always in the trace too.
        await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (pending.Count > 0)
        {
            // The data is read back only when a later run resumes; kept in memory it would grow by the whole journal.
            folder.Journal.MarkFinished(pending, keepInMemory: false);
            pending.Clear();
        }
    }

    private static SentenceRecord Capture(SequenceRouting sequence, int[] positions)
    {
        var layerCount = sequence.Layers.Count;
        var experts = new int[positions.Length * layerCount][];
        var weights = new float[positions.Length * layerCount][];
        var probabilities = new float[positions.Length * layerCount][];
        for (var p = 0; p < positions.Length; p++)
        {
            for (var l = 0; l < layerCount; l++)
            {
                var slot = (p * layerCount) + l;
                experts[slot] = sequence.ExpertsAt(l, positions[p]).ToArray();
                // Empty for an ids-only source: the metrics that need them are then reported as not available.
                weights[slot] = sequence.WeightsAt(l, positions[p]).ToArray();
                probabilities[slot] = sequence.ProbabilitiesAt(l, positions[p]).ToArray();
            }
        }

        return new SentenceRecord([.. sequence.Layers], positions, experts, weights, probabilities, sequence.ExpertCount);
    }

    private static void Restore(ProbeRouting routing, int sentence, SentenceRecord record)
    {
        if (!record.Layers.SequenceEqual(routing.Layers))
        {
            throw new Core.ExpertScopeException($"sentence {sentence}: the journal holds layers [{string.Join(", ", record.Layers)}], the model routes [{string.Join(", ", routing.Layers)}]");
        }

        for (var p = 0; p < record.Positions.Length; p++)
        {
            var byLayer = new TokenRouting[record.Layers.Length];
            for (var l = 0; l < byLayer.Length; l++)
            {
                var slot = (p * record.Layers.Length) + l;
                byLayer[l] = new TokenRouting(record.Experts[slot], record.Weights[slot], record.Probabilities[slot]);
            }

            routing.Set(sentence, record.Positions[p], byLayer);
        }

        if (routing.ExpertCount == 0)
        {
            routing.ExpertCount = record.ExpertCount > 0 ? record.ExpertCount : record.Probabilities.FirstOrDefault()?.Length ?? 0;
        }
    }

    private static List<RoutingTraceRow> Rows(SequenceRouting sequence, int sentence, int[] tokens, IReadOnlyList<string> texts)
    {
        var rows = new List<RoutingTraceRow>();
        for (var position = 0; position < tokens.Length; position++)
        {
            for (var l = 0; l < sequence.Layers.Count; l++)
            {
                var experts = sequence.ExpertsAt(l, position);
                var weights = sequence.WeightsAt(l, position);
                var scores = sequence.ScoresAt(l, position);
                float[]? probabilities = sequence.Detail.Probabilities ? sequence.ProbabilitiesAt(l, position).ToArray() : null;
                for (var rank = 0; rank < experts.Length; rank++)
                {
                    // Ids-only sources have no weights or scores: NaN, never a made-up number.
                    rows.Add(new RoutingTraceRow(sentence, position, tokens[position], texts[position], sequence.Layers[l], rank, experts[rank],
                        weights.IsEmpty ? float.NaN : weights[rank], scores.IsEmpty ? float.NaN : scores[rank], probabilities));
                }
            }
        }

        return rows;
    }

    /// <summary>The journaled routing of one sentence's needed positions (slot = position index × layer count + layer index).</summary>
    /// <remarks><c>ExpertCount</c> is N (0 in journals written before it was kept: N is then the probabilities' length).</remarks>
    internal sealed record SentenceRecord(int[] Layers, int[] Positions, int[][] Experts, float[][] Weights, float[][] Probabilities, int ExpertCount = 0);
}
