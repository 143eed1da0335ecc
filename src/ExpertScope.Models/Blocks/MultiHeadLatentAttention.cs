using ExpertScope.Core;

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
/// The weights of one MLA block. Either <see cref="Query"/> (no query compression) or the
/// <see cref="QueryA"/>/<see cref="QueryANorm"/>/<see cref="QueryB"/> triple is set; either the split
/// <see cref="KeyB"/>/<see cref="ValueB"/> pair (what current converters write) or the legacy fused
/// <see cref="KeyValueB"/> is set.
/// </summary>
public sealed class MlaWeights
{
    /// <summary><c>attn_q</c>: [H·(nope+rope), E]; used when <c>q_lora_rank</c> is 0 (V2-Lite).</summary>
    public MatrixRows? Query { get; init; }

    /// <summary><c>attn_q_a</c>: [q_lora, E].</summary>
    public MatrixRows? QueryA { get; init; }

    /// <summary><c>attn_q_a_norm</c>: RMS-norm weight of length q_lora.</summary>
    public float[]? QueryANorm { get; init; }

    /// <summary><c>attn_q_b</c>: [H·(nope+rope), q_lora].</summary>
    public MatrixRows? QueryB { get; init; }

    /// <summary><c>attn_kv_a_mqa</c>: [kv_lora + rope, E]: the compressed latent and the shared rotary key.</summary>
    public required MatrixRows KeyValueA { get; init; }

    /// <summary><c>attn_kv_a_norm</c>: RMS-norm weight of length kv_lora.</summary>
    public required float[] KeyValueANorm { get; init; }

    /// <summary><c>attn_k_b</c>: [H, kv_lora, nope]: absorbs the key decompression into the query.</summary>
    public MatrixRows? KeyB { get; init; }

    /// <summary><c>attn_v_b</c>: [H, value, kv_lora]: decompresses the attended latent per head.</summary>
    public MatrixRows? ValueB { get; init; }

    /// <summary>Legacy <c>attn_kv_b</c>: [H·(nope+value), kv_lora], per head the key rows then the value rows.</summary>
    public MatrixRows? KeyValueB { get; init; }

    /// <summary><c>attn_output</c>: [E, H·value].</summary>
    public required MatrixRows Output { get; init; }
}

