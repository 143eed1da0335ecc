using ExpertScope.Core;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Blocks;

/// <summary>
/// The sizes of DeepSeek's multi-head latent attention (MLA), from the <c>deepseek2.attention.*</c> GGUF keys.
/// </summary>
/// <param name="EmbeddingLength">Residual width E (<c>embedding_length</c>).</param>
/// <param name="HeadCount">Query heads H (<c>attention.head_count</c>); keys and values share one latent.</param>
/// <param name="QueryLoraRank">Rank of the compressed query (<c>attention.q_lora_rank</c>); 0 = a plain <c>attn_q</c>.</param>
/// <param name="KvLoraRank">Rank of the compressed key/value latent (<c>attention.kv_lora_rank</c>).</param>
/// <param name="NopeLength">Per-head query/key part without position (<c>key_length_mla - rope.dimension_count</c>).</param>
/// <param name="RopeLength">Per-head decoupled rotary part, shared by all heads on the key side (<c>rope.dimension_count</c>).</param>
/// <param name="ValueLength">Per-head value width after decompression (<c>attention.value_length_mla</c>).</param>
public sealed record MlaShape(
    int EmbeddingLength,
    int HeadCount,
    int QueryLoraRank,
    int KvLoraRank,
    int NopeLength,
    int RopeLength,
    int ValueLength)
{
    /// <summary>Per-head query/key width as the model was trained (<c>key_length_mla</c>): nope + rope.</summary>
    public int KeyLength => NopeLength + RopeLength;

    /// <summary>Width of one cached latent row: the normalized compressed kv followed by the rotated key.</summary>
    public int LatentRowLength => KvLoraRank + RopeLength;

    /// <summary>Width of the concatenated head outputs (<c>kqv_out</c>): H · value length.</summary>
    public int HeadOutputLength => HeadCount * ValueLength;
}

/// <summary>
/// The weights of one MLA block, viewed in the checkpoint. Either <see cref="Query"/> (no query compression, V2-Lite)
/// or <see cref="QueryA"/>/<see cref="QueryANorm"/>/<see cref="QueryB"/> (V2, V3) is set; either the split per-head
/// <see cref="KeyB"/>/<see cref="ValueB"/> (what current converters write) or the legacy fused
/// <c>attn_kv_b</c> as per-head <see cref="KeyNope"/>/<see cref="Value"/> row views is set.
/// </summary>
public sealed record MlaWeights
{
    /// <summary><c>attn_q</c>: [H·(nope+rope), E].</summary>
    public LinearWeight? Query { get; init; }

    /// <summary><c>attn_q_a</c>: [q_lora, E].</summary>
    public LinearWeight? QueryA { get; init; }

    /// <summary><c>attn_q_a_norm</c> (width q_lora).</summary>
    public RmsNorm? QueryANorm { get; init; }

    /// <summary><c>attn_q_b</c>: [H·(nope+rope), q_lora].</summary>
    public LinearWeight? QueryB { get; init; }

    /// <summary><c>attn_kv_a_mqa</c>: [kv_lora + rope, E]: the compressed latent and the shared rotary key.</summary>
    public required LinearWeight KeyValueA { get; init; }

    /// <summary><c>attn_kv_a_norm</c> (width kv_lora).</summary>
    public required RmsNorm KeyValueANorm { get; init; }

    /// <summary><c>attn_k_b</c> per head: [kv_lora, nope], absorbed into the query (q_nope → latent space).</summary>
    public IReadOnlyList<LinearWeight>? KeyB { get; init; }

    /// <summary><c>attn_v_b</c> per head: [value, kv_lora], decompressing the attended latent.</summary>
    public IReadOnlyList<LinearWeight>? ValueB { get; init; }

    /// <summary>Legacy <c>attn_kv_b</c> key rows per head: [nope, kv_lora].</summary>
    public IReadOnlyList<LinearWeight>? KeyNope { get; init; }

    /// <summary>Legacy <c>attn_kv_b</c> value rows per head: [value, kv_lora].</summary>
    public IReadOnlyList<LinearWeight>? Value { get; init; }

    /// <summary><c>attn_output</c>: [E, H·value].</summary>
    public required LinearWeight Output { get; init; }
}

/// <summary>
/// The key/value cache of one MLA layer. With the split <c>attn_k_b</c>/<c>attn_v_b</c> weights it holds only the
/// compressed latent (normalized kv latent + rotated shared key, <see cref="MlaShape.LatentRowLength"/> floats per
/// position), which is what makes MLA's cache small; with the legacy <c>attn_kv_b</c> it holds full per-head keys
/// and values, as llama.cpp does for such files.
/// </summary>
public sealed class MlaKvCache : IAttentionCache
{
    private readonly float[] _keys32 = [];
    private readonly float[] _values32 = [];
    private readonly Half[] _keys16 = [];
    private readonly Half[] _values16 = [];
    private readonly byte[] _keyBytes = [];

