using System.Text.Json;
using ExpertScope.Cli;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary>The <c>probe</c> verb end to end: outputs, console summary, one-line errors.</summary>
public sealed class ProbeCommandTests
{
    [Fact]
    public void WordSenseWritesEveryFileAndPrintsThePlainSummary()
    {
        using var temp = new TempDirectory();
        var (code, output, error) = Run("probe", "word-sense", "--model", Model("olmoe"), "--dataset", "wic:dev", "--data-dir", GoldenData.DataPath(),
            "--limit", "6", "--seed", "9", "--bootstrap", "200", "--out", temp.Path);
        Assert.True(code == 0, error);
        foreach (var file in new[] { "results.json", "pairs.csv", "trace.parquet", "report.html", "manifest.json" })
        {
            Assert.True(File.Exists(temp.File(file)), file);
        }

        Assert.Contains("random weights", output, StringComparison.Ordinal);
        Assert.Contains("same-sense vs different-sense (kappa)", output, StringComparison.Ordinal);
        Assert.Contains("p Holm", output, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b[", output, StringComparison.Ordinal);  // plain when not a terminal
        Assert.Contains("routing sentences", error, StringComparison.Ordinal);
        Assert.Contains("pairs kept", output, StringComparison.Ordinal);
        Assert.Contains("r_rb [95% CI]", output, StringComparison.Ordinal);
        Assert.DoesNotContain("pairs or controls dropped", output, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(File.ReadAllText(temp.File("results.json")));
        Assert.Equal("word-sense", json.RootElement.GetProperty("probe").GetString());
        Assert.Equal(9, json.RootElement.GetProperty("settings").GetProperty("seed").GetInt32());
        Assert.Equal("target", json.RootElement.GetProperty("settings").GetProperty("position").GetString());
        var report = File.ReadAllText(temp.File("report.html"));
        Assert.Contains("Glossary", report, StringComparison.Ordinal);
        Assert.DoesNotContain("is chance (κ = 0)", report, StringComparison.Ordinal);
    }

    [Fact]
    public void SentenceEndReadoutAndKeptIdenticalPrefixesAreRecorded()
    {
        using var temp = new TempDirectory();
        var (code, output, error) = Run("probe", "word-sense", "--model", Model("olmoe"), "--dataset", "wic:dev", "--data-dir", GoldenData.DataPath(),
            "--limit", "6", "--seed", "9", "--bootstrap", "200", "--position", "sentence-end", "--keep-identical-prefixes", "--metric", "kappa-load", "--out", temp.Path);
        Assert.True(code == 0, error);
        Assert.Contains("read at the last token of each sentence", output, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(File.ReadAllText(temp.File("results.json")));
        var settings = json.RootElement.GetProperty("settings");
        Assert.Equal("sentence-end", settings.GetProperty("position").GetString());
        Assert.Equal("kept", settings.GetProperty("identical_prefixes").GetString());
        Assert.Equal("kappa-load", settings.GetProperty("metric").GetString());

        (code, _, error) = Run("probe", "word-sense", "--model", Model("olmoe"), "--dataset", "wic:dev", "--data-dir", GoldenData.DataPath(), "--position", "middle", "--out", temp.File("o"));
        Assert.Equal(1, code);
        Assert.Contains("unknown --position 'middle'", error, StringComparison.Ordinal);
    }

    [Fact]
    public void SubstitutionRunsOnSwords()
    {
        using var temp = new TempDirectory();
        var (code, output, error) = Run("probe", "substitution", "--model", Model("qwen3moe"), "--dataset", "swords:test", "--data-dir", GoldenData.DataPath(),
            "--limit", "6", "--similar-threshold", "0.4", "--metric", "jaccard", "--subtokens", "last", "--bootstrap", "200", "--out", temp.Path);
        Assert.True(code == 0, error);
        Assert.Contains("similar vs dissimilar (jaccard)", output, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(File.ReadAllText(temp.File("results.json")));
        Assert.Equal("0.4", json.RootElement.GetProperty("settings").GetProperty("similar_threshold").GetString());
    }

    [Fact]
    public void MissingDataAndBadOptionsAreOneLineErrors()
    {
        using var temp = new TempDirectory();
        var (code, _, error) = Run("probe", "word-sense", "--model", Model("olmoe"), "--dataset", "wic:dev", "--data-dir", temp.File("nowhere"), "--out", temp.File("o1"));
        Assert.Equal(1, code);
        Assert.StartsWith("error: data set 'wic:dev' needs", error, StringComparison.Ordinal);
        Assert.Contains("--data-dir", error, StringComparison.Ordinal);
        Assert.Single(error.Trim().Split('\n'));

        (code, _, error) = Run("probe", "word-sense", "--model", Model("olmoe"), "--dataset", "wic:dev", "--data-dir", GoldenData.DataPath(), "--metric", "cosine", "--out", temp.File("o2"));
        Assert.Equal(1, code);
        Assert.Contains("unknown metric 'cosine'", error, StringComparison.Ordinal);

        (code, _, error) = Run("probe", "word-sense", "--model", temp.File("missing.gguf"), "--dataset", "wic:dev", "--data-dir", GoldenData.DataPath(), "--out", temp.File("o3"));
        Assert.Equal(1, code);
        Assert.Contains("missing.gguf", error, StringComparison.Ordinal);
    }

    [Fact]
    public void ChangedSettingRefusesToResume()
    {
        using var temp = new TempDirectory();
        string[] common = ["probe", "word-sense", "--model", Model("olmoe"), "--dataset", "wic:dev", "--data-dir", GoldenData.DataPath(), "--limit", "4", "--bootstrap", "200", "--out", temp.Path];
        Assert.Equal(0, Run(common).Code);
        var (code, _, error) = Run([.. common, "--subtokens", "first"]);
        Assert.Equal(1, code);
        Assert.Contains("setting 'subtokens' was 'all', now 'first'", error, StringComparison.Ordinal);
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
