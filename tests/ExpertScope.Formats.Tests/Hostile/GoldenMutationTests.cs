using System.Buffers.Binary;
using ExpertScope.Formats.Gguf;
using ExpertScope.Testing;
using Microsoft.Win32.SafeHandles;

namespace ExpertScope.Formats.Tests.Hostile;

/// <summary>Truncated and bit-flipped copies of the golden models: the reader opens them or refuses them cleanly.</summary>
public class GoldenMutationTests
{
    private const int RandomFlipsPerModel = 400;
    private const int RandomTruncationsPerModel = 60;
    private const int TargetedFieldsPerModel = 60;

    public static TheoryData<string> GoldenModels() => GgufWriterTests.GoldenModels();

    [Theory]
    [MemberData(nameof(GoldenModels))]
    public void LayoutWalkerAgreesWithTheReader(string model)
    {
        using var file = GgufFile.Open(ModelPath(model));
        var layout = GgufLayout.Of(file);
        Assert.Equal(file.DataOffset, (layout.HeaderEnd + file.Alignment - 1) / file.Alignment * file.Alignment);
        Assert.Equal(file.Length, (layout.DataEnd + file.Alignment - 1) / file.Alignment * file.Alignment);
    }

    [Theory]
    [MemberData(nameof(GoldenModels))]
    public void TruncationAtEverySectionBoundaryIsRefused(string model)
    {
        string source = ModelPath(model);
        GgufLayout layout;
        long length;
        using (var file = GgufFile.Open(source))
        {
            layout = GgufLayout.Of(file);
            length = file.Length;
        }

        var random = new Random(HashCode(model));
        var cuts = new SortedSet<long>();
        foreach (long b in layout.Boundaries.Concat(layout.TensorStarts).Concat(layout.TensorMiddles))
        {
            cuts.UnionWith([b - 1, b, b + 1]);
        }

        for (int i = 0; i < RandomTruncationsPerModel; i++)
        {
            cuts.Add(random.NextInt64(0, layout.HeaderEnd));
            cuts.Add(random.NextInt64(layout.DataOffset, length));
        }

        cuts.Add(layout.DataEnd - 1);
        cuts.Add(length - 1);
        cuts.RemoveWhere(c => c < 0 || c >= length);

        using var temp = new TempDirectory();
        string path = temp.File("truncated.gguf");
        File.Copy(source, path);

        // Longest first: each cut only shortens the same copy.
        foreach (long cut in cuts.Reverse())
        {
            using (var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite))
            {
                RandomAccess.SetLength(handle, cut);
            }

            var outcome = HostileRead.Check(path, $"{model} truncated to {cut} bytes");
            if (cut < layout.DataEnd)
            {
                Assert.True(outcome == ReadOutcome.Refused, $"{model} truncated to {cut} bytes (data ends at {layout.DataEnd}) was accepted");
            }
        }
    }

    [Theory]
    [MemberData(nameof(GoldenModels))]
    public void RandomByteFlipsInTheHeaderAreSurvived(string model)
    {
        string source = ModelPath(model);
        GgufLayout layout;
        using (var file = GgufFile.Open(source))
        {
            layout = GgufLayout.Of(file);
        }

        using var temp = new TempDirectory();
        string path = temp.File("flipped.gguf");
        File.Copy(source, path);
        var random = new Random(HashCode(model) ^ 0x5EED);
        int refused = 0;
        for (int i = 0; i < RandomFlipsPerModel; i++)
        {
            // Mostly header bytes, a few in the data, where a flip must always be harmless.
            bool inData = i % 25 == 0;
            long offset = inData ? random.NextInt64(layout.DataOffset, layout.DataEnd) : random.NextInt64(0, layout.HeaderEnd);
            byte mask = (byte)random.Next(1, 256);
            var outcome = WithPatch(path, offset, original => [(byte)(original[0] ^ mask)], 1, $"{model} byte {offset} ^= 0x{mask:X2}");
            if (inData)
            {
                Assert.Equal(ReadOutcome.Opened, outcome);
            }

            refused += outcome == ReadOutcome.Refused ? 1 : 0;
        }

        // Most header bytes are string contents, where flips can be harmless; but many must be caught.
        Assert.InRange(refused, RandomFlipsPerModel / 20, RandomFlipsPerModel);
    }

    [Theory]
    [MemberData(nameof(GoldenModels))]
    public void ExtremeValuesInCountLengthTypeDimensionAndOffsetFieldsAreSurvived(string model)
    {
        string source = ModelPath(model);
        GgufLayout layout;
        long length;
        using (var file = GgufFile.Open(source))
        {
            layout = GgufLayout.Of(file);
            length = file.Length;
        }

        using var temp = new TempDirectory();
        string path = temp.File("extreme.gguf");
        File.Copy(source, path);
        var random = new Random(HashCode(model) ^ 0xF1E1D);
        var fields = layout.Fields.Take(4).Concat(layout.Fields.Skip(4).OrderBy(_ => random.Next()).Take(TargetedFieldsPerModel)).ToList();
        foreach (var field in fields)
        {
            ulong[] values = field.Width == 8
                ? [0, 1, 13, 1UL << 31, 1UL << 32, 1UL << 62, 1UL << 63, ulong.MaxValue, (ulong)length, (ulong)length + 1]
                : [0, 1, 13, 31, 1000, 0x7FFFFFFF, 0x80000000, uint.MaxValue];
            foreach (ulong value in values)
            {
                WithPatch(path, field.Offset, original =>
                {
                    byte[] patched = new byte[field.Width];
                    if (field.Width == 8)
                    {
                        BinaryPrimitives.WriteUInt64LittleEndian(patched, value);
                    }
                    else
                    {
                        BinaryPrimitives.WriteUInt32LittleEndian(patched, (uint)value);
                    }

                    return patched;
                }, field.Width, $"{model} {field.Name} (byte {field.Offset}) = {value}");
            }

            // Off by one from the true value: the subtlest lie a length can tell.
            WithPatch(path, field.Offset, original =>
            {
                byte[] patched = (byte[])original.Clone();
                if (field.Width == 8)
                {
                    BinaryPrimitives.WriteUInt64LittleEndian(patched, BinaryPrimitives.ReadUInt64LittleEndian(original) + 1);
                }
                else
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(patched, BinaryPrimitives.ReadUInt32LittleEndian(original) + 1);
                }

                return patched;
            }, field.Width, $"{model} {field.Name} (byte {field.Offset}) + 1");
        }
    }

    private static ReadOutcome WithPatch(string path, long offset, Func<byte[], byte[]> patch, int width, string what)
    {
        byte[] original = new byte[width];
        using (SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite))
        {
            RandomAccess.Read(handle, original, offset);
            RandomAccess.Write(handle, patch(original), offset);
        }

        try
        {
            return HostileRead.Check(path, what);
        }
        finally
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
            RandomAccess.Write(handle, original, offset);
        }
    }

    private static string ModelPath(string model) => GoldenData.GoldenPath("models", model, "model.gguf");

    // string.GetHashCode is randomized per process; the seed must not be.
    private static int HashCode(string text) => text.Aggregate(17, (h, c) => unchecked((h * 31) + c));
}