    /// <summary>ggml's flash-attention tile (query rows and key positions).</summary>
    internal const int TileLength = 64;

    /// <summary>Creates an empty cache for up to <paramref name="capacity"/> positions.</summary>
    /// <param name="shape">The block's sizes.</param>
    /// <param name="capacity">Positions to hold.</param>
    /// <param name="decompressed">True for the legacy fused-<c>attn_kv_b</c> layout (full per-head keys and values).</param>
    /// <param name="precision">Storage precision, and with it the attention arithmetic: <see cref="CachePrecision.Float16"/>
    /// follows ggml's CPU flash-attention kernels (llama.cpp's default): in micro-batches (512 tokens, as llama.cpp
    /// splits a batch) under 64 tokens the query is rounded to F16 and the weighted value sum accumulated in F16
    /// (what the golden dumps were computed with); longer micro-batches take the tiled kernel, float32 apart from the
    /// cached values.</param>
    /// <param name="cacheTypes">llama.cpp's cache types and flash-attention switch when they differ from its defaults
    /// (then <paramref name="precision"/> is not used): keys are kept in the key type's bytes, values as the floats the
    /// value type dequantizes to, and attention runs through <see cref="CacheTypeKernel"/>.</param>
    public MlaKvCache(MlaShape shape, int capacity, bool decompressed, CachePrecision precision, AttentionSettings? cacheTypes = null)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        Capacity = capacity;
        IsDecompressed = decompressed;
        Precision = precision;
        KeyRowLength = decompressed ? shape.HeadCount * shape.KeyLength : shape.LatentRowLength;
        ValueRowLength = decompressed ? shape.HeadCount * shape.ValueLength : 0;
        CacheTypes = cacheTypes;
        if (cacheTypes is not null)
        {
            // The floats are what the stored bytes dequantize to: the latent's values are read from the key rows.
            KeyRowBytes = (int)GgmlTypes.Get(cacheTypes.EffectiveKeyType).RowBytes(KeyRowLength);
            _keyBytes = new byte[checked(capacity * KeyRowBytes)];
            _keys32 = new float[checked(capacity * KeyRowLength)];
            _values32 = new float[checked(capacity * ValueRowLength)];
        }
        else if (precision == CachePrecision.Float16)
        {
            _keys16 = new Half[checked(capacity * KeyRowLength)];
            _values16 = new Half[checked(capacity * ValueRowLength)];
        }
        else
        {
            _keys32 = new float[checked(capacity * KeyRowLength)];
            _values32 = new float[checked(capacity * ValueRowLength)];
        }
    }

    /// <summary>Positions the cache can hold.</summary>
    public int Capacity { get; }

    /// <summary>Positions stored so far; the next token's position.</summary>
    public int Length { get; private set; }

    /// <summary>True when full per-head keys and values are cached (legacy fused <c>attn_kv_b</c>).</summary>
    public bool IsDecompressed { get; }

    /// <summary>Storage precision.</summary>
    public CachePrecision Precision { get; }

    /// <summary>llama.cpp's cache types and flash-attention switch, or null for its defaults (see <see cref="Precision"/>).</summary>
    public AttentionSettings? CacheTypes { get; }

    /// <summary>Bytes per cached key row in the key cache type (0 without <see cref="CacheTypes"/>).</summary>
    public int KeyRowBytes { get; }

    /// <summary>Floats per cached key row: the latent row, or H · key length when decompressed.</summary>
    public int KeyRowLength { get; }

    /// <summary>Floats per cached value row (0 for the latent cache, whose values are the latent's first kv_lora floats).</summary>
    public int ValueRowLength { get; }

    /// <summary>Forgets every position (the buffers are reused).</summary>
    public void Clear() => Length = 0;

    /// <summary>Drops positions from <paramref name="length"/> on, e.g. to re-run a suffix.</summary>
    public void Truncate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, Length);
        Length = length;
    }

    internal void EnsureRoom(int count)
    {
        if (Length + count > Capacity)
        {
            throw new ExpertScopeException($"The MLA cache holds {Capacity} positions; {Length} + {count} do not fit.");
        }
    }

    internal void Append(int count)
    {
        EnsureRoom(count);
        Length += count;
    }

    // Writes whole rows from position `start` (not yet counted in Length), rounding to the storage precision.
    internal void Store(int start, ReadOnlySpan<float> keys, ReadOnlySpan<float> values)
    {
        if (CacheTypes is { } types)
        {
            var valueBytes = new byte[GgmlTypes.Get(types.EffectiveValueType).RowBytes(Math.Max(ValueRowLength, 1))];
            for (var t = 0; t < keys.Length / KeyRowLength; t++)
            {
                var position = start + t;
                CacheTypeKernel.Store(
                    types.EffectiveKeyType,
                    keys.Slice(t * KeyRowLength, KeyRowLength),
                    _keyBytes.AsSpan(position * KeyRowBytes, KeyRowBytes),
                    _keys32.AsSpan(position * KeyRowLength, KeyRowLength));
                if (ValueRowLength > 0)
                {
                    CacheTypeKernel.Store(
                        types.EffectiveValueType,
                        values.Slice(t * ValueRowLength, ValueRowLength),
                        valueBytes,
                        _values32.AsSpan(position * ValueRowLength, ValueRowLength));
                }
            }

            return;
        }

        if (Precision == CachePrecision.Float16)
        {
            Round(keys, _keys16.AsSpan(start * KeyRowLength, keys.Length));
            Round(values, _values16.AsSpan(start * ValueRowLength, values.Length));
        }
        else
        {
            keys.CopyTo(_keys32.AsSpan(start * KeyRowLength));
            values.CopyTo(_values32.AsSpan(start * ValueRowLength));
        }

        static void Round(ReadOnlySpan<float> source, Span<Half> destination)
        {
            for (var i = 0; i < source.Length; i++)
            {
                destination[i] = (Half)source[i];
            }
        }
    }

    /// <summary>
    /// softmax(scale · q·k_p) · v_p over the first <paramref name="visible"/> positions for one query head.
    /// Keys are <c>query.Length</c> floats at <paramref name="keyOffset"/> of each key row; values are
    /// <paramref name="valueLength"/> floats at <paramref name="valueOffset"/> of each value row, or of each key row
    /// when <paramref name="valueFromKeys"/> (MLA's latent doubles as the value).
    /// </summary>
    internal void Attend(
        ReadOnlySpan<float> query,
        int keyOffset,
        bool valueFromKeys,
        int valueOffset,
        int valueLength,
        int visible,
        float scale,
        AttentionScratch scratch,
        Span<float> output)
    {
        if (CacheTypes is { } types)
        {
            // llama.cpp's latent values are a view of the cached keys, so they have the key type.
            var keyType = types.EffectiveKeyType;
            CacheTypeKernel.Attend(
                keyType,
                valueFromKeys ? keyType : types.EffectiveValueType,
                types.FlashAttention,
                query,
                _keyBytes,
                KeyRowBytes,
                (int)GgmlTypes.Get(keyType).RowBytes(keyOffset),
                valueFromKeys ? _keys32.AsSpan(valueOffset) : _values32.AsSpan(valueOffset),
                valueFromKeys ? KeyRowLength : ValueRowLength,
                firstVisible: 0,
                visible,
                scale,
                sink: null,
                scratch.Scores,
                output[..valueLength]);
            return;
        }

        if (Precision == CachePrecision.Float16)
        {
            // ggml takes its tiled kernel when the micro-batch has a full tile of query rows.
            if (scratch.Tiled)
            {
                AttendHalfTiled(query, keyOffset, valueFromKeys, valueOffset, valueLength, visible, scale, scratch, output);
            }
            else
            {
                AttendHalf(query, keyOffset, valueFromKeys, valueOffset, valueLength, visible, scale, scratch, output);
            }

            return;
        }

        var keyLength = query.Length;
        var valueRows = valueFromKeys ? _keys32 : _values32;
        var valueStride = valueFromKeys ? KeyRowLength : ValueRowLength;
        var scores = scratch.Scores.AsSpan(0, visible);
        for (var p = 0; p < visible; p++)
        {
            var key = _keys32.AsSpan((p * KeyRowLength) + keyOffset, keyLength);
            double sum = 0;
            for (var i = 0; i < keyLength; i++)
            {
                sum += query[i] * key[i];
            }

            scores[p] = (float)sum;
        }

        // ggml soft_max_ext: scale, subtract the max, exp, sum in double, multiply by the reciprocal.
        var max = float.NegativeInfinity;
        for (var p = 0; p < visible; p++)
        {
            scores[p] *= scale;
            max = MathF.Max(max, scores[p]);
        }

        double total = 0;
        for (var p = 0; p < visible; p++)
        {
            scores[p] = MathF.Exp(scores[p] - max);
            total += scores[p];
        }

        var inverse = (float)(1.0 / total);
        var result = output[..valueLength];
        result.Clear();
        for (var p = 0; p < visible; p++)
        {
            var weight = scores[p] * inverse;
            var value = valueRows.AsSpan((p * valueStride) + valueOffset, valueLength);
            for (var j = 0; j < valueLength; j++)
            {
                result[j] += weight * value[j];
            }
        }
    }

    // ggml's tiled CPU flash attention (micro-batches of at least 64 query rows): float32 throughout except the F16 cache.
    // Key positions go in tiles of 64; per tile: q·k summed in float, scaled; the running max and sum are updated
    // (exp by ggml's vector polynomial, sum in double); the float accumulator gains Σ p·v in position order.
    private void AttendHalfTiled(
        ReadOnlySpan<float> query,
        int keyOffset,
        bool valueFromKeys,
        int valueOffset,
        int valueLength,
        int visible,
        float scale,
        AttentionScratch scratch,
        Span<float> output)
    {
        var keyLength = query.Length;
        var valueRows = valueFromKeys ? _keys16 : _values16;
        var valueStride = valueFromKeys ? KeyRowLength : ValueRowLength;
        var accumulator = scratch.Accumulator.AsSpan(0, valueLength);
        accumulator.Clear();
        var tile = scratch.Scores.AsSpan(0, TileLength);
        var runningMax = float.NegativeInfinity;
        var runningSum = 0f;
        for (var tileStart = 0; tileStart < visible; tileStart += TileLength)
        {
            var count = Math.Min(TileLength, visible - tileStart);
            var tileMax = float.NegativeInfinity;
            for (var i = 0; i < TileLength; i++)
            {
                if (i >= count)
                {
                    tile[i] = float.NegativeInfinity;
                    continue;
                }

                var key = _keys16.AsSpan(((tileStart + i) * KeyRowLength) + keyOffset, keyLength);
                var dot = 0f;
                for (var d = 0; d < keyLength; d++)
                {
                    dot += query[d] * (float)key[d];
                }

                tile[i] = dot * scale;
                tileMax = MathF.Max(tileMax, tile[i]);
            }

            var newMax = MathF.Max(runningMax, tileMax);
            if (newMax > runningMax)
            {
                var rescale = MathF.Exp(runningMax - newMax);
                for (var j = 0; j < valueLength; j++)
                {
                    accumulator[j] *= rescale;
                }

                runningSum *= rescale;
            }

            runningMax = newMax;
            runningSum = (float)(runningSum + GgmlMath.ExpMinusMax(tile, newMax));
            for (var j = 0; j < valueLength; j++)
            {
                var sum = accumulator[j];
                for (var i = 0; i < count; i++)
                {
                    sum += tile[i] * (float)valueRows[((tileStart + i) * valueStride) + valueOffset + j];
                }

                accumulator[j] = sum;
            }
        }

        var inverse = runningSum == 0f ? 0f : 1f / runningSum;
        for (var j = 0; j < valueLength; j++)
        {
            output[j] = accumulator[j] * inverse;
        }
    }

    // ggml's CPU flash attention for F16 K/V, one query row: q rounded to F16; scores as F16·F16 dot products;
    // online softmax (running max M, running sum S) with the value accumulator kept in F16 and rescaled when the
    // max grows; finally the accumulator times 1/S.
    private void AttendHalf(
        ReadOnlySpan<float> query,
        int keyOffset,
        bool valueFromKeys,
        int valueOffset,
        int valueLength,
        int visible,
        float scale,
        AttentionScratch scratch,
        Span<float> output)
    {
        var keyLength = query.Length;
        var q = scratch.Query.AsSpan(0, keyLength);
        for (var i = 0; i < keyLength; i++)
        {
            q[i] = (float)(Half)query[i];
        }

        var valueRows = valueFromKeys ? _keys16 : _values16;
        var valueStride = valueFromKeys ? KeyRowLength : ValueRowLength;
        var accumulator = scratch.Accumulator.AsSpan(0, valueLength);
        accumulator.Clear();
        var runningMax = float.NegativeInfinity;
        var runningSum = 0f;
        for (var p = 0; p < visible; p++)
        {
            var key = _keys16.AsSpan((p * KeyRowLength) + keyOffset, keyLength);
            // ggml_vec_dot_f16: F16·F16 products summed in double.
            double dot = 0;
            for (var i = 0; i < keyLength; i++)
            {
                dot += (float)key[i] * q[i];
            }

            var score = (float)dot * scale;
            var rescale = 1f;
            var weight = 1f;
            if (score > runningMax)
            {
                rescale = MathF.Exp(runningMax - score);
                runningMax = score;
                for (var j = 0; j < valueLength; j++)
                {
                    accumulator[j] = (float)(Half)(accumulator[j] * rescale);
                }
            }
            else
            {
                weight = MathF.Exp(score - runningMax);
            }

            var value = valueRows.AsSpan((p * valueStride) + valueOffset, valueLength);
            for (var j = 0; j < valueLength; j++)
            {
                // ggml_vec_mad_f16: widen, multiply-add in float, round back to F16.
                accumulator[j] = (float)(Half)(accumulator[j] + ((float)value[j] * weight));
            }

            runningSum = (runningSum * rescale) + weight;
        }

        var inverse = runningSum == 0f ? 0f : 1f / runningSum;
        for (var j = 0; j < valueLength; j++)
        {
            output[j] = accumulator[j] * inverse;
        }
    }
}

