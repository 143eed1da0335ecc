using System.Globalization;
using System.Text;
using ExpertScope.Core;
using ExpertScope.Experiments.Analyses;
using ExpertScope.Experiments.RoutingSources;
using ExpertScope.Experiments.Runs;
using ExpertScope.Models;
using ExpertScope.Models.Routing;

namespace ExpertScope.Experiments.Lens;

/// <summary>A named set of token sequences whose routing is collected together (a domain, a corpus, an input file).</summary>
/// <param name="Name">The name (used in file names after replacing characters other than letters, digits, '-' and '_').</param>
/// <param name="Sequences">Token sequences, BOS included as the vocabulary asks; each at most the model's context.</param>
public sealed record RoutingGroup(string Name, IReadOnlyList<IReadOnlyList<int>> Sequences);

/// <summary>
/// Runs token sequences through a model without its output head (<see cref="LogitsSelection.None"/>) and turns every
/// MoE layer's decision into <see cref="RoutingRecord"/>s. With a <see cref="RunFolder"/>, each part of a group
/// (<see cref="PartSize"/> sequences) is saved as <c>routing/NAME.PART.csv</c> and journalled, so a re-run reads
/// finished parts back instead of running them again.
/// </summary>
public static class RoutingCollector
{
    /// <summary>Sequences per saved part (the resume granularity).</summary>
    public const int PartSize = 32;

