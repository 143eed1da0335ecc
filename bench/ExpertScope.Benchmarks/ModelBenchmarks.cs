using BenchmarkDotNet.Attributes;
using ExpertScope.Core;
using ExpertScope.Models;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;
using ExpertScope.Models.Synthetic;

namespace ExpertScope.Benchmarks;

/// <summary>
/// Attention at OLMoE-1B-7B's dimensions (hidden 2048, 16 heads of 128): a one-block synthetic model with tiny experts,
/// so a prefill is its Q/K/V/O projections (F32) plus causal flash attention over the f16 cache. One thread.
/// </summary>
[Config(typeof(BoundedConfig))]
public class AttentionBenchmarks : IFlopCounter, IDisposable
{
    private const int Width = 2048;
    private const int Heads = 16;
    private const int HeadDimension = 128;
    private MoeModel? _model;
    private int[] _tokens = [];
    private string _path = "";

    [Params(128, 512)]
    public int Tokens { get; set; }

    /// <summary>Four projections plus q·k and p·v over the causal triangle.</summary>
    public double Operations => 2.0 * 4 * Width * Width * Tokens + 2.0 * 2 * (Tokens * (Tokens + 1.0) / 2) * Heads * HeadDimension;

    [GlobalSetup]
    public void Setup()
    {
        _path = Path.Combine(Path.GetTempPath(), $"expertscope-bench-attention-{Environment.ProcessId}.gguf");
        var spec = new SyntheticModelSpec
        {
            Architecture = "olmoe", EmbeddingLength = Width, BlockCount = 1, HeadCount = Heads, KeyValueHeadCount = Heads, HeadDimension = HeadDimension,
            ExpertCount = 64, ExpertUsedCount = 8, ExpertFeedForwardLength = 32, FeedForwardLength = 32, VocabularySize = 512, ContextLength = 1024,
        };
        SyntheticModelWriter.Write(spec, _path, null);
        _model = MoeModel.Load(_path);
        var random = new Random(7);
        _tokens = [.. Enumerable.Range(0, Tokens).Select(_ => random.Next(512))];
    }

    [Benchmark]
    public void Prefill() => _model!.Run(_tokens, new RunOptions { ThreadCount = 1, Logits = LogitsSelection.None });

    [GlobalCleanup]
    public void Dispose()
    {
        _model?.Dispose();
        _model = null;
        if (File.Exists(_path))
        {
            File.Delete(_path);
        }

        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// Routing a 512-token batch: gating, top-k, normalisation and (optionally) the routing trace, at OLMoE-1B-7B's
/// (64 experts, top-8) and Qwen3-30B-A3B's (128 experts, top-8) router sizes. Operations counted: one per logit.
/// </summary>
[Config(typeof(BoundedConfig))]
public class RoutingBenchmarks : IFlopCounter
{
    private const int Tokens = 512;
    private Router? _router;
    private float[] _logits = [];
    private readonly RoutingResult _result = new();

    [Params(64, 128)]
    public int Experts { get; set; }

    public double Operations => (double)Tokens * Experts;

    [GlobalSetup]
    public void Setup()
    {
        var config = new RouterConfig(Experts, 8, GatingFunction.Softmax, NormalizeWeights: Experts == 128);
        _router = new Router(0, config);
        var random = new Random(3);
        _logits = [.. Enumerable.Range(0, Tokens * Experts).Select(_ => (float)(random.NextDouble() * 4 - 2))];
    }

    [Benchmark]
    public void Route() => _router!.Route(_logits, Tokens, [], _result);
}
