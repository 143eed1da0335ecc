using System.Runtime.InteropServices;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Kernels.Quant;

namespace ExpertScope.Models.Blocks;

/// <summary>
/// A linear layer's weight matrix <c>[outputs, inputs]</c> (GGUF <c>ne = {inputs, outputs}</c>), or one expert's
/// slice of a stacked expert tensor, viewed in place in the memory-mapped file (never copied).
/// </summary>
public sealed class LinearWeight
{
    private readonly GgufFile _file;
    private readonly long _byteOffset;

    internal LinearWeight(GgufFile file, GgufTensorInfo tensor, int inputs, int outputs, long byteOffset, FloatArithmetic arithmetic = FloatArithmetic.Reference)
    {
        _file = file;
        Arithmetic = arithmetic;
        Tensor = tensor;
        Inputs = inputs;
        Outputs = outputs;
        _byteOffset = byteOffset;
        RowBytes = checked((int)tensor.RowBytes);
        if (!WeightRows.IsSupported(tensor.Type))
        {
            throw new ExpertScopeException(
                $"{file.FilePath}: tensor '{tensor.Name}' has type {GgmlTypes.Get(tensor.Type).Name}, which this engine cannot read yet.");
        }
    }

    /// <summary>The GGUF tensor this view reads.</summary>
    public GgufTensorInfo Tensor { get; }

    /// <summary>Input features (row length).</summary>
    public int Inputs { get; }

    /// <summary>Output features (rows).</summary>
    public int Outputs { get; }

    /// <summary>Storage type.</summary>
    public GgmlType Type => Tensor.Type;

    /// <summary>How products are computed when this weight multiplies float activations (F32, F16, BF16 and types without an integer dot).</summary>
    public FloatArithmetic Arithmetic { get; }

    private int RowBytes { get; }

