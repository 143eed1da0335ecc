using System.Globalization;

namespace ExpertScope.Experiments.Reports;

/// <summary>
/// A figure that renders itself as a standalone SVG document (no scripts, no external fonts or images), ready to
/// inline in an HTML report or to save as <c>.svg</c> for a paper. The same figure always renders to the same bytes.
/// </summary>
/// <remarks>
/// Charts with axes share one layout: the plot area is inset <see cref="MarginLeft"/> px from the left,
/// <see cref="MarginTop"/> px from the top (the title sits above it), <see cref="MarginBottom"/> px from the bottom
/// and <see cref="MarginRight"/> px from the right, plus the width of the legend when there is one.
/// </remarks>
public abstract class Figure
{
    /// <summary>Left inset of the plot area (room for tick labels and the y-axis label).</summary>
    public const double MarginLeft = 64;

    /// <summary>Top inset of the plot area (room for the title).</summary>
    public const double MarginTop = 44;

    /// <summary>Bottom inset of the plot area (room for tick labels and the x-axis label).</summary>
    public const double MarginBottom = 56;

    /// <summary>Right inset of the plot area, not counting the legend.</summary>
    public const double MarginRight = 16;

    /// <summary>The colour-blind-safe series colours (Okabe and Ito), used in order.</summary>
    public static IReadOnlyList<string> Palette { get; } =
        ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"];

    /// <summary>The title drawn above the figure (also its accessible name).</summary>
    public string Title { get; init; } = string.Empty;

    /// <summary>Width in pixels (default 640).</summary>
    public double Width { get; init; } = 640;

    /// <summary>Height in pixels (default 400).</summary>
    public double Height { get; init; } = 400;

    /// <summary>Renders the figure as an SVG document.</summary>
    public abstract string ToSvg();

    /// <summary>Writes <see cref="ToSvg"/> to a file (UTF-8, no byte-order mark).</summary>
    public void SaveSvg(string path) => Runs.AtomicFile.WriteAllText(path, ToSvg() + "\n");

    /// <summary>The colour of the <paramref name="index"/>-th series.</summary>
    public static string SeriesColor(int index) => Palette[index % Palette.Count];

    internal static string FormatValue(double value) =>
        double.IsFinite(value) ? value.ToString("G4", CultureInfo.InvariantCulture) : "no value";
}

/// <summary>How a chart shows each point's interval (e.g. a 95% confidence interval).</summary>
public enum IntervalStyle
{
    /// <summary>Intervals are not drawn.</summary>
    None,

    /// <summary>A vertical bar with caps at every point.</summary>
    ErrorBars,

    /// <summary>A shaded band between the lower and upper curves.</summary>
    Band,
}

/// <summary>Draws axes, grid, ticks, title and legend shared by the charts.</summary>
internal sealed class ChartFrame
{
    private ChartFrame(SvgCanvas canvas, double left, double top, double right, double bottom)
    {
        Canvas = canvas;
        Left = left;
        Top = top;
        Right = right;
        Bottom = bottom;
    }

    public SvgCanvas Canvas { get; }

    public double Left { get; }

    public double Top { get; }

    public double Right { get; }

    public double Bottom { get; }

    public static ChartFrame Create(Figure figure, IReadOnlyList<string> legendNames)
    {
        var canvas = new SvgCanvas(figure.Width, figure.Height, figure.Title);
        var named = legendNames.Where(n => !string.IsNullOrEmpty(n)).ToList();
        var legendWidth = named.Count == 0 ? 0 : named.Max(n => SvgCanvas.TextWidth(n)) + 34;
        var frame = new ChartFrame(canvas, Figure.MarginLeft, Figure.MarginTop,
            figure.Width - Figure.MarginRight - legendWidth, figure.Height - Figure.MarginBottom);
        canvas.Text(figure.Width / 2, 24, figure.Title, "middle", 15, bold: true);
        if (named.Count > 0)
        {
            canvas.BeginGroup("legend");
            var x = frame.Right + 14;
            for (var i = 0; i < legendNames.Count; i++)
            {
                if (string.IsNullOrEmpty(legendNames[i]))
                {
                    continue;
                }

                var y = frame.Top + 8 + i * 18;
                canvas.Rect(x, y - 5, 12, 10, Figure.SeriesColor(i), null);
                canvas.Text(x + 18, y + 4, legendNames[i]);
            }

            canvas.EndGroup();
        }

        return frame;
    }

    public double X(NiceScale scale, double value) => scale.Map(value, Left, Right);

    public double Y(NiceScale scale, double value) => scale.Map(value, Bottom, Top);

    public void YAxis(NiceScale scale, string label)
    {
        Canvas.BeginGroup("y-axis");
        foreach (var tick in scale.Ticks)
        {
            var y = Y(scale, tick);
            Canvas.Line(Left, y, Right, y, tick == 0 ? "#888888" : "#e5e5e5");
            Canvas.Line(Left - 4, y, Left, y, "#444444");
            Canvas.Text(Left - 7, y + 4, scale.Format(tick), "end");
        }

        Canvas.Line(Left, Top, Left, Bottom, "#444444");
        Canvas.Text(16, (Top + Bottom) / 2, label, "middle", rotate: -90);
        Canvas.EndGroup();
    }

    public void XAxis(NiceScale scale, string label)
    {
        Canvas.BeginGroup("x-axis");
        foreach (var tick in scale.Ticks)
        {
            var x = X(scale, tick);
            Canvas.Line(x, Bottom, x, Bottom + 4, "#444444");
            Canvas.Text(x, Bottom + 18, scale.Format(tick), "middle");
        }

        Canvas.Line(Left, Bottom, Right, Bottom, "#444444");
        XLabel(label);
        Canvas.EndGroup();
    }

    /// <summary>Category labels centred under each slot; every n-th only when they would overlap.</summary>
    public void CategoryAxis(IReadOnlyList<string> categories, string label)
    {
        Canvas.BeginGroup("x-axis");
        Canvas.Line(Left, Bottom, Right, Bottom, "#444444");
        var slot = (Right - Left) / Math.Max(1, categories.Count);
        var widest = categories.Count == 0 ? 0 : categories.Max(c => SvgCanvas.TextWidth(c));
        var every = Math.Max(1, (int)Math.Ceiling((widest + 6) / slot));
        for (var i = 0; i < categories.Count; i += every)
        {
            Canvas.Text(Left + (i + 0.5) * slot, Bottom + 18, categories[i], "middle");
        }

        XLabel(label);
        Canvas.EndGroup();
    }

    public void XLabel(string label) => Canvas.Text((Left + Right) / 2, Canvas.Height - 14, label, "middle");
}
