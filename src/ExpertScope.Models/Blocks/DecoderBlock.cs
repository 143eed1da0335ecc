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
    /// <param name="layer">GGUF block index.</param>
    /// <param name="attentionNorm"><c>attn_norm</c>.</param>
    /// <param name="attention">The attention.</param>
    /// <param name="feedForwardNorm">The norm before the feed-forward part (<c>ffn_norm</c>, GLM's <c>post_attention_norm</c>).</param>
    /// <param name="feedForward">Dense FFN or MoE.</param>
    /// <param name="residualScale">
    /// Multiplier of the attention and feed-forward outputs before each residual add (Granite's <c>residual_scale</c>);
    /// 0 = none, as llama.cpp skips a zero <c>f_residual_scale</c>.
    /// </param>
    public DecoderBlock(int layer, RmsNorm attentionNorm, IAttention attention, RmsNorm feedForwardNorm, IFeedForward feedForward, float residualScale = 0f)
    {
        Layer = layer;
        AttentionNorm = attentionNorm;
        Attention = attention;
        FeedForwardNorm = feedForwardNorm;
        FeedForward = feedForward;
        ResidualScale = residualScale;
    }

    /// <summary>Multiplier of each branch output before its residual add (0 = none).</summary>
    public float ResidualScale { get; }

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
        ScaleBranch(attended.AsSpan(0, size));
        TensorPrimitives.Add(attended.AsSpan(0, size), hidden[..size], hidden[..size]);
        context.Emit(HookKind.FeedForwardInput, Layer, hidden, width);
        FeedForwardNorm.Apply(hidden[..size], normed, context.Parallelism);
        context.Emit(HookKind.FeedForwardNorm, Layer, normed, width);

        var fed = attended;
        FeedForward.Forward(normed, fed, Layer, context);
        ScaleBranch(fed.AsSpan(0, size));
        TensorPrimitives.Add(fed.AsSpan(0, size), hidden[..size], hidden[..size]);

        context.Emit(HookKind.LayerOutput, Layer, hidden, width);
    }

    // ggml_scale: one rounded product per value, after the branch's sites were emitted unscaled (as llama.cpp names them).
    private void ScaleBranch(Span<float> branch)
    {
        if (ResidualScale != 0f)
        {
            TensorPrimitives.Multiply(branch, ResidualScale, branch);
        }
    }
}
