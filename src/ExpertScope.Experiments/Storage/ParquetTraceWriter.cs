using System.Buffers.Binary;
using System.Security.Cryptography;
using ExpertScope.Core;
using Parquet;
using Parquet.Schema;

namespace ExpertScope.Experiments.Storage;

/// <summary>
/// Writes a routing trace as one Parquet file, appending one row group per batch of finished sequences.
/// </summary>
/// <remarks>
/// <para>
/// Crash safety. Parquet keeps its index (the footer) at the end of the file, and appending a row group
/// overwrites the old footer before writing the new one, so a run killed during an append leaves a file no reader
/// can open. After every append the writer therefore saves a <em>commit record</em> beside the trace
/// (<c>trace.parquet.commit</c>, replaced atomically): the offset where the footer starts, the footer bytes, and a
/// fingerprint of the data before the footer (so a record left beside some other file is ignored).
/// Reopening the trace compares the file's end with the record; if they differ (an append was in flight), the file
/// is cut back to the recorded offset and the recorded footer is written again, which restores the last committed
/// state. At most the row group in flight is lost.
/// </para>
/// <para>
/// Resume. The footer's key-value metadata lists the finished sequences (<see cref="TraceMetadata.FinishedSequencesKey"/>);
/// reopening with the same model and settings appends after them, and with different ones is refused.
/// </para>
/// </remarks>
public sealed class ParquetTraceWriter : IRoutingTraceWriter
{
    /// <summary>Extension of the commit record written beside the trace.</summary>
    public const string CommitExtension = ".commit";

    private readonly Stream _stream;
    private readonly ParquetSchema _schema;
    private readonly TraceWriterOptions _options;
    private readonly HashSet<int> _finished;
    private readonly HashSet<int> _buffered = [];
    private readonly List<RoutingTraceRow> _rows = [];
    private long _bufferedProbabilityValues;
    private long _bufferStarted;
    private bool _failed;

    private ParquetTraceWriter(string path, Stream stream, TraceMetadata metadata, TraceWriterOptions options, HashSet<int> finished)
    {
        Path = path;
        _stream = stream;
        Metadata = metadata;
        _options = options;
        _schema = TraceSchema.Create(options.IncludeProbabilities);
        _finished = finished;
    }

    /// <inheritdoc/>
    public string Path { get; }

    /// <inheritdoc/>
    public TraceFormat Format => TraceFormat.Parquet;

    /// <inheritdoc/>
    public TraceMetadata Metadata { get; }

    /// <inheritdoc/>
    public IReadOnlySet<int> FinishedSequences => _finished;

    /// <summary>
    /// Bytes past the last committed row group that opening the file discarded because an append was in flight
    /// when an earlier run stopped (0 when the file was clean); the committed footer was written in their place.
    /// </summary>
    public long RecoveredBytes { get; private init; }

    /// <summary>Creates the trace, or reopens it to resume after repairing an interrupted append.</summary>
    /// <param name="path">The <c>.parquet</c> file.</param>
    /// <param name="metadata">What the trace records; when resuming, model hash, architecture, expert count and k must match the file.</param>
    /// <param name="options">Buffering and columns; when resuming, <see cref="TraceWriterOptions.IncludeProbabilities"/> must match the file.</param>
    /// <param name="cancellationToken">Stops the work.</param>
    /// <exception cref="ExpertScopeException">The file belongs to another model or settings, or cannot be repaired.</exception>
    public static Task<ParquetTraceWriter> OpenAsync(
        string path, TraceMetadata metadata, TraceWriterOptions? options = null, CancellationToken cancellationToken = default) =>
        OpenAsync(path, metadata, options, wrapStream: null, cancellationToken);

    /// <summary>As the public overload; <paramref name="wrapStream"/> lets tests put a fault-injecting stream over the file.</summary>
    internal static async Task<ParquetTraceWriter> OpenAsync(
        string path, TraceMetadata metadata, TraceWriterOptions? options, Func<FileStream, Stream>? wrapStream, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(metadata);
        options ??= new TraceWriterOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.RowGroupRows, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.RowGroupProbabilityValues, 1);
        var commitPath = path + CommitExtension;

