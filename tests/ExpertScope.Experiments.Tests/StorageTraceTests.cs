using ExpertScope.Core;
using ExpertScope.Experiments.Storage;
using ExpertScope.Testing;
using Parquet;
using Parquet.Schema;
using Parquet.Serialization;

namespace ExpertScope.Experiments.Tests;

public sealed class StorageTraceTests
{
    private const int ExpertCount = 4;
    private const int TopK = 2;

    internal static readonly TraceMetadata Metadata = new()
    {
        ModelSha256 = new string('a', 64),
        Architecture = "olmoe",
        ExpertCount = ExpertCount,
        TopK = TopK,
        CommandLine = "expertscope trace model.gguf",
    };

    /// <summary>A made-up sequence: 3 tokens x 2 layers x k=2 rows, values derived from the ids so they can be checked.</summary>
    internal static List<RoutingTraceRow> MakeSequence(int sequence, bool withProbs, int tokens = 3)
    {
        var rows = new List<RoutingTraceRow>();
        for (var position = 0; position < tokens; position++)
        {
            for (var layer = 0; layer < 2; layer++)
            {
                float[]? probs = withProbs
                    ? [0.1f * (position + 1), 0.2f, 0.3f + layer, 0.4f + sequence]
                    : null;
                for (var rank = 0; rank < TopK; rank++)
                {
                    rows.Add(new RoutingTraceRow(
                        sequence, position, 100 + position, position == 0 ? "<s>" : $"tok,\"{position}\"é", layer, rank,
                        (sequence + position + layer + rank) % ExpertCount, 0.75f - 0.5f * rank, 2.5f - rank + 0.001f * sequence, probs));
                }
            }
        }

        return rows;
    }

    private static async Task<List<RoutingTraceRow>> ReadAll(string path)
    {
        var rows = new List<RoutingTraceRow>();
        await foreach (var row in RoutingTraceReader.ReadRowsAsync(path))
        {
            rows.Add(row);
        }

        return rows;
    }

