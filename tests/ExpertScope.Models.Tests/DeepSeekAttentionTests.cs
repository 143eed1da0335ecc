using ExpertScope.Models.Architectures;
using ExpertScope.Models.Blocks;
using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

public class DeepSeekAttentionTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("deepseek2-lite")]
    [InlineData("deepseek3")]
    public void LatentAttention_FromGoldenNormInput_ReproducesKqvOut(string caseName)
    {
        using var golden = new DeepSeekGoldenCase(caseName);
        var config = DeepSeek2Config.FromGguf(golden.Model);
        var e = config.EmbeddingLength;
        var worstHeads = 0f;
        var worstOut = 0f;
        for (var prompt = 0; prompt < golden.PromptCount; prompt++)
        {
            var tokens = golden.Tokens[prompt].Length;
            for (var block = 0; block < config.BlockCount; block++)
            {
                var attention = DeepSeek2.CreateAttention(golden.Model, config, block);
                var cache = attention.CreateCache(64);
                var input = golden.Floats(prompt, $"attn_norm-{block}");
                var heads = new float[tokens * config.Attention.HeadOutputLength];
                var projected = new float[tokens * e];
                attention.Forward(input, tokens, cache, heads, projected);

                var (d, at) = DeepSeekGoldenCase.MaxDifference(golden.Floats(prompt, $"kqv_out-{block}"), heads);
                output.WriteLine($"p{prompt} kqv_out-{block}: max diff {d:E3} at {at}");
                worstHeads = MathF.Max(worstHeads, d);
                if (block > 0)
                {
                    // ffn_inp = attention output + the block's input residual (l_out of the block before).
                    var residual = golden.Floats(prompt, $"l_out-{block - 1}");
                    var expected = golden.Floats(prompt, $"ffn_inp-{block}");
                    for (var i = 0; i < expected.Length; i++)
                    {
                        expected[i] -= residual[i];
                    }

                    worstOut = MathF.Max(worstOut, DeepSeekGoldenCase.MaxDifference(expected, projected).Difference);
                }
            }
        }

        output.WriteLine($"worst kqv_out {worstHeads:E3}, worst projected {worstOut:E3}");
        Assert.True(worstHeads <= 1e-6f, $"kqv_out differs by {worstHeads}");
        Assert.True(worstOut <= 1e-6f, $"attention output differs by {worstOut}");
    }

    [Theory]
    [InlineData("deepseek2-lite")]
    [InlineData("deepseek3")]
    public void FusedKeyValueB_FromTheSplitWeights_AttendsLikeTheAbsorbedLatent(string caseName)
    {
        // Legacy files store attn_kv_b = per head [k_nope rows; value rows] x kv_lora. Built here from the split
        // attn_k_b ([H, kv_lora, nope]) and attn_v_b ([H, value, kv_lora]), the decompressed MHA path must agree with
        // the absorbed latent path up to float rounding.
        using var golden = new DeepSeekGoldenCase(caseName);
        var config = DeepSeek2Config.FromGguf(golden.Model);
        var s = config.Attention;
        const int block = 1;
        var keyB = golden.Model.GetFloat32(golden.Model.GetTensor($"blk.{block}.attn_k_b.weight"));
        var valueB = golden.Model.GetFloat32(golden.Model.GetTensor($"blk.{block}.attn_v_b.weight"));
        var fusedRow = s.NopeLength + s.ValueLength;
        var fused = new float[s.HeadCount * fusedRow * s.KvLoraRank];
        for (var h = 0; h < s.HeadCount; h++)
        {
            for (var r = 0; r < s.KvLoraRank; r++)
            {
                for (var i = 0; i < s.NopeLength; i++)
                {
                    fused[(((h * fusedRow) + i) * s.KvLoraRank) + r] = keyB[(((h * s.KvLoraRank) + r) * s.NopeLength) + i];
                }

                for (var j = 0; j < s.ValueLength; j++)
                {
                    fused[(((h * fusedRow) + s.NopeLength + j) * s.KvLoraRank) + r] = valueB[(((h * s.ValueLength) + j) * s.KvLoraRank) + r];
                }
            }
        }

        var latent = DeepSeek2.CreateAttention(golden.Model, config, block);
        var legacy = DeepSeek2.CreateAttention(golden.Model, config, block, new ArrayRows(fused, s.HeadCount * fusedRow, s.KvLoraRank));
        Assert.False(latent.UsesFusedKeyValue);
        Assert.True(legacy.UsesFusedKeyValue);

        var tokens = golden.Tokens[0].Length;
        var input = golden.Floats(0, $"attn_norm-{block}");
        float[] Run(MultiHeadLatentAttention attention)
        {
            var cache = attention.CreateCache(64, KvCachePrecision.Float32);
            var heads = new float[tokens * s.HeadOutputLength];
            // Two calls: a prefill and then the rest, so the cached positions are used as well.
            var first = 5;
            attention.Forward(input, first, cache, heads, new float[first * s.EmbeddingLength]);
            attention.Forward(input.AsSpan(first * s.EmbeddingLength), tokens - first, cache, heads.AsSpan(first * s.HeadOutputLength), new float[(tokens - first) * s.EmbeddingLength]);
            Assert.Equal(tokens, cache.Length);
            return heads;
        }

        var (difference, _) = DeepSeekGoldenCase.MaxDifference(Run(latent), Run(legacy));
        output.WriteLine($"max |absorbed - decompressed| = {difference:E3}");
        Assert.True(difference < 1e-5f, $"differ by {difference}");
    }

    [Fact]
    public void IncrementalDecoding_MatchesOneBatch()
    {
        using var golden = new DeepSeekGoldenCase("deepseek3");
        var config = DeepSeek2Config.FromGguf(golden.Model);
        var s = config.Attention;
        var attention = DeepSeek2.CreateAttention(golden.Model, config, 2);
        var tokens = golden.Tokens[1].Length;
        var input = golden.Floats(1, "attn_norm-2");

        var cache = attention.CreateCache(64);
        var heads = new float[tokens * s.HeadOutputLength];
        for (var t = 0; t < tokens; t++)
        {
            attention.Forward(input.AsSpan(t * s.EmbeddingLength), 1, cache, heads.AsSpan(t * s.HeadOutputLength), new float[s.EmbeddingLength]);
        }

        // One token per call takes the same flash-attention path as the prefill, so the dump is matched exactly.
        Assert.Equal(0f, DeepSeekGoldenCase.MaxDifference(golden.Floats(1, "kqv_out-2"), heads).Difference);
    }

    [Fact]
    public void LongBatch_TakesTheTiledKernel_AndStaysCloseToFloat32()
    {
        // 70 query rows (>= ggml's 64-row tile) spanning two key tiles; no golden dump is this long, so the tiled
        // kernel is checked against the float32 reference: only the F16 rounding of the cache separates them.
        using var golden = new DeepSeekGoldenCase("deepseek3");
        var config = DeepSeek2Config.FromGguf(golden.Model);
        var s = config.Attention;
        var attention = DeepSeek2.CreateAttention(golden.Model, config, 1);
        var rows = new List<float>();
        for (var prompt = 0; rows.Count < 70 * s.EmbeddingLength; prompt++)
        {
            rows.AddRange(golden.Floats(prompt % golden.PromptCount, "attn_norm-1"));
        }

        const int tokens = 70;
        var input = rows.Take(tokens * s.EmbeddingLength).ToArray();
        float[] Run(KvCachePrecision precision, int firstBatch)
        {
            var cache = attention.CreateCache(128, precision);
            var heads = new float[tokens * s.HeadOutputLength];
            attention.Forward(input, firstBatch, cache, heads, new float[firstBatch * s.EmbeddingLength]);
            if (firstBatch < tokens)
            {
                attention.Forward(input.AsSpan(firstBatch * s.EmbeddingLength), tokens - firstBatch, cache,
                    heads.AsSpan(firstBatch * s.HeadOutputLength), new float[(tokens - firstBatch) * s.EmbeddingLength]);
            }

            return heads;
        }

        var reference = Run(KvCachePrecision.Float32, tokens);
        var tiled = Run(KvCachePrecision.Float16, tokens);
        var smallBatches = Run(KvCachePrecision.Float16, 10);
        var tiledDifference = DeepSeekGoldenCase.MaxDifference(reference, tiled).Difference;
        var chunkDifference = DeepSeekGoldenCase.MaxDifference(reference, smallBatches).Difference;
        output.WriteLine($"tiled vs float32 {tiledDifference:E3}, 10+60 batches vs float32 {chunkDifference:E3}");
        Assert.InRange(tiledDifference, 1e-9f, 5e-3f);
        Assert.InRange(chunkDifference, 1e-9f, 5e-3f);
        // The tiled kernel keeps the query and the accumulator in float32, so it is the closer of the two.
        Assert.True(tiledDifference < chunkDifference);
    }
}
