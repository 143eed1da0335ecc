using System.Globalization;
using System.Text;

namespace ExpertScope.Experiments.Reports;

/// <summary>A table for a report: a header row and rows of cells already formatted as text.</summary>
public sealed class ReportTable
{
    /// <summary>Creates the table.</summary>
    /// <param name="columns">Header texts.</param>
    /// <param name="rows">Rows of cells; each row should have one cell per column.</param>
    /// <param name="caption">Optional caption drawn above the table.</param>
    public ReportTable(IReadOnlyList<string> columns, IReadOnlyList<IReadOnlyList<string>> rows, string? caption = null)
    {
        Columns = columns ?? throw new ArgumentNullException(nameof(columns));
        Rows = rows ?? throw new ArgumentNullException(nameof(rows));
        Caption = caption;
        if (rows.FirstOrDefault(r => r.Count != columns.Count) is { } bad)
        {
            throw new ArgumentException($"A row has {bad.Count} cells but the table has {columns.Count} columns.", nameof(rows));
        }
    }

    /// <summary>Header texts.</summary>
    public IReadOnlyList<string> Columns { get; }

    /// <summary>Rows of cells.</summary>
    public IReadOnlyList<IReadOnlyList<string>> Rows { get; }

    /// <summary>Optional caption.</summary>
    public string? Caption { get; }

    /// <summary>
    /// Formats a number for a table cell: invariant culture, <paramref name="significantDigits"/> significant digits,
    /// and "—" for NaN or infinity.
    /// </summary>
    public static string Number(double value, int significantDigits = 4) =>
        double.IsFinite(value) ? value.ToString("G" + significantDigits.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture) : "—";

    /// <summary>Writes the table as CSV (same columns and cells).</summary>
    public void WriteCsv(CsvWriter csv)
    {
        ArgumentNullException.ThrowIfNull(csv);
        csv.WriteRow(Columns);
        foreach (var row in Rows)
        {
            csv.WriteRow(row);
        }
    }

    private static bool IsNumber(string cell) =>
        cell == "—" || double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out _);

    internal void AppendHtml(StringBuilder html)
    {
        html.Append("<table>");
        if (Caption is not null)
        {
            html.Append("<caption>").Append(HtmlReport.Escape(Caption)).Append("</caption>");
        }

        html.Append("<thead><tr>");
        for (var c = 0; c < Columns.Count; c++)
        {
            // A column of numbers gets a right-aligned header over its right-aligned cells.
            var numeric = Rows.Count > 0 && Rows.All(row => IsNumber(row[c]));
            html.Append(numeric ? "<th class=\"num\">" : "<th>").Append(HtmlReport.Escape(Columns[c])).Append("</th>");
        }

        html.Append("</tr></thead><tbody>");
        foreach (var row in Rows)
        {
            html.Append("<tr>");
            foreach (var cell in row)
            {
                // Numbers line up on the right, as in printed tables.
                html.Append(IsNumber(cell) ? "<td class=\"num\">" : "<td>").Append(HtmlReport.Escape(cell)).Append("</td>");
            }

            html.Append("</tr>");
        }

        html.Append("</tbody></table>\n");
    }
}

/// <summary>One titled part of an <see cref="HtmlReport"/>: paragraphs, figures, tables and key-value lists, in the order added.</summary>
public sealed class ReportSection
{
    private readonly List<Action<StringBuilder>> _blocks = [];

    internal ReportSection(string heading, string anchor)
    {
        Heading = heading;
        Anchor = anchor;
    }

    /// <summary>The section heading.</summary>
    public string Heading { get; }

    /// <summary>The section's id in the page (for links).</summary>
    public string Anchor { get; }

    /// <summary>Adds a paragraph of plain text (escaped; not HTML).</summary>
    public ReportSection AddParagraph(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        _blocks.Add(html => html.Append("<p>").Append(HtmlReport.Escape(text)).Append("</p>\n"));
        return this;
    }

    /// <summary>Adds a figure, inlined as SVG, with an optional caption.</summary>
    public ReportSection AddFigure(Figure figure, string? caption = null)
    {
        ArgumentNullException.ThrowIfNull(figure);
        var svg = figure.ToSvg();
        _blocks.Add(html =>
        {
            html.Append("<figure>").Append(svg);
            if (caption is not null)
            {
                html.Append("<figcaption>").Append(HtmlReport.Escape(caption)).Append("</figcaption>");
            }

            html.Append("</figure>\n");
        });
        return this;
    }

