using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary>The README's "Use it from C#" example (samples/RoutingObserver) compiles with the tests and runs.</summary>
public sealed class SampleTests
{
    [Fact]
    public async Task RoutingObserverSample_LoadsRunsObservesAndReadsATrace()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp), trace = temp.File("trace.parquet");
        var (code, _, error) = VerbRunner.Run("trace", "-m", model, "-t", "1", "--input", temp.File("neutral.txt"), "--out", trace);
        Assert.True(code == 0, error);

        using var output = new StringWriter();
        await RoutingObserver.Program.RunAsync(model, "The bank by the river was closed.", trace, output);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^\d+ tokens, MoE layers \d", lines[0]);
        Assert.Contains(lines, l => l.StartsWith("  position 0: layer ", StringComparison.Ordinal) && l.Contains("experts [", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("most selected: layer ", StringComparison.Ordinal));
        Assert.Matches(@"^trace trace\.parquet: olmoe, 8 experts, top-\d; 3 sequences, [1-9]\d* rows$", lines[^1]);
    }

    [Fact]
    public void ReadmeShowsTheSample()
    {
        string readme = File.ReadAllText(Path.Combine(CliEdgeTests.RepositoryRoot(), "README.md"));
        string sample = File.ReadAllText(Path.Combine(CliEdgeTests.RepositoryRoot(), "samples", "RoutingObserver", "Program.cs"));
        Assert.Contains("## Use it from C#", readme, StringComparison.Ordinal);
        // The README's snippet is the sample's core, line for line.
        foreach (string line in new[] { "using var model = MoeModel.Load(modelPath);", "model.Run(tokens, new RunOptions { Observers = [trace, counter], Logits = LogitsSelection.None });" })
        {
            Assert.Contains(line, sample, StringComparison.Ordinal);
            Assert.Contains(line, readme, StringComparison.Ordinal);
        }
    }
}
