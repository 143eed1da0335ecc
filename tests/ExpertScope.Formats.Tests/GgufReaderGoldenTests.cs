using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Testing;

namespace ExpertScope.Formats.Tests;

public class GgufReaderGoldenTests
{
    public static TheoryData<string> GoldenGgufFiles()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.EnumerateFiles(GoldenData.Golden, "*.gguf", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetRelativePath(GoldenData.Golden, file));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(GoldenGgufFiles))]
    public void EveryGoldenFileOpensWithConsistentTensorExtents(string relativePath)
    {
        using var file = GgufFile.Open(GoldenData.GoldenPath(relativePath));

        Assert.InRange(file.Version, 2u, 3u);
        Assert.Equal(0, file.DataOffset % file.Alignment);
        foreach (var tensor in file.Tensors)
        {
            Assert.True(tensor.FileOffset + tensor.ByteSize <= file.Length, tensor.Name);
            Assert.Equal(tensor.RowCount * tensor.RowBytes, tensor.ByteSize);
            Assert.Equal(tensor.ByteSize, file.GetTensorData(tensor).Length);
        }
    }

    [Fact]
    public void MixtralHeaderMatchesTheCaseDescription()
    {
        using var file = GgufFile.Open(GoldenData.GoldenPath("models", "mixtral", "model.gguf"));

        Assert.Equal("llama", file.Architecture);
        Assert.Equal(8, file.GetInteger("llama.expert_count"));
        Assert.Equal(2, file.GetInteger("llama.expert_used_count"));
        var router = file.GetTensor("blk.0.ffn_gate_inp.weight");
        Assert.Equal(new long[] { 64, 8 }, router.Dimensions);
        Assert.Equal(GgmlType.F32, router.Type);
        Assert.Equal(64 * 8, file.GetFloat32(router).Length);
        var tokens = file.TryGetArray<string>("tokenizer.ggml.tokens");
        Assert.NotNull(tokens);
        Assert.Equal(508, tokens.Length);
    }
}
