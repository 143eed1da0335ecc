using System.Runtime.InteropServices;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;

namespace ExpertScope.Models.Blocks;

/// <summary>
/// A linear layer's weight matrix <c>[outputs, inputs]</c> (GGUF <c>ne = {inputs, outputs}</c>), or one expert's
/// slice of a stacked expert tensor, viewed in place in the memory-mapped file (never copied).
/// </summary>
public sealed class LinearWeight
{
    private readonly GgufFile _file;
    private readonly long _byteOffset;

    internal LinearWeight(GgufFile file, GgufTensorInfo tensor, int inputs, int outputs, long byteOffset)
    {
        _file = file;
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

        var activationType = WeightRows.ActivationType(Type);
        int inputs = Inputs;
        int outputs = Outputs;

        // As llama.cpp: activations are converted once per call to the weight type's activation type (Q8_0, Q8_K,
        // F16, ...), then every weight row is dotted with every converted row using ggml's kernels. F16/BF16 take a
        // float route with the same bits: activations rounded to the type, rows decoded, the float dot.
        byte[]? converted = null;
        int convertedBytes = 0;
        float[]? rounded = null;
        Kernels.QuantizedDotKernel? quantizedDot = null;
        if (activationType is not null)
        {
            convertedBytes = WeightRows.ActivationBytes(Type, inputs);
            var bytes = new byte[convertedBytes * tokenCount];
            for (int t = 0; t < tokenCount; t++)
            {
                WeightRows.QuantizeActivations(Type, input.Slice(t * inputs, inputs), bytes.AsSpan(t * convertedBytes, convertedBytes));
            }

            if (WeightRows.HasExactFloatProducts(Type))
            {
                rounded = new float[tokenCount * inputs];
                for (int t = 0; t < tokenCount; t++)
                {
                    WeightRows.Decode(Type, bytes.AsSpan(t * convertedBytes, convertedBytes), rounded.AsSpan(t * inputs, inputs));
                }

                input = rounded;
            }
            else
            {
                converted = bytes;

                // One validated call checks the row and activation lengths; the loop then calls the kernel directly.
                WeightRows.QuantizedDot(Type, RowData(0), bytes.AsSpan(0, convertedBytes));
                quantizedDot = WeightRows.QuantizedDotKernel(Type);
            }
        }

        // Spans cannot enter the lambda: it reads through pointers whose targets outlive the synchronous loop.
        unsafe
        {
            fixed (float* inputPointer = input)
            fixed (float* outputPointer = output)
            {
                nint inAddress = (nint)inputPointer;
                nint outAddress = (nint)outputPointer;
                parallelism.For(outputs, (long)inputs * tokenCount, (start, end) =>
                {
                    var x = new ReadOnlySpan<float>((float*)inAddress, tokenCount * inputs);
                    var y = new Span<float>((float*)outAddress, tokenCount * outputs);
                    float[]? scratch = Type == GgmlType.F32 || converted is not null ? null : new float[inputs];
                    for (int o = start; o < end; o++)
                    {
                        var row = RowData(o);
                        if (converted is not null)
                        {
                            for (int t = 0; t < tokenCount; t++)
                            {
                                y[t * outputs + o] = quantizedDot!(row, converted.AsSpan(t * convertedBytes, convertedBytes));
                            }

                            continue;
                        }

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

                        for (int t = 0; t < tokenCount; t++)
                        {
                            y[t * outputs + o] = DotProduct.Compute(weights, x.Slice(t * inputs, inputs));
                        }
                    }
                });
            }
        }
    }

    private ReadOnlySpan<byte> RowData(int row) => _file.GetTensorData(Tensor, _byteOffset + (long)row * RowBytes, RowBytes);
}