/// <summary>Per-call buffers for <see cref="MlaKvCache.Attend"/>, allocated once per forward call.</summary>
internal sealed class AttentionScratch(int positions, int keyLength, int valueLength)
{
    /// <summary>
    /// True when the current query row's micro-batch is long enough for ggml's tiled kernel
    /// (<see cref="Attention.UsesTiledKernel"/>); set per row.
    /// </summary>
    public bool Tiled { get; set; }

    // Three more than the positions: ggml's softmax runs over whole groups of four.
    public float[] Scores { get; } = new float[Math.Max(positions + 3, MlaKvCache.TileLength)];

    public float[] Query { get; } = new float[keyLength];

    public float[] Accumulator { get; } = new float[valueLength];
}

/// <summary>
/// DeepSeek-V2/V3 multi-head latent attention, computed as llama.cpp computes it. Keys and values are compressed
/// into one shared latent c (kv_lora floats, RMS-normed) plus one rotary key k_pe shared by all heads. With the split
/// <c>attn_k_b</c>/<c>attn_v_b</c> weights the key decompression is absorbed into the query (q_nope · W_kb per head),
/// so attention runs against the cached latent directly (MQA with one key/value head of width kv_lora + rope) and
/// the attended latent is decompressed per head by <c>attn_v_b</c>. With the legacy fused <c>attn_kv_b</c>, keys and
/// values are decompressed per head first and attention is ordinary MHA. The rotary slices (the last rope values of
/// each query head, and k_pe) use RoPE NORM (adjacent pairs), as llama.cpp does for deepseek2.
/// </summary>
/// <remarks>Differs from <see cref="Attention"/>: a latent cache, a per-head query absorption and value
/// decompression around a single shared key/value head, and a rotary part separate from the content part.</remarks>
public sealed class MultiHeadLatentAttention : IAttention
{
    /// <summary>Creates the block and checks that the weights fit the shape.</summary>
    /// <param name="shape">Sizes.</param>
    /// <param name="weights">Weights (one query form, one key/value form).</param>
    /// <param name="rope">Rotation of the rope slices (<see cref="Rope.Dimensions"/> = rope length).</param>
    /// <param name="scale">Multiplier of q·k before the softmax (llama.cpp's <c>kq_scale</c>: mscale² / sqrt(key_length_mla)).</param>
    /// <param name="cachePrecision">Cache precision (llama.cpp's default is F16).</param>
    /// <param name="settings">llama.cpp's cache types and flash-attention switch (null = its defaults); used with
    /// <see cref="CachePrecision.Float16"/>, as in <see cref="Attention"/>.</param>
    /// <exception cref="ExpertScopeException">A weight is missing or has the wrong size, or llama.cpp would refuse the settings.</exception>
    public MultiHeadLatentAttention(MlaShape shape, MlaWeights weights, Rope rope, float scale, CachePrecision cachePrecision, AttentionSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(rope);
        Shape = shape;
        Weights = weights;
        Rope = rope;
        Scale = scale;
        CachePrecision = cachePrecision;
        Settings = settings ?? AttentionSettings.Default;
        Validate();
        ValidateSettings(Settings, shape, UsesFusedKeyValue);
    }

