using ExpertScope.Models.Architectures;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;
using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

/// <summary>Multi-head latent attention in isolation: the golden <c>attn_norm</c> input in, <c>kqv_out</c> out.</summary>
public class DeepSeekAttentionTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("deepseek2-lite")]
    [InlineData("deepseek3")]
    public void LatentAttention_FromGoldenNormInput_ReproducesKqvOutExactly(string caseName)
    {
        using var golden = new DeepSeekGoldenCase(caseName);
        var source = new ModelSource(golden.Model);
        var config = DeepSeek2Config.Read(source);
        for (var prompt = 0; prompt < golden.PromptCount; prompt++)
        {
            var tokens = golden.Tokens[prompt].Length;
            for (var block = 0; block < golden.BlockCount; block++)
            {
                var attention = DeepSeek2.CreateAttention(source, config, block, CachePrecision.Float16);
                var (heads, projected) = Run(attention, golden.Floats(prompt, $"attn_norm-{block}"), [tokens]);

                // kqv_out is the concatenated heads before attn_output, as llama.cpp names it in build_attn.
                Assert.Equal(golden.Floats(prompt, $"kqv_out-{block}"), heads);
                if (block > 0)
                {
                    // ffn_inp = attention output + the block's input (l_out of the block before).
                    var residual = golden.Floats(prompt, $"l_out-{block - 1}");
                    var expected = golden.Floats(prompt, $"ffn_inp-{block}");
                    for (var i = 0; i < expected.Length; i++)
                    {
                        Assert.Equal(expected[i], projected[i] + residual[i]);
                    }
                }
            }
        }
    }

    [Fact]
    public void TokenByTokenDecoding_ReproducesTheBatchDumpExactly()
    {
        // One token per call takes the same flash-attention path as a short prefill, against the cached latent.
        using var golden = new DeepSeekGoldenCase("deepseek3");
        var source = new ModelSource(golden.Model);
        var config = DeepSeek2Config.Read(source);
        var attention = DeepSeek2.CreateAttention(source, config, 2, CachePrecision.Float16);
        var tokens = golden.Tokens[1].Length;
        var (heads, _) = Run(attention, golden.Floats(1, "attn_norm-2"), [.. Enumerable.Repeat(1, tokens)]);
        Assert.Equal(golden.Floats(1, "kqv_out-2"), heads);
    }

    [Fact]
    public void LongBatch_TakesTheTiledKernel_AndStaysCloseToFloat32()
    {
        // 70 query rows (>= ggml's 64-row tile) spanning two key tiles; no golden dump is this long, so the tiled
        // kernel is checked against the float32 reference: only the F16 rounding of the cache separates them.
        using var golden = new DeepSeekGoldenCase("deepseek3");
        var source = new ModelSource(golden.Model);
        var config = DeepSeek2Config.Read(source);
        const int tokens = 70;
        var rows = new List<float>();
        for (var prompt = 0; rows.Count < tokens * config.EmbeddingLength; prompt++)
        {
            rows.AddRange(golden.Floats(prompt % golden.PromptCount, "attn_norm-1"));
        }

        var input = rows.Take(tokens * config.EmbeddingLength).ToArray();
        float[] Heads(CachePrecision precision, int[] batches) =>
            Run(DeepSeek2.CreateAttention(source, config, 1, precision), input, batches).Heads;

        var reference = Heads(CachePrecision.Float32, [tokens]);
        var tiled = Heads(CachePrecision.Float16, [tokens]);
        var chunked = Heads(CachePrecision.Float16, [10, 60]);
        var tiledDifference = DeepSeekGoldenCase.MaxDifference(reference, tiled).Difference;
        var chunkedDifference = DeepSeekGoldenCase.MaxDifference(reference, chunked).Difference;
        output.WriteLine($"tiled vs float32 {tiledDifference:E3}, 10+60 batches vs float32 {chunkedDifference:E3}");
        Assert.InRange(tiledDifference, 1e-9f, 5e-3f);
        Assert.InRange(chunkedDifference, 1e-9f, 5e-3f);
        // The tiled kernel keeps the query and the accumulator in float32, so it is the closer of the two.
        Assert.True(tiledDifference < chunkedDifference);
    }

    [Fact]
    public void ThreadCount_DoesNotChangeABit()
    {
        using var golden = new DeepSeekGoldenCase("deepseek3");
        var source = new ModelSource(golden.Model);
        var config = DeepSeek2Config.Read(source);
        var attention = DeepSeek2.CreateAttention(source, config, 1, CachePrecision.Float16);
        var input = golden.Floats(3, "attn_norm-1");
        var tokens = golden.Tokens[3].Length;
        Assert.Equal(Run(attention, input, [tokens], threads: 1).Heads, Run(attention, input, [tokens], threads: 3).Heads);
    }

    // Runs consecutive batches through one cache; returns kqv_out and the projected output for all tokens.
    internal static (float[] Heads, float[] Projected) Run(MultiHeadLatentAttention attention, float[] input, int[] batches, int threads = 1)
    {
        var s = attention.Shape;
        var total = batches.Sum();
        var cache = attention.CreateCache(128);
        var heads = new float[total * s.HeadOutputLength];
        var projected = new float[total * s.EmbeddingLength];
        var position = 0;
        foreach (var count in batches)
        {
            var recorder = new RecordingObserver(site => site.Kind == HookKind.AttentionHeads);
            var context = new ForwardContext(count, position, new Parallelism(threads), [], [recorder]);
            attention.Forward(
                input.AsSpan(position * s.EmbeddingLength, count * s.EmbeddingLength),
                projected.AsSpan(position * s.EmbeddingLength, count * s.EmbeddingLength),
                cache,
                layer: 0,
                context);
            recorder.Activations["kqv_out-0"].CopyTo(heads.AsSpan(position * s.HeadOutputLength));
            position += count;
        }

        Assert.Equal(total, cache.Length);
        return (heads, projected);
    }
}
