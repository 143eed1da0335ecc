using ExpertScope.Core;

namespace ExpertScope.Formats.Gguf;

/// <summary>
/// One tensor's description from the GGUF header.
/// </summary>
/// <param name="Name">The tensor name (<c>blk.0.ffn_gate_exps.weight</c>).</param>
/// <param name="Dimensions">ggml's <c>ne[]</c>: the fastest-varying dimension first. A linear layer from
/// <c>in</c> to <c>out</c> is <c>{in, out}</c>, i.e. row-major <c>[out, in]</c>.</param>
/// <param name="Type">Element type.</param>
/// <param name="RelativeOffset">Offset of the data from the start of the file's tensor data section.</param>
/// <param name="ByteSize">Bytes of data (rows times row size).</param>
/// <param name="FileOffset">Absolute offset of the data in the file.</param>
public sealed record GgufTensorInfo(
    string Name,
    long[] Dimensions,
    GgmlType Type,
    long RelativeOffset,
    long ByteSize,
    long FileOffset)
{
    /// <summary>Total number of elements.</summary>
    public long ElementCount
    {
        get
        {
            long count = 1;
            foreach (var d in Dimensions)
            {
                count *= d;
            }

            return count;
        }
    }

    /// <summary>Number of elements in one row (<c>ne[0]</c>).</summary>
    public long RowLength => Dimensions.Length > 0 ? Dimensions[0] : 1;

    /// <summary>Number of rows (product of every dimension but the first).</summary>
    public long RowCount
    {
        get
        {
            // The product of the outer dimensions, not ElementCount / ne[0], so that an empty row (ne[0] = 0) is no division by zero.
            long rows = 1;
            for (int i = 1; i < Dimensions.Length; i++)
            {
                rows *= Dimensions[i];
            }

            return rows;
        }
    }

    /// <summary>Bytes in one row.</summary>
    public long RowBytes => GgmlTypes.Get(Type).RowBytes(RowLength);

    /// <summary>Dimension <paramref name="index"/> of <c>ne[]</c>, or 1 past the stored rank.</summary>
    public long Dimension(int index) => index < Dimensions.Length ? Dimensions[index] : 1;

    /// <summary>The shape as C# indexes it (row-major, <c>ne</c> reversed), e.g. <c>[64, 508]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Dimensions.Reverse()) + "]";
}
