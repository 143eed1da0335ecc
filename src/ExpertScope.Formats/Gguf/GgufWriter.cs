using System.Buffers.Binary;
using System.Text;
using ExpertScope.Core;

namespace ExpertScope.Formats.Gguf;

/// <summary>
/// Writes a GGUF version 3 file the way ggml's own writer lays it out: header, metadata in the order given,
/// tensor infos, zero padding to the alignment, then each tensor's data padded with zeros to the alignment.
/// </summary>
/// <remarks>
/// <para>Use it in two phases. First declare everything with <see cref="SetMetadata"/> and <see cref="AddTensor"/>;
/// the header is then fully determined because offsets follow from each tensor's type and shape. Then supply the
/// data of each tensor, in declaration order, with <see cref="WriteTensorData(ReadOnlySpan{byte})"/> or
/// <see cref="WriteTensorData(Action{Stream})"/>, and call <see cref="Finish"/>. Only one tensor's bytes pass
/// through at a time, so a model of any size can be written from memory-mapped or generated data.</para>
/// <para>The output stream need not be seekable. The <c>general.alignment</c> metadata value, when present, sets the
/// alignment (a power of two, type UInt32); otherwise it is <see cref="GgufFile.DefaultAlignment"/>.</para>
/// </remarks>
public sealed class GgufWriter : IDisposable
{
    /// <summary>The GGUF version this writer produces.</summary>
    public const uint Version = 3;

    /// <summary>ggml's <c>GGML_MAX_NAME</c>: tensor names must be shorter than this many UTF-8 bytes.</summary>
    public const int MaxTensorNameBytes = 64;

    private const int MaxArrayNesting = 8;
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly List<KeyValuePair<string, GgufValue>> _metadata = [];
    private readonly Dictionary<string, int> _metadataIndex = new(StringComparer.Ordinal);
    private readonly List<PlannedTensor> _tensors = [];
    private readonly HashSet<string> _tensorNames = new(StringComparer.Ordinal);
    private Phase _phase;
    private int _nextTensor;
    private long _position;
    private bool _disposed;

    /// <summary>Creates a writer over <paramref name="stream"/>, which must be writable and positioned where the file starts.</summary>
    /// <param name="stream">The destination.</param>
    /// <param name="leaveOpen">When false, disposing the writer disposes the stream.</param>
    public GgufWriter(Stream stream, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite)
        {
            throw new ArgumentException("The stream is not writable.", nameof(stream));
        }

