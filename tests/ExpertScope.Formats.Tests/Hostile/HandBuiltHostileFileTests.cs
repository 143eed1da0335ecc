using System.Buffers.Binary;
using System.Text;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Testing;

namespace ExpertScope.Formats.Tests.Hostile;

/// <summary>Files built byte by byte to lie in one specific way each.</summary>
public class HandBuiltHostileFileTests
{
    private const ulong Huge = 1UL << 63;

    public static TheoryData<string> RefusedCases() => new(Cases.Where(c => !c.Value.Valid).Select(c => c.Key));

    public static TheoryData<string> AcceptedCases() => new(Cases.Where(c => c.Value.Valid).Select(c => c.Key));

    private static readonly Dictionary<string, (bool Valid, Func<byte[]> Build)> Cases = new()
    {
        // Header.
        ["empty file"] = (false, () => []),
        ["three bytes"] = (false, () => [0x47, 0x47, 0x55]),
        ["header cut at 23 bytes"] = (false, () => Header(0, 0).Bytes()[..23]),
        ["bad magic"] = (false, () => new Raw().U32(0x46554748).U32(3).U64(0).U64(0).Bytes()),
        ["version 0"] = (false, () => new Raw().U32(GgufFile.Magic).U32(0).U64(0).U64(0).Bytes()),
        ["version 1"] = (false, () => new Raw().U32(GgufFile.Magic).U32(1).U32(0).U32(0).U64(0).Bytes()),
        ["version 4"] = (false, () => new Raw().U32(GgufFile.Magic).U32(4).U64(0).U64(0).Bytes()),
        ["big-endian version 3"] = (false, () => new Raw().U32(GgufFile.Magic).U32BigEndian(3).U64BigEndian(1).U64BigEndian(1).Bytes()),
        ["2^63 tensors"] = (false, () => Header(Huge, 0).Pad(64).Bytes()),
        ["2^64-1 tensors"] = (false, () => Header(ulong.MaxValue, 0).Pad(64).Bytes()),
        ["2^63 key/values"] = (false, () => Header(0, Huge).Pad(64).Bytes()),
        ["2^64-1 key/values"] = (false, () => Header(0, ulong.MaxValue).Pad(64).Bytes()),
        ["key/value count one too many"] = (false, () => Header(0, 2).Str("a").U32(4).U32(1).Bytes()),
        ["tensor count one too many"] = (false, () => Header(2, 0).Tensor("a", [4], GgmlType.F32, 0).Pad(32).Zeros(16).Bytes()),

        // Strings.
        ["key length 2^63"] = (false, () => Header(0, 1).U64(Huge).Zeros(32).Bytes()),
        ["key length 2^64-1"] = (false, () => Header(0, 1).U64(ulong.MaxValue).Zeros(32).Bytes()),
        ["key length one past the end"] = (false, () => Header(0, 1).U64(5).Text("abcd").Bytes()),
        ["string value length 2^63"] = (false, () => Header(0, 1).Str("k").U32(8).U64(Huge).Zeros(16).Bytes()),
        ["key is not UTF-8"] = (false, () => Header(0, 1).U64(2).Bytes([0xC3, 0x28]).U32(4).U32(1).Bytes()),
        ["string value is not UTF-8"] = (false, () => Header(0, 1).Str("k").U32(8).U64(1).Bytes([0xFF]).Bytes()),
        ["tensor name length 2^63"] = (false, () => Header(1, 0).U64(Huge).Zeros(64).Bytes()),

        // Value types.
        ["unknown value type 13"] = (false, () => Header(0, 1).Str("k").U32(13).U32(0).Bytes()),
        ["unknown value type 2^32-1"] = (false, () => Header(0, 1).Str("k").U32(uint.MaxValue).U64(0).Bytes()),
        ["unknown array element type"] = (false, () => Header(0, 1).Str("k").U32(9).U32(13).U64(1).U64(0).Bytes()),
        ["bool value 2"] = (false, () => Header(0, 1).Str("k").U32(7).Bytes([2]).Bytes()),
        ["bool array element 7"] = (false, () => Header(0, 1).Str("k").U32(9).U32(7).U64(3).Bytes([1, 0, 7]).Bytes()),
        ["duplicate key"] = (false, () => Header(0, 2).Str("k").U32(4).U32(1).Str("k").U32(4).U32(2).Bytes()),
        ["value cut short"] = (false, () => Header(0, 1).Str("k").U32(12).U32(0).Bytes()),

        // Arrays.
        ["array of 2^63 bytes"] = (false, () => Header(0, 1).Str("k").U32(9).U32(0).U64(Huge).Zeros(64).Bytes()),
        ["array of 2^64-1 floats"] = (false, () => Header(0, 1).Str("k").U32(9).U32(6).U64(ulong.MaxValue).Zeros(64).Bytes()),
        ["array of 2^62 strings"] = (false, () => Header(0, 1).Str("k").U32(9).U32(8).U64(1UL << 62).Zeros(64).Bytes()),
        ["array of 2^40 arrays"] = (false, () => Header(0, 1).Str("k").U32(9).U32(9).U64(1UL << 40).Zeros(64).Bytes()),
        ["array of 2^31 doubles in a small file"] = (false, () => Header(0, 1).Str("k").U32(9).U32(12).U64(1UL << 31).Zeros(64).Bytes()),
        ["array count one too many"] = (false, () => Header(0, 1).Str("k").U32(9).U32(5).U64(3).U32(1).U32(2).Bytes()),
        ["string in array with length 2^63"] = (false, () => Header(0, 1).Str("k").U32(9).U32(8).U64(2).Str("ok").U64(Huge).Zeros(8).Bytes()),
        ["arrays nested 9 deep"] = (false, () => Nested(9)),
        ["arrays nested 100000 deep"] = (false, () => Nested(100_000)),
        ["nested array with 2^63 elements"] = (false, () => Header(0, 1).Str("k").U32(9).U32(9).U64(1).U32(0).U64(Huge).Zeros(32).Bytes()),

        // Alignment.
        ["alignment 0"] = (false, () => Header(0, 1).Str("general.alignment").U32(4).U32(0).Bytes()),
        ["alignment 24"] = (false, () => Header(0, 1).Str("general.alignment").U32(4).U32(24).Bytes()),
        ["alignment 2^31"] = (false, () => Header(0, 1).Str("general.alignment").U32(4).U32(1u << 31).Bytes()),
        ["alignment of type string"] = (false, () => Header(0, 1).Str("general.alignment").U32(8).Str("32").Bytes()),

        // Tensor infos.
        ["rank 5"] = (false, () => Header(1, 0).Str("t").U32(5).U64(1).U64(1).U64(1).U64(1).U64(1).U32(0).U64(0).Pad(32).Zeros(32).Bytes()),
        ["rank 2^32-1"] = (false, () => Header(1, 0).Str("t").U32(uint.MaxValue).Zeros(64).Bytes()),
        ["dimension 2^63"] = (false, () => Header(1, 0).Tensor("t", [Huge], GgmlType.F32, 0).Pad(32).Zeros(32).Bytes()),
        ["dimensions 2^32 x 2^32"] = (false, () => Header(1, 0).Tensor("t", [1UL << 32, 1UL << 32], GgmlType.F32, 0).Pad(32).Zeros(32).Bytes()),
        ["dimensions whose product overflows behind a zero"] = (false, () => Header(1, 0).Tensor("t", [0, 1UL << 40, 1UL << 40], GgmlType.F32, 0).Pad(32).Zeros(32).Bytes()),
        ["row bytes overflow"] = (false, () => Header(1, 0).Tensor("t", [(1UL << 62) + 1024], GgmlType.F32, 0).Pad(32).Zeros(32).Bytes()),
        ["q4_K row of 2^52 blocks"] = (false, () => Header(1, 0).Tensor("t", [256UL << 52], GgmlType.Q4_K, 0).Pad(32).Zeros(32).Bytes()),
        ["byte size overflows"] = (false, () => Header(1, 0).Tensor("t", [1UL << 30, 1UL << 31, 8], GgmlType.F32, 0).Pad(32).Zeros(32).Bytes()),
        ["ggml type 4 (retired)"] = (false, () => Header(1, 0).Tensor("t", [32], (GgmlType)4, 0).Pad(32).Zeros(64).Bytes()),
        ["ggml type 36"] = (false, () => Header(1, 0).Tensor("t", [32], (GgmlType)36, 0).Pad(32).Zeros(64).Bytes()),
        ["ggml type 2^32-1"] = (false, () => Header(1, 0).Tensor("t", [32], (GgmlType)uint.MaxValue, 0).Pad(32).Zeros(64).Bytes()),
        ["row not a whole number of blocks"] = (false, () => Header(1, 0).Tensor("t", [100], GgmlType.Q4_K, 0).Pad(32).Zeros(256).Bytes()),
        ["misaligned offset 1"] = (false, () => Header(2, 0).Tensor("a", [4], GgmlType.I8, 0).Tensor("b", [4], GgmlType.I8, 1).Pad(32).Zeros(64).Bytes()),
        ["misaligned offset 31"] = (false, () => Header(1, 0).Tensor("a", [1], GgmlType.I8, 31).Pad(32).Zeros(64).Bytes()),
        ["overlapping tensors"] = (false, () => Header(2, 0).Tensor("a", [16], GgmlType.F32, 0).Tensor("b", [16], GgmlType.F32, 32).Pad(32).Zeros(128).Bytes()),
        ["two tensors at one offset"] = (false, () => Header(2, 0).Tensor("a", [8], GgmlType.F32, 0).Tensor("b", [8], GgmlType.F32, 0).Pad(32).Zeros(64).Bytes()),
        ["duplicate tensor name"] = (false, () => Header(2, 0).Tensor("a", [8], GgmlType.F32, 0).Tensor("a", [8], GgmlType.F32, 32).Pad(32).Zeros(64).Bytes()),
        ["tensor offset 2^63"] = (false, () => Header(1, 0).Tensor("a", [8], GgmlType.F32, Huge).Pad(32).Zeros(64).Bytes()),
        ["tensor data past the end"] = (false, () => Header(1, 0).Tensor("a", [8], GgmlType.F32, 0).Pad(32).Zeros(31).Bytes()),
        ["tensor data section past the end"] = (false, () => Header(1, 0).Tensor("a", [0], GgmlType.F32, 0).Bytes()),
        ["header cut inside a tensor info"] = (false, () => Header(1, 0).Str("t").U32(2).U64(4).Bytes()),

        // Legal oddities that must open.
        ["no tensors, no metadata"] = (true, () => Header(0, 0).Bytes()),
        ["empty tensor"] = (true, () => Header(1, 0).Tensor("t", [0, 5], GgmlType.F32, 0).Pad(32).Bytes()),
        ["arrays nested 8 deep"] = (true, () => Nested(8)),
        ["empty key and empty string"] = (true, () => Header(0, 1).Str(string.Empty).U32(8).Str(string.Empty).Bytes()),
        ["array of 20000 empty strings"] = (true, () => Many(8, 20_000, 8)),
        ["array of 20000 empty arrays of arrays"] = (true, () => Many(9, 20_000, 12, [9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
        ["5000 one-byte key/values"] = (true, ManySmallKeys),
        ["20000 empty tensors"] = (true, ManyEmptyTensors),
        ["every value type"] = (true, EveryValueType),
        ["alignment 1 with packed tensors"] = (true, () => new Raw().U32(GgufFile.Magic).U32(3).U64(2).U64(1).Str("general.alignment").U32(4).U32(1)
            .Tensor("a", [3], GgmlType.I8, 0).Tensor("b", [1], GgmlType.I8, 3).Zeros(4).Bytes()),
    };

    [Theory]
    [MemberData(nameof(RefusedCases))]
    public void IsRefusedWithAFormatError(string name)
    {
        using var temp = new TempDirectory();
        string path = temp.File("hostile.gguf");
        File.WriteAllBytes(path, Cases[name].Build());
        if (new FileInfo(path).Length < 24)
        {
            var e = Assert.Throws<GgufFormatException>(() => GgufFile.Open(path));
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            return;
        }

        Assert.Equal(ReadOutcome.Refused, HostileRead.Check(path, name));
    }

    [Theory]
    [MemberData(nameof(AcceptedCases))]
    public void OpensWithinBounds(string name)
    {
        using var temp = new TempDirectory();
        string path = temp.File("odd.gguf");
        File.WriteAllBytes(path, Cases[name].Build());
        Assert.Equal(ReadOutcome.Opened, HostileRead.Check(path, name));
    }

    [Fact]
    public void VersionAndEndiannessErrorsSayWhatIsWrong()
    {
        using var temp = new TempDirectory();
        string path = temp.File("v.gguf");
        File.WriteAllBytes(path, Cases["big-endian version 3"].Build());
        var e = Assert.Throws<GgufFormatException>(() => GgufFile.Open(path));
        Assert.Equal(4, e.Offset);
        Assert.Contains("big-endian", e.Message, StringComparison.Ordinal);

        File.WriteAllBytes(path, Cases["version 1"].Build());
        e = Assert.Throws<GgufFormatException>(() => GgufFile.Open(path));
        Assert.Contains("version 1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheAllocationCheckSeesWhatParsingAllocates()
    {
        // Guards the guard: 508 token strings and 250 merges must register, or the bound above checks nothing.
        string path = GoldenData.GoldenPath("models", "mixtral", "model.gguf");
        long allocated = HostileRead.AllocatedWhileReading(path);
        Assert.InRange(allocated, (508 + 250) * 24, HostileRead.AllocationPerFileByte * new FileInfo(path).Length);
    }

    [Fact]
    public void AMissingFileIsFileNotFound()
    {
        using var temp = new TempDirectory();
        Assert.Throws<FileNotFoundException>(() => GgufFile.Open(temp.File("absent.gguf")));
    }

    private static Raw Header(ulong tensors, ulong keyValues) => new Raw().U32(GgufFile.Magic).U32(3).U64(tensors).U64(keyValues);

    private static byte[] Nested(int depth)
    {
        var raw = Header(0, 1).Str("k").U32(9);
        for (int i = 0; i < depth - 1; i++)
        {
            raw.U32(9).U64(1);
        }

        return raw.U32(4).U64(1).U32(7).Bytes();
    }

    private static byte[] Many(uint elementType, int count, int elementBytes, byte[]? element = null)
    {
        var raw = Header(0, 1).Str("k").U32(9).U32(elementType).U64((ulong)count);
        element ??= new byte[elementBytes];
        for (int i = 0; i < count; i++)
        {
            raw.Bytes(element);
        }

        return raw.Bytes();
    }

    private static byte[] ManySmallKeys()
    {
        const int count = 5000;
        var raw = Header(0, count);
        for (int i = 0; i < count; i++)
        {
            raw.Str(i.ToString("x4", System.Globalization.CultureInfo.InvariantCulture)).U32(0).Bytes([1]);
        }

        return raw.Bytes();
    }

    private static byte[] ManyEmptyTensors()
    {
        const int count = 20_000;
        var raw = Header(count, 0);
        for (int i = 0; i < count; i++)
        {
            raw.Str(i.ToString("x4", System.Globalization.CultureInfo.InvariantCulture)).U32(1).U64(0).U32((uint)GgmlType.F32).U64(0);
        }

        return raw.Pad(32).Bytes();
    }

    private static byte[] EveryValueType()
    {
        var raw = Header(1, 13);
        raw.Str("u8").U32(0).Bytes([1]).Str("i8").U32(1).Bytes([0xFF]).Str("u16").U32(2).Bytes([1, 2]).Str("i16").U32(3).Bytes([1, 0x80]);
        raw.Str("u32").U32(4).U32(7).Str("i32").U32(5).U32(uint.MaxValue).Str("f32").U32(6).U32(0x3F800000).Str("bool").U32(7).Bytes([1]);
        raw.Str("str").U32(8).Str("s").Str("arr").U32(9).U32(4).U64(2).U32(1).U32(2);
        raw.Str("u64").U32(10).U64(ulong.MaxValue).Str("i64").U32(11).U64(Huge).Str("f64").U32(12).U64(0x3FF0000000000000);
        return raw.Tensor("t", [32, 2], GgmlType.Q8_0, 0).Pad(32).Zeros(68).Pad(32).Bytes();
    }

    /// <summary>Little-endian byte builder for hand-made headers.</summary>
    private sealed class Raw
    {
        private readonly MemoryStream _stream = new();

        public Raw U32(uint value)
        {
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(b, value);
            _stream.Write(b);
            return this;
        }

        public Raw U64(ulong value)
        {
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(b, value);
            _stream.Write(b);
            return this;
        }

        public Raw U32BigEndian(uint value)
        {
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(b, value);
            _stream.Write(b);
            return this;
        }

        public Raw U64BigEndian(ulong value)
        {
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(b, value);
            _stream.Write(b);
            return this;
        }

        public Raw Str(string text)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(text);
            return U64((ulong)bytes.Length).Bytes(bytes);
        }

        public Raw Text(string text) => Bytes(Encoding.UTF8.GetBytes(text));

        public Raw Bytes(byte[] bytes)
        {
            _stream.Write(bytes);
            return this;
        }

        public Raw Zeros(int count) => Bytes(new byte[count]);

        public Raw Pad(int alignment) => Zeros((int)((alignment - (_stream.Length % alignment)) % alignment));

        public Raw Tensor(string name, ulong[] dimensions, GgmlType type, ulong offset)
        {
            Str(name).U32((uint)dimensions.Length);
            foreach (ulong d in dimensions)
            {
                U64(d);
            }

            return U32((uint)type).U64(offset);
        }

        public byte[] Bytes() => _stream.ToArray();
    }
}
