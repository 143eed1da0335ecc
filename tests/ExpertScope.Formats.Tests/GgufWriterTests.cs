using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Testing;

namespace ExpertScope.Formats.Tests;

public class GgufWriterTests
{
    public static TheoryData<string> GoldenModels()
    {
        var data = new TheoryData<string>();
        foreach (var dir in Directory.EnumerateDirectories(GoldenData.GoldenPath("models")).Order(StringComparer.Ordinal))
        {
            if (File.Exists(Path.Combine(dir, "model.gguf")))
            {
                data.Add(Path.GetFileName(dir));
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(GoldenModels))]
    public void RebuildingAGoldenModelFromWhatWasReadIsByteIdentical(string model)
    {
        string path = GoldenData.GoldenPath("models", model, "model.gguf");
        using var source = GgufFile.Open(path);
        using var output = new MemoryStream();
        using (var writer = new GgufWriter(output, leaveOpen: true))
        {
            foreach (var (key, value) in source.Metadata)
            {
                writer.SetMetadata(key, value);
            }

            foreach (var tensor in source.Tensors)
            {
                Assert.Equal(tensor.ByteSize, writer.AddTensor(tensor.Name, tensor.Type, tensor.Dimensions));
            }

            foreach (var tensor in source.Tensors)
            {
                writer.WriteTensorData(source.GetTensorData(tensor));
            }

            writer.Finish();
            Assert.Equal(output.Length, writer.BytesWritten);
        }

        byte[] original = File.ReadAllBytes(path);
        byte[] rebuilt = output.ToArray();
        Assert.Equal(original.Length, rebuilt.Length);
        int firstDifference = original.AsSpan().CommonPrefixLength(rebuilt);
        Assert.True(firstDifference == original.Length, $"{model}: first difference at byte {firstDifference}");
    }

    [Fact]
    public void CallbackDataIsTheSameAsSpanData()
    {
        string path = GoldenData.GoldenPath("models", "olmoe-q8_0", "model.gguf");
        using var source = GgufFile.Open(path);
        using var output = new MemoryStream();
        using (var writer = new GgufWriter(output, leaveOpen: true))
        {
            foreach (var (key, value) in source.Metadata)
            {
                writer.SetMetadata(key, value);
            }

            foreach (var tensor in source.Tensors)
            {
                writer.AddTensor(tensor.Name, tensor.Type, tensor.Dimensions);
            }

            foreach (var tensor in source.Tensors)
            {
                // Odd-sized pieces, as a converter producing a tensor row by row would write them.
                writer.WriteTensorData(stream =>
                {
                    for (long at = 0; at < tensor.ByteSize; at += 1000)
                    {
                        stream.Write(source.GetTensorData(tensor, at, (int)Math.Min(1000, tensor.ByteSize - at)));
                    }
                });
            }

            writer.Finish();
        }

        Assert.True(File.ReadAllBytes(path).AsSpan().SequenceEqual(output.ToArray()));
    }

    public static TheoryData<string, GgufValue> EveryValueType() => new()
    {
        { "u8", GgufValue.Create((byte)200) },
        { "i8", GgufValue.Create((sbyte)-100) },
        { "u16", GgufValue.Create((ushort)65000) },
        { "i16", GgufValue.Create((short)-32000) },
        { "u32", GgufValue.Create(4_000_000_000u) },
        { "i32", GgufValue.Create(-2_000_000_000) },
        { "f32", GgufValue.Create(-1.5e-7f) },
        { "f32.nan", GgufValue.Create(float.NaN) },
        { "bool.true", GgufValue.Create(true) },
        { "bool.false", GgufValue.Create(false) },
        { "string", GgufValue.Create("héllo ✓ 𝄞") },
        { "string.empty", GgufValue.Create(string.Empty) },
        { "u64", GgufValue.Create(ulong.MaxValue) },
        { "i64", GgufValue.Create(long.MinValue) },
        { "f64", GgufValue.Create(Math.PI) },
        { "array.u8", GgufValue.CreateArray<byte>(0, 1, 255) },
        { "array.i8", GgufValue.CreateArray<sbyte>(-128, 0, 127) },
        { "array.u16", GgufValue.CreateArray<ushort>(1, 65535) },
        { "array.i16", GgufValue.CreateArray<short>(-1, 2) },
        { "array.u32", GgufValue.CreateArray<uint>(7, uint.MaxValue) },
        { "array.i32", GgufValue.CreateArray(1, -2, 3) },
        { "array.f32", GgufValue.CreateArray(0.5f, float.NegativeInfinity) },
        { "array.bool", GgufValue.CreateArray(true, false, true) },
        { "array.string", GgufValue.CreateArray("a", string.Empty, "ĠΩ") },
        { "array.u64", GgufValue.CreateArray<ulong>(0, ulong.MaxValue) },
        { "array.i64", GgufValue.CreateArray<long>(long.MinValue, 5) },
        { "array.f64", GgufValue.CreateArray(1e300, -0.0) },
        { "array.empty", GgufValue.CreateArray<float>() },
        {
            "array.nested", GgufValue.CreateArray(
                GgufArray.Create(new[] { 1, 2 }),
                GgufArray.Create(new[] { GgufArray.Create(new[] { "deep" }), GgufArray.Create(Array.Empty<bool>()) }),
                GgufArray.Create(Array.Empty<GgufArray>()))
        },
    };

    [Theory]
    [MemberData(nameof(EveryValueType))]
    public void EveryValueTypeRoundTrips(string key, GgufValue value)
    {
        using var temp = new TempDirectory();
        string path = temp.File("value.gguf");
        using (var writer = GgufWriter.Create(path))
        {
            writer.SetMetadata("general.architecture", GgufValue.Create("test"));
            writer.SetMetadata(key, value);
            writer.AddTensor("t", GgmlType.F32, [3]);
            writer.WriteTensorData(new byte[12]);
            writer.Finish();
        }

        using var file = GgufFile.Open(path);
        Assert.Equal(["general.architecture", key], file.Metadata.Keys);
        AssertSameValue(value, file.Metadata[key]);
    }

    [Theory]
    [InlineData(1u)]
    [InlineData(8u)]
    [InlineData(32u)]
    [InlineData(64u)]
    [InlineData(4096u)]
    public void AlignmentIsHonouredWithZeroPadding(uint alignment)
    {
        using var temp = new TempDirectory();
        string path = temp.File("aligned.gguf");
        byte[][] data = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], Enumerable.Repeat((byte)0xAB, 34 * 3).ToArray(), [42, 42, 42, 42]];
        using (var writer = GgufWriter.Create(path))
        {
            writer.SetMetadata("general.alignment", GgufValue.Create(alignment));
            writer.AddTensor("a", GgmlType.I8, [10]);
            writer.AddTensor("b", GgmlType.Q8_0, [32, 3]);
            writer.AddTensor("c", GgmlType.F32, [1, 1, 1, 1]);
            foreach (var bytes in data)
            {
                writer.WriteTensorData(bytes);
            }

            writer.Finish();
        }

