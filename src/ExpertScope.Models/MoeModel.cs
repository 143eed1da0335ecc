using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models.Architectures;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;
using ExpertScope.Tokenizers;

namespace ExpertScope.Models;

/// <summary>
/// A Mixture-of-Experts language model loaded from GGUF, with an instrumented CPU forward pass whose routers can be
/// observed and steered. Weights stay memory-mapped. One forward pass runs at a time per model instance.
/// </summary>
public sealed class MoeModel : IDisposable
{
    private readonly GgufFile _file;
    private readonly Lazy<GgufTokenizer> _tokenizer;

    private MoeModel(GgufFile file, IArchitecture architecture, ModelDefinition definition)
    {
        _file = file;
        Architecture = architecture;
        Definition = definition;
        _tokenizer = new Lazy<GgufTokenizer>(() => GgufTokenizer.FromGguf(file));
    }

    /// <summary>The checkpoint's own tokenizer (built on first use from its <c>tokenizer.ggml.*</c> metadata).</summary>
    /// <exception cref="ExpertScopeException">The file has no usable vocabulary.</exception>
    public GgufTokenizer Tokenizer => _tokenizer.Value;

    /// <summary>The checkpoint's path.</summary>
    public string FilePath => _file.FilePath;

    /// <summary>The architecture that built the model.</summary>
    public IArchitecture Architecture { get; }

    /// <summary>Embedding, blocks and head.</summary>
    public ModelDefinition Definition { get; }

    /// <summary>Common hyperparameters.</summary>
    public ModelHyperparameters Hyperparameters => Definition.Hyperparameters;

    /// <summary>Blocks in order.</summary>
    public IReadOnlyList<DecoderBlock> Blocks => Definition.Blocks;

    /// <summary>The attention switches it was loaded with (llama.cpp's cache types and flash attention).</summary>
    public AttentionSettings Attention { get; private init; } = AttentionSettings.Default;

    /// <summary>The GGUF file (metadata, tokenizer data).</summary>
    public GgufFile File => _file;

    /// <summary>Loads a GGUF checkpoint.</summary>
    /// <exception cref="ExpertScopeException">Unsupported architecture, missing or out-of-range metadata (<see cref="ModelValidation"/>), missing or mis-shaped tensors.</exception>
    /// <exception cref="GgufFormatException">The file is not valid GGUF.</exception>
    public static MoeModel Load(string path, ModelLoadOptions? options = null)
    {
        options ??= ModelLoadOptions.Default;
        var file = GgufFile.Open(path);
        try
        {
            var source = new ModelSource(file, options.MetadataOverrides, options.FloatArithmetic);
            var architecture = ArchitectureRegistry.Resolve(source.Architecture, path, file.Tensors.Select(t => t.Name));
            ModelValidation.Validate(source);
            var definition = architecture.Build(source, options);
            return new MoeModel(file, architecture, definition) { Attention = options.Attention };
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Starts an empty session (key/value caches for up to the context length).</summary>
    public InferenceSession CreateSession() => new(this);

    /// <summary>Runs a prompt from position 0 and returns logits for every position <c>[T, V]</c>.</summary>
    /// <exception cref="ExpertScopeException">Empty prompt, a token outside the vocabulary, or a prompt longer than the context.</exception>
    public FloatMatrix Run(ReadOnlySpan<int> tokens, RunOptions? options = null)
    {
        var session = CreateSession();
        return session.Append(tokens, options);
    }

    /// <summary>
    /// Generates up to <see cref="GenerationOptions.MaxNewTokens"/> tokens after <paramref name="prompt"/>, greedily or
    /// by seeded sampling, reusing the key/value cache. Returns only the new tokens.
    /// </summary>
    public IReadOnlyList<int> Generate(ReadOnlySpan<int> prompt, GenerationOptions? options = null)
    {
        options ??= new GenerationOptions();
        var session = CreateSession();
        var logits = session.Append(prompt, options.Run with { Logits = LogitsSelection.Last });
        var random = new Random(options.Seed);
        var generated = new List<int>();
        var last = logits.Row(logits.Rows - 1).ToArray();
        int context = Hyperparameters.ContextLength;
        while (generated.Count < options.MaxNewTokens && session.Length < context)
        {
            int next = Sampler.Pick(last, options, random);
            generated.Add(next);
            if (options.StopTokens.Contains(next) || session.Length >= context)
            {
                break;
            }

            last = session.Append([next], options.Run with { Logits = LogitsSelection.Last }).Row(0).ToArray();
        }

        return generated;
    }

    /// <inheritdoc/>
    public void Dispose() => _file.Dispose();

    /// <summary>Token choice from one row of logits.</summary>
    internal static class Sampler
    {
        public static int Pick(float[] logits, GenerationOptions options, Random random)
        {
            if (options.Temperature <= 0)
            {
                int best = 0;
                for (int i = 1; i < logits.Length; i++)
                {
                    if (logits[i] > logits[best])
                    {
                        best = i;
                    }
                }

                return best;
            }

            int[] order = [.. Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i)];
            int count = options.TopK > 0 ? Math.Min(options.TopK, order.Length) : order.Length;
            double max = logits[order[0]];
            var weights = new double[count];
            double total = 0;
            for (int i = 0; i < count; i++)
            {
                weights[i] = Math.Exp((logits[order[i]] - max) / options.Temperature);
                total += weights[i];
            }

            double draw = random.NextDouble() * total;
            for (int i = 0; i < count; i++)
            {
                draw -= weights[i];
                if (draw <= 0)
                {
                    return order[i];
                }
            }

            return order[count - 1];
        }
    }
}

/// <summary>
/// A sequence being processed: per-block key/value caches and the current position. Append prompt tokens in one
/// batch, then generated tokens one at a time; each call returns the logits of the appended tokens.
/// </summary>
public sealed class InferenceSession
{
    private readonly MoeModel _model;
    private readonly IAttentionCache[] _caches;

