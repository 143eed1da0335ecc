using System.Numerics.Tensors;
using ExpertScope.Core;
using ExpertScope.Kernels.Quant;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Blocks;

/// <summary>
/// The attention half of a block. <see cref="Attention"/> is standard causal grouped-query attention; DeepSeek's
/// multi-head latent attention implements the same interface with its own cache.
/// </summary>
public interface IAttention
{
    /// <summary>Creates an empty cache for up to <paramref name="capacity"/> positions.</summary>
    IAttentionCache CreateCache(int capacity);

    /// <summary>
    /// Attends the batch's tokens (positions <c>cache.Length ..</c>) to every cached position and themselves,
    /// appending the batch to the cache. Emits <c>kqv_out</c> and <c>attn_out</c>.
    /// </summary>
    /// <param name="input">The normed input <c>[T, E]</c> (<c>attn_norm</c>).</param>
    /// <param name="output">Destination <c>[T, E]</c>, before the residual add.</param>
    /// <param name="cache">This block's cache; its length must equal the batch's first position.</param>
    /// <param name="layer">GGUF block index.</param>
    /// <param name="context">The batch's context.</param>
    void Forward(ReadOnlySpan<float> input, Span<float> output, IAttentionCache cache, int layer, ForwardContext context);
}

/// <summary>A block's key/value cache.</summary>
public interface IAttentionCache
{
    /// <summary>Positions stored.</summary>
    int Length { get; }

    /// <summary>Positions it can hold.</summary>
    int Capacity { get; }
}

/// <summary>Where query/key RMS norms apply.</summary>
public enum QkNormMode
{
    /// <summary>No query/key norm (Mixtral, Qwen2-MoE).</summary>
    None,

    /// <summary>Per head, weights of size head_dim (Qwen3-MoE).</summary>
    PerHead,

    /// <summary>Over the whole projection, weights of size heads·head_dim (OLMoE).</summary>
    WholeProjection,
}

/// <summary>Storage precision of cached keys and values.</summary>
public enum CachePrecision
{
    /// <summary>float32.</summary>
    Float32,

    /// <summary>Rounded to float16 as stored, as llama.cpp's default cache (type_k = type_v = f16) does.</summary>
    Float16,
}

/// <summary>Shape and options of a <see cref="Attention"/> layer.</summary>
/// <param name="HeadCount">Query heads (GGUF <c>attention.head_count</c>).</param>
/// <param name="KvHeadCount">Key/value heads (GGUF <c>attention.head_count_kv</c>).</param>
/// <param name="HeadDimension">Values per head (GGUF <c>attention.key_length</c>, default E / heads).</param>
/// <param name="Rope">Rotary embedding.</param>
/// <param name="Scale">Scale on q·k (1/sqrt(head_dim) unless the model says otherwise).</param>
/// <param name="QkNorm">Query/key norm placement.</param>
/// <param name="CachePrecision">Cache storage precision; <see cref="CachePrecision.Float32"/> is exact float32 attention, not llama.cpp's.</param>
/// <param name="Settings">llama.cpp's cache types and flash-attention switch (null = its defaults); used with <see cref="CachePrecision.Float16"/>.</param>
/// <param name="QueryScale">
/// Multiplies the rotated queries before attention (Phi-3's graph scales q by 1/sqrt(head_dim) there and attends with
/// <see cref="Scale"/> = 1; the rounding differs from scaling q·k). 1 = not applied.
/// </param>
/// <param name="KeyWindow">Sliding or chunked limit on the keys each query sees (null = every earlier position).</param>
/// <param name="Adjustments">Llama 4's per-layer query/key changes around RoPE (null = plain RoPE).</param>
public sealed record AttentionOptions(
    int HeadCount,
    int KvHeadCount,
    int HeadDimension,
    Rope Rope,
    float Scale,
    QkNormMode QkNorm = QkNormMode.None,
    CachePrecision CachePrecision = CachePrecision.Float16,
    AttentionSettings? Settings = null,
    float QueryScale = 1.0f,
    KeyWindow? KeyWindow = null,
    QueryKeyAdjustments? Adjustments = null);