        // A run killed between writing a temporary and renaming it leaves NAME.tmp-PID beside the trace.
        var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        Runs.AtomicFile.RemoveAbandoned(folder, path);
        Runs.AtomicFile.RemoveAbandoned(folder, commitPath);
        if (!File.Exists(path))
        {
            // A fresh trace is a valid Parquet file with no row groups, written whole, so every batch is an append.
            // A commit record left from a deleted trace does not describe it.
            File.Delete(commitPath);
            using var empty = new MemoryStream();
            await using (var writer = await ParquetWriter.CreateAsync(TraceSchema.Create(options.IncludeProbabilities), empty,
                             cancellationToken: cancellationToken).ConfigureAwait(false))
            {
                writer.CustomMetadata = MetadataWith(metadata, []);
            }

            Runs.AtomicFile.WriteAllBytes(path, empty.ToArray());
        }

        var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        var stream = wrapStream?.Invoke(file) ?? file;
        try
        {
            var recovered = await RecoverAsync(stream, path, commitPath, cancellationToken).ConfigureAwait(false);
            var finished = await CheckExistingAsync(stream, path, metadata, options, cancellationToken).ConfigureAwait(false);
            stream.Seek(0, SeekOrigin.End);
            return new ParquetTraceWriter(path, stream, metadata, options, finished) { RecoveredBytes = recovered };
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <inheritdoc/>
    public bool Contains(int sequence) => _finished.Contains(sequence) || _buffered.Contains(sequence);

    /// <inheritdoc/>
    public async ValueTask WriteSequenceAsync(int sequence, IReadOnlyList<RoutingTraceRow> rows, CancellationToken cancellationToken = default)
    {
        TraceRowChecks.Check(sequence, rows, _options.IncludeProbabilities, Contains(sequence));
        if (_buffered.Count == 0)
        {
            _bufferStarted = _options.TimeProvider.GetTimestamp();
        }

        _buffered.Add(sequence);
        _rows.AddRange(rows);
        foreach (var row in rows)
        {
            _bufferedProbabilityValues += row.Probs?.Length ?? 0;
        }

        if (_rows.Count >= _options.RowGroupRows
            || _bufferedProbabilityValues >= _options.RowGroupProbabilityValues
            || _options.TimeProvider.GetElapsedTime(_bufferStarted) >= _options.MaxBufferTime)
        {
            await FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        if (_buffered.Count == 0)
        {
            return;
        }

        if (_failed)
        {
            throw new ExpertScopeException($"'{Path}': an earlier write failed; re-run the command to resume from the last committed row group.");
        }

        try
        {
            await AppendBufferedAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (Runs.OutputGuard.IsWriteFailure(e))
        {
            // A full disk: say so, naming the trace. The file keeps its last committed state, which a re-run repairs
            // to and resumes from; flushing again on dispose would only bury this cause under a parse error.
            _failed = true;
            var cause = e is ExpertScopeException { InnerException: { } inner } ? inner : e;
            throw new IOException(Runs.OutputGuard.CannotWrite(Path, cause).Message, cause);
        }
    }

    private async Task AppendBufferedAsync(CancellationToken cancellationToken)
    {
        var finishedAfter = new HashSet<int>(_finished);
        finishedAfter.UnionWith(_buffered);
        await using (var writer = await ParquetWriter.CreateAsync(_schema, _stream, append: true, cancellationToken: cancellationToken)
                         .ConfigureAwait(false))
        {
            writer.CustomMetadata = MetadataWith(Metadata, finishedAfter);
            if (_rows.Count > 0)
            {
                using var group = writer.CreateRowGroup();
                await WriteColumnsAsync(group, cancellationToken).ConfigureAwait(false);
                group.CompleteValidate();
            }
        }

        await CommitAsync(_stream, Path + CommitExtension, cancellationToken).ConfigureAwait(false);
        _finished.UnionWith(_buffered);
        _buffered.Clear();
        _rows.Clear();
        _bufferedProbabilityValues = 0;
    }

    /// <summary>Writes what is buffered and closes the file.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_failed)
            {
                await FlushAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            try
            {
                await _stream.DisposeAsync().ConfigureAwait(false);
            }
            catch (IOException) when (_failed)
            {
                // Bytes still buffered after a failed append cannot land either; the append's error was reported.
            }
        }
    }

    private async Task WriteColumnsAsync(ParquetRowGroupWriter group, CancellationToken cancellationToken)
    {
        var count = _rows.Count;
        var fields = _schema.DataFields;
        async Task WriteInts(int index, Func<RoutingTraceRow, int> select)
        {
            var values = new int[count];
            for (var i = 0; i < count; i++)
            {
                values[i] = select(_rows[i]);
            }

            await group.WriteAsync<int>(fields[index], values, cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        async Task WriteFloats(int index, Func<RoutingTraceRow, float> select)
        {
            var values = new float[count];
            for (var i = 0; i < count; i++)
            {
                values[i] = select(_rows[i]);
            }

            await group.WriteAsync<float>(fields[index], values, cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        // Columns must be written in schema order.
        await WriteInts(0, r => r.Sequence).ConfigureAwait(false);
        await WriteInts(1, r => r.Position).ConfigureAwait(false);
        await WriteInts(2, r => r.TokenId).ConfigureAwait(false);
        await group.WriteAsync(fields[3], _rows.Select(r => (string?)r.Token).ToArray()).ConfigureAwait(false);
        await WriteInts(4, r => r.Layer).ConfigureAwait(false);
        await WriteInts(5, r => r.Rank).ConfigureAwait(false);
        await WriteInts(6, r => r.Expert).ConfigureAwait(false);
        await WriteFloats(7, r => r.Weight).ConfigureAwait(false);
        await WriteFloats(8, r => r.Score).ConfigureAwait(false);
        if (_options.IncludeProbabilities)
        {
            await WriteProbabilitiesAsync(group, fields[9], cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task WriteProbabilitiesAsync(ParquetRowGroupWriter group, DataField element, CancellationToken cancellationToken)
    {
        // Dremel levels for an optional list of required floats: definition 0 = null list, 1 = empty list,
        // 2 = a value; repetition 0 starts a new row, 1 continues the row's list.
        var slots = 0;
        var valueCount = 0;
        foreach (var row in _rows)
        {
            var length = row.Probs?.Length ?? 0;
            slots += Math.Max(1, length);
            valueCount += length;
        }

        var values = new float[valueCount];
        var definitions = new int[slots];
        var repetitions = new int[slots];
        int slot = 0, value = 0;
        foreach (var row in _rows)
        {
            if (row.Probs is null || row.Probs.Length == 0)
            {
                definitions[slot] = row.Probs is null ? 0 : 1;
                repetitions[slot++] = 0;
                continue;
            }

            for (var i = 0; i < row.Probs.Length; i++)
            {
                definitions[slot] = element.MaxDefinitionLevel;
                repetitions[slot++] = i == 0 ? 0 : 1;
                values[value++] = row.Probs[i];
            }
        }

        await group.WriteAllPartsAsync<float>(element, values, definitions, repetitions, cancellationToken).ConfigureAwait(false);
    }

    private static Dictionary<string, string> MetadataWith(TraceMetadata metadata, IEnumerable<int> finished)
    {
        var values = metadata.ToKeyValues();
        values[TraceMetadata.FinishedSequencesKey] = SequenceRanges.Format(finished);
        return values;
    }

    private static async Task<HashSet<int>> CheckExistingAsync(
        Stream stream, string path, TraceMetadata metadata, TraceWriterOptions options, CancellationToken cancellationToken)
    {
        await using var reader = await ParquetReader.CreateAsync(stream, leaveStreamOpen: true, cancellationToken: cancellationToken)
            .ConfigureAwait(false);
        var expected = TraceSchema.Create(options.IncludeProbabilities);
        if (!reader.Schema.Equals(expected))
        {
            var hasProbs = reader.Schema.Fields.Any(f => f.Name == TraceSchema.Probs);
            throw new ExpertScopeException(
                $"The trace '{path}' cannot be resumed: its columns ({string.Join(", ", reader.Schema.Fields.Select(f => f.Name))}) " +
                (hasProbs != options.IncludeProbabilities
                    ? $"{(hasProbs ? "include" : "lack")} 'probs', but this run {(options.IncludeProbabilities ? "asks for" : "does not ask for")} them."
                    : "are not those of an ExpertScope routing trace."));
        }

        var saved = TraceMetadata.FromKeyValues(reader.CustomMetadata, path);
        var differences = saved.DifferencesFrom(metadata);
        if (differences.Count > 0)
        {
            throw new ExpertScopeException(
                $"The trace '{path}' was written for another model or settings, so it cannot be resumed: {string.Join("; ", differences)}. " +
                "Write to a new file, or delete this one to start over.");
        }

        return await RoutingTraceReader.FinishedSequencesAsync(reader, path, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Pushes written bytes through to the disk (a wrapping stream must do the same in its <see cref="Stream.Flush"/>).</summary>
    private static void FlushToDisk(Stream stream)
    {
        if (stream is FileStream file)
        {
            file.Flush(flushToDisk: true);
        }
        else
        {
            stream.Flush();
        }
    }

    // ---- commit records --------------------------------------------------------------------------------------
    // Layout: "ESCR" | int64 footer offset | 32-byte fingerprint of the data before the footer | int32 tail length |
    //         tail bytes (footer, its length, "PAR1") | SHA-256 of everything before it.
    // The fingerprint (SHA-256 of the first and last 64 KiB before the footer, which an append never changes) ties
    // the record to its file, so a stale record beside another trace is never used to cut that trace.

    private const int FingerprintSpan = 64 * 1024;

    private static ReadOnlySpan<byte> CommitMagic => "ESCR"u8;

    private sealed record CommitRecord(long FooterStart, byte[] Fingerprint, byte[] Tail);

    private static async Task CommitAsync(Stream stream, string commitPath, CancellationToken cancellationToken)
    {
        stream.SetLength(stream.Position);
        FlushToDisk(stream);
        var (footerStart, tail) = await ReadTailAsync(stream, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException("the file just written has no Parquet footer");
        var fingerprint = await FingerprintAsync(stream, footerStart, cancellationToken).ConfigureAwait(false);
        var record = new byte[4 + 8 + 32 + 4 + tail.Length + 32];
        CommitMagic.CopyTo(record);
        BinaryPrimitives.WriteInt64LittleEndian(record.AsSpan(4), footerStart);
        fingerprint.CopyTo(record.AsSpan(12));
        BinaryPrimitives.WriteInt32LittleEndian(record.AsSpan(44), tail.Length);
        tail.CopyTo(record.AsSpan(48));
        SHA256.HashData(record.AsSpan(0, record.Length - 32), record.AsSpan(record.Length - 32));
        Runs.AtomicFile.WriteAllBytes(commitPath, record);
        stream.Seek(0, SeekOrigin.End);
    }

    private static CommitRecord? TryReadCommit(string commitPath)
    {
        if (!File.Exists(commitPath))
        {
            return null;
        }

        var record = File.ReadAllBytes(commitPath);
        if (record.Length < 48 + 32 || !record.AsSpan(0, 4).SequenceEqual(CommitMagic))
        {
            return null;
        }

        var tailLength = BinaryPrimitives.ReadInt32LittleEndian(record.AsSpan(44));
        if (tailLength < 0 || record.Length != 48 + tailLength + 32
            || !SHA256.HashData(record.AsSpan(0, record.Length - 32)).AsSpan().SequenceEqual(record.AsSpan(record.Length - 32)))
        {
            return null;
        }

        return new CommitRecord(BinaryPrimitives.ReadInt64LittleEndian(record.AsSpan(4)), record.AsSpan(12, 32).ToArray(),
            record.AsSpan(48, tailLength).ToArray());
    }

    private static async Task<byte[]> FingerprintAsync(Stream stream, long footerStart, CancellationToken cancellationToken)
    {
        var headLength = (int)Math.Min(FingerprintSpan, footerStart);
        var tailStart = Math.Max(headLength, footerStart - FingerprintSpan);
        var buffer = new byte[headLength + (int)(footerStart - tailStart)];
        stream.Seek(0, SeekOrigin.Begin);
        await stream.ReadExactlyAsync(buffer.AsMemory(0, headLength), cancellationToken).ConfigureAwait(false);
        stream.Seek(tailStart, SeekOrigin.Begin);
        await stream.ReadExactlyAsync(buffer.AsMemory(headLength), cancellationToken).ConfigureAwait(false);
        return SHA256.HashData(buffer);
    }

    /// <summary>The footer offset and the bytes from there to the end, if the file ends like a Parquet file.</summary>
    private static async Task<(long FooterStart, byte[] Tail)?> ReadTailAsync(Stream stream, CancellationToken cancellationToken)
    {
        var length = stream.Length;
        if (length < 12)
        {
            return null;
        }

        var end = new byte[8];
        stream.Seek(length - 8, SeekOrigin.Begin);
        await stream.ReadExactlyAsync(end, cancellationToken).ConfigureAwait(false);
        var footerLength = BinaryPrimitives.ReadInt32LittleEndian(end);
        if (!end.AsSpan(4).SequenceEqual("PAR1"u8) || footerLength <= 0 || footerLength > length - 12)
        {
            return null;
        }

        var footerStart = length - 8 - footerLength;
        var tail = new byte[length - footerStart];
        stream.Seek(footerStart, SeekOrigin.Begin);
        await stream.ReadExactlyAsync(tail, cancellationToken).ConfigureAwait(false);
        return (footerStart, tail);
    }

    /// <summary>Brings the file back to its last committed state; returns how many bytes were cut off.</summary>
    private static async Task<long> RecoverAsync(Stream stream, string path, string commitPath, CancellationToken cancellationToken)
    {
        var commit = TryReadCommit(commitPath);
        var length = stream.Length;
        if (commit is not null
            && (length < commit.FooterStart
                || !(await FingerprintAsync(stream, commit.FooterStart, cancellationToken).ConfigureAwait(false)).AsSpan().SequenceEqual(commit.Fingerprint)))
        {
            // The record describes some other file (the trace was replaced or copied over): do not cut with it.
            commit = null;
        }

        if (commit is null)
        {
            // No usable commit record (e.g. a trace copied without it): accept the file only if it reads as Parquet.
            try
            {
                await using (await ParquetReader.CreateAsync(stream, leaveStreamOpen: true, cancellationToken: cancellationToken)
                                 .ConfigureAwait(false))
                {
                }
            }
            catch (Exception e) when (e is IOException or ParquetException or InvalidDataException or EndOfStreamException
                                          or ArgumentException or InvalidOperationException)
            {
                throw new ExpertScopeException(
                    $"The trace '{path}' is not a readable Parquet file and has no matching commit record ('{commitPath}') to repair it from. " +
                    "Delete it to start over.", e);
            }

            stream.Seek(0, SeekOrigin.End);
            await CommitAsync(stream, commitPath, cancellationToken).ConfigureAwait(false);
            return 0;
        }

        if (length == commit.FooterStart + commit.Tail.Length)
        {
            var current = new byte[commit.Tail.Length];
            stream.Seek(commit.FooterStart, SeekOrigin.Begin);
            await stream.ReadExactlyAsync(current, cancellationToken).ConfigureAwait(false);
            if (current.AsSpan().SequenceEqual(commit.Tail))
            {
                stream.Seek(0, SeekOrigin.End);
                return 0;
            }
        }

        // An append was in flight: drop everything after the committed row groups and restore the committed footer.
        stream.SetLength(commit.FooterStart);
        stream.Seek(commit.FooterStart, SeekOrigin.Begin);
        await stream.WriteAsync(commit.Tail, cancellationToken).ConfigureAwait(false);
        FlushToDisk(stream);
        return length - commit.FooterStart;
    }
}
