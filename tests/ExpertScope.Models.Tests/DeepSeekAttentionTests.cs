using ExpertScope.Models.Architectures;
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
}
