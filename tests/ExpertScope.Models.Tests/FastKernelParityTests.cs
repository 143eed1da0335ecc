using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Tests;

/// <summary>The batched prefill kernels give the same bits as the one-token-at-a-time paths they replace.</summary>
[Collection(nameof(FastKernelSwitches))]
public sealed class FastKernelParityTests
{
    [Theory]
    [InlineData(FloatArithmetic.Reference)]
    [InlineData(FloatArithmetic.Fused)]
    public void BlockedTiledAttention_EqualsOneQueryAtATime(FloatArithmetic arithmetic)
    {
        var golden = GoldenCase.Load("olmoe");

        // 70 tokens after 30: the second batch takes the tiled kernel with earlier positions in the cache, and 70 is
        // not a multiple of the query block.
        var tokens = Enumerable.Range(0, 100).Select(i => (i * 37 + 11) % 500).ToArray();
        (float[] Heads, float[] Logits) Run(bool blocked)
        {
            bool saved = Attention.BlockQueries;
            Attention.BlockQueries = blocked;
            try
            {
                using var model = MoeModel.Load(golden.ModelPath, new ModelLoadOptions { FloatArithmetic = arithmetic });
                var session = model.CreateSession();
                var recorder = new RecordingObserver(site => site.Kind == HookKind.AttentionHeads);
                var options = new RunOptions { Observers = [recorder], ThreadCount = 2 };
                session.Append(tokens.AsSpan(0, 30), options);
                var logits = session.Append(tokens.AsSpan(30), options);
                var heads = recorder.Activations.OrderBy(p => p.Key, StringComparer.Ordinal).SelectMany(p => p.Value).ToArray();
                return (heads, logits.Values);
            }
            finally
            {
                Attention.BlockQueries = saved;
            }
        }

        var blocked = Run(blocked: true);
        var single = Run(blocked: false);
        Assert.Equal(single.Heads.Length, blocked.Heads.Length);
        Assert.True(single.Heads.AsSpan().SequenceEqual(blocked.Heads), "kqv_out differs");
        Assert.True(single.Logits.AsSpan().SequenceEqual(blocked.Logits), "logits differ");
    }
}

/// <summary>The two-by-two and 512-bit float dots equal the <c>Vector&lt;T&gt;</c> dot, bit for bit.</summary>
[Collection(nameof(FastKernelSwitches))]
public sealed class DotProductTileTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(24)]
    [InlineData(100)]
    [InlineData(2048)]
    [InlineData(2053)]
    public void Compute2x2_EqualsComputePerPair(int length)
    {
        bool saved = DotProduct.Uses512;
        try
        {
            foreach (bool wide in new[] { false, saved })
            {
                DotProduct.Uses512 = wide;
                CheckTile(length);
            }
        }
        finally
        {
            DotProduct.Uses512 = saved;
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(24)]
    [InlineData(2048)]
    [InlineData(2053)]
    public void Compute_EqualsTheVectorKernel(int length)
    {
        var random = new Random(length + 1);
        float[] Row() => [.. Enumerable.Range(0, length).Select(_ => (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-6, 6))))];
        for (int trial = 0; trial < 20; trial++)
        {
            var (a, b) = (Row(), Row());
            Assert.Equal(BitConverter.SingleToInt32Bits(DotProduct.ComputeVector(a, b)), BitConverter.SingleToInt32Bits(DotProduct.Compute(a, b)));
        }
    }

    private static void CheckTile(int length)
    {
        var random = new Random(length);
        float[] Row() => [.. Enumerable.Range(0, length).Select(_ => (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-6, 6))))];
        var (a0, a1, b0, b1) = (Row(), Row(), Row(), Row());
        DotProduct.Compute2x2(a0, a1, b0, b1, out float r00, out float r01, out float r10, out float r11);
        Assert.Equal(BitConverter.SingleToInt32Bits(DotProduct.ComputeVector(a0, b0)), BitConverter.SingleToInt32Bits(r00));
        Assert.Equal(BitConverter.SingleToInt32Bits(DotProduct.ComputeVector(a0, b1)), BitConverter.SingleToInt32Bits(r01));
        Assert.Equal(BitConverter.SingleToInt32Bits(DotProduct.ComputeVector(a1, b0)), BitConverter.SingleToInt32Bits(r10));
        Assert.Equal(BitConverter.SingleToInt32Bits(DotProduct.ComputeVector(a1, b1)), BitConverter.SingleToInt32Bits(r11));
    }
}

[CollectionDefinition(nameof(FastKernelSwitches), DisableParallelization = true)]
public sealed class FastKernelSwitches;
