using System.Security.Cryptography;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;

namespace ExpertScope.Models.Tests;

public class SyntheticModelTests
{
    public static TheoryData<string> TinyPresets() => new(SyntheticPresets.All.Select(p => p.Name).Where(n => n.StartsWith("tiny-", StringComparison.Ordinal)));

    [Theory]
    [MemberData(nameof(TinyPresets))]
    public void TinyPresetWritesAValidGgufWithTheGoldenVocabularySize(string preset)
    {
        using var temp = new TempDirectory();
        var spec = SyntheticPresets.Get(preset);
        int tensorCount = SyntheticModelWriter.Write(spec, temp.File("model.gguf"));

        using var file = GgufFile.Open(temp.File("model.gguf"));
        Assert.Equal(spec.Architecture, file.Architecture);
        Assert.Equal(tensorCount, file.Tensors.Count);
        Assert.Equal(508, file.TryGetArray<string>("tokenizer.ggml.tokens")!.Length);
        Assert.Equal(spec.ExpertCount, file.GetInteger($"{spec.Architecture}.expert_count"));
        int moeBlocks = Enumerable.Range(0, spec.BlockCount).Count(spec.IsMoeBlock);
        Assert.Equal(moeBlocks, file.Tensors.Count(t => t.Name.EndsWith("ffn_gate_exps.weight", StringComparison.Ordinal)));
        foreach (float value in file.GetFloat32(file.GetTensor("output_norm.weight")))
        {
            Assert.InRange(value, 0.9f, 1.1f);
        }
    }

    [Fact]
    public void SameSeedGivesTheSameBytesAndAnotherSeedDoesNot()
    {
        using var temp = new TempDirectory();
        var spec = SyntheticPresets.Get("tiny-qwen2moe");
        SyntheticModelWriter.Write(spec, temp.File("a.gguf"));
        SyntheticModelWriter.Write(spec, temp.File("b.gguf"));
        SyntheticModelWriter.Write(spec with { Seed = 7 }, temp.File("c.gguf"));

        string Hash(string name) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(temp.File(name))));
        Assert.Equal(Hash("a.gguf"), Hash("b.gguf"));
        Assert.NotEqual(Hash("a.gguf"), Hash("c.gguf"));
    }

    [Theory]
    [InlineData(GgmlType.F16)]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_K)]
    public void ExpertTensorsCanBeStoredQuantized(GgmlType type)
    {
        using var temp = new TempDirectory();
        // Q4_K needs rows of 256: widen the tiny model so its expert rows are whole blocks.
        var spec = SyntheticPresets.Get("tiny-olmoe") with { ExpertTensorType = type, EmbeddingLength = 256, ExpertFeedForwardLength = 256 };
        SyntheticModelWriter.Write(spec, temp.File("m.gguf"));

        using var file = GgufFile.Open(temp.File("m.gguf"));
        var up = file.GetTensor("blk.0.ffn_up_exps.weight");
        Assert.Equal(type, up.Type);
        Assert.Equal(GgmlType.F32, file.GetTensor("blk.0.ffn_gate_inp.weight").Type);
        var values = new float[up.RowLength];
        Kernels.Quant.Dequantize.Row(type, file.GetTensorData(up, 0, (int)up.RowBytes), values);
        float limit = MathF.Sqrt(3f / 256) * 1.1f; // 4-bit rounding may step slightly past the range
        Assert.All(values, v => Assert.InRange(v, -limit, limit));
        Assert.Contains(values, v => v != 0);
    }

    [Fact]
    public void LearnedVocabularyIsDeterministicAndStartsWithTheByteAlphabet()
    {
        var first = ByteLevelBpeVocabulary.Learn(BuiltInText.Corpus, 50);
        var second = ByteLevelBpeVocabulary.Learn(BuiltInText.Corpus, 50);

        Assert.Equal(first.Tokens, second.Tokens);
        Assert.Equal(first.Merges, second.Merges);
        Assert.Equal("Ġ", first.Tokens[' ']); // GPT-2 maps the space byte to U+0120
        Assert.Equal("A", first.Tokens['A']);
        Assert.Equal(first.Tokens.Count - 2, first.BosId);
    }

    [Fact]
    public void UnknownPresetNamesTheKnownOnes()
    {
        var error = Assert.Throws<ExpertScopeException>(() => SyntheticPresets.Get("no-such-model"));
        Assert.Contains("tiny-olmoe", error.Message, StringComparison.Ordinal);
    }
}
