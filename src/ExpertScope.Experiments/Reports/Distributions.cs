using System.Globalization;

namespace ExpertScope.Experiments.Reports;

/// <summary>A named sample of values for a <see cref="Histogram"/> or <see cref="BoxPlot"/> (non-finite values are ignored).</summary>
/// <param name="Name">Legend or category text.</param>
/// <param name="Values">The sample.</param>
public sealed record Distribution(string Name, IReadOnlyList<double> Values);

/// <summary>The five-number summary a box plot draws (Tukey's rule: whiskers reach the furthest values within 1.5 IQR).</summary>
/// <param name="Count">Finite values in the sample.</param>
/// <param name="LowerQuartile">25th percentile (linear interpolation between order statistics, as R's type 7 and NumPy's default).</param>
/// <param name="Median">50th percentile.</param>
/// <param name="UpperQuartile">75th percentile.</param>
/// <param name="LowerWhisker">Smallest value at or above <c>Q1 - 1.5 IQR</c>.</param>
/// <param name="UpperWhisker">Largest value at or below <c>Q3 + 1.5 IQR</c>.</param>
/// <param name="Outliers">Values beyond the whiskers, ascending.</param>
public sealed record BoxSummary(
    int Count, double LowerQuartile, double Median, double UpperQuartile, double LowerWhisker, double UpperWhisker, IReadOnlyList<double> Outliers)
{
    /// <summary>Summarises a sample; null when it has no finite value.</summary>
    public static BoxSummary? Of(IEnumerable<double> values)
    {
        var sorted = values.Where(double.IsFinite).Order().ToArray();
        if (sorted.Length == 0)
        {
            return null;
        }

        var q1 = Quantile(sorted, 0.25);
        var median = Quantile(sorted, 0.5);
        var q3 = Quantile(sorted, 0.75);
        var reach = 1.5 * (q3 - q1);
        var lowerWhisker = sorted.First(v => v >= q1 - reach);
        var upperWhisker = sorted.Last(v => v <= q3 + reach);
        return new BoxSummary(sorted.Length, q1, median, q3, lowerWhisker, upperWhisker,
            sorted.Where(v => v < lowerWhisker || v > upperWhisker).ToArray());
    }

    /// <summary>The <paramref name="p"/> quantile of ascending <paramref name="sorted"/> values by linear interpolation (type 7).</summary>
    public static double Quantile(IReadOnlyList<double> sorted, double p)
    {
        ArgumentNullException.ThrowIfNull(sorted);
        if (sorted.Count == 0)
        {
            return double.NaN;
        }

        var h = (sorted.Count - 1) * p;
        var below = (int)Math.Floor(h);
        var above = Math.Min(below + 1, sorted.Count - 1);
        return sorted[below] + (h - below) * (sorted[above] - sorted[below]);
    }
}

/// <summary>
/// Histograms of one or more samples over shared bins whose edges are nice round numbers; several samples are
/// overlaid with transparency.
/// </summary>
public sealed class Histogram : Figure
{
    /// <summary>The samples.</summary>
    public required IReadOnlyList<Distribution> Distributions { get; init; }

    /// <summary>About how many bins to use (the edges are rounded to nice numbers, so the count can differ slightly). Default 20.</summary>
    public int BinCount { get; init; } = 20;

    /// <summary>Whether bars show the share of each sample (so samples of different sizes compare) rather than counts.</summary>
    public bool Normalize { get; init; }

    /// <summary>X-axis label.</summary>
    public string XLabel { get; init; } = string.Empty;

    /// <summary>Y-axis label; default "count" or "share".</summary>
    public string? YLabel { get; init; }

    /// <summary>The shared bin edges for the samples (nice numbers covering every finite value).</summary>
    public IReadOnlyList<double> BinEdges()
    {
        var all = Distributions.SelectMany(d => d.Values).Where(double.IsFinite).ToList();
        return NiceScale.Create(all.DefaultIfEmpty(0).Min(), all.DefaultIfEmpty(1).Max(), Math.Max(2, BinCount + 1)).Ticks;
    }

    /// <summary>How many values of <paramref name="values"/> fall in each bin: <c>[edge i, edge i+1)</c>, the last bin closed.</summary>
    public static int[] Count(IEnumerable<double> values, IReadOnlyList<double> edges)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(edges);
        var counts = new int[Math.Max(0, edges.Count - 1)];
        foreach (var value in values.Where(double.IsFinite))
        {
            for (var b = 0; b < counts.Length; b++)
            {
                var last = b == counts.Length - 1;
                if (value >= edges[b] && (value < edges[b + 1] || (last && value <= edges[b + 1])))
                {
                    counts[b]++;
                    break;
                }
            }
        }

