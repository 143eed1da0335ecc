using ExpertScope.Core;
using ExpertScope.Experiments.Data;
using ExpertScope.Experiments.Data.WordNet;

namespace ExpertScope.Experiments.Probes;

/// <summary>The pairs a probe measures, with the sentence pool its token-identity control draws from.</summary>
/// <param name="Pairs">The pairs, after the seeded <see cref="ProbeSettings.Limit"/> sample.</param>
/// <param name="Pool">Every distinct sentence of the loaded data set (before the sample), in first-seen order.</param>
/// <param name="Available">How many pairs the data set gave before the sample.</param>
/// <param name="Skipped">Malformed records a lenient load skipped, each with its reason.</param>
public sealed record ProbeDataSet(IReadOnlyList<WordPair> Pairs, IReadOnlyList<string> Pool, int Available, IReadOnlyList<string> Skipped);

/// <summary>
/// Finds and loads a probe's data set. The data folder is, in order: <c>--data-dir</c>, the
/// <c>EXPERTSCOPE_DATA</c> environment variable, or <c>./data</c> in the current directory.
/// </summary>
public static class ProbeData
{
    /// <summary>The environment variable naming the data folder.</summary>
    public const string EnvironmentVariable = "EXPERTSCOPE_DATA";

    /// <summary>The data folder: <paramref name="explicitFolder"/>, else <c>$EXPERTSCOPE_DATA</c>, else <c>./data</c>.</summary>
    public static string ResolveDataFolder(string? explicitFolder)
    {
        if (!string.IsNullOrEmpty(explicitFolder))
        {
            return explicitFolder;
        }

        var fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
        return string.IsNullOrEmpty(fromEnvironment) ? Path.Combine(Directory.GetCurrentDirectory(), "data") : fromEnvironment;
    }

    /// <summary>Loads the pairs <paramref name="settings"/> ask for.</summary>
    /// <exception cref="ExpertScopeException">Unknown data set, a missing file (named, with how to point at the data), or a malformed record.</exception>
    public static ProbeDataSet Load(ProbeSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var options = settings.Lenient ? LoadOptions.CreateLenient() : LoadOptions.Strict;
        var spec = settings.Dataset.ToLowerInvariant();
        var parts = spec.Split(':');
        var name = parts[0];
        if (settings.Kind == ProbeKind.Substitution != (name == "swords"))
        {
            throw new ExpertScopeException(settings.Kind == ProbeKind.Substitution
                ? $"the substitution probe needs a SWORDS data set (swords:dev or swords:test), not '{settings.Dataset}'"
                : $"'{settings.Dataset}' is a substitution data set; use 'probe substitution'");
        }

        List<WordPair> pairs;
        switch (name)
        {
            case "wic":
            {
                var split = Split(parts, "dev", "train", "dev", "test");
                var folder = Path.Combine(settings.DataFolder, "wic");
                Require(settings, Path.Combine(folder, split, $"{split}.data.txt"), Path.Combine(folder, split, $"{split}.gold.txt"));
                pairs = [.. WicLoader.ReadSplit(folder, split, options)];
                break;
            }

            case "coarsewsd20":
            {
                var split = Split(parts, "test", "train", "test");
                var root = Path.Combine(settings.DataFolder, "coarsewsd20");
                Require(settings, root);
                // 100 pairs per label and word, as the data README's counts (4,000 pairs per split).
                pairs = [.. CoarseWsdLoader.BuildPairs(CoarseWsdLoader.ReadAll(root, split, options), 100, settings.Seed)];
                break;
            }

            case "mcl-wic":
            {
                // mcl-wic:LANG (dev, LANG-LANG) or mcl-wic:SPLIT:L1-L2.
                var split = parts.Length >= 3 ? parts[1] : "dev";
                var languages = parts.Length >= 3 ? parts[2] : parts.Length == 2 ? parts[1] : "en";
                if (!languages.Contains('-', StringComparison.Ordinal))
                {
                    languages = languages + "-" + languages;
                }

                var data = Path.Combine(settings.DataFolder, "mcl-wic", split, $"{split}.{languages}.data");
                var gold = Path.ChangeExtension(data, ".gold");
                Require(settings, data, gold);
                pairs = [.. McLWicLoader.ReadFile(data, gold, options)];
                break;
            }

            case "wordnet":
            {
                var database = LoadWordNet(settings, options);
                pairs = [.. WordNetExamplePairs.Build(database, [], 1, settings.Seed)];
                break;
            }

            case "swords":
            {
                var split = Split(parts, "dev", "dev", "test");
                var file = Path.Combine(settings.DataFolder, "swords", split == "dev" ? "swords-v1.1_dev.json.gz" : "swords-v1.1_test-subset.json.gz");
                Require(settings, file);
                var targets = SwordsLoader.ReadTargets(file, options);
                var wordNet = settings.InflectSubstitutes || settings.WordNetDissimilar > 0 ? LoadWordNet(settings, options) : null;
                var inflector = settings.InflectSubstitutes ? new SubstituteInflector(wordNet!) : null;
                pairs = [.. SwordsLoader.BuildPairs(targets, settings.SimilarThreshold, inflector)];
                if (settings.WordNetDissimilar > 0)
                {
                    var dissimilarPool = new WordNetDissimilarPool(wordNet!);
                    pairs.AddRange(SwordsLoader.BuildWordNetDissimilarPairs(targets, dissimilarPool, settings.WordNetDissimilar, settings.Seed, inflector: inflector));
                }

                break;
            }

            default:
                throw new ExpertScopeException(
                    $"unknown data set '{settings.Dataset}' for the word-sense probe; use wic:dev|train|test, coarsewsd20[:train|test], mcl-wic:LANG or mcl-wic:SPLIT:L1-L2, or wordnet");
        }

        var pool = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var pair in pairs)
        {
            // Substitution sentences are edited copies of the contexts; only the contexts are natural text.
            foreach (var sentence in settings.Kind == ProbeKind.Substitution ? [pair.First.Sentence] : new[] { pair.First.Sentence, pair.Second.Sentence })
            {
                if (seen.Add(sentence))
                {
                    pool.Add(sentence);
                }
            }
        }