/// <summary>The projections of a <see cref="Attention"/> layer (biases and norms optional).</summary>
/// <param name="Query"><c>attn_q</c> <c>[H·D, E]</c>.</param>
/// <param name="Key"><c>attn_k</c> <c>[Hkv·D, E]</c>.</param>
/// <param name="Value"><c>attn_v</c> <c>[Hkv·D, E]</c>.</param>
/// <param name="Output"><c>attn_output</c> <c>[E, H·D]</c>.</param>
/// <param name="QueryBias"><c>attn_q.bias</c> or null.</param>
/// <param name="KeyBias"><c>attn_k.bias</c> or null.</param>
/// <param name="ValueBias"><c>attn_v.bias</c> or null.</param>
/// <param name="OutputBias"><c>attn_output.bias</c> or null.</param>
/// <param name="QueryNorm"><c>attn_q_norm</c> or null.</param>
/// <param name="KeyNorm"><c>attn_k_norm</c> or null.</param>
/// <param name="Sinks">
/// <c>attn_sinks</c> <c>[H]</c> or null: a learned logit per query head that joins each softmax denominator without a
/// value (gpt-oss), so a head can give every key little weight.
/// </param>
public sealed record AttentionWeights(
    LinearWeight Query,
    LinearWeight Key,
    LinearWeight Value,
    LinearWeight Output,
    float[]? QueryBias = null,
    float[]? KeyBias = null,
    float[]? ValueBias = null,
    float[]? OutputBias = null,
    RmsNorm? QueryNorm = null,
    RmsNorm? KeyNorm = null,
    float[]? Sinks = null);

/// <summary>Causal grouped-query self-attention with rotary positions, optional QK norm and a key/value cache.</summary>
public sealed class Attention : IAttention
{
    /// <summary>ggml's flash-attention tile: query rows and key positions (<c>GGML_FA_TILE_Q</c>, <c>GGML_FA_TILE_KV</c>).</summary>
    internal const int TileLength = 64;

    /// <summary>Whether tiled-kernel tokens are attended in blocks (tests switch it off to compare with one token at a time).</summary>
    internal static bool BlockQueries { get; set; } = true;

    /// <summary>Query tokens of the tiled kernel's q·k pass (one per lane of two float vectors).</summary>
    private static readonly int QueryBlock = TiledAttentionKernels.QueryLanes;

    /// <summary>Query tokens per attention work item: ggml's query tile, so a tile of keys and values is read once for them all.</summary>
    private const int QueryGroup = TileLength;

    /// <summary>llama.cpp's default micro-batch (<c>n_ubatch</c>).</summary>
    internal const int MicroBatchLength = 512;

    /// <summary>Creates the layer, checking that weights and options agree.</summary>
    /// <exception cref="ExpertScopeException">Shapes disagree.</exception>
    public Attention(AttentionOptions options, AttentionWeights weights)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(weights);
        Options = options;
        Weights = weights;
        Settings = options.Settings ?? AttentionSettings.Default;
        Settings.Validate(options.HeadDimension, options.HeadDimension);
        UsesCacheTypes = options.CachePrecision == CachePrecision.Float16 && !Settings.IsLlamaDefault;
        if (options.HeadCount % options.KvHeadCount != 0)
        {
            throw new ExpertScopeException($"{options.HeadCount} query heads cannot share {options.KvHeadCount} key/value heads.");
        }

        if (weights.Query.Outputs != options.HeadCount * options.HeadDimension ||
            weights.Key.Outputs != options.KvHeadCount * options.HeadDimension ||
            weights.Value.Outputs != options.KvHeadCount * options.HeadDimension)
        {
            throw new ExpertScopeException(
                $"attention projections '{weights.Query.Tensor.Name}' etc. do not match {options.HeadCount} heads, {options.KvHeadCount} KV heads of size {options.HeadDimension}.");
        }

