using System.Text.Json;
using ExpertScope.Core;
using ExpertScope.Experiments.Reports;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary><see cref="BaselineComparison"/>: a run's headline numbers next to a baseline run's, read from results.json.</summary>
public sealed class BaselineComparisonTests
{
    [Fact]
    public void TokenIdRuns_AreComparedLayerByLayer_AndTheReportGainsOneSection()
    {
        using var temp = new TempDirectory();
        string run = Run(temp, "trained", "token-id", new { analysis = "token-id", model = "trained.gguf", tokens = 100, min_occurrences = 10, layers = new[] { Layer(0, 2.7, 0.95), Layer(1, 1.6, 0.7) } });
        string baseline = Run(temp, "twin", "token-id", new { analysis = "token-id", model = "twin.gguf", tokens = 100, min_occurrences = 5, layers = new[] { Layer(0, 2.3, 0.8), Layer(1, 1.6, 0.7) } });

        string headline = BaselineComparison.Write(run, baseline);
        BaselineComparison.Write(run, baseline);

        var (rows, differences) = BaselineComparison.Compare(run, baseline);
        var mi = rows.Single(r => r.Metric == "mi_bits" && r.Layer == 0);
        Assert.Equal(2.7, mi.Value);
        Assert.Equal(2.3, mi.Baseline);
        Assert.Equal(0.4, mi.Difference, 12);
        Assert.Equal(2.7 / 2.3, mi.Ratio, 12);
        Assert.Equal(0, rows.Single(r => r.Metric == "top1_consistency" && r.Layer == 1).Difference);
        Assert.Equal(2 * 5, rows.Count);
        Assert.Equal(["min_occurrences: 10 here, 5 in the baseline"], differences);
        Assert.Contains("mi_miller_madow_bits: 2.14 here, 1.94 in the baseline", headline, StringComparison.Ordinal);

        string html = File.ReadAllText(Path.Combine(run, "report.html"));
        Assert.Equal(1, CountOf(html, "<section id=\"baseline\">"));
        Assert.True(html.IndexOf("id=\"baseline\"", StringComparison.Ordinal) < html.IndexOf("</body>", StringComparison.Ordinal));
        Assert.Contains("twin.gguf", html, StringComparison.Ordinal);
        Assert.Contains("min_occurrences: 10 here, 5 in the baseline", html, StringComparison.Ordinal);
        Assert.Equal(11, File.ReadAllLines(Path.Combine(run, "baseline.csv")).Length);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "baseline.json")));
        Assert.Equal("twin.gguf", json.RootElement.GetProperty("baseline_model").GetString());
    }

    [Fact]
    public void DomainRuns_CompareMeanDivergenceOverPairs_AndCountTwiceOverUsedExperts()
    {
        using var temp = new TempDirectory();
        object Domains(double js, double ratio) => new
        {
            analysis = "domains", model = "m", tokens_per_domain = 2000, seed = 0,
            concentration = new[] { new { domain = "a", layer = 0, normalized_entropy = 0.9, top_expert_share = 0.2 }, new { domain = "b", layer = 0, normalized_entropy = 0.8, top_expert_share = 0.3 } },
            js_divergence = new[] { new { layer = 0, domains = new[] { "a", "b", "c" }, bits = new[] { new[] { 0, js, 2 * js }, new[] { js, 0, 3 * js }, new[] { 2 * js, 3 * js, 0 } } } },
            specific_experts = new[] { new { domain = "a", log2_ratio = ratio }, new { domain = "b", log2_ratio = 0.5 } },
        };
        string run = Run(temp, "trained", "domains", Domains(0.03, 1.5));
        string baseline = Run(temp, "twin", "domains", Domains(0.01, 0.9));

        var (rows, differences) = BaselineComparison.Compare(run, baseline);

        Assert.Empty(differences);
        var mean = rows.Single(r => r.Metric == "js_divergence_mean_bits");
        Assert.Equal(0.06, mean.Value, 12);
        Assert.Equal(3.0, mean.Ratio, 12);
        Assert.Equal(0.09, rows.Single(r => r.Metric == "js_divergence_max_bits").Value, 12);
        Assert.Equal(0.85, rows.Single(r => r.Metric == "normalized_entropy_mean").Value, 12);
        var specific = rows.Single(r => r.Metric == "specific_experts_at_least_2x");
        Assert.Equal((1.0, 0.0), (specific.Value, specific.Baseline));
    }

    [Fact]
    public void ABaselineOfAnotherAnalysis_OrWithoutResults_IsRefusedWithTheFileNamed()
    {
        using var temp = new TempDirectory();
        string run = Run(temp, "run", "token-id", new { analysis = "token-id", model = "m", layers = Array.Empty<object>() });
        string lens = Run(temp, "lens", "lens", new { analysis = "lens", model = "m", summary = Array.Empty<object>() });
        string empty = Directory.CreateDirectory(temp.File("empty")).FullName;

        var other = Assert.Throws<ExpertScopeException>(() => BaselineComparison.Compare(run, lens));
        Assert.Contains("'lens' run", other.Message, StringComparison.Ordinal);
        Assert.Throws<ExpertScopeException>(() => BaselineComparison.Validate(lens, "token-id"));
        var missing = Assert.Throws<ExpertScopeException>(() => BaselineComparison.Validate(empty, "token-id"));
        Assert.Contains(Path.Combine(empty, "results.json"), missing.Message, StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(empty, "results.json"), "{ not json");
        Assert.Throws<ExpertScopeException>(() => BaselineComparison.Validate(empty, "token-id"));
    }

    private static object Layer(int layer, double mi, double consistency) =>
        new { layer, mi_bits = mi, mi_miller_madow_bits = mi - 0.01, top1_consistency = consistency, context_share = 0.3, h_expert_bits = 2.9 };

    private static string Run(TempDirectory temp, string name, string title, object results)
    {
        string folder = Directory.CreateDirectory(temp.File(name)).FullName;
        JsonOutput.WriteFile(Path.Combine(folder, "results.json"), results);
        var report = new HtmlReport(title) { Footer = "footer" };
        report.AddSection("Per layer").AddParagraph("numbers");
        report.Save(Path.Combine(folder, "report.html"));
        return folder;
    }

    private static int CountOf(string text, string part)
    {
        int count = 0;
        for (int at = text.IndexOf(part, StringComparison.Ordinal); at >= 0; at = text.IndexOf(part, at + 1, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }
}
