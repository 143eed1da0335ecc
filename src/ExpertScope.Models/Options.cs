using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models;

/// <summary>How a checkpoint is loaded.</summary>
public sealed record ModelLoadOptions
{
    /// <summary>Default options.</summary>
    public static ModelLoadOptions Default { get; } = new();

    /// <summary>
    /// Metadata overrides by full key (<c>qwen3moe.expert_used_count</c> → 1), as llama.cpp's <c>--override-kv</c>.
    /// Values: integer, floating point, bool or string.
    /// </summary>
    public IReadOnlyDictionary<string, object> MetadataOverrides { get; init; } = new Dictionary<string, object>();

    /// <summary>
    /// Key/value cache precision. Float16 (the default) rounds cached keys and values (and queries) as llama.cpp's
    /// default f16 cache does, which is what its outputs are computed with.
    /// </summary>
    public CachePrecision CachePrecision { get; init; } = CachePrecision.Float16;

    /// <summary>llama.cpp's <c>--cache-type-k/-v</c> and <c>--flash-attn</c> (default f16 cache, flash attention on).</summary>
    public AttentionSettings Attention { get; init; } = AttentionSettings.Default;

    /// <summary>
    /// How float32, float16 and bfloat16 weights are multiplied. <see cref="FloatArithmetic.Reference"/> (the default)
    /// reproduces llama.cpp's portable CPU kernels, and with them the golden outputs, bit for bit;
    /// <see cref="FloatArithmetic.Fused"/> is about three times faster on such weights and differs in the last bits.
    /// Quantized weights (Q8_0, Q4_K, ...) use llama.cpp's integer dots in both modes.
    /// </summary>
    public FloatArithmetic FloatArithmetic { get; init; } = FloatArithmetic.Reference;
}

/// <summary>
/// The arithmetic of products with float32, float16 and bfloat16 weight matrices, and of the q·k and p·v products of
/// ggml's tiled flash-attention kernel (prompts of 64 tokens or more).
/// </summary>
public enum FloatArithmetic
{
    /// <summary>
    /// llama.cpp's portable kernels (<c>ggml_vec_dot_f32</c> without SIMD): each product rounded to float32, summed in
    /// float64, rounded once. Matches the reference outputs bit for bit.
    /// </summary>
    Reference,

    /// <summary>
    /// Float32 accumulation with fused multiply-adds in sixteen lanes and a fixed reduction, as SIMD builds of
    /// llama.cpp and BLAS libraries compute: about three times cheaper; results differ from
    /// <see cref="Reference"/> by rounding (relative differences around 1e-6). Still deterministic: identical for any
    /// thread count and any vector width. The tiled attention kernel's q·k and p·v sums keep their order and take
    /// one fused multiply-add per term, as ggml's <c>simd_gemm</c> does in a SIMD build.
    /// </summary>
    Fused,
}

/// <summary>Per-run settings: interventions, observers and threads.</summary>
public sealed record RunOptions
{
    /// <summary>Default options: no interventions, no observers, one thread per processor.</summary>
    public static RunOptions Default { get; } = new();

    /// <summary>Router interventions applied in this run.</summary>
    public IReadOnlyList<RouterIntervention> Interventions { get; init; } = [];

    /// <summary>Observers asked about every hook site.</summary>
    public IReadOnlyList<IRouterObserver> Observers { get; init; } = [];

    /// <summary>Threads (null = processor count). Results are bit-identical for any count.</summary>
    public int? ThreadCount { get; init; }

    /// <summary>
    /// Which positions get logits. The output head is often the largest matrix of a model (vocabulary × E), so a
    /// routing trace that needs no logits can skip it (<see cref="LogitsSelection.None"/>).
    /// </summary>
    public LogitsSelection Logits { get; init; } = LogitsSelection.All;

    internal Parallelism Parallelism => ThreadCount is { } n ? new Parallelism(n) : Parallelism.Default;
}

/// <summary>Which positions of a batch get logits.</summary>
public enum LogitsSelection
{
    /// <summary>Every position: logits <c>[T, V]</c>.</summary>
    All,

    /// <summary>Only the batch's last position: logits <c>[1, V]</c>.</summary>
    Last,

    /// <summary>None: logits <c>[0, V]</c>; the output head is not computed (hook sites up to <c>result_norm</c> still are).</summary>
    None,
}

/// <summary>Settings for <see cref="MoeModel.Generate"/>.</summary>
public sealed record GenerationOptions
{
    /// <summary>Tokens to generate at most.</summary>
    public int MaxNewTokens { get; init; } = 32;

    /// <summary>Sampling temperature; 0 means greedy (argmax, ties to the lower id).</summary>
    public float Temperature { get; init; }

    /// <summary>Sample only among the <c>TopK</c> most likely tokens (0 = all).</summary>
    public int TopK { get; init; }

    /// <summary>Seed of the sampler's random generator (sampling is reproducible for a given seed).</summary>
    public int Seed { get; init; }

    /// <summary>Generation stops after emitting one of these tokens.</summary>
    public IReadOnlyCollection<int> StopTokens { get; init; } = [];

    /// <summary>Interventions, observers and threads used for every step.</summary>
    public RunOptions Run { get; init; } = RunOptions.Default;
}

/// <summary>A row-major float matrix (logits <c>[tokens, vocabulary]</c>).</summary>
public sealed class FloatMatrix
{
    /// <summary>Creates a zeroed matrix.</summary>
    public FloatMatrix(int rows, int columns)
    {
        Rows = rows;
        Columns = columns;
        Values = new float[rows * columns];
    }

    /// <summary>Rows.</summary>
    public int Rows { get; }

    /// <summary>Columns.</summary>
    public int Columns { get; }

    /// <summary>All values, row-major.</summary>
    public float[] Values { get; }

    /// <summary>Row <paramref name="row"/>.</summary>
    public Span<float> Row(int row) => Values.AsSpan(row * Columns, Columns);
}