    /// <summary>Adds a table.</summary>
    public ReportSection AddTable(ReportTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        _blocks.Add(table.AppendHtml);
        return this;
    }

    /// <summary>Adds a list of named values (settings, model facts).</summary>
    public ReportSection AddKeyValues(IEnumerable<KeyValuePair<string, string>> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        var list = items.ToList();
        _blocks.Add(html =>
        {
            html.Append("<dl>");
            foreach (var (key, value) in list)
            {
                html.Append("<dt>").Append(HtmlReport.Escape(key)).Append("</dt><dd>").Append(HtmlReport.Escape(value)).Append("</dd>");
            }

            html.Append("</dl>\n");
        });
        return this;
    }

    internal void AppendHtml(StringBuilder html)
    {
        html.Append("<section id=\"").Append(HtmlReport.Escape(Anchor)).Append("\"><h2>").Append(HtmlReport.Escape(Heading)).Append("</h2>\n");
        foreach (var block in _blocks)
        {
            block(html);
        }

        html.Append("</section>\n");
    }
}

/// <summary>
/// A self-contained HTML report: one file with inline CSS and inline SVG figures, no scripts and no external
/// assets, so it opens offline, prints well and can be attached to an email. It starts with a plain-language
/// summary, then the sections in the order added. The same content always gives the same bytes (no timestamp
/// unless <see cref="Generated"/> is set).
/// </summary>
public sealed class HtmlReport
{
    private const string Style = """
        body{font-family:Helvetica,Arial,sans-serif;color:#222;max-width:980px;margin:2em auto;padding:0 1em;line-height:1.5}
        h1{font-size:1.7em;margin-bottom:.2em}h2{font-size:1.3em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
        .subtitle{color:#555;margin-top:0}.summary{background:#f4f7fb;border-left:4px solid #0072B2;padding:.6em 1.2em;margin:1.5em 0}
        .summary h2{border:none;margin-top:.3em}nav ol{columns:2;padding-left:1.2em}
        figure{margin:1.5em 0}figure svg{max-width:100%;height:auto;display:block}figcaption{color:#444;font-size:.92em;margin-top:.3em}
        table{border-collapse:collapse;margin:1em 0;font-size:.92em}caption{text-align:left;font-weight:bold;padding-bottom:.3em}
        th,td{padding:.25em .7em;border-bottom:1px solid #e3e3e3;text-align:left}th{border-bottom:2px solid #999}.num{text-align:right;font-variant-numeric:tabular-nums}
        dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}dd{margin:0;word-break:break-all}
        .random-weights{background:#fff3cd;border:2px solid #b45309;color:#5c2d00;padding:.6em 1em;margin:1em 0;font-weight:bold}
        footer{color:#777;font-size:.85em;margin-top:3em;border-top:1px solid #ddd;padding-top:.5em}
        @media print{body{max-width:none}figure{break-inside:avoid}}
        """;

    private readonly List<string> _summary = [];
    private readonly List<ReportSection> _sections = [];

    /// <summary>Creates an empty report.</summary>
    /// <param name="title">The page title and main heading.</param>
    public HtmlReport(string title)
    {
        Title = title ?? throw new ArgumentNullException(nameof(title));
    }

    /// <summary>The page title and main heading.</summary>
    public string Title { get; }

    /// <summary>A line under the title (model, data set), or null.</summary>
    public string? Subtitle { get; init; }

    /// <summary>When the report was made, printed in the footer, or null to print none (keeps output reproducible).</summary>
    public DateTimeOffset? Generated { get; init; }

    /// <summary>Text printed in the footer (e.g. the command line and version), or null.</summary>
    public string? Footer { get; init; }

    /// <summary>
    /// True when the model has random weights: the page then opens with a highlighted banner saying its numbers carry
    /// no meaning (<see cref="RandomWeightsNotice"/>).
    /// </summary>
    public bool RandomWeights { get; init; }

    /// <summary>The sections, in order.</summary>
    public IReadOnlyList<ReportSection> Sections => _sections;

    /// <summary>Escapes text for HTML content and attributes (and replaces characters HTML cannot carry with U+FFFD).</summary>
    public static string Escape(string? text) => SvgCanvas.Escape(text);

