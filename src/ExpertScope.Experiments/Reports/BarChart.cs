namespace ExpertScope.Experiments.Reports;

/// <summary>One series of a <see cref="BarChart"/>: a value per category, optional intervals and marks.</summary>
/// <param name="Name">Legend text (empty for no legend entry).</param>
/// <param name="Values">One value per category (NaN draws no bar).</param>
/// <param name="Lower">Lower interval ends per category, or null.</param>
/// <param name="Upper">Upper interval ends per category, or null.</param>
/// <param name="Marks">Text drawn above each bar (a significance mark such as <c>**</c>), or null; null entries draw nothing.</param>
public sealed record BarSeries(
    string Name,
    IReadOnlyList<double> Values,
    IReadOnlyList<double>? Lower = null,
    IReadOnlyList<double>? Upper = null,
    IReadOnlyList<string?>? Marks = null);

/// <summary>Grouped vertical bars, one group per category, with error bars and significance marks.</summary>
public sealed class BarChart : Figure
{
    /// <summary>The category labels along the x axis.</summary>
    public required IReadOnlyList<string> Categories { get; init; }

    /// <summary>The series; each draws one bar per category, side by side within a group.</summary>
    public required IReadOnlyList<BarSeries> Series { get; init; }

    /// <summary>X-axis label.</summary>
    public string XLabel { get; init; } = string.Empty;

    /// <summary>Y-axis label.</summary>
    public string YLabel { get; init; } = string.Empty;

    /// <summary>A dashed horizontal reference line (e.g. the chance level), or null.</summary>
    public double? ReferenceY { get; init; }

    /// <summary>
    /// The usual significance mark for a p-value: <c>***</c> below 0.001, <c>**</c> below 0.01, <c>*</c> below 0.05,
    /// otherwise <c>n.s.</c> (not significant); null for NaN.
    /// </summary>
    public static string? SignificanceMark(double pValue) =>
        double.IsNaN(pValue) ? null : pValue < 0.001 ? "***" : pValue < 0.01 ? "**" : pValue < 0.05 ? "*" : "n.s.";

    /// <inheritdoc/>
    public override string ToSvg()
    {
        var frame = ChartFrame.Create(this, Series.Select(s => s.Name).ToList());
        var canvas = frame.Canvas;
        var values = new List<double> { 0 };
        foreach (var series in Series)
        {
            values.AddRange(series.Values.Concat(series.Lower ?? []).Concat(series.Upper ?? []).Where(double.IsFinite));
        }

        if (ReferenceY is { } reference)
        {
            values.Add(reference);
        }

        var low = values.Min();
        var high = values.Max();
        // Leave headroom above the tallest bar for its mark.
        var headroom = Series.Any(s => s.Marks is not null) ? (high - low) * 0.08 : 0;
        var yScale = NiceScale.Create(low, high + headroom);
        frame.YAxis(yScale, YLabel);
        frame.CategoryAxis(Categories, XLabel);
        var slot = (frame.Right - frame.Left) / Math.Max(1, Categories.Count);
        var groupWidth = slot * 0.8;
        var barWidth = groupWidth / Math.Max(1, Series.Count);
        var zero = frame.Y(yScale, Math.Clamp(0, yScale.Minimum, yScale.Maximum));
        for (var s = 0; s < Series.Count; s++)
        {
            var series = Series[s];
            var color = SeriesColor(s);
            canvas.BeginGroup("series");
            for (var c = 0; c < Categories.Count && c < series.Values.Count; c++)
            {
                var value = series.Values[c];
                if (!double.IsFinite(value))
                {
                    continue;
                }

                var x = frame.Left + c * slot + (slot - groupWidth) / 2 + s * barWidth;
                var y = frame.Y(yScale, value);
                var hasInterval = series.Lower is not null && series.Upper is not null
                                  && double.IsFinite(series.Lower[c]) && double.IsFinite(series.Upper[c]);
                var tooltip = $"{series.Name} {Categories[c]}: {FormatValue(value)}" +
                              (hasInterval ? $" [{FormatValue(series.Lower![c])}, {FormatValue(series.Upper![c])}]" : string.Empty);
                canvas.Rect(x + 1, Math.Min(y, zero), barWidth - 2, Math.Abs(zero - y), color, null, tooltip.TrimStart());
                var top = Math.Min(y, zero);
                if (hasInterval)
                {
                    var middle = x + barWidth / 2;
                    var lowY = frame.Y(yScale, series.Lower![c]);
                    var highY = frame.Y(yScale, series.Upper![c]);
                    canvas.Line(middle, lowY, middle, highY, "#222222", 1.2);
                    canvas.Line(middle - 4, lowY, middle + 4, lowY, "#222222", 1.2);
                    canvas.Line(middle - 4, highY, middle + 4, highY, "#222222", 1.2);
                    top = Math.Min(top, highY);
                }

                if (series.Marks is not null && c < series.Marks.Count && !string.IsNullOrEmpty(series.Marks[c]))
                {
                    canvas.Text(x + barWidth / 2, top - 5, series.Marks[c]!, "middle", 13, bold: true);
                }
            }

            canvas.EndGroup();
        }

        if (ReferenceY is { } line)
        {
            canvas.Line(frame.Left, frame.Y(yScale, line), frame.Right, frame.Y(yScale, line), "#666666", 1, "5 4");
        }

        return canvas.ToString();
    }
}
