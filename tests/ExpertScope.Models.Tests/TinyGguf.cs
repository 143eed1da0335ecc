using System.Text;

namespace ExpertScope.Models.Tests;

/// <summary>Writes minimal GGUF v3 files (scalar metadata, float32 tensors) for loader error tests.</summary>
internal sealed class TinyGguf
{
    private const int Alignment = 32;
    private readonly List<(string Key, object Value)> _metadata = [];
    private readonly List<(string Name, long[] Dimensions, float[] Values)> _tensors = [];

    public TinyGguf Set(string key, object value)
    {
        _metadata.Add((key, value));
        return this;
    }

    /// <summary>Adds a float32 tensor; <paramref name="dimensions"/> in ggml <c>ne</c> order, filled with a seeded pattern.</summary>
    public TinyGguf Tensor(string name, params long[] dimensions)
    {
        long count = dimensions.Aggregate(1L, (a, b) => a * b);
        var random = new Random(20260124 + _tensors.Count);
        _tensors.Add((name, dimensions, [.. Enumerable.Range(0, (int)count).Select(_ => (float)(random.NextDouble() - 0.5) * 0.2f)]));
        return this;
    }

    public void Write(string path)
    {
        using var stream = File.Create(path);
        using var writer = new BinaryWriter(stream, Encoding.UTF8);
        writer.Write(0x46554747u);
        writer.Write(3u);
        writer.Write((ulong)_tensors.Count);
        writer.Write((ulong)_metadata.Count);
        foreach (var (key, value) in _metadata)
        {
            WriteString(writer, key);
            switch (value)
            {
                case int i:
                    writer.Write(4u);
                    writer.Write((uint)i);
                    break;
                case float f:
                    writer.Write(6u);
                    writer.Write(f);
                    break;
                case bool b:
                    writer.Write(7u);
                    writer.Write(b ? (byte)1 : (byte)0);
                    break;
                case string s:
                    writer.Write(8u);
                    WriteString(writer, s);
                    break;
                default:
                    throw new ArgumentException($"unsupported metadata value {value}");
            }
        }

        long offset = 0;
        foreach (var (name, dimensions, values) in _tensors)
        {
            WriteString(writer, name);
            writer.Write((uint)dimensions.Length);
            foreach (long d in dimensions)
            {
                writer.Write((ulong)d);
            }

            writer.Write(0u);
            writer.Write((ulong)offset);
            offset = Align(offset + values.Length * 4L);
        }

        Pad(writer);
        foreach (var (_, _, values) in _tensors)
        {
            foreach (float v in values)
            {
                writer.Write(v);
            }

            Pad(writer);
        }
    }

    private static long Align(long value) => (value + Alignment - 1) / Alignment * Alignment;

    private static void Pad(BinaryWriter writer)
    {
        writer.Flush();
        long padding = Align(writer.BaseStream.Position) - writer.BaseStream.Position;
        writer.Write(new byte[padding]);
    }

    private static void WriteString(BinaryWriter writer, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        writer.Write((ulong)bytes.Length);
        writer.Write(bytes);
    }
}