    /// <summary>
    /// Adds paragraphs to the plain-language summary at the top ("In short"): what was measured and what it means,
    /// in words a reader without the statistics can follow.
    /// </summary>
    public HtmlReport AddSummary(params string[] paragraphs)
    {
        ArgumentNullException.ThrowIfNull(paragraphs);
        _summary.AddRange(paragraphs);
        return this;
    }

    /// <summary>Adds a section and returns it for filling.</summary>
    public ReportSection AddSection(string heading)
    {
        ArgumentNullException.ThrowIfNull(heading);
        var section = new ReportSection(heading, "s" + (_sections.Count + 1).ToString(CultureInfo.InvariantCulture));
        _sections.Add(section);
        return section;
    }

    /// <summary>Renders the whole page.</summary>
    public string ToHtml()
    {
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        html.Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        html.Append("<title>").Append(Escape(Title)).Append("</title>\n<style>\n").Append(Style).Append("\n</style>\n</head>\n<body>\n");
        html.Append("<header><h1>").Append(Escape(Title)).Append("</h1>");
        if (Subtitle is not null)
        {
            html.Append("<p class=\"subtitle\">").Append(Escape(Subtitle)).Append("</p>");
        }

        html.Append("</header>\n");
        if (RandomWeights)
        {
            html.Append("<div class=\"random-weights\" id=\"random-weights\" role=\"alert\">").Append(Escape(RandomWeightsNotice.Text)).Append("</div>\n");
        }

        if (_summary.Count > 0)
        {
            html.Append("<section class=\"summary\" id=\"summary\"><h2>In short</h2>\n");
            foreach (var paragraph in _summary)
            {
                html.Append("<p>").Append(Escape(paragraph)).Append("</p>\n");
            }

            html.Append("</section>\n");
        }

        if (_sections.Count > 1)
        {
            html.Append("<nav><ol>");
            foreach (var section in _sections)
            {
                html.Append("<li><a href=\"#").Append(Escape(section.Anchor)).Append("\">").Append(Escape(section.Heading)).Append("</a></li>");
            }

            html.Append("</ol></nav>\n");
        }

        foreach (var section in _sections)
        {
            section.AppendHtml(html);
        }

        if (Footer is not null || Generated is not null)
        {
            html.Append("<footer>");
            if (Footer is not null)
            {
                html.Append(Escape(Footer));
            }

            if (Generated is { } generated)
            {
                html.Append(Footer is null ? string.Empty : " · ").Append("Generated ")
                    .Append(Escape(generated.ToUniversalTime().ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture)));
            }

            html.Append("</footer>\n");
        }

        html.Append("</body>\n</html>\n");
        return html.ToString();
    }

    /// <summary>Writes <see cref="ToHtml"/> to <paramref name="path"/> (UTF-8, no byte-order mark), atomically.</summary>
    public void Save(string path) => Runs.AtomicFile.WriteAllText(path, ToHtml());

    /// <summary>
    /// Adds (or replaces) a section with id <paramref name="anchor"/> at the end of a report this class saved, before
    /// its footer: for additions computed from the finished run's files, such as a comparison with a baseline run.
    /// </summary>
    /// <exception cref="ExpertScope.Core.ExpertScopeException">The file is not a report this class wrote.</exception>
    public static void AppendSection(string path, string heading, string anchor, Action<ReportSection> fill)
    {
        ArgumentNullException.ThrowIfNull(fill);
        string html = File.ReadAllText(path);
        string start = "<section id=\"" + Escape(anchor) + "\">";
        int existing = html.IndexOf(start, StringComparison.Ordinal);
        if (existing >= 0)
        {
            int end = html.IndexOf("</section>\n", existing, StringComparison.Ordinal);
            html = html.Remove(existing, end + "</section>\n".Length - existing);
        }

        int insertAt = html.IndexOf("<footer>", StringComparison.Ordinal);
        insertAt = insertAt >= 0 ? insertAt : html.LastIndexOf("</body>", StringComparison.Ordinal);
        if (insertAt < 0)
        {
            throw new ExpertScope.Core.ExpertScopeException($"{path}: not a report written by ExpertScope (no </body>).");
        }

        var section = new ReportSection(heading, anchor);
        fill(section);
        var rendered = new StringBuilder();
        section.AppendHtml(rendered);
        Runs.AtomicFile.WriteAllText(path, html.Insert(insertAt, rendered.ToString()));
    }
}