        return counts;
    }

    /// <inheritdoc/>
    public override string ToSvg()
    {
        var frame = ChartFrame.Create(this, Distributions.Count > 1 ? Distributions.Select(d => d.Name).ToList() : []);
        var canvas = frame.Canvas;
        var edges = BinEdges();
        var heights = Distributions.Select(d =>
        {
            var counts = Count(d.Values, edges);
            var total = Math.Max(1, counts.Sum());
            return counts.Select(c => Normalize ? (double)c / total : c).ToArray();
        }).ToList();
        var xScale = NiceScale.Create(edges[0], edges[^1], 8);
        var yScale = NiceScale.Create(0, heights.SelectMany(h => h).DefaultIfEmpty(1).Max());
        frame.YAxis(yScale, YLabel ?? (Normalize ? "share" : "count"));
        frame.XAxis(xScale, XLabel);
        var opacity = Distributions.Count > 1 ? 0.55 : 0.9;
        for (var d = 0; d < Distributions.Count; d++)
        {
            canvas.BeginGroup("series");
            for (var b = 0; b < heights[d].Length; b++)
            {
                var x0 = frame.X(xScale, edges[b]);
                var x1 = frame.X(xScale, edges[b + 1]);
                var y = frame.Y(yScale, heights[d][b]);
                var tooltip = string.Create(CultureInfo.InvariantCulture,
                    $"{Distributions[d].Name} [{FormatValue(edges[b])}, {FormatValue(edges[b + 1])}): {FormatValue(heights[d][b])}");
                canvas.Rect(x0, y, x1 - x0, frame.Bottom - y, SeriesColor(d), "#ffffff", tooltip.TrimStart(), opacity);
            }

            canvas.EndGroup();
        }

        return canvas.ToString();
    }
}

/// <summary>Box plots of several samples side by side: box from Q1 to Q3, median line, Tukey whiskers, outlier dots.</summary>
public sealed class BoxPlot : Figure
{
    /// <summary>The samples, one box each.</summary>
    public required IReadOnlyList<Distribution> Distributions { get; init; }

    /// <summary>X-axis label.</summary>
    public string XLabel { get; init; } = string.Empty;

    /// <summary>Y-axis label.</summary>
    public string YLabel { get; init; } = string.Empty;

    /// <inheritdoc/>
    public override string ToSvg()
    {
        var frame = ChartFrame.Create(this, []);
        var canvas = frame.Canvas;
        var summaries = Distributions.Select(d => BoxSummary.Of(d.Values)).ToList();
        var extremes = summaries.Where(s => s is not null)
            .SelectMany(s => s!.Outliers.Append(s.LowerWhisker).Append(s.UpperWhisker)).ToList();
        var yScale = NiceScale.Create(extremes.DefaultIfEmpty(0).Min(), extremes.DefaultIfEmpty(1).Max());
        frame.YAxis(yScale, YLabel);
        frame.CategoryAxis(Distributions.Select(d => d.Name).ToList(), XLabel);
        var slot = (frame.Right - frame.Left) / Math.Max(1, Distributions.Count);
        var boxWidth = Math.Min(60, slot * 0.5);
        for (var i = 0; i < summaries.Count; i++)
        {
            if (summaries[i] is not { } s)
            {
                continue;
            }

            var color = SeriesColor(i);
            var middle = frame.Left + (i + 0.5) * slot;
            double Y(double v) => frame.Y(yScale, v);
            canvas.BeginGroup("box");
            canvas.Line(middle, Y(s.LowerWhisker), middle, Y(s.LowerQuartile), "#333333");
            canvas.Line(middle, Y(s.UpperQuartile), middle, Y(s.UpperWhisker), "#333333");
            canvas.Line(middle - boxWidth / 4, Y(s.LowerWhisker), middle + boxWidth / 4, Y(s.LowerWhisker), "#333333");
            canvas.Line(middle - boxWidth / 4, Y(s.UpperWhisker), middle + boxWidth / 4, Y(s.UpperWhisker), "#333333");
            var tooltip = $"{Distributions[i].Name}: n={s.Count}, median {FormatValue(s.Median)}, " +
                          $"quartiles {FormatValue(s.LowerQuartile)}–{FormatValue(s.UpperQuartile)}";
            canvas.Rect(middle - boxWidth / 2, Y(s.UpperQuartile), boxWidth, Y(s.LowerQuartile) - Y(s.UpperQuartile), color, "#333333", tooltip, 0.6);
            canvas.Line(middle - boxWidth / 2, Y(s.Median), middle + boxWidth / 2, Y(s.Median), "#111111", 2);
            foreach (var outlier in s.Outliers)
            {
                canvas.Circle(middle, Y(outlier), 2.5, "none", FormatValue(outlier), "#333333");
            }

            canvas.EndGroup();
        }

        return canvas.ToString();
    }
}
