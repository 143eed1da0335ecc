using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text;
using ExpertScope.Core;

namespace ExpertScope.Formats.Gguf;

/// <summary>
/// A GGUF file (versions 2 and 3) opened read-only and memory-mapped. The header, metadata and tensor
/// infos are parsed and validated eagerly; tensor data is never copied: <see cref="GetTensorData(GgufTensorInfo)"/>
/// returns views into the mapping.
/// </summary>
/// <remarks>
/// Every count, length, dimension product and extent read from the file is checked against the file's size
/// with overflow-safe arithmetic before anything is allocated, so a hostile file raises
/// <see cref="GgufFormatException"/> and never an out-of-memory, a hang, or another exception.
/// </remarks>
public sealed unsafe class GgufFile : IDisposable
{
    /// <summary>"GGUF" read as a little-endian uint32.</summary>
    public const uint Magic = 0x46554747;

    /// <summary>ggml's default tensor data alignment when <c>general.alignment</c> is absent.</summary>
    public const int DefaultAlignment = 32;

    /// <summary>ggml's <c>GGML_MAX_DIMS</c>.</summary>
    public const int MaxDimensions = 4;

    private const int MaxArrayNesting = 8;

    private const int InitialCapacity = 1024;

    private readonly MemoryMappedFile? _mapping;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;
    private readonly Dictionary<string, int> _tensorIndex;
    private bool _pointerAcquired;
    private bool _disposed;

    private GgufFile(string path, long length, MemoryMappedFile mapping, MemoryMappedViewAccessor view, byte* basePointer)
    {
        FilePath = path;
        Length = length;
        _mapping = mapping;
        _view = view;
        _base = basePointer;
        _pointerAcquired = true;
        var reader = new HeaderReader(path, basePointer, length);
        (Version, Metadata, Tensors, _tensorIndex, Alignment, DataOffset) = reader.ReadAll();
    }

    /// <summary>The file's path as given to <see cref="Open"/>.</summary>
    public string FilePath { get; }

    /// <summary>The file's size in bytes.</summary>
    public long Length { get; }

    /// <summary>Format version (2 or 3).</summary>
    public uint Version { get; }

    /// <summary>Metadata in file order.</summary>
    public IReadOnlyDictionary<string, GgufValue> Metadata { get; }

    /// <summary>Tensor infos in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary>Alignment of the tensor data (<c>general.alignment</c>, default 32).</summary>
    public int Alignment { get; }

    /// <summary>Absolute offset of the tensor data section.</summary>
    public long DataOffset { get; }

    /// <summary>The <c>general.architecture</c> value, or null.</summary>
    public string? Architecture => TryGetString("general.architecture");

    /// <summary>Opens, maps and validates a GGUF file.</summary>
    /// <exception cref="GgufFormatException">The file is not a valid GGUF file.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static GgufFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var info = new FileInfo(path);
        if (Directory.Exists(path))
        {
            throw new ExpertScopeException($"{path}: is a directory, not a GGUF file.");
        }

        if (!info.Exists)
        {
            throw new FileNotFoundException($"{path}: file not found.", path);
        }

        long length = info.Length;
        if (length < 24)
        {
            // Also avoids mapping an empty file, which the OS refuses.
            throw new GgufFormatException(path, 0, $"file is {length} bytes, too short for a GGUF header (24 bytes)");
        }

        var mapping = MemoryMappedFile.CreateFromFile(path, FileMode.Open, mapName: null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        byte* pointer = null;
        try
        {
            view = mapping.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            pointer += view.PointerOffset;
            return new GgufFile(path, length, mapping, view, pointer);
        }
        catch
        {
            if (pointer != null)
            {
                view!.SafeMemoryMappedViewHandle.ReleasePointer();
            }

            view?.Dispose();
            mapping.Dispose();
            throw;
        }
    }

    /// <summary>The tensor called <paramref name="name"/>, or null.</summary>
    public GgufTensorInfo? FindTensor(string name) => _tensorIndex.TryGetValue(name, out int index) ? Tensors[index] : null;

