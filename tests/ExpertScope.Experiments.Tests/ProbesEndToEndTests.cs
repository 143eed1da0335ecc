using System.Text.Json;
using ExpertScope.Experiments.Metrics;
using ExpertScope.Experiments.Probes;
using ExpertScope.Experiments.Runs;
using ExpertScope.Experiments.Storage;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>Whole probes on the golden models and a tiny synthetic one: files, finite numbers, same bytes, resume.</summary>
public sealed class ProbesEndToEndTests
{
    [Fact]
    public async Task WordSenseOnGoldenOlmoeIsReproducibleAndResumes()
    {
        using var temp = new TempDirectory();
        var model = GoldenData.GoldenPath("models", "olmoe", "model.gguf");
        var settings = WordSense("wic:dev", 12, seed: 3);
        var first = Path.Combine(temp.Path, "a");
        var outcome = await ProbeExperiment.RunAsync(model, settings, first);

        foreach (var file in new[] { ProbeOutputs.ResultsFileName, ProbeOutputs.PairsFileName, ProbeOutputs.ReportFileName, ProbeRunner.TraceFileName })
        {
            Assert.True(new FileInfo(Path.Combine(first, file)).Length > 0, file);
        }

        Assert.True(outcome.Model.HasRandomWeights);
        Assert.Equal(outcome.Plan.Sentences.Count, outcome.Routing.SentencesRun);
        Assert.Equal(12, outcome.Data.Pairs.Count);
        CheckResults(Path.Combine(first, ProbeOutputs.ResultsFileName), outcome);
        CheckPairs(Path.Combine(first, ProbeOutputs.PairsFileName), outcome);
        var finished = await RoutingTraceReader.ReadFinishedSequencesAsync(Path.Combine(first, ProbeRunner.TraceFileName));
        Assert.Equal(outcome.Plan.Sentences.Count, finished.Count);
        Assert.Contains("random weights", File.ReadAllText(Path.Combine(first, ProbeOutputs.ReportFileName)), StringComparison.Ordinal);

        // Same seed, another folder: the same bytes.
        var second = Path.Combine(temp.Path, "b");
        await ProbeExperiment.RunAsync(model, settings, second);
        AssertSameFiles(first, second);

        // The same folder again: nothing is recomputed, the outputs are unchanged.
        var resumed = await ProbeExperiment.RunAsync(model, settings, first);
        Assert.Equal(0, resumed.Routing.SentencesRun);
        Assert.Equal(outcome.Plan.Sentences.Count, resumed.Routing.SentencesResumed);
        AssertSameFiles(first, second);

        // A changed setting refuses to resume.
        var mismatch = await Assert.ThrowsAsync<RunMismatchException>(() => ProbeExperiment.RunAsync(model, settings with { Seed = 4 }, first));
        Assert.Contains("seed", mismatch.Message, StringComparison.Ordinal);

        // So does another float arithmetic (its numbers differ in the last bits); run fresh, it completes.
        var fused = settings with { FloatArithmetic = Models.FloatArithmetic.Fused };
        var other = await Assert.ThrowsAsync<RunMismatchException>(() => ProbeExperiment.RunAsync(model, fused, first));
        Assert.Contains("arithmetic", other.Message, StringComparison.Ordinal);
        var fusedOutcome = await ProbeExperiment.RunAsync(model, fused, Path.Combine(temp.Path, "c"));
        Assert.Equal(outcome.Plan.Sentences.Count, fusedOutcome.Routing.SentencesRun);
        Assert.False(settings.ToDictionary().ContainsKey("arithmetic"));
        // Each run's trace names the arithmetic that made it.
        Assert.Equal("fused", (await RoutingTraceReader.ReadMetadataAsync(Path.Combine(temp.Path, "c", ProbeRunner.TraceFileName))).FloatArithmetic);
        Assert.Equal("reference", (await RoutingTraceReader.ReadMetadataAsync(Path.Combine(first, ProbeRunner.TraceFileName))).FloatArithmetic);
    }

    [Fact]
    public async Task InterruptedRunResumesFromTheJournal()
    {
        using var temp = new TempDirectory();
        var model = GoldenData.GoldenPath("models", "olmoe", "model.gguf");
        var settings = WordSense("wic:dev", 8, seed: 11) with { CheckpointEvery = 4 };
        var reference = Path.Combine(temp.Path, "reference");
        var full = await ProbeExperiment.RunAsync(model, settings, reference);

        // Stop after a few sentences (cancellation at a sentence boundary), then run again.
        var folder = Path.Combine(temp.Path, "interrupted");
        using var cancel = new CancellationTokenSource();
        var progress = new CancelAfter(6, cancel);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ProbeExperiment.RunAsync(model, settings, folder, progress, cancellationToken: cancel.Token));
        Assert.False(File.Exists(Path.Combine(folder, ProbeOutputs.ResultsFileName)));
        var done = WorkJournal.ReadRecords(Path.Combine(folder, RunFolder.JournalFileName)).Count;
        Assert.InRange(done, 4, 6);

