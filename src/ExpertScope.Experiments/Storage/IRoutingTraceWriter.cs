namespace ExpertScope.Experiments.Storage;

/// <summary>The file formats a routing trace can be written in.</summary>
public enum TraceFormat
{
    /// <summary>Apache Parquet, one file, appended one row group at a time (<see cref="ParquetTraceWriter"/>).</summary>
    Parquet,

    /// <summary>JSON Lines, one JSON object per row (<see cref="JsonlTraceWriter"/>).</summary>
    Jsonl,
}

/// <summary>How a trace writer buffers and what it stores.</summary>
public sealed record TraceWriterOptions
{
    /// <summary>Whether rows carry the full router distribution (column <c>probs</c>); fixed for the life of a file.</summary>
    public bool IncludeProbabilities { get; init; }

    /// <summary>
    /// Rows buffered before they are written as one Parquet row group (whole sequences only, so a group can be
    /// larger). Larger groups read faster; smaller ones lose less to a crash. Default 262,144.
    /// </summary>
    public int RowGroupRows { get; init; } = 1 << 18;

    /// <summary>
    /// Router-distribution values (the <c>probs</c> lists, summed over the buffered rows) that also write the buffer
    /// out as a row group. Each of a token's k rows carries the whole distribution, so with many experts the lists,
    /// not the rows, set a group's size in memory: writing one takes several copies of them (values, Dremel levels,
    /// encoded pages). Default 4,194,304 (16 MB of floats); whole sequences only, so a group can be larger.
    /// </summary>
    public int RowGroupProbabilityValues { get; init; } = 1 << 22;

    /// <summary>
    /// Longest time finished sequences wait in the buffer: a sequence finished after that writes the buffer out
    /// even if it is smaller than <see cref="RowGroupRows"/>. Default one minute.
    /// </summary>
    public TimeSpan MaxBufferTime { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>The clock that times <see cref="MaxBufferTime"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>
/// Writes a routing trace one finished sequence at a time and resumes where an earlier, interrupted run stopped:
/// sequences in <see cref="FinishedSequences"/> are already stored and should be skipped.
/// A writer is not thread-safe, and a trace must have one writer at a time (readers may open it meanwhile).
/// </summary>
public interface IRoutingTraceWriter : IAsyncDisposable
{
    /// <summary>The trace file.</summary>
    string Path { get; }

    /// <summary>The format of <see cref="Path"/>.</summary>
    TraceFormat Format { get; }

    /// <summary>The metadata the file records.</summary>
    TraceMetadata Metadata { get; }

    /// <summary>Sequences safely stored on the disk (by this or an earlier run).</summary>
    IReadOnlySet<int> FinishedSequences { get; }

    /// <summary>True if <paramref name="sequence"/> was stored or handed to <see cref="WriteSequenceAsync"/> already.</summary>
    bool Contains(int sequence);

    /// <summary>Adds every row of one finished sequence (rows of one sequence are never split across row groups or runs).</summary>
    /// <param name="sequence">The sequence id; every row must carry it.</param>
    /// <param name="rows">The rows, in the order they should be stored.</param>
    /// <param name="cancellationToken">Stops the write.</param>
    /// <exception cref="ArgumentException">A row belongs to another sequence, or its <c>probs</c> presence does not match the file.</exception>
    /// <exception cref="InvalidOperationException">The sequence was already written.</exception>
    ValueTask WriteSequenceAsync(int sequence, IReadOnlyList<RoutingTraceRow> rows, CancellationToken cancellationToken = default);

    /// <summary>Stores everything buffered so far, durably, before returning.</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken = default);
}

/// <summary>Opens trace writers by format.</summary>
public static class RoutingTraceWriter
{
    /// <summary>The format a path's extension names: <c>.jsonl</c> is JSON Lines, anything else Parquet.</summary>
    public static TraceFormat FormatOf(string path) =>
        string.Equals(System.IO.Path.GetExtension(path), ".jsonl", StringComparison.OrdinalIgnoreCase) ? TraceFormat.Jsonl : TraceFormat.Parquet;

    /// <summary>Suffixes of the files kept beside a trace of <paramref name="format"/> (metadata, journal, commit record).</summary>
    public static string[] SidecarSuffixes(TraceFormat format) =>
        format == TraceFormat.Jsonl ? [JsonlTraceWriter.MetadataExtension, JsonlTraceWriter.JournalExtension] : [ParquetTraceWriter.CommitExtension];

    /// <summary>
    /// True if the existing file at <paramref name="path"/> was written by ExpertScope as a trace, so it may be resumed:
    /// a JSON Lines trace has its metadata sidecar; a Parquet trace has its commit record or is Parquet at all (its
    /// columns and metadata are then checked by <see cref="ParquetTraceWriter"/>).
    /// </summary>
    public static bool IsTraceFile(string path, TraceFormat format)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (format == TraceFormat.Jsonl)
        {
            return File.Exists(path + JsonlTraceWriter.MetadataExtension);
        }

        if (File.Exists(path + ParquetTraceWriter.CommitExtension))
        {
            return true;
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        Span<byte> head = stackalloc byte[4];
        return stream.Length >= 12 && stream.Read(head) == 4 && head.SequenceEqual("PAR1"u8);
    }

    /// <summary>Creates the trace at <paramref name="path"/>, or reopens it to resume (see the writers for the rules).</summary>
    /// <exception cref="Core.ExpertScopeException">The existing file was made with another model or settings, or is damaged beyond repair.</exception>
    public static async Task<IRoutingTraceWriter> OpenAsync(
        string path, TraceFormat format, TraceMetadata metadata, TraceWriterOptions? options = null, CancellationToken cancellationToken = default)
    {
        try
        {
            return format switch
            {
                TraceFormat.Parquet => await ParquetTraceWriter.OpenAsync(path, metadata, options, cancellationToken).ConfigureAwait(false),
                TraceFormat.Jsonl => JsonlTraceWriter.Open(path, metadata, options),
                _ => throw new ArgumentOutOfRangeException(nameof(format), format, "unknown trace format"),
            };
        }
        catch (Exception e) when (Runs.OutputGuard.IsWriteFailure(e))
        {
            // A sidecar or temporary file may be what failed; the user knows the trace path.
            throw Runs.OutputGuard.CannotWrite(path, e.InnerException is IOException or UnauthorizedAccessException ? e.InnerException : e);
        }
    }
}
