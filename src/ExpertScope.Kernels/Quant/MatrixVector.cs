using ExpertScope.Core;

namespace ExpertScope.Kernels.Quant;

/// <summary>
/// Matrix times vector for a weight matrix stored row-major in one ggml type (a GGUF linear layer <c>ne = {in, out}</c>
/// is <c>out</c> rows of <c>in</c> elements): one <see cref="VecDot"/> per row, validated once.
/// </summary>
public static class MatrixVector
{
    /// <summary>
    /// llama.cpp's product: <c>destination[r] = VecDot.Quantized(type, row r, activations)</c>, bit for bit what
    /// llama.cpp's CPU <c>mul_mat</c> computes for each output.
    /// </summary>
    /// <param name="weightType">Storage type of the matrix.</param>
    /// <param name="weights">The matrix: <c>destination.Length</c> rows of whole blocks.</param>
    /// <param name="activations">The input vector, converted by <see cref="VecDot.QuantizeActivations"/>.</param>
    /// <param name="destination">One output per row.</param>
    /// <exception cref="ArgumentException">No llama.cpp dot exists for the type, or the lengths do not match.</exception>
    public static void Quantized(GgmlType weightType, ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations, Span<float> destination)
    {
        int rowBytes = RowBytes(weights.Length, destination.Length);
        if (destination.IsEmpty)
        {
            return;
        }

        var kernel = VecDot.ValidateQuantized(weightType, weights.Slice(0, rowBytes), activations);
        var dot = kernel.Dot!;
        for (int r = 0; r < destination.Length; r++)
        {
            destination[r] = dot(weights.Slice(r * rowBytes, rowBytes), activations);
        }
    }

    /// <summary>Float product: <c>destination[r] = VecDot.Float(type, row r, activations)</c>.</summary>
    /// <param name="weightType">Storage type of the matrix.</param>
    /// <param name="weights">The matrix: <c>destination.Length</c> rows of <c>activations.Length</c> elements.</param>
    /// <param name="activations">The input vector.</param>
    /// <param name="destination">One output per row.</param>
    /// <exception cref="ArgumentException">The type has no dequantizer, or the lengths do not match.</exception>
    public static void Float(GgmlType weightType, ReadOnlySpan<byte> weights, ReadOnlySpan<float> activations, Span<float> destination)
    {
        int rowBytes = RowBytes(weights.Length, destination.Length);
        if (destination.IsEmpty)
        {
            return;
        }

        var kernel = TypeKernels.Get(weightType);
        Dequantize.Validate(kernel.Info, rowBytes, activations.Length, nameof(weights), nameof(activations));
        for (int r = 0; r < destination.Length; r++)
        {
            destination[r] = VecDot.FloatUnchecked(kernel, weights.Slice(r * rowBytes, rowBytes), activations);
        }
    }

    private static int RowBytes(int weightBytes, int rows)
    {
        if (rows == 0)
        {
            return weightBytes == 0 ? 0 : throw new ArgumentException("Weights were given for zero output rows.", "weights");
        }

        return weightBytes % rows == 0
            ? weightBytes / rows
            : throw new ArgumentException($"{weightBytes} weight bytes do not split into {rows} equal rows.", "weights");
    }
}
