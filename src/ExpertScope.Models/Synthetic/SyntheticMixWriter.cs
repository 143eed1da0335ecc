using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models.Quantization;

namespace ExpertScope.Models.Synthetic;

/// <summary>
/// Writes a synthetic model as <c>quantize</c> would make it from the float32 model (one of llama.cpp's K-quant mixes
/// such as <c>q4_K_M</c>, or one type for every matrix such as <c>q8_0</c>), without the float32 model: each tensor's
/// seeded values are generated row by row, quantized to the type <see cref="TensorTypeRules.Plan"/> picks for it, and
/// written. The bytes equal <see cref="SyntheticModelWriter"/>'s float32 model passed through
/// <see cref="ModelQuantizer"/> (same metadata, tensor order and row quantizers), so a 30B-class model needs only its
/// own size on disk and a few megabytes of memory.
/// </summary>
/// <remarks>
/// Rows are independent (ggml quantizes row by row, and every row's random values start at a known draw of the
/// tensor's generator), so a batch of rows is generated and quantized in parallel and written in order; the bytes do
/// not depend on the thread count.
/// </remarks>
public static class SyntheticMixWriter
{
    // Rows per batch: about 4 MB of quantized bytes, so progress and cancellation come every fraction of a second.
    private const long BatchBytes = 1 << 22;

    /// <summary>Writes <paramref name="spec"/>'s weights, stored as <paramref name="target"/>, to <paramref name="path"/> (atomically).</summary>
    /// <param name="spec">What to write; its tensor types are ignored (the target decides them).</param>
    /// <param name="target">A K-quant mix or a single quantization type, as the quantize verb reads them.</param>
    /// <param name="path">Destination; written as <c>path.partial</c> and renamed at the end.</param>
    /// <param name="options">Overwrite permission, threads, cancellation.</param>
    /// <param name="progress">Called with (bytes of tensor data written, total) after every batch of rows.</param>
    /// <exception cref="ExpertScopeException">The destination exists and was not written by this writer or the quantize
    /// verb (without <see cref="SyntheticMixOptions.Overwrite"/>), or its folder has too little free space.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled; the temporary file is removed and the destination untouched.</exception>
    public static SyntheticMixSummary Write(SyntheticModelSpec spec, QuantizationTarget target, string path, SyntheticMixOptions? options = null, Action<long, long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(target);
        options ??= new SyntheticMixOptions();
        string full = Path.GetFullPath(path);
        if (File.Exists(full) && !options.Overwrite && !ModelQuantizer.WrittenByQuantize(full))
        {
            throw new ExpertScopeException($"{path}: the file exists and was not written by 'expertscope make-model --type <mix>' or 'quantize'; give --overwrite to replace it.");
        }

        var floats = spec with { ExpertTensorType = GgmlType.F32, DenseTensorType = GgmlType.F32 };
        SyntheticModelWriter.Validate(floats);
        var vocabulary = SyntheticModelWriter.BuildVocabulary(floats.VocabularySize);
        var tensors = SyntheticModelWriter.TensorPlan(floats, vocabulary.Tokens.Count);
        var plan = TensorTypeRules.Plan(tensors.Select(t => new TensorTypeRules.TensorShape(t.Name, t.Dimensions, t.Type)), target, spec.ExpertCount, spec.BlockCount);
        long total = tensors.Sum(t => StoredBytes(plan[t.Name].Type, t.Dimensions));

        string directory = Path.GetDirectoryName(full)!;
        long free = new DriveInfo(directory).AvailableFreeSpace;
        if (free < total)
        {
            // Refused up front: running out of space half-way through a multi-gigabyte write wastes an hour.
            throw new ExpertScopeException(string.Create(CultureInfo.InvariantCulture,
                $"{path}: writing this model as {target.Name} needs {total / 1e9:F1} GB, but {directory} has {free / 1e9:F1} GB free"));
        }

        var typeCounts = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var fallbacks = new List<QuantizeFallback>();
        GgufWriter.WriteAtomically(full, writer =>
        {
            // The float32 model's keys, then the three ModelQuantizer sets, in its order: the bytes must equal its output.
            SyntheticModelWriter.WriteMetadata(writer, floats, vocabulary);
            ModelQuantizer.WriteQuantizationKeys(writer, target);
            foreach (var tensor in tensors)
            {
                ModelQuantizer.AddPlannedTensor(writer, tensor.Name, tensor.Dimensions, plan[tensor.Name], typeCounts, fallbacks);
            }

            long done = 0;
            foreach (var tensor in tensors)
            {
                var stored = tensor with { Type = plan[tensor.Name].Type };
                writer.WriteTensorData(stream => WriteRows(stream, floats.Seed, stored, options, written =>
                {
                    done += written;
                    progress?.Invoke(done, total);
                }));
            }
        });

        return new SyntheticMixSummary(target.Name, new FileInfo(full).Length, typeCounts, fallbacks);
    }

