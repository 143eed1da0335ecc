using System.Globalization;
using System.Text.Json;
using ExpertScope.Core;
using ExpertScope.Experiments.Reports;
using ExpertScope.Experiments.Runs;

namespace ExpertScope.Experiments.Storage;

/// <summary>
/// Writes a routing trace as JSON Lines: one JSON object per row with the same field names as the Parquet
/// columns, and the rows of each finished sequence written and flushed to the disk in one go.
/// </summary>
/// <remarks>
/// Two small files sit beside <c>trace.jsonl</c>: <c>trace.jsonl.meta.json</c> (the <see cref="TraceMetadata"/>)
/// and <c>trace.jsonl.done</c> (a <see cref="WorkJournal"/> with one record per finished sequence holding the file
/// length after it). Reopening cuts the file back to the last recorded length, which drops a trailing partial line
/// and the rows of a sequence whose write was interrupted. A trace whose journal is missing is trusted up to its
/// last complete line, except that the rows of its last sequence are dropped, since they may be incomplete.
/// </remarks>
public sealed class JsonlTraceWriter : IRoutingTraceWriter
{
    /// <summary>Extension of the metadata file written beside the trace.</summary>
    public const string MetadataExtension = ".meta.json";

    /// <summary>Extension of the finished-sequence journal written beside the trace.</summary>
    public const string JournalExtension = ".done";

    /// <summary>Name of the sidecar key that says whether rows carry <c>probs</c>.</summary>
    internal const string IncludeProbabilitiesKey = "expertscope.include_probs";

    private readonly FileStream _stream;
    private readonly WorkJournal _journal;
    private readonly bool _includeProbabilities;
    private readonly HashSet<int> _finished;

    private JsonlTraceWriter(string path, FileStream stream, WorkJournal journal, TraceMetadata metadata, bool includeProbabilities, HashSet<int> finished)
    {
        Path = path;
        _stream = stream;
        _journal = journal;
        Metadata = metadata;
        _includeProbabilities = includeProbabilities;
        _finished = finished;
    }

    /// <inheritdoc/>
    public string Path { get; }

    /// <inheritdoc/>
    public TraceFormat Format => TraceFormat.Jsonl;

    /// <inheritdoc/>
    public TraceMetadata Metadata { get; }

    /// <inheritdoc/>
    public IReadOnlySet<int> FinishedSequences => _finished;

    /// <summary>Bytes of unfinished output that opening the file cut off (0 when it was clean).</summary>
    public long RecoveredBytes { get; private init; }

