using System.Text.Json;
using AngleSharp.Html.Parser;
using ExpertScope.Experiments.Reports;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary>Every report, results/summary JSON and stdout summary of a random-weight model says so, first.</summary>
public sealed class RandomWeightsReportTests(ReportGallery gallery) : IClassFixture<ReportGallery>
{
    public static TheoryData<string> Verbs() =>
        ["analyze domains", "analyze single-expert", "analyze lens", "analyze token-id", "super-experts", "steer discover", "steer evaluate", "probe word-sense"];

    private GalleryReport Report(string verb) => gallery.Reports.Single(r => r.Verb == verb);

    [Theory]
    [MemberData(nameof(Verbs))]
    public void ReportOpensWithTheBanner_BeforeTheSummary(string verb)
    {
        var document = new HtmlParser().ParseDocument(File.ReadAllText(Report(verb).ReportPath));
        var banner = document.QuerySelector("#random-weights");
        Assert.NotNull(banner);
        Assert.Contains("Random weights", banner.TextContent, StringComparison.Ordinal);
        // The banner is the first thing after the header: before the summary and every section.
        var header = document.QuerySelector("body > header");
        Assert.NotNull(header);
        Assert.Same(banner, header.NextElementSibling);
    }

    [Theory]
    [MemberData(nameof(Verbs))]
    public void ResultsJsonCarriesTheRandomWeightsField(string verb)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Report(verb).JsonPath));
        var root = json.RootElement;
        bool random = verb.StartsWith("probe", StringComparison.Ordinal)
            ? root.GetProperty("model").GetProperty("random_weights").GetBoolean()
            : root.GetProperty("random_weights").GetBoolean();
        Assert.True(random, $"{verb}: random_weights is not true");
        if (!verb.StartsWith("probe", StringComparison.Ordinal))
        {
            Assert.Equal("random_weights", root.EnumerateObject().First().Name);
            Assert.Equal(RandomWeightsNotice.Text, root.GetProperty("warning").GetString());
        }
    }

    [Theory]
    [MemberData(nameof(Verbs))]
    public void StdoutSummaryWarnsFirst(string verb)
    {
        var first = Report(verb).Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0];
        Assert.Contains("random weights", first, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void PruneWarnsOnARandomWeightModel()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp);
        var (code, output, error) = VerbRunner.Run("prune", "--model", model, "--keep-per-layer", "4", "--corpus", temp.File("neutral.txt"), "--threads", "1",
            "--out", temp.File("pruned.gguf"));
        Assert.True(code == 0, error);
        Assert.StartsWith("WARNING: Random weights", output, StringComparison.Ordinal);
    }

    [Fact]
    public void TrainedModelsGetNoBanner_AndFalseInTheJson()
    {
        using var temp = new TempDirectory();
        var report = new HtmlReport("A trained model");
        report.AddSummary("Numbers.");
        var document = new HtmlParser().ParseDocument(report.ToHtml());
        Assert.Null(document.QuerySelector("#random-weights"));

        string path = temp.File("results.json");
        RandomWeightsNotice.WriteResultsFile(path, new { analysis = "x", value = double.NaN }, randomWeights: false);
        using var json = JsonDocument.Parse(File.ReadAllText(path));
        Assert.False(json.RootElement.GetProperty("random_weights").GetBoolean());
        Assert.False(json.RootElement.TryGetProperty("warning", out _));
        Assert.Equal(JsonValueKind.Null, json.RootElement.GetProperty("value").ValueKind);
        Assert.Equal("x", json.RootElement.GetProperty("analysis").GetString());
    }

    [Theory]
    [InlineData("expertscope-synthetic tiny-olmoe", true)]
    [InlineData("golden qwen3moe", true)]
    [InlineData("Random MoE", true)]
    [InlineData("OLMoE-1B-7B-0924", false)]
    [InlineData(null, false)]
    public void RandomWeightModelsAreKnownByName(string? name, bool random) => Assert.Equal(random, RandomWeightsNotice.IsRandom(name));
}

/// <summary>Report polish: shared colour scales, every axis label, each verb's headline numbers on stdout.</summary>
public sealed class ReportPolishTests(ReportGallery gallery) : IClassFixture<ReportGallery>
{
    private GalleryReport Report(string verb) => gallery.Reports.Single(r => r.Verb == verb);

    [Fact]
    public void DomainHeatmapsShareOneColourScale_AndLabelEveryLayerAndExpert()
    {
        var document = new HtmlParser().ParseDocument(File.ReadAllText(Report("analyze domains").ReportPath));
        var heatmaps = document.QuerySelectorAll("svg").Where(svg => (svg.QuerySelector("title")?.TextContent ?? string.Empty).StartsWith("Expert usage: ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, heatmaps.Count);
        // The same legend ticks on every domain's heatmap: one scale.
        var legends = heatmaps.Select(svg => string.Join("|", svg.QuerySelectorAll("g.legend text").Select(t => t.TextContent))).ToList();
        Assert.Single(legends.Distinct());
        Assert.Contains("share one colour scale", document.Body!.TextContent, StringComparison.Ordinal);
        foreach (var svg in heatmaps)
        {
            var labels = svg.QuerySelectorAll("g.labels text").Select(t => t.TextContent).ToList();
            foreach (string expert in Enumerable.Range(0, 8).Select(e => e.ToString(System.Globalization.CultureInfo.InvariantCulture)))
            {
                Assert.True(labels.Count(l => l == expert) >= 1, $"expert {expert} has no label");
            }
        }
    }

    [Fact]
    public void DenseHeatmapsStillLabelEveryColumn()
    {
        var heatmap = new Heatmap { Title = "dense", Values = new double[48, 128], XLabel = "expert", YLabel = "layer" };
        var svg = new HtmlParser().ParseDocument("<body>" + heatmap.ToSvg() + "</body>");
        var labels = svg.QuerySelectorAll("g.labels text").Select(t => t.TextContent).ToList();
        Assert.All(Enumerable.Range(0, 128), c => Assert.Contains(c.ToString(System.Globalization.CultureInfo.InvariantCulture), labels));
        var fonts = svg.QuerySelectorAll("g.labels text[font-size]").Select(t => double.Parse(t.GetAttribute("font-size")!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.All(fonts, size => Assert.True(size >= Heatmap.MinimumLabelFont));
    }

    [Theory]
    [InlineData("analyze domains", "experts covering 50% of decisions")]
    [InlineData("analyze single-expert", "with the top expert alone in every layer")]
    [InlineData("analyze lens", "KL to the final distribution")]
    [InlineData("analyze token-id", "top-1 expert consistency")]
    public void AnalyzeVerbsPrintTheirHeadlineNumbers(string verb, string expected)
    {
        var output = Report(verb).Output;
        Assert.Contains(expected, output, StringComparison.Ordinal);
        Assert.Contains("wrote ", output, StringComparison.Ordinal);
    }
}
