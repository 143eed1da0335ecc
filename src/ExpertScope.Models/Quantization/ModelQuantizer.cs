using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Kernels.Quant;

namespace ExpertScope.Models.Quantization;

/// <summary>
/// llama-quantize's job for the types this engine can quantize: reads a GGUF, converts its weight matrices row by
/// row with ggml's reference quantizers (no importance matrix, so the bytes equal llama.cpp's for the same choice of
/// types), copies everything else, and writes a new GGUF with all metadata kept.
/// </summary>
/// <remarks>
/// Metadata: every key of the source, in order, with <c>general.file_type</c> and <c>general.quantization_version</c>
/// set as llama-quantize sets them, plus <see cref="WriterKey"/> naming the target (so a later run may replace the
/// file). Tensors keep the source's order (llama-quantize sorts them by name; readers do not care). Only one tensor
/// row batch is in memory at a time.
/// </remarks>
public static class ModelQuantizer
{
    /// <summary>The metadata key this writer adds; its presence marks a file <c>quantize</c> may overwrite.</summary>
    public const string WriterKey = "expertscope.quantize.type";

    /// <summary>ggml's <c>GGML_QNT_VERSION</c>, written as <c>general.quantization_version</c>.</summary>
    public const uint QuantizationVersion = 2;

    /// <summary>Writes the quantized model (atomically: a temporary file is renamed at the end).</summary>
    /// <param name="sourcePath">The source GGUF.</param>
    /// <param name="target">What to make.</param>
    /// <param name="outputPath">The new GGUF.</param>
    /// <param name="options">Overwrite and requantize permissions, threads.</param>
    /// <exception cref="ExpertScopeException">The output is the source, exists and was not written by this verb (without
    /// <see cref="QuantizeOptions.Overwrite"/>), a tensor is already quantized to another type (without
    /// <see cref="QuantizeOptions.AllowRequantize"/>), or a tensor cannot be stored in the chosen type.</exception>
    public static QuantizeSummary Write(string sourcePath, QuantizationTarget target, string outputPath, QuantizeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        options ??= new QuantizeOptions();
        string full = Path.GetFullPath(outputPath);
        if (string.Equals(full, Path.GetFullPath(sourcePath), StringComparison.Ordinal))
        {
            throw new ExpertScopeException($"{outputPath}: the quantized model must not overwrite its source.");
        }

        if (File.Exists(full) && !options.Overwrite && !WrittenByQuantize(full))
        {
            throw new ExpertScopeException($"{outputPath}: the file exists and was not written by 'expertscope quantize'; give --overwrite to replace it.");
        }

        using var source = GgufFile.Open(sourcePath);
        string arch = source.Architecture ?? throw new ExpertScopeException($"{sourcePath}: no general.architecture.");
        int experts = (int)(source.TryGetInteger(arch + ".expert_count") ?? 0);
        int blocks = (int)source.GetInteger(arch + ".block_count");
        var plan = TensorTypeRules.Plan(source.Tensors.Select(t => new TensorTypeRules.TensorShape(t.Name, t.Dimensions, t.Type)), target, experts, blocks);
        foreach (var tensor in source.Tensors)
        {
            var type = plan[tensor.Name].Type;
            if (type != tensor.Type && GgmlTypes.Get(tensor.Type).IsQuantized && !options.AllowRequantize)
            {
                throw new ExpertScopeException($"{sourcePath}: tensor {tensor.Name} is already {GgmlTypes.Get(tensor.Type).Name}; requantizing to {GgmlTypes.Get(type).Name} loses precision twice (give --allow-requantize to do it anyway).");
            }
        }

        var typeCounts = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var fallbacks = new List<QuantizeFallback>();
        GgufWriter.WriteAtomically(full, writer =>
        {
            foreach (var (key, value) in source.Metadata)
            {
                writer.SetMetadata(key, value);
            }

            WriteQuantizationKeys(writer, target);
            foreach (var tensor in source.Tensors)
            {
                AddPlannedTensor(writer, tensor.Name, tensor.Dimensions, plan[tensor.Name], typeCounts, fallbacks);
            }

            foreach (var tensor in source.Tensors)
            {
                var type = plan[tensor.Name].Type;
                writer.WriteTensorData(stream => WriteTensor(source, tensor, type, stream, options.ThreadCount));
            }
        });

        return new QuantizeSummary(target.Name, source.Length, new FileInfo(full).Length, typeCounts, fallbacks);
    }

    /// <summary>The three keys every quantized file of ours carries: quantization version, file type and <see cref="WriterKey"/>.</summary>
    internal static void WriteQuantizationKeys(GgufWriter writer, QuantizationTarget target)
    {
        writer.SetMetadata("general.quantization_version", GgufValue.Create(QuantizationVersion));
        writer.SetMetadata("general.file_type", GgufValue.Create(target.FileType));
        writer.SetMetadata(WriterKey, GgufValue.Create(target.Name));
    }

