using ExpertScope.Formats.Gguf;

namespace ExpertScope.Cli.Tests.Reliability;

/// <summary>Copies a valid GGUF with some metadata values replaced (or removed) and tensors optionally added, so that
/// tests can plant hostile values in an otherwise well-formed model.</summary>
internal static class GgufRewrite
{
    /// <summary>Writes <paramref name="target"/>: <paramref name="source"/> with <paramref name="changes"/> applied
    /// (a null value removes the key), plus a copy of tensor <paramref name="duplicateTensor"/> under a new name.</summary>
    public static void Write(
        string source,
        string target,
        IReadOnlyDictionary<string, GgufValue?> changes,
        (string From, string To)? duplicateTensor = null)
    {
        using var file = GgufFile.Open(source);
        using var writer = GgufWriter.Create(target);
        foreach (var (key, value) in file.Metadata)
        {
            if (!changes.TryGetValue(key, out var changed))
            {
                writer.SetMetadata(key, value);
            }
            else if (changed is not null)
            {
                writer.SetMetadata(key, changed);
            }
        }

        foreach (var (key, value) in changes)
        {
            if (value is not null && !file.Metadata.ContainsKey(key))
            {
                writer.SetMetadata(key, value);
            }
        }

        var tensors = file.Tensors.ToList();
        foreach (var tensor in tensors)
        {
            writer.AddTensor(tensor.Name, tensor.Type, tensor.Dimensions);
        }

        var extra = duplicateTensor is { } d ? file.GetTensor(d.From) : null;
        if (extra is not null)
        {
            writer.AddTensor(duplicateTensor!.Value.To, extra.Type, extra.Dimensions);
        }

        writer.WriteHeader();
        foreach (var tensor in tensors)
        {
            writer.WriteTensorData(file.GetTensorData(tensor));
        }

        if (extra is not null)
        {
            writer.WriteTensorData(file.GetTensorData(extra));
        }

        writer.Finish();
    }
}
