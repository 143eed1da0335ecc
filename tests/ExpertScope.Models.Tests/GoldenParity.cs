using System.Globalization;

namespace ExpertScope.Models.Tests;

/// <summary>Runs a golden case and compares every dumped tensor, in graph order, with what the engine emitted.</summary>
internal static class GoldenParity
{
    /// <summary>Dumped sites the engine does not emit as hook sites (intermediate sums of the normalisation).</summary>
    private static readonly HashSet<string> NotEmitted = ["ffn_moe_weights_sum", "ffn_moe_weights_sum_clamped"];

    /// <summary>Router sites compared at <see cref="Tolerances.Router"/>.</summary>
    private static readonly HashSet<string> RouterSites =
        ["ffn_moe_probs", "ffn_moe_probs_biased", "ffn_moe_probs_masked", "ffn_moe_weights", "ffn_moe_weights_norm", "ffn_moe_weights_scaled", "ffn_moe_weights_softmax"];

    /// <summary>
    /// Runs every prompt of the case and returns the largest logit difference. Fails at the first diverging
    /// (layer, token, site) in graph order, naming it and the difference. <paramref name="siteAliases"/> maps a dumped
    /// name (<c>ffn_moe_shexp-1</c>) to the engine's hook-site name where llama.cpp's graph names a tensor differently.
    /// </summary>
    /// <param name="golden">The case.</param>
    /// <param name="tolerances">Absolute tolerances.</param>
    /// <param name="threads">Engine threads.</param>
    /// <param name="options">Load options (default: the case's overrides).</param>
    /// <param name="siteAliases">
    /// Dumped names an architecture's graph gives to a standard site, mapped to the engine's name: by site for every
    /// block (GLM's <c>post_attn_norm</c> is the <c>ffn_norm</c> site) or by full name for one block (<c>ffn_moe_shexp-1</c>).
    /// </param>
    public static float Check(GoldenCase golden, Tolerances tolerances, int threads = 1, ModelLoadOptions? options = null, IReadOnlyDictionary<string, string>? siteAliases = null)
    {
        using var model = MoeModel.Load(golden.ModelPath, options ?? golden.LoadOptions);
        float largestLogitDifference = 0;
        foreach (var prompt in golden.Prompts)
        {
            var recorder = new RecordingObserver();
            var logits = model.Run(prompt.Tokens, new RunOptions { Observers = [recorder], ThreadCount = threads });
            foreach (var tensor in prompt.Tensors)
            {
                if (NotEmitted.Contains(tensor.Site))
                {
                    continue;
                }

                if (tensor.Site == "ffn_moe_topk")
                {
                    CheckSelection(golden, prompt, tensor, recorder, tolerances);
                    continue;
                }

                if (tensor.Site == "ffn_moe_group_topk")
                {
                    CheckGroups(golden, prompt, tensor, recorder);
                    continue;
                }

                string name = siteAliases?.GetValueOrDefault(tensor.Name)
                    ?? (siteAliases?.GetValueOrDefault(tensor.Site) is { } alias ? $"{alias}-{tensor.Layer}" : tensor.Name);
                Assert.True(recorder.Activations.TryGetValue(name, out var actual), $"{golden.Name}: site {name} was not emitted.");
                float tolerance = RouterSites.Contains(tensor.Site) ? tolerances.Router : tolerances.Hidden;
                Compare(golden, prompt, name, tensor.Layer, tensor.Columns, tensor.ReadFloats(), actual.AsSpan(tensor.FirstRow * tensor.Columns), tolerance, tensor.FirstRow);
            }

            var expectedLogits = prompt.Logits.ReadFloats();
            var actualLogits = logits.Values.AsSpan(prompt.Logits.FirstRow * logits.Columns);
            Compare(golden, prompt, "logits", -1, logits.Columns, expectedLogits, actualLogits, tolerances.Logits, prompt.Logits.FirstRow);
            for (int i = 0; i < expectedLogits.Length; i++)
            {
                largestLogitDifference = MathF.Max(largestLogitDifference, MathF.Abs(expectedLogits[i] - actualLogits[i]));
            }
        }

        return largestLogitDifference;
    }

    private static void Compare(GoldenCase golden, GoldenPrompt prompt, string site, int layer, int width, float[] expected, ReadOnlySpan<float> actual, float tolerance, int firstRow = 0)
    {
        Assert.True(expected.Length <= actual.Length, $"{golden.Name} '{prompt.Text}': {site} has {actual.Length} values, expected {expected.Length}.");
        for (int i = 0; i < expected.Length; i++)
        {
            // Equal values differ by nothing, masked -inf scores included (their difference would be NaN).
            float difference = expected[i] == actual[i] ? 0 : MathF.Abs(expected[i] - actual[i]);
            if (!(difference <= tolerance))
            {
                Assert.Fail(string.Create(
                    CultureInfo.InvariantCulture,
                    $"{golden.Name} '{prompt.Text}': first divergence at layer {layer}, token {firstRow + (i / width)}, site {site}[{i % width}]: expected {expected[i]:R}, got {actual[i]:R} (difference {difference:E3} > {tolerance:E1})."));
            }
        }
    }