        var skipped = options.Skipped.Reasons.Select(reason => reason.Message).ToList();
        if (pairs.Count == 0)
        {
            // Name where the data came from: an empty result is a data problem, whatever skipped the records.
            string why = skipped.Count > 0 ? $"; {skipped.Count} records were skipped, the first: {skipped[0]}" : string.Empty;
            throw new ExpertScopeException($"data set '{settings.Dataset}' in '{settings.DataFolder}' gave no pairs{why}");
        }

        // Substitution samples whole contexts, the unit of its per-context test; the word-sense probe balances conditions.
        var sample = settings.Kind == ProbeKind.Substitution
            ? ContextSampling.Sample(pairs, settings.Limit, settings.Seed)
            : Sample(pairs, settings.Limit, settings.Seed, pair => ProbeConditions.Of(settings.Kind, pair));
        return new ProbeDataSet(sample, pool, pairs.Count, skipped);
    }

    /// <summary>
    /// A seeded sample of at most <paramref name="limit"/> pairs, balanced across conditions: each condition's pairs
    /// are shuffled and the conditions are taken in turn (ordinal order of their names) until the limit is reached
    /// or a condition runs out. Without a limit, every pair in data-set order.
    /// </summary>
    /// <param name="pairs">The data set's pairs.</param>
    /// <param name="limit">At most this many pairs, or null for all.</param>
    /// <param name="seed">Seed of the shuffles.</param>
    /// <param name="condition">
    /// The condition of a pair (<see cref="ProbeConditions.Of"/>: same/different sense; similar, dissimilar,
    /// WordNet-dissimilar); null balances the raw same/different labels.
    /// </param>
    public static IReadOnlyList<WordPair> Sample(IReadOnlyList<WordPair> pairs, int? limit, int seed, Func<WordPair, string>? condition = null)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        if (limit is not { } cap || cap >= pairs.Count)
        {
            return pairs;
        }

        condition ??= pair => pair.Label == PairLabel.Same ? "0-same" : "1-different";
        var random = new Random(seed);
        var queues = pairs.GroupBy(condition).OrderBy(group => group.Key, StringComparer.Ordinal).Select(group =>
        {
            var list = group.ToArray();
            random.Shuffle(list);
            return new Queue<WordPair>(list);
        }).ToList();
        var sample = new List<WordPair>(cap);
        while (sample.Count < cap)
        {
            foreach (var queue in queues)
            {
                if (sample.Count < cap && queue.Count > 0)
                {
                    sample.Add(queue.Dequeue());
                }
            }
        }

        return sample;
    }

    private static WordNetDatabase LoadWordNet(ProbeSettings settings, LoadOptions options)
    {
        var folder = settings.WordNetFolder ?? "/usr/share/wordnet";
        if (!File.Exists(Path.Combine(folder, "data.noun")))
        {
            throw new ExpertScopeException(
                $"WordNet 3.0 was not found: '{Path.Combine(folder, "data.noun")}' is missing (install the Debian package wordnet-base, or pass --wordnet-dir)");
        }

        return WordNetDatabase.Load(folder, options);
    }

    private static string Split(string[] parts, string fallback, params string[] allowed)
    {
        var split = parts.Length > 1 ? parts[1] : fallback;
        return allowed.Contains(split, StringComparer.Ordinal)
            ? split
            : throw new ExpertScopeException($"unknown split '{split}' for {parts[0]}; use {string.Join(", ", allowed)}");
    }

    private static void Require(ProbeSettings settings, params string[] paths)
    {
        foreach (var path in paths)
        {
            if (!File.Exists(path) && !Directory.Exists(path))
            {
                throw new ExpertScopeException(
                    $"data set '{settings.Dataset}' needs '{path}', which does not exist (the data folder is '{settings.DataFolder}': " +
                    $"pass --data-dir, or set {EnvironmentVariable}, or put the data in ./data)");
            }
        }
    }
}