    /// <summary>Sizes.</summary>
    public MlaShape Shape { get; }

    /// <summary>Weights.</summary>
    public MlaWeights Weights { get; }

    /// <summary>Rotation of the rope slices.</summary>
    public Rope Rope { get; }

    /// <summary>Multiplier of q·k.</summary>
    public float Scale { get; }

    /// <summary>Cache precision.</summary>
    public CachePrecision CachePrecision { get; }

    /// <summary>llama.cpp's cache types and flash-attention switch.</summary>
    public AttentionSettings Settings { get; }

    /// <summary>True when the legacy fused <c>attn_kv_b</c> is used (decompressed MHA cache).</summary>
    public bool UsesFusedKeyValue => Weights.KeyNope is not null;

    /// <summary>True when the settings differ from llama.cpp's default numbers, so the cache keeps its types' bytes.</summary>
    /// Latent attention reads no value cache, so only the key type matters there.
    private bool UsesCacheTypes =>
        CachePrecision == CachePrecision.Float16 &&
        (UsesFusedKeyValue ? !Settings.IsLlamaDefault : !(Settings.FlashAttention && Settings.EffectiveKeyType == GgmlType.F16));

    /// <inheritdoc/>
    public IAttentionCache CreateCache(int capacity) =>
        new MlaKvCache(Shape, capacity, UsesFusedKeyValue, CachePrecision, UsesCacheTypes ? Settings : null);

