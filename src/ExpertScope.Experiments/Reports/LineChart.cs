namespace ExpertScope.Experiments.Reports;

/// <summary>One line of a <see cref="LineChart"/>, with an optional interval per point.</summary>
/// <param name="Name">Legend text (empty for no legend entry).</param>
/// <param name="X">X values (e.g. layer indices).</param>
/// <param name="Y">Y values; NaN leaves a gap in the line.</param>
/// <param name="Lower">Lower ends of the intervals (e.g. the 2.5th percentile of a bootstrap), or null.</param>
/// <param name="Upper">Upper ends of the intervals, or null.</param>
/// <param name="Marks">Text drawn above each point (e.g. significance stars; null or empty for none), or null.</param>
public sealed record LineSeries(
    string Name,
    IReadOnlyList<double> X,
    IReadOnlyList<double> Y,
    IReadOnlyList<double>? Lower = null,
    IReadOnlyList<double>? Upper = null,
    IReadOnlyList<string?>? Marks = null);

/// <summary>
/// Several series over a numeric x axis (typically one point per layer), each with optional error bars or a
/// shaded confidence band. Also draws coverage curves (<see cref="Coverage"/>).
/// </summary>
public sealed class LineChart : Figure
{
    /// <summary>The series, drawn in order with <see cref="Figure.Palette"/> colours.</summary>
    public required IReadOnlyList<LineSeries> Series { get; init; }

    /// <summary>X-axis label.</summary>
    public string XLabel { get; init; } = string.Empty;

    /// <summary>Y-axis label.</summary>
    public string YLabel { get; init; } = string.Empty;

    /// <summary>How intervals are drawn (default error bars); series without intervals show none.</summary>
    public IntervalStyle Intervals { get; init; } = IntervalStyle.ErrorBars;

    /// <summary>Whether x ticks are whole numbers only (layers, expert counts). Default true.</summary>
    public bool IntegerX { get; init; } = true;

    /// <summary>Whether each point gets a dot (default true).</summary>
    public bool ShowMarkers { get; init; } = true;

    /// <summary>A fixed lower x bound, or null to fit the data (with <see cref="XMaximum"/>, the axis spans exactly that range).</summary>
    public double? XMinimum { get; init; }

    /// <summary>A fixed upper x bound, or null to fit the data.</summary>
    public double? XMaximum { get; init; }

    /// <summary>A fixed lower y bound, or null to fit the data (with <see cref="YMaximum"/>, the axis spans exactly that range).</summary>
    public double? YMinimum { get; init; }

    /// <summary>A fixed upper y bound, or null to fit the data.</summary>
    public double? YMaximum { get; init; }

    /// <summary>A dashed horizontal reference line (e.g. the chance level), or null.</summary>
    public double? ReferenceY { get; init; }

    /// <summary>
    /// A coverage curve per series: with experts sorted from most to least used, the share of all routing decisions
    /// that the first n experts take, for n = 0…expert count. A flat-then-steep curve means concentration; the
    /// diagonal means every expert is used equally.
    /// </summary>
    /// <param name="title">The figure title.</param>
    /// <param name="series">Per series, its name and the usage count (or weight) of each expert.</param>
    public static LineChart Coverage(string title, IEnumerable<(string Name, IReadOnlyList<double> Counts)> series)
    {
        ArgumentNullException.ThrowIfNull(series);
        var lines = new List<LineSeries>();
        foreach (var (name, counts) in series)
        {
            var sorted = counts.Where(double.IsFinite).OrderDescending().ToArray();
            var total = sorted.Sum();
            var y = new double[sorted.Length + 1];
            for (var i = 0; i < sorted.Length; i++)
            {
                y[i + 1] = y[i] + (total > 0 ? sorted[i] / total : 0);
            }

            lines.Add(new LineSeries(name, Enumerable.Range(0, y.Length).Select(i => (double)i).ToArray(), y));
        }

        return new LineChart
        {
            Title = title,
            Series = lines,
            XLabel = "experts, most used first",
            YLabel = "share of routing decisions",
            YMinimum = 0,
            YMaximum = 1,
            XMinimum = 0,
            XMaximum = lines.Select(l => l.X.Count - 1).DefaultIfEmpty(1).Max(),
            ShowMarkers = false,
            Intervals = IntervalStyle.None,
        };
    }