        _stream = stream;
        _leaveOpen = leaveOpen;
    }

    private enum Phase
    {
        Declaring,
        WritingData,
        Finished,
    }

    /// <summary>Bytes written to the stream so far.</summary>
    public long BytesWritten => _position;

    /// <summary>Metadata in the order it will be written.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata => _metadata;

    /// <summary>The tensor data alignment implied by the metadata.</summary>
    public int Alignment
    {
        get
        {
            if (!_metadataIndex.TryGetValue("general.alignment", out int index))
            {
                return GgufFile.DefaultAlignment;
            }

            // SetMetadata validated the value.
            return (int)(uint)_metadata[index].Value.Value;
        }
    }

    /// <summary>Creates (or overwrites) the file at <paramref name="path"/> and returns a writer that owns it.</summary>
    public static GgufWriter Create(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 20);
        return new GgufWriter(stream, leaveOpen: false);
    }

    /// <summary>
    /// Writes a whole GGUF file at once: <paramref name="write"/> fills a writer on <c>PATH.partial</c> beside
    /// <paramref name="path"/>, which is then finished, flushed to the disk and renamed over the target. An exception or
    /// a cancellation removes the temporary file and leaves the target as it was, so no half-written model ever carries
    /// the final name (and a crash cannot leave a renamed but incomplete file).
    /// </summary>
    public static void WriteAtomically(string path, Action<GgufWriter> write)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string temporary = full + ".partial";
        try
        {
            using (var writer = Create(temporary))
            {
                write(writer);
                writer.Finish();
            }

            using (var written = new FileStream(temporary, FileMode.Open, FileAccess.ReadWrite, FileShare.Read))
            {
                written.Flush(flushToDisk: true);
            }
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }

        File.Move(temporary, full, overwrite: true);
    }

    /// <summary>Adds a metadata entry at the end, or replaces the value of an existing key in place.</summary>
    /// <exception cref="ArgumentException">The value is malformed (its CLR type does not match its GGUF type, arrays nest
    /// too deep, a string is not valid UTF-16) or <c>general.alignment</c> is not a UInt32 power of two.</exception>
    /// <exception cref="InvalidOperationException">The header has already been written.</exception>
    public void SetMetadata(string key, GgufValue value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        RequirePhase(Phase.Declaring);
        Validate(key, value.Type, value.Value, depth: 0);
        if (key == "general.alignment")
        {
            if (value.Value is not uint a || a == 0 || (a & (a - 1)) != 0 || a > 1 << 20)
            {
                throw new ArgumentException("general.alignment must be a UInt32 power of two up to 1 MiB.", nameof(value));
            }
        }

        if (_metadataIndex.TryGetValue(key, out int index))
        {
            _metadata[index] = new(key, value);
        }
        else
        {
            _metadataIndex.Add(key, _metadata.Count);
            _metadata.Add(new(key, value));
        }
    }

    /// <summary>Declares the next tensor. Its data must later be supplied in the same order as the declarations.</summary>
    /// <param name="name">Unique name, shorter than <see cref="MaxTensorNameBytes"/> UTF-8 bytes.</param>
    /// <param name="type">Element type.</param>
    /// <param name="dimensions">ggml's <c>ne[]</c>, fastest-varying first (1 to 4 dimensions).</param>
    /// <returns>The number of data bytes the tensor needs.</returns>
    /// <exception cref="ArgumentException">Duplicate or over-long name, bad rank, negative dimension, a row that is not a whole
    /// number of blocks, or a size that overflows.</exception>
    public long AddTensor(string name, GgmlType type, ReadOnlySpan<long> dimensions)
    {
        ArgumentNullException.ThrowIfNull(name);
        RequirePhase(Phase.Declaring);
        int nameBytes = Utf8Length(name, nameof(name));
        if (nameBytes >= MaxTensorNameBytes)
        {
            throw new ArgumentException($"Tensor name '{name}' is {nameBytes} UTF-8 bytes; ggml allows at most {MaxTensorNameBytes - 1}.", nameof(name));
        }

        if (dimensions.Length is < 1 or > GgufFile.MaxDimensions)
        {
            throw new ArgumentException($"Tensor '{name}' has {dimensions.Length} dimensions; GGUF allows 1 to {GgufFile.MaxDimensions}.", nameof(dimensions));
        }

        var traits = GgmlTypes.Get(type);
        long elements = 1;
        foreach (long d in dimensions)
        {
            if (d < 0)
            {
                throw new ArgumentException($"Tensor '{name}' has a negative dimension {d}.", nameof(dimensions));
            }

            if (d != 0 && elements > long.MaxValue / d)
            {
                throw new ArgumentException($"Tensor '{name}' element count overflows.", nameof(dimensions));
            }

            elements *= d;
        }

        long rowBytes = traits.RowBytes(dimensions[0]);
        if (rowBytes < 0)
        {
            throw new ArgumentException($"Tensor '{name}' row length {dimensions[0]} is not a multiple of the {traits.Name} block size {traits.BlockSize}.", nameof(dimensions));
        }

        long rows = dimensions[0] == 0 ? 0 : elements / dimensions[0];
        if (rows != 0 && rowBytes > (long.MaxValue / 2) / rows)
        {
            throw new ArgumentException($"Tensor '{name}' byte size overflows.", nameof(dimensions));
        }

        if (!_tensorNames.Add(name))
        {
            throw new ArgumentException($"Tensor '{name}' is declared twice.", nameof(name));
        }

        long size = rows * rowBytes;
        _tensors.Add(new PlannedTensor(name, dimensions.ToArray(), type, size));
        return size;
    }

    /// <summary>
    /// Writes the header (metadata and tensor infos) and the padding before the data section. Called by the first
    /// data write or by <see cref="Finish"/> when not called explicitly.
    /// </summary>
    public void WriteHeader()
    {
        RequirePhase(Phase.Declaring);
        int alignment = Alignment;
        long relative = 0;
        foreach (var t in _tensors)
        {
            t.RelativeOffset = relative;
            relative = checked(relative + AlignUp(t.ByteSize, alignment));
        }

        using var header = new MemoryStream();
        WriteUInt32(header, GgufFile.Magic);
        WriteUInt32(header, Version);
        WriteUInt64(header, (ulong)_tensors.Count);
        WriteUInt64(header, (ulong)_metadata.Count);
        foreach (var (key, value) in _metadata)
        {
            WriteString(header, key);
            WriteUInt32(header, (uint)value.Type);
            WriteValue(header, value.Type, value.Value);
        }

        foreach (var t in _tensors)
        {
            WriteString(header, t.Name);
            WriteUInt32(header, (uint)t.Dimensions.Length);
            foreach (long d in t.Dimensions)
            {
                WriteUInt64(header, (ulong)d);
            }

            WriteUInt32(header, (uint)t.Type);
            WriteUInt64(header, (ulong)t.RelativeOffset);
        }

        header.Write(new byte[AlignUp(header.Length, alignment) - header.Length]);
        header.Position = 0;
        header.CopyTo(_stream);
        _position = header.Length;
        _phase = Phase.WritingData;
    }

    /// <summary>Writes the data of the next declared tensor from memory.</summary>
    /// <exception cref="InvalidOperationException">Every tensor has been written, or the length is not the declared size.</exception>
    public void WriteTensorData(ReadOnlySpan<byte> data)
    {
        var tensor = BeginTensor();
        if (data.Length != tensor.ByteSize)
        {
            throw new InvalidOperationException($"Tensor '{tensor.Name}' needs {tensor.ByteSize} bytes; {data.Length} were supplied.");
        }

        _stream.Write(data);
        EndTensor(tensor);
    }

    /// <summary>
    /// Writes the data of the next declared tensor by letting <paramref name="writeData"/> write exactly its size into
    /// the given stream, in as many pieces as it likes (for tensors produced or converted piece by piece).
    /// </summary>
    /// <exception cref="InvalidOperationException">Every tensor has been written, or the callback wrote more or fewer bytes than declared.</exception>
    public void WriteTensorData(Action<Stream> writeData)
    {
        ArgumentNullException.ThrowIfNull(writeData);
        var tensor = BeginTensor();
        using (var sink = new TensorDataStream(_stream, tensor))
        {
            writeData(sink);
            if (sink.Written != tensor.ByteSize)
            {
                throw new InvalidOperationException($"Tensor '{tensor.Name}' needs {tensor.ByteSize} bytes; the callback wrote {sink.Written}.");
            }
        }

        EndTensor(tensor);
    }

    /// <summary>Checks that every tensor's data was written and flushes the stream.</summary>
    /// <exception cref="InvalidOperationException">Some declared tensors have no data yet.</exception>
    public void Finish()
    {
        if (_phase == Phase.Declaring)
        {
            WriteHeader();
        }

        RequirePhase(Phase.WritingData);
        if (_nextTensor != _tensors.Count)
        {
            throw new InvalidOperationException($"{_tensors.Count - _nextTensor} declared tensors have no data yet (next: '{_tensors[_nextTensor].Name}').");
        }

        _stream.Flush();
        _phase = Phase.Finished;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (!_leaveOpen)
        {
            _stream.Dispose();
        }
    }

    private static long AlignUp(long value, int alignment) => (value + alignment - 1) / alignment * alignment;

    private PlannedTensor BeginTensor()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_phase == Phase.Declaring)
        {
            WriteHeader();
        }

        RequirePhase(Phase.WritingData);
        if (_nextTensor >= _tensors.Count)
        {
            throw new InvalidOperationException($"All {_tensors.Count} declared tensors have already been written.");
        }

        return _tensors[_nextTensor];
    }

    private void EndTensor(PlannedTensor tensor)
    {
        long padded = AlignUp(tensor.ByteSize, Alignment);
        Span<byte> zeros = stackalloc byte[256];
        zeros.Clear();
        for (long left = padded - tensor.ByteSize; left > 0; left -= zeros.Length)
        {
            _stream.Write(zeros[..(int)Math.Min(left, zeros.Length)]);
        }

        _position += padded;
        _nextTensor++;
    }

    private void RequirePhase(Phase phase)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_phase != phase)
        {
            throw new InvalidOperationException(_phase switch
            {
                Phase.Declaring => "The header has not been written yet.",
                Phase.WritingData => "The header has already been written; metadata and tensors can no longer be declared.",
                _ => "The file is finished.",
            });
        }
    }

    private static int Utf8Length(string text, string parameter)
    {
        try
        {
            return StrictUtf8.GetByteCount(text);
        }
        catch (EncoderFallbackException e)
        {
            throw new ArgumentException("Text is not valid UTF-16 (unpaired surrogate), so it has no UTF-8 form.", parameter, e);
        }
    }

    // Checks the value's CLR shape before anything is written, so a bad value cannot leave half a header behind.
    private static void Validate(string key, GgufValueType type, object value, int depth)
    {
        if (depth == 0)
        {
            Utf8Length(key, nameof(key));
        }

        bool ok = type switch
        {
            GgufValueType.UInt8 => value is byte,
            GgufValueType.Int8 => value is sbyte,
            GgufValueType.UInt16 => value is ushort,
            GgufValueType.Int16 => value is short,
            GgufValueType.UInt32 => value is uint,
            GgufValueType.Int32 => value is int,
            GgufValueType.Float32 => value is float,
            GgufValueType.Bool => value is bool,
            GgufValueType.String => value is string,
            GgufValueType.UInt64 => value is ulong,
            GgufValueType.Int64 => value is long,
            GgufValueType.Float64 => value is double,
            GgufValueType.Array => value is GgufArray,
            _ => false,
        };
        if (!ok)
        {
            throw new ArgumentException($"Metadata '{key}': a {type} value cannot hold a {value.GetType().Name}.", nameof(value));
        }

        if (value is string s)
        {
            Utf8Length(s, nameof(value));
        }
        if (value is not GgufArray array)
        {
            return;
        }

        if (depth >= MaxArrayNesting)
        {
            throw new ArgumentException($"Metadata '{key}': arrays nest deeper than {MaxArrayNesting}.", nameof(value));
        }

        if (GgufArray.ElementTypeOf(array.Items.GetType().GetElementType()!) != array.ElementType)
        {
            throw new ArgumentException($"Metadata '{key}': an array of {array.ElementType} cannot hold {array.Items.GetType().Name}.", nameof(value));
        }

        if (array.Items is string[] strings)
        {
            foreach (var item in strings)
            {
                Utf8Length(item ?? throw new ArgumentException($"Metadata '{key}': null string in array.", nameof(value)), nameof(value));
            }
        }
        else if (array.Items is GgufArray[] nested)
        {
            foreach (var item in nested)
            {
                Validate(key, GgufValueType.Array, item ?? throw new ArgumentException($"Metadata '{key}': null nested array.", nameof(value)), depth + 1);
            }
        }
    }

    private static void WriteValue(Stream output, GgufValueType type, object value)
    {
        switch (type)
        {
            case GgufValueType.UInt8: output.WriteByte((byte)value); break;
            case GgufValueType.Int8: output.WriteByte(unchecked((byte)(sbyte)value)); break;
            case GgufValueType.UInt16: WriteUInt16(output, (ushort)value); break;
            case GgufValueType.Int16: WriteUInt16(output, unchecked((ushort)(short)value)); break;
            case GgufValueType.UInt32: WriteUInt32(output, (uint)value); break;
            case GgufValueType.Int32: WriteUInt32(output, unchecked((uint)(int)value)); break;
            case GgufValueType.Float32: WriteUInt32(output, BitConverter.SingleToUInt32Bits((float)value)); break;
            case GgufValueType.Bool: output.WriteByte((bool)value ? (byte)1 : (byte)0); break;
            case GgufValueType.String: WriteString(output, (string)value); break;
            case GgufValueType.UInt64: WriteUInt64(output, (ulong)value); break;
            case GgufValueType.Int64: WriteUInt64(output, unchecked((ulong)(long)value)); break;
            case GgufValueType.Float64: WriteUInt64(output, BitConverter.DoubleToUInt64Bits((double)value)); break;
            case GgufValueType.Array: WriteArray(output, (GgufArray)value); break;
            default: throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown GGUF value type.");
        }
    }

    private static void WriteArray(Stream output, GgufArray array)
    {
        WriteUInt32(output, (uint)array.ElementType);
        WriteUInt64(output, (ulong)array.Count);
        foreach (object? item in array.Items)
        {
            WriteValue(output, array.ElementType, item!);
        }
    }

    private static void WriteString(Stream output, string text)
    {
        byte[] bytes = StrictUtf8.GetBytes(text);
        WriteUInt64(output, (ulong)bytes.Length);
        output.Write(bytes);
    }

    private static void WriteUInt16(Stream output, ushort value)
    {
        Span<byte> buffer = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(buffer, value);
        output.Write(buffer);
    }

    private static void WriteUInt32(Stream output, uint value)
    {
        Span<byte> buffer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, value);
        output.Write(buffer);
    }

    private static void WriteUInt64(Stream output, ulong value)
    {
        Span<byte> buffer = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(buffer, value);
        output.Write(buffer);
    }

    private sealed class PlannedTensor(string name, long[] dimensions, GgmlType type, long byteSize)
    {
        public string Name { get; } = name;

        public long[] Dimensions { get; } = dimensions;

        public GgmlType Type { get; } = type;

        public long ByteSize { get; } = byteSize;

        public long RelativeOffset { get; set; }
    }

    /// <summary>Write-only view handed to a data callback: forwards to the file and refuses to overrun the tensor.</summary>
    private sealed class TensorDataStream(Stream inner, PlannedTensor tensor) : Stream
    {
        public long Written { get; private set; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => Written;
            set => throw new NotSupportedException();
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (buffer.Length > tensor.ByteSize - Written)
            {
                throw new InvalidOperationException($"Tensor '{tensor.Name}' needs {tensor.ByteSize} bytes; the callback wrote more.");
            }

            inner.Write(buffer);
            Written += buffer.Length;
        }

        public override void WriteByte(byte value) => Write([value]);

        public override void Flush()
        {
            // The writer flushes the file when it finishes.
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
