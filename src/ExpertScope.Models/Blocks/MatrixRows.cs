using ExpertScope.Formats.Gguf;

namespace ExpertScope.Models.Blocks;

/// <summary>
/// A row-major weight matrix [Rows, Columns] that MLA multiplies row by row (its per-head weights are used as
/// slices of rows, which a plain matrix-times-activations call cannot express).
/// </summary>
public abstract class MatrixRows
{
    /// <summary>Output rows.</summary>
    public abstract int Rows { get; }

    /// <summary>Input length of every row.</summary>
    public abstract int Columns { get; }

    /// <summary>
    /// The dot product of row <paramref name="row"/> with <paramref name="input"/> (length <see cref="Columns"/>):
    /// float products summed in double, as ggml's generic <c>vec_dot_f32</c> does (bit-identical to the oracle).
    /// </summary>
    public abstract float Dot(int row, ReadOnlySpan<float> input);

    /// <summary>output[t, r] = Σ_c W[r, c] · input[t, c] for <paramref name="count"/> input rows.</summary>
    public void Multiply(ReadOnlySpan<float> input, int count, Span<float> output)
    {
        for (var t = 0; t < count; t++)
        {
            var x = input.Slice(t * Columns, Columns);
            var y = output.Slice(t * Rows, Rows);
            for (var r = 0; r < Rows; r++)
            {
                y[r] = Dot(r, x);
            }
        }
    }
}

/// <summary>A float32 GGUF tensor viewed as <see cref="MatrixRows"/>; the data stays memory-mapped.</summary>
public sealed class GgufFloat32Rows : MatrixRows
{
    private readonly GgufFile _file;
    private readonly GgufTensorInfo _tensor;

    /// <summary>Views <paramref name="tensor"/> of <paramref name="file"/> as [RowCount, RowLength].</summary>
    public GgufFloat32Rows(GgufFile file, GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(tensor);
        _file = file;
        _tensor = tensor;
        _ = file.GetFloat32(tensor);
    }

    /// <inheritdoc/>
    public override int Rows => (int)_tensor.RowCount;

    /// <inheritdoc/>
    public override int Columns => (int)_tensor.RowLength;

    /// <inheritdoc/>
    public override float Dot(int row, ReadOnlySpan<float> input)
    {
        var w = _file.GetFloat32(_tensor).Slice(row * Columns, Columns);
        double sum = 0;
        for (var i = 0; i < w.Length; i++)
        {
            sum += w[i] * input[i];
        }

        return (float)sum;
    }
}

/// <summary>An in-memory row-major matrix (tests, and weights rearranged at load).</summary>
public sealed class ArrayRows : MatrixRows
{
    private readonly float[] _data;

    /// <summary>Wraps <paramref name="data"/> as [<paramref name="rows"/>, <paramref name="columns"/>].</summary>
    public ArrayRows(float[] data, int rows, int columns)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfNotEqual(data.Length, rows * columns, nameof(data));
        _data = data;
        Rows = rows;
        Columns = columns;
    }

    /// <inheritdoc/>
    public override int Rows { get; }

    /// <inheritdoc/>
    public override int Columns { get; }

    /// <inheritdoc/>
    public override float Dot(int row, ReadOnlySpan<float> input)
    {
        var w = _data.AsSpan(row * Columns, Columns);
        double sum = 0;
        for (var i = 0; i < w.Length; i++)
        {
            sum += w[i] * input[i];
        }

        return (float)sum;
    }
}
