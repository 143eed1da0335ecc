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
            Assert.True(d == 0f, $"{name} differs by {d}");
        }

        Assert.True(checkedLayers > 0);
    }

    [Theory]
    [InlineData("deepseek2-lite")]
    [InlineData("deepseek3")]
    public void FeedForwardParts_FromGoldenFfnNorm_AreBitExact(string caseName)
    {
        // Dense leading block, shared experts, and the routed mixture (experts weighted, then summed in slot order).
        using var golden = new DeepSeekGoldenCase(caseName);
        var config = DeepSeek2Config.FromGguf(golden.Model);
        var model = golden.Model;
        var e = config.EmbeddingLength;
        float[] SwiGlu(string gate, string up, string down, ReadOnlySpan<float> x, int tokens)
        {
            var g = new GgufFloat32Rows(model, model.GetTensor(gate));
            var u = new GgufFloat32Rows(model, model.GetTensor(up));
            var d = new GgufFloat32Rows(model, model.GetTensor(down));
            var gv = new float[tokens * g.Rows];
            var uv = new float[tokens * u.Rows];
            g.Multiply(x, tokens, gv);
            u.Multiply(x, tokens, uv);
            GgmlMath.SwiGlu(gv, uv);
            var result = new float[tokens * e];
            d.Multiply(gv, tokens, result);
            return result;
        }

        var worst = 0f;
        for (var prompt = 0; prompt < golden.PromptCount; prompt++)
        {
            var tokens = golden.Tokens[prompt].Length;
            var dense = SwiGlu("blk.0.ffn_gate.weight", "blk.0.ffn_up.weight", "blk.0.ffn_down.weight", golden.Floats(prompt, "ffn_norm-0"), tokens);
            worst = MathF.Max(worst, DeepSeekGoldenCase.MaxDifference(golden.Floats(prompt, "ffn_out-0"), dense).Difference);
            for (var block = config.LeadingDenseBlockCount; block < config.BlockCount; block++)
            {
                var x = golden.Floats(prompt, $"ffn_norm-{block}");
                var shared = SwiGlu($"blk.{block}.ffn_gate_shexp.weight", $"blk.{block}.ffn_up_shexp.weight", $"blk.{block}.ffn_down_shexp.weight", x, tokens);
                worst = MathF.Max(worst, DeepSeekGoldenCase.MaxDifference(golden.Floats(prompt, $"ffn_shexp-{block}"), shared).Difference);

                var topk = golden.Ints(prompt, $"ffn_moe_topk-{block}");
                var finalWeights = golden.Has(prompt, $"ffn_moe_weights_scaled-{block}") ? $"ffn_moe_weights_scaled-{block}"
                    : golden.Has(prompt, $"ffn_moe_weights_norm-{block}") ? $"ffn_moe_weights_norm-{block}" : $"ffn_moe_weights-{block}";
                var weights = golden.Floats(prompt, finalWeights);
                var k = config.ExpertUsedCount;
                var ff = config.ExpertFeedForwardLength;
                var gates = model.GetFloat32(model.GetTensor($"blk.{block}.ffn_gate_exps.weight")).ToArray();
                var ups = model.GetFloat32(model.GetTensor($"blk.{block}.ffn_up_exps.weight")).ToArray();
                var downs = model.GetFloat32(model.GetTensor($"blk.{block}.ffn_down_exps.weight")).ToArray();
                var routed = new float[tokens * e];
                for (var t = 0; t < tokens; t++)
                {
                    var row = x.AsSpan(t * e, e);
                    var sum = routed.AsSpan(t * e, e);
                    for (var slot = 0; slot < k; slot++)
                    {
                        var expert = topk[(t * k) + slot];
                        var gate = new ArrayRows(gates.AsSpan(expert * ff * e, ff * e).ToArray(), ff, e);
                        var up = new ArrayRows(ups.AsSpan(expert * ff * e, ff * e).ToArray(), ff, e);
                        var down = new ArrayRows(downs.AsSpan(expert * e * ff, e * ff).ToArray(), e, ff);
                        var g = new float[ff];
                        var u = new float[ff];
                        gate.Multiply(row, 1, g);
                        up.Multiply(row, 1, u);
                        GgmlMath.SwiGlu(g, u);
                        var y = new float[e];
                        down.Multiply(g, 1, y);
                        for (var j = 0; j < e; j++)
                        {
                            var weighted = y[j] * weights[(t * k) + slot];
                            sum[j] = slot == 0 ? weighted : sum[j] + weighted;
                        }
                    }
                }

                worst = MathF.Max(worst, DeepSeekGoldenCase.MaxDifference(golden.Floats(prompt, $"ffn_moe_out-{block}"), routed).Difference);
                for (var i = 0; i < routed.Length; i++)
                {
                    routed[i] += shared[i];
                }

                worst = MathF.Max(worst, DeepSeekGoldenCase.MaxDifference(golden.Floats(prompt, $"ffn_out-{block}"), routed).Difference);
            }
        }

        output.WriteLine($"worst difference {worst:E3}");
        Assert.Equal(0f, worst);
    }
}
