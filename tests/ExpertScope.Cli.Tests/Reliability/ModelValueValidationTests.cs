using ExpertScope.Formats.Gguf;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests.Reliability;

/// <summary>A tiny OLMoE-shaped model written once for the tests of this folder.</summary>
public sealed class TinyModelFixture : IDisposable
{
    private readonly TempDirectory _directory = new();

    public TinyModelFixture()
    {
        ModelPath = _directory.File("tiny-olmoe.gguf");
        var (code, _, error) = EngineVerbs.Run("make-model", "--preset", "tiny-olmoe", "--out", ModelPath);
        Assert.True(code == 0, error);
    }

    public string ModelPath { get; }

    public void Dispose() => _directory.Dispose();
}

/// <summary>
/// Every hyperparameter is read as 64 bits and range-checked when a model is built: hostile values planted in an
/// otherwise valid model give exit code 1 and one line naming the file, the key and the value, never an internal
/// error, a silent cut to 32 bits or a huge allocation.
/// </summary>
public sealed class ModelValueValidationTests(TinyModelFixture model) : IClassFixture<TinyModelFixture>, IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    public static TheoryData<string, GgufValue, string> HostileValues() => new()
    {
        { "olmoe.attention.head_count", GgufValue.Create(1u << 31), "2147483648" },
        { "olmoe.attention.head_count", GgufValue.Create((1UL << 32) + 4), "4294967300" },
        { "olmoe.attention.head_count", GgufValue.Create(-1), "-1" },
        { "olmoe.attention.head_count", GgufValue.Create(0u), "= 0" },
        { "olmoe.attention.head_count_kv", GgufValue.Create((1UL << 32) + 4), "4294967300" },
        { "olmoe.attention.head_count_kv", GgufValue.Create(3u), "= 3" },
        { "olmoe.expert_used_count", GgufValue.Create((1UL << 32) + 4), "4294967300" },
        { "olmoe.expert_used_count", GgufValue.Create(9u), "= 9" },
        { "olmoe.block_count", GgufValue.Create(1_000_000_000u), "1000000000" },
        { "olmoe.block_count", GgufValue.Create(1u << 31), "2147483648" },
        { "olmoe.block_count", GgufValue.Create(2u), "blk.2." },
        { "olmoe.context_length", GgufValue.Create(0u), "= 0" },
        { "olmoe.context_length", GgufValue.Create(-1L), "-1" },
        { "olmoe.embedding_length", GgufValue.Create((1UL << 32) + 4), "4294967300" },
        { "olmoe.attention.layer_norm_rms_epsilon", GgufValue.Create(float.NaN), "NaN" },
        { "olmoe.attention.layer_norm_rms_epsilon", GgufValue.Create(0f), "= 0" },
        { "olmoe.rope.freq_base", GgufValue.Create(-1f), "-1" },
        { "olmoe.rope.freq_base", GgufValue.Create(double.PositiveInfinity), "Infinity" },
        { "olmoe.expert_weights_scale", GgufValue.Create(float.NaN), "NaN" },
        { "olmoe.rope.dimension_count", GgufValue.Create(3u), "= 3" },
        { "olmoe.rope.dimension_count", GgufValue.Create(0u), "= 0" },
        { "olmoe.rope.dimension_count", GgufValue.Create(1000u), "1000" },
        { "tokenizer.ggml.bos_token_id", GgufValue.Create(1_000_000u), "1000000" },
        { "tokenizer.ggml.eos_token_id", GgufValue.Create(-5), "-5" },
    };

    [Theory]
    [MemberData(nameof(HostileValues))]
    public void HostileHyperparameter_IsOneLineNamingFileKeyAndValue(string key, GgufValue value, string shown)
    {
        string path = _directory.File("hostile.gguf");
        GgufRewrite.Write(model.ModelPath, path, new Dictionary<string, GgufValue?> { [key] = value });

        var (code, _, error) = EngineVerbs.Run("generate", "--model", path, "--prompt", "The bank", "--max-tokens", "1");

        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, path, key, shown);
    }

    [Fact]
    public void ExtraBlockBeyondBlockCount_IsReported()
    {
        string path = _directory.File("extra-block.gguf");
        GgufRewrite.Write(model.ModelPath, path, new Dictionary<string, GgufValue?>(), ("blk.0.attn_norm.weight", "blk.7.attn_norm.weight"));

        var (code, _, error) = EngineVerbs.Run("generate", "--model", path, "--prompt", "The bank", "--max-tokens", "1");

        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, path, "olmoe.block_count", "blk.7.attn_norm.weight");
    }

    [Fact]
    public void UnchangedCopy_StillLoadsAndRuns()
    {
        string path = _directory.File("copy.gguf");
        GgufRewrite.Write(model.ModelPath, path, new Dictionary<string, GgufValue?>());

        var (code, _, error) = EngineVerbs.Run("generate", "--model", path, "--prompt", "The bank", "--max-tokens", "1");

        Assert.True(code == 0, error);
    }
}
