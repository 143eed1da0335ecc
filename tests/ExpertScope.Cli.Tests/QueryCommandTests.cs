using System.Text.Json;
using ExpertScope.Cli;
using ExpertScope.Experiments.Storage;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary><c>query</c>: SQL over a probe's run folder (views trace, pairs, results) and over a trace file, as a table, CSV or JSON.</summary>
public sealed class QueryCommandTests
{
    [Fact]
    public async Task ViewsOfARunFolderAnswerWhatTheFilesHold()
    {
        using var temp = new TempDirectory();
        var probe = Run("probe", "word-sense", "--model", GoldenData.GoldenPath("models", "olmoe", "model.gguf"), "--dataset", "wic:dev",
            "--data-dir", GoldenData.DataPath(), "--limit", "4", "--bootstrap", "200", "--out", temp.Path);
        Assert.True(probe.Code == 0, probe.Error);

        var pairLines = File.ReadAllLines(temp.File("pairs.csv")).Length - 1;
        var count = Run("query", temp.Path, "SELECT count(*) AS n FROM pairs", "--format", "csv");
        Assert.True(count.Code == 0, count.Error);
        Assert.Equal($"n\r\n{pairLines}\r\n", count.Output);

        long traceRows = 0;
        await foreach (var _ in RoutingTraceReader.ReadRowsAsync(temp.File("trace.parquet")))
        {
            traceRows++;
        }

        var json = Run("query", temp.Path, "SELECT count(*) AS rows, count(DISTINCT layer) AS layers FROM trace", "--format", "json");
        Assert.True(json.Code == 0, json.Error);
        using (var document = JsonDocument.Parse(json.Output))
        {
            Assert.Equal(traceRows, document.RootElement[0].GetProperty("rows").GetInt64());
        }

        var results = Run("query", temp.Path, "SELECT probe FROM results");
        Assert.True(results.Code == 0, results.Error);
        Assert.Contains("word-sense", results.Output, StringComparison.Ordinal);
        Assert.Contains("(1 rows)", results.Output, StringComparison.Ordinal);

        var byLayer = Run("query", temp.File("trace.parquet"), "SELECT layer, count(*) AS n FROM trace GROUP BY layer ORDER BY layer", "--format", "csv");
        Assert.True(byLayer.Code == 0, byLayer.Error);
        Assert.StartsWith("layer,n\r\n", byLayer.Output, StringComparison.Ordinal);

        var bad = Run("query", temp.Path, "SELECT nope FROM pairs");
        Assert.Equal(1, bad.Code);
        Assert.StartsWith("error: query failed:", bad.Error, StringComparison.Ordinal);
        Assert.Contains("views: pairs, results, trace", bad.Error, StringComparison.Ordinal);
        Assert.Single(bad.Error.Trim().Split('\n'));

        var missing = Run("query", temp.File("nowhere"), "SELECT 1");
        Assert.Equal(1, missing.Code);
        Assert.Contains("neither a run folder nor a trace file", missing.Error, StringComparison.Ordinal);
    }

    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = CliApp.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
