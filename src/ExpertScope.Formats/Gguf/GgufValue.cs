using System.Globalization;

namespace ExpertScope.Formats.Gguf;

/// <summary>The metadata value types of the GGUF format (<c>gguf_type</c>).</summary>
public enum GgufValueType : uint
{
    /// <summary>uint8.</summary>
    UInt8 = 0,
    /// <summary>int8.</summary>
    Int8 = 1,
    /// <summary>uint16.</summary>
    UInt16 = 2,
    /// <summary>int16.</summary>
    Int16 = 3,
    /// <summary>uint32.</summary>
    UInt32 = 4,
    /// <summary>int32.</summary>
    Int32 = 5,
    /// <summary>float32.</summary>
    Float32 = 6,
    /// <summary>bool stored as one byte, 0 or 1.</summary>
    Bool = 7,
    /// <summary>uint64 length then UTF-8 bytes.</summary>
    String = 8,
    /// <summary>element type, uint64 count, elements (arrays may nest).</summary>
    Array = 9,
    /// <summary>uint64.</summary>
    UInt64 = 10,
    /// <summary>int64.</summary>
    Int64 = 11,
    /// <summary>float64.</summary>
    Float64 = 12,
}

/// <summary>
/// One metadata value. Scalars are held boxed in <see cref="Value"/>; arrays are a <see cref="GgufArray"/>.
/// </summary>
/// <param name="Type">The stored type.</param>
/// <param name="Value">The value: a CLR scalar of the matching type, a string, or a <see cref="GgufArray"/>.</param>
public sealed record GgufValue(GgufValueType Type, object Value)
{
    /// <summary>The value as an array, or null when it is a scalar.</summary>
    public GgufArray? AsArray => Value as GgufArray;

    /// <summary>Converts any integer type to long; throws for other types.</summary>
    public long ToInt64() => Type switch
    {
        GgufValueType.UInt8 => (byte)Value,
        GgufValueType.Int8 => (sbyte)Value,
        GgufValueType.UInt16 => (ushort)Value,
        GgufValueType.Int16 => (short)Value,
        GgufValueType.UInt32 => (uint)Value,
        GgufValueType.Int32 => (int)Value,
        GgufValueType.UInt64 => checked((long)(ulong)Value),
        GgufValueType.Int64 => (long)Value,
        GgufValueType.Bool => (bool)Value ? 1 : 0,
        _ => throw new InvalidCastException($"GGUF value of type {Type} is not an integer."),
    };

    /// <summary>Converts any numeric type to double; throws for strings and arrays.</summary>
    public double ToDouble() => Type switch
    {
        GgufValueType.Float32 => (float)Value,
        GgufValueType.Float64 => (double)Value,
        _ => ToInt64(),
    };

    /// <inheritdoc/>
    public override string ToString() => Value switch
    {
        string s => s,
        GgufArray a => a.ToString(),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => Value.ToString() ?? string.Empty,
    };
}

/// <summary>
/// A metadata array. <see cref="Items"/> is a typed CLR array (<c>float[]</c>, <c>int[]</c>, <c>string[]</c>, …)
/// for scalar elements, or <c>GgufArray[]</c> for nested arrays.
/// </summary>
/// <param name="ElementType">The type of every element.</param>
/// <param name="Items">The elements.</param>
public sealed record GgufArray(GgufValueType ElementType, Array Items)
{
    /// <summary>Number of elements.</summary>
    public int Count => Items.Length;

    /// <inheritdoc/>
    public override string ToString() => $"[{ElementType} x {Count}]";
}
