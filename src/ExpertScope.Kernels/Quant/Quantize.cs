using ExpertScope.Core;

namespace ExpertScope.Kernels.Quant;

/// <summary>Converts float32 rows to a ggml storage type with ggml's reference quantizers (bit for bit).</summary>
public static class Quantize
{
    /// <summary>True when <paramref name="type"/> has a quantizer here.</summary>
    public static bool IsSupported(GgmlType type) =>
        TypeKernels.TryGet(type, out var kernel) && kernel.Quantize is not null;

    /// <summary>
    /// Quantizes whole blocks as ggml's <c>quantize_row_*_ref</c> does (no importance matrix), so the bytes equal
    /// what <c>ggml_quantize_chunk</c> writes without one.
    /// </summary>
    /// <param name="type">Target type.</param>
    /// <param name="source">Elements; the length must be a multiple of the block size.</param>
    /// <param name="destination">Receives exactly <c>source.Length / blockSize * typeSize</c> bytes.</param>
    /// <exception cref="ArgumentException">The type has no quantizer, or the lengths do not match.</exception>
    public static void Row(GgmlType type, ReadOnlySpan<float> source, Span<byte> destination)
    {
        var kernel = TypeKernels.Get(type);
        if (kernel.Quantize is null)
        {
            throw new ArgumentException($"There is no quantizer for {kernel.Info.Name}.", nameof(type));
        }

        Dequantize.Validate(kernel.Info, destination.Length, source.Length, nameof(destination), nameof(source));
        kernel.Quantize(source, destination);
    }

    /// <summary>Bytes that <paramref name="elementCount"/> elements of <paramref name="type"/> take.</summary>
    /// <exception cref="ArgumentException">The count is not a whole number of blocks.</exception>
    public static int RowBytes(GgmlType type, int elementCount)
    {
        var info = GgmlTypes.Get(type);
        long bytes = info.RowBytes(elementCount);
        return bytes >= 0
            ? checked((int)bytes)
            : throw new ArgumentException($"{elementCount} elements are not a whole number of {info.Name} blocks ({info.BlockSize}).", nameof(elementCount));
    }
}
