using System.Text;
using ExpertScope.Formats.Gguf;

namespace ExpertScope.Formats.Tests.Hostile;

/// <summary>One fixed-width field of a GGUF header: where it is and what it holds.</summary>
internal readonly record struct HeaderField(long Offset, int Width, string Name);

/// <summary>
/// Where every section and field of a valid GGUF file lies, recomputed from what <see cref="GgufFile"/> read
/// (the format is a sequence of self-delimiting fields, so sizes follow from values).
/// </summary>
internal sealed class GgufLayout
{
    private GgufLayout(List<long> boundaries, List<HeaderField> fields, long headerEnd, long dataOffset, long dataEnd, List<long> tensorStarts, List<long> tensorMiddles)
    {
        Boundaries = boundaries;
        Fields = fields;
        HeaderEnd = headerEnd;
        DataOffset = dataOffset;
        DataEnd = dataEnd;
        TensorStarts = tensorStarts;
        TensorMiddles = tensorMiddles;
    }

    /// <summary>Start of each section: magic, version, counts, each key/value (and its type and value), each tensor info, data.</summary>
    public IReadOnlyList<long> Boundaries { get; }

    /// <summary>Every count, length, type tag, dimension and offset field in the header.</summary>
    public IReadOnlyList<HeaderField> Fields { get; }

    /// <summary>End of the last tensor info (before the alignment padding).</summary>
    public long HeaderEnd { get; }

    /// <summary>Start of the tensor data section.</summary>
    public long DataOffset { get; }

    /// <summary>End of the last tensor's bytes.</summary>
    public long DataEnd { get; }

    public IReadOnlyList<long> TensorStarts { get; }

    public IReadOnlyList<long> TensorMiddles { get; }

    public static GgufLayout Of(GgufFile file)
    {
        var boundaries = new List<long> { 0, 4, 8, 16 };
        var fields = new List<HeaderField> { new(0, 4, "magic"), new(4, 4, "version"), new(8, 8, "tensor count"), new(16, 8, "kv count") };
        long at = 24;
        foreach (var (key, value) in file.Metadata)
        {
            boundaries.Add(at);
            fields.Add(new(at, 8, $"key length of {key}"));
            at += 8 + Encoding.UTF8.GetByteCount(key);
            boundaries.Add(at);
            fields.Add(new(at, 4, $"type of {key}"));
            at += 4;
            boundaries.Add(at);
            at = Value(value.Type, value.Value, at, key, fields);
        }

        foreach (var tensor in file.Tensors)
        {
            boundaries.Add(at);
            fields.Add(new(at, 8, $"name length of {tensor.Name}"));
            at += 8 + Encoding.UTF8.GetByteCount(tensor.Name);
            fields.Add(new(at, 4, $"rank of {tensor.Name}"));
            at += 4;
            for (int d = 0; d < tensor.Dimensions.Length; d++)
            {
                fields.Add(new(at, 8, $"ne[{d}] of {tensor.Name}"));
                at += 8;
            }

            fields.Add(new(at, 4, $"type of {tensor.Name}"));
            at += 4;
            fields.Add(new(at, 8, $"offset of {tensor.Name}"));
            at += 8;
        }

        long headerEnd = at;
        boundaries.Add(headerEnd);
        boundaries.Add(file.DataOffset);
        var starts = file.Tensors.Select(t => t.FileOffset).ToList();
        var middles = file.Tensors.Where(t => t.ByteSize > 1).Select(t => t.FileOffset + (t.ByteSize / 2)).ToList();
        long dataEnd = file.Tensors.Count == 0 ? file.DataOffset : file.Tensors.Max(t => t.FileOffset + t.ByteSize);
        return new GgufLayout(boundaries.Distinct().Order().ToList(), fields, headerEnd, file.DataOffset, dataEnd, starts, middles);
    }

    private static long Value(GgufValueType type, object value, long at, string key, List<HeaderField> fields)
    {
        switch (type)
        {
            case GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool: return at + 1;
            case GgufValueType.UInt16 or GgufValueType.Int16: return at + 2;
            case GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32: return at + 4;
            case GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64: return at + 8;
            case GgufValueType.String:
                fields.Add(new(at, 8, $"string length in {key}"));
                return at + 8 + Encoding.UTF8.GetByteCount((string)value);
            case GgufValueType.Array:
            {
                var array = (GgufArray)value;
                fields.Add(new(at, 4, $"element type of {key}"));
                fields.Add(new(at + 4, 8, $"array count of {key}"));
                at += 12;

                // Only the first few elements' fields: a 508-token vocabulary would swamp the sample.
                int index = 0;
                foreach (object? item in array.Items)
                {
                    var sink = index++ < 4 ? fields : [];
                    at = Value(array.ElementType, item!, at, key, sink);
                }

                return at;
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(type));
        }
    }
}
