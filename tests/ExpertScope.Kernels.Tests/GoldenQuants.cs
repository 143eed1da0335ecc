using System.Runtime.InteropServices;
using System.Text.Json;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Testing;

namespace ExpertScope.Kernels.Tests;

/// <summary>Access to ../shared/golden/quants: one tensor per type quantized by ggml, its source floats and ggml's dequantization.</summary>
internal static class GoldenQuants
{
    private static readonly Lazy<IReadOnlyList<Entry>> LazyEntries = new(Load);

    public static IReadOnlyList<Entry> Entries => LazyEntries.Value;

    public static Entry Get(string typeName) => Entries.Single(entry => entry.TypeName == typeName);

    /// <summary>Every type name in quants.json, for [MemberData].</summary>
    public static TheoryData<string> TypeNames()
    {
        var data = new TheoryData<string>();
        foreach (var entry in Entries)
        {
            data.Add(entry.TypeName);
        }

        return data;
    }

    private static IReadOnlyList<Entry> Load()
    {
        string folder = GoldenData.GoldenPath("quants");
        using var json = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, "quants.json")));
        using var gguf = GgufFile.Open(Path.Combine(folder, json.RootElement.GetProperty("file").GetString()!));
        var entries = new List<Entry>();
        foreach (var item in json.RootElement.GetProperty("types").EnumerateArray())
        {
            var tensor = gguf.GetTensor(item.GetProperty("tensor").GetString()!);
            var shape = item.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            entries.Add(new Entry(
                item.GetProperty("type").GetString()!,
                (GgmlType)item.GetProperty("ggml_type_id").GetUInt32(),
                item.GetProperty("block_size").GetInt32(),
                item.GetProperty("type_size").GetInt32(),
                tensor.Type,
                shape[0],
                shape[1],
                gguf.GetTensorData(tensor).ToArray(),
                ReadFloats(Path.Combine(folder, item.GetProperty("expected").GetString()!)),
                ReadFloats(Path.Combine(folder, item.GetProperty("quantized_from").GetString()!))));
        }

        return entries;
    }

    private static float[] ReadFloats(string path) => MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(path)).ToArray();

    /// <param name="TypeName">ggml's name.</param>
    /// <param name="Type">The id quants.json gives.</param>
    /// <param name="BlockSize">Block size quants.json gives.</param>
    /// <param name="TypeSize">Type size quants.json gives.</param>
    /// <param name="TensorType">The type the GGUF header gives.</param>
    /// <param name="Rows">Rows of the tensor.</param>
    /// <param name="RowLength">Elements per row.</param>
    /// <param name="Data">The quantized bytes.</param>
    /// <param name="Expected">ggml's dequantization.</param>
    /// <param name="Source">The floats ggml quantized.</param>
    internal sealed record Entry(
        string TypeName, GgmlType Type, int BlockSize, int TypeSize, GgmlType TensorType, int Rows, int RowLength,
        byte[] Data, float[] Expected, float[] Source)
    {
        public int RowBytes => RowLength / BlockSize * TypeSize;

        public override string ToString() => TypeName;
    }
}
