using System.CommandLine;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary>The command line's edges a newcomer meets first: aliases, Ctrl+C, early checks, plain error lines, exit codes.</summary>
public sealed class CliEdgeTests
{
    private static void AssertUsageError(int code, string error, params string[] expected)
    {
        Assert.Equal(2, code);
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line, got: {error}");
        Assert.StartsWith("error: ", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("System.", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("`1", lines[0], StringComparison.Ordinal);
        foreach (string part in expected)
        {
            Assert.Contains(part, lines[0], StringComparison.Ordinal);
        }
    }

    private static string[] Probe(string model, string folder, params string[] extra) =>
        ["probe", "word-sense", "-m", model, "-t", "1", "--dataset", "wic:dev", "--data-dir", GoldenData.DataPath(), "--limit", "6", "--bootstrap", "100", "-o", folder, .. extra];

    [Fact]
    public void Probe_TakesShortOptions_AndStopsOnCtrlCLikeTrace()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp), folder = temp.File("probe");

        // Ctrl+C as the first signal does it: the run stops, says how to resume, exits 130.
        StopSignal.TestHook.Value = stop => stop.Request();
        var (code, _, error) = VerbRunner.Run(Probe(model, folder));
        StopSignal.TestHook.Value = null;
        Assert.Equal(130, code);
        Assert.Contains("re-run the same command to resume", error, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(folder, "results.json")));

        (code, var output, error) = VerbRunner.Run(Probe(model, folder));
        Assert.True(code == 0, error);
        Assert.Contains("results.json", output, StringComparison.Ordinal);
        string manifest = File.ReadAllText(Path.Combine(folder, "manifest.json"));
        Assert.Contains("-m " + model, manifest, StringComparison.Ordinal);
        Assert.Contains("\"expertscope_version\"", manifest, StringComparison.Ordinal);
    }

    [Fact]
    public void Probe_UnknownDataset_ListsOnlyThatProbesDatasets()
    {
        using var temp = new TempDirectory();
        var (code, _, error) = VerbRunner.Run("probe", "word-sense", "-m", VerbRunner.TinyModel(temp), "--dataset", "nosuch", "--data-dir", GoldenData.DataPath(), "-o", temp.File("o"));
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "wic:dev", "wordnet");
        Assert.DoesNotContain("swords", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Prune_ChecksItsArgumentsBeforeProfiling()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp), target = temp.File("pruned.gguf");
        var (code, _, error) = VerbRunner.Run("prune", "-m", model, "--keep-per-layer", "99", "--corpus", temp.File("neutral.txt"), "--out", target);
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "keep between 1 and 8 experts per block (asked for 99)");
        Assert.False(Directory.Exists(target + ".run"), "profiling started before the arguments were checked");

        (code, _, error) = VerbRunner.Run("prune", "-m", model, "--keep-per-layer", "4", "--corpus", temp.File("absent.txt"), "--out", target);
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "absent.txt", "corpus file not found");
        Assert.False(Directory.Exists(target + ".run"));
    }

    [Fact]
    public void FoldersGivenAsFiles_AndFilesAsFolders_AreOneUsageLine()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp), input = temp.File("neutral.txt");
        var (code, _, error) = VerbRunner.Run("trace", "--model", temp.Path, "--input", input, "--out", temp.File("t.parquet"));
        AssertUsageError(code, error, "--model", "is a directory");

        (code, _, error) = VerbRunner.Run("trace", "--model", model, "--input", input, "--out", temp.Path);
        AssertUsageError(code, error, "--out", "is a directory");

        (code, _, error) = VerbRunner.Run("analyze", "lens", "--model", model, "--input", input, "--out", input);
        AssertUsageError(code, error, "--out", "is a file");

        // An argument that is not an option still says "is a directory", not "file not found".
        (code, _, error) = VerbRunner.Run("inspect", temp.Path);
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "is a directory");
    }

    [Theory]
    [InlineData("--threads", "abc", "--threads expects a whole number (got 'abc')")]
    [InlineData("--flush-seconds", "soon", "--flush-seconds expects a number")]
    [InlineData("--limit", "1.5", "--limit expects a whole number")]
    public void ParseErrors_NameTheOptionInWords_AndExitTwo(string option, string value, string message)
    {
        using var temp = new TempDirectory();
        var (code, _, error) = VerbRunner.Run("trace", "--model", VerbRunner.TinyModel(temp), "--input", temp.File("neutral.txt"), "--out", temp.File("t.parquet"), option, value);
        AssertUsageError(code, error, message, "expertscope trace --help");
    }

    [Fact]
    public void UsageErrorsExitTwo_RuntimeErrorsOne()
    {
        using var temp = new TempDirectory();
        var (code, _, error) = VerbRunner.Run("trace", "--no-such-option");
        Assert.Equal(2, code);
        Assert.Contains("--no-such-option", error, StringComparison.Ordinal);

        (code, _, error) = VerbRunner.Run("trace", "--model", temp.File("absent.gguf"), "--input", temp.File("absent.txt"), "--out", temp.File("t.parquet"));
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "absent");
    }

    [Fact]
    public void Trace_RefusesACsvName_AndWarnsOnEmptyInput()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp), empty = temp.File("empty.txt");
        var (code, _, error) = VerbRunner.Run("trace", "-m", model, "--input", temp.File("neutral.txt"), "--out", temp.File("x.csv"));
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "x.csv", "Parquet (.parquet) or JSON Lines (.jsonl)");
        Assert.False(File.Exists(temp.File("x.csv")));

        File.WriteAllText(empty, "\n\n");
        (code, _, error) = VerbRunner.Run("trace", "-m", model, "-t", "1", "--input", empty, "--out", temp.File("e.parquet"));
        Assert.True(code == 0, error);
        Assert.Contains("warning:", error, StringComparison.Ordinal);
        Assert.Contains("no text to trace", error, StringComparison.Ordinal);
    }

    [Fact]
    public void TraceSchemaDocAgreesWithFlushSecondsDefault()
    {
        var command = TraceCommand.Create(new CliContext(TextWriter.Null, TextWriter.Null));
        var option = command.Options.Single(o => o.Name == "--flush-seconds");
        Assert.Contains("Default 10", option.Description, StringComparison.Ordinal);
        Assert.Equal(10.0, ((Option<double>)option).DefaultValueFactory!(null!));
        string doc = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "trace-schema.md"));
        Assert.Contains("`--flush-seconds` (default 10 s", doc, StringComparison.Ordinal);
        Assert.DoesNotContain("waited a minute", doc, StringComparison.Ordinal);
    }

    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ExpertScope.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException("ExpertScope.slnx not found above " + AppContext.BaseDirectory);
    }
}