/// <summary>
/// Rotary position embedding as ggml's <c>rope_ext</c> computes it for one rotated slice, including YaRN
/// (NTK-by-parts interpolation with a magnitude factor). With <see cref="ExtrapolationFactor"/> 0 and
/// <see cref="FrequencyScale"/> 1 this is plain RoPE.
/// </summary>
/// <param name="Dimensions">Rotated width (<c>rope.dimension_count</c>), even.</param>
/// <param name="FrequencyBase">θ base (<c>rope.freq_base</c>).</param>
/// <param name="FrequencyScale">1 / <c>rope.scaling.factor</c> (1 when unscaled).</param>
/// <param name="ExtrapolationFactor">YaRN ramp mix (ggml <c>ext_factor</c>): 1 for YaRN, 0 otherwise.</param>
/// <param name="AttentionFactor">Magnitude applied to cos and sin (ggml <c>attn_factor</c>).</param>
/// <param name="BetaFast">YaRN high-frequency boundary in rotations (ggml <c>beta_fast</c>, 32).</param>
/// <param name="BetaSlow">YaRN low-frequency boundary in rotations (ggml <c>beta_slow</c>, 1).</param>
/// <param name="OriginalContextLength">Training context before scaling (<c>rope.scaling.original_context_length</c>).</param>
/// <param name="Neox">True: rotate (x[i], x[i+d/2]) (NEOX, type 2); false: adjacent pairs (NORM, type 0).</param>
public sealed record RotaryEmbedding(
    int Dimensions,
    float FrequencyBase,
    float FrequencyScale = 1f,
    float ExtrapolationFactor = 0f,
    float AttentionFactor = 1f,
    float BetaFast = 32f,
    float BetaSlow = 1f,
    int OriginalContextLength = 0,
    bool Neox = false)
{
    /// <summary>
    /// YaRN's correction range: the pair indices where the ramp between interpolation and extrapolation
    /// starts and ends, <c>d · ln(n_ctx_orig / (β · 2π)) / (2 ln base)</c> floored / ceiled and clamped to [0, d-1].
    /// </summary>
    public (float Low, float High) CorrectionDimensions()
    {
        float Dimension(float rotations) =>
            Dimensions * MathF.Log(OriginalContextLength / (rotations * 2 * MathF.PI)) / (2 * MathF.Log(FrequencyBase));
        var low = MathF.Floor(Dimension(BetaFast));
        var high = MathF.Ceiling(Dimension(BetaSlow));
        return (MathF.Max(0, low), MathF.Min(Dimensions - 1, high));
    }

    /// <summary>
    /// Fills <paramref name="cosSin"/> (length <see cref="Dimensions"/>) with (cos θ_i, sin θ_i) pairs for
    /// <paramref name="position"/>, magnitude included: θ_i = position · base^(-2i/d), blended between
    /// θ·scale and θ by YaRN's ramp, and scaled by attn_factor · (1 + 0.1 ln(1/scale)) when YaRN is on.
    /// </summary>
    public void Fill(int position, Span<float> cosSin)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(cosSin.Length, Dimensions);
        var (low, high) = ExtrapolationFactor != 0f ? CorrectionDimensions() : (0f, 0f);
        // ggml advances θ by repeated float multiplication, not pow per index; the rounding matches that.
        var thetaScale = MathF.Pow(FrequencyBase, -2f / Dimensions);
        float theta = position;
        for (var i = 0; i < Dimensions; i += 2)
        {
            var interpolated = FrequencyScale * theta;
            var angle = interpolated;
            var magnitude = AttentionFactor;
            if (ExtrapolationFactor != 0f)
            {
                var y = ((i / 2) - low) / MathF.Max(0.001f, high - low);
                var rampMix = (1 - MathF.Min(1, MathF.Max(0, y))) * ExtrapolationFactor;
                angle = (interpolated * (1 - rampMix)) + (theta * rampMix);
                magnitude *= 1f + (0.1f * MathF.Log(1f / FrequencyScale));
            }

            cosSin[i] = MathF.Cos(angle) * magnitude;
            cosSin[i + 1] = MathF.Sin(angle) * magnitude;
            theta *= thetaScale;
        }
    }

    /// <summary>Rotates <paramref name="values"/> (length ≥ <see cref="Dimensions"/>) in place with a table from <see cref="Fill"/>.</summary>
    public void Apply(ReadOnlySpan<float> cosSin, Span<float> values)
    {
        var offset = Neox ? Dimensions / 2 : 1;
        for (var i = 0; i < Dimensions; i += 2)
        {
            var first = Neox ? i / 2 : i;
            var cos = cosSin[i];
            var sin = cosSin[i + 1];
            var x0 = values[first];
            var x1 = values[first + offset];
            values[first] = (x0 * cos) - (x1 * sin);
            values[first + offset] = (x0 * sin) + (x1 * cos);
        }
    }
}

/// <summary>How cached keys and values are stored.</summary>
public enum KvCachePrecision
{
    /// <summary>
    /// IEEE half precision, llama.cpp's default cache type. Attention then follows ggml's CPU flash-attention
    /// kernels (llama.cpp's default on the CPU): for batches under 64 tokens the query is rounded to F16 for q·k and
    /// the weighted value sum is accumulated in F16 with an online softmax (what the golden dumps were computed
    /// with); batches of 64 or more go through the tiled kernel, float32 apart from the cached values.
    /// </summary>
    Float16,

    /// <summary>Single precision with a plain two-pass softmax; no rounding beyond float32.</summary>
    Float32,
}

