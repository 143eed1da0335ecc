using ExpertScope.Cli;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary>The <c>compare</c> verb in process: two models' substitution runs side by side, and one-line refusals.</summary>
public sealed class CompareCommandTests
{
    [Fact]
    public void ComparesTwoModelsOnRelativeDepthWithBanner()
    {
        using var temp = new TempDirectory();
        foreach (var model in new[] { "olmoe", "qwen3moe" })
        {
            var (probeCode, _, probeError) = Run("probe", "substitution", "--model", Model(model), "--dataset", "swords:test", "--data-dir", GoldenData.DataPath(),
                "--limit", "60", "--bootstrap", "200", "--no-inflect", "--out", temp.File(model));
            Assert.True(probeCode == 0, probeError);
        }

        var (code, output, error) = Run("compare", temp.File("olmoe"), temp.File("qwen3moe"), "--out", temp.File("cmp"));
        Assert.True(code == 0, error);
        Assert.Contains("random weights", output, StringComparison.Ordinal);
        Assert.Contains("per-context Wilcoxon signed-rank", output, StringComparison.Ordinal);

        var svg = File.ReadAllText(temp.File("cmp/compare.svg"));
        Assert.StartsWith("<svg", svg, StringComparison.Ordinal);
        Assert.Contains("relative depth", svg, StringComparison.Ordinal);
        var table = File.ReadAllLines(temp.File("cmp/compare.csv"));
        var header = table[0].Split(',');
        Assert.Contains("p_signed_rank_contexts", header);
        Assert.Contains("p_holm", header);
        var depth = Array.IndexOf(header, "relative_depth");
        var layer = Array.IndexOf(header, "layer");
        var rows = table.Skip(1).Select(line => line.Split(',')).ToList();
        // Each model's layers run from depth 0 to 1 (both golden models have MoE in every block), then a layer-mean row.
        foreach (var group in rows.GroupBy(row => row[0]))
        {
            var layers = group.Where(row => row[layer] != "mean").ToList();
            Assert.Equal(0.0, double.Parse(layers[0][depth], System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(1.0, double.Parse(layers[^1][depth], System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal("mean", group.Last()[layer]);
        }

        Assert.Equal(2, rows.Select(row => row[0]).Distinct().Count());

        // Recomputed from pairs.csv with the run's own seeds: the same numbers as the run's results.json.
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(temp.File("olmoe/results.json")));
        var layerMean = json.RootElement.GetProperty("context_paired_comparisons")[0].GetProperty("layer_mean");
        var meanRow = rows.First(row => row[0].Contains("olmoe", StringComparison.Ordinal) && row[layer] == "mean");
        foreach (var (column, field) in new[] { ("difference", "difference"), ("ci_lower", "ci_lower"), ("ci_upper", "ci_upper"), ("p_signed_rank_contexts", "p_signed_rank") })
        {
            Assert.Equal(layerMean.GetProperty(field).GetDouble(), double.Parse(meanRow[Array.IndexOf(header, column)], System.Globalization.CultureInfo.InvariantCulture), 12);
        }

        Assert.Equal(layerMean.GetProperty("n_contexts").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture), meanRow[Array.IndexOf(header, "n_contexts")]);
        var report = File.ReadAllText(temp.File("cmp/report.html"));
        Assert.Contains("random weights", report, StringComparison.Ordinal);
        Assert.Contains("<svg", report, StringComparison.Ordinal);
    }

    [Fact]
    public void RefusesFoldersThatAreNotProbeRunsAndMixedProbeKinds()
    {
        using var temp = new TempDirectory();
        Directory.CreateDirectory(temp.File("empty"));
        var (code, _, error) = Run("compare", temp.File("empty"), "--out", temp.File("cmp"));
        Assert.Equal(1, code);
        Assert.Equal($"error: '{temp.File("empty")}' is not a finished probe run: it has no results.json", error.Trim());

        Directory.CreateDirectory(temp.File("other"));
        File.WriteAllText(temp.File("other/results.json"), "{\"kind\": \"analyze\"}");
        File.WriteAllText(temp.File("other/pairs.csv"), "pair_id\n");
        (code, _, error) = Run("compare", temp.File("other"), "--out", temp.File("cmp"));
        Assert.Equal(1, code);
        Assert.Contains("no 'probe' field", error, StringComparison.Ordinal);
        Assert.Single(error.Trim().Split('\n'));

        Assert.Equal(0, Run("probe", "word-sense", "--model", Model("olmoe"), "--dataset", "wic:dev", "--data-dir", GoldenData.DataPath(),
            "--limit", "4", "--bootstrap", "200", "--out", temp.File("ws")).Code);
        Assert.Equal(0, Run("probe", "substitution", "--model", Model("olmoe"), "--dataset", "swords:test", "--data-dir", GoldenData.DataPath(),
            "--limit", "20", "--bootstrap", "200", "--no-inflect", "--out", temp.File("sub")).Code);
        (code, _, error) = Run("compare", temp.File("ws"), temp.File("sub"), "--out", temp.File("cmp"));
        Assert.Equal(1, code);
        Assert.Contains("runs differ in probe kind", error, StringComparison.Ordinal);
        Assert.Single(error.Trim().Split('\n'));
    }

    private static string Model(string name) => GoldenData.GoldenPath("models", name, "model.gguf");

    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = CliApp.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
