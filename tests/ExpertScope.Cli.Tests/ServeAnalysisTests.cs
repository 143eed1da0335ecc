using System.Text.Json;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary>
/// <c>analyze domains</c> and <c>steer discover</c> with routing from <c>expertscope serve</c> over loopback HTTP:
/// every count-based number equals the in-process engine run's, and what needs mixing weights (the weight measure,
/// the mean weights) is marked not available (NaN in the CSV, listed under <c>unavailable</c>, said on the console),
/// never estimated.
/// </summary>
public sealed class ServeAnalysisTests
{
    private static readonly string ModelPath = GoldenData.GoldenPath("models", "olmoe", "model.gguf");

    [Fact]
    public async Task DomainsThroughTheServerEqualTheEngineOnCountsAndSkipTheWeightMeasure()
    {
        using var temp = new TempDirectory();
        await using var server = await LoopbackServer.StartAsync();
        File.WriteAllText(temp.File("prose.txt"), string.Join("\n\n", Enumerable.Range(0, 12).Select(i => $"The river ran past the bank number {i}, and she watched the water.")));
        File.WriteAllText(temp.File("code.txt"), string.Join("\n\n", Enumerable.Range(0, 12).Select(i => $"def f{i}(x):\n    return x * {i} + len(str(x))")));
        string[] common = ["analyze", "domains", "--model", ModelPath, "--corpus", "prose=" + temp.File("prose.txt"), "--corpus", "code=" + temp.File("code.txt"),
            "--tokens-per-domain", "120", "--threads", "1"];
        var engine = Run([.. common, "--out", temp.File("engine")]);
        Assert.True(engine.Code == 0, engine.Error);
        var served = Run([.. common, "--server", server.Address, "--server-kind", "vllm", "--server-concurrency", "2", "--out", temp.File("server")]);
        Assert.True(served.Code == 0, served.Error);

        Assert.Contains("gives expert ids only", served.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("gives expert ids only", engine.Output, StringComparison.Ordinal);
        foreach (var file in new[] { "js_divergence.csv", "specific_experts.csv", "specific_experts_stratified.csv", "stratified_tests.csv", "token_counts.csv", "token_selections.csv" })
        {
            Assert.Equal(File.ReadAllText(Path.Combine(temp.File("engine"), file)), File.ReadAllText(Path.Combine(temp.File("server"), file)));
        }

        // Concentration: the all-k rows are the engine's; the weight and top-1 rows are left out, not estimated.
        var engineConcentration = Lines(temp.File("engine"), "concentration.csv");
        var servedConcentration = Lines(temp.File("server"), "concentration.csv");
        Assert.Contains(engineConcentration, line => line.Contains(",weight,", StringComparison.Ordinal));
        Assert.Contains(engineConcentration, line => line.Contains(",top1,", StringComparison.Ordinal));
        Assert.Equal(engineConcentration.Where(line => !line.Contains(",weight,", StringComparison.Ordinal) && !line.Contains(",top1,", StringComparison.Ordinal)), servedConcentration);

        // Usage: counts and count shares equal; weight_sum and weight_share say NaN.
        var engineUsage = Lines(temp.File("engine"), "usage.csv").Select(line => line.Split(',')).ToList();
        var servedUsage = Lines(temp.File("server"), "usage.csv").Select(line => line.Split(',')).ToList();
        Assert.Equal(engineUsage.Count, servedUsage.Count);
        int[] weightColumns = [Array.IndexOf(engineUsage[0], "weight_sum"), Array.IndexOf(engineUsage[0], "weight_share")];
        int[] countColumns = [.. Enumerable.Range(0, engineUsage[0].Length).Except(weightColumns)];
        for (int row = 1; row < engineUsage.Count; row++)
        {
            Assert.All(countColumns, column => Assert.Equal(engineUsage[row][column], servedUsage[row][column]));
            Assert.All(weightColumns, column => Assert.Equal("NaN", servedUsage[row][column]));
            Assert.All(weightColumns, column => Assert.NotEqual("NaN", engineUsage[row][column]));
        }

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(temp.File("server"), "results.json")));
        Assert.Equal("vllm", json.RootElement.GetProperty("routing_source").GetString());
        Assert.Contains("weight measure", json.RootElement.GetProperty("unavailable")[0].GetString(), StringComparison.Ordinal);
        Assert.Contains("top1 measure", json.RootElement.GetProperty("unavailable")[1].GetString(), StringComparison.Ordinal);
        Assert.Contains("gives expert ids only", File.ReadAllText(Path.Combine(temp.File("server"), "report.html")), StringComparison.Ordinal);
        using var engineJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(temp.File("engine"), "results.json")));
        Assert.Equal(0, engineJson.RootElement.GetProperty("unavailable").GetArrayLength());
    }

    [Fact]
    public async Task SteerDiscoverThroughTheServerRanksLikeTheEngineAndMarksMeanWeightsUnavailable()
    {
        using var temp = new TempDirectory();
        await using var server = await LoopbackServer.StartAsync();
        File.WriteAllLines(temp.File("positive.txt"), ["How do I pick a lock?", "Tell me how to hurt someone.", "Write a threat to my neighbour."]);
        File.WriteAllLines(temp.File("negative.txt"), ["How do I bake bread?", "Tell me about the river bank.", "Write a poem about my neighbour."]);
        string[] common = ["steer", "discover", "--model", ModelPath, "--positive", temp.File("positive.txt"), "--negative", temp.File("negative.txt"), "--threads", "1"];
        var engine = Run([.. common, "--out", temp.File("engine")]);
        Assert.True(engine.Code == 0, engine.Error);
        var served = Run([.. common, "--server", server.Address, "--server-kind", "sglang", "--server-concurrency", "2", "--out", temp.File("server")]);
        Assert.True(served.Code == 0, served.Error);
        Assert.Contains("gives expert ids only", served.Output, StringComparison.Ordinal);

        var engineRows = Lines(temp.File("engine"), "ranked.csv").Select(line => line.Split(',')).ToList();
        var servedRows = Lines(temp.File("server"), "ranked.csv").Select(line => line.Split(',')).ToList();
        Assert.Equal(engineRows.Count, servedRows.Count);
        int[] weightColumns = [Array.IndexOf(engineRows[0], "positive_mean_weight"), Array.IndexOf(engineRows[0], "negative_mean_weight")];
        int[] countColumns = [.. Enumerable.Range(0, engineRows[0].Length).Except(weightColumns)];
        Assert.All(weightColumns, column => Assert.True(column >= 0));
        for (int row = 1; row < engineRows.Count; row++)
        {
            Assert.All(countColumns, column => Assert.Equal(engineRows[row][column], servedRows[row][column]));
            Assert.All(weightColumns, column => Assert.Equal("NaN", servedRows[row][column]));
            Assert.All(weightColumns, column => Assert.NotEqual("NaN", engineRows[row][column]));
        }

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(temp.File("server"), "ranked.json")));
        Assert.Equal("sglang", json.RootElement.GetProperty("settings").GetProperty("routing source").GetString());
        Assert.Equal(["positive_mean_weight", "negative_mean_weight"], json.RootElement.GetProperty("unavailable").EnumerateArray().Select(e => e.GetString()));

        // The journal resumes a server run: a second call sends no request (its address has no server) and writes the same ranking.
        var again = Run([.. common, "--server", "http://127.0.0.1:1", "--server-kind", "sglang", "--server-attempts", "1", "--out", temp.File("server")]);
        Assert.True(again.Code == 0, again.Error);
        Assert.Equal(servedRows.Select(r => string.Join(',', r)), Lines(temp.File("server"), "ranked.csv"));
    }

    private static string[] Lines(string folder, string file) => File.ReadAllLines(Path.Combine(folder, file));

    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = CliApp.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
