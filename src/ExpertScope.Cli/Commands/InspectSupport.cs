using System.Globalization;
using System.Text.Json;
using ExpertScope.Core;
using ExpertScope.Formats;
using ExpertScope.Formats.Gguf;
using ExpertScope.Kernels;
using ExpertScope.Models.Architectures;

namespace ExpertScope.Cli;

/// <summary>
/// What <c>inspect</c> says about running a file: every tensor type it holds (and whether the engine has kernels
/// for it), the architectures ExpertScope can run, and for an unsupported one the nearest supported architecture.
/// </summary>
internal static class InspectSupport
{
    /// <summary>One row per tensor type: tensors, parameters, bytes, kernels.</summary>
    public static InspectCommand.Section TensorTypes(ModelInfo info)
    {
        var section = new InspectCommand.Section("Tensor types", "type", "tensors", "parameters", "bytes", "kernels");
        foreach (var group in Groups(info))
        {
            section.Add(
                GgmlTypes.Get(group.Type).Name,
                group.Tensors.ToString("N0", CultureInfo.InvariantCulture),
                InspectCommand.Count(group.Parameters),
                InspectCommand.Bytes(group.Bytes),
                TypeKernels.TryGet(group.Type, out _) ? "yes" : "none (cannot run)");
        }

        return section;
    }

    /// <summary>Whether ExpertScope runs this file, and which architectures it runs.</summary>
    public static InspectCommand.Section Support(GgufFile file, ModelInfo info)
    {
        var section = new InspectCommand.Section("ExpertScope support", "key", "value");
        section.Add("this architecture", Verdict(file, info));
        var missing = MissingTypes(info);
        if (missing.Count > 0)
        {
            section.Add("tensor types without kernels", string.Join(", ", missing));
        }

        foreach (var architecture in ArchitectureRegistry.All)
        {
            section.Add("runs " + architecture.Name, architecture.Description);
        }

        return section;
    }

    /// <summary>The same as JSON properties: <c>tensor_types</c>, <c>support</c>.</summary>
    public static void WriteJson(Utf8JsonWriter w, GgufFile file, ModelInfo info)
    {
        w.WriteStartArray("tensor_types");
        foreach (var group in Groups(info))
        {
            w.WriteStartObject();
            w.WriteString("type", GgmlTypes.Get(group.Type).Name);
            w.WriteNumber("tensors", group.Tensors);
            w.WriteNumber("parameters", group.Parameters);
            w.WriteNumber("bytes", group.Bytes);
            w.WriteBoolean("kernels", TypeKernels.TryGet(group.Type, out _));
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartObject("support");
        bool supported = ArchitectureRegistry.IsSupported(info.Architecture);
        w.WriteBoolean("architecture_supported", supported);
        if (!supported)
        {
            var (nearest, difference) = ArchitectureRegistry.Nearest(info.Architecture, file.Tensors.Select(t => t.Name));
            w.WriteString("nearest_supported", nearest);
            w.WriteString("difference", difference);
        }

        w.WriteStartArray("types_without_kernels");
        foreach (string type in MissingTypes(info))
        {
            w.WriteStringValue(type);
        }

        w.WriteEndArray();
        w.WriteStartArray("supported_architectures");
        foreach (var architecture in ArchitectureRegistry.All)
        {
            w.WriteStringValue(architecture.Name);
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static string Verdict(GgufFile file, ModelInfo info)
    {
        if (ArchitectureRegistry.IsSupported(info.Architecture))
        {
            return $"{info.Architecture}: supported";
        }

        var (nearest, difference) = ArchitectureRegistry.Nearest(info.Architecture, file.Tensors.Select(t => t.Name));
        return $"{info.Architecture}: not supported; nearest supported: {nearest} ({difference})";
    }

    private static List<string> MissingTypes(ModelInfo info) =>
        [.. Groups(info).Where(g => !TypeKernels.TryGet(g.Type, out _)).Select(g => GgmlTypes.Get(g.Type).Name)];

    private static IEnumerable<(GgmlType Type, int Tensors, long Parameters, long Bytes)> Groups(ModelInfo info) =>
        info.Tensors
            .GroupBy(t => t.Info.Type)
            .OrderBy(g => g.Key)
            .Select(g => (g.Key, g.Count(), g.Sum(t => t.Info.ElementCount), g.Sum(t => t.Info.ByteSize)));
}
