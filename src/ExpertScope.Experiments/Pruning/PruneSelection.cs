using System.Globalization;
using ExpertScope.Core;

namespace ExpertScope.Experiments.Pruning;

/// <summary>How experts are scored for keeping.</summary>
public enum PruneScore
{
    /// <summary>How often the router selects the expert on the corpus.</summary>
    Frequency,

    /// <summary>The output-aware score: the sum over tokens of g·‖E(h)‖ (mixing weight times the norm of the expert's output).</summary>
    OutputAware,
}

/// <summary>Builds keep plans (per MoE block, the experts to keep) for <see cref="ExpertPruner"/>.</summary>
public static class PruneSelection
{
    /// <summary>
    /// The usage-scoring pass: runs each text and returns the score per <c>[layer, expert]</c> (selections, or Σ g·‖E(h)‖
    /// for <see cref="PruneScore.OutputAware"/>). Each text is a journal unit (<c>text/I</c>, holding its activity), so
    /// texts finished by an earlier attempt are not run again; texts are recorded one at a time and added in order, so a
    /// resumed pass gives the same scores, bit for bit.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="texts">Token sequences, each run in one forward pass.</param>
    /// <param name="score">The score.</param>
    /// <param name="journal">Finished texts (<see cref="UnitJournal.None"/> keeps nothing).</param>
    /// <param name="threads">Threads (null = processor count).</param>
    /// <param name="progress">Advanced once per text.</param>
    /// <param name="cancellationToken">Stops before the next unfinished text.</param>
    public static double[,] ScoreUsage(
        Models.MoeModel model, IReadOnlyList<IReadOnlyList<int>> texts, PruneScore score, UnitJournal journal,
        int? threads = null, Runs.IProgressTask? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(journal);
        bool outputAware = score == PruneScore.OutputAware;
        var total = new ExpertActivityRecorder(model, outputNorms: outputAware);
        var single = new ExpertActivityRecorder(model, outputNorms: outputAware);
        var run = new Models.RunOptions { Observers = [single], ThreadCount = threads, Logits = Models.LogitsSelection.None };
        for (int i = 0; i < texts.Count; i++)
        {
            var text = texts[i];
            total.Add(journal.GetOrCompute(UsageUnit(i), () =>
            {
                single.Clear();
                model.Run(text.ToArray(), run);
                return single.Serialize();
            }, cancellationToken));
            progress?.Advance();
        }

        var scores = new double[total.LayerCount, total.ExpertCount];
        for (int l = 0; l < total.LayerCount; l++)
        {
            for (int e = 0; e < total.ExpertCount; e++)
            {
                scores[l, e] = outputAware ? total.OutputNormSums[l, e] : total.Selections[l, e];
            }
        }

        return scores;
    }

    /// <summary>
    /// The settings a resumable usage-scoring pass is compared on (the corpus by the SHA-256 of its tokens); a run folder
    /// made with other values is refused, naming the setting.
    /// </summary>
    public static Dictionary<string, string> ScoringSettings(PruneScore score, IReadOnlyList<IReadOnlyList<int>> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        return new Dictionary<string, string>
        {
            ["score"] = score == PruneScore.OutputAware ? "output-aware" : "frequency",
            ["corpus tokens sha256"] = UnitJournal.HashOf(texts),
            ["chunks"] = texts.Count.ToString(CultureInfo.InvariantCulture),
        };
    }

