using ExpertScope.Core;
using ExpertScope.Experiments.Runs;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

public sealed class RunsTests
{
    private static RunManifest Manifest(int k = 8, long? seed = 20230828) => new()
    {
        Kind = "ablate",
        Seed = seed,
        ModelSha256 = new string('c', 64),
        CommandLine = "expertscope ablate m.gguf --k 8",
        ExpertScopeVersion = "1.0",
        Settings = new Dictionary<string, string> { ["k"] = k.ToString(System.Globalization.CultureInfo.InvariantCulture), ["layers"] = "0-15" },
    };

    [Fact]
    public void Journal_RecordsSurviveReopen()
    {
        using var temp = new TempDirectory();
        var path = temp.File("finished.jsonl");
        using (var journal = WorkJournal.Open(path))
        {
            journal.MarkFinished("seq-0");
            journal.MarkFinished([new WorkRecord("seq-1", "1234"), new WorkRecord("layer \"2\"\n", null)]);
        }

        using var reopened = WorkJournal.Open(path);
        Assert.Equal(
            [new WorkRecord("seq-0", null), new WorkRecord("seq-1", "1234"), new WorkRecord("layer \"2\"\n", null)],
            reopened.Records);
        Assert.True(reopened.IsFinished("seq-1"));
        Assert.False(reopened.IsFinished("seq-2"));
        Assert.Equal(0, reopened.DroppedBytes);
    }

    [Theory]
    [InlineData("{\"unit\":\"seq-")]         // cut inside a record
    [InlineData("{\"unit\":\"seq-2\"}")]      // whole record but no newline yet: not known to be flushed whole
    [InlineData("\0\0\0\0")]                 // file extended with zeros before the data landed
    public void Journal_TornLastLine_IsDroppedAndCutOff(string torn)
    {
        using var temp = new TempDirectory();
        var path = temp.File("finished.jsonl");
        using (var journal = WorkJournal.Open(path))
        {
            journal.MarkFinished("seq-0");
            journal.MarkFinished("seq-1");
        }

        var clean = File.ReadAllBytes(path);
        File.AppendAllText(path, torn);

        Assert.Equal(["seq-0", "seq-1"], WorkJournal.ReadRecords(path).Select(r => r.Unit));
        using (var journal = WorkJournal.Open(path))
        {
            Assert.Equal(["seq-0", "seq-1"], journal.Records.Select(r => r.Unit));
            Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(torn), journal.DroppedBytes);
            Assert.Equal(clean, File.ReadAllBytes(path));
            journal.MarkFinished("seq-2");
        }

