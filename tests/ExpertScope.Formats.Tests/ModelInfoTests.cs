using ExpertScope.Formats.Gguf;
using ExpertScope.Testing;

namespace ExpertScope.Formats.Tests;

/// <summary>Expected numbers follow from the golden cases' documented dimensions (golden/FORMAT.md): E = 64, 3 blocks,
/// 4 heads, head_dim 16, 8 experts of width 32, context 128.</summary>
public class ModelInfoTests
{
    private const long ExpertTensorElements = 64 * 32 * 8;

    private static ModelInfo Summarize(string model)
    {
        using var file = GgufFile.Open(GoldenData.GoldenPath("models", model, "model.gguf"));
        return ModelInfo.FromGguf(file);
    }

    [Fact]
    public void MixtralSummary()
    {
        var info = Summarize("mixtral");

        Assert.Equal("llama", info.Architecture);
        var h = info.Hyperparameters;
        Assert.Equal((508L, 128L, 64L, 3L, 4L, 2L, 16L, 16L), (h.VocabularySize, h.ContextLength, h.EmbeddingLength, h.BlockCount, h.HeadCount, h.HeadCountKv, h.KeyLength, h.ValueLength));
        Assert.Equal(1e-6, h.LayerNormRmsEpsilon!.Value, 1e-12);
        Assert.Equal(10000, h.RopeFrequencyBase);
        Assert.Contains(h.Rope, kv => kv.Key == "freq_base");

        var moe = Assert.IsType<MoeConfiguration>(info.Moe);
        Assert.Equal(8, moe.ExpertCount);
        Assert.Equal(2, moe.ExpertUsedCount);
        Assert.Equal(3, moe.MoeBlockCount);
        Assert.Null(moe.GatingFunctionId);
        Assert.Null(moe.GatingFunction);

        // Nine stacked expert tensors; a token uses 2 of 8 experts, so 6/8 of each is idle.
        Assert.Equal(9, info.Tensors.Count(t => t.Role == TensorRole.RoutedExperts));
        Assert.Equal(9 * ExpertTensorElements * 6 / 8, info.TotalParameters - info.ActiveParameters);
        Assert.Equal(info.Tensors.Sum(t => t.Info.ElementCount), info.TotalParameters);

        // 128 positions x 3 blocks x 2 KV heads x (16 + 16) x 4 bytes.
        Assert.False(info.Hyperparameters.MultiHeadLatentAttention);
        Assert.Equal(128L * 3 * 2 * 32 * 4, info.KvCacheBytes);
        Assert.Equal(info.Tensors.Sum(t => t.Info.ByteSize) + info.KvCacheBytes, info.MemoryBytes);
    }

    [Fact]
    public void DeepSeek3Summary()
    {
        var info = Summarize("deepseek3");

        Assert.Equal("deepseek2", info.Architecture);
        Assert.Equal((40L, 32L, 1L, 8L), (info.Hyperparameters.KeyLength, info.Hyperparameters.ValueLength, info.Hyperparameters.HeadCountKv, info.Hyperparameters.RopeDimensionCount));
        var moe = Assert.IsType<MoeConfiguration>(info.Moe);
        Assert.Equal(8, moe.ExpertCount);
        Assert.Equal(3, moe.ExpertUsedCount);
        Assert.Equal(1, moe.ExpertSharedCount);
        Assert.Equal(32, moe.ExpertFeedForwardLength);
        Assert.Equal(ExpertGatingFunction.Sigmoid, moe.GatingFunction);
        Assert.Equal(2.5, moe.ExpertWeightsScale!.Value, 1e-6);
        Assert.True(moe.ExpertWeightsNormalized);
        Assert.Equal(1, moe.LeadingDenseBlockCount);
        Assert.Equal((4L, 2L), (moe.ExpertGroupCount, moe.ExpertGroupUsedCount));
        Assert.Equal(2, moe.MoeBlockCount);

        // Blocks 1 and 2 hold 3 stacked expert tensors each; top-3 of 8 leaves 5/8 idle. Shared experts always run.
        Assert.Equal(6 * ExpertTensorElements * 5 / 8, info.TotalParameters - info.ActiveParameters);
        Assert.Equal(6, info.Tensors.Count(t => t.Role == TensorRole.SharedExpert));
        Assert.Equal(4, info.Tensors.Count(t => t.Role == TensorRole.Router));
        // MLA: llama.cpp caches the 40-wide latent keys (kv_lora 32 + rope 8) and no separate values.
        Assert.True(info.Hyperparameters.MultiHeadLatentAttention);
        Assert.Equal(128L * 3 * 1 * 40 * 4, info.KvCacheBytes);
    }