    private static void AssertRowsEqual(IReadOnlyList<RoutingTraceRow> expected, IReadOnlyList<RoutingTraceRow> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i] with { Probs = null }, actual[i] with { Probs = null });
            Assert.Equal(expected[i].Probs, actual[i].Probs);
        }
    }

    [Theory]
    [InlineData(TraceFormat.Parquet, false)]
    [InlineData(TraceFormat.Parquet, true)]
    [InlineData(TraceFormat.Jsonl, false)]
    [InlineData(TraceFormat.Jsonl, true)]
    public async Task WriteThenRead_ReturnsTheSameRowsAndMetadata(TraceFormat format, bool withProbs)
    {
        using var temp = new TempDirectory();
        var path = temp.File(format == TraceFormat.Parquet ? "trace.parquet" : "trace.jsonl");
        var expected = new List<RoutingTraceRow>();
        var options = new TraceWriterOptions { IncludeProbabilities = withProbs, RowGroupRows = 20 };
        await using (var writer = await RoutingTraceWriter.OpenAsync(path, format, Metadata, options))
        {
            for (var s = 0; s < 5; s++)
            {
                var rows = MakeSequence(s, withProbs);
                await writer.WriteSequenceAsync(s, rows);
                expected.AddRange(rows);
            }
        }

        AssertRowsEqual(expected, await ReadAll(path));
        Assert.Equal([0, 1, 2, 3, 4], (await RoutingTraceReader.ReadFinishedSequencesAsync(path)).Order());
        var metadata = await RoutingTraceReader.ReadMetadataAsync(path);
        Assert.Equal(Metadata, metadata);
    }

    [Theory]
    [InlineData(TraceFormat.Parquet)]
    [InlineData(TraceFormat.Jsonl)]
    public async Task MissingAndEmptyProbabilities_RoundTrip(TraceFormat format)
    {
        using var temp = new TempDirectory();
        var path = temp.File(format == TraceFormat.Parquet ? "trace.parquet" : "trace.jsonl");
        List<RoutingTraceRow> rows =
        [
            new(0, 0, 1, "a", 0, 0, 1, 0.5f, 0.5f, null),
            new(0, 0, 1, "a", 0, 1, 2, 0.5f, 0.5f, []),
            new(0, 1, 2, "", 0, 0, 3, 1f, 0.9f, [1f, 0f, -0f, 0.5f]),
        ];
        await using (var writer = await RoutingTraceWriter.OpenAsync(path, format, Metadata, new TraceWriterOptions { IncludeProbabilities = true }))
        {
            await writer.WriteSequenceAsync(0, rows);
        }

        AssertRowsEqual(rows, await ReadAll(path));
    }

    [Fact]
    public async Task Parquet_RowGroupsHoldWholeSequences()
    {
        using var temp = new TempDirectory();
        var path = temp.File("trace.parquet");
        await using (var writer = await ParquetTraceWriter.OpenAsync(path, Metadata, new TraceWriterOptions { RowGroupRows = 20 }))
        {
            for (var s = 0; s < 5; s++)
            {
                await writer.WriteSequenceAsync(s, MakeSequence(s, false)); // 12 rows each: a group every 2 sequences
            }
        }

        await using var reader = await ParquetReader.CreateAsync(path);
        Assert.Equal(3, reader.RowGroupCount);
        Assert.Equal([24L, 24L, 12L], Enumerable.Range(0, 3).Select(g => reader.OpenRowGroupReader(g).RowCount));
    }

    [Fact]
    public async Task Parquet_RouterDistributionsAlsoBoundARowGroup()
    {
        // Each sequence has 12 rows carrying 4 probabilities each (48 values): a budget of 60 values closes a group
        // every 2 sequences although the rows (24) stay far under RowGroupRows.
        using var temp = new TempDirectory();
        var path = temp.File("trace.parquet");
        var written = new List<RoutingTraceRow>();
        var options = new TraceWriterOptions { IncludeProbabilities = true, RowGroupRows = 1000, RowGroupProbabilityValues = 60 };
        await using (var writer = await ParquetTraceWriter.OpenAsync(path, Metadata, options))
        {
            for (var s = 0; s < 5; s++)
            {
                var rows = MakeSequence(s, true);
                written.AddRange(rows);
                await writer.WriteSequenceAsync(s, rows);
            }
        }

        await using (var reader = await ParquetReader.CreateAsync(path))
        {
            Assert.Equal([24L, 24L, 12L], Enumerable.Range(0, reader.RowGroupCount).Select(g => reader.OpenRowGroupReader(g).RowCount));
        }

        AssertRowsEqual(written, await ReadAll(path));
    }

    [Fact]
    public async Task Parquet_SchemaHasTheDocumentedNamesAndTypes()
    {
        using var temp = new TempDirectory();
        var path = temp.File("trace.parquet");
        await using (var writer = await ParquetTraceWriter.OpenAsync(path, Metadata, new TraceWriterOptions { IncludeProbabilities = true }))
        {
            await writer.WriteSequenceAsync(0, MakeSequence(0, true));
        }

        await using (var reader = await ParquetReader.CreateAsync(path))
        {
            // The physical schema as any Parquet reader sees it: name, physical type, logical annotation, repetition.
            var elements = reader.Metadata!.Schema.Skip(1)
                .Select(e => $"{e.Name}:{e.Type?.ToString() ?? "group"}:{e.ConvertedType?.ToString() ?? "-"}:{e.RepetitionType}")
                .ToList();
            Assert.Equal(
                [
                    "sequence:INT32:INT_32:REQUIRED", "position:INT32:INT_32:REQUIRED", "token_id:INT32:INT_32:REQUIRED", "token:BYTE_ARRAY:UTF8:REQUIRED",
                    "layer:INT32:INT_32:REQUIRED", "rank:INT32:INT_32:REQUIRED", "expert:INT32:INT_32:REQUIRED", "weight:FLOAT:-:REQUIRED",
                    "score:FLOAT:-:REQUIRED", "probs:group:LIST:OPTIONAL", "list:group:-:REPEATED", "element:FLOAT:-:REQUIRED",
                ],
                elements);
        }

        var schema = await ParquetReader.ReadSchemaAsync(path);
        Assert.Equal(
            ["sequence", "position", "token_id", "token", "layer", "rank", "expert", "weight", "score", "probs"],
            schema.Fields.Select(f => f.Name));
        Assert.Equal(TraceSchema.ColumnNames, schema.Fields.Select(f => f.Name));
        var probs = Assert.IsType<ListField>(schema.Fields[9]);
        Assert.Equal(typeof(float), Assert.IsType<DataField>(probs.Item).ClrType);

        var plain = await ParquetReader.ReadSchemaAsync(await WriteOneSequence(temp.File("plain.parquet"), withProbs: false));
        Assert.Equal(9, plain.Fields.Count);
    }

    private static async Task<string> WriteOneSequence(string path, bool withProbs)
    {
        await using var writer = await ParquetTraceWriter.OpenAsync(path, Metadata, new TraceWriterOptions { IncludeProbabilities = withProbs });
        await writer.WriteSequenceAsync(0, MakeSequence(0, withProbs));
        return path;
    }

    [Fact]
    public async Task Parquet_IsReadableByTheUntypedGenericReader()
    {
        using var temp = new TempDirectory();
        var path = await WriteOneSequence(temp.File("trace.parquet"), withProbs: true);
        var expected = MakeSequence(0, true);

        await using var file = File.OpenRead(path);
        var result = await ParquetSerializer.DeserializeUntypedAsync(file);
        Assert.Equal(expected.Count, result.Data.Count);
        var first = result.Data[1];
        Assert.Equal(0, Convert.ToInt32(first["sequence"], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("<s>", first["token"]?.ToString());
        Assert.Equal(1, Convert.ToInt32(first["rank"], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0.25f, Convert.ToSingle(first["weight"], System.Globalization.CultureInfo.InvariantCulture));
        var probs = Assert.IsAssignableFrom<System.Collections.IEnumerable>(first["probs"]).Cast<object>()
            .Select(v => Convert.ToSingle(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(expected[1].Probs, probs);

        await using var reader = await ParquetReader.CreateAsync(path);
        Assert.Equal("olmoe", reader.CustomMetadata["expertscope.architecture"]);
        Assert.Equal(new string('a', 64), reader.CustomMetadata["expertscope.model_sha256"]);
        Assert.Equal("4", reader.CustomMetadata["expertscope.expert_count"]);
        Assert.Equal("2", reader.CustomMetadata["expertscope.top_k"]);
        Assert.Equal("expertscope trace model.gguf", reader.CustomMetadata["expertscope.command_line"]);
        Assert.Equal(TraceMetadata.CurrentVersion, reader.CustomMetadata["expertscope.version"]);
        Assert.Equal("0", reader.CustomMetadata["expertscope.finished_sequences"]);
    }

    [Fact]
    public async Task Parquet_ReopenAppendsAndSkipsFinishedSequences()
    {
        using var temp = new TempDirectory();
        var path = temp.File("trace.parquet");
        await using (var writer = await ParquetTraceWriter.OpenAsync(path, Metadata))
        {
            await writer.WriteSequenceAsync(0, MakeSequence(0, false));
            await writer.WriteSequenceAsync(2, MakeSequence(2, false));
        }

        await using (var writer = await ParquetTraceWriter.OpenAsync(path, Metadata))
        {
            Assert.Equal([0, 2], writer.FinishedSequences.Order());
            Assert.Equal(0, writer.RecoveredBytes);
            await Assert.ThrowsAsync<InvalidOperationException>(async () => await writer.WriteSequenceAsync(2, MakeSequence(2, false)));
            await writer.WriteSequenceAsync(1, MakeSequence(1, false));
        }

        var rows = await ReadAll(path);
        Assert.Equal([0, 2, 1], rows.Select(r => r.Sequence).Distinct());
        Assert.Equal([0, 1, 2], (await RoutingTraceReader.ReadFinishedSequencesAsync(path)).Order());
    }

    [Fact]
    public async Task Parquet_ReopenWithAnotherModelOrColumns_IsRefusedWithTheReason()
    {
        using var temp = new TempDirectory();
        var path = await WriteOneSequence(temp.File("trace.parquet"), withProbs: false);

        var model = await Assert.ThrowsAsync<ExpertScopeException>(() => ParquetTraceWriter.OpenAsync(path, Metadata with { ModelSha256 = new string('b', 64), TopK = 8 }));
        Assert.Contains("model SHA-256 was", model.Message, StringComparison.Ordinal);
        Assert.Contains("k was 2, now 8", model.Message, StringComparison.Ordinal);

        var probs = await Assert.ThrowsAsync<ExpertScopeException>(() => ParquetTraceWriter.OpenAsync(path, Metadata, new TraceWriterOptions { IncludeProbabilities = true }));
        Assert.Contains("'probs'", probs.Message, StringComparison.Ordinal);

        var arithmetic = await Assert.ThrowsAsync<ExpertScopeException>(() => ParquetTraceWriter.OpenAsync(path, Metadata with { FloatArithmetic = "fused" }));
        Assert.Contains("float arithmetic was 'reference', now 'fused'", arithmetic.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Metadata_WithoutTheArithmeticKey_ReadsAsReference()
    {
        var values = Metadata.ToKeyValues();
        Assert.Equal("reference", values[TraceMetadata.FloatArithmeticKey]);
        values.Remove(TraceMetadata.FloatArithmeticKey);
        Assert.Equal("reference", TraceMetadata.FromKeyValues(values, "old.parquet").FloatArithmetic);
    }

    /// <summary>
    /// Simulates a kill at every byte of an append: Parquet.Net overwrites the old footer in place and then
    /// extends the file, so the bytes on disk at a crash are a prefix of the new file over the rest of the old one.
    /// Reopening must give back exactly the committed sequences, readable, and a further append must work.
    /// </summary>
    [Fact]
    public async Task Parquet_KillDuringAppend_AtAnyByte_RecoversTheCommittedRowGroups()
    {
        using var temp = new TempDirectory();
        var path = temp.File("trace.parquet");
        var commit = path + ParquetTraceWriter.CommitExtension;
        var committedRows = new List<RoutingTraceRow>();
        await using (var writer = await ParquetTraceWriter.OpenAsync(path, Metadata, new TraceWriterOptions { IncludeProbabilities = true }))
        {
            for (var s = 0; s < 2; s++)
            {
                var rows = MakeSequence(s, true);
                committedRows.AddRange(rows);
                await writer.WriteSequenceAsync(s, rows);
                await writer.FlushAsync();
            }
        }

        var oldFile = await File.ReadAllBytesAsync(path);
        var oldCommit = await File.ReadAllBytesAsync(commit);
        await using (var writer = await ParquetTraceWriter.OpenAsync(path, Metadata, new TraceWriterOptions { IncludeProbabilities = true }))
        {
            await writer.WriteSequenceAsync(7, MakeSequence(7, true, tokens: 5));
        }

        var newFile = await File.ReadAllBytesAsync(path);
        Assert.True(newFile.Length > oldFile.Length);
        var (footerStart, _) = FooterOf(oldFile);

        var crashPoints = Enumerable.Range((int)footerStart, newFile.Length - (int)footerStart).Where(i => i % 7 == 0 || i > newFile.Length - 40).ToList();
        foreach (var cut in crashPoints)
        {
            // What the disk holds when the writer dies after writing `cut` bytes of the new file.
            var crashed = newFile.AsSpan(0, cut).ToArray().Concat(cut < oldFile.Length ? oldFile.Skip(cut) : []).ToArray();
            await File.WriteAllBytesAsync(path, crashed);
            await File.WriteAllBytesAsync(commit, oldCommit);

            await using (var writer = await ParquetTraceWriter.OpenAsync(path, Metadata, new TraceWriterOptions { IncludeProbabilities = true }))
            {
                Assert.Equal([0, 1], writer.FinishedSequences.Order());
            }

            Assert.Equal(oldFile, await File.ReadAllBytesAsync(path));
        }

        // After a repair the run goes on.
        await using (var writer = await ParquetTraceWriter.OpenAsync(path, Metadata, new TraceWriterOptions { IncludeProbabilities = true }))
        {
            await writer.WriteSequenceAsync(2, MakeSequence(2, true));
        }

        var all = await ReadAll(path);
        AssertRowsEqual([.. committedRows, .. MakeSequence(2, true)], all);
    }

    /// <summary>
    /// A file stream that "dies" after a byte budget: the write that crosses it lands only partly, and every later
    /// call fails, as if the process had been killed there. Bytes already written stay, as they would in the page cache.
    /// </summary>
    private sealed class DyingStream(FileStream file, long budget) : Stream
    {
        private long _written;

        public bool Died { get; private set; }

        public long Written => _written;

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => true;

        public override long Length => file.Length;

        public override long Position { get => file.Position; set => file.Position = value; }

        public override void Flush()
        {
            Check();
            file.Flush(flushToDisk: true);
        }

        public override int Read(byte[] buffer, int offset, int count) => file.Read(buffer, offset, count);

        public override long Seek(long offset, SeekOrigin origin) => file.Seek(offset, origin);

        public override void SetLength(long value)
        {
            Check();
            file.SetLength(value);
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
            Check();
            var allowed = (int)Math.Min(count, budget - _written);
            file.Write(buffer, offset, allowed);
            _written += allowed;
            if (allowed < count)
            {
                Died = true;
                file.Flush();
                throw new IOException("simulated kill");
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                file.Dispose();
            }

            base.Dispose(disposing);
        }

        private void Check()
        {
            if (Died)
            {
                throw new IOException("simulated kill");
            }
        }
    }

    /// <summary>
    /// Kills a real writer after every n-th byte it writes over a run of several appends, then resumes: the trace must
    /// always reopen, hold a whole number of the sequences written before the kill, and end with every row exactly once.
    /// </summary>
    [Fact]
    public async Task Parquet_WriterKilledAfterAnyWrite_ResumesToTheSameRows()
    {
        var options = new TraceWriterOptions { IncludeProbabilities = true, RowGroupRows = 1 };
        var sequences = Enumerable.Range(0, 4).Select(s => MakeSequence(s, true, tokens: 2 + s)).ToList();
        var expected = sequences.SelectMany(r => r).ToList();

        // Bytes a clean run writes after the file exists (footers are rewritten, so more than the file grows).
        long total;
        using (var temp = new TempDirectory())
        {
            var path = temp.File("trace.parquet");
            await (await ParquetTraceWriter.OpenAsync(path, Metadata, options)).DisposeAsync();
            DyingStream? counter = null;
            await using (var writer = await ParquetTraceWriter.OpenAsync(path, Metadata, options, f => counter = new DyingStream(f, long.MaxValue), default))
            {
                foreach (var rows in sequences)
                {
                    await writer.WriteSequenceAsync(rows[0].Sequence, rows);
                }
            }

            total = counter!.Written;
        }

        int kills = 0, repairs = 0, runs = 0;
        for (var budget = 0L; budget <= total + 50; budget += 41)
        {
            runs++;
            using var temp = new TempDirectory();
            var path = temp.File("trace.parquet");
            await (await ParquetTraceWriter.OpenAsync(path, Metadata, options)).DisposeAsync();
            DyingStream? dying = null;
            var writer = await ParquetTraceWriter.OpenAsync(path, Metadata, options, f => dying = new DyingStream(f, budget), default);
            try
            {
                foreach (var rows in sequences)
                {
                    await writer.WriteSequenceAsync(rows[0].Sequence, rows);
                }

                await writer.DisposeAsync();
            }
            catch (IOException) when (dying!.Died)
            {
                dying.Dispose(); // the process is gone; its file handle closes
                kills++;
            }

            await using (var resumed = await ParquetTraceWriter.OpenAsync(path, Metadata, options))
            {
                repairs += resumed.RecoveredBytes > 0 ? 1 : 0;
                var done = resumed.FinishedSequences.Order().ToList();
                Assert.Equal(Enumerable.Range(0, done.Count), done);
                AssertRowsEqual(sequences.Take(done.Count).SelectMany(r => r).ToList(), await ReadAll(path));
                foreach (var rows in sequences.Skip(done.Count))
                {
                    await resumed.WriteSequenceAsync(rows[0].Sequence, rows);
                }
            }

            AssertRowsEqual(expected, await ReadAll(path));
        }

        // The budgets must cover kills mid-append (repairs) as well as runs that finished.
        Assert.InRange(kills, runs / 3, runs - 1);
        Assert.True(repairs > kills / 4, $"{repairs} repairs in {kills} kills");
    }

    [Fact]
    public async Task Parquet_OpenWithNothingFlushed_IsAnEmptyReadableTrace()
    {
        using var temp = new TempDirectory();
        var path = temp.File("trace.parquet");
        await using (var writer = await ParquetTraceWriter.OpenAsync(path, Metadata))
        {
            // Nothing flushed yet: the file is a valid Parquet file with no row groups.
            Assert.Empty(await RoutingTraceReader.ReadFinishedSequencesAsync(path));
            Assert.Empty(await ReadAll(path));
        }
    }

    [Fact]
    public async Task Parquet_StaleCommitRecordOfAnotherTrace_IsNotUsedToCutIt()
    {
        using var temp = new TempDirectory();
        var first = temp.File("a.parquet");
        var second = temp.File("b.parquet");
        await using (var writer = await ParquetTraceWriter.OpenAsync(first, Metadata))
        {
            await writer.WriteSequenceAsync(0, MakeSequence(0, false));
            await writer.FlushAsync();
            await writer.WriteSequenceAsync(1, MakeSequence(1, false));
        }

        await using (var writer = await ParquetTraceWriter.OpenAsync(second, Metadata))
        {
            await writer.WriteSequenceAsync(5, MakeSequence(5, false, tokens: 9));
        }

        // Another trace copied over the first one, which leaves the first one's commit record beside it.
        File.Copy(second, first, overwrite: true);
        var copied = await File.ReadAllBytesAsync(first);
        await using (var writer = await ParquetTraceWriter.OpenAsync(first, Metadata))
        {
            Assert.Equal([5], writer.FinishedSequences);
            Assert.Equal(0, writer.RecoveredBytes);
        }

        Assert.Equal(copied, await File.ReadAllBytesAsync(first));
    }

    [Fact]
    public async Task Parquet_DamagedWithoutCommitRecord_IsRefused()
    {
        using var temp = new TempDirectory();
        var path = temp.File("trace.parquet");
        await File.WriteAllBytesAsync(path, "PAR1 not really"u8.ToArray());
        var error = await Assert.ThrowsAsync<ExpertScopeException>(() => ParquetTraceWriter.OpenAsync(path, Metadata));
        Assert.Contains("not a readable Parquet file", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A footer caught mid-write (a reader polling a trace that a run is appending to) can fail in Parquet.Net's Thrift
    /// decoder; every byte of the footer zeroed or set in turn must read as "not readable" or as a trace, never crash.
    /// </summary>
    [Fact]
    public async Task Parquet_FooterBytesDamaged_ReadAsNotReadableNeverARawException()
    {
        using var temp = new TempDirectory();
        var path = temp.File("trace.parquet");
        await using (var writer = await ParquetTraceWriter.OpenAsync(path, Metadata))
        {
            await writer.WriteSequenceAsync(0, MakeSequence(0, false));
        }

        var original = await File.ReadAllBytesAsync(path);
        var (footerStart, length) = FooterOf(original);
        var damaged = temp.File("damaged.parquet");
        int refused = 0;
        foreach (byte value in new byte[] { 0x00, 0xFF })
        {
            for (long i = footerStart; i < footerStart + length; i++)
            {
                var bytes = (byte[])original.Clone();
                bytes[i] = value;
                await File.WriteAllBytesAsync(damaged, bytes);
                try
                {
                    await RoutingTraceReader.ReadFinishedSequencesAsync(damaged);
                }
                catch (ExpertScopeException)
                {
                    refused++;
                }
            }
        }

        Assert.True(refused > 0, "no damaged footer was refused, so the test exercised nothing");
    }

    private static (long FooterStart, int Length) FooterOf(byte[] file)
    {
        var length = BitConverter.ToInt32(file, file.Length - 8);
        return (file.Length - 8 - length, length);
    }

    [Fact]
    public async Task Jsonl_KillMidSequence_DropsThePartialLineAndTheUnfinishedSequence()
    {
        using var temp = new TempDirectory();
        var path = temp.File("trace.jsonl");
        await using (var writer = JsonlTraceWriter.Open(path, Metadata))
        {
            await writer.WriteSequenceAsync(0, MakeSequence(0, false));
            await writer.WriteSequenceAsync(1, MakeSequence(1, false));
        }

        var clean = await File.ReadAllBytesAsync(path);
        // A crash while sequence 2 was being written: two whole lines and half of a third made it to the disk.
        await using (var writer = JsonlTraceWriter.Open(temp.File("scratch.jsonl"), Metadata))
        {
            await writer.WriteSequenceAsync(2, MakeSequence(2, false));
        }

        var lines = (await File.ReadAllTextAsync(temp.File("scratch.jsonl"))).Split('\n');
        await File.AppendAllTextAsync(path, lines[0] + "\n" + lines[1] + "\n" + lines[2][..10]);

        Assert.Equal([0, 1], (await RoutingTraceReader.ReadFinishedSequencesAsync(path)).Order());
        Assert.Equal(24, (await ReadAll(path)).Count);
        await using (var writer = JsonlTraceWriter.Open(path, Metadata))
        {
            Assert.Equal([0, 1], writer.FinishedSequences.Order());
            Assert.True(writer.RecoveredBytes > 0);
            Assert.Equal(clean, await File.ReadAllBytesAsync(path));
            await writer.WriteSequenceAsync(2, MakeSequence(2, false));
        }

        AssertRowsEqual([.. MakeSequence(0, false), .. MakeSequence(1, false), .. MakeSequence(2, false)], await ReadAll(path));
    }

    [Fact]
    public async Task Jsonl_WithoutJournal_TrustsCompleteLinesButTheLastSequence()
    {
        using var temp = new TempDirectory();
        var path = temp.File("trace.jsonl");
        await using (var writer = JsonlTraceWriter.Open(path, Metadata))
        {
            for (var s = 0; s < 3; s++)
            {
                await writer.WriteSequenceAsync(s, MakeSequence(s, false));
            }
        }

        File.Delete(path + JsonlTraceWriter.JournalExtension);
        await File.AppendAllTextAsync(path, "{\"sequence\":3,\"posi");

        Assert.Equal([0, 1], (await RoutingTraceReader.ReadFinishedSequencesAsync(path)).Order());
        await using var reopened = JsonlTraceWriter.Open(path, Metadata);
        Assert.Equal([0, 1], reopened.FinishedSequences.Order());
    }

    [Fact]
    public async Task Jsonl_RowsUseTheParquetFieldNamesAndWriteNonFiniteAsNull()
    {
        using var temp = new TempDirectory();
        var path = temp.File("trace.jsonl");
        await using (var writer = JsonlTraceWriter.Open(path, Metadata, new TraceWriterOptions { IncludeProbabilities = true }))
        {
            await writer.WriteSequenceAsync(0, [new RoutingTraceRow(0, 1, 42, "a\"b", 3, 0, 2, float.NaN, 0.5f, [0.25f, float.PositiveInfinity])]);
        }

        var line = (await File.ReadAllLinesAsync(path)).Single();
        Assert.Equal(
            "{\"sequence\":0,\"position\":1,\"token_id\":42,\"token\":\"a\\\"b\",\"layer\":3,\"rank\":0,\"expert\":2," +
            "\"weight\":null,\"score\":0.5,\"probs\":[0.25,null]}",
            line);
        var row = Assert.Single(await ReadAll(path));
        Assert.True(float.IsNaN(row.Weight));
    }

    [Fact]
    public async Task Jsonl_ReopenWithOtherSettings_IsRefused()
    {
        using var temp = new TempDirectory();
        var path = temp.File("trace.jsonl");
        await using (var writer = JsonlTraceWriter.Open(path, Metadata))
        {
            await writer.WriteSequenceAsync(0, MakeSequence(0, false));
        }

        var error = Assert.Throws<ExpertScopeException>(() => JsonlTraceWriter.Open(path, Metadata with { Architecture = "mixtral" }));
        Assert.Contains("architecture was 'olmoe', now 'mixtral'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WriteSequence_RejectsRowsOfAnotherSequenceAndStrayProbabilities()
    {
        using var temp = new TempDirectory();
        await using var writer = await ParquetTraceWriter.OpenAsync(temp.File("t.parquet"), Metadata);
        await Assert.ThrowsAsync<ArgumentException>(async () => await writer.WriteSequenceAsync(1, MakeSequence(0, false)));
        await Assert.ThrowsAsync<ArgumentException>(async () => await writer.WriteSequenceAsync(0, MakeSequence(0, true)));
    }

    [Fact]
    public async Task FileHash_Sha256_MatchesTheKnownDigest()
    {
        using var temp = new TempDirectory();
        var path = temp.File("abc.bin");
        await File.WriteAllTextAsync(path, "abc");
        // FIPS 180-2 test vector for "abc".
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", await FileHash.Sha256Async(path));
    }

    [Theory]
    [InlineData(new int[0], "")]
    [InlineData(new[] { 3 }, "3")]
    [InlineData(new[] { 5, 0, 1, 2, 9, 7, 8 }, "0-2,5,7-9")]
    public void SequenceRanges_FormatAndParseRoundTrip(int[] ids, string text)
    {
        Assert.Equal(text, SequenceRanges.Format(ids));
        Assert.True(SequenceRanges.TryParse(text, out var parsed));
        Assert.Equal(ids.Order(), parsed.Order());
    }
}
