using ExpertScope.Core;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;
using ExpertScope.Models.Synthetic;
using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

/// <summary>
/// <c>llama4</c> against llama.cpp (repository case <c>tests/golden/llama4</c>): interleaved dense and MoE blocks, sigmoid
/// top-1 routing that weights the expert input, an ungated shared expert, a block without RoPE, per-head RMS norm of
/// queries and keys after RoPE, and RoPE frequency factors.
/// </summary>
public sealed class Llama4GoldenTests(ITestOutputHelper output)
{
    private const string CaseName = "llama4";

    private const string LongCaseName = "llama4-long";

    private const string MaverickCaseName = "llama4-128e";

    /// <summary>
    /// The model of case <c>llama4-long</c>: <c>tiny-llama4</c> narrowed (E = 16, one head of 8) so that a prompt past
    /// llama.cpp's fixed chunk of 8192 positions runs in seconds.
    /// </summary>
    /// <summary>The model of case <c>llama4-128e</c>: <see cref="LongSpec"/> with Maverick's 128 experts (each of FFN 4) and a short context.</summary>
    internal static SyntheticModelSpec MaverickSpec => LongSpec with
    {
        ExpertCount = 128, ExpertFeedForwardLength = 4, ContextLength = 128, Name = "expertscope-synthetic-llama4-128e",
    };

    internal static SyntheticModelSpec LongSpec => SyntheticPresets.Get("tiny-llama4") with
    {
        EmbeddingLength = 16, HeadCount = 1, KeyValueHeadCount = 1, HeadDimension = 8, ExpertFeedForwardLength = 16,
        FeedForwardLength = 16, ContextLength = 16384, Name = "expertscope-synthetic-llama4-long",
    };

    [Fact]
    public void Float32Case_MatchesLlamaCppAtEverySite()
    {
        var golden = GoldenCase.LoadRepository(CaseName);
        float largest = GoldenParity.Check(golden, Tolerances.Float32, siteAliases: SiteAliases(golden));
        output.WriteLine($"{CaseName}: largest logit difference {largest:E3}");
    }

    /// <summary>
    /// 8256 tokens: the last 64 lie in the second chunk of llama.cpp's fixed 8192, and from position 8191 the block
    /// without RoPE scales its queries by log(2)·0.1 + 1. The dump keeps the last 128 rows (and every routing choice).
    /// </summary>
    [Fact]
    public void LongCase_PastTheFirstChunk_MatchesLlamaCppAtEverySite()
    {
        var golden = GoldenCase.LoadRepository(LongCaseName);
        Assert.Equal(8256, golden.Prompts[0].Tokens.Length);
        Assert.Equal(8128, golden.Prompts[0].Logits.FirstRow);
        float largest = GoldenParity.Check(golden, Tolerances.Float32, threads: 2, siteAliases: SiteAliases(golden));
        output.WriteLine($"{LongCaseName}: largest logit difference {largest:E3}");
    }

    [Fact]
    public void Float32Case_OneAndTwoThreads_GiveIdenticalLogits() =>
        ArchitectureTestRuns.AssertThreadCountInvariant(GoldenCase.LoadRepository(CaseName));

    [Fact]
    public void Case_CoversDenseAndMoeBlocksAndABlockWithoutRope()
    {
        var golden = GoldenCase.LoadRepository(CaseName);
        using var model = MoeModel.Load(golden.ModelPath, golden.LoadOptions);
        Assert.Equal([false, true, false, true], model.Blocks.Select(b => b.Moe is not null));
        var adjustments = model.Blocks.Select(b => ((Attention)b.Attention).Options.Adjustments!).ToList();
        Assert.Equal([false, false, false, true], adjustments.Select(a => a.SkipRope));
        Assert.Equal([true, true, true, false], adjustments.Select(a => a.NormsHeads));
        Assert.NotNull(adjustments[3].Temperature);

        // Blocks 0-2 attend within chunks of llama.cpp's fixed 8192 positions; block 3 sees every earlier position.
        var windows = model.Blocks.Select(b => ((Attention)b.Attention).Options.KeyWindow).ToList();
        Assert.All(windows.Take(3), w => Assert.Equal((KeyWindowKind.Chunked, Architectures.Llama4.ChunkLength), (w!.Kind, w.Length)));
        Assert.Null(windows[3]);

        // Routing has substance: several experts are chosen in each MoE block.
        var chosen = golden.Prompts.SelectMany(p => p.Tensors).Where(t => t.Site == "ffn_moe_topk").SelectMany(t => t.ReadInts()).Distinct().Count();
        Assert.True(chosen >= 4, $"only {chosen} experts chosen");
    }

