using BenchmarkDotNet.Attributes;
using ExpertScope.Models.Blocks;

namespace ExpertScope.Benchmarks;

/// <summary>
/// The q·k and p·v products of ggml's tiled flash-attention kernel for one head of 128 (OLMoE-1B-7B, Qwen3-30B-A3B)
/// at <see cref="Context"/> cached positions: one block of <see cref="TiledAttentionKernels.QueryLanes"/> query rows
/// against every tile of 64 positions, keys and values read from one head of a head-major cache as the engine's. <see cref="Kernel"/>: <c>blocked</c> is the engine's register-blocked pass (values packed
/// per tile), <c>one-query</c> the one-query kernel it is tested against (each query's q·k one key at a time, its
/// p·v one position at a time with the accumulator in memory); both give the same bits. <c>blocked-fused</c> is the blocked pass under <c>--arithmetic fused</c>. One thread;
/// the softmax step between the two products is left out (it is the same in all three).
/// </summary>
[Config(typeof(BoundedConfig))]
public class TiledAttentionBenchmarks : IFlopCounter
{
    private const int Dim = 128;
    private const int Tile = 64;
    private float[] _keys = [];
    private float[] _values = [];
    private float[] _transposed = [];
    private float[] _queries = [];
    private float[] _dots = [];
    private float[] _weights = [];
    private float[] _targets = [];
    private int[] _rows = [];

    [Params(512, 4096)]
    public int Context { get; set; }

    [Params("blocked", "blocked-fused", "one-query")]
    public string Kernel { get; set; } = "blocked";

    private static int Lanes => TiledAttentionKernels.QueryLanes;

    /// <summary>q·k and p·v of every (query, position) pair: two multiply-adds per dimension each.</summary>
    public double Operations => 2.0 * 2 * Lanes * Context * Dim;

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(3);
        float Next() => (float)(Half)(random.NextDouble() * 2 - 1);
        _keys = [.. Enumerable.Range(0, Context * Dim).Select(_ => Next())];
        _values = [.. Enumerable.Range(0, Context * Dim).Select(_ => Next())];
        _queries = [.. Enumerable.Range(0, Lanes * Dim).Select(_ => Next())];
        _transposed = new float[Dim * Lanes];
        for (int lane = 0; lane < Lanes; lane++)
        {
            for (int d = 0; d < Dim; d++)
            {
                _transposed[d * Lanes + lane] = _queries[lane * Dim + d];
            }
        }

        _dots = new float[Tile * Lanes];
        _weights = [.. Enumerable.Range(0, Tile * Lanes).Select(_ => (float)random.NextDouble())];
        _targets = new float[Lanes * Dim];
        _rows = [.. Enumerable.Range(0, Lanes)];
    }

    [Benchmark]
    public float Products()
    {
        int stride = Dim;
        for (int tileStart = 0; tileStart < Context; tileStart += Tile)
        {
            switch (Kernel)
            {
                case "blocked":
                    Blocked<TiledAttentionKernels.SeparateMultiplyAdd>(tileStart, stride);
                    break;
                case "blocked-fused":
                    Blocked<TiledAttentionKernels.FusedMultiplyAdd>(tileStart, stride);
                    break;
                default:
                    OneQuery(tileStart, stride);
                    break;
            }
        }

        return _targets[0] + _dots[0];
    }

    private void Blocked<TMultiplyAdd>(int tileStart, int stride)
        where TMultiplyAdd : struct, TiledAttentionKernels.IMultiplyAdd
    {
        TiledAttentionKernels.QueryKeyDots<TMultiplyAdd>(_transposed, _keys, tileStart, Tile, stride, Dim, _dots);
        TiledAttentionKernels.AccumulateValues<TMultiplyAdd>(_weights, Tile, _rows, _values, tileStart, Tile, stride, _targets, Dim, Dim);
    }

    private void OneQuery(int tileStart, int stride)
    {
        for (int lane = 0; lane < Lanes; lane++)
        {
            var query = _queries.AsSpan(lane * Dim, Dim);
            for (int i = 0; i < Tile; i++)
            {
                var key = _keys.AsSpan((tileStart + i) * stride, Dim);
                float dot = 0.0f;
                for (int d = 0; d < Dim; d++)
                {
                    dot += query[d] * key[d];
                }

                _dots[i * Lanes + lane] = dot;
            }

            // The replaced value step: one position at a time over the whole row, the accumulator in memory.
            var target = _targets.AsSpan(lane * Dim, Dim);
            int width = System.Numerics.Vector<float>.Count;
            for (int i = 0; i < Tile; i++)
            {
                var p = new System.Numerics.Vector<float>(_weights[lane * Tile + i]);
                var row = _values.AsSpan((tileStart + i) * stride, Dim);
                for (int j = 0; j + width <= Dim; j += width)
                {
                    (new System.Numerics.Vector<float>(target.Slice(j, width)) + p * new System.Numerics.Vector<float>(row.Slice(j, width))).CopyTo(target.Slice(j, width));
                }
            }
        }
    }
}