        var resumed = await ProbeExperiment.RunAsync(model, settings, folder);
        Assert.Equal(full.Plan.Sentences.Count - done, resumed.Routing.SentencesRun);
        AssertSameFiles(reference, folder);
    }

    [Fact]
    public async Task SubstitutionOnGoldenDeepSeekWithSharedExperts()
    {
        using var temp = new TempDirectory();
        var model = GoldenData.GoldenPath("models", "deepseek3", "model.gguf");
        var settings = new ProbeSettings
        {
            Kind = ProbeKind.Substitution, Dataset = "swords:dev", DataFolder = GoldenData.DataPath(), Limit = 10, Seed = 2,
            IncludeShared = true, Metric = ProbeMetric.JensenShannon, BootstrapResamples = 200,
        };
        var outcome = await ProbeExperiment.RunAsync(model, settings, temp.Path);
        Assert.True(outcome.Model.SharedExperts > 0);
        Assert.Equal(10, outcome.Data.Pairs.Count);
        Assert.Contains(ProbeConditions.Similar, outcome.Results.Conditions);
        Assert.Contains(ProbeConditions.Dissimilar, outcome.Results.Conditions);
        Assert.Equal((ProbeConditions.Similar, ProbeConditions.Dissimilar), (outcome.Results.Comparisons[0].First, outcome.Results.Comparisons[0].Second));
        CheckResults(Path.Combine(temp.Path, ProbeOutputs.ResultsFileName), outcome);
        CheckPairs(Path.Combine(temp.Path, ProbeOutputs.PairsFileName), outcome);
        // DeepSeek's first block is dense: only MoE blocks are probed.
        Assert.DoesNotContain(0, outcome.Results.Layers);
    }

    [Fact]
    public async Task TinySyntheticModelOnCoarseWsdWithFirstSubTokens()
    {
        using var temp = new TempDirectory();
        var model = temp.File("tiny.gguf");
        SyntheticModelWriter.Write(SyntheticPresets.Get("tiny-qwen2moe"), model);
        var settings = WordSense("coarsewsd20", 8, seed: 5) with { SubTokens = SubTokenMode.First, Metric = ProbeMetric.Weighted };
        var outcome = await ProbeExperiment.RunAsync(model, settings, temp.File("out"));
        Assert.True(outcome.Model.HasRandomWeights);
        Assert.Contains(outcome.Summary, line => line.Contains("random weights", StringComparison.Ordinal));
        CheckResults(Path.Combine(temp.File("out"), ProbeOutputs.ResultsFileName), outcome);
        Assert.All(outcome.Results.Measurements, m => Assert.All(m.ByLayer, s => Assert.InRange(s.Weighted, 0, 1 + 1e-6)));
    }

    private static ProbeSettings WordSense(string dataset, int limit, int seed) => new()
    {
        Kind = ProbeKind.WordSense, Dataset = dataset, DataFolder = GoldenData.DataPath(), Limit = limit, Seed = seed, BootstrapResamples = 200,
    };

    private static void CheckResults(string path, ProbeOutcome outcome)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(path));
        var root = json.RootElement;
        Assert.Equal(outcome.Settings.Seed, root.GetProperty("settings").GetProperty("seed").GetInt32());
        Assert.Equal(64, root.GetProperty("model").GetProperty("sha256").GetString()!.Length);
        Assert.Equal(outcome.Results.Layers.Count, root.GetProperty("layers").GetArrayLength());
        foreach (var condition in root.GetProperty("conditions").EnumerateObject())
        {
            foreach (var layer in condition.Value.GetProperty("by_layer").EnumerateArray())
            {
                Assert.True(double.IsFinite(layer.GetProperty("mean").GetDouble()));
            }
        }

        var main = root.GetProperty("comparisons")[0];
        foreach (var layer in main.GetProperty("by_layer").EnumerateArray())
        {
            Assert.True(double.IsFinite(layer.GetProperty("difference").GetDouble()));
            foreach (var name in new[] { "n_first", "n_second", "rank_biserial", "p_mann_whitney", "p_mann_whitney_holm", "p_welch_bh" })
            {
                Assert.True(layer.TryGetProperty(name, out _), name);
            }
        }

        Assert.NotEqual(0, root.GetProperty("summary").GetArrayLength());
        Assert.True(root.TryGetProperty("token_matched_main_comparison", out _));
        // Token-identity controls are token-identical by construction.
        Assert.All(outcome.Results.Measurements.Where(m => m.Pair.Condition == ProbeConditions.TokenIdentity), m => Assert.True(m.Pair.SameTokenIds));
    }

    private static void CheckPairs(string path, ProbeOutcome outcome)
    {
        var lines = File.ReadAllLines(path);
        Assert.StartsWith("pair_id,condition,word,layer,overlap,jaccard,kappa,weighted,js", lines[0], StringComparison.Ordinal);
        Assert.Equal((outcome.Results.Measurements.Count * outcome.Results.Layers.Count) + 1, lines.Length);
        foreach (var line in lines.Skip(1))
        {
            var fields = line.Split(',');
            Assert.DoesNotContain(fields[4..9], field => !double.IsFinite(double.Parse(field, System.Globalization.CultureInfo.InvariantCulture)));
        }
    }

    private static void AssertSameFiles(string first, string second)
    {
        foreach (var file in new[] { ProbeOutputs.ResultsFileName, ProbeOutputs.PairsFileName })
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(first, file)), File.ReadAllBytes(Path.Combine(second, file)));
        }
    }

    /// <summary>Cancels the run once it has counted <c>limit</c> sentences.</summary>
    private sealed class CancelAfter(int limit, CancellationTokenSource cancel) : IProgressSink
    {
        public IProgressTask StartTask(string description, long? total, long alreadyDone = 0, string unit = "items") => new Task(limit, cancel);

        private sealed class Task(int limit, CancellationTokenSource cancel) : IProgressTask
        {
            private int _count;

            public void Advance(long count = 1)
            {
                _count += (int)count;
                if (_count >= limit)
                {
                    cancel.Cancel();
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
}
