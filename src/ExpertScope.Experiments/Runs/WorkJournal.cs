using System.Text;
using System.Text.Json;
using ExpertScope.Core;

namespace ExpertScope.Experiments.Runs;

/// <summary>One finished work unit as the journal recorded it.</summary>
/// <param name="Unit">The unit's id (for example a sequence number or <c>layer-3/expert-7</c>).</param>
/// <param name="Data">Optional text the run stored with the unit (a byte offset, a result), or null.</param>
public readonly record struct WorkRecord(string Unit, string? Data);

/// <summary>
/// An append-only record of finished work units, one JSON object per line (<c>{"unit":"…","data":"…"}</c>).
/// Each append is flushed to the disk before the call returns, so a unit the journal lists is truly done.
/// A run killed during an append leaves at most one torn last line; opening the journal drops it (and cuts it
/// off the file) so the next append starts on a clean line. A bad line anywhere else means the file was damaged
/// by something other than a crash and is refused.
/// </summary>
public sealed class WorkJournal : IDisposable
{
    private readonly FileStream _stream;
    private readonly List<WorkRecord> _records;
    private readonly HashSet<string> _units;

    private WorkJournal(string path, FileStream stream, List<WorkRecord> records, int droppedBytes)
    {
        Path = path;
        _stream = stream;
        _records = records;
        _units = new HashSet<string>(records.Select(r => r.Unit), StringComparer.Ordinal);
        DroppedBytes = droppedBytes;
    }

    /// <summary>The journal file.</summary>
    public string Path { get; }

    /// <summary>Every record, oldest first (a unit recorded twice appears twice).</summary>
    public IReadOnlyList<WorkRecord> Records => _records;

    /// <summary>Ids of the finished units.</summary>
    public IReadOnlySet<string> FinishedUnits => _units;

    /// <summary>Bytes of a torn last line that opening the journal cut off (0 when the file was clean).</summary>
    public int DroppedBytes { get; }

    /// <summary>Opens the journal at <paramref name="path"/>, creating an empty one if it does not exist.</summary>
    /// <exception cref="ExpertScopeException">A line other than the last is not a journal record.</exception>
    public static WorkJournal Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        try
        {
            var bytes = new byte[stream.Length];
            stream.ReadExactly(bytes);
            var records = Parse(path, bytes, out var goodLength);
            var dropped = bytes.Length - goodLength;
            if (dropped > 0)
            {
                stream.SetLength(goodLength);
                stream.Flush(flushToDisk: true);
            }

            stream.Seek(0, SeekOrigin.End);
            return new WorkJournal(path, stream, records, dropped);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Reads the records of the journal at <paramref name="path"/> without changing the file (a torn last line is ignored).</summary>
    /// <returns>The records, or an empty list when the file does not exist.</returns>
    public static IReadOnlyList<WorkRecord> ReadRecords(string path)
    {
        if (!File.Exists(path))
        {
            return [];
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return Parse(path, bytes, out _);
    }

    /// <summary>True if <paramref name="unit"/> is recorded as finished.</summary>
    public bool IsFinished(string unit) => _units.Contains(unit);

    /// <summary>Records one finished unit and flushes it to the disk.</summary>
    public void MarkFinished(string unit, string? data = null) => MarkFinished([new WorkRecord(unit, data)]);

    /// <summary>Records several finished units with one write and one flush to the disk.</summary>
    public void MarkFinished(IEnumerable<WorkRecord> records) => MarkFinished(records, keepInMemory: true);

    /// <summary>
    /// Records several finished units with one write and one flush to the disk. With <paramref name="keepInMemory"/>
    /// false their units join <see cref="FinishedUnits"/> but the records do not join <see cref="Records"/>: for
    /// callers that journal large data they never read back in the same process (a probe's per-sentence routing,
    /// hundreds of kB each), which would otherwise stay in memory for the whole run. A later <see cref="Open"/> reads
    /// them like any other.
    /// </summary>
    public void MarkFinished(IEnumerable<WorkRecord> records, bool keepInMemory)
    {
        ArgumentNullException.ThrowIfNull(records);
        using var buffer = new MemoryStream();
        var added = new List<WorkRecord>();
        foreach (var record in records)
        {
            ArgumentException.ThrowIfNullOrEmpty(record.Unit);
            using (var writer = new Utf8JsonWriter(buffer, Reports.JsonOutput.WriterOptions(indented: false)))
            {
                writer.WriteStartObject();
                writer.WriteString("unit", record.Unit);
                if (record.Data is not null)
                {
                    writer.WriteString("data", record.Data);
                }

                writer.WriteEndObject();
            }

            buffer.WriteByte((byte)'\n');
            added.Add(record);
        }

        if (added.Count == 0)
        {
            return;
        }

        // One write per batch keeps a torn append confined to the final line of the file.
        _stream.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
        _stream.Flush(flushToDisk: true);
        foreach (var record in added)
        {
            if (keepInMemory)
            {
                _records.Add(record);
            }

            _units.Add(record.Unit);
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _stream.Dispose();

    private static List<WorkRecord> Parse(string path, byte[] bytes, out int goodLength)
    {
        var records = new List<WorkRecord>();
        var start = 0;
        var lineNumber = 0;
        goodLength = 0;
        while (start < bytes.Length)
        {
            lineNumber++;
            var newline = Array.IndexOf(bytes, (byte)'\n', start);
            var end = newline < 0 ? bytes.Length : newline;
            var isLast = newline < 0 || newline == bytes.Length - 1;
            var record = TryParseLine(bytes.AsMemory(start, end - start));
            if (newline < 0 || record is null)
            {
                if (isLast)
                {
                    // A torn final append: everything before it is intact.
                    return records;
                }

                throw new ExpertScopeException(
                    $"The run journal '{path}' is damaged at line {lineNumber}: " +
                    $"'{Encoding.UTF8.GetString(bytes, start, Math.Min(end - start, 80))}' is not a journal record.");
            }

            records.Add(record.Value);
            start = newline + 1;
            goodLength = start;
        }

        return records;
    }

    private static WorkRecord? TryParseLine(ReadOnlyMemory<byte> line)
    {
        if (line.IsEmpty)
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("unit", out var unit) || unit.ValueKind != JsonValueKind.String)
            {
                return null;
            }

            string? data = root.TryGetProperty("data", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
            var unitText = unit.GetString();
            return string.IsNullOrEmpty(unitText) ? null : new WorkRecord(unitText, data);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