    /// <summary>The journal unit id of text <paramref name="index"/> of the usage-scoring pass.</summary>
    public static string UsageUnit(int index) => "text/" + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Keeps the <paramref name="keepPerLayer"/> best-scored experts of every MoE block (ties to the lower index).
    /// With <paramref name="groupCount"/> &gt; 1 (DeepSeek V3 group-limited routing) the best <c>keepPerLayer / groupCount</c>
    /// of each group are kept, so groups stay aligned.
    /// </summary>
    /// <param name="scores">Score per <c>[layer, expert]</c>.</param>
    /// <param name="moeLayers">Blocks with routed experts.</param>
    /// <param name="expertCount">Experts per block.</param>
    /// <param name="keepPerLayer">Experts to keep per block.</param>
    /// <param name="groupCount">Expert groups (0 or 1 = none).</param>
    /// <exception cref="ExpertScopeException">The count is out of range or not a multiple of the group count.</exception>
    public static Dictionary<int, IReadOnlyList<int>> TopByScore(double[,] scores, IEnumerable<int> moeLayers, int expertCount, int keepPerLayer, int groupCount = 1)
    {
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(moeLayers);
        CheckKeepCount(keepPerLayer, expertCount, groupCount);
        int groups = Math.Max(1, groupCount);
        int perGroup = expertCount / groups;
        int keepPerGroup = keepPerLayer / groups;
        var plan = new Dictionary<int, IReadOnlyList<int>>();
        foreach (int layer in moeLayers)
        {
            var kept = new List<int>();
            for (int g = 0; g < groups; g++)
            {
                kept.AddRange(Enumerable.Range(g * perGroup, perGroup)
                    .OrderByDescending(e => scores[layer, e])
                    .ThenBy(e => e)
                    .Take(keepPerGroup));
            }

            plan[layer] = [.. kept.Order()];
        }

        return plan;
    }

    /// <summary>Checks a per-block keep count before any work: between 1 and the expert count, a multiple of the group count.</summary>
    /// <exception cref="ExpertScopeException">The count is out of range or not a multiple of the group count.</exception>
    public static void CheckKeepCount(int keepPerLayer, int expertCount, int groupCount = 1)
    {
        if (keepPerLayer < 1 || keepPerLayer > expertCount)
        {
            throw new ExpertScopeException($"keep between 1 and {expertCount} experts per block (asked for {keepPerLayer}).");
        }

        int groups = Math.Max(1, groupCount);
        if (keepPerLayer % groups != 0)
        {
            throw new ExpertScopeException($"the model routes within {groups} expert groups: keep a multiple of {groups} experts per block (asked for {keepPerLayer}).");
        }
    }

    /// <summary>The per-block keep count for a fraction of the experts (at least one group's worth, rounded to the group count).</summary>
    public static int KeepCountForFraction(double fraction, int expertCount, int groupCount = 1)
    {
        if (!(fraction > 0 && fraction <= 1))
        {
            throw new ExpertScopeException($"--keep-fraction must be in (0, 1] (got {fraction.ToString(CultureInfo.InvariantCulture)}).");
        }

        int groups = Math.Max(1, groupCount);
        int count = (int)Math.Round(fraction * expertCount / groups, MidpointRounding.AwayFromZero) * groups;
        return Math.Clamp(count, groups, expertCount);
    }

    /// <summary>
    /// Reads a keep list: one line per MoE block, <c>LAYER: E, E, E</c> (experts to keep), blank lines and lines
    /// starting with <c>#</c> ignored.
    /// </summary>
    /// <exception cref="ExpertScopeException">A malformed line (the message names file and line).</exception>
    public static Dictionary<int, IReadOnlyList<int>> ReadKeepFile(string path)
    {
        var plan = new Dictionary<int, IReadOnlyList<int>>();
        int lineNumber = 0;
        foreach (string raw in File.ReadLines(path))
        {
            lineNumber++;
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0 || !int.TryParse(line.AsSpan(0, colon).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int layer))
            {
                throw new ExpertScopeException($"{path}:{lineNumber}: expected 'LAYER: E, E, ...' (got '{line}').");
            }

            var experts = new List<int>();
            foreach (string item in line[(colon + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!int.TryParse(item, NumberStyles.None, CultureInfo.InvariantCulture, out int expert))
                {
                    throw new ExpertScopeException($"{path}:{lineNumber}: '{item}' is not an expert index.");
                }

                experts.Add(expert);
            }

            if (!plan.TryAdd(layer, experts))
            {
                throw new ExpertScopeException($"{path}:{lineNumber}: block {layer} is listed twice.");
            }
        }

        return plan;
    }

    /// <summary>The complement of a keep plan: per block, the experts removed.</summary>
    public static Dictionary<int, int[]> Removed(IReadOnlyDictionary<int, IReadOnlyList<int>> keep, int expertCount)
    {
        ArgumentNullException.ThrowIfNull(keep);
        return keep.ToDictionary(p => p.Key, p => Enumerable.Range(0, expertCount).Except(p.Value).ToArray());
    }
}