    [Fact]
    public void QuantizedExpertsCountElementsNotBytes()
    {
        var info = Summarize("olmoe-q4_k");

        // E = 256 here; expert tensors [8, 256, 256] in q4_K; top-4 of 8 leaves half idle.
        Assert.Equal(9 * (256L * 256 * 8) / 2, info.TotalParameters - info.ActiveParameters);
        var gate = info.Tensors.First(t => t.Info.Name == "blk.0.ffn_gate_exps.weight");
        Assert.Equal(256L * 256 * 8 / 256 * 144, gate.Info.ByteSize);
        Assert.Equal(256L * 256 * 8 / 2, gate.ActiveElements);
    }

    [Fact]
    public void Qwen2MoeSharedExpertWidthAndRoles()
    {
        var info = Summarize("qwen2moe");

        Assert.Equal(64, info.Moe!.ExpertSharedFeedForwardLength);
        Assert.Equal(TensorRole.SharedExpert, info.Tensors.Single(t => t.Info.Name == "blk.1.ffn_gate_inp_shexp.weight").Role);
        Assert.Equal(TensorRole.Router, info.Tensors.Single(t => t.Info.Name == "blk.1.ffn_gate_inp.weight").Role);
    }

    [Theory]
    [InlineData("blk.0.ffn_gate_exps.weight", TensorRole.RoutedExperts)]
    [InlineData("blk.12.ffn_down_exps.bias", TensorRole.RoutedExperts)]
    [InlineData("blk.3.ffn_up_shexp.weight", TensorRole.SharedExpert)]
    [InlineData("blk.3.ffn_gate_inp.weight", TensorRole.Router)]
    [InlineData("blk.3.exp_probs_b.bias", TensorRole.Router)]
    [InlineData("token_embd.weight", TensorRole.Other)]
    [InlineData("blk.0.ffn_gate.weight", TensorRole.Other)]
    public void RolesFollowTensorNames(string name, TensorRole role) => Assert.Equal(role, ModelInfo.RoleOf(name));

    [Fact]
    public void ImplausibleOrMistypedKeysAreUserErrors()
    {
        using var temp = new TempDirectory();
        string path = temp.File("odd.gguf");
        void Write(params (string Key, GgufValue Value)[] metadata)
        {
            using var writer = GgufWriter.Create(path);
            writer.SetMetadata("general.architecture", GgufValue.Create("llama"));
            foreach (var (key, value) in metadata)
            {
                writer.SetMetadata(key, value);
            }

            writer.Finish();
        }

        ModelInfo Read()
        {
            using var file = GgufFile.Open(path);
            return ModelInfo.FromGguf(file);
        }

        Write(("llama.block_count", GgufValue.Create(-3)));
        Assert.Contains("llama.block_count", Assert.Throws<Core.ExpertScopeException>(Read).Message, StringComparison.Ordinal);
        Write(("llama.expert_count", GgufValue.Create("eight")));
        Assert.Contains(path, Assert.Throws<Core.ExpertScopeException>(Read).Message, StringComparison.Ordinal);
        Write(("llama.context_length", GgufValue.Create(ulong.MaxValue)));
        Assert.Throws<Core.ExpertScopeException>(Read);
        Write(("llama.attention.head_count_kv", GgufValue.CreateArray(1.5f)));
        Assert.Throws<Core.ExpertScopeException>(Read);

        // A per-layer head count array, as some architectures write it.
        Write(("llama.block_count", GgufValue.Create(3u)), ("llama.context_length", GgufValue.Create(10u)),
            ("llama.embedding_length", GgufValue.Create(64u)), ("llama.attention.head_count", GgufValue.Create(4u)),
            ("llama.attention.head_count_kv", GgufValue.CreateArray(1, 2, 0)));
        var info = Read();
        Assert.Null(info.Moe);
        Assert.Equal(2, info.Hyperparameters.HeadCountKv);
        Assert.Equal(10L * (1 + 2 + 0) * (16 + 16) * 4, info.KvCacheBytes);
    }
}
