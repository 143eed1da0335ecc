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

        string floats = path + ".f32.partial";
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
}
