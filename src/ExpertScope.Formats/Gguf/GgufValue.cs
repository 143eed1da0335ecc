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

    /// <summary>A <see cref="GgufValueType.UInt8"/> value.</summary>
    public static GgufValue Create(byte value) => new(GgufValueType.UInt8, value);

    /// <summary>An <see cref="GgufValueType.Int8"/> value.</summary>
    public static GgufValue Create(sbyte value) => new(GgufValueType.Int8, value);

    /// <summary>A <see cref="GgufValueType.UInt16"/> value.</summary>
    public static GgufValue Create(ushort value) => new(GgufValueType.UInt16, value);

    /// <summary>An <see cref="GgufValueType.Int16"/> value.</summary>
    public static GgufValue Create(short value) => new(GgufValueType.Int16, value);

    /// <summary>A <see cref="GgufValueType.UInt32"/> value.</summary>
    public static GgufValue Create(uint value) => new(GgufValueType.UInt32, value);

    /// <summary>An <see cref="GgufValueType.Int32"/> value.</summary>
    public static GgufValue Create(int value) => new(GgufValueType.Int32, value);

    /// <summary>A <see cref="GgufValueType.Float32"/> value.</summary>
    public static GgufValue Create(float value) => new(GgufValueType.Float32, value);

    /// <summary>A <see cref="GgufValueType.Bool"/> value.</summary>
    public static GgufValue Create(bool value) => new(GgufValueType.Bool, value);

    /// <summary>A <see cref="GgufValueType.String"/> value.</summary>
    public static GgufValue Create(string value) => new(GgufValueType.String, value ?? throw new ArgumentNullException(nameof(value)));

    /// <summary>A <see cref="GgufValueType.UInt64"/> value.</summary>
    public static GgufValue Create(ulong value) => new(GgufValueType.UInt64, value);

    /// <summary>An <see cref="GgufValueType.Int64"/> value.</summary>
    public static GgufValue Create(long value) => new(GgufValueType.Int64, value);

    /// <summary>A <see cref="GgufValueType.Float64"/> value.</summary>
    public static GgufValue Create(double value) => new(GgufValueType.Float64, value);

    /// <summary>An <see cref="GgufValueType.Array"/> value.</summary>
    public static GgufValue Create(GgufArray value) => new(GgufValueType.Array, value ?? throw new ArgumentNullException(nameof(value)));

    /// <summary>An array value of <typeparamref name="T"/> items (see <see cref="GgufArray.Create{T}(T[])"/>).</summary>
    public static GgufValue CreateArray<T>(params T[] items) => Create(GgufArray.Create(items));

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

    /// <summary>
    /// An array whose element type follows from <typeparamref name="T"/>: <c>byte</c>, <c>sbyte</c>, <c>ushort</c>,
    /// <c>short</c>, <c>uint</c>, <c>int</c>, <c>float</c>, <c>bool</c>, <c>string</c>, <c>ulong</c>, <c>long</c>,
    /// <c>double</c>, or <see cref="GgufArray"/> for nested arrays.
    /// </summary>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> is none of those.</exception>
    public static GgufArray Create<T>(T[] items)
    {
        ArgumentNullException.ThrowIfNull(items);
        return new GgufArray(ElementTypeOf(typeof(T)) ?? throw new ArgumentException($"{typeof(T).Name} is not a GGUF array element type.", nameof(items)), items);
    }

    /// <summary>The GGUF type stored for CLR items of type <paramref name="clrType"/>, or null when there is none.</summary>
    internal static GgufValueType? ElementTypeOf(Type clrType) => clrType switch
    {
        _ when clrType == typeof(byte) => GgufValueType.UInt8,
        _ when clrType == typeof(sbyte) => GgufValueType.Int8,
        _ when clrType == typeof(ushort) => GgufValueType.UInt16,
        _ when clrType == typeof(short) => GgufValueType.Int16,
        _ when clrType == typeof(uint) => GgufValueType.UInt32,
        _ when clrType == typeof(int) => GgufValueType.Int32,
        _ when clrType == typeof(float) => GgufValueType.Float32,
        _ when clrType == typeof(bool) => GgufValueType.Bool,
        _ when clrType == typeof(string) => GgufValueType.String,
        _ when clrType == typeof(ulong) => GgufValueType.UInt64,
        _ when clrType == typeof(long) => GgufValueType.Int64,
        _ when clrType == typeof(double) => GgufValueType.Float64,
        _ when clrType == typeof(GgufArray) => GgufValueType.Array,
        _ => null,
    };

    /// <inheritdoc/>
    public override string ToString() => $"[{ElementType} x {Count}]";
}