    /// <summary>Creates the trace, or reopens it to resume.</summary>
    /// <param name="path">The <c>.jsonl</c> file.</param>
    /// <param name="metadata">What the trace records; when resuming, model hash, architecture, expert count and k must match.</param>
    /// <param name="options">Whether rows carry <c>probs</c>; when resuming it must match. Buffering options do not apply.</param>
    /// <exception cref="ExpertScopeException">The trace was made with another model or settings.</exception>
    public static JsonlTraceWriter Open(string path, TraceMetadata metadata, TraceWriterOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(metadata);
        options ??= new TraceWriterOptions();
        var metadataPath = path + MetadataExtension;
        var journalPath = path + JournalExtension;
        var exists = File.Exists(path) && new FileInfo(path).Length > 0;
        if (exists && File.Exists(metadataPath))
        {
            var (saved, savedProbabilities) = ReadSidecar(metadataPath, path);
            var differences = saved.DifferencesFrom(metadata).ToList();
            if (savedProbabilities != options.IncludeProbabilities)
            {
                differences.Add(savedProbabilities ? "rows had 'probs', now they would not" : "rows had no 'probs', now they would");
            }

            if (differences.Count > 0)
            {
                throw new ExpertScopeException(
                    $"The trace '{path}' was written for another model or settings, so it cannot be resumed: {string.Join("; ", differences)}. " +
                    "Write to a new file, or delete this one to start over.");
            }
        }
        else if (!exists)
        {
            // A journal or metadata left from a deleted trace does not describe the new one.
            File.Delete(journalPath);
        }

        var values = metadata.ToKeyValues();
        AtomicFile.WriteAllText(metadataPath, JsonOutput.ToText(
            w =>
            {
                w.WriteStartObject();
                foreach (var (key, value) in values.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    w.WriteString(key, value);
                }

                w.WriteBoolean(IncludeProbabilitiesKey, options.IncludeProbabilities);
                w.WriteEndObject();
            },
            indented: true) + "\n");

        var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        WorkJournal? journal = null;
        try
        {
            journal = WorkJournal.Open(journalPath);
            var originalLength = stream.Length;
            long keep;
            if (journal.Records.Count > 0 || originalLength == 0)
            {
                keep = journal.Records.Count == 0 ? 0 : ParseOffset(journal.Records[^1], journalPath);
            }
            else
            {
                // No journal: keep complete lines of every sequence but the last, and journal them now.
                var scan = ScanWithoutJournal(stream);
                keep = scan.KeepLength;
                journal.MarkFinished(scan.Finished.Select(s => new WorkRecord(s.ToString(CultureInfo.InvariantCulture),
                    keep.ToString(CultureInfo.InvariantCulture))));
            }

            if (keep > originalLength)
            {
                throw new ExpertScopeException(
                    $"The trace '{path}' is shorter ({originalLength} bytes) than its journal '{journalPath}' records ({keep} bytes): " +
                    "it was cut by something other than an interrupted run. Delete both to start over.");
            }

            if (keep < originalLength)
            {
                stream.SetLength(keep);
                stream.Flush(flushToDisk: true);
            }

            stream.Seek(0, SeekOrigin.End);
            var finished = ParseSequences(journal, journalPath);
            return new JsonlTraceWriter(path, stream, journal, metadata, options.IncludeProbabilities, finished)
            {
                RecoveredBytes = originalLength - keep,
            };
        }
        catch
        {
            journal?.Dispose();
            stream.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public bool Contains(int sequence) => _finished.Contains(sequence);

    /// <inheritdoc/>
    public async ValueTask WriteSequenceAsync(int sequence, IReadOnlyList<RoutingTraceRow> rows, CancellationToken cancellationToken = default)
    {
        TraceRowChecks.Check(sequence, rows, _includeProbabilities, Contains(sequence));
        using var buffer = new MemoryStream();
        foreach (var row in rows)
        {
            WriteRow(buffer, row, _includeProbabilities);
        }

        try
        {
            await _stream.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), cancellationToken).ConfigureAwait(false);
            _stream.Flush(flushToDisk: true);
            _journal.MarkFinished(sequence.ToString(CultureInfo.InvariantCulture), _stream.Position.ToString(CultureInfo.InvariantCulture));
        }
        catch (IOException e)
        {
            // A full disk: the partial rows lie past the journal's last length, so a re-run cuts them and resumes.
            throw OutputGuard.CannotWrite(Path, e);
        }

        _finished.Add(sequence);
    }