    /// <summary>
    /// Checks the settings as llama.cpp does for MLA. With the split <c>attn_k_b</c>/<c>attn_v_b</c> llama.cpp caches
    /// only keys (the latent and the rotated key) and reads the values as a view of them, so the key type is also the
    /// value type and <c>--cache-type-v</c> changes nothing; without flash attention that view is transposed into a
    /// contiguous copy, which ggml cannot do for a quantized type.
    /// </summary>
    /// <exception cref="ExpertScopeException">The combination is one llama.cpp refuses or cannot run.</exception>
    public static void ValidateSettings(AttentionSettings settings, MlaShape shape, bool fusedKeyValue)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(shape);
        if (fusedKeyValue)
        {
            settings.Validate(shape.KeyLength, shape.ValueLength);
            return;
        }

        if (!settings.FlashAttention && GgmlTypes.Get(settings.KeyType).BlockSize > 1)
        {
            throw new ExpertScopeException(
                $"latent attention reads its values out of the key cache, which a quantized key cache ({GgmlTypes.Get(settings.KeyType).Name}) cannot give without flash attention: drop --no-flash-attn or use --cache-type-k f16, bf16 or f32.");
        }

        settings.Validate(shape.LatentRowLength, shape.KvLoraRank);
    }

    /// <inheritdoc/>
    public void Forward(ReadOnlySpan<float> input, Span<float> output, IAttentionCache cache, int layer, ForwardContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (cache is not MlaKvCache latentCache || latentCache.IsDecompressed != UsesFusedKeyValue)
        {
            throw new ArgumentException("The cache was not created by this attention layer.", nameof(cache));
        }

        var s = Shape;
        var tokens = context.TokenCount;
        latentCache.EnsureRoom(tokens);
        var start = latentCache.Length;
        var parallelism = context.Parallelism;

        var queryRow = s.HeadCount * s.KeyLength;
        var query = new float[tokens * queryRow];
        ProjectQuery(input, tokens, query, parallelism);

        // [c, k_pe] per token: c RMS-normed, k_pe rotated; q_pe rotated per head.
        var latent = new float[tokens * s.LatentRowLength];
        Weights.KeyValueA.Multiply(input, tokens, latent, parallelism);
        for (var t = 0; t < tokens; t++)
        {
            var row = latent.AsSpan(t * s.LatentRowLength, s.LatentRowLength);
            Weights.KeyValueANorm.Apply(row[..s.KvLoraRank], row[..s.KvLoraRank]);
            Rope.Apply(row[s.KvLoraRank..], 1, s.RopeLength, start + t);
            Rope.Apply(query.AsSpan((t * queryRow) + s.NopeLength, queryRow - s.NopeLength), s.HeadCount, s.KeyLength, start + t);
        }

        var heads = new float[tokens * s.HeadOutputLength];
        if (UsesFusedKeyValue)
        {
            AttendDecompressed(query, latent, tokens, latentCache, heads, parallelism);
        }
        else
        {
            AttendLatent(query, latent, tokens, latentCache, heads, parallelism);
        }

        latentCache.Append(tokens);
        context.Emit(HookKind.AttentionHeads, layer, heads, s.HeadOutputLength);
        Weights.Output.Multiply(heads, tokens, output, parallelism);
        context.Emit(HookKind.AttentionOutput, layer, output, s.EmbeddingLength);
    }

    private void ProjectQuery(ReadOnlySpan<float> input, int tokens, Span<float> query, Parallelism parallelism)
    {
        if (Weights.Query is { } direct)
        {
            direct.Multiply(input, tokens, query, parallelism);
            return;
        }

        var compressed = new float[tokens * Shape.QueryLoraRank];
        Weights.QueryA!.Multiply(input, tokens, compressed, parallelism);
        Weights.QueryANorm!.Apply(compressed, compressed);
        Weights.QueryB!.Multiply(compressed, tokens, query, parallelism);
    }

    // Absorbed MLA (llama.cpp's path for split k_b/v_b): score = (W_kb^T q_nope)·c + q_pe·k_pe; out = W_vb (Σ p c).
    private void AttendLatent(float[] query, float[] latent, int tokens, MlaKvCache cache, float[] heads, Parallelism parallelism)
    {
        var s = Shape;
        var start = cache.Length;
        cache.Store(start, latent, []);
        var queryRow = s.HeadCount * s.KeyLength;

        // Queries in latent space, [T, H, kv_lora + rope]: absorbed q_nope followed by the rotated q_pe.
        var absorbed = new float[tokens * s.HeadCount * s.LatentRowLength];
        var nope = new float[tokens * s.NopeLength];
        var projected = new float[tokens * s.KvLoraRank];
        for (var h = 0; h < s.HeadCount; h++)
        {
            for (var t = 0; t < tokens; t++)
            {
                query.AsSpan((t * queryRow) + (h * s.KeyLength), s.NopeLength).CopyTo(nope.AsSpan(t * s.NopeLength));
            }

            Weights.KeyB![h].Multiply(nope, tokens, projected, parallelism);
            for (var t = 0; t < tokens; t++)
            {
                var target = absorbed.AsSpan(((t * s.HeadCount) + h) * s.LatentRowLength, s.LatentRowLength);
                projected.AsSpan(t * s.KvLoraRank, s.KvLoraRank).CopyTo(target);
                query.AsSpan((t * queryRow) + (h * s.KeyLength) + s.NopeLength, s.RopeLength).CopyTo(target[s.KvLoraRank..]);
            }
        }

        // The values are the first kv_lora floats of each cached latent row (MQA over the latent).
        var attended = new float[tokens * s.HeadCount * s.KvLoraRank];
        var slice = new AttentionSlice(0, ValueFromKeys: true, 0, s.KvLoraRank);
        AttendAll(absorbed, s.LatentRowLength, tokens, start, cache, _ => slice, attended, s.KvLoraRank, parallelism);

        var perHead = new float[tokens * s.KvLoraRank];
        var decompressed = new float[tokens * s.ValueLength];
        for (var h = 0; h < s.HeadCount; h++)
        {
            for (var t = 0; t < tokens; t++)
            {
                attended.AsSpan(((t * s.HeadCount) + h) * s.KvLoraRank, s.KvLoraRank).CopyTo(perHead.AsSpan(t * s.KvLoraRank));
            }

            Weights.ValueB![h].Multiply(perHead, tokens, decompressed, parallelism);
            for (var t = 0; t < tokens; t++)
            {
                decompressed.AsSpan(t * s.ValueLength, s.ValueLength).CopyTo(heads.AsSpan((t * s.HeadOutputLength) + (h * s.ValueLength)));
            }
        }
    }

    // Legacy fused kv_b: decompress per-head keys [k_nope, k_pe] and values, then ordinary causal MHA.
    private void AttendDecompressed(float[] query, float[] latent, int tokens, MlaKvCache cache, float[] heads, Parallelism parallelism)
    {
        var s = Shape;
        var start = cache.Length;
        var compressed = new float[tokens * s.KvLoraRank];
        for (var t = 0; t < tokens; t++)
        {
            latent.AsSpan(t * s.LatentRowLength, s.KvLoraRank).CopyTo(compressed.AsSpan(t * s.KvLoraRank));
        }

        var keys = new float[tokens * cache.KeyRowLength];
        var values = new float[tokens * cache.ValueRowLength];
        var nope = new float[tokens * s.NopeLength];
        var value = new float[tokens * s.ValueLength];
        for (var h = 0; h < s.HeadCount; h++)
        {
            Weights.KeyNope![h].Multiply(compressed, tokens, nope, parallelism);
            Weights.Value![h].Multiply(compressed, tokens, value, parallelism);
            for (var t = 0; t < tokens; t++)
            {
                var key = keys.AsSpan((t * cache.KeyRowLength) + (h * s.KeyLength), s.KeyLength);
                nope.AsSpan(t * s.NopeLength, s.NopeLength).CopyTo(key);
                latent.AsSpan((t * s.LatentRowLength) + s.KvLoraRank, s.RopeLength).CopyTo(key[s.NopeLength..]);
                value.AsSpan(t * s.ValueLength, s.ValueLength).CopyTo(values.AsSpan((t * cache.ValueRowLength) + (h * s.ValueLength)));
            }
        }

        cache.Store(start, keys, values);
        AttendAll(query, s.KeyLength, tokens, start, cache, h => new AttentionSlice(h * s.KeyLength, ValueFromKeys: false, h * s.ValueLength, s.ValueLength), heads, s.ValueLength, parallelism);
    }

    // One work item per (token, head); each writes only its own output slice, so any thread count gives the same bits.
    private void AttendAll(
        float[] queries,
        int queryLength,
        int tokens,
        int start,
        MlaKvCache cache,
        Func<int, AttentionSlice> sliceOfHead,
        float[] outputs,
        int outputLength,
        Parallelism parallelism)
    {
        var heads = Shape.HeadCount;
        var scale = Scale;
        parallelism.For(tokens * heads, (long)(start + tokens) * (queryLength + outputLength), (from, to) =>
        {
            var scratch = new AttentionScratch(start + tokens, queryLength, outputLength);
            for (var item = from; item < to; item++)
            {
                var t = item / heads;
                var h = item % heads;
                var slice = sliceOfHead(h);
                scratch.Tiled = Attention.UsesTiledKernel(t, tokens);
                cache.Attend(
                    queries.AsSpan(item * queryLength, queryLength),
                    slice.KeyOffset,
                    slice.ValueFromKeys,
                    slice.ValueOffset,
                    slice.ValueLength,
                    start + t + 1,
                    scale,
                    scratch,
                    outputs.AsSpan(item * outputLength, outputLength));
            }
        });
    }

    private void Validate()
    {
        var s = Shape;
        var w = Weights;
        var queryRows = s.HeadCount * s.KeyLength;
        if (w.Query is { } q)
        {
            Expect(q, s.EmbeddingLength, queryRows);
        }
        else if (w.QueryA is { } qa && w.QueryB is { } qb && w.QueryANorm is { } qn)
        {
            Expect(qa, s.EmbeddingLength, s.QueryLoraRank);
            Expect(qb, s.QueryLoraRank, queryRows);
            ExpectWidth(qn, s.QueryLoraRank, "attn_q_a_norm");
        }
        else
        {
            throw new ExpertScopeException("MLA needs attn_q, or attn_q_a + attn_q_a_norm + attn_q_b.");
        }

        Expect(w.KeyValueA, s.EmbeddingLength, s.LatentRowLength);
        ExpectWidth(w.KeyValueANorm, s.KvLoraRank, "attn_kv_a_norm");
        if (w.KeyNope is { } kn && w.Value is { } v)
        {
            ExpectHeads(kn, s.KvLoraRank, s.NopeLength);
            ExpectHeads(v, s.KvLoraRank, s.ValueLength);
        }
        else if (w.KeyB is { } kb && w.ValueB is { } vb)
        {
            ExpectHeads(kb, s.NopeLength, s.KvLoraRank);
            ExpectHeads(vb, s.KvLoraRank, s.ValueLength);
        }
        else
        {
            throw new ExpertScopeException("MLA needs attn_k_b + attn_v_b, or the legacy attn_kv_b.");
        }

        Expect(w.Output, s.HeadOutputLength, s.EmbeddingLength);
        if (Rope.Dimensions != s.RopeLength)
        {
            throw new ExpertScopeException($"The rotary embedding rotates {Rope.Dimensions} values; the rope slice is {s.RopeLength}.");
        }

        void ExpectHeads(IReadOnlyList<LinearWeight> perHead, int inputs, int outputs)
        {
            if (perHead.Count != s.HeadCount)
            {
                throw new ExpertScopeException($"'{perHead[0].Tensor.Name}': {perHead.Count} head views for {s.HeadCount} heads.");
            }

            foreach (var weight in perHead)
            {
                Expect(weight, inputs, outputs);
            }
        }
    }

    private static void Expect(LinearWeight weight, int inputs, int outputs)
    {
        if (weight.Inputs != inputs || weight.Outputs != outputs)
        {
            throw new ExpertScopeException($"'{weight.Tensor.Name}': expected [{outputs}, {inputs}], got [{weight.Outputs}, {weight.Inputs}].");
        }
    }

    private static void ExpectWidth(RmsNorm norm, int width, string name)
    {
        if (norm.Width != width)
        {
            throw new ExpertScopeException($"{name}: expected width {width}, got {norm.Width}.");
        }
    }

    private readonly record struct AttentionSlice(int KeyOffset, bool ValueFromKeys, int ValueOffset, int ValueLength);
}
