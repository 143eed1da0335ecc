using ExpertScope.Core;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;
using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

/// <summary>
/// llama.cpp references made with an F32 K/V cache and flash attention off (<c>tests/golden/*-f32cache</c>, made
/// from the shared set's models and prompts): with <c>--cache-type-k f32 --cache-type-v f32 --no-flash-attn</c> the
/// engine matches them at the float32 tolerances, while llama.cpp's default (f16 cache, flash attention) differs from
/// them exactly as llama.cpp's own default dump (the shared case) does.
/// </summary>
public sealed class F32CacheReferenceTests(ITestOutputHelper output)
{
    private static readonly ModelLoadOptions F32Cache = new() { Attention = new AttentionSettings(GgmlType.F32, GgmlType.F32, FlashAttention: false) };

    [Theory]
    [InlineData("qwen3moe")]
    [InlineData("deepseek3")]
    public void F32CacheWithoutFlashAttention_MatchesLlamaCppsF32CacheReference(string model)
    {
        var reference = GoldenCase.LoadRepository(model + "-f32cache");
        float largest = GoldenParity.Check(reference, Tolerances.Float32, options: F32Cache);
        output.WriteLine($"{model}: largest logit difference to llama.cpp's f32-cache reference {largest:E2}");
        Assert.InRange(largest, 0f, 1e-5f);
    }

    [Theory]
    [InlineData("qwen3moe")]
    [InlineData("deepseek3")]
    public void F16Default_DiffersFromTheF32Reference_AsLlamaCppsDefaultDoes(string model)
    {
        var reference = GoldenCase.LoadRepository(model + "-f32cache");
        var llamaDefault = GoldenCase.Load(model);
        var engineDefault = Run(reference, new ModelLoadOptions());
        var engineF32 = Run(reference, F32Cache);

        float llamaDifference = 0;
        float engineDifference = 0;
        float f32Difference = 0;
        var llamaFlips = new List<string>();
        var engineFlips = new List<string>();
        for (int p = 0; p < reference.Prompts.Count; p++)
        {
            var expected = reference.Prompts[p].Logits.ReadFloats();
            llamaDifference = MathF.Max(llamaDifference, LargestDifference(expected, llamaDefault.Prompts[p].Logits.ReadFloats()));
            engineDifference = MathF.Max(engineDifference, LargestDifference(expected, engineDefault[p].Logits));
            f32Difference = MathF.Max(f32Difference, LargestDifference(expected, engineF32[p].Logits));
            foreach (var tensor in reference.Prompts[p].Tensors.Where(t => t.Site == "ffn_moe_topk"))
            {
                var chosen = tensor.ReadInts();
                var llamaChosen = llamaDefault.Prompts[p].Tensors.Single(t => t.Name == tensor.Name).ReadInts();
                var engineChosen = engineDefault[p].Routing[tensor.Layer];
                int k = tensor.Columns;
                for (int token = 0; token < chosen.Length / k; token++)
                {
                    var referenceSet = chosen.Skip(token * k).Take(k).Order().ToArray();
                    string decision = $"prompt {p}, layer {tensor.Layer}, token {token}";
                    if (!referenceSet.SequenceEqual(llamaChosen.Skip(token * k).Take(k).Order()))
                    {
                        llamaFlips.Add(decision);
                    }

                    if (!referenceSet.SequenceEqual(engineChosen.Skip(token * k).Take(k).Order()))
                    {
                        engineFlips.Add(decision);
                    }
                }
            }
        }

        output.WriteLine($"{model}: largest logit difference to the f32 reference: llama.cpp default {llamaDifference:E2}, engine default {engineDifference:E2}, engine f32 cache {f32Difference:E2}");
        output.WriteLine($"routing decisions the f16 default changes: llama.cpp [{string.Join("; ", llamaFlips)}], engine [{string.Join("; ", engineFlips)}]");
        Assert.Equal(llamaFlips, engineFlips);
        Assert.True(Math.Abs(engineDifference - llamaDifference) <= Tolerances.Float32.Logits, "the engine's default should move the logits as llama.cpp's default does");
        Assert.True(engineDifference > 100 * f32Difference, "the f16 cache should move the logits far beyond the f32 cache's agreement");
    }

    /// <summary>
    /// DeepSeek's latent attention under the other cache types llama.cpp runs it with (two prompts each): its values are
    /// a view of the cached keys, so the key type decides both the scores and the values, with flash attention or without.
    /// </summary>
    [Theory]
    [InlineData("deepseek3-f16cache-nofa", "f16", false)]
    [InlineData("deepseek3-bf16cache", "bf16", true)]
    [InlineData("deepseek3-bf16cache-nofa", "bf16", false)]
    public void LatentAttention_OtherCacheTypes_MatchLlamaCpp(string caseName, string cacheType, bool flashAttention)
    {
        var type = AttentionSettings.ParseCacheType(cacheType);
        var reference = GoldenCase.LoadRepository(caseName);
        float largest = GoldenParity.Check(reference, Tolerances.Float32, options: new ModelLoadOptions { Attention = new AttentionSettings(type, type, flashAttention) });
        output.WriteLine($"{caseName}: largest logit difference {largest:E2}");
        Assert.InRange(largest, 0f, 1e-5f);
    }

    [Fact]
    public void LatentAttention_QuantizedKeyCacheWithoutFlashAttention_IsRefusedNamingTheOptions()
    {
        // DeepSeek-V3's sizes: a latent row of 512 + 64 is whole Q8_0 blocks, so only the missing flash attention is at fault.
        var shape = new MlaShape(7168, 128, 1536, 512, 128, 64, 128);
        var refused = new AttentionSettings(GgmlType.Q8_0, GgmlType.F16, FlashAttention: false);
        var message = Assert.Throws<ExpertScopeException>(() => MultiHeadLatentAttention.ValidateSettings(refused, shape, fusedKeyValue: false)).Message;
        Assert.Contains("--no-flash-attn", message, StringComparison.Ordinal);
        Assert.Contains("--cache-type-k", message, StringComparison.Ordinal);

        MultiHeadLatentAttention.ValidateSettings(refused with { FlashAttention = true }, shape, fusedKeyValue: false);
        MultiHeadLatentAttention.ValidateSettings(refused, shape, fusedKeyValue: true); // the legacy layout caches keys and values apart
    }

    private static List<(float[] Logits, Dictionary<int, int[]> Routing)> Run(GoldenCase golden, ModelLoadOptions options)
    {
        using var model = MoeModel.Load(golden.ModelPath, options);
        var runs = new List<(float[], Dictionary<int, int[]>)>();
        foreach (var prompt in golden.Prompts)
        {
            var recorder = new RecordingObserver(site => site.Kind == HookKind.Router);
            var logits = model.Run(prompt.Tokens, new RunOptions { Observers = [recorder], ThreadCount = 2 });
            runs.Add((logits.Values, recorder.Routing.ToDictionary(r => r.Key, r => r.Value.Experts)));
        }

        return runs;
    }

    private static float LargestDifference(float[] expected, float[] actual)
    {
        float largest = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            largest = MathF.Max(largest, MathF.Abs(expected[i] - actual[i]));
        }

        return largest;
    }
}
