using System.Text;
using System.Text.Json;
using ExpertScope.Experiments.Metrics;
using ExpertScope.Experiments.Probes;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>
/// The word-sense probe on random-weight models (whose routing carries no meaning): a planted confound or pure chance
/// gives no finding, a planted contextual effect is found, and the metrics' invariants hold end to end.
/// </summary>
public sealed class ProbesSoundnessTests
{
    private static readonly string[] Targets = ["bank", "light", "match", "spring", "plant", "bat", "seal", "pitch", "trunk", "crane"];

    private static readonly string[] Filler =
    [
        "the", "a", "old", "green", "quick", "river", "small", "every", "morning", "blue", "house", "cold", "paper", "stone",
        "never", "under", "bright", "music", "window", "silver", "garden", "city", "winter", "yellow", "heavy", "quiet",
    ];

    [Fact]
    public async Task SharesOfIdenticalPrefixesAloneGiveNoFinding()
    {
        // Both conditions draw their sentences alike; only same-sense has pairs identical up to the target (half of them).
        using var temp = new TempDirectory();
        var model = TinyModel(temp, "tiny-mixtral");
        var random = new Random(20261206);
        var rows = new List<(string Word, string First, int FirstIndex, string Second, int SecondIndex, bool Same)>();
        for (var i = 0; i < 36; i++)
        {
            var word = Targets[i % Targets.Length];
            var (first, firstIndex) = Sentence(random, word);
            var (second, secondIndex) = i % 2 == 0 ? SamePrefix(random, first, firstIndex) : Sentence(random, word);
            rows.Add((word, first, firstIndex, second, secondIndex, true));
            var (third, thirdIndex) = Sentence(random, word);
            var (fourth, fourthIndex) = Sentence(random, word);
            rows.Add((word, third, thirdIndex, fourth, fourthIndex, false));
        }

        var data = WriteWic(temp, rows);
        var settings = Settings(data);
        var outcome = await ProbeExperiment.RunAsync(model, settings, temp.File("excluded"));
        var main = outcome.Results.Comparisons[0];
        Assert.Equal((ProbeConditions.SameSense, ProbeConditions.DifferentSense), (main.First, main.Second));
        Assert.False(main.DifferenceFound, string.Join("\n", outcome.Summary));
        Assert.Equal(0, main.SignificantLayers);
        Assert.Contains(outcome.Summary, line => line.StartsWith("same-sense vs different-sense", StringComparison.Ordinal) && line.Contains("No difference was found.", StringComparison.Ordinal));
        Assert.DoesNotContain(outcome.Summary, line => line.StartsWith("Caution: ", StringComparison.Ordinal));

        // The identical-prefix pairs (18 planted, a few more by chance: "the bank" opens sentences of both conditions) are
        // counted by condition and reason, and no kept pair (position-matched ones included) has one.
        var identicalIds = rows.Select((row, i) => (row, i))
            .Where(item => item.row.FirstIndex == item.row.SecondIndex
                           && item.row.First.Split(' ').Take(item.row.FirstIndex + 1).SequenceEqual(item.row.Second.Split(' ').Take(item.row.SecondIndex + 1)))
            .Select(item => $"wic.dev.{item.i}").ToList();
        var drops = outcome.Plan.DroppedPairs.Where(drop => drop.Reason == DropReasons.IdenticalPrefix).ToList();
        Assert.Equal(identicalIds, drops.Select(drop => drop.PairId));
        var sameDropped = drops.Count(drop => drop.Condition == ProbeConditions.SameSense);
        Assert.InRange(sameDropped, 18, 20);
        Assert.Equal(36 - sameDropped, outcome.Results.ByConditionLayerMean[ProbeConditions.SameSense].Count);
        var ids = outcome.Plan.TokenIds;
        Assert.DoesNotContain(outcome.Plan.Pairs, pair => pair.First.Position == pair.Second.Position
            && ids[pair.First.Sentence].Take(pair.First.Tokens[^1] + 1).SequenceEqual(ids[pair.Second.Sentence].Take(pair.Second.Tokens[^1] + 1)));
        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(temp.File("excluded"), ProbeOutputs.ResultsFileName))))
        {
            var root = json.RootElement;
            Assert.Equal(sameDropped, root.GetProperty("dropped_counts").GetProperty(DropReasons.IdenticalPrefix).GetProperty(ProbeConditions.SameSense).GetInt32());
            Assert.Equal(DropReasons.IdenticalPrefix, root.GetProperty("dropped_pairs")[0].GetProperty("reason").GetString());
            Assert.Equal("excluded", root.GetProperty("settings").GetProperty("identical_prefixes").GetString());
            Assert.False(root.GetProperty("comparisons")[0].GetProperty("difference_found").GetBoolean());
        }

        // Kept (the old behaviour), the same data "finds" a sense effect: the confound is real and planted.
        var kept = await ProbeExperiment.RunAsync(model, settings with { KeepIdenticalPrefixes = true }, temp.File("kept"));
        Assert.True(kept.Results.Comparisons[0].DifferenceFound);
        // Identical prefixes route identically: κ = 1 at every layer under every sub-token mode.
        foreach (var mode in new[] { SubTokenMode.Mean, SubTokenMode.First, SubTokenMode.Last })
        {
            var run = mode == SubTokenMode.Mean ? kept : await ProbeExperiment.RunAsync(model, settings with { KeepIdenticalPrefixes = true, SubTokens = mode }, temp.File($"kept-{mode}"));
            var identical = run.Results.Measurements.Where(m => drops.Any(drop => drop.PairId == m.Pair.PairId)).ToList();
            Assert.Equal(drops.Count, identical.Count);
            Assert.Contains(identical, m => m.Pair.First.Tokens.Count > 1);
            Assert.All(identical, m => Assert.All(m.ByLayer, s => Assert.Equal(1.0, s.Kappa, 12)));
            Assert.All(identical, m => Assert.All(m.ByLayer, s => Assert.Equal(1.0, s.Weighted, 6)));
        }
    }

    [Fact]
    public async Task UnevenSharesOfIdenticalTargetTokensAreFlagged()
    {
        // Same-sense pairs repeat the word form; half of the different-sense pairs inflect one target ("banks"), so
        // the share of pairs with identical target token ids differs between the conditions: the summary must say so.
        using var temp = new TempDirectory();
        var model = TinyModel(temp, "tiny-mixtral");
        var random = new Random(20261207);
        var rows = new List<(string Word, string First, int FirstIndex, string Second, int SecondIndex, bool Same)>();
        for (var i = 0; i < 24; i++)
        {
            var word = Targets[i % Targets.Length];
            var (first, firstIndex) = Sentence(random, word);
            var (second, secondIndex) = Sentence(random, word);
            rows.Add((word, first, firstIndex, second, secondIndex, true));
            var (third, thirdIndex) = Sentence(random, word);
            var (fourth, fourthIndex) = Sentence(random, i % 2 == 0 ? word + "s" : word);
            rows.Add((word, third, thirdIndex, fourth, fourthIndex, false));
        }

        var outcome = await ProbeExperiment.RunAsync(model, Settings(WriteWic(temp, rows)), temp.File("uneven"));
        Assert.Contains(outcome.Summary, line => line.StartsWith("Caution: ", StringComparison.Ordinal) && line.Contains("identical token ids", StringComparison.Ordinal));
        Assert.Contains(outcome.Summary, line => line.StartsWith("Token-matched", StringComparison.Ordinal));
    }

    [Fact]
    public async Task PlantedContextEffectIsFound()
    {
        // Same-sense pairs share the four words before the target (their first words differ, so no identical prefix);
        // different-sense pairs share nothing. A random router still sees context through attention: a real routing effect.
        using var temp = new TempDirectory();
        var model = TinyModel(temp, "tiny-mixtral");
        var random = new Random(7);
        var rows = new List<(string Word, string First, int FirstIndex, string Second, int SecondIndex, bool Same)>();
        for (var i = 0; i < 30; i++)
        {
            var word = Targets[i % Targets.Length];
            var context = string.Join(' ', Enumerable.Range(0, 4).Select(_ => Filler[random.Next(Filler.Length)]));
            rows.Add((word, $"Monday {context} {word} .", 5, $"Friday {context} {word} today .", 5, true));
            var (first, firstIndex) = Sentence(random, word);
            var (second, secondIndex) = Sentence(random, word);
            rows.Add((word, first, firstIndex, second, secondIndex, false));
        }

        var outcome = await ProbeExperiment.RunAsync(model, Settings(WriteWic(temp, rows)), temp.File("out"));
        var main = outcome.Results.Comparisons[0];
        Assert.DoesNotContain(outcome.Plan.DroppedPairs, drop => drop.Reason == DropReasons.IdenticalPrefix);
        Assert.True(main.DifferenceFound, string.Join("\n", outcome.Summary));
        Assert.True(main.LayerMean.RankBiserialLower > 0);
        Assert.True(main.LayerMean.CohensDLower > 0);
        Assert.Contains(outcome.Summary, line => line.StartsWith("same-sense vs different-sense", StringComparison.Ordinal) && line.Contains("A difference was found.", StringComparison.Ordinal));

        // The report defines every condition and column, marks exactly the run-wide significant layers (one chart per
        // comparison, so no two marks share a slot), draws at the page width and says what was kept.
        var html = ProbeOutputs.Report(outcome).ToHtml();
        Assert.All(ProbeOutputs.Glossary(ProbeKind.WordSense), entry => Assert.Contains("<td>" + Reports.HtmlReport.Escape(entry.Term) + "</td>", html, StringComparison.Ordinal));
        Assert.Equal(outcome.Results.Comparisons.Sum(c => c.SignificantLayers), System.Text.RegularExpressions.Regex.Matches(html, ">\\*</text>").Count);
        Assert.Equal(outcome.Results.Comparisons.Count + 2, System.Text.RegularExpressions.Regex.Matches(html, "<svg [^>]*width=\"940\"").Count);
        Assert.Contains("60/60 pairs kept", html, StringComparison.Ordinal);
        Assert.Contains("chance (measured load)", html, StringComparison.Ordinal);

        // The sentence-end readout reads the last token ('.' in both conditions) after the whole sentence.
        var end = await ProbeExperiment.RunAsync(model, Settings(WriteWic(temp, rows)) with { Position = ProbeReadout.SentenceEnd }, temp.File("end"));
        Assert.All(end.Plan.Pairs, pair => Assert.Equal(end.Plan.TokenIds[pair.First.Sentence].Count - 1, Assert.Single(pair.First.Tokens)));
        Assert.Equal(outcome.Plan.Pairs.Select(p => p.PairId), end.Plan.Pairs.Select(p => p.PairId));
    }

    [Fact]
    public async Task IncludeSharedLeavesKappaUnchangedEndToEnd()
    {
        using var temp = new TempDirectory();
        var model = TinyModel(temp, "tiny-deepseek2");
        var random = new Random(3);
        var rows = Enumerable.Range(0, 12).Select(i =>
        {
            var word = Targets[i % Targets.Length];
            var (first, firstIndex) = Sentence(random, word);
            var (second, secondIndex) = Sentence(random, word);
            return (word, first, firstIndex, second, secondIndex, i % 2 == 0);
        }).ToList();
        var settings = Settings(WriteWic(temp, rows));
        var without = await ProbeExperiment.RunAsync(model, settings, temp.File("without"));
        var with = await ProbeExperiment.RunAsync(model, settings with { IncludeShared = true }, temp.File("with"));
        Assert.True(with.Model.SharedExperts > 0);
        var pairs = without.Results.Measurements.Zip(with.Results.Measurements).ToList();
        Assert.All(pairs, p => Assert.Equal(p.First.Pair.PairId, p.Second.Pair.PairId));
        Assert.All(pairs, p => Assert.Equal(p.First.ByLayer.Select(s => s.Kappa), p.Second.ByLayer.Select(s => s.Kappa)));
        Assert.All(pairs, p => Assert.Equal(p.First.ByLayer.Select(s => s.LoadCorrectedKappa), p.Second.ByLayer.Select(s => s.LoadCorrectedKappa)));
        // Only the raw overlaps move (a shared expert is always in both sets).
        Assert.Contains(pairs, p => p.First.ByLayer[0].Overlap != p.Second.ByLayer[0].Overlap);
        Assert.All(with.Results.Measurements, m => Assert.All(m.ByLayer, s => Assert.InRange(s.Weighted, 0, 1 + 1e-9)));
    }

    [Fact]
    public void UnevenLoadRaisesClassicKappaButNotTheLoadCorrectedOne()
    {
        // 16 experts, k = 2, tokens drawn independently from a skewed load: pure chance, no relation between the pairs.
        var random = new Random(11);
        double[] popularity = [.. Enumerable.Range(0, 16).Select(e => 1.0 / ((1 + e) * (1 + e)))];
        var tokens = Enumerable.Range(0, 4000).Select(_ => Draw(random, popularity, 2)).ToList();
        var load = ExpertLoad.Measure(tokens, 16);
        Assert.Equal(2.0, load.SelectionRates.Sum(), 9);
        Assert.Equal(4.0 / 16, load.UniformChanceOverlap, 12);
        Assert.True(load.ChanceOverlap > 2 * load.UniformChanceOverlap);
        Assert.Equal(load.SelectionRates.Sum(q => q * q), load.ChanceOverlap, 12);

        var classic = new List<double>();
        var corrected = new List<double>();
        for (var i = 0; i + 1 < tokens.Count; i += 2)
        {
            ExpertChoice[] a = [.. tokens[i].Select(e => new ExpertChoice(e, 0.5f))];
            ExpertChoice[] b = [.. tokens[i + 1].Select(e => new ExpertChoice(e, 0.5f))];
            classic.Add(RoutingOverlap.ChanceCorrected(a, b, 16));
            corrected.Add(RoutingOverlap.LoadCorrected(RoutingOverlap.IntersectionOverK(a, b), 2, load.ChanceOverlap));
        }

        Assert.InRange(classic.Average(), 0.1, 1);                 // "above chance" by the classic κ: only load
        Assert.InRange(corrected.Average(), -0.03, 0.03);          // the load-corrected κ sees chance
        Assert.Equal(load.ChanceKappa, classic.Average(), 1);

        // Uniform load: the load-corrected κ is the classic one.
        var uniform = new ExpertLoad(100, 2, [.. Enumerable.Repeat(2.0 / 16, 16)]);
        Assert.Equal(uniform.UniformChanceOverlap, uniform.ChanceOverlap, 12);
        ExpertChoice[] x = [new(0, 0.5f), new(1, 0.5f)];
        ExpertChoice[] y = [new(1, 0.5f), new(2, 0.5f)];
        Assert.Equal(RoutingOverlap.ChanceCorrected(x, y, 16), RoutingOverlap.LoadCorrected(RoutingOverlap.IntersectionOverK(x, y), 2, uniform.ChanceOverlap), 12);
        Assert.Throws<ArgumentException>(() => RoutingOverlap.LoadCorrected(0.5, 2, 2));
        Assert.Throws<ArgumentException>(() => ExpertLoad.Measure([[0, 1], [2]], 16));
    }

    [Fact]
    public void SharedExpertsNeverChangeKappaAndWeightsAreRenormalised()
    {
        ExpertChoice[] first = [new(1, 0.4f), new(4, 0.3f), new(64, 1f, IsShared: true)];
        ExpertChoice[] second = [new(4, 0.1f), new(9, 0.5f), new(64, 1f, IsShared: true)];
        Assert.Equal(RoutingOverlap.ChanceCorrected(first, second, 16), RoutingOverlap.ChanceCorrected(first, second, 16, includeShared: true));
        Assert.NotEqual(RoutingOverlap.IntersectionOverK(first, second), RoutingOverlap.IntersectionOverK(first, second, includeShared: true));
        // DeepSeek-style weights summing to 2.5 (routed scaling factor): renormalised, identical sets give 1.
        ExpertChoice[] scaled = [new(1, 1.5f), new(2, 1.0f)];
        Assert.Equal(1.0, RoutingOverlap.WeightedOverlap(scaled, scaled), 12);
        // Expert 4: 0.3/0.7 against 0.1/0.6.
        Assert.Equal(0.1 / 0.6, RoutingOverlap.WeightedOverlap(first, second), 6);
        Assert.Throws<ArgumentException>(() => RoutingOverlap.WeightedOverlap([new(1, 0f)], [new(1, 0f)]));
    }

    [Fact]
    public void IdenticalMultiTokenRoutingScoresOneUnderEverySubTokenMode()
    {
        var a = new TokenRouting([0, 1], [0.6f, 0.4f], [0.6f, 0.4f, 0f, 0f]);
        var b = new TokenRouting([1, 2], [0.5f, 0.5f], [0f, 0.5f, 0.5f, 0f]);
        var c = new TokenRouting([2, 3], [0.7f, 0.3f], [0f, 0f, 0.7f, 0.3f]);
        foreach (var mode in new[] { SubTokenMode.Mean, SubTokenMode.First, SubTokenMode.Last })
        {
            var scores = PairScores.Compute([a, b, c], [a, b, c], mode, chanceOverlap: 1.2);
            Assert.Equal(1.0, scores.Kappa, 12);
            Assert.Equal(1.0, scores.Overlap, 12);
            Assert.Equal(1.0, scores.Weighted, 6);
            Assert.Equal(1.0, scores.LoadCorrectedKappa, 12);
            Assert.Equal(0.0, scores.JensenShannon, 6);
        }
    }

    [Fact]
    public void SamplingBalancesConditionsNotLabels()
    {
        // Substitution: similar, dissimilar and WordNet-dissimilar (two labels, three conditions).
        var location = new Data.SourceLocation("x", 1);
        Data.WordPair Pair(string id, Data.PairLabel label) => new(id, "w", "n", new("w a", new(0, 1), location), new("w b", new(0, 1), location), label);
        var pairs = Enumerable.Range(0, 30).Select(i => Pair($"s{i}", Data.PairLabel.Same))
            .Concat(Enumerable.Range(0, 30).Select(i => Pair($"d{i}", Data.PairLabel.Different)))
            .Concat(Enumerable.Range(0, 30).Select(i => Pair($"swords-wn.{i}", Data.PairLabel.Different))).ToList();
        var sample = ProbeData.Sample(pairs, 30, 1, pair => ProbeConditions.Of(ProbeKind.Substitution, pair));
        Assert.All(sample.GroupBy(pair => ProbeConditions.Of(ProbeKind.Substitution, pair)), group => Assert.Equal(10, group.Count()));
    }

    [Fact]
    public async Task ADataSetOfOnlyIdenticalPrefixesIsOneClearError()
    {
        using var temp = new TempDirectory();
        var model = TinyModel(temp, "tiny-mixtral");
        var data = WriteWic(temp, [("bank", "The bank was closed .", 1, "The bank was open .", 1, true), ("bank", "A bank of fog .", 1, "A bank of snow .", 1, false)]);
        var error = await Assert.ThrowsAsync<Core.ExpertScopeException>(() => ProbeExperiment.RunAsync(model, Settings(data), temp.File("out")));
        Assert.Contains("every pair was dropped", error.Message, StringComparison.Ordinal);
        Assert.Contains("same tokens up to and including the target", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TokenIdentityControlNeedsTheTargetAsAWholeWord()
    {
        using var temp = new TempDirectory();
        using var model = Models.MoeModel.Load(TinyModel(temp, "tiny-mixtral"));
        var play = WordSensePair("p0", "play", "We play chess today .", "They play music now .");
        var players = WordSensePair("p1", "players", "The players ran home .", "Many players sang loudly .");
        var onlyInside = ProbePlan.Build(ProbeKind.WordSense, DataSet(play, players), model.Tokenizer, seed: 1);
        // " play" occurs in the unrelated sentences only as the start of " players": no control.
        var drop = Assert.Single(onlyInside.DroppedPairs, d => d.PairId == "p0#token-identity");
        Assert.Equal(DropReasons.InsideLongerWord, drop.Reason);
        Assert.DoesNotContain(onlyInside.Pairs, pair => pair.PairId == "p0#token-identity");
        Assert.Equal(DropReasons.NoOccurrence, Assert.Single(onlyInside.DroppedPairs, d => d.PairId == "p1#token-identity").Reason);
        Assert.Equal(2, onlyInside.Anchors);

        // With "play" as a whole word in an unrelated sentence, the control is formed there, with the anchor's token ids.
        var children = WordSensePair("p2", "play", "Children play outside again .", "Dogs play ball well .");
        var plan = ProbePlan.Build(ProbeKind.WordSense, DataSet(play, players, children), model.Tokenizer, seed: 1);
        var control = Assert.Single(plan.Pairs, pair => pair.PairId == "p0#token-identity");
        Assert.True(control.SameTokenIds);
        Assert.Contains(plan.Sentences[control.Second.Sentence], new[] { "Children play outside again .", "Dogs play ball well ." });
        Assert.Equal(control.First.Tokens.Select(t => plan.TokenIds[control.First.Sentence][t]), control.Second.Tokens.Select(t => plan.TokenIds[control.Second.Sentence][t]));
    }

    [Fact]
    public void TokenIdentityComparisonsUseOnlySameTokenSensePairsAndHolmSpansTheRun()
    {
        var measurements = new List<PairMeasurement>();
        for (var i = 0; i < 10; i++)
        {
            // Same-sense pairs with identical token ids score high, the rest (board/boards) low.
            measurements.Add(Measurement($"s{i}", ProbeConditions.SameSense, i < 6 ? 0.8 + (0.01 * i) : 0.1, sameIds: i < 6));
            measurements.Add(Measurement($"d{i}", ProbeConditions.DifferentSense, 0.3 + (0.01 * i), sameIds: i % 2 == 0));
            measurements.Add(Measurement($"t{i}", ProbeConditions.TokenIdentity, 0.5 + (0.02 * i), sameIds: true));
            measurements.Add(Measurement($"w{i}", ProbeConditions.DifferentWord, 0.05 * i, sameIds: false));
        }

        var settings = new ProbeSettings { Kind = ProbeKind.WordSense, Dataset = "wic:dev", DataFolder = ".", Metric = ProbeMetric.Overlap, BootstrapResamples = 200 };
        var results = ProbeAnalysis.Analyze(ProbeKind.WordSense, [0, 1], measurements, settings);
        var main = results.Comparisons[0];
        Assert.Null(main.FirstRestrictedTo);
        Assert.Equal((10, 10), (main.LayerMean.CountFirst, main.LayerMean.CountSecond));
        var sameVsToken = Assert.Single(results.Comparisons, c => c.First == ProbeConditions.SameSense && c.Second == ProbeConditions.TokenIdentity);
        Assert.Equal("same-token-ids", sameVsToken.FirstRestrictedTo);
        Assert.Equal((6, 10), (sameVsToken.LayerMean.CountFirst, sameVsToken.LayerMean.CountSecond));
        Assert.Equal(5, Assert.Single(results.Comparisons, c => c.First == ProbeConditions.DifferentSense).LayerMean.CountFirst);

        // One Holm family: every comparison's layers and layer mean.
        double[] family = [.. results.Comparisons.SelectMany(c => c.ByLayer.Append(c.LayerMean).Select(s => s.MannWhitneyP))];
        Assert.Equal(4 * 3, family.Length);
        Assert.Equal(family.Length, results.TestsCorrected);
        Assert.Equal(Statistics.MultipleComparisons.Adjust(family, Statistics.PAdjustMethod.Holm),
            results.Comparisons.SelectMany(c => c.ByLayer.Append(c.LayerMean).Select(s => s.MannWhitneyHolmRun)));
        Assert.Equal(Statistics.MultipleComparisons.Adjust(family, Statistics.PAdjustMethod.BenjaminiHochberg),
            results.Comparisons.SelectMany(c => c.ByLayer.Append(c.LayerMean).Select(s => s.MannWhitneyBhRun)));
        Assert.All(results.Comparisons, c => Assert.Equal(c.ByLayer.Count(s => s.MannWhitneyHolmRun < 0.05), c.SignificantLayers));
        Assert.All(results.Comparisons, c => Assert.Equal(c.SignificantLayers > 0 || c.LayerMean.MannWhitneyHolmRun < 0.05, c.DifferenceFound));
        // Effect sizes come with bootstrap intervals around them.
        Assert.All(results.Comparisons, c => Assert.InRange(c.LayerMean.RankBiserial, c.LayerMean.RankBiserialLower, c.LayerMean.RankBiserialUpper));
        Assert.All(results.Comparisons, c => Assert.InRange(c.LayerMean.CohensD, c.LayerMean.CohensDLower, c.LayerMean.CohensDUpper));
    }

    private static PairMeasurement Measurement(string id, string condition, double value, bool sameIds) =>
        new(new PlannedPair(id, condition, "w", new WordOccurrence(0, [0]), new WordOccurrence(1, [1]), false, null) { SameTokenIds = sameIds },
            [new PairScores(value, value, value, value, 1 - value), new PairScores(value, value, value, value, 1 - value)]);

    private static Data.WordPair WordSensePair(string id, string word, string first, string second)
    {
        var location = new Data.SourceLocation("test", 1);
        Data.SentenceTarget Target(string sentence)
        {
            var start = sentence.IndexOf(" " + word + " ", StringComparison.Ordinal) + 1;
            return new(sentence, new(start, start + word.Length), location);
        }

        return new(id, word, "V", Target(first), Target(second), Data.PairLabel.Same);
    }

    private static ProbeDataSet DataSet(params Data.WordPair[] pairs) =>
        new(pairs, [.. pairs.SelectMany(pair => new[] { pair.First.Sentence, pair.Second.Sentence })], pairs.Length, []);

    private static ProbeSettings Settings(string dataFolder) => new()
    {
        Kind = ProbeKind.WordSense, Dataset = "wic:dev", DataFolder = dataFolder, Seed = 1, BootstrapResamples = 200,
    };

    private static string TinyModel(TempDirectory temp, string preset)
    {
        var path = temp.File(preset + ".gguf");
        SyntheticModelWriter.Write(SyntheticPresets.Get(preset), path);
        return path;
    }

    // A sentence of filler words with the target at a random word index; returns the sentence and that index.
    private static (string Sentence, int Index) Sentence(Random random, string target)
    {
        var words = Enumerable.Range(0, random.Next(5, 9)).Select(_ => Filler[random.Next(Filler.Length)]).ToList();
        var index = random.Next(1, words.Count - 1);
        words[index] = target;
        words.Add(".");
        return (string.Join(' ', words), index);
    }

    // The same words up to and including the target, then another continuation.
    private static (string Sentence, int Index) SamePrefix(Random random, string sentence, int index)
    {
        var words = sentence.Split(' ').Take(index + 1).ToList();
        words.AddRange(Enumerable.Range(0, 3).Select(_ => Filler[random.Next(Filler.Length)]));
        words.Add("today .");
        return (string.Join(' ', words), index);
    }

    private static string WriteWic(TempDirectory temp, IReadOnlyList<(string Word, string First, int FirstIndex, string Second, int SecondIndex, bool Same)> rows)
    {
        var root = temp.File("data-" + Guid.NewGuid().ToString("N"));
        var folder = Path.Combine(root, "wic", "dev");
        Directory.CreateDirectory(folder);
        var data = new StringBuilder();
        var gold = new StringBuilder();
        foreach (var row in rows)
        {
            data.Append(row.Word).Append("\tN\t").Append(row.FirstIndex).Append('-').Append(row.SecondIndex).Append('\t').Append(row.First).Append('\t').Append(row.Second).Append('\n');
            gold.Append(row.Same ? "T\n" : "F\n");
        }

        File.WriteAllText(Path.Combine(folder, "dev.data.txt"), data.ToString());
        File.WriteAllText(Path.Combine(folder, "dev.gold.txt"), gold.ToString());
        return root;
    }

    private static int[] Draw(Random random, double[] popularity, int k)
    {
        var chosen = new List<int>();
        while (chosen.Count < k)
        {
            var total = popularity.Where((_, e) => !chosen.Contains(e)).Sum();
            var u = random.NextDouble() * total;
            for (var e = 0; e < popularity.Length; e++)
            {
                if (chosen.Contains(e))
                {
                    continue;
                }

                u -= popularity[e];
                if (u <= 0)
                {
                    chosen.Add(e);
                    break;
                }
            }
        }

        return [.. chosen];
    }
}
