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
/// Sliding and chunked key windows (llama.cpp's <c>is_masked_swa</c>) and attention sinks (a per-head logit in each
/// softmax denominator, ggml's <c>sinks</c> operand) in every attention kernel path, against a plain double-precision
/// softmax attention that masks with the window's pairwise rule and adds exp(sink) to the denominator. Each path sees
/// keys and values as its cache stores them, so the remaining differences are the kernels' float and half roundings;
/// the output without the window (or without the sinks) lies far outside that tolerance, so the comparison shows
/// each at work.
/// </summary>
[Collection(nameof(FastKernelSwitches))]
public sealed class KeyWindowAttentionTests : IDisposable
{
    private const int Tokens = 70;

    private readonly ITestOutputHelper _output;
    private readonly TempDirectory _temp = new();
    private readonly GgufFile _file;

    public KeyWindowAttentionTests(ITestOutputHelper output)
    {
        _output = output;
        var spec = SyntheticPresets.Get("tiny-mixtral") with { EmbeddingLength = 128, HeadCount = 4, KeyValueHeadCount = 2, HeadDimension = 32 };
        SyntheticModelWriter.Write(spec, _temp.File("model.gguf"));
        _file = GgufFile.Open(_temp.File("model.gguf"));
    }

    public static TheoryData<string, int, int, string, bool> Paths()
    {
        var data = new TheoryData<string, int, int, string, bool>();
        foreach (var (window, sinks) in new[] { ("sliding 5", false), ("sliding 20", false), ("chunked 16", false), ("chunked 32", false), ("none", true), ("sliding 5", true), ("chunked 32", true) })
        {
            data.Add("f32", Tokens, 0, window, sinks);          // exact float32 kernel
            data.Add("f16", Tokens, 0, window, sinks);          // tiled kernel, one batch of 70
            data.Add("f16", 6, 64, window, sinks);              // tiled kernel after 6 cached positions
            data.Add("f16", 40, 30, window, sinks);             // vector kernel (batches under 64 tokens)
            data.Add("f32/f32 no-fa", 40, 30, window, sinks);   // cache types: soft_max then mul_mat
            data.Add("f16/f16 no-fa", Tokens, 0, window, sinks);
            data.Add("bf16/bf16 fa", 40, 30, window, sinks);    // cache types: flash vector kernel
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Attention_EqualsAPlainMaskedReference_OneAndTwoThreadsIdentical(string path, int firstBatch, int secondBatch, string windowText, bool sinks)
    {
        var window = ParseWindow(windowText);
        var (attention, input) = Layer(path, window, sinks);
        int[] batches = secondBatch == 0 ? [firstBatch] : [firstBatch, secondBatch];
        var oneThread = Heads(attention, input, batches, threads: 1);
        var twoThreads = Heads(attention, input, batches, threads: 2);
        Assert.True(oneThread.AsSpan().SequenceEqual(twoThreads), "one and two threads differ");

        var reference = Reference(attention, input, StoredAs(path));
        // What the comparison must be able to see: the window, or without one the sinks.
        var unwindowed = window is not null
            ? Heads(new Attention(attention.Options with { KeyWindow = null }, attention.Weights), input, batches, threads: 1)
            : Heads(new Attention(attention.Options, attention.Weights with { Sinks = null }), input, batches, threads: 1);
        int width = attention.Options.HeadCount * attention.Options.HeadDimension;
        int token = 0;
        float loosest = 0;
        foreach (int batch in batches)
        {
            float tolerance = Tolerance(path, batch);
            loosest = Math.Max(loosest, tolerance);
            for (int end = token + batch; token < end; token++)
            {
                var range = new Range(token * width, (token + 1) * width);
                float difference = MaxDifference(oneThread[range], reference[range]);
                Assert.True(difference <= tolerance, $"{path} {window}: token {token} differs from the masked reference by {difference:E2} (tolerance {tolerance:E0})");
            }
        }

        float unwindowedDifference = MaxDifference(unwindowed, reference);
        _output.WriteLine($"{path} {window} sinks {sinks}: max difference to the reference {MaxDifference(oneThread, reference):E2}; without the window (or sinks) {unwindowedDifference:E2}");
        Assert.True(unwindowedDifference > 100 * loosest, "the window (or sinks) should change the output well beyond the tolerance");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TiledKernel_BlockedEqualsOneQueryAtATime(bool sliding)
    {
        var window = new KeyWindow(sliding ? KeyWindowKind.Sliding : KeyWindowKind.Chunked, sliding ? 5 : 32);
        var (attention, input) = Layer("f16", window);
        bool saved = Attention.BlockQueries;
        try
        {
            Attention.BlockQueries = true;
            var blocked = Heads(attention, input, [6, 64], threads: 2);
            Attention.BlockQueries = false;
            var single = Heads(attention, input, [6, 64], threads: 2);
            Assert.True(blocked.AsSpan().SequenceEqual(single), "blocked and single-query tiled kernels differ");
        }
        finally
        {
            Attention.BlockQueries = saved;
        }
    }

    [Theory]
    [InlineData("f32")]
    [InlineData("f16")]
    [InlineData("f16/f16 no-fa")]
    public void WindowThatHidesNothing_GivesTheUnwindowedBits(string path)
    {
        var (attention, input) = Layer(path, new KeyWindow(KeyWindowKind.Sliding, Tokens));
        var windowed = Heads(attention, input, [Tokens], threads: 2);
        var plain = Heads(new Attention(attention.Options with { KeyWindow = null }, attention.Weights), input, [Tokens], threads: 2);
        Assert.True(windowed.AsSpan().SequenceEqual(plain));
    }

    [Fact]
    public void FirstVisible_AgreesWithThePairwiseRule()
    {
        foreach (var kind in new[] { KeyWindowKind.Sliding, KeyWindowKind.Chunked })
        {
            foreach (int length in new[] { 1, 2, 3, 5, 64 })
            {
                var window = new KeyWindow(kind, length);
                for (int query = 0; query < 150; query++)
                {
                    int first = window.FirstVisible(query);
                    for (int key = 0; key <= query; key++)
                    {
                        Assert.Equal(key < first, window.Masks(key, query));
                    }
                }
            }
        }

        // llama.cpp's rules on a few hand-checked pairs.
        Assert.True(new KeyWindow(KeyWindowKind.Sliding, 4).Masks(3, 7));
        Assert.False(new KeyWindow(KeyWindowKind.Sliding, 4).Masks(4, 7));
        Assert.True(new KeyWindow(KeyWindowKind.Chunked, 4).Masks(7, 8));
        Assert.False(new KeyWindow(KeyWindowKind.Chunked, 4).Masks(8, 11));
    }

    [Fact]
    public void WindowOfNoPositions_IsRejected() =>
        Assert.Contains("at least 1", Assert.Throws<ExpertScopeException>(() => new KeyWindow(KeyWindowKind.Sliding, 0)).Message, StringComparison.Ordinal);

    private static KeyWindow? ParseWindow(string text)
    {
        if (text == "none")
        {
            return null;
        }

        var parts = text.Split(' ');
        return new KeyWindow(parts[0] == "sliding" ? KeyWindowKind.Sliding : KeyWindowKind.Chunked, int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// How far a path may fall from the double reference: ggml's vector kernel (batches under 64 tokens) converts the
    /// query to f16 and accumulates values in f16, and without flash attention an f16 value cache takes probabilities
    /// rounded to f16; every other path differs only by float32 rounding.
    /// </summary>
    private static float Tolerance(string path, int batchLength) => path switch
    {
        "f16" when batchLength < Attention.TileLength => 8e-3f,
        "f16/f16 no-fa" => 4e-3f,
        _ => 2e-6f,
    };

    /// <summary>The cache type keys and values are rounded through, or null for exact float32.</summary>
    private static GgmlType? StoredAs(string path) => path switch
    {
        "f32" or "f32/f32 no-fa" => null,
        "bf16/bf16 fa" => GgmlType.BF16,
        _ => GgmlType.F16,
    };

    public void Dispose()
    {
        _file.Dispose();
        _temp.Dispose();
    }

    private (Attention Attention, float[] Input) Layer(string path, KeyWindow? window, bool sinks = false)
    {
        var load = path switch
        {
            "f32" => new ModelLoadOptions { CachePrecision = CachePrecision.Float32 },
            "f16" => new ModelLoadOptions(),
            "f32/f32 no-fa" => new ModelLoadOptions { Attention = new AttentionSettings(GgmlType.F32, GgmlType.F32, FlashAttention: false) },
            "f16/f16 no-fa" => new ModelLoadOptions { Attention = new AttentionSettings(GgmlType.F16, GgmlType.F16, FlashAttention: false) },
            _ => new ModelLoadOptions { Attention = new AttentionSettings(GgmlType.BF16, GgmlType.BF16, FlashAttention: true) },
        };
        var source = new ModelSource(_file);
        var hp = ModelHyperparameters.Read(source);
        var attention = StandardParts.GroupedQueryAttention(source, hp, 0, RopeStyle.Normal, QkNormMode.None, load);
        var random = new Random(11);
        var input = new float[Tokens * hp.EmbeddingLength];
        for (int i = 0; i < input.Length; i++)
        {
            input[i] = (float)(random.NextDouble() * 4 - 2);
        }

        // Sinks between -1 and 3: some above and some below the heads' typical scores.
        float[]? sinkLogits = sinks ? [.. Enumerable.Range(0, hp.HeadCount).Select(_ => (float)(random.NextDouble() * 4 - 1))] : null;
        return (new Attention(attention.Options with { KeyWindow = window }, attention.Weights with { Sinks = sinkLogits }), input);
    }

    /// <summary>kqv_out for all tokens, fed in the given batches through one cache.</summary>
    private static float[] Heads(Attention attention, float[] input, int[] batches, int threads)
    {
        var o = attention.Options;
        int embedding = attention.Weights.Query.Inputs;
        int width = o.HeadCount * o.HeadDimension;
        var heads = new float[Tokens * width];
        var cache = attention.CreateCache(Tokens);
        int position = 0;
        foreach (int count in batches)
        {
            var recorder = new RecordingObserver(site => site.Kind == HookKind.AttentionHeads);
            var context = new ForwardContext(count, position, new Parallelism(threads), [], [recorder]);
            var projected = new float[count * embedding];
            attention.Forward(input.AsSpan(position * embedding, count * embedding), projected, cache, 0, context);
            recorder.Activations["kqv_out-0"].CopyTo(heads.AsSpan(position * width));
            position += count;
        }

        return heads;
    }

    /// <summary>
    /// Softmax attention in double over the keys the causal mask and <see cref="KeyWindow.Masks"/> leave, with keys
    /// and values (and, for a cache type's dot, the query) rounded through <paramref name="stored"/>.
    /// </summary>
    private static float[] Reference(Attention attention, float[] input, GgmlType? stored)
    {
        var o = attention.Options;
        var window = o.KeyWindow;
        var sinks = attention.Weights.Sinks;
        int heads = o.HeadCount;
        int dim = o.HeadDimension;
        int kvWidth = o.KvHeadCount * dim;
        var (q, k, v) = AttentionReferenceInputs.ProjectAndRotate(attention, input, Tokens);

        if (stored is { } type)
        {
            RoundThrough(type, k);
            RoundThrough(type, v);
            if (type == GgmlType.BF16)
            {
                RoundThrough(type, q);
            }
        }

        var result = new float[q.Length];
        var weights = new double[Tokens];
        for (int t = 0; t < Tokens; t++)
        {
            for (int h = 0; h < heads; h++)
            {
                int kvOffset = h / (heads / o.KvHeadCount) * dim;
                var query = q.AsSpan((t * heads + h) * dim, dim);
                double max = double.NegativeInfinity;
                for (int p = 0; p <= t; p++)
                {
                    weights[p] = double.NegativeInfinity;
                    if (window is null || !window.Masks(p, t))
                    {
                        double dot = 0;
                        for (int d = 0; d < dim; d++)
                        {
                            dot += (double)query[d] * k[p * kvWidth + kvOffset + d];
                        }

                        weights[p] = dot * o.Scale;
                        max = Math.Max(max, weights[p]);
                    }
                }

                double sum = 0;
                if (sinks is not null)
                {
                    max = Math.Max(max, sinks[h]);
                    sum = Math.Exp(sinks[h] - max);
                }

                for (int p = 0; p <= t; p++)
                {
                    weights[p] = Math.Exp(weights[p] - max);
                    sum += weights[p];
                }

                for (int d = 0; d < dim; d++)
                {
                    double value = 0;
                    for (int p = 0; p <= t; p++)
                    {
                        value += weights[p] * v[p * kvWidth + kvOffset + d];
                    }

                    result[(t * heads + h) * dim + d] = (float)(value / sum);
                }
            }
        }

        return result;
    }

    private static void RoundThrough(GgmlType type, float[] values)
    {
        var bytes = new byte[GgmlTypes.Get(type).RowBytes(values.Length)];
        Quantize.Row(type, values, bytes);
        Dequantize.Row(type, bytes, values);
    }

    private static float MaxDifference(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        float max = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            max = MathF.Max(max, MathF.Abs(actual[i] - expected[i]));
        }

        return max;
    }
}
