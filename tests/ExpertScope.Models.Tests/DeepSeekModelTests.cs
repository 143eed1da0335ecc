using System.Collections.Immutable;
using ExpertScope.Core;
using ExpertScope.Models.Architectures;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;
using ExpertScope.Testing;
using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

/// <summary>The deepseek2 architecture end to end: both golden cases, decoding, threads, interventions, legacy files.</summary>
public sealed class DeepSeekModelTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("deepseek2-lite")]
    [InlineData("deepseek3")]
    public void GoldenCase_MatchesLlamaCppAtEverySite(string name)
    {
        var golden = GoldenCase.Load(name);
        float largest = GoldenParity.Check(golden, Tolerances.Float32);
        output.WriteLine($"{name}: largest logit difference {largest:E3}");
    }

    [Theory]
    [InlineData("deepseek2-lite", false, 2)]
    [InlineData("deepseek3", true, 1)]
    public void Load_BuildsLatentAttentionDenseLeadAndSharedExperts(string name, bool compressedQuery, int sharedExperts)
    {
        using var model = MoeModel.Load(GoldenCase.Load(name).ModelPath);

        Assert.IsType<DeepSeek2>(model.Architecture);
        Assert.IsType<SwiGluFfn>(model.Blocks[0].FeedForward);
        Assert.All(model.Blocks, b => Assert.IsType<MultiHeadLatentAttention>(b.Attention));
        var attention = (MultiHeadLatentAttention)model.Blocks[1].Attention;
        Assert.Equal(compressedQuery, attention.Weights.QueryA is not null);
        Assert.False(attention.UsesFusedKeyValue);
        var moe = model.Blocks[1].Moe!;
        Assert.Null(moe.Shared!.Gate);
        Assert.Equal(sharedExperts * 32, moe.Shared.Ffn.Gate.Outputs);
        Assert.Equal(compressedQuery, moe.Router.HasSelectionBias);
        Assert.Equal(compressedQuery ? 4 : 1, moe.Router.Config.GroupCount);
    }

    [Fact]
    public void TokenByTokenDecoding_GivesTheBatchLogitsBitForBit()
    {
        var golden = GoldenCase.Load("deepseek3");
        using var model = MoeModel.Load(golden.ModelPath);
        var tokens = golden.Prompts[2].Tokens;
        var batch = model.Run(tokens);

        var session = model.CreateSession();
        var prefill = session.Append(tokens.AsSpan(0, 5));
        Assert.Equal(batch.Values.AsSpan(0, 5 * batch.Columns).ToArray(), prefill.Values);
        for (var t = 5; t < tokens.Length; t++)
        {
            var step = session.Append(tokens.AsSpan(t, 1));
            Assert.Equal(batch.Row(t).ToArray(), step.Values);
        }
    }

    [Fact]
    public void Results_AreBitIdentical_ForOneAndThreeThreads()
    {
        var golden = GoldenCase.Load("deepseek3");
        using var model = MoeModel.Load(golden.ModelPath);
        var tokens = golden.Prompts[^1].Tokens;
        Assert.Equal(model.Run(tokens, new RunOptions { ThreadCount = 1 }).Values, model.Run(tokens, new RunOptions { ThreadCount = 3 }).Values);
    }

    [Fact]
    public void DisablingTheFirstChoice_RoutesAroundIt_WithinTheKeptGroups()
    {
        var golden = GoldenCase.Load("deepseek3");
        using var model = MoeModel.Load(golden.ModelPath);
        var prompt = golden.Prompts[0];
        var chosen = prompt.Find("ffn_moe_topk-1")!.ReadInts();
        var k = model.Blocks[1].Moe!.Router.Config.TopK;
        var disabled = new ExpertId(chosen[0]);

        var recorder = new RecordingObserver(site => site.Kind == HookKind.Router);
        var intervention = new DisableExperts(LayerSelector.Only(1), [disabled]);
        model.Run(prompt.Tokens, new RunOptions { Interventions = [intervention], Observers = [recorder] });

        var routing = recorder.Routing[1];
        var config = model.Blocks[1].Moe!.Router.Config;
        var perGroup = config.ExpertCount / config.GroupCount;
        Assert.DoesNotContain(disabled.Value, routing.Experts.AsSpan(0, k).ToArray());
        for (var t = 0; t < routing.Experts.Length / k; t++)
        {
            // Every chosen expert lies in one of the token's kept groups ...
            var kept = routing.Groups.AsSpan(t * config.GroupsKept, config.GroupsKept).ToArray();
            Assert.All(routing.Experts.AsSpan(t * k, k).ToArray(), e => Assert.Contains(e / perGroup, kept));
            // ... and the normalised, scaled weights still sum to the scale (2.5).
            Assert.Equal(2.5f, routing.Weights.AsSpan(t * k, k).ToArray().Sum(), 5);
        }
    }

    [Fact]
    public void LegacyFusedKeyValueFile_LoadsAndAgreesWithTheSplitLayout()
    {
        // Older converters wrote one attn_kv_b per block and no key_length_mla; llama.cpp then decompresses keys and
        // values per head (MHA) instead of absorbing. With float32 caches both layouts compute the same attention.
        var golden = GoldenCase.Load("deepseek3");
        using var temp = new TempDirectory();
        var legacyPath = temp.File("deepseek3-legacy.gguf");
        using (var file = Formats.Gguf.GgufFile.Open(golden.ModelPath))
        {
            DeepSeekLegacyFile.Write(file, legacyPath);
        }

        var options = new ModelLoadOptions { CachePrecision = CachePrecision.Float32 };
        using var split = MoeModel.Load(golden.ModelPath, options);
        using var legacy = MoeModel.Load(legacyPath, options);
        Assert.True(((MultiHeadLatentAttention)legacy.Blocks[0].Attention).UsesFusedKeyValue);

        float largest = 0;
        foreach (var prompt in golden.Prompts)
        {
            var expected = split.Run(prompt.Tokens).Values;
            var actual = legacy.Run(prompt.Tokens).Values;
            largest = Math.Max(largest, DeepSeekGoldenCase.MaxDifference(expected, actual).Difference);
        }

        output.WriteLine($"largest logit difference, legacy vs split layout: {largest:E3}");
        Assert.True(largest < 1e-4f, $"logits differ by {largest}");

        // The default F16 cache stays close to llama.cpp's dump (which was computed with the split layout).
        using var legacyDefault = MoeModel.Load(legacyPath);
        var logits = legacyDefault.Run(golden.Prompts[0].Tokens).Values;
        var difference = DeepSeekGoldenCase.MaxDifference(golden.Prompts[0].Logits.ReadFloats(), logits).Difference;
        output.WriteLine($"legacy layout, f16 cache vs golden logits: {difference:E3}");
        Assert.True(difference < 2e-2f, $"logits differ by {difference}");
    }

    [Fact]
    public void MissingLatentTensor_IsNamedWithTheFile()
    {
        var golden = GoldenCase.Load("deepseek2-lite");
        using var file = Formats.Gguf.GgufFile.Open(golden.ModelPath);
        var source = new ModelSource(file, new Dictionary<string, object> { ["deepseek2.attention.q_lora_rank"] = 24L });
        var config = DeepSeek2Config.Read(source);

        var error = Assert.Throws<ExpertScopeException>(() => DeepSeek2.CreateAttention(source, config, 0, CachePrecision.Float16));
        Assert.Contains("blk.0.attn_q_a.weight", error.Message, StringComparison.Ordinal);
        Assert.Contains(golden.ModelPath, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("tiny-deepseek2")]
    [InlineData("tiny-deepseek3")]
    public void SyntheticPreset_LoadsRunsAndDecodesConsistently(string preset)
    {
        using var temp = new TempDirectory();
        var path = temp.File("model.gguf");
        Synthetic.SyntheticModelWriter.Write(Synthetic.SyntheticPresets.Get(preset), path);
        using var model = MoeModel.Load(path);
        Assert.IsType<DeepSeek2>(model.Architecture);

        int[] tokens = [5, 17, 300, 42, 7, 99, 250, 3];
        var trace = new RecordingObserver(site => site.Kind == HookKind.Router);
        var batch = model.Run(tokens, new RunOptions { Observers = [trace] });
        Assert.All(batch.Values, v => Assert.True(float.IsFinite(v)));
        Assert.Equal(model.Blocks.Count(b => b.Moe is not null), trace.Routing.Count);

        // Token-by-token decoding against the latent cache gives the batch's logits bit for bit.
        var session = model.CreateSession();
        for (var t = 0; t < tokens.Length; t++)
        {
            Assert.Equal(batch.Row(t).ToArray(), session.Append(tokens.AsSpan(t, 1)).Values);
        }
    }

    [Fact]
    public void YarnMetadata_ReachesTheRopeAndTheAttentionScale()
    {
        // No golden model uses rope scaling; overriding the keys on a golden file exercises the whole path.
        var golden = GoldenCase.Load("deepseek3");
        var overrides = new Dictionary<string, object>
        {
            ["deepseek2.rope.scaling.type"] = "yarn",
            ["deepseek2.rope.scaling.factor"] = 4.0,
            ["deepseek2.rope.scaling.original_context_length"] = 32L,
            ["deepseek2.rope.scaling.yarn_log_multiplier"] = 0.1,
        };
        using var model = MoeModel.Load(golden.ModelPath, new ModelLoadOptions { MetadataOverrides = overrides });
        var attention = (MultiHeadLatentAttention)model.Blocks[0].Attention;

        var mscale = 1 + (0.1 * Math.Log(4));
        Assert.Equal((float)(mscale * mscale / Math.Sqrt(24)), attention.Scale, 6);
        Assert.Equal(0.25f, attention.Rope.Scaling!.FrequencyScale);
        Assert.Equal(32, attention.Rope.Scaling.OriginalContextLength);

        var logits = model.Run(golden.Prompts[0].Tokens).Values;
        Assert.All(logits, v => Assert.True(float.IsFinite(v)));
        // Position 0 is not rotated, so the first token's logits only change through the attention scale (not at all:
        // a single visible position gets softmax weight 1); later tokens do change.
        var expected = golden.Prompts[0].Logits.ReadFloats();
        var vocabulary = model.Hyperparameters.VocabularySize;
        Assert.Equal(expected.AsSpan(0, vocabulary).ToArray(), logits.AsSpan(0, vocabulary).ToArray());
        Assert.True(DeepSeekGoldenCase.MaxDifference(expected, logits).Difference > 1e-3f);
    }
}