    /// <inheritdoc/>
    public override string ToSvg()
    {
        var frame = ChartFrame.Create(this, Series.Select(s => s.Name).ToList());
        var canvas = frame.Canvas;
        var xs = Series.SelectMany(s => s.X).Where(double.IsFinite).ToList();
        var ys = Series.SelectMany(s => s.Y.Concat(Intervals == IntervalStyle.None ? [] : (s.Lower ?? []).Concat(s.Upper ?? [])))
            .Where(double.IsFinite).ToList();
        if (ReferenceY is { } reference)
        {
            ys.Add(reference);
        }

        var xLow = XMinimum ?? xs.DefaultIfEmpty(0).Min();
        var xHigh = XMaximum ?? xs.DefaultIfEmpty(1).Max();
        var xScale = XMinimum is not null && XMaximum is not null ? NiceScale.CreateWithin(xLow, xHigh, IntegerX ? 8 : 6)
            : IntegerX ? NiceScale.CreateInteger(xLow, xHigh)
            : NiceScale.Create(xLow, xHigh);
        var yLow = YMinimum ?? ys.DefaultIfEmpty(0).Min();
        var yHigh = YMaximum ?? ys.DefaultIfEmpty(1).Max();
        var yScale = YMinimum is not null && YMaximum is not null ? NiceScale.CreateWithin(yLow, yHigh) : NiceScale.Create(yLow, yHigh);
        frame.YAxis(yScale, YLabel);
        frame.XAxis(xScale, XLabel);
        if (ReferenceY is { } line)
        {
            canvas.Line(frame.Left, frame.Y(yScale, line), frame.Right, frame.Y(yScale, line), "#666666", 1, "5 4");
        }

        for (var s = 0; s < Series.Count; s++)
        {
            var series = Series[s];
            var color = SeriesColor(s);
            var count = Math.Min(series.X.Count, series.Y.Count);
            canvas.BeginGroup("series");
            var hasIntervals = Intervals != IntervalStyle.None && series.Lower is not null && series.Upper is not null;
            if (hasIntervals && Intervals == IntervalStyle.Band)
            {
                foreach (var run in Runs(count, i => double.IsFinite(series.Lower![i]) && double.IsFinite(series.Upper![i])))
                {
                    var upper = run.Select(i => (frame.X(xScale, series.X[i]), frame.Y(yScale, series.Upper![i])));
                    var lower = run.AsEnumerable().Reverse().Select(i => (frame.X(xScale, series.X[i]), frame.Y(yScale, series.Lower![i])));
                    canvas.Polygon(upper.Concat(lower), color, 0.18);
                }
            }

            foreach (var run in Runs(count, i => double.IsFinite(series.Y[i]) && double.IsFinite(series.X[i])))
            {
                canvas.Polyline(run.Select(i => (frame.X(xScale, series.X[i]), frame.Y(yScale, series.Y[i]))), color);
            }

            for (var i = 0; i < count; i++)
            {
                if (!double.IsFinite(series.Y[i]))
                {
                    continue;
                }

                var x = frame.X(xScale, series.X[i]);
                if (hasIntervals && Intervals == IntervalStyle.ErrorBars
                    && double.IsFinite(series.Lower![i]) && double.IsFinite(series.Upper![i]))
                {
                    var low = frame.Y(yScale, series.Lower[i]);
                    var high = frame.Y(yScale, series.Upper[i]);
                    canvas.Line(x, low, x, high, color, 1.2);
                    canvas.Line(x - 3, low, x + 3, low, color, 1.2);
                    canvas.Line(x - 3, high, x + 3, high, color, 1.2);
                }

                if (ShowMarkers)
                {
                    var tooltip = $"{series.Name} x={FormatValue(series.X[i])}: {FormatValue(series.Y[i])}" +
                                  (hasIntervals ? $" [{FormatValue(series.Lower![i])}, {FormatValue(series.Upper![i])}]" : string.Empty);
                    canvas.Circle(x, frame.Y(yScale, series.Y[i]), 3, color, tooltip.TrimStart());
                }

                if (series.Marks is { } marks && i < marks.Count && !string.IsNullOrEmpty(marks[i]))
                {
                    var top = hasIntervals && double.IsFinite(series.Upper![i]) ? Math.Max(series.Upper[i], series.Y[i]) : series.Y[i];
                    canvas.Text(x, frame.Y(yScale, top) - 5, marks[i]!, "middle", 11, bold: true, fill: color);
                }
            }

            canvas.EndGroup();
        }

        return canvas.ToString();
    }

    /// <summary>Maximal runs of consecutive indices where <paramref name="valid"/> holds (gaps split lines).</summary>
    private static List<List<int>> Runs(int count, Func<int, bool> valid)
    {
        var runs = new List<List<int>>();
        List<int>? current = null;
        for (var i = 0; i < count; i++)
        {
            if (valid(i))
            {
                (current ??= []).Add(i);
            }
            else if (current is not null)
            {
                runs.Add(current);
                current = null;
            }
        }

        if (current is not null)
        {
            runs.Add(current);
        }

        return runs;
    }
}
