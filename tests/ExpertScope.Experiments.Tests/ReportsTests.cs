using System.Globalization;
using System.Text.Json;
using System.Xml.Linq;
using ExpertScope.Experiments.Reports;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

public sealed class ReportsTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    /// <summary>A culture that writes 1.5 as "1,5" and -1 as "−1" (the build runs in invariant-globalization mode, so no named cultures).</summary>
    private static CultureInfo CommaCulture()
    {
        var culture = (CultureInfo)CultureInfo.InvariantCulture.Clone();
        culture.NumberFormat.NumberDecimalSeparator = ",";
        culture.NumberFormat.NumberGroupSeparator = ".";
        culture.NumberFormat.NegativeSign = "\u2212";
        culture.NumberFormat.NaNSymbol = "nicht";
        return culture;
    }

    /// <summary>One of every figure kind, built from fixed made-up numbers.</summary>
    internal static IReadOnlyList<Figure> SampleFigures()
    {
        var layers = Enumerable.Range(0, 16).Select(i => (double)i).ToArray();
        double[] Curve(double offset, double slope) => layers.Select(l => offset + slope * Math.Sin(l / 3.0)).ToArray();
        var a = Curve(0.55, 0.2);
        var b = Curve(0.35, 0.1);
        var heat = new double[16, 64];
        for (var l = 0; l < 16; l++)
        {
            for (var e = 0; e < 64; e++)
            {
                heat[l, e] = Math.Abs(Math.Sin(l * 0.7 + e * 0.31)) * (1 + l / 16.0);
            }
        }

        var random = new Random(20230828);
        double Normal(double mean, double sd) => mean + sd * Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        var sample1 = Enumerable.Range(0, 400).Select(_ => Normal(0.4, 0.1)).ToArray();
        var sample2 = Enumerable.Range(0, 300).Select(_ => Normal(0.6, 0.15)).ToArray();
        return
        [
            new LineChart
            {
                Title = "Word-sense separability by layer",
                XLabel = "layer",
                YLabel = "accuracy",
                Intervals = IntervalStyle.Band,
                ReferenceY = 0.25,
                Series =
                [
                    new LineSeries("OLMoE", layers, a, a.Select(v => v - 0.05).ToArray(), a.Select(v => v + 0.05).ToArray()),
                    new LineSeries("Mixtral <8x7B> & co", layers, b, b.Select(v => v - 0.03).ToArray(), b.Select(v => v + 0.04).ToArray()),
                ],
            },
            new LineChart
            {
                Title = "Error bars",
                XLabel = "layer",
                YLabel = "overlap",
                Series = [new LineSeries("top-k overlap", layers, b, b.Select(v => v - 0.03).ToArray(), b.Select(v => v + 0.04).ToArray())],
            },
            new BarChart
            {
                Title = "Ablation effect by domain",
                YLabel = "Δ loss",
                Categories = ["code", "math", "prose", "legal"],
                ReferenceY = 0,
                Series =
                [
                    new BarSeries("top expert", [0.8, 0.3, -0.1, 0.05], [0.6, 0.1, -0.3, -0.1], [1.0, 0.5, 0.1, 0.2],
                        [BarChart.SignificanceMark(0.0004), BarChart.SignificanceMark(0.02), BarChart.SignificanceMark(0.4), null]),
                    new BarSeries("random expert", [0.1, 0.05, 0.02, 0.0]),
                ],
            },
            new Heatmap
            {
                Title = "Expert usage (layer × expert)",
                XLabel = "expert",
                YLabel = "layer",
                ValueLabel = "share",
                Values = heat,
            },
            new Heatmap
            {
                Title = "Difference",
                Values = new double[,] { { -1, 0.5 }, { 0, double.NaN } },
                Scale = ColorScale.Diverging,
                ShowValues = true,
                Width = 360,
                Height = 260,
            },
            new Histogram
            {
                Title = "Router entropy",
                XLabel = "entropy (nats)",
                Normalize = true,
                Distributions = [new Distribution("layer 0", sample1), new Distribution("layer 15", sample2)],
            },
            new BoxPlot
            {
                Title = "Top-1 weight",
                YLabel = "weight",
                Distributions = [new Distribution("layer 0", sample1), new Distribution("layer 15", sample2)],
            },
            LineChart.Coverage("Coverage", [("layer 0", heat.Cast<double>().Take(64).ToArray()), ("uniform", Enumerable.Repeat(1.0, 64).ToArray())]),
        ];
    }

    internal static HtmlReport SampleReport()
    {
        var report = new HtmlReport("ExpertScope sample report")
        {
            Subtitle = "olmoe-1b-7b · 1,000 sentences",
            Footer = "expertscope report --sample",
        };
        report.AddSummary(
            "Experts in the middle layers separate word senses best: accuracy peaks near layer 9.",
            "Ablating the top expert for code raises the loss on code by 0.8 nats; other domains barely change.");
        var figures = SampleFigures();
        var section = report.AddSection("Figures");
        foreach (var figure in figures)
        {
            section.AddFigure(figure, "Figure: " + figure.Title);
        }

        report.AddSection("Numbers")
            .AddParagraph("Values with 95% bootstrap intervals <not HTML>.")
            .AddTable(new ReportTable(["layer", "accuracy", "note"], [["0", "0.5", "a, b"], ["1", ReportTable.Number(double.NaN), "x < y"]], "Table 1"))
            .AddKeyValues([new("model", "olmoe.gguf"), new("sha256", new string('f', 64))]);
        return report;
    }

    [Fact]
    public void EveryFigure_IsWellFormedSvg()
    {
        foreach (var figure in SampleFigures())
        {
            var document = XDocument.Parse(figure.ToSvg());
            Assert.Equal(Svg + "svg", document.Root!.Name);
            Assert.Equal(figure.Title, document.Root.Element(Svg + "title")!.Value);
            Assert.DoesNotContain(document.Descendants(), e => e.Name.LocalName == "script");
        }
    }

    [Fact]
    public void Figures_AreDeterministic()
    {
        var first = SampleFigures().Select(f => f.ToSvg()).ToList();
        var second = SampleFigures().Select(f => f.ToSvg()).ToList();
        Assert.Equal(first, second);
        Assert.Equal(SampleReport().ToHtml(), SampleReport().ToHtml());
    }

    [Fact]
    public void Figures_IgnoreTheCurrentCulture()
    {
        var invariant = SampleReport().ToHtml();
        var saved = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = CommaCulture();
            Assert.Equal(invariant, SampleReport().ToHtml());
        }
        finally
        {
            CultureInfo.CurrentCulture = saved;
        }
    }

    [Fact]
    public void LineChart_MapsValuesToTheDocumentedPlotArea()
    {
        // No legend (empty name): plot area x 64..624, y 44..344 for 640 x 400. Y ticks 0..1, x ticks 0..2.
        var chart = new LineChart { Series = [new LineSeries("", [0, 1, 2], [0, 0.5, 1])], ShowMarkers = false };
        var document = XDocument.Parse(chart.ToSvg());
        var line = Assert.Single(document.Descendants(Svg + "polyline"));
        Assert.Equal("64,344 344,194 624,44", line.Attribute("points")!.Value);

        var yLabels = document.Descendants(Svg + "g").Single(g => (string?)g.Attribute("class") == "y-axis")
            .Elements(Svg + "text").Select(t => t.Value).ToList();
        Assert.Equal(["0.0", "0.2", "0.4", "0.6", "0.8", "1.0", ""], yLabels);
        var xLabels = document.Descendants(Svg + "g").Single(g => (string?)g.Attribute("class") == "x-axis")
            .Elements(Svg + "text").Select(t => t.Value).ToList();
        Assert.Equal(["0", "1", "2", ""], xLabels);
    }

    [Fact]
    public void LineChart_ErrorBarsSpanTheInterval()
    {
        var chart = new LineChart { Series = [new LineSeries("", [0, 2], [0.5, 0.5], [0.25, 0], [0.75, 1])], ShowMarkers = false };
        var document = XDocument.Parse(chart.ToSvg());
        var bars = document.Descendants(Svg + "g").Single(g => (string?)g.Attribute("class") == "series").Elements(Svg + "line")
            .Where(l => l.Attribute("x1")!.Value == l.Attribute("x2")!.Value).ToList();
        // Interval [0.25, 0.75] at x=0 and [0, 1] at x=2, on a 0..1 axis 300 px tall from y=344 up.
        Assert.Equal(["64:269:119", "624:344:44"], bars.Select(l => $"{l.Attribute("x1")!.Value}:{l.Attribute("y1")!.Value}:{l.Attribute("y2")!.Value}"));
    }

    [Fact]
    public void LineChart_NaNSplitsTheLine()
    {
        var chart = new LineChart { Series = [new LineSeries("", [0, 1, 2, 3], [0, 1, double.NaN, 1])] };
        var document = XDocument.Parse(chart.ToSvg());
        Assert.Equal(2, document.Descendants(Svg + "polyline").Count());
        Assert.Equal(3, document.Descendants(Svg + "circle").Count());
    }

    [Fact]
    public void BarChart_BarsStartAtZeroAndCarryMarks()
    {
        var chart = new BarChart
        {
            Categories = ["a", "b"],
            Series = [new BarSeries("", [0.5, -0.5], Marks: ["**", null])],
        };
        var document = XDocument.Parse(chart.ToSvg());
        var bars = document.Descendants(Svg + "g").Single(g => (string?)g.Attribute("class") == "series").Elements(Svg + "rect").ToList();
        Assert.Equal(2, bars.Count);
        // Y axis -0.5..0.75 in steps of 0.25 (headroom for the mark): 300 px for 1.25, so 240 px per unit and zero
        // at y = 344 - 0.5 * 240 = 224; each bar is 120 px tall, one above zero and one below.
        double Attr(XElement e, string n) => double.Parse(e.Attribute(n)!.Value, CultureInfo.InvariantCulture);
        Assert.Equal(104, Attr(bars[0], "y"), 2);
        Assert.Equal(120, Attr(bars[0], "height"), 2);
        Assert.Equal(224, Attr(bars[1], "y"), 2);
        Assert.Equal(120, Attr(bars[1], "height"), 2);
        Assert.Equal("**", document.Descendants(Svg + "text").Single(t => t.Value == "**").Value);
    }

    [Theory]
    [InlineData(0.0001, "***")]
    [InlineData(0.005, "**")]
    [InlineData(0.049, "*")]
    [InlineData(0.05, "n.s.")]
    public void SignificanceMark_FollowsTheUsualThresholds(double p, string mark) => Assert.Equal(mark, BarChart.SignificanceMark(p));

    [Fact]
    public void Heatmap_CellsGetTheScaleColoursAndTheLegendShowsTheRange()
    {
        var map = new Heatmap { Values = new double[,] { { 0, 1 }, { 0.5, double.NaN } }, XLabel = "expert", YLabel = "layer" };
        var document = XDocument.Parse(map.ToSvg());
        var cells = document.Descendants(Svg + "g").Single(g => (string?)g.Attribute("class") == "cells").Elements(Svg + "rect").ToList();
        Assert.Equal(["#440154", "#FDE725", "#26828E", "#DDDDDD"], cells.Select(c => c.Attribute("fill")!.Value));
        Assert.Equal("layer 0, expert 1: 1", cells[1].Element(Svg + "title")!.Value);
        Assert.Equal("layer 1, expert 1: no value", cells[3].Element(Svg + "title")!.Value);
        var legend = document.Descendants(Svg + "g").Single(g => (string?)g.Attribute("class") == "legend");
        Assert.Equal(["0.0", "0.2", "0.4", "0.6", "0.8", "1.0", ""], legend.Elements(Svg + "text").Select(t => t.Value));
        Assert.Single(document.Descendants(Svg + "linearGradient"));
    }

    [Theory]
    [InlineData(0.0, "#440154")]
    [InlineData(0.0625, "#461566")] // halfway between #440154 and #482878, halves rounded up
    [InlineData(2.0, "#FDE725")]    // clamped
    public void ColorOf_InterpolatesBetweenStops(double value, string expected) =>
        Assert.Equal(expected, Heatmap.ColorOf(value, 0, 1));

    [Fact]
    public void Text_IsEscapedAndInvalidCharactersReplaced()
    {
        var chart = new LineChart
        {
            Title = "a < b & \"c\" 'd' \u0001 \uD800 😀",
            Series = [new LineSeries("<script>alert(1)</script>", [0], [1])],
        };
        var svg = chart.ToSvg();
        var document = XDocument.Parse(svg);
        Assert.Equal("a < b & \"c\" 'd' \uFFFD \uFFFD 😀", document.Root!.Element(Svg + "title")!.Value);
        Assert.DoesNotContain("<script>", svg, StringComparison.Ordinal);
        Assert.Contains(document.Descendants(Svg + "text"), t => t.Value == "<script>alert(1)</script>");
    }

    [Fact]
    public void Report_IsSelfContainedAndEscapesText()
    {
        var html = SampleReport().ToHtml();
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org/2000/svg", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.DoesNotContain("https://", html, StringComparison.Ordinal);
        Assert.DoesNotContain(" src=", html, StringComparison.Ordinal);
        Assert.Contains("&lt;not HTML&gt;", html, StringComparison.Ordinal);
        Assert.Contains("<h2>In short</h2>", html, StringComparison.Ordinal);
        Assert.Equal(8, html.Split("<svg ").Length - 1);
        Assert.Contains("<td class=\"num\">0.5</td><td>a, b</td>", html, StringComparison.Ordinal);

        // The whole page is well-formed XML too (void elements aside), which catches unbalanced markup.
        var xhtml = html.Replace("<!DOCTYPE html>", string.Empty, StringComparison.Ordinal)
            .Replace("<meta charset=\"utf-8\">", "<meta charset=\"utf-8\"/>", StringComparison.Ordinal)
            .Replace("initial-scale=1\">", "initial-scale=1\"/>", StringComparison.Ordinal);
        XDocument.Parse(xhtml);
    }

    [Fact]
    public void NiceScale_PicksRoundTicks()
    {
        Assert.Equal([0, 0.2, 0.4, 0.6, 0.8, 1.0], NiceScale.Create(0.13, 0.87).Ticks);
        Assert.Equal([0, 20, 40, 60, 80, 100], NiceScale.Create(3, 97).Ticks);
        Assert.Equal([-1, -0.5, 0, 0.5, 1], NiceScale.Create(-0.9, 0.8).Ticks);
        Assert.Equal([0, 5, 10, 15, 20, 25, 30, 35], NiceScale.CreateInteger(0, 31).Ticks);
        Assert.Equal([0, 1, 2], NiceScale.CreateInteger(0, 2).Ticks);
        Assert.Equal("0.25", NiceScale.Create(0, 1, 5).Format(0.25));
        Assert.Equal("0.0", NiceScale.Create(-1, 1).Format(-0.0000001));
        var within = NiceScale.CreateWithin(0, 64, 8);
        Assert.Equal((0.0, 64.0), (within.Minimum, within.Maximum));
        Assert.Equal([0, 10, 20, 30, 40, 50, 60], within.Ticks);
        var single = NiceScale.Create(5, 5);
        Assert.True(single.Minimum < 5 && single.Maximum > 5);
    }

    [Fact]
    public void BoxSummary_UsesType7QuartilesAndTukeyWhiskers()
    {
        var summary = BoxSummary.Of([1, 2, 3, 4, 5, 6, 7, 8, 9, 100, double.NaN])!;
        Assert.Equal(10, summary.Count);
        Assert.Equal(3.25, summary.LowerQuartile, 10);
        Assert.Equal(5.5, summary.Median, 10);
        Assert.Equal(7.75, summary.UpperQuartile, 10);
        Assert.Equal(1, summary.LowerWhisker);
        Assert.Equal(9, summary.UpperWhisker);
        Assert.Equal([100.0], summary.Outliers);
    }

    [Fact]
    public void Histogram_CountsIntoNiceHalfOpenBins()
    {
        var histogram = new Histogram { BinCount = 4, Distributions = [new Distribution("x", [0.0, 0.1, 0.25, 0.99, 1.0])] };
        var edges = histogram.BinEdges();
        Assert.Equal([0, 0.25, 0.5, 0.75, 1.0], edges);
        Assert.Equal([2, 1, 0, 2], Histogram.Count([0.0, 0.1, 0.25, 0.99, 1.0], edges));
    }

    [Fact]
    public void Coverage_IsTheCumulativeShareOfTheSortedCounts()
    {
        var chart = LineChart.Coverage("c", [("x", [1.0, 3.0, 0.0, 4.0])]);
        var series = Assert.Single(chart.Series);
        Assert.Equal([0, 1, 2, 3, 4], series.X);
        Assert.Equal([0, 0.5, 0.875, 1, 1], series.Y);
    }

    [Fact]
    public void Csv_QuotesPerRfc4180AndUsesInvariantNumbers()
    {
        var text = new StringWriter();
        using (var csv = new CsvWriter(text, leaveOpen: true))
        {
            csv.WriteRow("plain", "a,b", "say \"hi\"", "line\nbreak", " padded", null);
            csv.WriteRow(0.1, 1e-7, double.NaN, double.PositiveInfinity, float.NegativeInfinity, 1234567, true, -0.5f);
        }

        Assert.Equal(
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"line\nbreak\",\" padded\",\r\n" +
            "0.1,1E-07,NaN,Infinity,-Infinity,1234567,true,-0.5\r\n",
            text.ToString());
    }

    [Fact]
    public void Csv_IgnoresTheCurrentCulture()
    {
        var saved = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = CommaCulture();
            Assert.Equal("1.5", CsvWriter.Format(1.5));
            Assert.Equal("2026-01-02T00:00:00.0000000+00:00", CsvWriter.Format(new DateTimeOffset(2026, 1, 2, 0, 0, 0, TimeSpan.Zero)));
        }
        finally
        {
            CultureInfo.CurrentCulture = saved;
        }
    }

    [Fact]
    public void Csv_FileIsUtf8WithoutBom()
    {
        using var temp = new TempDirectory();
        var path = temp.File("t.csv");
        using (var csv = CsvWriter.Create(path))
        {
            new ReportTable(["token", "n"], [["é", "1"]]).WriteCsv(csv);
        }

        Assert.Equal("token,n\r\né,1\r\n"u8.ToArray(), File.ReadAllBytes(path));
    }

    private sealed record Result(string Name, double Value, float Single, double[] Values);

    [Fact]
    public void Json_WritesNonFiniteAsNullAndIsInvariant()
    {
        var saved = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = CommaCulture();
            var json = JsonSerializer.Serialize(new Result("ü<", 0.5, float.NaN, [1.5, double.PositiveInfinity, double.NegativeInfinity]), JsonOutput.CompactOptions);
            Assert.Equal("{\"Name\":\"ü<\",\"Value\":0.5,\"Single\":null,\"Values\":[1.5,null,null]}", json);
            var back = JsonSerializer.Deserialize<Result>(json, JsonOutput.CompactOptions)!;
            Assert.True(float.IsNaN(back.Single));
            Assert.True(double.IsNaN(back.Values[1]));
        }
        finally
        {
            CultureInfo.CurrentCulture = saved;
        }
    }

    [Fact]
    public void Json_WriteFile_EndsWithNewlineAndIsIndented()
    {
        using var temp = new TempDirectory();
        var path = temp.File("r.json");
        JsonOutput.WriteFile(path, new Result("a", double.NaN, 1, []));
        Assert.Equal("{\n  \"Name\": \"a\",\n  \"Value\": null,\n  \"Single\": 1,\n  \"Values\": []\n}\n", File.ReadAllText(path).Replace("\r\n", "\n", StringComparison.Ordinal));
    }

    /// <summary>Writes the sample report where EXPERTSCOPE_SAMPLE_REPORT points, to look at it in a browser; otherwise checks it saves.</summary>
    [Fact]
    public void SampleReport_Saves()
    {
        using var temp = new TempDirectory();
        var path = Environment.GetEnvironmentVariable("EXPERTSCOPE_SAMPLE_REPORT") is { Length: > 0 } target ? target : temp.File("report.html");
        var report = SampleReport();
        report.Save(path);
        Assert.Equal(report.ToHtml(), File.ReadAllText(path));
    }
}
