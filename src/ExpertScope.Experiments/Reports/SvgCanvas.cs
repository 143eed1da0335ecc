using System.Globalization;
using System.Text;

namespace ExpertScope.Experiments.Reports;

/// <summary>
/// Writes SVG markup. Coordinates are written with at most two decimals in invariant culture, so the same
/// figure always gives the same bytes; all text goes through <see cref="Escape"/>.
/// </summary>
internal sealed class SvgCanvas
{
    public const string FontFamily = "Helvetica, Arial, sans-serif";

    private readonly StringBuilder _svg = new();

    public SvgCanvas(double width, double height, string title)
    {
        Width = width;
        Height = height;
        _svg.Append(CultureInfo.InvariantCulture,
            $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{N(width)}\" height=\"{N(height)}\" viewBox=\"0 0 {N(width)} {N(height)}\" ");
        _svg.Append(CultureInfo.InvariantCulture, $"font-family=\"{FontFamily}\" font-size=\"12\" role=\"img\" aria-label=\"{Escape(title)}\">");
        _svg.Append("<title>").Append(Escape(title)).Append("</title>");
        Rect(0, 0, width, height, "#ffffff", null);
    }

    public double Width { get; }

    public double Height { get; }

    /// <summary>A number as SVG wants it: invariant, at most two decimals, no exponent, no "-0".</summary>
    public static string N(double value)
    {
        var rounded = Math.Round(value, 2, MidpointRounding.AwayFromZero);
        if (rounded == 0)
        {
            return "0";
        }

        return rounded.ToString("0.##", CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Escapes text for XML content and attribute values, and replaces characters XML 1.0 cannot hold at all
    /// (control characters, lone surrogates) with U+FFFD, since token text can contain anything.
    /// </summary>
    public static string Escape(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return string.Empty;
        }

        var result = new StringBuilder(text.Length + 8);
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            switch (c)
            {
                case '&': result.Append("&amp;"); break;
                case '<': result.Append("&lt;"); break;
                case '>': result.Append("&gt;"); break;
                case '"': result.Append("&quot;"); break;
                case '\'': result.Append("&#39;"); break;
                case '\t' or '\n' or '\r': result.Append(c); break;
                case < ' ' or '\uFFFE' or '\uFFFF': result.Append('\uFFFD'); break;
                default:
                    if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                    {
                        result.Append(c).Append(text[++i]);
                    }
                    else if (char.IsSurrogate(c))
                    {
                        result.Append('\uFFFD');
                    }
                    else
                    {
                        result.Append(c);
                    }

                    break;
            }
        }

        return result.ToString();
    }

    /// <summary>Rough width of a text in pixels at a font size (average glyph 0.6 em), used for layout only.</summary>
    public static double TextWidth(string text, double fontSize = 12) => text.Length * fontSize * 0.6;

    public void Rect(double x, double y, double width, double height, string fill, string? stroke, string? tooltip = null, double opacity = 1)
    {
        _svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{N(x)}\" y=\"{N(y)}\" width=\"{N(Math.Max(0, width))}\" height=\"{N(Math.Max(0, height))}\" fill=\"{fill}\"");
        if (stroke is not null)
        {
            _svg.Append(CultureInfo.InvariantCulture, $" stroke=\"{stroke}\"");
        }

        if (opacity < 1)
        {
            _svg.Append(CultureInfo.InvariantCulture, $" fill-opacity=\"{N(opacity)}\"");
        }

