using ExpertScope.Models.Blocks;
using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

/// <summary>
/// <see cref="FloatArithmetic.Fused"/>: every vector kernel and tile shape gives the scalar definition's bits, the
/// results stay within the rounding bound of the exact dot, do not depend on threads or batching, and the golden cases
/// still route and predict as llama.cpp does.
/// </summary>
[Collection(nameof(FastKernelSwitches))]
public sealed class FusedArithmeticTests(ITestOutputHelper output)
{
    public static TheoryData<int> Lengths => [1, 15, 16, 17, 48, 100, 1024, 2048, 2053];

    private static IEnumerable<FusedKernel> AvailableKernels()
    {
        yield return FusedKernel.Scalar;
        if (System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Fma.IsSupported)
        {
            yield return FusedKernel.Vector256;
        }

        if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
        {
            yield return FusedKernel.Vector512;
        }
    }

    private static float[] Row(Random random, int length) =>
        [.. Enumerable.Range(0, length).Select(_ => (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-4, 4))))];

    [Theory]
    [MemberData(nameof(Lengths))]
    public unsafe void EveryKernelAndTileShape_GivesTheScalarDefinitionsBits(int length)
    {
        var random = new Random(length);
        var weights = Enumerable.Range(0, 4).Select(_ => Row(random, length)).ToArray();
        var tokens = Enumerable.Range(0, 4).Select(_ => Row(random, length)).ToArray();
        var flatWeights = weights.SelectMany(r => r).ToArray();
        var flatTokens = tokens.SelectMany(r => r).ToArray();
        var saved = FusedDotProduct.Kernel;
        try
        {
            foreach (var kernel in AvailableKernels())
            {
                FusedDotProduct.Kernel = kernel;
                for (int rows = 1; rows <= 4; rows++)
                {
                    for (int tokenCount = 1; tokenCount <= 4; tokenCount++)
                    {
                        var result = new float[4 * 4];
                        fixed (float* w = flatWeights)
                        fixed (float* x = flatTokens)
                        fixed (float* y = result)
                        {
                            FusedDotProduct.Tile(w, length, rows, x, length, tokenCount, length, y, 4);
                        }

                        for (int t = 0; t < tokenCount; t++)
                        {
                            for (int r = 0; r < rows; r++)
                            {
                                float expected = FusedDotProduct.Reference(weights[r], tokens[t]);
                                Assert.True(
                                    BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(result[t * 4 + r]),
                                    $"{kernel}, tile {rows}x{tokenCount}, pair ({r},{t}), length {length}: {result[t * 4 + r]:R} != {expected:R}");
                            }
                        }
                    }
                }

                Assert.Equal(
                    BitConverter.SingleToInt32Bits(FusedDotProduct.Reference(weights[0], tokens[1])),
                    BitConverter.SingleToInt32Bits(FusedDotProduct.Compute(weights[0], tokens[1])));
            }
        }
        finally
        {
            FusedDotProduct.Kernel = saved;
        }
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Reference_StaysWithinTheRoundingBoundOfTheExactDot(int length)
    {
        var random = new Random(1000 + length);
        for (int trial = 0; trial < 50; trial++)
        {
            var (a, b) = (Row(random, length), Row(random, length));
            double exact = 0, magnitude = 0;
            for (int i = 0; i < length; i++)
            {
                exact += (double)a[i] * b[i];
                magnitude += Math.Abs((double)a[i] * b[i]);
            }

            // Each lane adds at most ceil(n / 16) fused steps, then four reduction additions, each off by at most one
            // unit roundoff of the partial sums (bounded by the sum of magnitudes), plus the final rounding.
            double unit = Math.Pow(2, -24);
            double bound = ((length + 15) / 16 + 5) * unit * magnitude + unit * Math.Abs(exact) + 1e-30;
            double error = Math.Abs(FusedDotProduct.Reference(a, b) - exact);
            Assert.True(error <= bound, $"length {length}: error {error:E3} exceeds the bound {bound:E3}.");
        }
    }

    [Fact]
    public unsafe void Tile_RefusesShapesOutsideOneToFour()
    {
        var buffer = new float[64];
        fixed (float* pointer = buffer)
        {
            nint address = (nint)pointer;
            Assert.Throws<ArgumentOutOfRangeException>(() => FusedDotProduct.Tile((float*)address, 1, 5, (float*)address, 1, 1, 1, (float*)address, 1));
            Assert.Throws<ArgumentOutOfRangeException>(() => FusedDotProduct.Tile((float*)address, 1, 1, (float*)address, 1, 0, 1, (float*)address, 1));
        }
    }

    [Theory]
    [InlineData("olmoe")]
    [InlineData("mixtral")]
    [InlineData("qwen2moe-f16")]
    public void Results_DoNotDependOnThreadsOrOnBatching(string name)
    {
        var golden = GoldenCase.Load(name);
        using var model = MoeModel.Load(golden.ModelPath, golden.LoadOptions with { FloatArithmetic = FloatArithmetic.Fused });
        var tokens = golden.Prompts[^1].Tokens;
        var one = model.Run(tokens, new RunOptions { ThreadCount = 1 });
        var three = model.Run(tokens, new RunOptions { ThreadCount = 3 });
        Assert.True(one.Values.AsSpan().SequenceEqual(three.Values), $"{name}: fused logits differ between 1 and 3 threads.");

        // Token by token through the cache: every product lands in a different tile shape than in the batch.
        var session = model.CreateSession();
        for (int t = 0; t < tokens.Length; t++)
        {
            var row = session.Append(tokens.AsSpan(t, 1), new RunOptions { ThreadCount = 2 });
            Assert.True(
                one.Row(t).SequenceEqual(row.Row(0)),
                $"{name}: position {t} differs between the batch and one token at a time.");
        }
    }

    [Theory]
    [MemberData(nameof(GoldenParityTests.Float32Cases), MemberType = typeof(GoldenParityTests))]
    [InlineData("qwen2moe-f16")]
    public void GoldenCase_RoutesAsLlamaCppAndStaysClose(string name)
    {
        var golden = GoldenCase.Load(name);
        float largest = GoldenParity.Check(golden, Tolerances.Fused, threads: 2, options: golden.LoadOptions with { FloatArithmetic = FloatArithmetic.Fused });
        output.WriteLine($"{name} (fused): largest logit difference {largest:E3}");
    }

    /// <summary>
    /// Where expert activations are quantized to Q8 blocks, a last-bit difference that moves one activation across a
    /// rounding step changes it by a whole step (block maximum / 127), so these tiny random models drift further
    /// (llama.cpp's own SIMD and portable builds differ the same way): almost every routing decision must still agree
    /// and the logits stay close.
    /// </summary>
    [Theory]
    [InlineData("olmoe-q8_0")]
    [InlineData("olmoe-q4_k")]
    public void QuantizedGoldenCase_AgreesOnAlmostEveryRoutingDecision(string name)
    {
        var golden = GoldenCase.Load(name);
        using var model = MoeModel.Load(golden.ModelPath, golden.LoadOptions with { FloatArithmetic = FloatArithmetic.Fused });
        int decisions = 0, agreeing = 0;
        float largest = 0, logitRange = 0;
        foreach (var prompt in golden.Prompts)
        {
            var recorder = new RecordingObserver();
            var logits = model.Run(prompt.Tokens, new RunOptions { Observers = [recorder], ThreadCount = 2 });
            foreach (var tensor in prompt.Tensors.Where(t => t.Site == "ffn_moe_topk"))
            {
                var expected = tensor.ReadInts();
                int k = tensor.Columns;
                var routing = recorder.Routing[tensor.Layer];
                for (int t = 0; t < expected.Length / k; t++)
                {
                    decisions++;
                    if (expected.AsSpan(t * k, k).ToArray().ToHashSet().SetEquals(routing.Experts.AsSpan(t * k, k).ToArray()))
                    {
                        agreeing++;
                    }
                }
            }

            var expectedLogits = prompt.Logits.ReadFloats();
            for (int i = 0; i < expectedLogits.Length; i++)
            {
                largest = MathF.Max(largest, MathF.Abs(expectedLogits[i] - logits.Values[i]));
                logitRange = MathF.Max(logitRange, MathF.Abs(expectedLogits[i]));
            }
        }

        output.WriteLine($"{name} (fused): {agreeing}/{decisions} expert sets as llama.cpp's; largest logit difference {largest:E3} (largest |logit| {logitRange:F3})");
        Assert.True(agreeing >= 0.95 * decisions, $"{name}: only {agreeing} of {decisions} expert sets agree with llama.cpp's.");
        Assert.True(largest <= 0.02f * logitRange, $"{name}: largest logit difference {largest:E3} exceeds 2% of the largest logit {logitRange:F3}.");
    }

    [Fact]
    public void ReferenceArithmetic_IsTheDefault() =>
        Assert.Equal(FloatArithmetic.Reference, ModelLoadOptions.Default.FloatArithmetic);
}
