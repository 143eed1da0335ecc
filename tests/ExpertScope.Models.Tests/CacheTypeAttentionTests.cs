using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Kernels.Quant;
using ExpertScope.Models.Architectures;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;
using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

/// <summary>
/// llama.cpp's <c>--cache-type-k/-v</c> and <c>--no-flash-attn</c>. What is compared: (1) the attention core of one
/// layer against a plain scalar transcription, written here, of llama.cpp's CPU graph for the same settings
/// (<c>build_attn_mha</c>: flash attention's vector kernel, or mul_mat → soft_max_ext → mul_mat), with the engine's
/// own projections and RoPE as input (those are golden-tested elsewhere); (2) a whole model whose f32 cache without
/// flash attention reproduces an f32 reference: the engine's exact float32 attention, an independent summation
/// order (llama.cpp's own f32-cache dumps are matched in <see cref="F32CacheReferenceTests"/>).
/// </summary>
public sealed class CacheTypeAttentionTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("f32", "f32", false)]
    [InlineData("f16", "f16", false)]
    [InlineData("bf16", "bf16", false)]
    [InlineData("q8_0", "f32", false)]
    [InlineData("q8_0", "q8_0", true)]
    [InlineData("bf16", "bf16", true)]
    [InlineData("q4_0", "f16", true)]
    [InlineData("f32", "q8_0", true)]
    public void AttentionCore_EqualsATranscriptionOfLlamaCppsCpuGraph(string keyType, string valueType, bool flashAttention)
    {
        var settings = new AttentionSettings(AttentionSettings.ParseCacheType(keyType), AttentionSettings.ParseCacheType(valueType), flashAttention);
        using var temp = new TempDirectory();
        SyntheticModelWriter.Write(SmallHeads(), temp.File("model.gguf"));
        using var file = GgufFile.Open(temp.File("model.gguf"));
        var source = new ModelSource(file);
        var hp = ModelHyperparameters.Read(source);
        var attention = StandardParts.GroupedQueryAttention(source, hp, 0, RopeStyle.Normal, QkNormMode.None, new ModelLoadOptions { Attention = settings });
        const int tokens = 20;
        var input = RandomRows(tokens * hp.EmbeddingLength, new Random(5));

        // Two batches through one cache, so cached positions are read back as stored.
        var heads = new float[tokens * hp.HeadCount * hp.HeadDimension];
        var cache = attention.CreateCache(64);
        int position = 0;
        foreach (int count in new[] { 12, 8 })
        {
            var recorder = new RecordingObserver(site => site.Kind == HookKind.AttentionHeads);
            var context = new ForwardContext(count, position, new Parallelism(2), [], [recorder]);
            var projected = new float[count * hp.EmbeddingLength];
            attention.Forward(input.AsSpan(position * hp.EmbeddingLength, count * hp.EmbeddingLength), projected, cache, 0, context);
            recorder.Activations["kqv_out-0"].CopyTo(heads.AsSpan(position * hp.HeadCount * hp.HeadDimension));
            position += count;
        }

        var expected = Transcription(attention, input, tokens, settings);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - heads[i]) <= 2e-6f * (1 + Math.Abs(expected[i])), $"{settings}: element {i} is {heads[i]:R}, the transcription gives {expected[i]:R}");
        }
    }

    [Fact]
    public void F32CacheWithoutFlashAttention_ReproducesAnF32Reference_WhereTheF16DefaultFlipsARoutingDecision()
    {
        // The five held-out prompts of the trained tiny OLMoE (learned routing), each its own sequence.
        var golden = GoldenCase.Load("olmoe-trained");
        (float[] Logits, List<RecordingObserver> Routing) Run(ModelLoadOptions options)
        {
            using var model = MoeModel.Load(golden.ModelPath, options);
            var logits = new List<float>();
            var routing = new List<RecordingObserver>();
            foreach (var prompt in golden.Prompts)
            {
                var recorder = new RecordingObserver(site => site.Kind == HookKind.Router);
                logits.AddRange(model.Run(prompt.Tokens, new RunOptions { Observers = [recorder], ThreadCount = 2 }).Values);
                routing.Add(recorder);
            }

            return ([.. logits], routing);
        }

        var reference = Run(new ModelLoadOptions { CachePrecision = CachePrecision.Float32 });
        var f32 = Run(new ModelLoadOptions { Attention = new AttentionSettings(GgmlType.F32, GgmlType.F32, FlashAttention: false) });
        var f16 = Run(new ModelLoadOptions());

        double f32Difference = MaxRelative(f32.Logits, reference.Logits);
        double f16Difference = MaxRelative(f16.Logits, reference.Logits);
        var f32Flips = f32.Routing.Zip(reference.Routing, RoutingDifferences).SelectMany(d => d).ToList();
        var f16Flips = f16.Routing.Zip(reference.Routing, RoutingDifferences).SelectMany(d => d).ToList();
        output.WriteLine($"max relative logit difference to the f32 reference: f32 cache, no flash attention {f32Difference:E2}; f16 default {f16Difference:E2}");
        output.WriteLine($"ranked top-k choices that differ from the reference: f32 {f32Flips.Count}, f16 {f16Flips.Count}");
        f16Flips.ForEach(output.WriteLine);
        Assert.InRange(f32Difference, 0, 1e-5);
        Assert.True(f16Difference > 100 * f32Difference, "the f16 cache should move logits well beyond the f32 rounding level");
        Assert.Empty(f32Flips);
        Assert.True(f16Flips.Count > 0, "the f16 cache is expected to flip a near-tied routing decision on these prompts");
    }

    [Fact]
    public void BadSettingsAreRejectedWithTheReason()
    {
        Assert.Equal(GgmlType.Q8_0, AttentionSettings.ParseCacheType("Q8_0"));
        Assert.Contains("iq4_nl", Assert.Throws<ExpertScopeException>(() => AttentionSettings.ParseCacheType("iq4_nl")).Message, StringComparison.Ordinal);
        var quantizedValues = new AttentionSettings(GgmlType.F16, GgmlType.Q8_0, FlashAttention: false);
        Assert.Contains("requires flash attention", Assert.Throws<ExpertScopeException>(() => quantizedValues.Validate(64, 64)).Message, StringComparison.Ordinal);
        Assert.Contains("head length 16", Assert.Throws<ExpertScopeException>(() => new AttentionSettings(GgmlType.Q8_0).Validate(16, 16)).Message, StringComparison.Ordinal);
        Assert.True(new AttentionSettings(GgmlType.F32, GgmlType.F32).IsLlamaDefault); // flash attention casts f32 to f16
        Assert.False(new AttentionSettings(GgmlType.F32, GgmlType.F32, FlashAttention: false).IsLlamaDefault);

        using var temp = new TempDirectory();
        SyntheticModelWriter.Write(SyntheticPresets.Get("tiny-deepseek2"), temp.File("mla.gguf"));
        var error = Assert.Throws<ExpertScopeException>(() => MoeModel.Load(temp.File("mla.gguf"), new ModelLoadOptions { Attention = new AttentionSettings(GgmlType.Q8_0, FlashAttention: false) }));
        Assert.Contains("mla.gguf", error.Message, StringComparison.Ordinal);
    }

    private static SyntheticModelSpec SmallHeads() =>
        SyntheticPresets.Get("tiny-mixtral") with { EmbeddingLength = 128, HeadCount = 4, KeyValueHeadCount = 2, HeadDimension = 32 };

    private static float[] RandomRows(int count, Random random)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = (float)(random.NextDouble() * 4 - 2);
        }

        return values;
    }

    /// <summary>llama.cpp's CPU attention for all tokens at once (one batch; the cache is whole positions either way).</summary>
    private static float[] Transcription(Attention attention, float[] input, int tokens, AttentionSettings settings)
    {
        var o = attention.Options;
        int heads = o.HeadCount;
        int dim = o.HeadDimension;
        int kvWidth = o.KvHeadCount * dim;
        var (q, k, v) = AttentionReferenceInputs.ProjectAndRotate(attention, input, tokens);

        // With flash attention, build_attn_mha casts an f32 K or V to f16 (ggml_cast) before the kernel.
        var keyType = settings.FlashAttention && settings.KeyType == GgmlType.F32 ? GgmlType.F16 : settings.KeyType;
        var valueType = settings.FlashAttention && settings.ValueType == GgmlType.F32 ? GgmlType.F16 : settings.ValueType;
        var keyRows = new byte[tokens][];
        for (int t = 0; t < tokens; t++)
        {
            // The cache row as ggml's set_rows stores it (from_float of the cache type).
            keyRows[t] = new byte[GgmlTypes.Get(keyType).RowBytes(kvWidth)];
            Quantize.Row(keyType, k.AsSpan(t * kvWidth, kvWidth), keyRows[t]);
            var valueBytes = new byte[GgmlTypes.Get(valueType).RowBytes(kvWidth)];
            Quantize.Row(valueType, v.AsSpan(t * kvWidth, kvWidth), valueBytes);
            Dequantize.Row(valueType, valueBytes, v.AsSpan(t * kvWidth, kvWidth)); // v_to_float / the f16 or bf16 value
        }

        int headBytes = (int)GgmlTypes.Get(keyType).RowBytes(dim);
        var result = new float[tokens * heads * dim];
        for (int t = 0; t < tokens; t++)
        {
            for (int h = 0; h < heads; h++)
            {
                int kvHead = h / (heads / o.KvHeadCount);
                var queryBytes = new byte[VecDot.ActivationBytes(keyType, dim)];
                VecDot.QuantizeActivations(keyType, q.AsSpan((t * heads + h) * dim, dim), queryBytes);
                var scores = new float[t + 1];
                for (int p = 0; p <= t; p++)
                {
                    scores[p] = VecDot.QuantizedReference(keyType, keyRows[p].AsSpan(kvHead * headBytes, headBytes), queryBytes);
                }

                var target = result.AsSpan((t * heads + h) * dim, dim);
                if (settings.FlashAttention)
                {
                    FlashVectorKernel(scores, v, kvWidth, kvHead * dim, o.Scale, valueType == GgmlType.F16, target);
                }
                else
                {
                    SoftmaxThenMatMul(scores, v, kvWidth, kvHead * dim, o.Scale, valueType, target);
                }
            }
        }

        return result;
    }

    /// <summary>ggml_compute_forward_flash_attn_ext_f16_one_chunk, scalar, for one query row.</summary>
    private static void FlashVectorKernel(float[] scores, float[] values, int stride, int offset, float scale, bool halfAccumulator, Span<float> target)
    {
        float sum = 0f;
        float max = float.NegativeInfinity;
        target.Clear();
        for (int p = 0; p < scores.Length; p++)
        {
            float s = scores[p] * scale;
            float ms = 1f;
            float vs = 1f;
            if (s > max)
            {
                float old = max;
                max = s;
                ms = MathF.Exp(old - max);
                for (int j = 0; j < target.Length; j++)
                {
                    target[j] = Round(target[j] * ms);
                }
            }
            else
            {
                vs = MathF.Exp(s - max);
            }

            for (int j = 0; j < target.Length; j++)
            {
                float product = values[p * stride + offset + j] * vs;
                target[j] = Round(target[j] + product);
            }

            sum = sum * ms + vs;
        }

        float inverse = sum == 0f ? 0f : 1f / sum;
        for (int j = 0; j < target.Length; j++)
        {
            target[j] *= inverse;
        }

        float Round(float x) => halfAccumulator ? (float)(Half)x : x;
    }

    /// <summary>kq = mul_mat(k, q); soft_max_ext (scale, causal mask, ggml's vector exp and double sum); kqv = mul_mat(v, kq).</summary>
    private static void SoftmaxThenMatMul(float[] scores, float[] values, int stride, int offset, float scale, GgmlType valueType, Span<float> target)
    {
        // llama.cpp's cache length is padded to 256 positions; masked ones are -inf and add nothing.
        var row = new float[256];
        Array.Fill(row, float.NegativeInfinity);
        for (int p = 0; p < scores.Length; p++)
        {
            row[p] = scores[p] * scale;
        }

        float max = row.Max();
        double sum = GgmlMath.ExpMinusMax(row, max);
        float inverse = (float)(1.0 / sum);
        for (int j = 0; j < target.Length; j++)
        {
            double dot = 0;
            for (int p = 0; p < scores.Length; p++)
            {
                float probability = row[p] * inverse;
                probability = valueType switch
                {
                    GgmlType.F16 => (float)(Half)probability,
                    GgmlType.BF16 => ScalarFormats.BFloat16ToSingle(ScalarFormats.SingleToBFloat16(probability)),
                    _ => probability,
                };
                dot += probability * values[p * stride + offset + j];
            }

            target[j] = (float)dot;
        }
    }

    private static double MaxRelative(float[] actual, float[] expected)
    {
        double scale = expected.Max(v => Math.Abs((double)v));
        return actual.Zip(expected, (a, b) => Math.Abs((double)a - b)).Max() / scale;
    }

    /// <summary>(layer, position) pairs whose ranked top-k (experts in selection order) differs, with the reference's probability gap there.</summary>
    private static List<string> RoutingDifferences(RecordingObserver actual, RecordingObserver expected)
    {
        var differences = new List<string>();
        foreach (var (layer, routing) in expected.Routing)
        {
            var other = actual.Routing[layer];
            int experts = routing.Probabilities.Length / (routing.Experts.Length / routing.TopK);
            for (int t = 0; t < routing.Experts.Length / routing.TopK; t++)
            {
                var a = other.Experts.AsSpan(t * other.TopK, other.TopK);
                var b = routing.Experts.AsSpan(t * routing.TopK, routing.TopK);
                int rank = a.CommonPrefixLength(b);
                if (rank < b.Length)
                {
                    float gap = routing.Probabilities[t * experts + b[rank]] - routing.Probabilities[t * experts + a[rank]];
                    differences.Add($"layer {layer} position {t} rank {rank}: expert {a[rank]} instead of {b[rank]} (reference probabilities differ by {gap:E2})");
                }
            }
        }

        return differences;
    }
}