        byte[] raw = File.ReadAllBytes(path);
        using var file = GgufFile.Open(path);
        Assert.Equal((int)alignment, file.Alignment);
        Assert.Equal(0, file.DataOffset % alignment);
        Assert.Equal(0, raw.Length % alignment);
        long expectedEnd = file.DataOffset;
        for (int i = 0; i < data.Length; i++)
        {
            var tensor = file.Tensors[i];
            Assert.Equal(0, tensor.FileOffset % alignment);
            Assert.Equal(expectedEnd, tensor.FileOffset);
            Assert.True(file.GetTensorData(tensor).SequenceEqual(data[i]));
            expectedEnd = tensor.FileOffset + (tensor.ByteSize + alignment - 1) / alignment * alignment;

            // Padding after the data is zero.
            Assert.All(raw[(int)(tensor.FileOffset + tensor.ByteSize)..(int)expectedEnd], b => Assert.Equal(0, b));
        }

        Assert.Equal(expectedEnd, raw.Length);
    }

    [Fact]
    public void AFileWithoutTensorsIsValid()
    {
        using var temp = new TempDirectory();
        string path = temp.File("empty.gguf");
        using (var writer = GgufWriter.Create(path))
        {
            writer.SetMetadata("general.architecture", GgufValue.Create("none"));
            writer.Finish();
        }

        using var file = GgufFile.Open(path);
        Assert.Empty(file.Tensors);
        Assert.Equal("none", file.Architecture);
    }

    [Fact]
    public void SettingAKeyTwiceKeepsItsPosition()
    {
        using var writer = new GgufWriter(Stream.Null);
        writer.SetMetadata("a", GgufValue.Create(1));
        writer.SetMetadata("b", GgufValue.Create(2));
        writer.SetMetadata("a", GgufValue.Create(3));
        Assert.Equal(["a", "b"], writer.Metadata.Select(kv => kv.Key));
        Assert.Equal(3, writer.Metadata[0].Value.Value);
    }

    [Fact]
    public void MisuseIsRefused()
    {
        using var writer = new GgufWriter(Stream.Null);
        Assert.Throws<ArgumentException>(() => writer.SetMetadata("x", new GgufValue(GgufValueType.UInt32, 5)));
        Assert.Throws<ArgumentException>(() => writer.SetMetadata("x", new GgufValue(GgufValueType.Array, new GgufArray(GgufValueType.Int32, new float[1]))));
        Assert.Throws<ArgumentException>(() => writer.SetMetadata("general.alignment", GgufValue.Create(24u)));
        Assert.Throws<ArgumentException>(() => writer.SetMetadata("general.alignment", GgufValue.Create(32)));
        Assert.Throws<ArgumentException>(() => writer.SetMetadata("bad", GgufValue.Create("\ud800")));
        Assert.Throws<ArgumentException>(() => writer.AddTensor(new string('n', 64), GgmlType.F32, [1]));
        Assert.Throws<ArgumentException>(() => writer.AddTensor("q", GgmlType.Q4_K, [100]));
        Assert.Throws<ArgumentException>(() => writer.AddTensor("r", GgmlType.F32, [1, 1, 1, 1, 1]));
        Assert.Throws<ArgumentException>(() => writer.AddTensor("s", GgmlType.F32, [-1]));
        Assert.Throws<ArgumentException>(() => writer.AddTensor("o", GgmlType.F32, [long.MaxValue / 2, 4]));
        writer.AddTensor("t", GgmlType.F32, [2]);
        Assert.Throws<ArgumentException>(() => writer.AddTensor("t", GgmlType.F32, [2]));
        Assert.Throws<InvalidOperationException>(() => writer.WriteTensorData(new byte[7]));
        Assert.Throws<InvalidOperationException>(() => writer.SetMetadata("late", GgufValue.Create(1)));
        Assert.Throws<InvalidOperationException>(() => writer.Finish());
        Assert.Throws<InvalidOperationException>(() => writer.WriteTensorData(s => s.Write(new byte[9])));
    }

    [Fact]
    public void TensorsLargerThanTwoGigabytesStreamThroughWithoutBeingHeld()
    {
        // 2.5 GiB of f16 produced in 1 MiB pieces into a sink: offsets are 64-bit and nothing is buffered.
        const long elements = 1_342_177_280;
        var sink = new CountingStream();
        using var writer = new GgufWriter(sink);
        writer.SetMetadata("general.architecture", GgufValue.Create("big"));
        long size = writer.AddTensor("huge", GgmlType.F16, [elements / 1024, 1024]);
        writer.AddTensor("tail", GgmlType.F32, [5]);
        byte[] piece = new byte[1 << 20];
        long before = GC.GetAllocatedBytesForCurrentThread();
        writer.WriteTensorData(stream =>
        {
            for (long left = size; left > 0; left -= piece.Length)
            {
                stream.Write(piece, 0, (int)Math.Min(left, piece.Length));
            }
        });
        writer.WriteTensorData(new byte[20]);
        writer.Finish();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(elements * 2, size);
        Assert.Equal(sink.Length, writer.BytesWritten);
        Assert.True(sink.Length > size + 32 && sink.Length % 32 == 0);
        Assert.True(allocated < 1 << 20, $"allocated {allocated} bytes");
    }

    internal static void AssertSameValue(GgufValue expected, GgufValue actual)
    {
        Assert.Equal(expected.Type, actual.Type);
        if (expected.Value is GgufArray expectedArray)
        {
            AssertSameArray(expectedArray, Assert.IsType<GgufArray>(actual.Value));
        }
        else
        {
            Assert.Equal(expected.Value, actual.Value);
        }
    }

    private static void AssertSameArray(GgufArray expected, GgufArray actual)
    {
        Assert.Equal(expected.ElementType, actual.ElementType);
        Assert.Equal(expected.Items.GetType(), actual.Items.GetType());
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            if (expected.Items.GetValue(i) is GgufArray nested)
            {
                AssertSameArray(nested, (GgufArray)actual.Items.GetValue(i)!);
            }
            else
            {
                Assert.Equal(expected.Items.GetValue(i), actual.Items.GetValue(i));
            }
        }
    }

    private sealed class CountingStream : Stream
    {
        private long _length;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => _length;

        public override long Position
        {
            get => _length;
            set => throw new NotSupportedException();
        }

        public override void Write(byte[] buffer, int offset, int count) => _length += count;

        public override void Write(ReadOnlySpan<byte> buffer) => _length += buffer.Length;

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
