using ExpertScope.Experiments.Pruning;
using ExpertScope.Experiments.Runs;
using ExpertScope.Experiments.Steering;
using ExpertScope.Models;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>
/// Interrupting a steering / super-expert / usage-scoring run (cancellation after some units) and running it again in
/// the same folder gives exactly the results of an uninterrupted run, without redoing finished units.
/// </summary>
public sealed class SteeringResumeTests
{
    [Fact]
    public void SuperExperts_InterruptedAndResumed_EqualsUninterrupted_BitForBit()
    {
        using var temp = new TempDirectory();
        var (_, corpus) = SuperExpertsTests.PlantOutlier(temp, factor: 300f);
        string modelPath = temp.File("outlier.gguf");
        using var model = MoeModel.Load(modelPath);
        var options = new SuperExpertOptions { Threads = 1, Seeds = 2 };
        var settings = SuperExperts.RunSettings(corpus, options);
        var manifest = UnitJournal.Manifest("super-experts", modelPath, settings);

        var reference = SuperExperts.Analyse(model, corpus, options);
        Assert.Equal(4, reference.Pruning.Count); // baseline, super-experts, random-1, random-2
        SuperExperts.WriteOutputs(temp.File("reference"), reference, settings);

        // Units: 4 texts, then 4 conditions. Stop inside the profile pass, then again inside the perplexity pass.
        string folder = temp.File("resumed");
        foreach (int stopAfter in new[] { 2, 5 })
        {
            using var run = RunFolder.OpenOrCreate(folder, manifest);
            var stopper = new StopAfter(stopAfter); // progress counts resumed units too
            Assert.ThrowsAny<OperationCanceledException>(() =>
                SuperExperts.Analyse(model, corpus, options, stopper, new UnitJournal(run), stopper.Token));
            Assert.Equal(stopAfter, run.FinishedUnits.Count);
        }

        SuperExpertProfile resumed;
        using (var run = RunFolder.OpenOrCreate(folder, manifest))
        {
            Assert.True(run.IsResumed);
            resumed = SuperExperts.Analyse(model, corpus, options, null, new UnitJournal(run));
            Assert.Equal(8, run.Journal.Records.Count);
        }

        SuperExperts.WriteOutputs(folder, resumed, settings);
        foreach (string name in new[] { "experts.csv", "residual.csv", "pruning.csv", "summary.json" })
        {
            Assert.Equal(File.ReadAllBytes(temp.File("reference/" + name)), File.ReadAllBytes(Path.Combine(folder, name)));
        }

        var changed = UnitJournal.Manifest("super-experts", modelPath, SuperExperts.RunSettings(corpus, options with { Seeds = 3 }));
        var refused = Assert.Throws<RunMismatchException>(() => RunFolder.OpenOrCreate(folder, changed));
        Assert.Contains("setting 'seeds' was '2', now '3'", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Discovery_InterruptedAndResumed_EqualsUninterrupted_BitForBit()
    {
        using var temp = new TempDirectory();
        PlantedModels.WriteTokenExpertModel(temp.Path, layer: 1, expert: 6);
        string modelPath = temp.File("planted.gguf");
        using var model = MoeModel.Load(modelPath);
        var settings = new Dictionary<string, string> { ["positive"] = UnitJournal.HashOf(PlantedModels.Positive), ["negative"] = UnitJournal.HashOf(PlantedModels.Negative) };
        var manifest = UnitJournal.Manifest("steer-discover", modelPath, settings);

        IReadOnlyList<ExpertContrast> Discover(UnitJournal journal, IProgressTask? progress = null, CancellationToken token = default) =>
            BehaviourDiscovery.Compare(
                BehaviourDiscovery.Profile(model, PlantedModels.Positive, TokenScope.AllTokens, journal, "positive", 1, progress, token),
                BehaviourDiscovery.Profile(model, PlantedModels.Negative, TokenScope.AllTokens, journal, "negative", 1, progress, token));

        BehaviourDiscovery.WriteOutputs(temp.File("reference"), Discover(UnitJournal.None), settings);
        string folder = temp.File("resumed");
        using (var run = RunFolder.OpenOrCreate(folder, manifest))
        {
            var stopper = new StopAfter(3);
            Assert.ThrowsAny<OperationCanceledException>(() => Discover(new UnitJournal(run), stopper.Task, stopper.Token));
            Assert.Equal(3, run.FinishedUnits.Count);
        }

        using (var run = RunFolder.OpenOrCreate(folder, manifest))
        {
            BehaviourDiscovery.WriteOutputs(folder, Discover(new UnitJournal(run)), settings);
            Assert.Equal(PlantedModels.Positive.Length + PlantedModels.Negative.Length, run.Journal.Records.Count);
        }

        foreach (string name in new[] { "ranked.csv", "ranked.json" })
        {
            Assert.Equal(File.ReadAllBytes(temp.File("reference/" + name)), File.ReadAllBytes(Path.Combine(folder, name)));
        }
    }

    [Fact]
    public void SteeringEvaluation_InterruptedAndResumed_EqualsUninterrupted()
    {
        using var temp = new TempDirectory();
        PlantedModels.WriteTokenExpertModel(temp.Path, layer: 1, expert: 6);
        string modelPath = temp.File("planted.gguf");
        using var model = MoeModel.Load(modelPath);
        var classifier = BehaviourClassifier.FromRegex("e");
        var options = new SteeringOptions { Seeds = 1, MaxNewTokens = 4, Threads = 1 };
        LayerExpert[] experts = [new(1, 6)];
        var reference = SteeringEvaluation.Run(model, experts, PlantedModels.Positive, PlantedModels.Negative, classifier, options);

        var manifest = UnitJournal.Manifest("steer-evaluate", modelPath, new Dictionary<string, string> { ["experts"] = "1:6" });
        string folder = temp.File("resumed");
        int units = 3 * (PlantedModels.Positive.Length + 2 * PlantedModels.Negative.Length);
        foreach (int stopAfter in new[] { 3, 16 })
        {
            using var run = RunFolder.OpenOrCreate(folder, manifest);
            var stopper = new StopAfter(stopAfter); // progress counts resumed units too
            Assert.ThrowsAny<OperationCanceledException>(() =>
                SteeringEvaluation.Run(model, experts, PlantedModels.Positive, PlantedModels.Negative, classifier, options, stopper, new UnitJournal(run), stopper.Token));
            Assert.Equal(stopAfter, run.FinishedUnits.Count);
        }

        using (var run = RunFolder.OpenOrCreate(folder, manifest))
        {
            var resumed = SteeringEvaluation.Run(model, experts, PlantedModels.Positive, PlantedModels.Negative, classifier, options, null, new UnitJournal(run));
            Assert.Equal(units, run.Journal.Records.Count);
            Assert.Equal(reference.Count, resumed.Count);
            for (int i = 0; i < reference.Count; i++)
            {
                Assert.Equal(reference[i].Name, resumed[i].Name);
                Assert.Equal(reference[i].Experts, resumed[i].Experts);
                Assert.Equal(reference[i].Replies, resumed[i].Replies);
                Assert.Equal(reference[i].Flagged, resumed[i].Flagged);
                Assert.Equal(BitConverter.DoubleToInt64Bits(reference[i].NeutralPerplexity), BitConverter.DoubleToInt64Bits(resumed[i].NeutralPerplexity));
                Assert.Equal(reference[i].ExactAgreement, resumed[i].ExactAgreement);
                Assert.Equal(reference[i].PrefixAgreement, resumed[i].PrefixAgreement);
            }
        }
    }

    [Fact]
    public void PerplexityShares_AddUpToTheCorpusPerplexity_BitForBit()
    {
        using var temp = new TempDirectory();
        var (_, corpus) = SuperExpertsTests.PlantOutlier(temp, factor: 1f);
        using var model = MoeModel.Load(temp.File("plain.gguf"));
        var whole = Perplexity.Evaluate(model, corpus, null, 1);
        double total = 0;
        long count = 0;
        foreach (var text in corpus)
        {
            var share = UnitJournal.ParsePerplexity(UnitJournal.Format(Perplexity.EvaluateSequence(model, text, new RunOptions { ThreadCount = 1 })));
            total += share.NegativeLogLikelihood;
            count += share.PredictedTokens;
        }

        Assert.Equal(BitConverter.DoubleToInt64Bits(whole.NegativeLogLikelihood), BitConverter.DoubleToInt64Bits(total));
        Assert.Equal(whole.PredictedTokens, count);
    }

    [Fact]
    public void UsageScores_InterruptedAndResumed_EqualUninterrupted_BitForBit()
    {
        using var temp = new TempDirectory();
        var (_, corpus) = SuperExpertsTests.PlantOutlier(temp, factor: 1f);
        string modelPath = temp.File("plain.gguf");
        using var model = MoeModel.Load(modelPath);
        var reference = PruneSelection.ScoreUsage(model, corpus, PruneScore.OutputAware, UnitJournal.None, 1);
        var manifest = UnitJournal.Manifest("prune-scoring", modelPath, PruneSelection.ScoringSettings(PruneScore.OutputAware, corpus));
        string folder = temp.File("run");
        using (var run = RunFolder.OpenOrCreate(folder, manifest))
        {
            var stopper = new StopAfter(2);
            Assert.ThrowsAny<OperationCanceledException>(() => PruneSelection.ScoreUsage(model, corpus, PruneScore.OutputAware, new UnitJournal(run), 1, stopper.Task, stopper.Token));
        }

        using (var run = RunFolder.OpenOrCreate(folder, manifest))
        {
            var resumed = PruneSelection.ScoreUsage(model, corpus, PruneScore.OutputAware, new UnitJournal(run), 1);
            Assert.Equal(corpus.Count, run.Journal.Records.Count);
            Assert.Equal(reference.Cast<double>().Select(BitConverter.DoubleToInt64Bits), resumed.Cast<double>().Select(BitConverter.DoubleToInt64Bits));
        }

        var refused = Assert.Throws<RunMismatchException>(() =>
            RunFolder.OpenOrCreate(folder, UnitJournal.Manifest("prune-scoring", modelPath, PruneSelection.ScoringSettings(PruneScore.Frequency, corpus))));
        Assert.Contains("setting 'score'", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ActivityRecorder_SerializeAndAdd_RoundTripsExactly()
    {
        using var temp = new TempDirectory();
        var (_, corpus) = SuperExpertsTests.PlantOutlier(temp, factor: 1f);
        using var model = MoeModel.Load(temp.File("plain.gguf"));
        var recorder = new ExpertActivityRecorder(model, outputNorms: true, downMaxima: true);
        model.Run(corpus[0].ToArray(), new RunOptions { Observers = [recorder], ThreadCount = 1 });
        var copy = new ExpertActivityRecorder(model, outputNorms: true, downMaxima: true);
        copy.Add(recorder.Serialize());
        Assert.Equal(recorder.Serialize(), copy.Serialize());
        Assert.True(recorder.Tokens[0] > 0);
        recorder.Clear();
        Assert.All(recorder.Tokens, t => Assert.Equal(0, t));
        Assert.Throws<Core.ExpertScopeException>(() => copy.Add("not base64!"));
    }

    /// <summary>A progress sink / task that cancels its token once the given number of units have been counted.</summary>
    private sealed class StopAfter(int units) : IProgressSink, IProgressTask
    {
        private readonly CancellationTokenSource _source = new();
        private int _left = units;

        public CancellationToken Token => _source.Token;

        public IProgressTask Task => this;

        public IProgressTask StartTask(string description, long? total, long alreadyDone = 0, string unit = "items") => this;

        public void Advance(long count = 1)
        {
            _left -= (int)count;
            if (_left <= 0)
            {
                _source.Cancel();
            }
        }

        public void Complete()
        {
        }

        public void Dispose()
        {
        }
    }
}