        using var reopened = WorkJournal.Open(path);
        Assert.Equal(["seq-0", "seq-1", "seq-2"], reopened.Records.Select(r => r.Unit));
    }

    [Fact]
    public void Journal_RecordsNotKeptInMemory_AreFinishedAndOnDiskForTheNextOpen()
    {
        using var temp = new TempDirectory();
        var path = temp.File("finished.jsonl");
        using (var journal = WorkJournal.Open(path))
        {
            journal.MarkFinished("kept", "small");
            journal.MarkFinished([new WorkRecord("sentence:0", "large"), new WorkRecord("sentence:1", null)], keepInMemory: false);
            Assert.Equal(["kept"], journal.Records.Select(r => r.Unit));
            Assert.True(journal.IsFinished("sentence:0"));
            Assert.True(journal.IsFinished("sentence:1"));
        }

        using var reopened = WorkJournal.Open(path);
        Assert.Equal([new WorkRecord("kept", "small"), new WorkRecord("sentence:0", "large"), new WorkRecord("sentence:1", null)], reopened.Records);
    }

    [Fact]
    public void Journal_DamageBeforeTheLastLine_IsRefusedNamingTheLine()
    {
        using var temp = new TempDirectory();
        var path = temp.File("finished.jsonl");
        File.WriteAllText(path, "{\"unit\":\"a\"}\ngarbage\n{\"unit\":\"b\"}\n");
        var error = Assert.Throws<ExpertScopeException>(() => WorkJournal.Open(path));
        Assert.Contains("line 2", error.Message, StringComparison.Ordinal);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RunFolder_SameSettings_Resumes()
    {
        using var temp = new TempDirectory();
        var folder = temp.File("run");
        using (var run = RunFolder.OpenOrCreate(folder, Manifest()))
        {
            Assert.False(run.IsResumed);
            run.MarkFinished("layer-0");
        }

        // The command line is kept for the record but does not block a resume.
        using var resumed = RunFolder.OpenOrCreate(folder, Manifest() with { CommandLine = "other", ExpertScopeVersion = "1.1" });
        Assert.True(resumed.IsResumed);
        Assert.True(resumed.IsFinished("layer-0"));
        Assert.Equal("expertscope ablate m.gguf --k 8", resumed.Manifest.CommandLine);
        Assert.NotNull(resumed.Manifest.StartedUtc);
        Assert.Equal(Path.Combine(folder, "x.csv"), resumed.PathOf("x.csv"));
    }

    [Fact]
    public void RunFolder_DifferentSettings_RefusesAndSaysWhy()
    {
        using var temp = new TempDirectory();
        var folder = temp.File("run");
        RunFolder.OpenOrCreate(folder, Manifest()).Dispose();

        var error = Assert.Throws<RunMismatchException>(() => RunFolder.OpenOrCreate(folder, Manifest(k: 4, seed: 7)));
        Assert.Equal(["seed was 20230828, now 7", "setting 'k' was '8', now '4'"], error.Differences);
        Assert.Contains("cannot be resumed", error.Message, StringComparison.Ordinal);
        Assert.IsAssignableFrom<ExpertScopeException>(error);
    }

    [Fact]
    public void RunManifest_DifferencesCoverModelKindAndMissingSettings()
    {
        var saved = Manifest();
        var requested = saved with
        {
            Kind = "trace",
            ModelSha256 = new string('d', 64),
            Settings = new Dictionary<string, string> { ["k"] = "8", ["top_p"] = "0.9" },
        };
        Assert.Equal(
            [
                "run kind was 'ablate', now 'trace'",
                $"model file SHA-256 was {new string('c', 64)}, now {new string('d', 64)}",
                "setting 'layers' was '0-15', now not given",
                "setting 'top_p' was not given, now '0.9'",
            ],
            saved.DifferencesFrom(requested));
        Assert.Empty(saved.DifferencesFrom(saved with { CommandLine = "x" }));
    }

    [Fact]
    public void RunManifest_JsonRoundTripsAndIsDeterministic()
    {
        var manifest = Manifest() with { StartedUtc = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero) };
        var json = manifest.ToJson();
        Assert.Equal(json, (manifest with { Settings = new Dictionary<string, string> { ["layers"] = "0-15", ["k"] = "8" } }).ToJson());
        var back = RunManifest.FromJson(json, "manifest.json");
        Assert.Empty(back.DifferencesFrom(manifest));
        Assert.Equal(manifest.StartedUtc, back.StartedUtc);
        Assert.Equal(manifest.CommandLine, back.CommandLine);
        Assert.Contains("\"started_utc\": \"2026-01-02T03:04:05.0000000+00:00\"", json, StringComparison.Ordinal);
    }

    [Fact]
    public void RunFolder_JournalWithoutManifest_IsRefused()
    {
        using var temp = new TempDirectory();
        var folder = temp.File("run");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, RunFolder.JournalFileName), "{\"unit\":\"a\"}\n");
        Assert.Throws<ExpertScopeException>(() => RunFolder.OpenOrCreate(folder, Manifest()));
    }

    [Fact]
    public void AtomicFile_ReplacesContentAndLeavesNoTemporaryFile()
    {
        using var temp = new TempDirectory();
        var path = temp.File("a.json");
        AtomicFile.WriteAllText(path, "one");
        AtomicFile.WriteAllText(path, "two");
        Assert.Equal("two", File.ReadAllText(path));
        Assert.Equal(["a.json"], Directory.GetFiles(temp.Path).Select(Path.GetFileName));
    }

    private sealed class ManualClock : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }

    [Fact]
    public void TextProgress_PrintsThrottledLinesWithRateAndRemainingTime()
    {
        var clock = new ManualClock();
        var output = new StringWriter();
        var sink = new TextProgressSink(output, TimeSpan.FromSeconds(2), clock);
        using (var task = sink.StartTask("tracing", total: 100, alreadyDone: 20, unit: "sequences"))
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            task.Advance(4);                              // 1 s after the last line: not printed
            clock.Advance(TimeSpan.FromSeconds(1));
            task.Advance(4);                              // 28 done, 8 fresh in 2 s = 4/s, 72 left = 18 s
            clock.Advance(TimeSpan.FromSeconds(1));
            task.Advance(2);
        }

        Assert.Equal(
            [
                "tracing: 20/100 sequences (20.0%) (resumed)",
                "tracing: 28/100 sequences (28.0%), 4.00 sequences/s, about 18s left",
                "tracing: 30/100 sequences (30.0%), 3.33 sequences/s, done in 3s",
            ],
            output.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void TextProgress_UnknownTotal_CountsOnly()
    {
        var clock = new ManualClock();
        var output = new StringWriter();
        var task = new TextProgressSink(output, TimeSpan.Zero, clock).StartTask("reading", total: null);
        clock.Advance(TimeSpan.FromSeconds(2));
        task.Advance(10);
        task.Complete();
        task.Dispose();
        Assert.Equal(
            ["reading: 10 items, 5.00 items/s", "reading: 10 items, 5.00 items/s, done in 2s"],
            output.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
    }

    [Theory]
    [InlineData(0, "0s")]
    [InlineData(59.4, "59s")]
    [InlineData(259, "4m 19s")]
    [InlineData(7500, "2h 05m")]
    public void FormatDuration_ReadsNaturally(double seconds, string expected) =>
        Assert.Equal(expected, TextProgressSink.FormatDuration(TimeSpan.FromSeconds(seconds)));
}
