using System.Runtime.CompilerServices;
using System.Text.Json;
using ExpertScope.Core;
using ExpertScope.Experiments.Runs;
using Parquet;
using Parquet.Schema;

namespace ExpertScope.Experiments.Storage;

/// <summary>Reads routing traces written by <see cref="ParquetTraceWriter"/> or <see cref="JsonlTraceWriter"/> (format from the extension).</summary>
public static class RoutingTraceReader
{
    /// <summary>The metadata a trace records.</summary>
    /// <exception cref="ExpertScopeException">The file is not an ExpertScope trace.</exception>
    public static async Task<TraceMetadata> ReadMetadataAsync(string path, CancellationToken cancellationToken = default)
    {
        if (RoutingTraceWriter.FormatOf(path) == TraceFormat.Jsonl)
        {
            return JsonlTraceWriter.ReadSidecar(path + JsonlTraceWriter.MetadataExtension, path).Metadata;
        }

        await using var reader = await OpenParquetAsync(path, cancellationToken).ConfigureAwait(false);
        return TraceMetadata.FromKeyValues(reader.CustomMetadata, path);
    }

    /// <summary>
    /// The sequences a trace holds completely, so that a re-run can skip them. Sequences an interrupted write left
    /// incomplete are not included.
    /// </summary>
    public static async Task<IReadOnlySet<int>> ReadFinishedSequencesAsync(string path, CancellationToken cancellationToken = default)
    {
        if (RoutingTraceWriter.FormatOf(path) == TraceFormat.Jsonl)
        {
            var journalPath = path + JsonlTraceWriter.JournalExtension;
            var records = WorkJournal.ReadRecords(journalPath);
            if (records.Count > 0 || !File.Exists(path))
            {
                return JsonlTraceWriter.ParseSequences(records, journalPath);
            }

            await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return JsonlTraceWriter.ScanWithoutJournal(stream).Finished.ToHashSet();
        }

        await using var reader = await OpenParquetAsync(path, cancellationToken).ConfigureAwait(false);
        return await FinishedSequencesAsync(reader, path, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Every row of the trace, in file order (only finished sequences of a JSON Lines trace).</summary>
    public static async IAsyncEnumerable<RoutingTraceRow> ReadRowsAsync(string path, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (RoutingTraceWriter.FormatOf(path) == TraceFormat.Jsonl)
        {
            foreach (var row in ReadJsonlRows(path))
            {
                cancellationToken.ThrowIfCancellationRequested();
                yield return row;
            }

            yield break;
        }

        await using var reader = await OpenParquetAsync(path, cancellationToken).ConfigureAwait(false);
        var fields = reader.Schema.DataFields;
        DataField Field(string name) => fields.FirstOrDefault(f => f.Name == name && f.Path.ToList().Count == 1)
            ?? throw new ExpertScopeException($"The trace '{path}' has no '{name}' column.");
        var probsField = reader.Schema.Fields.OfType<ListField>().FirstOrDefault(f => f.Name == TraceSchema.Probs)?.Item as DataField;
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            var group = reader.OpenRowGroupReader(g);
            var count = checked((int)group.RowCount);
            async Task<int[]> Ints(string name)
            {
                var values = new int[count];
                await group.ReadAsync<int>(Field(name), values, cancellationToken: cancellationToken).ConfigureAwait(false);
                return values;
            }

            async Task<float[]> Floats(string name)
            {
                var values = new float[count];
                await group.ReadAsync<float>(Field(name), values, cancellationToken: cancellationToken).ConfigureAwait(false);
                return values;
            }

            var sequence = await Ints(TraceSchema.Sequence).ConfigureAwait(false);
            var position = await Ints(TraceSchema.Position).ConfigureAwait(false);
            var tokenId = await Ints(TraceSchema.TokenId).ConfigureAwait(false);
            var token = new string[count];
            await group.ReadAsync(Field(TraceSchema.Token), token, cancellationToken: cancellationToken).ConfigureAwait(false);
            var layer = await Ints(TraceSchema.Layer).ConfigureAwait(false);
            var rank = await Ints(TraceSchema.Rank).ConfigureAwait(false);
            var expert = await Ints(TraceSchema.Expert).ConfigureAwait(false);
            var weight = await Floats(TraceSchema.Weight).ConfigureAwait(false);
            var score = await Floats(TraceSchema.Score).ConfigureAwait(false);
            var probs = probsField is null ? null : await ReadListsAsync(group, probsField, count, cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < count; i++)
            {
                yield return new RoutingTraceRow(
                    sequence[i], position[i], tokenId[i], token[i], layer[i], rank[i], expert[i], weight[i], score[i], probs?[i]);
            }
        }
    }

    internal static async Task<HashSet<int>> FinishedSequencesAsync(ParquetReader reader, string path, CancellationToken cancellationToken)
    {
        if (reader.CustomMetadata.TryGetValue(TraceMetadata.FinishedSequencesKey, out var ranges))
        {
            return SequenceRanges.TryParse(ranges, out var ids)
                ? ids
                : throw new ExpertScopeException($"The trace '{path}' has a malformed '{TraceMetadata.FinishedSequencesKey}' entry.");
        }

        // A trace from elsewhere: every sequence it holds is taken as finished.
        var field = reader.Schema.DataFields.FirstOrDefault(f => f.Name == TraceSchema.Sequence)
            ?? throw new ExpertScopeException($"The trace '{path}' has no '{TraceSchema.Sequence}' column.");
        var finished = new HashSet<int>();
        try
        {
            for (var g = 0; g < reader.RowGroupCount; g++)
            {
                var group = reader.OpenRowGroupReader(g);
                var values = new int[checked((int)group.RowCount)];
                await group.ReadAsync<int>(field, values, cancellationToken: cancellationToken).ConfigureAwait(false);
                finished.UnionWith(values);
            }
        }
        catch (Exception e) when (IsDamage(e))
        {
            throw NotReadable(path, e);
        }

        return finished;
    }

    private static async Task<float[]?[]> ReadListsAsync(ParquetRowGroupReader group, DataField element, int rowCount, CancellationToken cancellationToken)
    {
        var slots = checked((int)(group.GetMetadata(element)?.MetaData?.NumValues ?? 0));
        var values = new float[slots];
        var definitions = new int[slots];
        var repetitions = new int[slots];
        await group.ReadRawAsync<float>(element, values, definitions, repetitions, cancellationToken).ConfigureAwait(false);
        var lists = new float[]?[rowCount];
        var row = -1;
        var value = 0;
        var current = new List<float>();
        void Close()
        {
            if (row >= 0 && lists[row] is not null)
            {
                lists[row] = current.ToArray();
            }
        }

        for (var slot = 0; slot < definitions.Length; slot++)
        {
            if (repetitions[slot] == 0)
            {
                Close();
                row++;
                current.Clear();
                lists[row] = definitions[slot] == 0 ? null : [];
            }

            if (definitions[slot] == element.MaxDefinitionLevel)
            {
                current.Add(values[value++]);
            }
        }

        Close();
        return lists;
    }

    private static IEnumerable<RoutingTraceRow> ReadJsonlRows(string path)
    {
        var journalPath = path + JsonlTraceWriter.JournalExtension;
        var records = WorkJournal.ReadRecords(journalPath);
        var bytes = File.ReadAllBytes(path);
        long limit;
        if (records.Count > 0)
        {
            limit = Math.Min(bytes.Length, JsonlTraceWriter.ParseOffset(records[^1], journalPath));
        }
        else
        {
            using var stream = new MemoryStream(bytes, writable: false);
            limit = JsonlTraceWriter.ScanWithoutJournal(stream).KeepLength;
        }

        var start = 0;
        var lineNumber = 0;
        while (start < limit)
        {
            lineNumber++;
            var newline = Array.IndexOf(bytes, (byte)'\n', start, (int)limit - start);
            if (newline < 0)
            {
                yield break;
            }

            yield return ParseJsonRow(bytes.AsMemory(start, newline - start), path, lineNumber);
            start = newline + 1;
        }
    }

    private static RoutingTraceRow ParseJsonRow(ReadOnlyMemory<byte> line, string path, int lineNumber)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            static float Single(JsonElement e) => e.ValueKind == JsonValueKind.Null ? float.NaN : e.GetSingle();
            float[]? probs = null;
            if (root.TryGetProperty(TraceSchema.Probs, out var p) && p.ValueKind == JsonValueKind.Array)
            {
                probs = p.EnumerateArray().Select(Single).ToArray();
            }

            return new RoutingTraceRow(
                root.GetProperty(TraceSchema.Sequence).GetInt32(),
                root.GetProperty(TraceSchema.Position).GetInt32(),
                root.GetProperty(TraceSchema.TokenId).GetInt32(),
                root.GetProperty(TraceSchema.Token).GetString() ?? string.Empty,
                root.GetProperty(TraceSchema.Layer).GetInt32(),
                root.GetProperty(TraceSchema.Rank).GetInt32(),
                root.GetProperty(TraceSchema.Expert).GetInt32(),
                Single(root.GetProperty(TraceSchema.Weight)),
                Single(root.GetProperty(TraceSchema.Score)),
                probs);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new ExpertScopeException($"The trace '{path}' has a malformed row at line {lineNumber}: {e.Message}", e);
        }
    }

    private static async Task<ParquetReader> OpenParquetAsync(string path, CancellationToken cancellationToken)
    {
        if (!File.Exists(path))
        {
            throw new ExpertScopeException($"The trace '{path}' does not exist.");
        }

        // Share with a writer that holds the file open, so a trace can be inspected while a run is going on.
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        ParquetReader? reader = null;
        try
        {
            reader = await ParquetReader.CreateAsync(stream, leaveStreamOpen: false, cancellationToken: cancellationToken).ConfigureAwait(false);

            // The schema and the key-value metadata are built from the footer on first use; a footer caught mid-write (a
            // run appending to the file) fails in the Thrift decoder or here with ArgumentException or
            // InvalidOperationException, which must read as "not readable", not crash.
            _ = reader.Schema;
            _ = reader.CustomMetadata;
            return reader;
        }
        catch (Exception e) when (IsDamage(e))
        {
            if (reader is not null)
            {
                await reader.DisposeAsync().ConfigureAwait(false);
            }

            await stream.DisposeAsync().ConfigureAwait(false);
            throw NotReadable(path, e);
        }
    }

    /// <summary>
    /// What Parquet.Net throws for a damaged or half-written file. Its footer decoder trusts the bytes, so damage can
    /// surface as almost any exception inside the library (Thrift errors, unsupported types, null references, duplicate
    /// keys, ranges); only calls into the library on the file's bytes are guarded by this filter, so anything but
    /// cancellation and exhaustion there means the file is not readable.
    /// </summary>
    private static bool IsDamage(Exception e) => e is not (OperationCanceledException or OutOfMemoryException);

    private static ExpertScopeException NotReadable(string path, Exception e) => new(
        $"The trace '{path}' is not a readable Parquet file ({e.Message}). If a run writing it was interrupted, " +
        "reopening it with the trace writer repairs it from its .commit record.", e);
}
