using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;
using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

/// <summary>
/// Which of ggml's flash-attention kernels the f16-cache attention follows. Only the 70-token prompt of the
/// gpt-oss-mxfp4 golden case reaches 64 tokens, so the tiled kernel is also checked against exact float32 attention
/// and against the vector kernel.
/// </summary>
public sealed class AttentionKernelTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(0, 63, false)]
    [InlineData(0, 64, true)]
    [InlineData(63, 64, true)]
    [InlineData(511, 600, true)]
    [InlineData(512, 600, true)]
    [InlineData(512, 530, false)]
    [InlineData(1023, 1100, true)]
    [InlineData(1024, 1100, true)]
    [InlineData(1024, 1050, false)]
    public void TiledKernel_IsUsedForMicroBatchesOfAtLeast64Tokens(int token, int tokens, bool tiled) =>
        Assert.Equal(tiled, Attention.UsesTiledKernel(token, tokens));

    [Fact]
    public void LongBatch_TakesTheTiledKernel_CloserToFloat32ThanTheVectorKernel()
    {
        var golden = GoldenCase.Load("olmoe");
        var tokens = Enumerable.Range(0, 100).Select(i => (i * 37 + 11) % 500).ToArray();
        float[] Heads(CachePrecision precision, params int[] split)
        {
            using var model = MoeModel.Load(golden.ModelPath, new ModelLoadOptions { CachePrecision = precision });
            var session = model.CreateSession();
            var recorder = new RecordingObserver(site => site is { Kind: HookKind.AttentionHeads, Layer: 0 });
            var options = new RunOptions { Observers = [recorder], ThreadCount = 1, Logits = LogitsSelection.None };
            var result = new List<float>();
            int start = 0;
            foreach (int length in split)
            {
                session.Append(tokens.AsSpan(start, length), options);
                result.AddRange(recorder.Activations["kqv_out-0"]);
                start += length;
            }

            return [.. result];
        }

        var exact = Heads(CachePrecision.Float32, 100);
        var tiled = Heads(CachePrecision.Float16, 100);
        var vector = Heads(CachePrecision.Float16, 50, 50);
        float tiledDifference = exact.Zip(tiled, (a, b) => MathF.Abs(a - b)).Max();
        float vectorDifference = exact.Zip(vector, (a, b) => MathF.Abs(a - b)).Max();
        output.WriteLine($"tiled vs float32 {tiledDifference:E3}; vector kernel (two batches of 50) vs float32 {vectorDifference:E3}");
        Assert.InRange(tiledDifference, 1e-9f, 5e-3f);
        Assert.True(tiledDifference < vectorDifference);
    }
}