    /// <inheritdoc/>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        _journal.Dispose();
        await _stream.DisposeAsync().ConfigureAwait(false);
    }

    internal static void WriteRow(Stream buffer, in RoutingTraceRow row, bool includeProbabilities)
    {
        using (var writer = new Utf8JsonWriter(buffer, JsonOutput.WriterOptions(indented: false)))
        {
            writer.WriteStartObject();
            writer.WriteNumber(TraceSchema.Sequence, row.Sequence);
            writer.WriteNumber(TraceSchema.Position, row.Position);
            writer.WriteNumber(TraceSchema.TokenId, row.TokenId);
            writer.WriteString(TraceSchema.Token, row.Token);
            writer.WriteNumber(TraceSchema.Layer, row.Layer);
            writer.WriteNumber(TraceSchema.Rank, row.Rank);
            writer.WriteNumber(TraceSchema.Expert, row.Expert);
            writer.WritePropertyName(TraceSchema.Weight);
            JsonOutput.WriteNumberOrNull(writer, row.Weight);
            writer.WritePropertyName(TraceSchema.Score);
            JsonOutput.WriteNumberOrNull(writer, row.Score);
            if (includeProbabilities)
            {
                writer.WritePropertyName(TraceSchema.Probs);
                if (row.Probs is null)
                {
                    writer.WriteNullValue();
                }
                else
                {
                    writer.WriteStartArray();
                    foreach (var p in row.Probs)
                    {
                        JsonOutput.WriteNumberOrNull(writer, p);
                    }

                    writer.WriteEndArray();
                }
            }

            writer.WriteEndObject();
        }

        buffer.WriteByte((byte)'\n');
    }

    internal static (TraceMetadata Metadata, bool IncludeProbabilities) ReadSidecar(string metadataPath, string tracePath)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(metadataPath));
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            var includeProbabilities = false;
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == IncludeProbabilitiesKey)
                {
                    includeProbabilities = property.Value.ValueKind == JsonValueKind.True;
                }
                else if (property.Value.ValueKind == JsonValueKind.String)
                {
                    values[property.Name] = property.Value.GetString()!;
                }
            }

            return (TraceMetadata.FromKeyValues(values, tracePath), includeProbabilities);
        }
        catch (JsonException e)
        {
            throw new ExpertScopeException($"The trace metadata '{metadataPath}' is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>The byte length up to which the trace holds only finished sequences, and those sequences.</summary>
    internal static (long KeepLength, List<int> Finished) ScanWithoutJournal(Stream stream)
    {
        stream.Seek(0, SeekOrigin.Begin);
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        var lines = new List<(long Start, long End, int Sequence)>();
        var start = 0;
        while (start < bytes.Length)
        {
            var newline = Array.IndexOf(bytes, (byte)'\n', start);
            if (newline < 0)
            {
                break; // a trailing partial line
            }

            if (!TryReadSequence(bytes.AsMemory(start, newline - start), out var sequence))
            {
                break;
            }

            lines.Add((start, newline + 1, sequence));
            start = newline + 1;
        }

        if (lines.Count == 0)
        {
            return (0, []);
        }

        var last = lines[^1].Sequence;
        var firstOfLast = lines.FindIndex(l => l.Sequence == last);
        var kept = lines.Take(firstOfLast).ToList();
        return (kept.Count == 0 ? 0 : kept[^1].End, kept.Select(l => l.Sequence).Distinct().ToList());
    }

    internal static bool TryReadSequence(ReadOnlyMemory<byte> line, out int sequence)
    {
        sequence = -1;
        try
        {
            using var document = JsonDocument.Parse(line);
            return document.RootElement.ValueKind == JsonValueKind.Object
                   && document.RootElement.TryGetProperty(TraceSchema.Sequence, out var value)
                   && value.TryGetInt32(out sequence);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    internal static HashSet<int> ParseSequences(WorkJournal journal, string journalPath) =>
        ParseSequences(journal.Records, journalPath);

    internal static HashSet<int> ParseSequences(IEnumerable<WorkRecord> records, string journalPath)
    {
        var sequences = new HashSet<int>();
        foreach (var record in records)
        {
            if (!int.TryParse(record.Unit, NumberStyles.Integer, CultureInfo.InvariantCulture, out var sequence))
            {
                throw new ExpertScopeException($"The trace journal '{journalPath}' has a record for '{record.Unit}', which is not a sequence number.");
            }

            sequences.Add(sequence);
        }

        return sequences;
    }

    internal static long ParseOffset(WorkRecord record, string journalPath) =>
        long.TryParse(record.Data, NumberStyles.Integer, CultureInfo.InvariantCulture, out var offset) && offset >= 0
            ? offset
            : throw new ExpertScopeException($"The trace journal '{journalPath}' has a record without a file length: '{record.Data}'.");
}
