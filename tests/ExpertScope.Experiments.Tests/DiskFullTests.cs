using ExpertScope.Core;
using ExpertScope.Experiments.Runs;
using ExpertScope.Experiments.Storage;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>
/// A full disk (simulated by a stream that refuses writes past a byte budget, as ENOSPC does; a real small tmpfs is
/// checked in docs/reliability.md) is reported as what it is, naming the user's file, leaves no temporary files, and
/// a later run resumes from the last committed state.
/// </summary>
public sealed class DiskFullTests
{
    private static readonly TraceMetadata Metadata = new()
    {
        ModelSha256 = new string('b', 64),
        Architecture = "olmoe",
        ExpertCount = 4,
        TopK = 2,
    };

    [Fact]
    public async Task ParquetAppend_OnAFullDisk_SaysNoSpaceNamingTheTrace_AndResumes()
    {
        using var temp = new TempDirectory();
        string path = temp.File("trace.parquet");
        var options = new TraceWriterOptions { RowGroupRows = 1 };
        await (await ParquetTraceWriter.OpenAsync(path, Metadata, options)).DisposeAsync();
        long sizeBefore = new FileInfo(path).Length;

        var writer = await ParquetTraceWriter.OpenAsync(path, Metadata, options, f => new FullDiskStream(f, sizeBefore + 3000), default);
        var error = await Assert.ThrowsAsync<IOException>(async () =>
        {
            for (int sequence = 0; sequence < 50; sequence++)
            {
                await writer.WriteSequenceAsync(sequence, StorageTraceTests.MakeSequence(sequence, withProbs: false, tokens: 8));
            }
        });
        await writer.DisposeAsync(); // must not bury the cause under a second, different error

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains("No space left on device", error.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(temp.Path, "*.tmp-*"));

        await using var resumed = await ParquetTraceWriter.OpenAsync(path, Metadata, options);
        var finished = resumed.FinishedSequences.Order().ToList();
        Assert.NotEmpty(finished);
        Assert.Equal(Enumerable.Range(0, finished.Count), finished);
    }

    [Fact]
    public void AtomicFile_WhoseTemporaryCannotBeCreated_NamesTheTarget_NotTheTemporary()
    {
        using var temp = new TempDirectory();
        string target = temp.File("results.json");
        // A folder where the temporary file must go makes its creation fail the way a read-only folder would.
        string temporary = target + ".tmp-" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        Directory.CreateDirectory(temporary);

        var error = Assert.Throws<ExpertScopeException>(() => AtomicFile.WriteAllText(target, "{}"));

        Assert.StartsWith($"'{target}' cannot be written: ", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(".tmp-", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(target));
    }

    [Fact]
    public void AtomicFile_OverAFolder_NamesTheFolder()
    {
        using var temp = new TempDirectory();
        string target = Directory.CreateDirectory(temp.File("report.html")).FullName;

        var error = Assert.Throws<ExpertScopeException>(() => AtomicFile.WriteAllText(target, "<html/>"));

        Assert.Contains(target, error.Message, StringComparison.Ordinal);
        Assert.Contains("directory", error.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(temp.Path, "*.tmp-*"));
    }

    /// <summary>A file stream on a disk with <paramref name="capacity"/> bytes: writes beyond it fail, as ENOSPC does, and keep failing.</summary>
    private sealed class FullDiskStream(FileStream file, long capacity) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => true;

        public override long Length => file.Length;

        public override long Position { get => file.Position; set => file.Position = value; }

        public override void Flush() => file.Flush(flushToDisk: true);

        public override int Read(byte[] buffer, int offset, int count) => file.Read(buffer, offset, count);

        public override long Seek(long offset, SeekOrigin origin) => file.Seek(offset, origin);

        public override void SetLength(long value)
        {
            Check(value);
            file.SetLength(value);
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
            Check(file.Position + count);
            file.Write(buffer, offset, count);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                file.Dispose();
            }

            base.Dispose(disposing);
        }

        private void Check(long end)
        {
            if (end > capacity)
            {
                throw new IOException($"No space left on device : '{file.Name}'", unchecked((int)0x8007001C));
            }
        }
    }
}