    /// <summary>
    /// Tensor-data bytes of <paramref name="spec"/> as float32 and as <paramref name="target"/> (the result, tensor
    /// types as <see cref="TensorTypeRules.Plan"/> picks them), without writing.
    /// </summary>
    public static (long Float32Bytes, long TargetBytes) TensorBytes(SyntheticModelSpec spec, QuantizationTarget target)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(target);
        var floats = SyntheticModelWriter.TensorShapes(spec with { ExpertTensorType = GgmlType.F32, DenseTensorType = GgmlType.F32 });
        var plan = TensorTypeRules.Plan(floats, target, spec.ExpertCount, spec.BlockCount);
        return (floats.Sum(t => StoredBytes(GgmlType.F32, t.Dimensions)), floats.Sum(t => StoredBytes(plan[t.Name].Type, t.Dimensions)));
    }

    private static long StoredBytes(GgmlType type, long[] dimensions) =>
        GgmlTypes.Get(type).RowBytes(dimensions[0]) * dimensions.Skip(1).Aggregate(1L, (a, b) => a * b);

    // The rows of one tensor: the values SyntheticModelWriter draws for it (row r starts r * rowLength draws into the
    // tensor's generator), each encoded in the tensor's stored type. Only one row of floats per thread is in memory.
    private static void WriteRows(Stream destination, ulong seed, SyntheticModelWriter.PlannedTensor tensor, SyntheticMixOptions options, Action<long> reportWritten)
    {
        int rowLength = checked((int)tensor.Dimensions[0]);
        int rowBytes = checked((int)GgmlTypes.Get(tensor.Type).RowBytes(rowLength));
        long rows = tensor.RowCount;
        int batch = (int)Math.Clamp(BatchBytes / rowBytes, 1, rows);
        var generator = new SyntheticModelWriter.SplitMix64(seed ^ SyntheticModelWriter.Fnv1a(tensor.Name));
        var bytes = new byte[batch * (long)rowBytes];
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = options.ThreadCount ?? Environment.ProcessorCount, CancellationToken = options.Cancellation };
        for (long first = 0; first < rows; first += batch)
        {
            options.Cancellation.ThrowIfCancellationRequested();
            int count = (int)Math.Min(batch, rows - first);
            long firstRow = first;
            Parallel.For(0, count, parallel, () => new float[rowLength], (r, _, row) =>
            {
                var random = generator.Skip((firstRow + r) * rowLength);
                for (int i = 0; i < rowLength; i++)
                {
                    row[i] = tensor.Center + tensor.HalfWidth * (2f * random.NextFloat() - 1f);
                }

                RowEncoding.Encode(tensor.Type, row, bytes.AsSpan(r * rowBytes, rowBytes));
                return row;
            }, _ => { });
            destination.Write(bytes, 0, count * rowBytes);
            reportWritten(count * (long)rowBytes);
        }
    }
}

/// <summary>Permissions and resources of one <see cref="SyntheticMixWriter.Write"/>.</summary>
public sealed record SyntheticMixOptions
{
    /// <summary>Replace an existing destination that neither this writer nor the quantize verb wrote.</summary>
    public bool Overwrite { get; init; }

    /// <summary>Threads for generating and quantizing rows (default: all processors); the bytes do not depend on it.</summary>
    public int? ThreadCount { get; init; }

    /// <summary>Stops the write between batches of rows; nothing is left behind.</summary>
    public CancellationToken Cancellation { get; init; }
}

/// <summary>What <see cref="SyntheticMixWriter.Write"/> wrote.</summary>
/// <param name="Target">The target name.</param>
/// <param name="Bytes">File size.</param>
/// <param name="TensorsByType">How many tensors of each type the file holds.</param>
/// <param name="Fallbacks">Tensors whose row length forced another type.</param>
public sealed record SyntheticMixSummary(string Target, long Bytes, IReadOnlyDictionary<string, int> TensorsByType, IReadOnlyList<QuantizeFallback> Fallbacks);
