namespace ExpertScope.Models.Blocks;

/// <summary>
/// RMS normalisation with a learned scale and optional shift: <c>y = x / sqrt(mean(x^2) + eps) * weight (+ bias)</c>,
/// applied to each contiguous group of <see cref="Width"/> values (a token's hidden state, or one attention head).
/// The shift is llama.cpp's <c>build_norm</c> with <c>LLM_NORM_RMS</c> and a bias tensor (Phi-3 and Phi-3.5-MoE).
/// </summary>
public sealed class RmsNorm
{
    private readonly float[] _weight;
    private readonly float[]? _bias;

    /// <summary>Creates the norm from its scale vector and, where the model has one, its shift.</summary>
    /// <param name="weight">Scale, length = the normalised width.</param>
    /// <param name="epsilon">Added to the mean square (GGUF <c>attention.layer_norm_rms_epsilon</c>).</param>
    /// <param name="bias">Shift added after the scale (GGUF <c>*_norm.bias</c>), same length as the scale; empty for none.</param>
    public RmsNorm(ReadOnlySpan<float> weight, float epsilon, ReadOnlySpan<float> bias = default)
    {
        if (!bias.IsEmpty && bias.Length != weight.Length)
        {
            throw new ArgumentException($"The norm's bias has {bias.Length} values; its scale has {weight.Length}.", nameof(bias));
        }

        _weight = weight.ToArray();
        _bias = bias.IsEmpty ? null : bias.ToArray();
        Epsilon = epsilon;
    }

    /// <summary>Number of values normalised together.</summary>
    public int Width => _weight.Length;

    /// <summary>The epsilon added to the mean square.</summary>
    public float Epsilon { get; }

    /// <summary>Whether a shift is added after the scale.</summary>
    public bool HasBias => _bias is not null;

    /// <summary>
    /// <see cref="Apply(ReadOnlySpan{float}, Span{float})"/> with the groups split among threads (each group's
    /// arithmetic is unchanged, so the bits are the same).
    /// </summary>
    public unsafe void Apply(ReadOnlySpan<float> input, Span<float> output, Parallelism parallelism)
    {
        int width = _weight.Length;
        int groups = input.Length / width;
        if (output.Length < groups * width)
        {
            throw new ArgumentException("The output is shorter than the input.", nameof(output));
        }

        fixed (float* inputPointer = input)
        fixed (float* outputPointer = output)
        {
            nint inAddress = (nint)inputPointer;
            nint outAddress = (nint)outputPointer;
            parallelism.For(groups, width, (start, end) => Apply(
                new ReadOnlySpan<float>((float*)inAddress + (long)start * width, (end - start) * width),
                new Span<float>((float*)outAddress + (long)start * width, (end - start) * width)));
        }
    }

    /// <summary>Normalises each group of <see cref="Width"/> values of <paramref name="input"/> into <paramref name="output"/> (may alias).</summary>
    public void Apply(ReadOnlySpan<float> input, Span<float> output)
    {
        int width = _weight.Length;
        for (int start = 0; start + width <= input.Length; start += width)
        {
            var x = input.Slice(start, width);
            var y = output.Slice(start, width);

            // ggml accumulates the sum of squares in double and takes the root in float.
            double sum = 0;
            for (int i = 0; i < width; i++)
            {
                sum += x[i] * x[i];
            }

            float mean = (float)(sum / width);
            float scale = 1.0f / MathF.Sqrt(mean + Epsilon);
            for (int i = 0; i < width; i++)
            {
                y[i] = x[i] * scale * _weight[i];
            }

            // ggml adds the bias as its own operation, after the product is rounded to float.
            if (_bias is not null)
            {
                for (int i = 0; i < width; i++)
                {
                    y[i] += _bias[i];
                }
            }
        }
    }
}
