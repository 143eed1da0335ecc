using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Experiments.Storage;

namespace ExpertScope.Experiments.Runs;

/// <summary>
/// Selects every n-th item of a data set (<c>--shard i/n</c>: items whose index mod n is i), so one data set can be
/// split across machines; the shards' run folders or traces are joined with <see cref="RunMerge"/>.
/// </summary>
/// <param name="Index">i, from 0.</param>
/// <param name="Count">n, at least 1.</param>
public readonly record struct Shard(int Index, int Count)
{
    /// <summary>True when item <paramref name="item"/> belongs to this shard.</summary>
    public bool Includes(int item) => item % Count == Index;

    /// <summary>Parses <c>i/n</c>.</summary>
    /// <exception cref="ExpertScopeException">Not two integers with 0 ≤ i &lt; n.</exception>
    public static Shard Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split('/');
        return parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var index)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var count)
            && count >= 1 && index < count
                ? new Shard(index, count)
                : throw new ExpertScopeException($"--shard must be i/n with 0 ≤ i < n (e.g. 0/2), got '{text}'");
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Index}/{Count}");
}

/// <summary>What a merge wrote.</summary>
/// <param name="Runs">Inputs merged.</param>
/// <param name="JournalRecords">Finished units in the merged journal (run folders).</param>
/// <param name="Sequences">Sequences in the merged trace.</param>
/// <param name="Rows">Rows in the merged trace.</param>
public sealed record MergeSummary(int Runs, int JournalRecords, int Sequences, long Rows);

/// <summary>
/// Joins runs that split one data set across machines: run folders (manifest, journal <c>finished.jsonl</c>,
/// <c>trace.parquet</c>) into one folder that the same command then resumes as finished, or trace files into one
/// trace. Runs whose manifests (kind, settings, seed, model) or trace metadata (model, N, k, arithmetic, routing
/// source) differ are refused, and so is a unit or sequence that two runs hold with different contents.
/// </summary>
public static class RunMerge
{
    /// <summary>Merges run folders into <paramref name="outFolder"/> (which must not hold a run yet).</summary>
    /// <exception cref="ExpertScopeException">Fewer than two runs, a missing manifest, differing settings or models, or conflicting records.</exception>
    public static async Task<MergeSummary> MergeFoldersAsync(IReadOnlyList<string> folders, string outFolder, string? commandLine = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(folders);
        ArgumentException.ThrowIfNullOrEmpty(outFolder);
        if (folders.Count < 2)
        {
            throw new ExpertScopeException("merge needs at least two run folders");
        }

        if (File.Exists(Path.Combine(outFolder, RunFolder.ManifestFileName)))
        {
            throw new ExpertScopeException($"{outFolder}: already holds a run; merge into a new folder");
        }

        var manifests = folders.Select(ReadManifest).ToList();
        for (var i = 1; i < folders.Count; i++)
        {
            var differences = manifests[0].DifferencesFrom(manifests[i]);
            if (differences.Count > 0)
            {
                throw new ExpertScopeException($"{folders[i]} cannot be merged with {folders[0]}: {string.Join("; ", differences)}");
            }
        }

        var records = new SortedDictionary<string, WorkRecord>(StringComparer.Ordinal);
        for (var i = 0; i < folders.Count; i++)
        {
            var journal = Path.Combine(folders[i], RunFolder.JournalFileName);
            foreach (var record in File.Exists(journal) ? WorkJournal.ReadRecords(journal) : [])
            {
                if (records.TryGetValue(record.Unit, out var held) && !string.Equals(held.Data, record.Data, StringComparison.Ordinal))
                {
                    throw new ExpertScopeException($"{journal}: unit '{record.Unit}' differs from the same unit in another run; the runs did not compute the same thing");
                }

                records[record.Unit] = record;
            }
        }

        var traces = folders.Select(folder => Path.Combine(folder, "trace.parquet")).Where(File.Exists).ToList();
        var summary = new MergeSummary(folders.Count, records.Count, 0, 0);
        Directory.CreateDirectory(outFolder);
        if (traces.Count > 0)
        {
            var merged = await MergeTracesAsync(traces, Path.Combine(outFolder, "trace.parquet"), cancellationToken).ConfigureAwait(false);
            summary = summary with { Sequences = merged.Sequences, Rows = merged.Rows };
        }

        // The journal last: a journaled unit is always in the trace too, as in a run.
        using var folder = RunFolder.OpenOrCreate(outFolder, manifests[0] with { CommandLine = commandLine ?? manifests[0].CommandLine });
        folder.Journal.MarkFinished(records.Values);
        return summary;
    }

