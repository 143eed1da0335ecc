using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Blocks;

/// <summary>The feed-forward half of a block: a dense SwiGLU FFN or a mixture of experts.</summary>
public interface IFeedForward
{
    /// <summary>Computes the feed-forward output for a batch.</summary>
    /// <param name="input">The normed input <c>[T, E]</c> (<c>ffn_norm</c>).</param>
    /// <param name="output">Destination <c>[T, E]</c> (<c>ffn_out</c>, before the residual add).</param>
    /// <param name="layer">GGUF block index (for hook sites).</param>
    /// <param name="context">The batch's context.</param>
    void Forward(ReadOnlySpan<float> input, Span<float> output, int layer, ForwardContext context);
}

/// <summary>SwiGLU feed-forward: <c>down(silu(gate(x)) * up(x))</c>, as llama.cpp's <c>LLM_FFN_SILU</c> + <c>LLM_FFN_PAR</c>.</summary>
public sealed class SwiGluFfn : IFeedForward
{
    /// <summary>Creates the FFN from its three projections.</summary>
    public SwiGluFfn(LinearWeight gate, LinearWeight up, LinearWeight down)
    {
        Gate = gate;
        Up = up;
        Down = down;
    }

    /// <summary>Gate projection <c>[ff, E]</c>.</summary>
    public LinearWeight Gate { get; }

    /// <summary>Up projection <c>[ff, E]</c>.</summary>
    public LinearWeight Up { get; }

    /// <summary>Down projection <c>[E, ff]</c>.</summary>
    public LinearWeight Down { get; }

    /// <inheritdoc/>
    public void Forward(ReadOnlySpan<float> input, Span<float> output, int layer, ForwardContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        Compute(input, context.TokenCount, output, context.Parallelism);
        context.Emit(HookKind.FeedForwardOutput, layer, output, Down.Outputs);
    }

    /// <summary>Computes the FFN for <paramref name="tokenCount"/> rows without emitting anything.</summary>
    public void Compute(ReadOnlySpan<float> input, int tokenCount, Span<float> output, Parallelism parallelism)
    {
        int ff = Gate.Outputs;
        var gate = new float[tokenCount * ff];
        var up = new float[tokenCount * ff];
        Gate.Multiply(input, tokenCount, gate, parallelism);
        Up.Multiply(input, tokenCount, up, parallelism);
        GgmlMath.SwiGlu(gate, up, ff);
        Down.Multiply(gate, tokenCount, output, parallelism);
    }
}
