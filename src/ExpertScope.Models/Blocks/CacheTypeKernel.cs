using System.Numerics.Tensors;
using ExpertScope.Core;
using ExpertScope.Kernels.Quant;

namespace ExpertScope.Models.Blocks;

/// <summary>
/// One query row of attention under llama.cpp's cache types and flash-attention switch (semantics in
/// <see cref="AttentionSettings"/>), over keys stored in their cache type's bytes and values stored as the floats
/// their cache type dequantizes to. Used by <see cref="MultiHeadLatentAttention"/>, whose latent values are a view of
/// the cached keys (llama.cpp's MLA path), so the value type is the key type there.
/// </summary>
internal static class CacheTypeKernel
{
    /// <summary>
    /// softmax(scale · q·k_p) · v_p over positions <paramref name="firstVisible"/> to <paramref name="visible"/> − 1
    /// (with an optional attention sink), as ggml's CPU ops compute it:
    /// the query converted to the key type's dot type and dotted with each key by <c>vec_dot</c>; then flash
    /// attention's vector kernel (online softmax; values accumulated in f16 for an f16 value type, else in float32),
    /// or ggml's soft_max_ext and a double-sum dot of the probabilities (rounded to the value type's dot type) with each
    /// value column.
    /// </summary>
    /// <param name="keyType">The key type the kernel reads (flash attention has already cast f32 to f16).</param>
    /// <param name="valueType">The value type the kernel reads.</param>
    /// <param name="flashAttention">Flash attention on.</param>
    /// <param name="query">The query row (its length is the key length).</param>
    /// <param name="keyBytes">Cached key rows in <paramref name="keyType"/>, <paramref name="keyRowBytes"/> apart.</param>
    /// <param name="keyRowBytes">Bytes per cached key row.</param>
    /// <param name="keyOffsetBytes">Byte offset of this head's key in each row.</param>
    /// <param name="values">Cached value floats; position p's values start at p · <paramref name="valueStride"/>.</param>
    /// <param name="valueStride">Floats between positions' values.</param>
    /// <param name="firstVisible">The first position attended (0 without a key window).</param>
    /// <param name="visible">One past the last position attended (causal: the query's own position + 1).</param>
    /// <param name="scale">Multiplier of q·k.</param>
    /// <param name="sink">The head's attention-sink logit, or null.</param>
    /// <param name="scores">Scratch of at least <paramref name="visible"/> + 3 floats.</param>
    /// <param name="target">Receives the attended values (its length is the value length).</param>
    public static void Attend(
        GgmlType keyType,
        GgmlType valueType,
        bool flashAttention,
        ReadOnlySpan<float> query,
        ReadOnlySpan<byte> keyBytes,
        int keyRowBytes,
        int keyOffsetBytes,
        ReadOnlySpan<float> values,
        int valueStride,
        int firstVisible,
        int visible,
        float scale,
        float? sink,
        Span<float> scores,
        Span<float> target)
    {
        int headBytes = (int)GgmlTypes.Get(keyType).RowBytes(query.Length);
        Span<byte> convertedQuery = stackalloc byte[VecDot.ActivationBytes(keyType, query.Length)];
        VecDot.QuantizeActivations(keyType, query, convertedQuery);
        for (int p = firstVisible; p < visible; p++)
        {
            scores[p] = VecDot.Quantized(keyType, keyBytes.Slice((p * keyRowBytes) + keyOffsetBytes, headBytes), convertedQuery);
        }

        int length = target.Length;
        target.Clear();
        if (flashAttention)
        {
            // ggml_compute_forward_flash_attn_ext_f16_one_chunk.
            bool halfAccumulator = valueType == GgmlType.F16;
            float sum = 0.0f;
            float max = float.NegativeInfinity;
            for (int p = firstVisible; p < visible; p++)
            {
                Attention.OnlineSoftmaxStep(scores[p] * scale, values.Slice(p * valueStride, length), halfAccumulator, ref max, ref sum, target);
            }

            if (sink is { } sinkLogit)
            {
                Attention.AddSink(sinkLogit, max, ref sum, target);
            }

            float inverse = sum == 0.0f ? 0.0f : 1.0f / sum;
            TensorPrimitives.Multiply(target, inverse, target);
            return;
        }

        // kq = mul_mat(k, q); soft_max_ext(kq, mask, scale): the causal and window masks are -inf outside the visible
        // positions, and llama.cpp's padded cache length keeps every visible position in a full group of four of the
        // vector exp. Masked positions get probability 0 and add nothing to the value sums, so those loops skip them.
        int padded = (visible + 3) / 4 * 4;
        var row = scores[..padded];
        float rowMax = float.NegativeInfinity;
        for (int p = 0; p < padded; p++)
        {
            row[p] = p >= firstVisible && p < visible ? scores[p] * scale : float.NegativeInfinity;
            rowMax = MathF.Max(rowMax, row[p]);
        }

        // soft_max_ext with sinks: the sink raises the max and adds its exp (by expf) to the double sum.
        rowMax = sink.HasValue ? MathF.Max(rowMax, sink.Value) : rowMax;
        double denominator = GgmlMath.ExpMinusMax(row, rowMax);
        if (sink.HasValue)
        {
            denominator += MathF.Exp(sink.Value - rowMax);
        }

        float reciprocal = (float)(1.0 / denominator);
        for (int p = firstVisible; p < visible; p++)
        {
            row[p] = RoundToDotType(row[p] * reciprocal, valueType);
        }

        // kqv = mul_mat(v, kq): per output value a double sum over positions of float products (ggml_vec_dot_f16/f32/bf16).
        Span<double> sums = stackalloc double[length];
        sums.Clear();
        for (int p = firstVisible; p < visible; p++)
        {
            float probability = row[p];
            var value = values.Slice(p * valueStride, length);
            for (int j = 0; j < length; j++)
            {
                sums[j] += probability * value[j];
            }
        }

        for (int j = 0; j < length; j++)
        {
            target[j] = (float)sums[j];
        }
    }

    /// <summary>Stores one row in a cache type: its bytes, and the floats they dequantize to (which the values read).</summary>
    public static void Store(GgmlType type, ReadOnlySpan<float> row, Span<byte> bytes, Span<float> stored)
    {
        Quantize.Row(type, row, bytes);
        Dequantize.Row(type, bytes, stored);
    }

    /// <summary>A float as ggml converts it to the dot type of a float cache type (f16, bf16; f32 unchanged).</summary>
    private static float RoundToDotType(float value, GgmlType type) => type switch
    {
        GgmlType.F16 => (float)(Half)value,
        GgmlType.BF16 => ScalarFormats.BFloat16ToSingle(ScalarFormats.SingleToBFloat16(value)),
        _ => value,
    };
}
