using ExpertScope.Experiments.Pruning;
using ExpertScope.Experiments.Runs;
using ExpertScope.Models;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary>
/// The steering and pruning verbs resume an interrupted run from its journal: a run folder holding only the first
/// units of a finished run (as a run killed after them would leave it) is completed to the same bytes.
/// </summary>
public sealed class SteerResumeCommandTests
{
    [Fact]
    public void Discover_ResumedFromAPartialJournal_WritesTheSameBytes()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp);
        string[] Args(string folder, string tokens = "all") =>
        [
            "steer", "discover", "--model", model, "--positive", temp.File("positive.txt"), "--negative", temp.File("negative.txt"),
            "--template", "Question: {x} {Answer|Reply}:", "--tokens", tokens, "--threads", "1", "--out", temp.File(folder),
        ];
        var (code, _, error) = VerbRunner.Run(Args("full"));
        Assert.True(code == 0, error);
        Assert.Equal(12, JournalOf(temp.File("full")).Count);

        foreach (int kept in new[] { 1, 7 })
        {
            string partial = "partial-" + kept;
            CopyPartial(temp.File("full"), temp.File(partial), kept);
            (code, _, error) = VerbRunner.Run(Args(partial));
            Assert.True(code == 0, error);
            Assert.Contains("(resumed)", error, StringComparison.Ordinal);
            AssertSameFiles(temp.File("full"), temp.File(partial), "ranked.csv", "ranked.json");
            AssertEachUnitOnce(temp.File(partial), 12);
        }

        (code, _, error) = VerbRunner.Run(Args("full", tokens: "last"));
        Assert.NotEqual(0, code);
        Assert.Contains("setting 'tokens' was 'all', now 'last'", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_ResumedFromAPartialJournal_WritesTheSameBytes()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp);
        string[] Args(string folder, string maxNew = "3") =>
        [
            "steer", "evaluate", "--model", model, "--experts", "0:1,1:2", "--prompts", temp.File("positive.txt"), "--neutral", temp.File("neutral.txt"),
            "--seeds", "1", "--classifier", "e", "--max-new-tokens", maxNew, "--threads", "1", "--out", temp.File(folder),
        ];
        var (code, _, error) = VerbRunner.Run(Args("full"));
        Assert.True(code == 0, error);
        int units = 3 * (3 + 2 * 3); // conditions × (behaviour prompts + neutral lines × (perplexity, generation))
        Assert.Equal(units, JournalOf(temp.File("full")).Count);

        foreach (int kept in new[] { 4, 14, 22 })
        {
            string partial = "partial-" + kept;
            CopyPartial(temp.File("full"), temp.File(partial), kept);
            (code, _, error) = VerbRunner.Run(Args(partial));
            Assert.True(code == 0, error);
            AssertSameFiles(temp.File("full"), temp.File(partial), "conditions.csv", "summary.json", "replies.jsonl");
            AssertEachUnitOnce(temp.File(partial), units);
        }

        (code, _, error) = VerbRunner.Run(Args("full", maxNew: "4"));
        Assert.NotEqual(0, code);
        Assert.Contains("setting 'max new tokens' was '3', now '4'", error, StringComparison.Ordinal);
    }

    [Fact]
    public void SuperExperts_ResumedFromAPartialJournal_WritesTheSameBytes()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp);
        string[] Args(string folder, string percentile = "90") =>
        [
            "super-experts", "--model", model, "--corpus", temp.File("neutral.txt"), "--seeds", "2", "--percentile", percentile,
            "--chunk", "4", "--threads", "1", "--out", temp.File(folder),
        ];
        var (code, _, error) = VerbRunner.Run(Args("full"));
        Assert.True(code == 0, error);
        var journal = JournalOf(temp.File("full"));
        int texts = journal.Count(r => r.Unit.StartsWith("profile/", StringComparison.Ordinal));
        Assert.True(texts >= 3, "the corpus should give several chunks");
        Assert.Contains(journal, r => r.Unit == "perplexity/baseline");

        foreach (int kept in new[] { 1, texts - 1, texts + 1 })
        {
            string partial = "partial-" + kept;
            CopyPartial(temp.File("full"), temp.File(partial), kept);
            (code, _, error) = VerbRunner.Run(Args(partial));
            Assert.True(code == 0, error);
            AssertSameFiles(temp.File("full"), temp.File(partial), "experts.csv", "residual.csv", "pruning.csv", "summary.json");
            AssertEachUnitOnce(temp.File(partial), journal.Count);
        }

        (code, _, error) = VerbRunner.Run(Args("full", percentile: "95"));
        Assert.NotEqual(0, code);
        Assert.Contains("setting 'percentile' was '90', now '95'", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Prune_ResumesAnInterruptedScoringPass_AndRemovesItsRunFolderWhenDone()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp);
        string[] Args(string target, string score = "output-aware") =>
        [
            "prune", "--model", model, "--keep-per-layer", "5", "--corpus", temp.File("neutral.txt"), "--chunk", "4", "--score", score,
            "--threads", "1", "--out", temp.File(target),
        ];
        var (code, _, error) = VerbRunner.Run(Args("full.gguf"));
        Assert.True(code == 0, error);
        Assert.False(Directory.Exists(temp.File("full.gguf.run")));

        // An interrupted scoring pass: the run folder the verb uses, with the first two texts finished.
        using (var loaded = MoeModel.Load(model))
        {
            var texts = TextCorpus.Chunks(loaded, temp.File("neutral.txt"), 4, 8192);
            var manifest = UnitJournal.Manifest("prune-scoring", model, PruneSelection.ScoringSettings(PruneScore.OutputAware, texts));
            using var run = RunFolder.OpenOrCreate(temp.File("resumed.gguf.run"), manifest);
            var journal = new UnitJournal(run);
            for (int i = 0; i < 2; i++)
            {
                journal.GetOrCompute(PruneSelection.UsageUnit(i), () =>
                {
                    var recorder = new ExpertActivityRecorder(loaded, outputNorms: true);
                    loaded.Run(texts[i].ToArray(), new RunOptions { Observers = [recorder], ThreadCount = 1, Logits = LogitsSelection.None });
                    return recorder.Serialize();
                });
            }
        }

        (code, _, error) = VerbRunner.Run(Args("resumed.gguf"));
        Assert.True(code == 0, error);
        Assert.Contains("(resumed)", error, StringComparison.Ordinal);
        Assert.Equal(File.ReadAllBytes(temp.File("full.gguf")), File.ReadAllBytes(temp.File("resumed.gguf")));
        Assert.Equal(File.ReadAllBytes(temp.File("full.gguf.keep.txt")), File.ReadAllBytes(temp.File("resumed.gguf.keep.txt")));
        Assert.False(Directory.Exists(temp.File("resumed.gguf.run")));

        using (var loaded = MoeModel.Load(model))
        {
            var texts = TextCorpus.Chunks(loaded, temp.File("neutral.txt"), 4, 8192);
            var manifest = UnitJournal.Manifest("prune-scoring", model, PruneSelection.ScoringSettings(PruneScore.Frequency, texts));
            RunFolder.OpenOrCreate(temp.File("changed.gguf.run"), manifest).Dispose();
        }

        (code, _, error) = VerbRunner.Run(Args("changed.gguf"));
        Assert.NotEqual(0, code);
        Assert.Contains("setting 'score' was 'frequency', now 'output-aware'", error, StringComparison.Ordinal);
        Assert.False(File.Exists(temp.File("changed.gguf")));
    }

    private static IReadOnlyList<WorkRecord> JournalOf(string folder) => WorkJournal.ReadRecords(Path.Combine(folder, RunFolder.JournalFileName));

    /// <summary>What a run killed after <paramref name="kept"/> finished units leaves: its manifest and the first journal lines.</summary>
    private static void CopyPartial(string finished, string partial, int kept)
    {
        Directory.CreateDirectory(partial);
        File.Copy(Path.Combine(finished, RunFolder.ManifestFileName), Path.Combine(partial, RunFolder.ManifestFileName));
        var lines = File.ReadAllLines(Path.Combine(finished, RunFolder.JournalFileName));
        Assert.True(kept < lines.Length);
        File.WriteAllText(Path.Combine(partial, RunFolder.JournalFileName), string.Concat(lines.Take(kept).Select(l => l + "\n")));
    }

    private static void AssertSameFiles(string expected, string actual, params string[] names)
    {
        foreach (string name in names)
        {
            Assert.True(File.ReadAllBytes(Path.Combine(expected, name)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(actual, name))), name + " differs");
        }
    }

    /// <summary>The resumed run did not redo finished units: every unit is journalled exactly once.</summary>
    private static void AssertEachUnitOnce(string folder, int units)
    {
        var records = JournalOf(folder);
        Assert.Equal(units, records.Count);
        Assert.Equal(units, records.Select(r => r.Unit).Distinct(StringComparer.Ordinal).Count());
    }
}