    /// <summary>Adds a tensor in its planned type, counting the type and recording a fallback from the rule's first choice.</summary>
    internal static void AddPlannedTensor(
        GgufWriter writer,
        string name,
        ReadOnlySpan<long> dimensions,
        TensorTypeRules.Choice choice,
        SortedDictionary<string, int> typeCounts,
        List<QuantizeFallback> fallbacks)
    {
        writer.AddTensor(name, choice.Type, dimensions);
        string typeName = GgmlTypes.Get(choice.Type).Name;
        typeCounts[typeName] = typeCounts.GetValueOrDefault(typeName) + 1;
        if (choice.FallbackFrom is { } from)
        {
            fallbacks.Add(new QuantizeFallback(name, GgmlTypes.Get(from).Name, typeName));
        }
    }

    /// <summary>True when <paramref name="path"/> is a GGUF that carries <see cref="WriterKey"/>.</summary>
    public static bool WrittenByQuantize(string path)
    {
        try
        {
            using var file = GgufFile.Open(path);
            return file.TryGetString(WriterKey) is not null;
        }
        catch (Exception e) when (e is ExpertScopeException or IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static void WriteTensor(GgufFile source, GgufTensorInfo tensor, GgmlType type, Stream destination, int? threads)
    {
        if (type == tensor.Type)
        {
            const int Chunk = 1 << 24;
            for (long done = 0; done < tensor.ByteSize; done += Chunk)
            {
                destination.Write(source.GetTensorData(tensor, done, (int)Math.Min(Chunk, tensor.ByteSize - done)));
            }

            return;
        }

        int rowLength = checked((int)tensor.RowLength);
        int sourceRowBytes = checked((int)tensor.RowBytes);
        int targetRowBytes = Quantize.RowBytes(type, rowLength);
        long rows = tensor.RowCount;

        // Rows are independent (ggml quantizes row by row), so a batch is converted in parallel and written in order.
        int batch = (int)Math.Clamp((1 << 22) / Math.Max(1, rowLength), 1, 4096);
        var floats = new float[batch * (long)rowLength];
        var bytes = new byte[batch * (long)targetRowBytes];
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = threads ?? Environment.ProcessorCount };
        for (long first = 0; first < rows; first += batch)
        {
            int count = (int)Math.Min(batch, rows - first);
            long firstRow = first;
            Parallel.For(0, count, parallel, r =>
            {
                var row = floats.AsSpan(r * rowLength, rowLength);
                var stored = source.GetTensorData(tensor, (firstRow + r) * sourceRowBytes, sourceRowBytes);
                if (tensor.Type == GgmlType.F32)
                {
                    System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(stored).CopyTo(row);
                }
                else
                {
                    Dequantize.Row(tensor.Type, stored, row);
                }

                Quantize.Row(type, row, bytes.AsSpan(r * targetRowBytes, targetRowBytes));
            });
            destination.Write(bytes, 0, count * targetRowBytes);
        }
    }
}

/// <summary>Permissions and resources of one <see cref="ModelQuantizer.Write"/>.</summary>
public sealed record QuantizeOptions
{
    /// <summary>Replace an existing output that this verb did not write.</summary>
    public bool Overwrite { get; init; }

    /// <summary>Convert tensors that are already quantized (llama-quantize's <c>--allow-requantize</c>).</summary>
    public bool AllowRequantize { get; init; }

    /// <summary>Threads for the row conversion (default: all processors); the bytes do not depend on it.</summary>
    public int? ThreadCount { get; init; }
}

/// <summary>What <see cref="ModelQuantizer.Write"/> wrote.</summary>
/// <param name="Target">The target name.</param>
/// <param name="BytesBefore">Source file size.</param>
/// <param name="BytesAfter">Output file size.</param>
/// <param name="TensorsByType">How many tensors of each type the output holds.</param>
/// <param name="Fallbacks">Tensors whose row length forced another type.</param>
public sealed record QuantizeSummary(string Target, long BytesBefore, long BytesAfter, IReadOnlyDictionary<string, int> TensorsByType, IReadOnlyList<QuantizeFallback> Fallbacks);

/// <summary>A tensor whose rows are not whole blocks of the chosen type, stored in llama.cpp's fallback type instead.</summary>
/// <param name="Tensor">Tensor name.</param>
/// <param name="From">The type the rules chose.</param>
/// <param name="To">The type written.</param>
public sealed record QuantizeFallback(string Tensor, string From, string To);