    /// <summary>Merges Parquet traces into <paramref name="outPath"/> (sequences ascending).</summary>
    /// <exception cref="ExpertScopeException">Differing metadata, or one sequence with different rows in two traces.</exception>
    public static async Task<MergeSummary> MergeTracesAsync(IReadOnlyList<string> traces, string outPath, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(traces);
        if (traces.Count < 1)
        {
            throw new ExpertScopeException("merge needs traces");
        }

        if (File.Exists(outPath))
        {
            throw new ExpertScopeException($"{outPath}: already exists; merge into a new file");
        }

        var metadata = new List<TraceMetadata>();
        foreach (var trace in traces)
        {
            metadata.Add(await RoutingTraceReader.ReadMetadataAsync(trace, cancellationToken).ConfigureAwait(false));
        }

        for (var i = 1; i < traces.Count; i++)
        {
            var differences = metadata[0].DifferencesFrom(metadata[i]);
            if (differences.Count > 0)
            {
                throw new ExpertScopeException($"{traces[i]} cannot be merged with {traces[0]}: {string.Join("; ", differences)}");
            }
        }

        var sequences = new SortedDictionary<int, List<RoutingTraceRow>>();
        var includeProbabilities = false;
        foreach (var trace in traces)
        {
            var finished = await RoutingTraceReader.ReadFinishedSequencesAsync(trace, cancellationToken).ConfigureAwait(false);
            var rows = new Dictionary<int, List<RoutingTraceRow>>();
            await foreach (var row in RoutingTraceReader.ReadRowsAsync(trace, cancellationToken).ConfigureAwait(false))
            {
                if (finished.Contains(row.Sequence))
                {
                    includeProbabilities |= row.Probs is not null;
                    (rows.TryGetValue(row.Sequence, out var list) ? list : rows[row.Sequence] = []).Add(row);
                }
            }

            foreach (var (sequence, list) in rows)
            {
                if (sequences.TryGetValue(sequence, out var held))
                {
                    if (!SameRows(held, list))
                    {
                        throw new ExpertScopeException(string.Create(CultureInfo.InvariantCulture,
                            $"{trace}: sequence {sequence} differs from the same sequence in another trace"));
                    }

                    continue;
                }

                sequences[sequence] = list;
            }
        }

        long written = 0;
        await using (var writer = await ParquetTraceWriter.OpenAsync(outPath, metadata[0], new TraceWriterOptions { IncludeProbabilities = includeProbabilities }, cancellationToken).ConfigureAwait(false))
        {
            foreach (var (sequence, rows) in sequences)
            {
                await writer.WriteSequenceAsync(sequence, rows, cancellationToken).ConfigureAwait(false);
                written += rows.Count;
            }

            await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        return new MergeSummary(traces.Count, 0, sequences.Count, written);
    }

    private static bool SameRows(List<RoutingTraceRow> a, List<RoutingTraceRow> b) =>
        a.Count == b.Count && a.Zip(b).All(pair => pair.First with { Probs = null } == pair.Second with { Probs = null }
            && (pair.First.Probs ?? []).AsSpan().SequenceEqual(pair.Second.Probs ?? []));

    private static RunManifest ReadManifest(string folder)
    {
        var path = Path.Combine(folder, RunFolder.ManifestFileName);
        return File.Exists(path)
            ? RunManifest.FromJson(File.ReadAllText(path), path)
            : throw new ExpertScopeException($"{folder}: not a run folder (no {RunFolder.ManifestFileName})");
    }
}
