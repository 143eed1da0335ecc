using ExpertScope.Models;
using ExpertScope.Models.Blocks;

namespace ExpertScope.Experiments.Lens;

/// <summary>
/// The logit lens: a hidden vector read through the model's own final RMS norm (<c>output_norm</c>) and
/// unembedding (<c>output.weight</c>, or the tied <c>token_embd</c> the architecture substitutes when it is absent),
/// with exactly the engine's arithmetic, so the residual stream after the last block gives the model's logits bit for bit.
/// </summary>
public sealed class LensProjection
{
    private readonly MoeModel _model;
    private readonly Parallelism _parallelism;

    /// <summary>Creates the lens for <paramref name="model"/>.</summary>
    /// <param name="model">The model.</param>
    /// <param name="threadCount">Threads of the unembedding product (null = one per processor; results do not depend on it).</param>
    public LensProjection(MoeModel model, int? threadCount = null)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _parallelism = threadCount is { } n ? new Parallelism(n) : Parallelism.Default;
    }

    /// <summary>Hidden width E.</summary>
    public int Width => _model.Hyperparameters.EmbeddingLength;

    /// <summary>Vocabulary size V.</summary>
    public int VocabularySize => _model.Definition.Output.Outputs;

    /// <summary>Logits <c>[rows, V]</c> of <paramref name="rows"/> hidden vectors <c>[rows, E]</c>: unembed(norm(h)).</summary>
    /// <exception cref="ArgumentException">The input is not a whole number of hidden vectors.</exception>
    public float[] Project(ReadOnlySpan<float> hidden, int rows)
    {
        if (hidden.Length != rows * Width)
        {
            throw new ArgumentException($"Expected {rows} x {Width} values, got {hidden.Length}.", nameof(hidden));
        }

        var normed = new float[hidden.Length];
        _model.Definition.OutputNorm.Apply(hidden, normed);
        var logits = new float[rows * VocabularySize];
        if (rows > 0)
        {
            _model.Definition.ProjectToVocabulary(normed, rows, logits, _parallelism);
        }

        return logits;
    }
}