    internal InferenceSession(MoeModel model)
    {
        _model = model;
        int capacity = model.Hyperparameters.ContextLength;
        _caches = [.. model.Blocks.Select(b => b.Attention.CreateCache(capacity))];
    }

    /// <summary>Positions processed so far.</summary>
    public int Length { get; private set; }

    /// <summary>
    /// Runs <paramref name="tokens"/> at positions <c>Length..</c> and returns their logits: <c>[T, V]</c>, or fewer rows
    /// as <see cref="RunOptions.Logits"/> asks (the <c>result_output</c> site is emitted only when all rows are computed).
    /// </summary>
    /// <exception cref="ExpertScopeException">Empty input, a token outside the vocabulary, or the context would overflow.</exception>
    public FloatMatrix Append(ReadOnlySpan<int> tokens, RunOptions? options = null)
    {
        options ??= RunOptions.Default;
        var hp = _model.Hyperparameters;
        if (tokens.IsEmpty)
        {
            throw new ExpertScopeException($"{_model.FilePath}: no tokens to run.");
        }

        if (Length + tokens.Length > hp.ContextLength)
        {
            throw new ExpertScopeException(
                $"{_model.FilePath}: {Length + tokens.Length} tokens ({Length} already processed + {tokens.Length} new) exceed the model's context length of {hp.ContextLength}.");
        }

        foreach (int token in tokens)
        {
            if (token < 0 || token >= hp.VocabularySize)
            {
                throw new ExpertScopeException($"{_model.FilePath}: token id {token} is outside the vocabulary (size {hp.VocabularySize}).");
            }
        }

        int count = tokens.Length;
        int width = hp.EmbeddingLength;
        var context = new ForwardContext(count, Length, options.Parallelism, options.Interventions, options.Observers);
        var hidden = new float[count * width];
        for (int t = 0; t < count; t++)
        {
            _model.Definition.Embedding.ReadRow(tokens[t], hidden.AsSpan(t * width, width));
        }

        _model.Definition.ScaleEmbeddings(hidden);

        for (int b = 0; b < _model.Blocks.Count; b++)
        {
            _model.Blocks[b].Forward(hidden, _caches[b], context);
        }

        _model.Definition.OutputNorm.Apply(hidden, hidden);
        context.Emit(HookKind.ResultNorm, -1, hidden, width);
        int first = options.Logits switch
        {
            LogitsSelection.All => 0,
            LogitsSelection.Last => count - 1,
            _ => count,
        };
        var logits = new FloatMatrix(count - first, hp.VocabularySize);
        if (logits.Rows > 0)
        {
            _model.Definition.ProjectToVocabulary(hidden.AsSpan(first * width), logits.Rows, logits.Values, options.Parallelism);
            if (first == 0)
            {
                context.Emit(HookKind.ResultOutput, -1, logits.Values, hp.VocabularySize);
            }
        }

        Length += count;
        return logits;
    }
}
