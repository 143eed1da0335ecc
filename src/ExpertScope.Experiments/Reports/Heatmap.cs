using System.Globalization;

namespace ExpertScope.Experiments.Reports;

/// <summary>Colour scales for <see cref="Heatmap"/>.</summary>
public enum ColorScale
{
    /// <summary>Sequential, perceptually uniform and colour-blind safe (matplotlib's viridis): dark purple = low, yellow = high.</summary>
    Viridis,

    /// <summary>Diverging blue-white-red for signed values (differences), centred on zero.</summary>
    Diverging,
}

/// <summary>
/// A grid of coloured cells (for example layers down, experts across) with a colour scale legend. Row 0 is at the top.
/// Each cell carries its value as hover text.
/// </summary>
public sealed class Heatmap : Figure
{
    private static readonly (double Offset, string Color)[] ViridisStops =
    [
        (0.0, "#440154"), (0.125, "#482878"), (0.25, "#3E4A89"), (0.375, "#31688E"), (0.5, "#26828E"),
        (0.625, "#1F9E89"), (0.75, "#35B779"), (0.875, "#6DCD59"), (1.0, "#FDE725"),
    ];

    private static readonly (double Offset, string Color)[] DivergingStops =
    [
        (0.0, "#2166AC"), (0.25, "#92C5DE"), (0.5, "#F7F7F7"), (0.75, "#F4A582"), (1.0, "#B2182B"),
    ];

    /// <summary>The smallest font (px) an axis label is drawn at; a denser grid makes the figure larger instead.</summary>
    public const double MinimumLabelFont = 7;

    /// <summary>The values, <c>[row, column]</c>; NaN cells are drawn grey.</summary>
    public required double[,] Values { get; init; }

    /// <summary>Row labels (default: 0, 1, 2, …).</summary>
    public IReadOnlyList<string>? RowLabels { get; init; }

    /// <summary>Column labels (default: 0, 1, 2, …).</summary>
    public IReadOnlyList<string>? ColumnLabels { get; init; }

    /// <summary>X-axis label (what the columns are, e.g. <c>expert</c>).</summary>
    public string XLabel { get; init; } = string.Empty;

    /// <summary>Y-axis label (what the rows are, e.g. <c>layer</c>).</summary>
    public string YLabel { get; init; } = string.Empty;

    /// <summary>What the colour means, shown beside the legend.</summary>
    public string ValueLabel { get; init; } = string.Empty;

    /// <summary>The colour scale (default <see cref="ColorScale.Viridis"/>).</summary>
    public ColorScale Scale { get; init; } = ColorScale.Viridis;

    /// <summary>Value at the bottom of the colour scale, or null for the data minimum (for a diverging scale, minus the largest magnitude).</summary>
    public double? Minimum { get; init; }

    /// <summary>Value at the top of the colour scale, or null for the data maximum (for a diverging scale, the largest magnitude).</summary>
    public double? Maximum { get; init; }

    /// <summary>Whether each cell prints its value (readable for small grids only).</summary>
    public bool ShowValues { get; init; }

