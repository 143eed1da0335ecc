using System.Numerics.Tensors;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Blocks;

/// <summary>
/// A pre-norm transformer block: <c>h += attn(norm(h)); h += ffn(norm(h))</c>, emitting <c>attn_norm</c>,
/// <c>ffn_inp</c>, <c>ffn_norm</c> and <c>l_out</c>.
/// </summary>
public sealed class DecoderBlock
{
    /// <summary>Creates a block.</summary>
    public DecoderBlock(int layer, RmsNorm attentionNorm, IAttention attention, RmsNorm feedForwardNorm, IFeedForward feedForward)
    {
        Layer = layer;
        AttentionNorm = attentionNorm;
        Attention = attention;
        FeedForwardNorm = feedForwardNorm;
        FeedForward = feedForward;
    }

    /// <summary>GGUF block index.</summary>
    public int Layer { get; }

    /// <summary><c>attn_norm</c>.</summary>
    public RmsNorm AttentionNorm { get; }

    /// <summary>The attention.</summary>
    public IAttention Attention { get; }

    /// <summary><c>ffn_norm</c>.</summary>
    public RmsNorm FeedForwardNorm { get; }

    /// <summary>Dense FFN or <see cref="MoeLayer"/>.</summary>
    public IFeedForward FeedForward { get; }

    /// <summary>The MoE layer, or null for a dense block.</summary>
    public MoeLayer? Moe => FeedForward as MoeLayer;

    /// <summary>Runs the block over the batch's residual stream <paramref name="hidden"/> <c>[T, E]</c> in place.</summary>
    public void Forward(Span<float> hidden, IAttentionCache cache, ForwardContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        int width = AttentionNorm.Width;
        int size = context.TokenCount * width;
        var normed = new float[size];
        AttentionNorm.Apply(hidden[..size], normed, context.Parallelism);
        context.Emit(HookKind.AttentionNorm, Layer, normed, width);

        var attended = new float[size];
        Attention.Forward(normed, attended, cache, Layer, context);
        TensorPrimitives.Add(attended.AsSpan(0, size), hidden[..size], hidden[..size]);
        context.Emit(HookKind.FeedForwardInput, Layer, hidden, width);
        FeedForwardNorm.Apply(hidden[..size], normed, context.Parallelism);
        context.Emit(HookKind.FeedForwardNorm, Layer, normed, width);

        var fed = attended;
        FeedForward.Forward(normed, fed, Layer, context);
        TensorPrimitives.Add(fed.AsSpan(0, size), hidden[..size], hidden[..size]);

        context.Emit(HookKind.LayerOutput, Layer, hidden, width);
    }
}