    [Fact]
    public void SyntheticWriter_WritesTheCasesModelsByteForByte()
    {
        ArchitectureTestRuns.AssertWriterReproducesCaseModel(SyntheticPresets.Get("tiny-llama4"), CaseName);
        ArchitectureTestRuns.AssertWriterReproducesCaseModel(LongSpec, LongCaseName);
        ArchitectureTestRuns.AssertWriterReproducesCaseModel(MaverickSpec, MaverickCaseName);
    }

    /// <summary>
    /// 128 experts (Maverick's count): llama.cpp keys <c>use_kq_norm</c> on its 17B_128E model type, so no block
    /// norms its query and key heads.
    /// </summary>
    [Fact]
    public void MaverickCase_With128Experts_HasNoHeadNorm_AndMatchesLlamaCppAtEverySite()
    {
        var golden = GoldenCase.LoadRepository(MaverickCaseName);
        using (var model = MoeModel.Load(golden.ModelPath, golden.LoadOptions))
        {
            Assert.Equal(128, model.Hyperparameters.ExpertCount);
            Assert.All(model.Blocks, b => Assert.False(((Attention)b.Attention).Options.Adjustments!.NormsHeads));
        }

        float largest = GoldenParity.Check(golden, Tolerances.Float32, siteAliases: SiteAliases(golden));
        output.WriteLine($"{MaverickCaseName}: largest logit difference {largest:E3}");
    }

    [Fact]
    public void SlidingWindowZero_IsRefusedWithOneLine()
    {
        var golden = GoldenCase.LoadRepository(CaseName);
        var options = new ModelLoadOptions { MetadataOverrides = new Dictionary<string, object> { ["llama4.attention.sliding_window"] = 0L } };
        var error = Assert.Throws<ExpertScopeException>(() => MoeModel.Load(golden.ModelPath, options));
        Assert.Contains("llama4.attention.sliding_window' = 0", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Router_SelectOnLogits_BreaksSigmoidSaturationTiesByLogit()
    {
        // sigmoid(20) and sigmoid(30) are both 1.0f: ranking probabilities ties (lower index wins), ranking logits does not.
        float[] logits = [20f, 30f, -1f];
        var byProbability = new Router(0, new RouterConfig(3, 1, GatingFunction.Sigmoid, NormalizeWeights: false));
        var byLogit = new Router(0, new RouterConfig(3, 1, GatingFunction.Sigmoid, NormalizeWeights: false, SelectOnLogits: true));
        var result = new RoutingResult();
        byProbability.Route(logits, 1, [], result);
        Assert.Equal(0, result.Experts[0]);
        byLogit.Route(logits, 1, [], result);
        Assert.Equal(1, result.Experts[0]);
        Assert.Equal(1.0f, result.Weights[0]);
    }

    /// <summary>
    /// llama.cpp's llama4 graph names some tensors unlike the other architectures: in MoE blocks its <c>cb(cur,
    /// "ffn_norm")</c> renames the attention output (so <c>ffn_norm-L</c> holds <c>attn_out-L</c>), the shared expert is
    /// <c>ffn_moe_shexp</c>, and routed + shared is <c>ffn_moe_out_merged</c> (the engine's <c>ffn_out</c>).
    /// </summary>
    private static Dictionary<string, string> SiteAliases(GoldenCase golden)
    {
        var aliases = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var tensor in golden.Prompts[0].Tensors.Where(t => t.Site == "ffn_moe_logits"))
        {
            int layer = tensor.Layer;
            aliases[$"ffn_norm-{layer}"] = $"attn_out-{layer}";
            aliases[$"ffn_moe_shexp-{layer}"] = $"ffn_shexp-{layer}";
            aliases[$"ffn_moe_out_merged-{layer}"] = $"ffn_out-{layer}";
        }

        return aliases;
    }
}