    /// <summary>The colour of <paramref name="value"/> on <paramref name="scale"/> between <paramref name="minimum"/> and <paramref name="maximum"/> (clamped), as <c>#rrggbb</c>.</summary>
    public static string ColorOf(double value, double minimum, double maximum, ColorScale scale = ColorScale.Viridis)
    {
        if (!double.IsFinite(value))
        {
            return "#DDDDDD";
        }

        var t = maximum > minimum ? Math.Clamp((value - minimum) / (maximum - minimum), 0, 1) : 0.5;
        var stops = scale == ColorScale.Viridis ? ViridisStops : DivergingStops;
        var upper = 1;
        while (upper < stops.Length - 1 && stops[upper].Offset < t)
        {
            upper++;
        }

        var (o0, c0) = stops[upper - 1];
        var (o1, c1) = stops[upper];
        var f = (t - o0) / (o1 - o0);
        static int Channel(string color, int index) => int.Parse(color.AsSpan(1 + 2 * index, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        var rgb = Enumerable.Range(0, 3).Select(i => (int)Math.Round(Channel(c0, i) + f * (Channel(c1, i) - Channel(c0, i)), MidpointRounding.AwayFromZero));
        return "#" + string.Concat(rgb.Select(v => v.ToString("X2", CultureInfo.InvariantCulture)));
    }

    /// <summary>Perceived brightness (0–255) of a <c>#rrggbb</c> colour, to pick readable text on it.</summary>
    private static double Luminance(string color)
    {
        static int Channel(string color, int index) => int.Parse(color.AsSpan(1 + 2 * index, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        return 0.299 * Channel(color, 0) + 0.587 * Channel(color, 1) + 0.114 * Channel(color, 2);
    }

    /// <inheritdoc/>
    public override string ToSvg()
    {
        var rows = Values.GetLength(0);
        var columns = Values.GetLength(1);
        var rowLabels = RowLabels ?? Enumerable.Range(0, rows).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToList();
        var columnLabels = ColumnLabels ?? Enumerable.Range(0, columns).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToList();
        var finite = Values.Cast<double>().Where(double.IsFinite).ToList();
        double low, high;
        if (Scale == ColorScale.Diverging)
        {
            var magnitude = finite.Select(Math.Abs).DefaultIfEmpty(1).Max();
            (low, high) = (Minimum ?? -magnitude, Maximum ?? magnitude);
        }
        else
        {
            (low, high) = (Minimum ?? finite.DefaultIfEmpty(0).Min(), Maximum ?? finite.DefaultIfEmpty(1).Max());
        }

        var legendScale = NiceScale.Create(low, high, 6);

        // Every row and column keeps its label: column labels turn vertical when they would overlap, and label fonts
        // shrink to the cell (down to MinimumLabelFont); a grid too dense for that widens/heightens the figure.
        var width = Math.Max(Width, MarginLeft + MarginRight + 120 + columns * (MinimumLabelFont + 1));
        var height = Math.Max(Height, MarginTop + MarginBottom + rows * (MinimumLabelFont + 1));
        var canvas = new SvgCanvas(width, height, Title);
        canvas.Text(width / 2, 24, Title, "middle", 15, bold: true);
        var rowLabelWidth = rowLabels.DefaultIfEmpty(string.Empty).Max(l => SvgCanvas.TextWidth(l!));
        var left = Math.Max(MarginLeft, rowLabelWidth + 36);
        var legendWidth = 28 + 10 + legendScale.Ticks.Max(t => SvgCanvas.TextWidth(legendScale.Format(t))) + 26;
        var right = width - MarginRight - legendWidth;
        var top = MarginTop;
        var cellWidth = (right - left) / Math.Max(1, columns);
        var longestColumnLabel = columnLabels.DefaultIfEmpty(string.Empty).Max(l => l!.Length);
        var columnFont = Math.Clamp(cellWidth - 1, MinimumLabelFont, 11);
        var verticalColumnLabels = longestColumnLabel * 11 * 0.6 + 4 > cellWidth;
        var columnLabelDepth = verticalColumnLabels ? longestColumnLabel * columnFont * 0.6 + 6 : 16;
        var bottom = height - MarginBottom - Math.Max(0, columnLabelDepth - 22);
        var cellHeight = (bottom - top) / Math.Max(1, rows);

        canvas.BeginGroup("cells");
        for (var r = 0; r < rows; r++)
        {
            for (var c = 0; c < columns; c++)
            {
                var value = Values[r, c];
                var x = left + c * cellWidth;
                var y = top + r * cellHeight;
                var fill = ColorOf(value, low, high, Scale);
                canvas.Rect(x, y, cellWidth, cellHeight, fill, null,
                    $"{YLabel} {rowLabels[r]}, {XLabel} {columnLabels[c]}: {FormatValue(value)}".Trim());
                if (ShowValues && double.IsFinite(value))
                {
                    canvas.Text(x + cellWidth / 2, y + cellHeight / 2 + 4, value.ToString("G3", CultureInfo.InvariantCulture), "middle", 10,
                        fill: Luminance(fill) < 140 ? "#ffffff" : "#222222");
                }
            }
        }

        canvas.EndGroup();

        // Axis labels: all of them (a reader must be able to name every cell).
        canvas.BeginGroup("labels");
        for (var c = 0; c < columns; c++)
        {
            var x = left + (c + 0.5) * cellWidth;
            if (verticalColumnLabels)
            {
                canvas.Text(x + columnFont * 0.35, bottom + 6, columnLabels[c], "end", columnFont, rotate: -90);
            }
            else
            {
                canvas.Text(x, bottom + 15, columnLabels[c], "middle", 11);
            }
        }

        var rowFont = Math.Clamp(cellHeight - 1, MinimumLabelFont, 11);
        for (var r = 0; r < rows; r++)
        {
            canvas.Text(left - 6, top + (r + 0.5) * cellHeight + rowFont * 0.35, rowLabels[r], "end", rowFont);
        }

        canvas.Text((left + right) / 2, height - 14, XLabel, "middle");
        canvas.Text(16, (top + bottom) / 2, YLabel, "middle", rotate: -90);
        canvas.EndGroup();

        // Colour legend: a vertical bar from low (bottom) to high (top) with nice ticks.
        canvas.BeginGroup("legend");
        var barX = right + 28;
        var gradientId = "es-scale-" + (Scale == ColorScale.Viridis ? "viridis" : "diverging");
        canvas.LinearGradient(gradientId, Scale == ColorScale.Viridis ? ViridisStops : DivergingStops, vertical: true);
        canvas.RectWithGradient(barX, top, 14, bottom - top, gradientId);
        foreach (var tick in legendScale.Ticks.Where(t => t >= low - 1e-12 && t <= high + 1e-12))
        {
            var y = high > low ? bottom - (tick - low) / (high - low) * (bottom - top) : (top + bottom) / 2;
            canvas.Line(barX + 14, y, barX + 18, y, "#444444");
            canvas.Text(barX + 21, y + 4, legendScale.Format(tick), "start", 11);
        }

        canvas.Text(barX + 7, top - 8, ValueLabel, "middle", 11);
        canvas.EndGroup();
        return canvas.ToString();
    }
}