        if (weights.Sinks is { } sinks && sinks.Length != options.HeadCount)
        {
            throw new ExpertScopeException($"attention sinks of '{weights.Query.Tensor.Name}' have {sinks.Length} values for {options.HeadCount} heads.");
        }
    }

    /// <summary>Shape and options.</summary>
    public AttentionOptions Options { get; }

    /// <summary>Weights.</summary>
    public AttentionWeights Weights { get; }

    /// <summary>llama.cpp's cache types and flash-attention switch.</summary>
    public AttentionSettings Settings { get; }

    /// <summary>
    /// True under <see cref="FloatArithmetic.Fused"/> (read from the query projection): the tiled kernel's q·k and p·v
    /// terms join their sums by fused multiply-adds, as ggml's <c>simd_gemm</c> does in a SIMD build; otherwise by a
    /// multiply then an add, as its portable build (and the golden data).
    /// </summary>
    private bool FusedProducts => Weights.Query.Arithmetic == FloatArithmetic.Fused;

    /// <summary>True when the settings differ from llama.cpp's defaults, so <see cref="AttendWithCacheTypes"/> runs.</summary>
    private bool UsesCacheTypes { get; }

    /// <inheritdoc/>
    public IAttentionCache CreateCache(int capacity) =>
        new KeyValueCache(capacity, Options.KvHeadCount, Options.HeadDimension, UsesCacheTypes ? Settings : null);

    /// <inheritdoc/>
    public void Forward(ReadOnlySpan<float> input, Span<float> output, IAttentionCache cache, int layer, ForwardContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (cache is not KeyValueCache kv)
        {
            throw new ArgumentException("The cache was not created by this attention layer.", nameof(cache));
        }

        int tokens = context.TokenCount;
        int start = kv.Length;
        if (start + tokens > kv.Capacity)
        {
            throw new ExpertScopeException($"the key/value cache holds {kv.Capacity} positions; {start + tokens} were needed.");
        }

        int heads = Options.HeadCount;
        int kvHeads = Options.KvHeadCount;
        int dim = Options.HeadDimension;
        int qWidth = heads * dim;
        int kvWidth = kvHeads * dim;
        var w = Weights;

        var q = new float[tokens * qWidth];
        var k = new float[tokens * kvWidth];
        var v = new float[tokens * kvWidth];
        w.Query.Multiply(input, tokens, q, context.Parallelism);
        w.Key.Multiply(input, tokens, k, context.Parallelism);
        w.Value.Multiply(input, tokens, v, context.Parallelism);
        AddBias(q, w.QueryBias);
        AddBias(k, w.KeyBias);
        AddBias(v, w.ValueBias);

        // RmsNorm normalises consecutive groups of its width: per head or the whole projection alike. Tokens are
        // independent, so they are split among the threads.
        context.Parallelism.For(tokens, qWidth + kvWidth, (first, end) =>
        {
            for (int t = first; t < end; t++)
            {
                var queryRow = q.AsSpan(t * qWidth, qWidth);
                var keyRow = k.AsSpan(t * kvWidth, kvWidth);
                w.QueryNorm?.Apply(queryRow, queryRow);
                w.KeyNorm?.Apply(keyRow, keyRow);
                if (Options.Adjustments is { } adjustments)
                {
                    adjustments.Apply(Options.Rope, queryRow, keyRow, heads, kvHeads, dim, start + t);
                }
                else
                {
                    Options.Rope.Apply(queryRow, heads, dim, start + t);
                    Options.Rope.Apply(keyRow, kvHeads, dim, start + t);
                }

                if (Options.QueryScale != 1.0f)
                {
                    TensorPrimitives.Multiply(queryRow, Options.QueryScale, queryRow);
                }
            }
        });

        kv.Append(k, v, tokens, Options.CachePrecision);

        var mixed = new float[tokens * qWidth];
        Attend(q, kv, start, tokens, mixed, context.Parallelism);
        context.Emit(HookKind.AttentionHeads, layer, mixed, qWidth);

        w.Output.Multiply(mixed, tokens, output, context.Parallelism);
        AddBias(output[..(tokens * w.Output.Outputs)], w.OutputBias);
        context.Emit(HookKind.AttentionOutput, layer, output, w.Output.Outputs);
    }

    private void Attend(float[] q, KeyValueCache kv, int start, int tokens, float[] mixed, Parallelism parallelism)
    {
        int heads = Options.HeadCount;
        int dim = Options.HeadDimension;
        float scale = Options.Scale;
        bool half = Options.CachePrecision == CachePrecision.Float16;

        // One work item per (group of QueryGroup tokens, head); each writes only its own output slices. Groups whose
        // tokens take the tiled kernel compute their q·k products together, one token per vector lane.
        int groups = (tokens + QueryGroup - 1) / QueryGroup;
        parallelism.For(groups * heads, (long)QueryGroup * (start + tokens) * dim * 2, (from, to) =>
        {
            var scores = new float[Math.Max(start + tokens + 3, TileLength)];
            var query = new float[dim];
            var groupScratch = new TiledGroupScratch(dim);
            for (int groupItem = from; groupItem < to; groupItem++)
            {
                int h = groupItem % heads;

                // Causal groups cost more the later they are: taking them first, last, second, second-to-last, ...
                // gives every contiguous share of the items about the same work.
                int rank = groupItem / heads;
                int group = rank % 2 == 0 ? rank / 2 : groups - 1 - rank / 2;
                int first = group * QueryGroup;
                int count = Math.Min(QueryGroup, tokens - first);
                if (BlockQueries && half && !UsesCacheTypes && UsesTiledKernel(first, tokens) && UsesTiledKernel(first + count - 1, tokens))
                {
                    if (FusedProducts)
                    {
                        AttendHalfTiledGroup<TiledAttentionKernels.FusedMultiplyAdd>(q, first, count, h, kv, start, scale, groupScratch, mixed);
                    }
                    else
                    {
                        AttendHalfTiledGroup<TiledAttentionKernels.SeparateMultiplyAdd>(q, first, count, h, kv, start, scale, groupScratch, mixed);
                    }

                    continue;
                }

                for (int t = first; t < first + count; t++)
                {
                    AttendOne(q, kv, start, tokens, mixed, t, h, query, scores);
                }
            }
        });
    }

    private void AttendOne(float[] q, KeyValueCache kv, int start, int tokens, float[] mixed, int t, int h, float[] query, float[] scores)
    {
        int heads = Options.HeadCount;
        int dim = Options.HeadDimension;
        int group = heads / Options.KvHeadCount;
        float scale = Options.Scale;
        bool half = Options.CachePrecision == CachePrecision.Float16;
        {
            {
                int kvHead = h / group;
                int visible = start + t + 1;
                int firstVisible = FirstVisible(start + t);
                float? sink = Weights.Sinks?[h];
                q.AsSpan((t * heads + h) * dim, dim).CopyTo(query);
                var target = mixed.AsSpan((t * heads + h) * dim, dim);
                var keys = kv.HeadKeys(kvHead);
                var values = kv.HeadValues(kvHead);
                if (UsesCacheTypes)
                {
                    AttendWithCacheTypes(query, kv, kvHead, firstVisible, visible, sink, scores, target);
                }
                else if (!half)
                {
                    AttendSingle(query, keys, values, dim, firstVisible, visible, scale, sink, scores, target);
                }
                else if (UsesTiledKernel(t, tokens))
                {
                    if (FusedProducts)
                    {
                        AttendHalfTiled<TiledAttentionKernels.FusedMultiplyAdd>(query, keys, values, dim, firstVisible, visible, scale, sink, scores, target);
                    }
                    else
                    {
                        AttendHalfTiled<TiledAttentionKernels.SeparateMultiplyAdd>(query, keys, values, dim, firstVisible, visible, scale, sink, scores, target);
                    }
                }
                else
                {
                    // The vector kernel converts the query to f16 for its q·k products.
                    RoundToHalf(query);
                    AttendHalf(query, keys, values, dim, firstVisible, visible, scale, sink, target);
                }
            }
        }
    }

    /// <summary>
    /// <see cref="AttendHalfTiled"/> for up to <see cref="QueryGroup"/> consecutive tokens of one head, shaped like
    /// ggml's tiled kernel (a tile of query rows against a tile of 64 positions). The tokens go in blocks of
    /// <see cref="QueryBlock"/>, one token per vector lane; for each tile of positions every block in turn forms its
    /// q·k products in one register-blocked pass (<see cref="TiledAttentionKernels.QueryKeyDots"/>), runs each token's
    /// softmax step alone, then adds the tile's p·v terms of all its tokens that see the tile in one pass
    /// (<see cref="TiledAttentionKernels.AccumulateValues"/>), so the tile's keys and values are read from memory once
    /// for the whole group. Every single sum keeps its order, so each token's result equals the one-token kernel's
    /// bit for bit.
    /// </summary>
    private void AttendHalfTiledGroup<TMultiplyAdd>(float[] q, int first, int count, int head, KeyValueCache kv, int start, float scale, TiledGroupScratch scratch, float[] mixed)
        where TMultiplyAdd : struct, TiledAttentionKernels.IMultiplyAdd
    {
        int heads = Options.HeadCount;
        int dim = Options.HeadDimension;
        int qWidth = heads * dim;
        int kvHead = head / (heads / Options.KvHeadCount);
        int blocks = (count + QueryBlock - 1) / QueryBlock;
        var dots = scratch.Dots.AsSpan(0, TileLength * QueryBlock);
        var weights = scratch.Weights.AsSpan(0, TileLength * QueryBlock);
        var tile = scratch.Tile.AsSpan(0, TileLength);
        var transposed = scratch.TransposedQueries.AsSpan(0, blocks * dim * QueryBlock);
        transposed.Clear();
        for (int token = 0; token < count; token++)
        {
            var query = q.AsSpan((first + token) * qWidth + head * dim, dim);
            var lanes = transposed.Slice(token / QueryBlock * dim * QueryBlock);
            int lane = token % QueryBlock;
            for (int d = 0; d < dim; d++)
            {
                lanes[d * QueryBlock + lane] = query[d];
            }

            mixed.AsSpan((first + token) * qWidth + head * dim, dim).Clear();
        }

        var runningMax = scratch.RunningMax.AsSpan(0, count);
        var runningSum = scratch.RunningSum.AsSpan(0, count);
        Span<int> seeing = stackalloc int[QueryBlock];
        runningMax.Fill(float.NegativeInfinity);
        runningSum.Clear();
        int lastVisible = start + first + count;
        var keys = kv.HeadKeys(kvHead);
        var values = kv.HeadValues(kvHead);

        // Tiles stay aligned to position 0 as ggml's are; those the window hides from every token are skipped.
        for (int tileStart = FirstVisible(start + first) / TileLength * TileLength; tileStart < lastVisible; tileStart += TileLength)
        {
            for (int block = 0; block < blocks; block++)
            {
                int blockFirst = block * QueryBlock;
                int blockCount = Math.Min(QueryBlock, count - blockFirst);
                int blockEnd = start + first + blockFirst + blockCount;
                if (tileStart >= blockEnd || FirstVisible(start + first + blockFirst) - tileStart >= TileLength)
                {
                    // No token of the block sees a key of this tile (causal mask or window).
                    continue;
                }

                int positions = Math.Min(TileLength, blockEnd - tileStart);
                TiledAttentionKernels.QueryKeyDots<TMultiplyAdd>(transposed.Slice(block * dim * QueryBlock, dim * QueryBlock), keys, tileStart, positions, dim, dim, dots);
                var targets = mixed.AsSpan((first + blockFirst) * qWidth + head * dim);
                int seen = 0;
                for (int lane = 0; lane < blockCount; lane++)
                {
                    int token = blockFirst + lane;
                    int visible = start + first + token + 1;
                    int hidden = FirstVisible(visible - 1) - tileStart;
                    if (tileStart >= visible || hidden >= TileLength)
                    {
                        // Every key of the tile is masked for this token: ggml skips its row.
                        continue;
                    }

                    int valid = Math.Min(TileLength, visible - tileStart);
                    float tileMax = float.NegativeInfinity;
                    for (int i = 0; i < TileLength; i++)
                    {
                        if (i >= valid || i < hidden)
                        {
                            tile[i] = float.NegativeInfinity;
                            continue;
                        }

                        tile[i] = dots[i * QueryBlock + lane] * scale;
                        tileMax = MathF.Max(tileMax, tile[i]);
                    }

                    // Masked keys get weight exp(-inf) = 0, so the block's value pass may run over all its positions.
                    UpdateOnlineSoftmax(tile, tileMax, ref runningMax[token], ref runningSum[token], targets.Slice(lane * qWidth, dim));
                    tile[..positions].CopyTo(weights.Slice(seen * TileLength, positions));
                    seeing[seen++] = lane;
                }

                TiledAttentionKernels.AccumulateValues<TMultiplyAdd>(weights, TileLength, seeing[..seen], values, tileStart, positions, dim, targets, qWidth, dim);
            }
        }

        for (int token = 0; token < count; token++)
        {
            var target = mixed.AsSpan((first + token) * qWidth + head * dim, dim);
            FinishOnlineSoftmax(Weights.Sinks?[head], runningMax[token], ref runningSum[token], target);
        }
    }

    /// <summary>Per-thread buffers of <see cref="AttendHalfTiledGroup"/>.</summary>
    private sealed class TiledGroupScratch(int dim)
    {
        public float[] TransposedQueries { get; } = new float[dim * QueryGroup];

        public float[] Dots { get; } = new float[TileLength * QueryBlock];

        public float[] Weights { get; } = new float[TileLength * QueryBlock];

        public float[] Tile { get; } = new float[TileLength];

        public float[] RunningMax { get; } = new float[QueryGroup];

        public float[] RunningSum { get; } = new float[QueryGroup];
    }

    /// <summary>
    /// One tile's step of the tiled kernel's online softmax: a higher max rescales the float accumulator and the sum
    /// by exp(old − new); the tile's scores become their exps (the weights of the tile's p·v terms), their sum taken
    /// in double and added to the float sum.
    /// </summary>
    private static void UpdateOnlineSoftmax(Span<float> tile, float tileMax, ref float runningMax, ref float runningSum, Span<float> target)
    {
        float newMax = MathF.Max(runningMax, tileMax);
        if (newMax > runningMax)
        {
            float rescale = MathF.Exp(runningMax - newMax);
            TensorPrimitives.Multiply(target, rescale, target);
            runningSum *= rescale;
        }

        runningMax = newMax;
        runningSum = (float)(runningSum + GgmlMath.ExpMinusMax(tile, newMax));
    }

    /// <summary>The end of an online softmax: the sink (if any) joins, then the accumulator is divided by the sum (0 when it is 0).</summary>
    private static void FinishOnlineSoftmax(float? sink, float max, ref float sum, Span<float> target)
    {
        if (sink is { } sinkLogit)
        {
            AddSink(sinkLogit, max, ref sum, target);
        }

        float inverse = sum == 0.0f ? 0.0f : 1.0f / sum;
        for (int j = 0; j < target.Length; j++)
        {
            target[j] *= inverse;
        }
    }

    /// <summary>
    /// ggml's flash-attention sink step after the online softmax: a sink logit above the running max rescales the
    /// float accumulator and the sum by exp(max − sink) and counts 1; otherwise it adds exp(sink − max) to the sum.
    /// </summary>
    internal static void AddSink(float sink, float max, ref float sum, Span<float> target)
    {
        float previousScale = 1.0f;
        float sinkWeight = 1.0f;
        if (sink > max)
        {
            previousScale = MathF.Exp(max - sink);
            TensorPrimitives.Multiply(target, previousScale, target);
        }
        else
        {
            sinkWeight = MathF.Exp(sink - max);
        }

        sum = sum * previousScale + sinkWeight;
    }

    /// <summary>The first key position the query at <paramref name="queryPosition"/> sees (0 without a key window).</summary>
    private int FirstVisible(int queryPosition) => Options.KeyWindow?.FirstVisible(queryPosition) ?? 0;

    /// <summary>
    /// llama.cpp evaluates a batch in micro-batches of <see cref="MicroBatchLength"/> tokens, and ggml's CPU flash
    /// attention takes its tiled kernel when a micro-batch has at least <see cref="TileLength"/> query rows.
    /// </summary>
    internal static bool UsesTiledKernel(int token, int tokens)
    {
        int microBatchStart = token / MicroBatchLength * MicroBatchLength;
        return Math.Min(MicroBatchLength, tokens - microBatchStart) >= TileLength;
    }

    /// <summary>
    /// ggml's tiled CPU flash-attention kernel for one query row: float32 query, keys and values from the f16 cache,
    /// positions in tiles of <see cref="TileLength"/>; per tile the q·k products are summed in float in dimension
    /// order and scaled, the running max and sum are updated (exps by the vector exp, the tile's sum in double), and
    /// the float accumulator gains the tile's p·v terms in position order. Divided by the sum at the end.
    /// </summary>
    private static void AttendHalfTiled<TMultiplyAdd>(
        ReadOnlySpan<float> query,
        ReadOnlySpan<float> keys,
        ReadOnlySpan<float> values,
        int stride,
        int firstVisible,
        int visible,
        float scale,
        float? sink,
        Span<float> scores,
        Span<float> target)
        where TMultiplyAdd : struct, TiledAttentionKernels.IMultiplyAdd
    {
        int dim = query.Length;
        var tile = scores[..TileLength];
        float runningMax = float.NegativeInfinity;
        float runningSum = 0.0f;
        target.Clear();

        // Tiles stay aligned to position 0; wholly masked ones are skipped, masked keys in a tile score -inf (weight 0).
        for (int tileStart = firstVisible / TileLength * TileLength; tileStart < visible; tileStart += TileLength)
        {
            int count = Math.Min(TileLength, visible - tileStart);
            int hidden = firstVisible - tileStart;
            float tileMax = float.NegativeInfinity;
            for (int i = 0; i < TileLength; i++)
            {
                if (i >= count || i < hidden)
                {
                    tile[i] = float.NegativeInfinity;
                    continue;
                }

                var key = keys.Slice((tileStart + i) * stride, dim);
                float dot = 0.0f;
                for (int d = 0; d < dim; d++)
                {
                    dot = TMultiplyAdd.Apply(dot, query[d], key[d]);
                }

                tile[i] = dot * scale;
                tileMax = MathF.Max(tileMax, tile[i]);
            }

            UpdateOnlineSoftmax(tile, tileMax, ref runningMax, ref runningSum, target);
            TiledAttentionKernels.AccumulateValues<TMultiplyAdd>(tile, TileLength, [0], values, tileStart, count, stride, target, dim, dim);
        }

        FinishOnlineSoftmax(sink, runningMax, ref runningSum, target);
    }

    /// <summary>Exact softmax attention in float32 for one query head.</summary>
    private static void AttendSingle(
        ReadOnlySpan<float> query,
        ReadOnlySpan<float> keys,
        ReadOnlySpan<float> values,
        int stride,
        int firstVisible,
        int visible,
        float scale,
        float? sink,
        Span<float> scores,
        Span<float> target)
    {
        int dim = query.Length;
        float max = sink ?? float.NegativeInfinity;
        for (int p = firstVisible; p < visible; p++)
        {
            float s = DotProduct.Compute(query, keys.Slice(p * stride, dim)) * scale;
            scores[p] = s;
            max = MathF.Max(max, s);
        }

        double sum = sink is { } sinkLogit ? MathF.Exp(sinkLogit - max) : 0;
        for (int p = firstVisible; p < visible; p++)
        {
            float e = MathF.Exp(scores[p] - max);
            scores[p] = e;
            sum += e;
        }

        float inverse = (float)(1.0 / sum);
        target.Clear();
        for (int p = firstVisible; p < visible; p++)
        {
            float weight = scores[p] * inverse;
            var value = values.Slice(p * stride, dim);
            for (int j = 0; j < dim; j++)
            {
                target[j] += weight * value[j];
            }
        }
    }

    /// <summary>
    /// Attention as ggml's CPU flash-attention kernel computes it with an f16 cache: one pass of online softmax
    /// over positions in order, the value accumulator held in float16 (rounded after every update), divided by
    /// the softmax sum at the end. Reproducing the roundings is what makes outputs match llama.cpp's to ~1e-6.
    /// </summary>
    private static void AttendHalf(
        ReadOnlySpan<float> query,
        ReadOnlySpan<float> keys,
        ReadOnlySpan<float> values,
        int stride,
        int firstVisible,
        int visible,
        float scale,
        float? sink,
        Span<float> target)
    {
        int dim = query.Length;
        float sum = 0.0f;
        float max = float.NegativeInfinity;
        target.Clear();

        // ggml's vector kernel skips masked (-inf) positions outright.
        for (int p = firstVisible; p < visible; p++)
        {
            float s = DotProduct.Compute(query, keys.Slice(p * stride, dim)) * scale;
            OnlineSoftmaxStep(s, values.Slice(p * stride, dim), halfAccumulator: true, ref max, ref sum, target);
        }

        // The sink joins after the f16 accumulator is widened to float, so its rescaling is not rounded to f16.
        FinishOnlineSoftmax(sink, max, ref sum, target);
    }

    /// <summary>
    /// One position of ggml's one-query flash-attention loop: a score above the running max rescales the accumulator
    /// and the sum by exp(old max − score) and weighs the value 1, otherwise the value weighs exp(score − max); then
    /// target = target + value · weight (a multiply, then an add: no fused multiply-add), the accumulator rounded to
    /// f16 after each change when it is held in f16 (an f16 value cache).
    /// </summary>
    internal static void OnlineSoftmaxStep(float score, ReadOnlySpan<float> value, bool halfAccumulator, ref float max, ref float sum, Span<float> target)
    {
        float previousScale = 1.0f;
        float valueScale = 1.0f;
        if (score > max)
        {
            previousScale = MathF.Exp(max - score);
            max = score;
            TensorPrimitives.Multiply(target, previousScale, target);
            if (halfAccumulator)
            {
                RoundToHalf(target);
            }
        }
        else
        {
            valueScale = MathF.Exp(score - max);
        }

        TensorPrimitives.MultiplyAdd(value, valueScale, target, target);
        if (halfAccumulator)
        {
            RoundToHalf(target);
        }

        sum = sum * previousScale + valueScale;
    }

    /// <summary>
    /// One query head under non-default <see cref="AttentionSettings"/>, as llama.cpp's CPU path computes it: the query
    /// converted to the key type's dot type and dotted with each cached key by ggml's <c>vec_dot</c>; then either the
    /// flash-attention vector kernel (online softmax with expf; values accumulated in f16 for an f16 value cache, else
    /// in float32) or, without flash attention, ggml's softmax and a double-sum dot of the probabilities (converted to
    /// the value type's dot type) with each value column.
    /// </summary>
    private void AttendWithCacheTypes(float[] query, KeyValueCache kv, int kvHead, int firstVisible, int visible, float? sink, float[] scores, Span<float> target)
    {
        int dim = Options.HeadDimension;
        var keyType = Settings.EffectiveKeyType;
        CacheTypeKernel.Attend(
            keyType,
            Settings.EffectiveValueType,
            Settings.FlashAttention,
            query.AsSpan(0, dim),
            kv.KeyBytes,
            kv.KeyRowBytes,
            kvHead * (int)GgmlTypes.Get(keyType).RowBytes(dim),
            kv.HeadValues(kvHead),
            dim,
            firstVisible,
            visible,
            Options.Scale,
            sink,
            scores,
            target[..dim]);
    }

    private static void AddBias(Span<float> values, float[]? bias)
    {
        if (bias is null)
        {
            return;
        }

        for (int i = 0; i < values.Length; i++)
        {
            values[i] += bias[i % bias.Length];
        }
    }

    /// <summary>Rounds the values in place to their nearest float16 (an f16 cache or accumulator).</summary>
    internal static void RoundToHalf(Span<float> values) => HalfRounding.Round(values);

    /// <summary>
    /// Keys and values of every position, stored head-major (all positions of key/value head 0, then head 1, ...) so
    /// that the positions one head attends to lie side by side in memory, as ggml's tiled kernel reads them. Storage
    /// grows geometrically up to the capacity, so a model with a long context does not reserve the whole context's
    /// cache for a short prompt.
    /// </summary>
    private sealed class KeyValueCache : IAttentionCache
    {
        private const int InitialPositions = 64;

        public KeyValueCache(int capacity, int headCount, int headDimension, AttentionSettings? cacheTypes)
        {
            Capacity = capacity;
            HeadCount = headCount;
            HeadDimension = headDimension;
            KeyWidth = headCount * headDimension;
            ValueWidth = KeyWidth;
            CacheTypes = cacheTypes;
            KeyRowBytes = cacheTypes is null ? 0 : (int)GgmlTypes.Get(cacheTypes.EffectiveKeyType).RowBytes(KeyWidth);
            Keys = [];
            Values = [];
            KeyBytes = [];
        }

        /// <summary>Non-null when keys are stored in a cache type (<see cref="KeyBytes"/>) and values rounded through one.</summary>
        public AttentionSettings? CacheTypes { get; }

        /// <summary>Bytes per position of <see cref="KeyBytes"/>.</summary>
        public int KeyRowBytes { get; }

        /// <summary>Keys as the cache type stores them (ggml's <c>from_float</c> of the type), position by position.</summary>
        public byte[] KeyBytes { get; private set; }

        public int Length { get; private set; }

        public int Capacity { get; }

        public int HeadCount { get; }

        public int HeadDimension { get; }

        /// <summary>Values per position over all heads (keys).</summary>
        public int KeyWidth { get; }

        /// <summary>Values per position over all heads (values).</summary>
        public int ValueWidth { get; }

        /// <summary>Positions the arrays hold before they grow.</summary>
        private int Allocated { get; set; }

        private float[] Keys { get; set; }

        private float[] Values { get; set; }

        /// <summary>Key/value head <paramref name="head"/>'s keys: position p at <c>p · HeadDimension</c>.</summary>
        public Span<float> HeadKeys(int head) => Keys.AsSpan(head * Allocated * HeadDimension, Allocated * HeadDimension);

        /// <summary>Key/value head <paramref name="head"/>'s values: position p at <c>p · HeadDimension</c>.</summary>
        public Span<float> HeadValues(int head) => Values.AsSpan(head * Allocated * HeadDimension, Allocated * HeadDimension);

        public void Append(ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int tokens, CachePrecision precision)
        {
            int needed = Length + tokens;
            int dim = HeadDimension;
            if (needed > Allocated)
            {
                int positions = Math.Min(Capacity, Math.Max(needed, Math.Max(InitialPositions, 2 * Allocated)));
                var grownKeys = new float[positions * KeyWidth];
                var grownValues = new float[positions * ValueWidth];
                for (int head = 0; head < HeadCount; head++)
                {
                    HeadKeys(head)[..(Length * dim)].CopyTo(grownKeys.AsSpan(head * positions * dim));
                    HeadValues(head)[..(Length * dim)].CopyTo(grownValues.AsSpan(head * positions * dim));
                }

                Keys = grownKeys;
                Values = grownValues;
                Allocated = positions;
                if (CacheTypes is not null)
                {
                    var grownKeyBytes = new byte[positions * KeyRowBytes];
                    KeyBytes.AsSpan(0, Length * KeyRowBytes).CopyTo(grownKeyBytes);
                    KeyBytes = grownKeyBytes;
                }
            }

            // Rounded as the cache type stores them while still position-major (the layout of the type's rows), then
            // spread over the heads.
            var newKeys = keys[..(tokens * KeyWidth)].ToArray();
            var newValues = values[..(tokens * ValueWidth)].ToArray();
            if (CacheTypes is not null)
            {
                StoreInCacheTypes(newKeys, newValues, tokens, CacheTypes);
            }
            else if (precision == CachePrecision.Float16)
            {
                // The vectorised conversion rounds as the scalar one does (to nearest, ties to even).
                RoundToHalf(newKeys);
                RoundToHalf(newValues);
            }

            for (int head = 0; head < HeadCount; head++)
            {
                var headKeys = HeadKeys(head);
                var headValues = HeadValues(head);
                for (int t = 0; t < tokens; t++)
                {
                    newKeys.AsSpan(t * KeyWidth + head * dim, dim).CopyTo(headKeys.Slice((Length + t) * dim, dim));
                    newValues.AsSpan(t * ValueWidth + head * dim, dim).CopyTo(headValues.Slice((Length + t) * dim, dim));
                }
            }

            Length += tokens;
        }

        private void StoreInCacheTypes(ReadOnlySpan<float> keys, Span<float> values, int tokens, AttentionSettings cacheTypes)
        {
            // Keys are kept in their type's bytes (the dot reads them); values as the floats their type dequantizes to.
            var keyType = cacheTypes.EffectiveKeyType;
            var valueType = cacheTypes.EffectiveValueType;
            var valueBytes = new byte[GgmlTypes.Get(valueType).RowBytes(ValueWidth)];
            for (int t = 0; t < tokens; t++)
            {
                Quantize.Row(keyType, keys.Slice(t * KeyWidth, KeyWidth), KeyBytes.AsSpan((Length + t) * KeyRowBytes, KeyRowBytes));
                if (valueType != GgmlType.F32)
                {
                    var row = values.Slice(t * ValueWidth, ValueWidth);
                    Quantize.Row(valueType, row, valueBytes);
                    Dequantize.Row(valueType, valueBytes, row);
                }
            }
        }
    }
}