    /// <summary>The tensor called <paramref name="name"/>.</summary>
    /// <exception cref="ExpertScopeException">No such tensor; the message names the file.</exception>
    public GgufTensorInfo GetTensor(string name) =>
        FindTensor(name) ?? throw new ExpertScopeException($"{FilePath}: tensor '{name}' is missing.");

    /// <summary>A read-only view of a tensor's bytes. Valid until the file is disposed.</summary>
    /// <exception cref="ExpertScopeException">The tensor is 2 GiB or larger; use <see cref="GetTensorData(GgufTensorInfo, long, int)"/>.</exception>
    public ReadOnlySpan<byte> GetTensorData(GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.ByteSize > int.MaxValue)
        {
            throw new ExpertScopeException($"{FilePath}: tensor '{tensor.Name}' is {tensor.ByteSize} bytes; read it in slices.");
        }

        return GetTensorData(tensor, 0, (int)tensor.ByteSize);
    }

    /// <summary>A read-only view of <paramref name="length"/> bytes at <paramref name="start"/> within a tensor's data.</summary>
    public ReadOnlySpan<byte> GetTensorData(GgufTensorInfo tensor, long start, int length)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (start < 0 || length < 0 || start > tensor.ByteSize - length)
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"Slice [{start}, +{length}) is outside tensor '{tensor.Name}' ({tensor.ByteSize} bytes).");
        }

        // Bounds were validated against the file length when the header was read.
        return new ReadOnlySpan<byte>(_base + tensor.FileOffset + start, length);
    }

    /// <summary>The address of a tensor's first byte, for kernels that stream more than 2 GiB. Valid until disposal.</summary>
    public nint GetTensorAddress(GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return (nint)(_base + tensor.FileOffset);
    }

    /// <summary>A float32 tensor's elements as a zero-copy view.</summary>
    /// <exception cref="ExpertScopeException">The tensor is not F32.</exception>
    public ReadOnlySpan<float> GetFloat32(GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.Type != GgmlType.F32)
        {
            throw new ExpertScopeException($"{FilePath}: tensor '{tensor.Name}' is {GgmlTypes.Get(tensor.Type).Name}, expected f32.");
        }

        return MemoryMarshal.Cast<byte, float>(GetTensorData(tensor));
    }

    /// <summary>The metadata value for <paramref name="key"/>, or null.</summary>
    public GgufValue? TryGet(string key) => Metadata.GetValueOrDefault(key);

    /// <summary>A string value, or null when absent or not a string.</summary>
    public string? TryGetString(string key) => TryGet(key)?.Value as string;

    /// <summary>An integer value (any integer type), or null when absent.</summary>
    /// <exception cref="ExpertScopeException">The key holds a non-integer value.</exception>
    public long? TryGetInteger(string key)
    {
        var value = TryGet(key);
        if (value is null)
        {
            return null;
        }

        return value.Type switch
        {
            GgufValueType.String or GgufValueType.Array or GgufValueType.Float32 or GgufValueType.Float64 =>
                throw new ExpertScopeException($"{FilePath}: metadata '{key}' is {value.Type}, expected an integer."),
            GgufValueType.UInt64 when (ulong)value.Value > long.MaxValue =>
                throw new ExpertScopeException($"{FilePath}: metadata '{key}' is {value.Value}, too large."),
            _ => value.ToInt64(),
        };
    }

    /// <summary>A numeric value as double, or null when absent.</summary>
    public double? TryGetNumber(string key)
    {
        var value = TryGet(key);
        if (value is null)
        {
            return null;
        }

        return value.Type switch
        {
            GgufValueType.String or GgufValueType.Array => throw new ExpertScopeException($"{FilePath}: metadata '{key}' is {value.Type}, expected a number."),
            GgufValueType.UInt64 => (ulong)value.Value,
            _ => value.ToDouble(),
        };
    }

    /// <summary>A boolean value (or an integer, non-zero meaning true), or null when absent.</summary>
    /// <exception cref="ExpertScopeException">The key holds a string, float or array.</exception>
    public bool? TryGetBool(string key)
    {
        var value = TryGet(key);
        if (value is null)
        {
            return null;
        }

        return value.Type switch
        {
            GgufValueType.Bool => (bool)value.Value,
            GgufValueType.UInt64 => (ulong)value.Value != 0,
            GgufValueType.String or GgufValueType.Array or GgufValueType.Float32 or GgufValueType.Float64 =>
                throw new ExpertScopeException($"{FilePath}: metadata '{key}' is {value.Type}, expected a bool."),
            _ => value.ToInt64() != 0,
        };
    }

    /// <summary>An array value whose items are <typeparamref name="T"/>, or null when absent.</summary>
    /// <exception cref="ExpertScopeException">The key holds something else.</exception>
    public T[]? TryGetArray<T>(string key)
    {
        var value = TryGet(key);
        if (value is null)
        {
            return null;
        }

        return value.Value is GgufArray { Items: T[] items }
            ? items
            : throw new ExpertScopeException($"{FilePath}: metadata '{key}' is not an array of {typeof(T).Name}.");
    }

    /// <summary>A required integer.</summary>
    /// <exception cref="ExpertScopeException">Absent; the message names the file and key.</exception>
    public long GetInteger(string key) =>
        TryGetInteger(key) ?? throw new ExpertScopeException($"{FilePath}: required metadata '{key}' is missing.");

    /// <summary>A required string.</summary>
    /// <exception cref="ExpertScopeException">Absent; the message names the file and key.</exception>
    public string GetString(string key) =>
        TryGetString(key) ?? throw new ExpertScopeException($"{FilePath}: required metadata '{key}' is missing or not a string.");

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_pointerAcquired)
        {
            _view!.SafeMemoryMappedViewHandle.ReleasePointer();
            _pointerAcquired = false;
        }

        _view?.Dispose();
        _mapping?.Dispose();
    }

    /// <summary>Bounds-checked sequential reader over the mapped header.</summary>
    private ref struct HeaderReader
    {
        private readonly string _path;
        private readonly byte* _base;
        private readonly long _length;
        private long _position;

        public HeaderReader(string path, byte* basePointer, long length)
        {
            _path = path;
            _base = basePointer;
            _length = length;
            _position = 0;
        }

        private readonly long Remaining => _length - _position;

        public (uint Version, IReadOnlyDictionary<string, GgufValue> Metadata, IReadOnlyList<GgufTensorInfo> Tensors, Dictionary<string, int> TensorIndex, int Alignment, long DataOffset) ReadAll()
        {
            uint magic = ReadUInt32();
            if (magic != Magic)
            {
                throw Fail(0, $"magic is 0x{magic:X8}, expected 0x{Magic:X8} (\"GGUF\")");
            }

            uint version = ReadUInt32();
            if (version == 1)
            {
                throw Fail(4, "GGUF version 1 is not supported (only 2 and 3)");
            }

            if (version is not (2 or 3))
            {
                string hint = version > 0xFFFF ? " (a big-endian file?)" : string.Empty;
                throw Fail(4, $"unsupported GGUF version {version}{hint}");
            }

            long tensorCountOffset = _position;
            ulong tensorCount = ReadUInt64();
            long kvCountOffset = _position;
            ulong kvCount = ReadUInt64();

            // Each key/value needs at least 8 (key length) + 4 (type) + 1 bytes; each tensor info 8 + 4 + 4 + 8.
            if (kvCount > (ulong)Remaining / 13)
            {
                throw Fail(kvCountOffset, $"metadata count {kvCount} cannot fit in the {Remaining} bytes that follow");
            }

            if (tensorCount > (ulong)Remaining / 24)
            {
                throw Fail(tensorCountOffset, $"tensor count {tensorCount} cannot fit in the {Remaining} bytes that follow");
            }

            // Capacities grow with what is actually parsed, never with a count the file merely claims.
            var metadata = new Dictionary<string, GgufValue>((int)Math.Min(kvCount, InitialCapacity), StringComparer.Ordinal);
            long alignmentKeyOffset = -1;
            for (ulong i = 0; i < kvCount; i++)
            {
                long keyOffset = _position;
                string key = ReadString();
                long typeOffset = _position;
                var type = ReadValueType();
                var value = ReadValue(type, typeOffset, depth: 0);
                if (!metadata.TryAdd(key, value))
                {
                    throw Fail(keyOffset, $"duplicate metadata key '{key}'");
                }

                if (key == "general.alignment")
                {
                    alignmentKeyOffset = keyOffset;
                }
            }

            int alignment = DefaultAlignment;
            if (metadata.TryGetValue("general.alignment", out var alignValue))
            {
                if (alignValue.Type != GgufValueType.UInt32)
                {
                    throw Fail(alignmentKeyOffset, $"general.alignment has type {alignValue.Type}, expected UInt32");
                }

                uint a = (uint)alignValue.Value;
                if (a == 0 || (a & (a - 1)) != 0 || a > 1 << 20)
                {
                    throw Fail(alignmentKeyOffset, $"general.alignment {a} is not a power of two up to 1 MiB");
                }

                alignment = (int)a;
            }

            int tensorCapacity = (int)Math.Min(tensorCount, InitialCapacity);
            var tensors = new List<GgufTensorInfo>(tensorCapacity);
            var pending = new List<(string Name, long[] Dims, GgmlType Type, long Offset, long Size, long InfoOffset)>(tensorCapacity);
            var index = new Dictionary<string, int>(tensorCapacity, StringComparer.Ordinal);
            for (ulong i = 0; i < tensorCount; i++)
            {
                long infoOffset = _position;
                string name = ReadString();
                if (!index.TryAdd(name, index.Count))
                {
                    throw Fail(infoOffset, $"duplicate tensor name '{name}'");
                }

                long dimsOffset = _position;
                uint rank = ReadUInt32();
                if (rank > MaxDimensions)
                {
                    throw Fail(dimsOffset, $"tensor '{name}' has {rank} dimensions (at most {MaxDimensions})");
                }

                var dims = new long[rank];
                long nonZeroProduct = 1;
                bool empty = false;
                for (int d = 0; d < rank; d++)
                {
                    long dimOffset = _position;
                    ulong dim = ReadUInt64();
                    if (dim > long.MaxValue)
                    {
                        throw Fail(dimOffset, $"tensor '{name}' dimension {d} is {dim}");
                    }

                    dims[d] = (long)dim;

                    // Zeros are skipped so that the product of any subset of dimensions (rows, say) cannot overflow either.
                    if (dim == 0)
                    {
                        empty = true;
                        continue;
                    }

                    if (nonZeroProduct > long.MaxValue / (long)dim)
                    {
                        throw Fail(dimOffset, $"tensor '{name}' element count overflows");
                    }

                    nonZeroProduct *= (long)dim;
                }

                long elements = empty ? 0 : nonZeroProduct;

                long typeOffset = _position;
                uint rawType = ReadUInt32();
                if (!GgmlTypes.IsKnown(rawType))
                {
                    throw Fail(typeOffset, $"tensor '{name}' has unknown ggml type id {rawType}");
                }

                var type = (GgmlType)rawType;
                var traits = GgmlTypes.Get(type);
                long rowLength = rank > 0 ? dims[0] : 1;
                if (rowLength % traits.BlockSize != 0)
                {
                    throw Fail(dimsOffset, $"tensor '{name}' row length {rowLength} is not a multiple of the {traits.Name} block size {traits.BlockSize}");
                }

                long rows = rowLength == 0 ? 0 : elements / rowLength;
                long blocks = rowLength / traits.BlockSize;
                if (blocks > long.MaxValue / traits.TypeSize)
                {
                    throw Fail(dimsOffset, $"tensor '{name}' row size overflows");
                }

                long rowBytes = blocks * traits.TypeSize;
                if (rows != 0 && rowBytes > long.MaxValue / rows)
                {
                    throw Fail(dimsOffset, $"tensor '{name}' byte size overflows");
                }

                long offsetOffset = _position;
                ulong relative = ReadUInt64();
                if (relative > (ulong)_length)
                {
                    throw Fail(offsetOffset, $"tensor '{name}' data offset {relative} is beyond the end of the file ({_length} bytes)");
                }

                if (relative % (ulong)alignment != 0)
                {
                    throw Fail(offsetOffset, $"tensor '{name}' data offset {relative} is not a multiple of the alignment {alignment}");
                }

                pending.Add((name, dims, type, (long)relative, rows * rowBytes, infoOffset));
            }

            long dataOffset = AlignUp(_position, alignment);
            if (dataOffset > _length && pending.Count > 0)
            {
                throw Fail(_position, $"tensor data section (aligned to {alignment}) starts past the end of the file ({_length} bytes)");
            }

            foreach (var t in pending)
            {
                if (t.Offset > _length - dataOffset || t.Size > _length - dataOffset - t.Offset)
                {
                    throw Fail(t.InfoOffset, $"tensor '{t.Name}' data [{dataOffset + t.Offset}, +{t.Size}) extends past the end of the file ({_length} bytes): truncated file?");
                }

                tensors.Add(new GgufTensorInfo(t.Name, t.Dims, t.Type, t.Offset, t.Size, dataOffset + t.Offset));
            }

            CheckOverlaps(tensors);
            return (version, metadata, tensors, index, alignment, dataOffset);
        }

        private readonly void CheckOverlaps(List<GgufTensorInfo> tensors)
        {
            var sorted = tensors.Where(t => t.ByteSize > 0).OrderBy(t => t.FileOffset).ToList();
            for (int i = 1; i < sorted.Count; i++)
            {
                var previous = sorted[i - 1];
                if (previous.FileOffset + previous.ByteSize > sorted[i].FileOffset)
                {
                    throw Fail(sorted[i].FileOffset, $"tensors '{previous.Name}' and '{sorted[i].Name}' overlap");
                }
            }
        }

        private static long AlignUp(long value, int alignment) => (value + alignment - 1) / alignment * alignment;

        private GgufValueType ReadValueType()
        {
            long offset = _position;
            uint raw = ReadUInt32();
            if (raw > (uint)GgufValueType.Float64)
            {
                throw Fail(offset, $"unknown metadata value type {raw}");
            }

            return (GgufValueType)raw;
        }

        private GgufValue ReadValue(GgufValueType type, long typeOffset, int depth) => type switch
        {
            GgufValueType.UInt8 => new(type, ReadBytes(1)[0]),
            GgufValueType.Int8 => new(type, (sbyte)ReadBytes(1)[0]),
            GgufValueType.UInt16 => new(type, ReadUInt16()),
            GgufValueType.Int16 => new(type, (short)ReadUInt16()),
            GgufValueType.UInt32 => new(type, ReadUInt32()),
            GgufValueType.Int32 => new(type, (int)ReadUInt32()),
            GgufValueType.Float32 => new(type, BitConverter.UInt32BitsToSingle(ReadUInt32())),
            GgufValueType.Bool => new(type, ReadBool()),
            GgufValueType.String => new(type, ReadString()),
            GgufValueType.UInt64 => new(type, ReadUInt64()),
            GgufValueType.Int64 => new(type, (long)ReadUInt64()),
            GgufValueType.Float64 => new(type, BitConverter.UInt64BitsToDouble(ReadUInt64())),
            GgufValueType.Array => new(type, ReadArray(depth)),
            _ => throw Fail(typeOffset, $"unknown metadata value type {(uint)type}"),
        };

        private GgufArray ReadArray(int depth)
        {
            long start = _position;
            if (depth >= MaxArrayNesting)
            {
                throw Fail(start, $"arrays nested deeper than {MaxArrayNesting}");
            }

            var elementType = ReadValueType();
            long countOffset = _position;
            ulong count = ReadUInt64();
            int elementSize = elementType switch
            {
                GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
                GgufValueType.UInt16 or GgufValueType.Int16 => 2,
                GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
                GgufValueType.String => 8,
                GgufValueType.Array => 12,
                _ => 8,
            };
            // Strings and nested arrays need at least elementSize bytes each; scalars exactly that.
            if (count > (ulong)(Remaining / elementSize))
            {
                throw Fail(countOffset, $"array of {count} {elementType} elements cannot fit in the {Remaining} bytes that follow");
            }

            if (count * (ulong)elementSize > int.MaxValue)
            {
                throw Fail(countOffset, $"array of {count} {elementType} elements is larger than 2 GiB, which this reader does not support");
            }

            int n = (int)count;
            switch (elementType)
            {
                case GgufValueType.UInt8: return new(elementType, ReadBytes(n).ToArray());
                case GgufValueType.Int8: return new(elementType, MemoryMarshal.Cast<byte, sbyte>(ReadBytes(n)).ToArray());
                case GgufValueType.Bool:
                {
                    var bytes = ReadBytes(n);
                    var result = new bool[n];
                    for (int i = 0; i < n; i++)
                    {
                        if (bytes[i] > 1)
                        {
                            throw Fail(_position - n + i, $"bool array element is {bytes[i]}, expected 0 or 1");
                        }

                        result[i] = bytes[i] == 1;
                    }

                    return new(elementType, result);
                }

                case GgufValueType.UInt16: return new(elementType, MemoryMarshal.Cast<byte, ushort>(ReadBytes(n * 2)).ToArray());
                case GgufValueType.Int16: return new(elementType, MemoryMarshal.Cast<byte, short>(ReadBytes(n * 2)).ToArray());
                case GgufValueType.UInt32: return new(elementType, MemoryMarshal.Cast<byte, uint>(ReadBytes(n * 4)).ToArray());
                case GgufValueType.Int32: return new(elementType, MemoryMarshal.Cast<byte, int>(ReadBytes(n * 4)).ToArray());
                case GgufValueType.Float32: return new(elementType, MemoryMarshal.Cast<byte, float>(ReadBytes(n * 4)).ToArray());
                case GgufValueType.UInt64: return new(elementType, MemoryMarshal.Cast<byte, ulong>(ReadBytes(n * 8)).ToArray());
                case GgufValueType.Int64: return new(elementType, MemoryMarshal.Cast<byte, long>(ReadBytes(n * 8)).ToArray());
                case GgufValueType.Float64: return new(elementType, MemoryMarshal.Cast<byte, double>(ReadBytes(n * 8)).ToArray());
                case GgufValueType.String:
                {
                    var strings = new string[n];
                    for (int i = 0; i < n; i++)
                    {
                        strings[i] = ReadString();
                    }

                    return new(elementType, strings);
                }

                case GgufValueType.Array:
                {
                    var arrays = new GgufArray[n];
                    for (int i = 0; i < n; i++)
                    {
                        arrays[i] = ReadArray(depth + 1);
                    }

                    return new(elementType, arrays);
                }

                default:
                    throw Fail(start, $"unknown array element type {(uint)elementType}");
            }
        }

        private bool ReadBool()
        {
            long offset = _position;
            byte b = ReadBytes(1)[0];
            return b switch
            {
                0 => false,
                1 => true,
                _ => throw Fail(offset, $"bool value is {b}, expected 0 or 1"),
            };
        }

        private string ReadString()
        {
            long offset = _position;
            ulong length = ReadUInt64();
            if (length > (ulong)Remaining)
            {
                throw Fail(offset, $"string length {length} exceeds the {Remaining} bytes that follow");
            }

            if (length > int.MaxValue)
            {
                throw Fail(offset, $"string length {length} is larger than 2 GiB, which this reader does not support");
            }

            var bytes = ReadBytes((int)length);
            try
            {
                return StrictUtf8.GetString(bytes);
            }
            catch (DecoderFallbackException)
            {
                throw Fail(offset + 8, "string is not valid UTF-8");
            }
        }

        private ushort ReadUInt16() => MemoryMarshal.Read<ushort>(ReadBytes(2));

        private uint ReadUInt32() => MemoryMarshal.Read<uint>(ReadBytes(4));

        private ulong ReadUInt64() => MemoryMarshal.Read<ulong>(ReadBytes(8));

        private ReadOnlySpan<byte> ReadBytes(int count)
        {
            if (count > Remaining)
            {
                throw Fail(_position, $"needs {count} more bytes but the file ends after {Remaining}: truncated file?");
            }

            var span = new ReadOnlySpan<byte>(_base + _position, count);
            _position += count;
            return span;
        }

        private readonly GgufFormatException Fail(long offset, string problem) => new(_path, offset, problem);
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}
