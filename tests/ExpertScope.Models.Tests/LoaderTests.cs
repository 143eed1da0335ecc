using ExpertScope.Core;
using ExpertScope.Testing;

namespace ExpertScope.Models.Tests;

/// <summary>Loading errors name the file, the tensor or key, and what was expected.</summary>
public sealed class LoaderTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private static TinyGguf OlmoeMetadata() => new TinyGguf()
        .Set("general.architecture", "olmoe")
        .Set("olmoe.embedding_length", 8)
        .Set("olmoe.block_count", 1)
        .Set("olmoe.feed_forward_length", 4)
        .Set("olmoe.attention.head_count", 2)
        .Set("olmoe.attention.head_count_kv", 2)
        .Set("olmoe.attention.layer_norm_rms_epsilon", 1e-6f)
        .Set("olmoe.context_length", 16)
        .Set("olmoe.vocab_size", 10)
        .Set("olmoe.expert_count", 4)
        .Set("olmoe.expert_used_count", 2);

    /// <summary>A complete one-block OLMoE-shaped model with E = 8, 2 heads, 4 experts of FFN 4, vocabulary 10, tied output.</summary>
    private static TinyGguf CompleteOlmoe(Func<string, long[], long[]>? reshape = null)
    {
        var gguf = OlmoeMetadata();
        void Add(string name, params long[] dims) => gguf.Tensor(name, reshape?.Invoke(name, dims) ?? dims);
        Add("token_embd.weight", 8, 10);
        Add("output_norm.weight", 8);
        Add("blk.0.attn_norm.weight", 8);
        Add("blk.0.attn_q.weight", 8, 8);
        Add("blk.0.attn_k.weight", 8, 8);
        Add("blk.0.attn_v.weight", 8, 8);
        Add("blk.0.attn_output.weight", 8, 8);
        Add("blk.0.attn_q_norm.weight", 8);
        Add("blk.0.attn_k_norm.weight", 8);
        Add("blk.0.ffn_norm.weight", 8);
        Add("blk.0.ffn_gate_inp.weight", 8, 4);
        Add("blk.0.ffn_gate_exps.weight", 8, 4, 4);
        Add("blk.0.ffn_up_exps.weight", 8, 4, 4);
        Add("blk.0.ffn_down_exps.weight", 4, 8, 4);
        return gguf;
    }

    private string Write(TinyGguf gguf)
    {
        string path = _directory.File("model.gguf");
        gguf.Write(path);
        return path;
    }

    [Fact]
    public void TinyModel_Loads_WithTiedOutput_AndRuns()
    {
        using var model = MoeModel.Load(Write(CompleteOlmoe()));
        Assert.Same(model.Definition.Embedding, model.Definition.Output);
        var logits = model.Run([1, 2, 3]);
        Assert.Equal(3, logits.Rows);
        Assert.Equal(10, logits.Columns);
        Assert.All(logits.Values, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void UnknownArchitecture_ListsTheSupportedOnes()
    {
        string path = Write(new TinyGguf().Set("general.architecture", "gpt-moe-x"));
        var error = Assert.Throws<ExpertScopeException>(() => MoeModel.Load(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("gpt-moe-x", error.Message);
        Assert.Contains("olmoe", error.Message);
        Assert.Contains("qwen3moe", error.Message);
    }

    [Fact]
    public void MissingTensor_IsNamed()
    {
        string path = Write(OlmoeMetadata().Tensor("token_embd.weight", 8, 10));
        var error = Assert.Throws<ExpertScopeException>(() => MoeModel.Load(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("blk.0.attn_q.weight", error.Message);
        Assert.Contains("missing", error.Message);
    }

    [Fact]
    public void MisShapedTensor_NamesExpectedAndActualShapes()
    {
        string path = Write(CompleteOlmoe((name, dims) => name == "blk.0.ffn_up_exps.weight" ? [8, 5, 4] : dims));
        var error = Assert.Throws<ExpertScopeException>(() => MoeModel.Load(path));
        Assert.Contains("blk.0.ffn_up_exps.weight", error.Message);
        Assert.Contains("[4, 5, 8]", error.Message);
        Assert.Contains("expected [4, 4, 8]", error.Message);
    }

    [Fact]
    public void MissingMetadata_IsNamed()
    {
        var gguf = new TinyGguf().Set("general.architecture", "olmoe").Set("olmoe.embedding_length", 8);
        string path = Write(gguf);
        var error = Assert.Throws<ExpertScopeException>(() => MoeModel.Load(path));
        Assert.Contains("olmoe.attention.head_count", error.Message);
    }

    [Fact]
    public void MetadataOverride_ChangesTopK()
    {
        string path = Write(CompleteOlmoe());
        using var model = MoeModel.Load(path, new ModelLoadOptions { MetadataOverrides = new Dictionary<string, object> { ["olmoe.expert_used_count"] = 3 } });
        Assert.Equal(3, model.Blocks[0].Moe!.Router.Config.TopK);
    }
}