/// <summary>
/// The key/value cache of one MLA layer. With the split <c>attn_k_b</c>/<c>attn_v_b</c> weights it holds only the
/// compressed latent (normalized kv latent + rotated shared key, <see cref="MlaShape.LatentRowLength"/> floats per
/// position), which is what makes MLA's cache small; with the legacy <c>attn_kv_b</c> it holds full per-head keys
/// and values, as llama.cpp does for such files.
/// </summary>
public sealed class MlaKvCache
{
    private readonly float[] _keys32 = [];
    private readonly float[] _values32 = [];
    private readonly Half[] _keys16 = [];
    private readonly Half[] _values16 = [];

    /// <summary>ggml's flash-attention tile (query rows and key positions).</summary>
    internal const int TileLength = 64;

    private const int TiledMinimumQueries = TileLength;

    /// <summary>Creates an empty cache for up to <paramref name="capacity"/> positions.</summary>
    /// <param name="shape">The block's sizes.</param>
    /// <param name="capacity">Positions to hold.</param>
    /// <param name="decompressed">True for the legacy fused-<c>attn_kv_b</c> layout (full per-head keys and values).</param>
    /// <param name="precision">Storage precision (and with it, the attention arithmetic).</param>
    public MlaKvCache(MlaShape shape, int capacity, bool decompressed, KvCachePrecision precision = KvCachePrecision.Float16)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        Capacity = capacity;
        IsDecompressed = decompressed;
        Precision = precision;
        KeyRowLength = decompressed ? shape.HeadCount * shape.KeyLength : shape.LatentRowLength;
        ValueRowLength = decompressed ? shape.HeadCount * shape.ValueLength : 0;
        if (precision == KvCachePrecision.Float16)
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
    public KvCachePrecision Precision { get; }

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
        if (Precision == KvCachePrecision.Float16)
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
        if (Precision == KvCachePrecision.Float16)
        {
            // ggml switches to its tiled kernel once the batch has a full tile of query rows.
            if (scratch.BatchTokens >= TiledMinimumQueries)
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

    // ggml's tiled CPU flash attention (batches of at least 64 query rows): float32 throughout except the F16 cache.
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
            runningSum = (float)(runningSum + GgmlMath.ExpMinusMax(tile, newMax, tile));
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
internal sealed class AttentionScratch(int batchTokens, int positions, int keyLength, int valueLength)
{
    /// <summary>Query tokens in the batch (selects ggml's kernel).</summary>
    public int BatchTokens { get; } = batchTokens;

    public float[] Scores { get; } = new float[Math.Max(positions, MlaKvCache.TileLength)];

    public float[] Query { get; } = new float[keyLength];

    public float[] Accumulator { get; } = new float[valueLength];
}

/// <summary>
/// DeepSeek-V2/V3 multi-head latent attention, computed as llama.cpp computes it. Keys and values are
/// compressed into one shared latent c (kv_lora floats, RMS-normed) plus a shared rotary key k_pe; with the
/// split <c>attn_k_b</c>/<c>attn_v_b</c> weights the key decompression is absorbed into the query
/// (q_nope · W_kb per head) so attention runs against the latent directly (one KV head, MQA), and the
/// attended latent is decompressed per head by <c>attn_v_b</c>. With the legacy fused <c>attn_kv_b</c>, keys and
/// values are decompressed per head first and attention is ordinary MHA. The rotary parts use RoPE on their
/// own slice (DeepSeek uses NORM, adjacent pairs).
/// </summary>
public sealed class MultiHeadLatentAttention
{
    private readonly MlaShape _shape;
    private readonly MlaWeights _weights;
    private readonly RotaryEmbedding _rope;
    private readonly float _attentionScale;
    private readonly float _rmsEpsilon;

    /// <summary>Creates the block and checks that the weights fit the shape.</summary>
    /// <param name="shape">Sizes.</param>
    /// <param name="weights">Weights (one of the query forms, one of the key/value forms).</param>
    /// <param name="rope">Rotation of the decoupled rope slices; its <see cref="RotaryEmbedding.Dimensions"/> is the rope length.</param>
    /// <param name="attentionScale">Multiplier of q·k before the softmax (llama.cpp's <c>kq_scale</c>:
    /// mscale² / sqrt(key_length_mla)).</param>
    /// <param name="rmsEpsilon">RMS-norm ε for the latent norms.</param>
    /// <exception cref="ArgumentException">A weight is missing or has the wrong size.</exception>
    public MultiHeadLatentAttention(MlaShape shape, MlaWeights weights, RotaryEmbedding rope, float attentionScale, float rmsEpsilon)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(rope);
        _shape = shape;
        _weights = weights;
        _rope = rope;
        _attentionScale = attentionScale;
        _rmsEpsilon = rmsEpsilon;
        Validate();
    }

    /// <summary>The block's sizes.</summary>
    public MlaShape Shape => _shape;

    /// <summary>True when the legacy fused <c>attn_kv_b</c> is used (decompressed MHA cache).</summary>
    public bool UsesFusedKeyValue => _weights.KeyValueB is not null;

    /// <summary>A cache sized for this block.</summary>
    public MlaKvCache CreateCache(int capacity, KvCachePrecision precision = KvCachePrecision.Float16) =>
        new(_shape, capacity, UsesFusedKeyValue, precision);

    /// <summary>
    /// Runs attention for <paramref name="tokenCount"/> new tokens at positions <c>cache.Length ..</c>, appending
    /// them to <paramref name="cache"/> (causal: each token sees the cache and the new tokens up to itself).
    /// </summary>
    /// <param name="input">Normed residual rows [tokenCount, E] (<c>attn_norm</c>).</param>
    /// <param name="tokenCount">Number of new tokens.</param>
    /// <param name="cache">This layer's cache; grows by <paramref name="tokenCount"/>.</param>
    /// <param name="headOutputs">Receives the concatenated head outputs [tokenCount, H·value] (llama.cpp's
    /// <c>kqv_out</c>, before the output projection).</param>
    /// <param name="output">Receives the projected attention output [tokenCount, E].</param>
    public void Forward(ReadOnlySpan<float> input, int tokenCount, MlaKvCache cache, Span<float> headOutputs, Span<float> output)
    {
        ArgumentNullException.ThrowIfNull(cache);
        var s = _shape;
        if (cache.IsDecompressed != UsesFusedKeyValue)
        {
            throw new ArgumentException("The cache was made for the other key/value layout.", nameof(cache));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(input.Length, tokenCount * s.EmbeddingLength, nameof(input));
        ArgumentOutOfRangeException.ThrowIfLessThan(headOutputs.Length, tokenCount * s.HeadOutputLength, nameof(headOutputs));
        ArgumentOutOfRangeException.ThrowIfLessThan(output.Length, tokenCount * s.EmbeddingLength, nameof(output));
        cache.EnsureRoom(tokenCount);

        var start = cache.Length;
        var queryRow = s.HeadCount * s.KeyLength;
        var query = new float[tokenCount * queryRow];
        ProjectQuery(input, tokenCount, query);

        // Compressed latent + shared rotary key for each new token, written straight into the cache layout.
        var latent = new float[tokenCount * s.LatentRowLength];
        _weights.KeyValueA.Multiply(input, tokenCount, latent);
        var cosSin = new float[s.RopeLength];
        for (var t = 0; t < tokenCount; t++)
        {
            var row = latent.AsSpan(t * s.LatentRowLength, s.LatentRowLength);
            RmsNormalize(row[..s.KvLoraRank], _weights.KeyValueANorm, _rmsEpsilon, row[..s.KvLoraRank]);
            _rope.Fill(start + t, cosSin);
            _rope.Apply(cosSin, row[s.KvLoraRank..]);
            for (var h = 0; h < s.HeadCount; h++)
            {
                _rope.Apply(cosSin, query.AsSpan((t * queryRow) + (h * s.KeyLength) + s.NopeLength, s.RopeLength));
            }
        }

        if (UsesFusedKeyValue)
        {
            AttendDecompressed(query, latent, tokenCount, cache, headOutputs);
        }
        else
        {
            AttendLatent(query, latent, tokenCount, cache, headOutputs);
        }

        cache.Append(tokenCount);
        _weights.Output.Multiply(headOutputs, tokenCount, output);
    }

    private void ProjectQuery(ReadOnlySpan<float> input, int tokenCount, Span<float> query)
    {
        var s = _shape;
        if (_weights.Query is { } direct)
        {
            direct.Multiply(input, tokenCount, query);
            return;
        }

        var compressed = new float[tokenCount * s.QueryLoraRank];
        _weights.QueryA!.Multiply(input, tokenCount, compressed);
        for (var t = 0; t < tokenCount; t++)
        {
            var row = compressed.AsSpan(t * s.QueryLoraRank, s.QueryLoraRank);
            RmsNormalize(row, _weights.QueryANorm!, _rmsEpsilon, row);
        }

        _weights.QueryB!.Multiply(compressed, tokenCount, query);
    }

    // Absorbed MLA (llama.cpp's path for split k_b/v_b): score = (W_kb^T q_nope)·c + q_pe·k_pe; out = W_vb (Σ p c).
    private void AttendLatent(float[] query, float[] latent, int tokenCount, MlaKvCache cache, Span<float> headOutputs)
    {
        var s = _shape;
        var start = cache.Length;
        cache.Store(start, latent, []);
        var queryRow = s.HeadCount * s.KeyLength;
        var absorbed = new float[s.LatentRowLength];
        var attended = new float[s.KvLoraRank];
        var scratch = new AttentionScratch(tokenCount, start + tokenCount, s.LatentRowLength, s.KvLoraRank);
        var keyB = _weights.KeyB!;
        var valueB = _weights.ValueB!;
        for (var t = 0; t < tokenCount; t++)
        {
            for (var h = 0; h < s.HeadCount; h++)
            {
                var q = query.AsSpan((t * queryRow) + (h * s.KeyLength), s.KeyLength);
                // Query in latent space followed by its rotary part, matching the cached [c, k_pe] rows.
                for (var r = 0; r < s.KvLoraRank; r++)
                {
                    absorbed[r] = keyB.Dot((h * s.KvLoraRank) + r, q[..s.NopeLength]);
                }

                q[s.NopeLength..].CopyTo(absorbed.AsSpan(s.KvLoraRank));
                // The values are the first kv_lora floats of each cached latent row (MQA over the latent).
                cache.Attend(absorbed, keyOffset: 0, valueFromKeys: true, valueOffset: 0, s.KvLoraRank, start + t + 1, _attentionScale, scratch, attended);
                var head = headOutputs.Slice((t * s.HeadOutputLength) + (h * s.ValueLength), s.ValueLength);
                for (var j = 0; j < s.ValueLength; j++)
                {
                    head[j] = valueB.Dot((h * s.ValueLength) + j, attended);
                }
            }
        }
    }

    // Legacy fused kv_b: decompress per-head keys [k_nope, k_pe] and values, then ordinary causal MHA.
    private void AttendDecompressed(float[] query, float[] latent, int tokenCount, MlaKvCache cache, Span<float> headOutputs)
    {
        var s = _shape;
        var start = cache.Length;
        var kvB = _weights.KeyValueB!;
        var newKeys = new float[tokenCount * cache.KeyRowLength];
        var newValues = new float[tokenCount * cache.ValueRowLength];
        var fusedRow = s.NopeLength + s.ValueLength;
        for (var t = 0; t < tokenCount; t++)
        {
            var row = latent.AsSpan(t * s.LatentRowLength, s.LatentRowLength);
            var c = row[..s.KvLoraRank];
            for (var h = 0; h < s.HeadCount; h++)
            {
                var key = newKeys.AsSpan((t * cache.KeyRowLength) + (h * s.KeyLength), s.KeyLength);
                for (var i = 0; i < s.NopeLength; i++)
                {
                    key[i] = kvB.Dot((h * fusedRow) + i, c);
                }

                row[s.KvLoraRank..].CopyTo(key[s.NopeLength..]);
                var value = newValues.AsSpan((t * cache.ValueRowLength) + (h * s.ValueLength), s.ValueLength);
                for (var j = 0; j < s.ValueLength; j++)
                {
                    value[j] = kvB.Dot((h * fusedRow) + s.NopeLength + j, c);
                }
            }
        }

        cache.Store(start, newKeys, newValues);
        var queryRow = s.HeadCount * s.KeyLength;
        var scratch = new AttentionScratch(tokenCount, start + tokenCount, s.KeyLength, s.ValueLength);
        for (var t = 0; t < tokenCount; t++)
        {
            for (var h = 0; h < s.HeadCount; h++)
            {
                var q = query.AsSpan((t * queryRow) + (h * s.KeyLength), s.KeyLength);
                var head = headOutputs.Slice((t * s.HeadOutputLength) + (h * s.ValueLength), s.ValueLength);
                cache.Attend(q, h * s.KeyLength, valueFromKeys: false, h * s.ValueLength, s.ValueLength, start + t + 1, _attentionScale, scratch, head);
            }
        }
    }

    // ggml rms_norm then mul: mean of squares accumulated in double, scale = 1/sqrtf(mean + eps).
    private static void RmsNormalize(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float epsilon, Span<float> y)
    {
        double sum = 0;
        foreach (var v in x)
        {
            sum += v * v;
        }

        var mean = (float)(sum / x.Length);
        var scale = 1f / MathF.Sqrt(mean + epsilon);
        for (var i = 0; i < x.Length; i++)
        {
            y[i] = x[i] * scale * weight[i];
        }
    }

    private void Validate()
    {
        var s = _shape;
        var w = _weights;
        var queryRows = s.HeadCount * s.KeyLength;
        if (w.Query is { } q)
        {
            Expect(q, queryRows, s.EmbeddingLength, "attn_q");
        }
        else if (w.QueryA is { } qa && w.QueryB is { } qb && w.QueryANorm is { } qn)
        {
            Expect(qa, s.QueryLoraRank, s.EmbeddingLength, "attn_q_a");
            Expect(qb, queryRows, s.QueryLoraRank, "attn_q_b");
            ExpectLength(qn, s.QueryLoraRank, "attn_q_a_norm");
        }
        else
        {
            throw new ArgumentException("MLA needs attn_q, or attn_q_a + attn_q_a_norm + attn_q_b.", nameof(_weights));
        }

        Expect(w.KeyValueA, s.LatentRowLength, s.EmbeddingLength, "attn_kv_a_mqa");
        ExpectLength(w.KeyValueANorm, s.KvLoraRank, "attn_kv_a_norm");
        if (w.KeyValueB is { } kvb)
        {
            Expect(kvb, s.HeadCount * (s.NopeLength + s.ValueLength), s.KvLoraRank, "attn_kv_b");
        }
        else if (w.KeyB is { } kb && w.ValueB is { } vb)
        {
            Expect(kb, s.HeadCount * s.KvLoraRank, s.NopeLength, "attn_k_b");
            Expect(vb, s.HeadCount * s.ValueLength, s.KvLoraRank, "attn_v_b");
        }
        else
        {
            throw new ArgumentException("MLA needs attn_k_b + attn_v_b, or the legacy attn_kv_b.", nameof(_weights));
        }

        Expect(w.Output, s.EmbeddingLength, s.HeadOutputLength, "attn_output");
        if (_rope.Dimensions != s.RopeLength)
        {
            throw new ArgumentException($"The rotary embedding rotates {_rope.Dimensions} values; the rope slice is {s.RopeLength}.", nameof(_rope));
        }
    }

    private static void Expect(MatrixRows matrix, int rows, int columns, string name)
    {
        if (matrix.Rows != rows || matrix.Columns != columns)
        {
            throw new ArgumentException($"{name}: expected [{rows}, {columns}], got [{matrix.Rows}, {matrix.Columns}].");
        }
    }

    private static void ExpectLength(float[] vector, int length, string name)
    {
        if (vector.Length != length)
        {
            throw new ArgumentException($"{name}: expected [{length}], got [{vector.Length}].");
        }
    }
}