        CloseShape("rect", tooltip);
    }

    public void Line(double x1, double y1, double x2, double y2, string stroke, double strokeWidth = 1, string? dash = null)
    {
        _svg.Append(CultureInfo.InvariantCulture,
            $"<line x1=\"{N(x1)}\" y1=\"{N(y1)}\" x2=\"{N(x2)}\" y2=\"{N(y2)}\" stroke=\"{stroke}\" stroke-width=\"{N(strokeWidth)}\"");
        if (dash is not null)
        {
            _svg.Append(CultureInfo.InvariantCulture, $" stroke-dasharray=\"{dash}\"");
        }

        _svg.Append("/>");
    }

    public void Polyline(IEnumerable<(double X, double Y)> points, string stroke, double strokeWidth = 2)
    {
        _svg.Append("<polyline points=\"").Append(Points(points)).Append(CultureInfo.InvariantCulture,
            $"\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"{N(strokeWidth)}\" stroke-linejoin=\"round\"/>");
    }

    public void Polygon(IEnumerable<(double X, double Y)> points, string fill, double opacity)
    {
        _svg.Append("<polygon points=\"").Append(Points(points)).Append(CultureInfo.InvariantCulture,
            $"\" fill=\"{fill}\" fill-opacity=\"{N(opacity)}\" stroke=\"none\"/>");
    }

    public void Circle(double x, double y, double radius, string fill, string? tooltip = null, string? stroke = null)
    {
        _svg.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{N(x)}\" cy=\"{N(y)}\" r=\"{N(radius)}\" fill=\"{fill}\"");
        if (stroke is not null)
        {
            _svg.Append(CultureInfo.InvariantCulture, $" stroke=\"{stroke}\"");
        }

        CloseShape("circle", tooltip);
    }

    /// <summary>Text at (x, y); <paramref name="anchor"/> is start, middle or end; <paramref name="rotate"/> turns it about its anchor.</summary>
    public void Text(double x, double y, string text, string anchor = "start", double fontSize = 12, bool bold = false,
        double rotate = 0, string fill = "#222222", string? baseline = null)
    {
        _svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{N(x)}\" y=\"{N(y)}\" text-anchor=\"{anchor}\"");
        if (fontSize != 12)
        {
            _svg.Append(CultureInfo.InvariantCulture, $" font-size=\"{N(fontSize)}\"");
        }

        if (bold)
        {
            _svg.Append(" font-weight=\"bold\"");
        }

        if (rotate != 0)
        {
            _svg.Append(CultureInfo.InvariantCulture, $" transform=\"rotate({N(rotate)} {N(x)} {N(y)})\"");
        }

        if (baseline is not null)
        {
            _svg.Append(CultureInfo.InvariantCulture, $" dominant-baseline=\"{baseline}\"");
        }

        _svg.Append(CultureInfo.InvariantCulture, $" fill=\"{fill}\">").Append(Escape(text)).Append("</text>");
    }

    public void BeginGroup(string cssClass) => _svg.Append("<g class=\"").Append(Escape(cssClass)).Append("\">");

    public void EndGroup() => _svg.Append("</g>");

    /// <summary>Appends a linear gradient definition (used by heatmap legends).</summary>
    public void LinearGradient(string id, IReadOnlyList<(double Offset, string Color)> stops, bool vertical)
    {
        _svg.Append(CultureInfo.InvariantCulture,
            $"<defs><linearGradient id=\"{Escape(id)}\" x1=\"0\" y1=\"{(vertical ? "1" : "0")}\" x2=\"{(vertical ? "0" : "1")}\" y2=\"0\">");
        foreach (var (offset, color) in stops)
        {
            _svg.Append(CultureInfo.InvariantCulture, $"<stop offset=\"{N(offset * 100)}%\" stop-color=\"{color}\"/>");
        }

        _svg.Append("</linearGradient></defs>");
    }

    public void RectWithGradient(double x, double y, double width, double height, string gradientId) =>
        _svg.Append(CultureInfo.InvariantCulture,
            $"<rect x=\"{N(x)}\" y=\"{N(y)}\" width=\"{N(width)}\" height=\"{N(height)}\" fill=\"url(#{Escape(gradientId)})\" stroke=\"#444444\" stroke-width=\"0.5\"/>");

    public override string ToString() => _svg + "</svg>";

    private void CloseShape(string element, string? tooltip)
    {
        if (tooltip is null)
        {
            _svg.Append("/>");
        }
        else
        {
            // A <title> child is the browser's own hover text: no script needed.
            _svg.Append("><title>").Append(Escape(tooltip)).Append("</title></").Append(element).Append('>');
        }
    }

    private static string Points(IEnumerable<(double X, double Y)> points) =>
        string.Join(" ", points.Select(p => N(p.X) + "," + N(p.Y)));
}
