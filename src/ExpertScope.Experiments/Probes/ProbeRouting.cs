using System.Text.Json;
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

    /// <summary>Routes every planned sentence that the journal does not already hold.</summary>
    /// <param name="model">The model.</param>
    /// <param name="plan">The plan.</param>
    /// <param name="folder">The run folder (manifest already checked).</param>
    /// <param name="metadata">Trace metadata (model hash, architecture, N, k).</param>
    /// <param name="threads">Forward-pass threads, or null for all cores.</param>
    /// <param name="checkpointEvery">Sentences between durable checkpoints.</param>
    /// <param name="progress">Progress display.</param>
    /// <param name="cancellationToken">Stops the run (finished checkpoints are kept).</param>
    public static async Task<ProbeRouting> RunAsync(
        MoeModel model, ProbePlan plan, RunFolder folder, TraceMetadata metadata, int? threads, int checkpointEvery,
        IProgressSink progress, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
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

        await using var writer = await ParquetTraceWriter.OpenAsync(
            folder.PathOf(TraceFileName), metadata, new TraceWriterOptions { IncludeProbabilities = true }, cancellationToken).ConfigureAwait(false);

        ProbeRouting? routing = null;
        var pending = new List<WorkRecord>();
        var resumed = journaled.Count(entry => entry.Key < plan.Sentences.Count);
        using var task = progress.StartTask("routing sentences", plan.Sentences.Count, resumed, "sentences");
        var run = 0;
        for (var sentence = 0; sentence < plan.Sentences.Count; sentence++)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                // Stopped between sentences: journal what finished (the trace first), then stop.
                await Checkpoint(writer, folder, pending, CancellationToken.None).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
            }

            var inJournal = journaled.TryGetValue(sentence, out var saved);
            var inTrace = writer.Contains(sentence);
            if (inJournal && inTrace)
            {
                routing ??= new ProbeRouting(saved!.Layers);
                Restore(routing, sentence, saved!);
                continue;
            }

            // A sentence missing from either store is run again: the forward pass is deterministic, so it gives the same routing.
            var trace = new RoutingTrace(includeProbabilities: true);
            // Causal attention: the routing of the needed positions depends only on the tokens up to the last of them.
            var tokens = plan.TokenIds[sentence].Take(needed[sentence][^1] + 1).ToArray();
            model.Run(tokens, new RunOptions { Observers = [trace], Logits = LogitsSelection.None, ThreadCount = threads });
            var layers = trace.Layers.ToArray();
            if (layers.Length == 0)
            {
                throw new Core.ExpertScopeException($"{model.FilePath}: the model routed no token (it has no MoE layer)");
            }

            routing ??= new ProbeRouting(layers);
            var record = Capture(trace, layers, needed[sentence]);
            Restore(routing, sentence, record);
            if (!inTrace)
            {
                await writer.WriteSequenceAsync(sentence, Rows(trace, layers, sentence, tokens, plan.TokenTexts[sentence]), cancellationToken).ConfigureAwait(false);
            }

            if (!inJournal)
            {
                pending.Add(new WorkRecord(UnitPrefix + sentence.ToString(System.Globalization.CultureInfo.InvariantCulture), JsonSerializer.Serialize(record)));
            }

            run++;
            task.Advance();
            if (pending.Count >= checkpointEvery)
            {
                await Checkpoint(writer, folder, pending, cancellationToken).ConfigureAwait(false);
            }
        }

        await Checkpoint(writer, folder, pending, cancellationToken).ConfigureAwait(false);
        task.Complete();
        routing ??= new ProbeRouting([]);
        routing.SentencesRun = run;
        routing.SentencesResumed = plan.Sentences.Count - run;
        return routing;
    }

    private static async Task Checkpoint(ParquetTraceWriter writer, RunFolder folder, List<WorkRecord> pending, CancellationToken cancellationToken)
    {
        // The trace is made durable first, so a journaled sentence is always in the trace too.
        await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (pending.Count > 0)
        {
            folder.Journal.MarkFinished(pending);
            pending.Clear();
        }
    }

    private static SentenceRecord Capture(RoutingTrace trace, int[] layers, int[] positions)
    {
        var experts = new int[positions.Length * layers.Length][];
        var weights = new float[positions.Length * layers.Length][];
        var probabilities = new float[positions.Length * layers.Length][];
        for (var p = 0; p < positions.Length; p++)
        {
            for (var l = 0; l < layers.Length; l++)
            {
                var slot = (p * layers.Length) + l;
                experts[slot] = trace.ExpertsAt(layers[l], positions[p]).ToArray();
                weights[slot] = trace.WeightsAt(layers[l], positions[p]).ToArray();
                probabilities[slot] = trace.ProbabilitiesAt(layers[l], positions[p]).ToArray();
            }
        }

        return new SentenceRecord(layers, positions, experts, weights, probabilities);
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
    }

    private static List<RoutingTraceRow> Rows(RoutingTrace trace, int[] layers, int sentence, int[] tokens, IReadOnlyList<string> texts)
    {
        var rows = new List<RoutingTraceRow>();
        for (var position = 0; position < tokens.Length; position++)
        {
            foreach (var layer in layers)
            {
                var experts = trace.ExpertsAt(layer, position);
                var weights = trace.WeightsAt(layer, position);
                var scores = trace.ScoresAt(layer, position);
                var probabilities = trace.ProbabilitiesAt(layer, position).ToArray();
                for (var rank = 0; rank < experts.Length; rank++)
                {
                    rows.Add(new RoutingTraceRow(sentence, position, tokens[position], texts[position], layer, rank, experts[rank], weights[rank], scores[rank], probabilities));
                }
            }
        }

        return rows;
    }

    /// <summary>The journaled routing of one sentence's needed positions (slot = position index × layer count + layer index).</summary>
    internal sealed record SentenceRecord(int[] Layers, int[] Positions, int[][] Experts, float[][] Weights, float[][] Probabilities);
}
