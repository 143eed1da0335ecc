using System.Globalization;
using System.Text;

namespace ExpertScope.Experiments.Reports;

/// <summary>
/// Writes CSV as RFC 4180 describes it: records end with CRLF; a field that contains a comma, a double quote,
/// CR or LF, or starts or ends with a space, is enclosed in double quotes with inner quotes doubled.
/// Values are formatted in the invariant culture: numbers in their shortest round-trip form (<c>0.1</c>,
/// <c>1E-07</c>), NaN as <c>NaN</c> and infinities as <c>Infinity</c> / <c>-Infinity</c> (pandas, DuckDB and R read
/// all three), booleans as <c>true</c>/<c>false</c>, dates in ISO 8601, null as an empty field.
/// </summary>
public sealed class CsvWriter : IDisposable
{
    private readonly TextWriter _writer;
    private readonly bool _leaveOpen;
    private bool _atRecordStart = true;

    /// <summary>Writes to <paramref name="writer"/>.</summary>
    /// <param name="writer">Where the text goes.</param>
    /// <param name="leaveOpen">Whether disposing this writer leaves <paramref name="writer"/> open.</param>
    public CsvWriter(TextWriter writer, bool leaveOpen = false)
    {
        _writer = writer ?? throw new ArgumentNullException(nameof(writer));
        _leaveOpen = leaveOpen;
    }

    /// <summary>Creates (or replaces) a UTF-8 file without a byte-order mark.</summary>
    public static CsvWriter Create(string path) =>
        new(new StreamWriter(path, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)));

    /// <summary>Writes one field of the current record.</summary>
    public void WriteField(object? value)
    {
        if (!_atRecordStart)
        {
            _writer.Write(',');
        }

        _writer.Write(Escape(Format(value)));
        _atRecordStart = false;
    }

    /// <summary>Ends the current record.</summary>
    public void EndRow()
    {
        _writer.Write("\r\n");
        _atRecordStart = true;
    }

    /// <summary>Writes a whole record.</summary>
    public void WriteRow(params IEnumerable<object?> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        foreach (var field in fields)
        {
            WriteField(field);
        }

        EndRow();
    }

    /// <summary>Formats a value as the field text (before quoting), following the rules in the class summary.</summary>
    public static string Format(object? value) => value switch
    {
        null => string.Empty,
        string s => s,
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        DateTimeOffset t => t.ToString("O", CultureInfo.InvariantCulture),
        DateTime t => t.ToString("O", CultureInfo.InvariantCulture),
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? string.Empty,
    };

    /// <summary>Quotes <paramref name="field"/> if RFC 4180 requires it (or it has leading or trailing spaces).</summary>
    public static string Escape(string field)
    {
        ArgumentNullException.ThrowIfNull(field);
        var needsQuotes = field.AsSpan().IndexOfAny(",\"\r\n") >= 0
                          || (field.Length > 0 && (field[0] == ' ' || field[^1] == ' '));
        return needsQuotes ? "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : field;
    }

    /// <summary>Flushes the underlying writer.</summary>
    public void Flush() => _writer.Flush();

    /// <inheritdoc/>
    public void Dispose()
    {
        _writer.Flush();
        if (!_leaveOpen)
        {
            _writer.Dispose();
        }
    }
}
