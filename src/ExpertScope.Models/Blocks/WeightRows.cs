using System.Runtime.InteropServices;
using ExpertScope.Core;

namespace ExpertScope.Models.Blocks;

/// <summary>
/// The one seam between the engine and the storage formats: turns one stored row of a weight tensor into float32.
/// Everything type-specific in the Models project goes through here.
/// </summary>
internal static class WeightRows
{
    /// <summary>True when rows of <paramref name="type"/> can be decoded.</summary>
    public static bool IsSupported(GgmlType type) => type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16;

    /// <summary>
    /// The row as float32 without copying when the storage already is float32; otherwise decodes it into
    /// <paramref name="scratch"/> and returns that.
    /// </summary>
    /// <param name="type">Storage type of the tensor.</param>
    /// <param name="row">The row's bytes.</param>
    /// <param name="scratch">Buffer of at least the row's element count.</param>
    public static ReadOnlySpan<float> Read(GgmlType type, ReadOnlySpan<byte> row, Span<float> scratch)
    {
        if (type == GgmlType.F32)
        {
            return MemoryMarshal.Cast<byte, float>(row);
        }

        Decode(type, row, scratch);
        return scratch;
    }

    /// <summary>Decodes one row into <paramref name="destination"/> (its length is the row's element count).</summary>
    /// <exception cref="ExpertScopeException">The type is not supported.</exception>
    public static void Decode(GgmlType type, ReadOnlySpan<byte> row, Span<float> destination)
    {
        switch (type)
        {
            case GgmlType.F32:
                MemoryMarshal.Cast<byte, float>(row)[..destination.Length].CopyTo(destination);
                break;
            case GgmlType.F16:
            {
                var halves = MemoryMarshal.Cast<byte, Half>(row);
                for (int i = 0; i < destination.Length; i++)
                {
                    destination[i] = (float)halves[i];
                }

                break;
            }

            case GgmlType.BF16:
            {
                var raw = MemoryMarshal.Cast<byte, ushort>(row);
                for (int i = 0; i < destination.Length; i++)
                {
                    destination[i] = BitConverter.Int32BitsToSingle(raw[i] << 16);
                }

                break;
            }

            default:
                throw new ExpertScopeException($"weights of type {GgmlTypes.Get(type).Name} are not supported yet.");
        }
    }
}