    /// <summary>Decodes row <paramref name="row"/> (one output feature's weights, or one embedding) to float32.</summary>
    public void ReadRow(int row, Span<float> destination)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)row, (uint)Outputs, nameof(row));
        WeightRows.Decode(Type, RowData(row), destination[..Inputs]);
    }

    /// <summary>
    /// Computes <c>output[t, o] = sum_i input[t, i] * W[o, i]</c> for <paramref name="tokenCount"/> rows of input.
    /// Each weight row is read (and decoded) once per call, whatever the token count.
    /// </summary>
    /// <param name="input">Activations <c>[tokenCount, Inputs]</c>.</param>
    /// <param name="tokenCount">Rows of <paramref name="input"/>.</param>
    /// <param name="output">Destination <c>[tokenCount, Outputs]</c>.</param>
    /// <param name="parallelism">Threads; output rows of W are split statically among them.</param>
    public void Multiply(ReadOnlySpan<float> input, int tokenCount, Span<float> output, Parallelism parallelism)
    {
        if (input.Length < tokenCount * Inputs || output.Length < tokenCount * Outputs)
        {
            throw new ArgumentException($"Multiply by '{Tensor.Name}': buffers too small for {tokenCount} tokens.");
        }

        if (tokenCount == 0 || Outputs == 0)
        {
            return;
        }

        if (TakesPackedActivations)
        {
            // As llama.cpp: activations converted once per call to the weight type's activation type (Q8_0, Q8_K, ...),
            // then ggml's dot for every (row, token) pair, through the batched kernels (same bits).
            Multiply(MatrixProduct.Pack(Type, input, tokenCount, Inputs), output, parallelism);
            return;
        }

        input = PrepareFloats(input, tokenCount);

        // Spans cannot enter the lambda: it reads through pointers whose targets outlive the synchronous loop.
        unsafe
        {
            fixed (float* inputPointer = input)
            fixed (float* outputPointer = output)
            {
                nint inAddress = (nint)inputPointer;
                nint outAddress = (nint)outputPointer;
                parallelism.For(Outputs, (long)Inputs * tokenCount, (start, end) =>
                    MultiplyRows((float*)inAddress, null, tokenCount, (float*)outAddress, start, end));
            }
        }
    }

    /// <summary>
    /// The activations of the float route: F16/BF16 weights meet activations rounded to their own type (llama.cpp's
    /// <c>from_float</c>), so rows decoded to float and the float dot give llama.cpp's bits; other types use the
    /// activations as they are. Not for weights that take packed activations.
    /// </summary>
    internal ReadOnlySpan<float> PrepareFloats(ReadOnlySpan<float> input, int tokenCount)
    {
        if (WeightRows.ActivationType(Type) is null)
        {
            return input;
        }

        int inputs = Inputs;
        var bytes = new byte[WeightRows.ActivationBytes(Type, inputs)];
        var rounded = new float[tokenCount * inputs];
        for (int t = 0; t < tokenCount; t++)
        {
            WeightRows.QuantizeActivations(Type, input.Slice(t * inputs, inputs), bytes);
            WeightRows.Decode(Type, bytes, rounded.AsSpan(t * inputs, inputs));
        }

        return rounded;
    }

    /// <summary>
    /// Output rows <c>[start, end)</c> of the product on the calling thread: the piece of work that
    /// <see cref="Multiply(ReadOnlySpan{float}, int, Span{float}, Parallelism)"/> gives each thread, exposed so a caller
    /// can split several products in one parallel job. Each output is the same whatever the range it falls in.
    /// </summary>
    /// <param name="input">Float activations <c>[tokenCount, Inputs]</c> from <see cref="PrepareFloats"/> (ignored when <paramref name="packed"/> is given).</param>
    /// <param name="packed">Activations from <see cref="Pack"/> for weights that take them, else null.</param>
    /// <param name="tokenCount">Tokens.</param>
    /// <param name="output">Destination <c>[tokenCount, Outputs]</c>.</param>
    /// <param name="start">First output row.</param>
    /// <param name="end">End of the output rows (exclusive).</param>
    internal unsafe void MultiplyRows(float* input, PackedActivations? packed, int tokenCount, float* output, int start, int end)
    {
        int inputs = Inputs;
        int outputs = Outputs;
        if (packed is not null)
        {
            var weights = _file.GetTensorData(Tensor, _byteOffset + (long)start * RowBytes, (end - start) * RowBytes);
            var y = new Span<float>(output + start, (tokenCount - 1) * outputs + (end - start));
            MatrixProduct.Multiply(Type, weights, end - start, packed, y, outputs);
            return;
        }

        if (Arithmetic == FloatArithmetic.Fused)
        {
            MultiplyFused(input, tokenCount, output, start, end);
            return;
        }

        var x = new ReadOnlySpan<float>(input, tokenCount * inputs);
        var result = new Span<float>(output, tokenCount * outputs);
        if (tokenCount > 1)
        {
            MultiplyFloatBlocked(x, tokenCount, result, start, end);
            return;
        }

        float[]? scratch = Type == GgmlType.F32 ? null : new float[inputs];
        for (int o = start; o < end; o++)
        {
            var row = RowData(o);
            ReadOnlySpan<float> weights;
            if (scratch is null)
            {
                weights = MemoryMarshal.Cast<byte, float>(row);
            }
            else
            {
                WeightRows.Decode(Type, row, scratch);
                weights = scratch;
            }

            result[o] = DotProduct.Compute(weights, x[..inputs]);
        }
    }

    /// <summary>
    /// <see cref="FloatArithmetic.Fused"/> products for output rows <c>[start, end)</c>: tiles of four rows by four
    /// tokens (<see cref="FusedDotProduct.Tile"/>, the same bits for a pair whatever tile it falls in), tokens in
    /// blocks that stay in cache while the rows stream past. Rows of other types are decoded four at a time.
    /// </summary>
    private unsafe void MultiplyFused(float* x, int tokenCount, float* y, int start, int end)
    {
        const int TokenBlock = 64;
        const int RowTile = 4;
        const int TokenTile = 4;
        int inputs = Inputs;
        int outputs = Outputs;
        bool decode = Type != GgmlType.F32;
        float[]? decoded = decode ? new float[RowTile * inputs] : null;

        // Decoded rows are decoded once: all tokens pass them in one block.
        int tokenBlock = decode ? tokenCount : TokenBlock;
        for (int blockStart = 0; blockStart < tokenCount; blockStart += tokenBlock)
        {
            int blockEnd = Math.Min(tokenCount, blockStart + tokenBlock);
            for (int o = start; o < end; o += RowTile)
            {
                int rows = Math.Min(RowTile, end - o);
                fixed (float* decodedPointer = decoded)
                fixed (byte* stored = RowData(o))
                {
                    float* w = (float*)stored;
                    if (decoded is not null)
                    {
                        for (int r = 0; r < rows; r++)
                        {
                            WeightRows.Decode(Type, RowData(o + r), decoded.AsSpan(r * inputs, inputs));
                        }

                        w = decodedPointer;
                    }

                    // F32 rows are consecutive in the file, so a tile reads them in place.
                    for (int t = blockStart; t < blockEnd; t += TokenTile)
                    {
                        int tokens = Math.Min(TokenTile, blockEnd - t);
                        FusedDotProduct.Tile(w, inputs, rows, x + (long)t * inputs, inputs, tokens, inputs, y + (long)t * outputs + o, outputs);
                    }
                }
            }
        }
    }

    /// <summary>
    /// The float route for a batch: rows and tokens two by two (<see cref="DotProduct.Compute2x2"/>, same bits as one
    /// dot per pair), tokens in blocks that stay in cache while the rows stream past.
    /// </summary>
    private void MultiplyFloatBlocked(ReadOnlySpan<float> x, int tokenCount, Span<float> y, int start, int end)
    {
        const int TokenBlock = 32;
        int inputs = Inputs;
        int outputs = Outputs;
        bool decode = Type != GgmlType.F32;
        var scratch = decode ? new float[2 * inputs] : null;

        // Decoded rows are decoded once: all tokens pass them in one block.
        int tokenBlock = decode ? tokenCount : TokenBlock;
        for (int blockStart = 0; blockStart < tokenCount; blockStart += tokenBlock)
        {
            int blockEnd = Math.Min(tokenCount, blockStart + tokenBlock);
            for (int o = start; o < end; o += 2)
            {
                bool pair = o + 1 < end;
                ReadOnlySpan<float> w0, w1;
                if (decode)
                {
                    WeightRows.Decode(Type, RowData(o), scratch.AsSpan(0, inputs));
                    if (pair)
                    {
                        WeightRows.Decode(Type, RowData(o + 1), scratch.AsSpan(inputs, inputs));
                    }

                    w0 = scratch.AsSpan(0, inputs);
                    w1 = scratch.AsSpan(inputs, inputs);
                }
                else
                {
                    w0 = MemoryMarshal.Cast<byte, float>(RowData(o));
                    w1 = pair ? MemoryMarshal.Cast<byte, float>(RowData(o + 1)) : w0;
                }

                int t = blockStart;
                for (; t + 1 < blockEnd; t += 2)
                {
                    DotProduct.Compute2x2(w0, w1, x.Slice(t * inputs, inputs), x.Slice((t + 1) * inputs, inputs), out float r00, out float r01, out float r10, out float r11);
                    y[t * outputs + o] = r00;
                    y[(t + 1) * outputs + o] = r01;
                    if (pair)
                    {
                        y[t * outputs + o + 1] = r10;
                        y[(t + 1) * outputs + o + 1] = r11;
                    }
                }

                for (; t < blockEnd; t++)
                {
                    y[t * outputs + o] = DotProduct.Compute(w0, x.Slice(t * inputs, inputs));
                    if (pair)
                    {
                        y[t * outputs + o + 1] = DotProduct.Compute(w1, x.Slice(t * inputs, inputs));
                    }
                }
            }
        }
    }

    /// <summary>True when <see cref="Pack"/> applies: quantized weights with a llama.cpp integer dot (not F32, F16, BF16).</summary>
    public bool TakesPackedActivations =>
        WeightRows.ActivationType(Type) is not null && !WeightRows.HasExactFloatProducts(Type);

    /// <summary>
    /// Converts <paramref name="tokenCount"/> input rows once for this weight's type, so several weights of the same
    /// type and width (an FFN's gate and up projections) can share the conversion.
    /// </summary>
    /// <exception cref="InvalidOperationException">The weight does not take packed activations.</exception>
    public PackedActivations Pack(ReadOnlySpan<float> input, int tokenCount)
    {
        if (!TakesPackedActivations)
        {
            throw new InvalidOperationException($"'{Tensor.Name}' ({GgmlTypes.Get(Type).Name}) multiplies float activations.");
        }

        return MatrixProduct.Pack(Type, input, tokenCount, Inputs);
    }

    /// <summary>
    /// <see cref="Multiply(ReadOnlySpan{float}, int, Span{float}, Parallelism)"/> with activations converted by
    /// <see cref="Pack"/>: each output is llama.cpp's dot of one weight row with one token, bit for bit.
    /// </summary>
    public void Multiply(PackedActivations activations, Span<float> output, Parallelism parallelism)
    {
        ArgumentNullException.ThrowIfNull(activations);
        int tokenCount = activations.TokenCount;
        if (activations.Elements != Inputs || output.Length < tokenCount * Outputs)
        {
            throw new ArgumentException($"Multiply by '{Tensor.Name}': activations or output do not fit {tokenCount} tokens.");
        }

        if (tokenCount == 0 || Outputs == 0)
        {
            return;
        }

        int outputs = Outputs;
        unsafe
        {
            fixed (float* outputPointer = output)
            {
                nint outAddress = (nint)outputPointer;
                parallelism.For(outputs, (long)Inputs * tokenCount, (start, end) =>
                    MultiplyRows(null, activations, tokenCount, (float*)outAddress, start, end));
            }
        }
    }

    private ReadOnlySpan<byte> RowData(int row) => _file.GetTensorData(Tensor, _byteOffset + (long)row * RowBytes, RowBytes);
}