    private static void CheckSelection(GoldenCase golden, GoldenPrompt prompt, GoldenTensor tensor, RecordingObserver recorder, Tolerances tolerances)
    {
        Assert.True(recorder.Routing.TryGetValue(tensor.Layer, out var routing), $"{golden.Name}: no routing recorded for layer {tensor.Layer}.");
        var expected = tensor.ReadInts();
        int k = tensor.Columns;
        Assert.Equal(k, routing.TopK);
        Assert.Equal(0, tensor.FirstRow);
        var probabilityTensor = prompt.Find($"ffn_moe_probs-{tensor.Layer}");
        var probabilities = probabilityTensor is { FirstRow: 0 } ? probabilityTensor.ReadFloats() : null;
        for (int t = 0; t < expected.Length / k; t++)
        {
            var want = expected.AsSpan(t * k, k);
            var got = routing.Experts.AsSpan(t * k, k);
            if (want.SequenceEqual(got))
            {
                continue;
            }

            // Quantized cases may differ only where two golden probabilities are within the near-tie margin.
            bool nearTie = tolerances.AllowNearTies && probabilities is not null && IsNearTie(probabilities, routing.Probabilities.Length / (expected.Length / k), t, want, got, tolerances.NearTieMargin);
            Assert.True(
                nearTie,
                $"{golden.Name} '{prompt.Text}': layer {tensor.Layer}, token {t}: selected [{string.Join(",", got.ToArray())}], expected [{string.Join(",", want.ToArray())}].");
        }
    }

    private static bool IsNearTie(float[] probabilities, int experts, int token, ReadOnlySpan<int> want, ReadOnlySpan<int> got, float margin)
    {
        var row = probabilities.AsSpan(token * experts, experts).ToArray();
        var wantSet = want.ToArray().ToHashSet();
        var gotSet = got.ToArray().ToHashSet();
        if (!wantSet.SetEquals(gotSet))
        {
            // A swap across the selection boundary: the last chosen and the first rejected must be near-tied.
            float lowestWanted = wantSet.Min(e => row[e]);
            float highestOther = gotSet.Except(wantSet).Max(e => row[e]);
            return MathF.Abs(lowestWanted - highestOther) < margin;
        }

        // Same set, different order: every swapped neighbour pair must be near-tied.
        for (int i = 0; i < want.Length; i++)
        {
            if (want[i] != got[i] && MathF.Abs(row[want[i]] - row[got[i]]) >= margin)
            {
                return false;
            }
        }

        return true;
    }

    private static void CheckGroups(GoldenCase golden, GoldenPrompt prompt, GoldenTensor tensor, RecordingObserver recorder)
    {
        Assert.True(recorder.Routing.TryGetValue(tensor.Layer, out var routing), $"{golden.Name}: no routing recorded for layer {tensor.Layer}.");
        var expected = tensor.ReadInts();
        int kept = tensor.Columns;
        for (int t = 0; t < expected.Length / kept; t++)
        {
            // ggml's top-k does not promise an order among the kept groups; compare them as sets.
            var want = expected.AsSpan(t * kept, kept).ToArray().Order();
            var got = routing.Groups.AsSpan(t * kept, kept).ToArray().Order();
            Assert.True(want.SequenceEqual(got), $"{golden.Name} '{prompt.Text}': layer {tensor.Layer}, token {t}: groups differ.");
        }
    }
}

/// <summary>Per-case tolerances (absolute).</summary>
/// <param name="Hidden">Hidden states and other float sites.</param>
/// <param name="Router">Router probabilities and mixing weights.</param>
/// <param name="Logits">Logits.</param>
/// <param name="AllowNearTies">Accept different selections where golden probabilities are within <paramref name="NearTieMargin"/>.</param>
/// <param name="NearTieMargin">How close two golden probabilities must be to count as a near-tie.</param>
internal sealed record Tolerances(float Hidden, float Router, float Logits, bool AllowNearTies, float NearTieMargin = 1e-4f)
{
    /// <summary>Float32 models: the engine reproduces llama.cpp's arithmetic, so these hold with a wide margin.</summary>
    public static Tolerances Float32 { get; } = new(1e-4f, 1e-5f, 1e-4f, AllowNearTies: false);

    /// <summary>
    /// Quantized experts (Q8_0, Q4_K, F16): activations are converted per block exactly as llama.cpp converts them
    /// and the dots are ggml's, so the same tolerances hold; near-ties are still accepted as the documented escape.
    /// </summary>
    public static Tolerances Quantized { get; } = new(1e-4f, 1e-5f, 1e-4f, AllowNearTies: true);

    /// <summary>
    /// <see cref="FloatArithmetic.Fused"/>: float sums are rounded differently from llama.cpp's portable kernels
    /// (relative differences near 1e-7 per dot), and the differences grow through the blocks, most where an activation
    /// lands on the other side of a Q8_0 rounding step (up to ~2e-3 on these random models). Values are compared at
    /// 1e-2 (hidden, logits) and 1e-3 (router); selections must agree except where golden probabilities are within 1e-3.
    /// </summary>
    public static Tolerances Fused { get; } = new(1e-2f, 1e-3f, 1e-2f, AllowNearTies: true, NearTieMargin: 1e-3f);

    /// <summary>
    /// Dumps from llama.cpp's x86 SIMD build (the trained case): its sums are rounded in another order than the
    /// portable kernels, so values are held to the <see cref="Fused"/> tolerances (measured: hidden states up to ~1.1e-3,
    /// router probabilities ~1e-5, logits 4.3e-4 reference / 1.3e-3 fused, on logits up to ~14); selections must
    /// still agree exactly.
    /// </summary>
    public static Tolerances SimdBuild { get; } = Fused with { AllowNearTies = false };

}
