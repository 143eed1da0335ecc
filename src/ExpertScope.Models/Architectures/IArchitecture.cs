using ExpertScope.Models.Blocks;

namespace ExpertScope.Models.Architectures;

/// <summary>
/// One architecture (<c>general.architecture</c>): reads its hyperparameters and tensors from a checkpoint and wires
/// the shared blocks into a <see cref="ModelDefinition"/>. One implementation per file in this folder.
/// </summary>
public interface IArchitecture
{
    /// <summary>The <c>general.architecture</c> value it handles (<c>olmoe</c>).</summary>
    string Name { get; }

    /// <summary>A one-line description for listings and error messages.</summary>
    string Description { get; }

    /// <summary>Builds the model from <paramref name="source"/>.</summary>
    /// <exception cref="Core.ExpertScopeException">Missing metadata, or missing or mis-shaped tensors.</exception>
    ModelDefinition Build(ModelSource source, ModelLoadOptions options);
}

/// <summary>Hyperparameters every decoder architecture has, read from GGUF keys under the architecture prefix.</summary>
/// <param name="Architecture"><c>general.architecture</c>.</param>
/// <param name="EmbeddingLength">E (<c>embedding_length</c>).</param>
/// <param name="BlockCount">Blocks (<c>block_count</c>).</param>
/// <param name="HeadCount">Query heads (<c>attention.head_count</c>).</param>
/// <param name="KvHeadCount">Key/value heads (<c>attention.head_count_kv</c>, default = heads).</param>
/// <param name="HeadDimension">Values per head (<c>attention.key_length</c>, default E / heads).</param>
/// <param name="ContextLength">Training context (<c>context_length</c>); prompts may not exceed it.</param>
/// <param name="VocabularySize">V (<c>vocab_size</c>, default the embedding's rows).</param>
/// <param name="RmsEpsilon"><c>attention.layer_norm_rms_epsilon</c>.</param>
/// <param name="RopeBase"><c>rope.freq_base</c> (default 10000).</param>
/// <param name="RopeDimensions"><c>rope.dimension_count</c> (default head size).</param>
/// <param name="FeedForwardLength"><c>feed_forward_length</c> (0 if absent).</param>
/// <param name="ExpertCount">X (<c>expert_count</c>, 0 for dense models).</param>
/// <param name="ExpertUsedCount">k (<c>expert_used_count</c>).</param>
public sealed record ModelHyperparameters(
    string Architecture,
    int EmbeddingLength,
    int BlockCount,
    int HeadCount,
    int KvHeadCount,
    int HeadDimension,
    int ContextLength,
    int VocabularySize,
    float RmsEpsilon,
    float RopeBase,
    int RopeDimensions,
    int FeedForwardLength,
    int ExpertCount,
    int ExpertUsedCount)
{
    /// <summary>Reads the common keys.</summary>
    /// <exception cref="Core.ExpertScopeException">A required key is missing.</exception>
    public static ModelHyperparameters Read(ModelSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        int embedding = source.Integer("embedding_length");
        int heads = source.Integer("attention.head_count");
        int headDimension = source.OptionalInt32("attention.key_length") ?? embedding / heads;
        long vocabulary = source.OptionalInteger("vocab_size")
            ?? source.File.FindTensor("token_embd.weight")?.Dimension(1)
            ?? throw new Core.ExpertScopeException($"{source.FilePath}: tensor 'token_embd.weight' is missing.");
        return new ModelHyperparameters(
            source.Architecture,
            embedding,
            source.Integer("block_count"),
            heads,
            source.OptionalInt32("attention.head_count_kv") ?? heads,
            headDimension,
            source.Integer("context_length"),
            (int)vocabulary,
            source.Number("attention.layer_norm_rms_epsilon"),
            (float)(source.OptionalNumber("rope.freq_base") ?? 10000.0),
            source.OptionalInt32("rope.dimension_count") ?? headDimension,
            source.OptionalInt32("feed_forward_length") ?? 0,
            source.OptionalInt32("expert_count") ?? 0,
            source.OptionalInt32("expert_used_count") ?? 0);
    }
}

/// <summary>A built model: embedding, blocks, final norm and output head.</summary>
/// <param name="Hyperparameters">Common hyperparameters.</param>
/// <param name="Embedding"><c>token_embd</c> <c>[V, E]</c>: row t is token t's embedding.</param>
/// <param name="Blocks">The blocks in order.</param>
/// <param name="OutputNorm"><c>output_norm</c>.</param>
/// <param name="Output"><c>output</c> <c>[V, E]</c> (the embedding when tied).</param>
/// <param name="EmbeddingScale">Multiplier of the embedded tokens (Granite's <c>embedding_scale</c>; 0 or 1 = none, as llama.cpp skips 0).</param>
/// <param name="LogitScale">Divisor of the logits (Granite's <c>logit_scale</c>; 1 = none).</param>
/// <param name="OutputBias"><c>output.bias</c> <c>[V]</c> added to the logits (Phi-3.5-MoE), or null.</param>
public sealed record ModelDefinition(
    ModelHyperparameters Hyperparameters,
    LinearWeight Embedding,
    IReadOnlyList<DecoderBlock> Blocks,
    RmsNorm OutputNorm,
    LinearWeight Output,
    float EmbeddingScale = 0f,
    float LogitScale = 1f,
    float[]? OutputBias = null)
{
    /// <summary>Applies <see cref="EmbeddingScale"/> in place (ggml_scale: one rounded product per value).</summary>
    public void ScaleEmbeddings(Span<float> embedded)
    {
        if (EmbeddingScale is not (0f or 1f))
        {
            System.Numerics.Tensors.TensorPrimitives.Multiply(embedded, EmbeddingScale, embedded);
        }
    }

    /// <summary>Divides logits by <see cref="LogitScale"/> in place, as llama.cpp does: a product with the float reciprocal.</summary>
    public void ScaleLogits(Span<float> logits)
    {
        if (LogitScale != 1f)
        {
            System.Numerics.Tensors.TensorPrimitives.Multiply(logits, 1.0f / LogitScale, logits);
        }
    }

    /// <summary>
    /// Logits of <paramref name="rows"/> normed hidden states: the output head, then its bias where the model has one
    /// (as llama.cpp, a separate add after the product), then <see cref="LogitScale"/>.
    /// </summary>
    /// <param name="normed">The rows after <see cref="OutputNorm"/>, <c>[rows, E]</c>.</param>
    /// <param name="rows">Number of rows.</param>
    /// <param name="logits">Destination <c>[rows, V]</c>.</param>
    /// <param name="parallelism">Threads for the product.</param>
    public void ProjectToVocabulary(ReadOnlySpan<float> normed, int rows, Span<float> logits, Parallelism parallelism)
    {
        Output.Multiply(normed, rows, logits, parallelism);
        int vocabulary = Output.Outputs;
        if (OutputBias is not null)
        {
            for (int r = 0; r < rows; r++)
            {
                var row = logits.Slice(r * vocabulary, vocabulary);
                System.Numerics.Tensors.TensorPrimitives.Add(row, OutputBias, row);
            }
        }

        ScaleLogits(logits[..(rows * vocabulary)]);
    }
}
