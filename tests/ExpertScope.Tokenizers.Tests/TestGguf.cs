using ExpertScope.Formats.Gguf;

namespace ExpertScope.Tokenizers.Tests;

/// <summary>A fluent list of metadata for a tensor-less GGUF file (enough to describe a tokenizer), written with <see cref="GgufWriter"/>.</summary>
internal sealed class TestGguf
{
    private readonly List<(string Key, GgufValue Value)> _entries = [];

    public TestGguf String(string key, string value) => Add(key, new GgufValue(GgufValueType.String, value));

    public TestGguf UInt32(string key, uint value) => Add(key, new GgufValue(GgufValueType.UInt32, value));

    public TestGguf Bool(string key, bool value) => Add(key, new GgufValue(GgufValueType.Bool, value));

    public TestGguf Strings(string key, IReadOnlyList<string> values) => Array(key, GgufValueType.String, values.ToArray());

    public TestGguf Int32s(string key, IReadOnlyList<int> values) => Array(key, GgufValueType.Int32, values.ToArray());

    public TestGguf Float32s(string key, IReadOnlyList<float> values) => Array(key, GgufValueType.Float32, values.ToArray());

    public void Save(string path)
    {
        using var writer = GgufWriter.Create(path);
        foreach (var (key, value) in _entries)
        {
            writer.SetMetadata(key, value);
        }

        writer.Finish();
    }

    private TestGguf Array(string key, GgufValueType elementType, System.Array items) =>
        Add(key, new GgufValue(GgufValueType.Array, new GgufArray(elementType, items)));

    private TestGguf Add(string key, GgufValue value)
    {
        _entries.Add((key, value));
        return this;
    }
}