    /// <summary>The routing records of one sequence (rank 0 is the first selected expert).</summary>
    public static List<RoutingRecord> Run(MoeModel model, IReadOnlyList<int> tokens, int sequence, int? threadCount)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokens);
        var recorder = new ActivationRecorder([], routing: true);
        model.Run([.. tokens], new RunOptions { Observers = [recorder], Logits = LogitsSelection.None, ThreadCount = threadCount });
        var records = new List<RoutingRecord>(recorder.Routes.Count * tokens.Count * 8);
        foreach (var route in recorder.Routes.Values)
        {
            int k = route.SelectedCount;
            for (int position = 0; position < tokens.Count; position++)
            {
                for (int rank = 0; rank < k; rank++)
                {
                    records.Add(new RoutingRecord(sequence, position, tokens[position], route.Layer, rank, route.Experts[position * k + rank], route.Weights[position * k + rank]));
                }
            }
        }

        return records;
    }

    /// <summary>Collects the routing of every group, resuming from <paramref name="folder"/> when it holds finished parts.</summary>
    /// <param name="model">The model.</param>
    /// <param name="folder">The run folder (parts are saved under <c>routing/</c>).</param>
    /// <param name="groups">The groups; sequence ids are 0-based within each group.</param>
    /// <param name="progress">Progress, counted in tokens.</param>
    /// <param name="threadCount">Threads of the forward pass.</param>
    /// <param name="cancellationToken">Stops between sequences (finished parts stay saved).</param>
    /// <returns>The records of each group, by name, in group order.</returns>
    public static IReadOnlyList<(string Name, IReadOnlyList<RoutingRecord> Records)> Collect(
        MoeModel model, RunFolder folder, IReadOnlyList<RoutingGroup> groups, IProgressSink progress, int? threadCount, CancellationToken cancellationToken = default)
    {
        var result = new List<(string, IReadOnlyList<RoutingRecord>)>();
        Collect(model, folder, groups, progress, threadCount, (name, records) => result.Add((name, records)), cancellationToken);
        return result;
    }

    /// <summary>
    /// As <see cref="Collect(MoeModel, RunFolder, IReadOnlyList{RoutingGroup}, IProgressSink, int?, CancellationToken)"/>,
    /// but hands each group's records to <paramref name="onGroup"/> as soon as the group is done, so a caller that
    /// reduces them (a tally) never holds every group's records at once.
    /// </summary>
    public static void Collect(
        MoeModel model, RunFolder folder, IReadOnlyList<RoutingGroup> groups, IProgressSink progress, int? threadCount,
        Action<string, IReadOnlyList<RoutingRecord>> onGroup, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        CollectCore(folder, groups, progress, onGroup, cancellationToken, (group, sequences, first, advance) =>
        {
            var records = new List<RoutingRecord>();
            for (int i = 0; i < sequences.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                records.AddRange(Run(model, sequences[i], first + i, threadCount));
                advance(sequences[i].Count);
            }

            return records;
        });
    }

    /// <summary>
    /// As the engine overload, but the routing comes from <paramref name="source"/> (a vLLM or SGLang server, sent the
    /// token ids), one saved part per request batch. Ids-only sources give records with a NaN weight.
    /// </summary>
    public static IReadOnlyList<(string Name, IReadOnlyList<RoutingRecord> Records)> Collect(
        IRoutingSource source, RunFolder folder, IReadOnlyList<RoutingGroup> groups, IProgressSink progress, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        var result = new List<(string, IReadOnlyList<RoutingRecord>)>();
        CollectCore(folder, groups, progress, (name, records) => result.Add((name, records)), cancellationToken, (group, sequences, first, advance) =>
        {
            var prompts = sequences.Select((tokens, i) => new RoutingPrompt(
                string.Create(CultureInfo.InvariantCulture, $"{group} sequence {first + i}"), null, tokens, tokens.Count)).ToList();
            var routed = source.RouteAsync(prompts, cancellationToken).GetAwaiter().GetResult();
            var records = new List<RoutingRecord>();
            for (int i = 0; i < routed.Count; i++)
            {
                var routing = routed[i];
                for (int layer = 0; layer < routing.Layers.Count; layer++)
                {
                    for (int position = 0; position < routing.PositionCount; position++)
                    {
                        var experts = routing.ExpertsAt(layer, position);
                        var weights = routing.WeightsAt(layer, position);
                        for (int rank = 0; rank < experts.Length; rank++)
                        {
                            records.Add(new RoutingRecord(first + i, position, sequences[i][position], routing.Layers[layer], rank, experts[rank],
                                weights.IsEmpty ? float.NaN : weights[rank]));
                        }
                    }
                }

                advance(sequences[i].Count);
            }

            return records;
        });
        return result;
    }

    private static void CollectCore(
        RunFolder folder, IReadOnlyList<RoutingGroup> groups, IProgressSink progress, Action<string, IReadOnlyList<RoutingRecord>> onGroup,
        CancellationToken cancellationToken, Func<string, IReadOnlyList<IReadOnlyList<int>>, int, Action<long>, List<RoutingRecord>> routePart)
    {
        ArgumentNullException.ThrowIfNull(onGroup);
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(progress);
        Directory.CreateDirectory(folder.PathOf("routing"));
        long total = groups.Sum(g => g.Sequences.Sum(s => (long)s.Count));
        long done = 0;
        foreach (var group in groups)
        {
            for (int part = 0; part * PartSize < group.Sequences.Count; part++)
            {
                if (folder.IsFinished(UnitOf(group.Name, part)))
                {
                    done += group.Sequences.Skip(part * PartSize).Take(PartSize).Sum(s => (long)s.Count);
                }
            }
        }

        using var task = progress.StartTask("routing", total, done, "tokens");
        foreach (var group in groups)
        {
            var records = new List<RoutingRecord>();
            for (int part = 0; part * PartSize < group.Sequences.Count; part++)
            {
                string unit = UnitOf(group.Name, part);
                string file = folder.PathOf(Path.Combine("routing", FileNameOf(group.Name, part)));
                if (folder.IsFinished(unit))
                {
                    records.AddRange(Read(file));
                    continue;
                }

                cancellationToken.ThrowIfCancellationRequested();
                var partRecords = routePart(group.Name, [.. group.Sequences.Skip(part * PartSize).Take(PartSize)], part * PartSize, task.Advance);

                Write(file, partRecords);
                folder.MarkFinished(unit);
                records.AddRange(partRecords);
            }

            onGroup(group.Name, records);
        }

        task.Complete();
    }

    /// <summary>The journal unit of a group's part.</summary>
    public static string UnitOf(string group, int part) => string.Create(CultureInfo.InvariantCulture, $"routing/{group}/{part}");

    private static string FileNameOf(string group, int part)
    {
        var safe = new StringBuilder();
        foreach (char c in group)
        {
            safe.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_');
        }

        return string.Create(CultureInfo.InvariantCulture, $"{safe}.{part}.csv");
    }

    private static void Write(string path, List<RoutingRecord> records)
    {
        var text = new StringBuilder("sequence,position,token_id,layer,rank,expert,weight\n");
        foreach (var r in records)
        {
            text.Append(CultureInfo.InvariantCulture, $"{r.Sequence},{r.Position},{r.TokenId},{r.Layer},{r.Rank},{r.Expert},{r.Weight:R}\n");
        }

        AtomicFile.WriteAllText(path, text.ToString());
    }

    private static List<RoutingRecord> Read(string path)
    {
        if (!File.Exists(path))
        {
            throw new ExpertScopeException($"The run journal lists '{path}' as finished, but the file is missing; delete the output folder to start over.");
        }

        var records = new List<RoutingRecord>();
        foreach (var line in File.ReadLines(path).Skip(1))
        {
            var f = line.Split(',');
            if (f.Length != 7)
            {
                throw new ExpertScopeException($"'{path}': malformed routing line '{line}'; delete the output folder to start over.");
            }

            records.Add(new RoutingRecord(
                int.Parse(f[0], CultureInfo.InvariantCulture), int.Parse(f[1], CultureInfo.InvariantCulture), int.Parse(f[2], CultureInfo.InvariantCulture),
                int.Parse(f[3], CultureInfo.InvariantCulture), int.Parse(f[4], CultureInfo.InvariantCulture), int.Parse(f[5], CultureInfo.InvariantCulture),
                float.Parse(f[6], CultureInfo.InvariantCulture)));
        }

        return records;
    }
}
