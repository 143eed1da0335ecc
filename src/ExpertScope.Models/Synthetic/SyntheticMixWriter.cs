using ExpertScope.Core;
using ExpertScope.Models.Quantization;

namespace ExpertScope.Models.Synthetic;

/// <summary>
/// Writes a synthetic model as one of llama.cpp's K-quant mixes (<c>q4_K_M</c>, <c>q5_K_M</c>, <c>q6_K</c>…): the
/// float32 model first, then <see cref="ModelQuantizer"/> into the target, so the per-tensor types come from the one
/// port of llama.cpp's rules (<see cref="TensorTypeRules"/>) and equal what <c>quantize</c> makes of the same model.
/// </summary>
/// <remarks>The float32 model is a temporary file beside the output (about four bytes per weight), removed at the end.</remarks>
public static class SyntheticMixWriter
{
    /// <summary>Writes <paramref name="spec"/>'s weights, quantized as <paramref name="target"/>, to <paramref name="path"/>.</summary>
    /// <param name="spec">What to write; its tensor types are ignored (the float32 model is the source).</param>
    /// <param name="target">A K-quant mix.</param>
    /// <param name="path">Destination (overwritten).</param>
    /// <param name="progress">Called with (bytes written, total bytes) while the float32 model is written.</param>
    /// <exception cref="ExpertScopeException">The target is a single type rather than a mix.</exception>
    public static QuantizeSummary Write(SyntheticModelSpec spec, QuantizationTarget target, string path, Action<long, long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(target);
        if (target.Mix is null)
        {
            throw new ExpertScopeException($"'{target.Name}' is a single tensor type, not one of llama.cpp's K-quant mixes.");
        }

        var (floatBytes, mixBytes) = TensorBytes(spec, target);
        string floats = path + ".f32.partial";
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        long free = new DriveInfo(directory).AvailableFreeSpace;
        if (free < floatBytes + mixBytes)
        {
            // Refused up front: running out of space half-way through a float32 intermediate of this size wastes hours.
            throw new ExpertScopeException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{path}: writing this model as {target.Name} needs {floatBytes / 1e9:F1} GB for the float32 intermediate beside it plus {mixBytes / 1e9:F1} GB for the result, but {directory} has {free / 1e9:F1} GB free"));
        }

        try
        {
            SyntheticModelWriter.Write(spec with { ExpertTensorType = GgmlType.F32, DenseTensorType = GgmlType.F32 }, floats, progress);
            return ModelQuantizer.Write(floats, target, path, new QuantizeOptions { Overwrite = true });
        }
        finally
        {
            File.Delete(floats);
        }
    }

    /// <summary>
    /// Tensor-data bytes of <paramref name="spec"/> as float32 (the intermediate <see cref="Write"/> needs) and as
    /// <paramref name="target"/> (the result, tensor types as <see cref="TensorTypeRules.Plan"/> picks them), without writing.
    /// </summary>
    public static (long Float32Bytes, long TargetBytes) TensorBytes(SyntheticModelSpec spec, QuantizationTarget target)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(target);
        var floats = SyntheticModelWriter.TensorShapes(spec with { ExpertTensorType = GgmlType.F32, DenseTensorType = GgmlType.F32 });
        var plan = TensorTypeRules.Plan(floats, target, spec.ExpertCount, spec.BlockCount);
        long Bytes(GgmlType type, long[] dimensions) => GgmlTypes.Get(type).RowBytes(dimensions[0]) * dimensions.Skip(1).Aggregate(1L, (a, b) => a * b);
        return (floats.Sum(t => Bytes(GgmlType.F32, t.Dimensions)), floats.Sum(t => Bytes(plan[t.Name].Type, t.Dimensions)));
    }
}
