using ExpertScope.Core;

namespace ExpertScope.Kernels.Quant;

/// <summary>Converts rows stored in any ggml type to float32, exactly as ggml's <c>to_float</c> does.</summary>
public static class Dequantize
{
    /// <summary>
    /// Dequantizes one run of whole blocks with the fastest kernel for <paramref name="type"/> (SIMD where
    /// <see cref="TypeKernels"/> lists one; every fast kernel returns the reference's floats bit for bit).
    /// Effectively computes <c>destination[i] = value of element i of source</c>.
    /// </summary>
    /// <param name="type">Storage type of <paramref name="source"/>.</param>
    /// <param name="source">Whole blocks: <c>destination.Length / blockSize * typeSize</c> bytes.</param>
    /// <param name="destination">Receives the elements; its length must be a multiple of the block size.</param>
    /// <exception cref="ArgumentException">The type has no dequantizer, or the lengths do not match.</exception>
    public static void Row(GgmlType type, ReadOnlySpan<byte> source, Span<float> destination)
    {
        var kernel = TypeKernels.Get(type);
        Validate(kernel.Info, source.Length, destination.Length, nameof(source), nameof(destination));
        kernel.Dequantize(source, destination);
    }

    /// <summary>Same as <see cref="Row"/> with the scalar reference kernel, a line-by-line port of ggml's.</summary>
    /// <inheritdoc cref="Row" path="/param"/>
    /// <exception cref="ArgumentException">The type has no dequantizer, or the lengths do not match.</exception>
    public static void RowReference(GgmlType type, ReadOnlySpan<byte> source, Span<float> destination)
    {
        var kernel = TypeKernels.Get(type);
        Validate(kernel.Info, source.Length, destination.Length, nameof(source), nameof(destination));
        kernel.DequantizeReference(source, destination);
    }

    internal static void Validate(GgmlTypeInfo info, int byteCount, int elementCount, string bytesName, string elementsName)
    {
        if (elementCount % info.BlockSize != 0)
        {
            throw new ArgumentException(
                $"{elementCount} elements are not a whole number of {info.Name} blocks ({info.BlockSize} elements each).",
                elementsName);
        }

        long expected = (long)elementCount / info.BlockSize * info.TypeSize;
        if (byteCount != expected)
        {
            throw new ArgumentException(
                $"{elementCount} {info.Name} elements take {expected} bytes, but {bytesName} has {byteCount}.", bytesName);
        }
    }
}
