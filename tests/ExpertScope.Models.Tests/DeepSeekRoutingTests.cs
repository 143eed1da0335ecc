using ExpertScope.Models.Architectures;
using ExpertScope.Models.Blocks;
using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

public class DeepSeekRoutingTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("deepseek2-lite")]
    [InlineData("deepseek3")]
    public void RouterStages_FromGoldenFfnNorm_MatchEveryDump(string caseName)
    {
        using var golden = new DeepSeekGoldenCase(caseName);
        var config = DeepSeek2Config.FromGguf(golden.Model);
        var experts = config.ExpertCount;
        var k = config.ExpertUsedCount;
        var worst = new Dictionary<string, float>();
        void Check(string name, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
        {
            Assert.Equal(expected.Length, actual.Length);
            var d = DeepSeekGoldenCase.MaxDifference(expected, actual).Difference;
            worst[name] = MathF.Max(worst.GetValueOrDefault(name), d);
        }

        var checkedLayers = 0;
        for (var prompt = 0; prompt < golden.PromptCount; prompt++)
        {
            var tokens = golden.Tokens[prompt].Length;
            for (var block = config.LeadingDenseBlockCount; block < config.BlockCount; block++)
            {
                checkedLayers++;
                var router = new GgufFloat32Rows(golden.Model, golden.Model.GetTensor($"blk.{block}.ffn_gate_inp.weight"));
                var biasTensor = golden.Model.FindTensor($"blk.{block}.exp_probs_b.bias");
                var bias = biasTensor is null ? null : golden.Model.GetFloat32(biasTensor).ToArray();
                Assert.Equal(bias is not null, golden.Has(prompt, $"ffn_moe_probs_biased-{block}"));

                var x = golden.Floats(prompt, $"ffn_norm-{block}");
                var logits = new float[tokens * experts];
                router.Multiply(x, tokens, logits);
                Check("logits", golden.Floats(prompt, $"ffn_moe_logits-{block}"), logits);

                var probs = new float[tokens * experts];
                var selection = new float[tokens * experts];
                var groupsKept = new int[tokens * Math.Max(1, config.ExpertGroupUsedCount)];
                var topk = new int[tokens * k];
                var weights = new float[tokens * k];
                var sums = new float[tokens];
                var normalized = new float[tokens * k];
                var scaled = new float[tokens * k];
                for (var t = 0; t < tokens; t++)
                {
                    var p = probs.AsSpan(t * experts, experts);
                    DeepSeekRouting.Gate(config.Gating, logits.AsSpan(t * experts, experts), p);
                    var sel = selection.AsSpan(t * experts, experts);
                    for (var e = 0; e < experts; e++)
                    {
                        sel[e] = p[e] + (bias?[e] ?? 0f);
                    }

                    if (bias is not null)
                    {
                        Check("probs_biased", golden.Floats(prompt, $"ffn_moe_probs_biased-{block}").AsSpan(t * experts, experts), sel);
                    }

                    if (config.ExpertGroupCount > 1)
                    {
                        var kept = groupsKept.AsSpan(t * config.ExpertGroupUsedCount, config.ExpertGroupUsedCount);
                        DeepSeekRouting.MaskGroups(sel, config.ExpertGroupCount, config.ExpertGroupUsedCount, kept);
                    }

                    var chosen = topk.AsSpan(t * k, k);
                    DeepSeekRouting.TopK(sel, chosen);
                    var w = weights.AsSpan(t * k, k);
                    for (var j = 0; j < k; j++)
                    {
                        w[j] = p[chosen[j]];
                    }

                    w.CopyTo(normalized.AsSpan(t * k, k));
                    if (config.NormalizeExpertWeights)
                    {
                        sums[t] = DeepSeekRouting.Normalize(normalized.AsSpan(t * k, k));
                    }

                    for (var j = 0; j < k; j++)
                    {
                        scaled[(t * k) + j] = normalized[(t * k) + j] * config.ExpertWeightsScale;
                    }
                }

                Check("probs", golden.Floats(prompt, $"ffn_moe_probs-{block}"), probs);
                if (config.ExpertGroupCount > 1)
                {
                    Assert.Equal(golden.Ints(prompt, $"ffn_moe_group_topk-{block}"), groupsKept);
                    Check("probs_masked", golden.Floats(prompt, $"ffn_moe_probs_masked-{block}"), selection);
                }

                Assert.Equal(golden.Ints(prompt, $"ffn_moe_topk-{block}"), topk);
                Check("weights", golden.Floats(prompt, $"ffn_moe_weights-{block}"), weights);
                if (config.NormalizeExpertWeights)
                {
                    Check("weights_sum_clamped", golden.Floats(prompt, $"ffn_moe_weights_sum_clamped-{block}"), sums);
                    Check("weights_norm", golden.Floats(prompt, $"ffn_moe_weights_norm-{block}"), normalized);
                }
                else
                {
                    Assert.False(golden.Has(prompt, $"ffn_moe_weights_norm-{block}"));
                }

                if (config.ExpertWeightsScale is not (0f or 1f))
                {
                    Check("weights_scaled", golden.Floats(prompt, $"ffn_moe_weights_scaled-{block}"), scaled);
                }
                else
                {
                    Assert.False(golden.Has(prompt, $"ffn_moe_weights_scaled-{block}"));
                }
            }
        }

        foreach (var (name, d) in worst)
        {
            output.WriteLine($"{name}: max diff {d:E3}");
            Assert.True(d <= 1e-6f, $"{name} differs by {d}");
        }

        Assert.True(checkedLayers > 0);
    }
}
