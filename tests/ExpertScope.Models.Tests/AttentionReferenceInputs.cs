using ExpertScope.Models.Blocks;

namespace ExpertScope.Models.Tests;

/// <summary>The inputs the plain attention references start from, computed as the engine computes them.</summary>
internal static class AttentionReferenceInputs
{
    /// <summary>Queries, keys and values of every token by the attention's own projections (one thread), queries and keys rotated by its RoPE.</summary>
    public static (float[] Q, float[] K, float[] V) ProjectAndRotate(Attention attention, float[] input, int tokens)
    {
        var o = attention.Options;
        int heads = o.HeadCount;
        int dim = o.HeadDimension;
        int kvWidth = o.KvHeadCount * dim;
        var q = new float[tokens * heads * dim];
        var k = new float[tokens * kvWidth];
        var v = new float[tokens * kvWidth];
        attention.Weights.Query.Multiply(input, tokens, q, new Parallelism(1));
        attention.Weights.Key.Multiply(input, tokens, k, new Parallelism(1));
        attention.Weights.Value.Multiply(input, tokens, v, new Parallelism(1));
        for (int t = 0; t < tokens; t++)
        {
            o.Rope.Apply(q.AsSpan(t * heads * dim, heads * dim), heads, dim, t);
            o.Rope.Apply(k.AsSpan(t * kvWidth, kvWidth), o.KvHeadCount, dim, t);
        }

        return (q, k, v);
    }
}
