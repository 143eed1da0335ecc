using System.Buffers;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;

namespace ExpertScope.Models.Synthetic;

/// <summary>
/// Writes the random-weight twin of a model: the same metadata (tokenizer included), tensor names, shapes and types,
/// with weights drawn as a model is initialised before training, so every analysis can be run on both and "is this
/// structure or chance?" has an answer. The initialisation is GPT-2's and OLMo's (the recipe the trained test model
/// used): matrices N(0, 0.02²); the projections that write into the residual stream (<c>attn_output</c>,
/// <c>ffn_down*</c>) N(0, (0.02/√(2·block_count))²); norm weights 1; other one-dimensional tensors (biases, norm
/// biases, selection biases) 0. RoPE frequency factors (<c>rope_factors_long/short</c>, <c>rope_freqs</c>) are part of
/// the position encoding, not trained weights, and are copied unchanged.
/// </summary>
public static class RandomTwinWriter
{
    /// <summary>The standard deviation of the matrices.</summary>
    public const double StandardDeviation = 0.02;

    /// <summary>Writes the twin of <paramref name="sourcePath"/> to <paramref name="path"/> (atomically); returns the tensor count.</summary>
    /// <exception cref="ExpertScopeException">A tensor's type has no quantizer here, or the model has no block count.</exception>
    public static int Write(string sourcePath, string path, ulong seed)
    {
        using var source = GgufFile.Open(sourcePath);
        string arch = source.Architecture ?? throw new ExpertScopeException($"{sourcePath}: no general.architecture.");
        long blocks = source.TryGetInteger(arch + ".block_count") ?? throw new ExpertScopeException($"{sourcePath}: no {arch}.block_count.");
        if (string.Equals(Path.GetFullPath(sourcePath), Path.GetFullPath(path), StringComparison.Ordinal))
        {
            throw new ExpertScopeException($"{path}: the twin must not overwrite its source.");
        }

        double residualStd = StandardDeviation / Math.Sqrt(2.0 * Math.Max(1, blocks));
        string temporary = path + ".partial";
        try
        {
            using (var writer = GgufWriter.Create(temporary))
            {
                foreach (var (key, value) in source.Metadata)
                {
                    writer.SetMetadata(key, value);
                }

                // The name marks the twin as random weights, so every report on it carries the random-weights banner.
                writer.SetMetadata("general.name", GgufValue.Create(TwinName(source.TryGetString("general.name"))));

                foreach (var tensor in source.Tensors)
                {
                    writer.AddTensor(tensor.Name, tensor.Type, tensor.Dimensions);
                }

                foreach (var tensor in source.Tensors)
                {
                    if (IsPositionEncoding(tensor.Name))
                    {
                        byte[] original = source.GetTensorData(tensor).ToArray();
                        writer.WriteTensorData(stream => stream.Write(original));
                        continue;
                    }

                    double std = tensor.Name.Contains("attn_output", StringComparison.Ordinal) || tensor.Name.Contains("ffn_down", StringComparison.Ordinal) ? residualStd : StandardDeviation;
                    bool vector = tensor.RowCount == 1;
                    float constant = tensor.Name.EndsWith("norm.weight", StringComparison.Ordinal) ? 1f : 0f;
                    writer.WriteTensorData(stream => WriteRows(stream, tensor, vector ? null : std, constant, seed));
                }

                writer.Finish();
            }
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }

        File.Move(temporary, path, overwrite: true);
        return source.Tensors.Count;
    }

    /// <summary><c>general.name</c> of a twin: the source's name marked as random weights (what the reports test for).</summary>
    public static string TwinName(string? sourceName) => (string.IsNullOrWhiteSpace(sourceName) ? "model" : sourceName) + " (random-weight twin)";

    private static bool IsPositionEncoding(string name) =>
        name.StartsWith("rope_factors_", StringComparison.Ordinal) || name.StartsWith("rope_freqs", StringComparison.Ordinal);

    private static void WriteRows(Stream destination, GgufTensorInfo tensor, double? std, float constant, ulong seed)
    {
        int rowLength = checked((int)tensor.RowLength);
        int rowBytes = checked((int)tensor.RowBytes);
        var random = new SyntheticModelWriter.SplitMix64(seed ^ SyntheticModelWriter.Fnv1a(tensor.Name));
        float[] row = ArrayPool<float>.Shared.Rent(rowLength);
        byte[] encoded = ArrayPool<byte>.Shared.Rent(rowBytes);
        try
        {
            for (long r = 0; r < tensor.RowCount; r++)
            {
                for (int i = 0; i < rowLength; i++)
                {
                    // Box-Muller: two uniforms give one standard normal (1 - u keeps the logarithm finite).
                    row[i] = std is { } s
                        ? (float)(s * Math.Sqrt(-2.0 * Math.Log(1.0 - random.NextFloat())) * Math.Cos(2.0 * Math.PI * random.NextFloat()))
                        : constant;
                }

                RowEncoding.Encode(tensor.Type, row.AsSpan(0, rowLength), encoded.AsSpan(0, rowBytes));
                destination.Write(encoded, 0, rowBytes);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(row);
            ArrayPool<byte>.Shared.Return(encoded);
        }
    }
}
