using System.Globalization;
using System.Text.RegularExpressions;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;

namespace ExpertScope.Experiments.Pruning;

/// <summary>What <see cref="ExpertPruner.Write"/> did.</summary>
/// <param name="ExpertCount">Experts per MoE block before.</param>
/// <param name="KeptCount">Experts per MoE block after.</param>
/// <param name="ExpertUsedCount">k before.</param>
/// <param name="NewExpertUsedCount">k after (clamped to the kept count).</param>
/// <param name="SlicedTensors">Tensors sliced along the expert dimension.</param>
/// <param name="BytesBefore">Size of the source file.</param>
/// <param name="BytesAfter">Size of the written file.</param>
public sealed record PruneSummary(int ExpertCount, int KeptCount, int ExpertUsedCount, int NewExpertUsedCount, int SlicedTensors, long BytesBefore, long BytesAfter);

/// <summary>
/// Writes a smaller GGUF with routed experts removed: every per-expert tensor of a MoE block (<c>ffn_*_exps</c>, the
/// router <c>ffn_gate_inp</c>, the selection bias <c>exp_probs_b</c>) is sliced along its last ggml dimension (the
/// expert dimension, ne[2] for expert matrices, ne[1] for the router, ne[0] for the bias), <c>{arch}.expert_count</c>
/// is set to the kept count and <c>{arch}.expert_used_count</c> clamped to it. Tensors are streamed one expert slab at a
/// time from the memory-mapped source, so the model is never held in memory.
/// The result computes exactly what the source computes under <c>RemoveExperts</c> of the same experts (and, for a
/// sigmoid router, under <c>DisableExperts</c>).
/// </summary>
public static partial class ExpertPruner
{
    /// <summary>
    /// Checks a keep plan against the source and returns the new k; throws with a message naming the problem.
    /// </summary>
    /// <param name="source">The source model.</param>
    /// <param name="keep">Per MoE block, the experts to keep (any order; stored ascending).</param>
    /// <exception cref="ExpertScopeException">Uneven kept counts, unknown experts, or DeepSeek groups that would not stay consistent.</exception>
    public static int Validate(GgufFile source, IReadOnlyDictionary<int, IReadOnlyList<int>> keep)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(keep);
        string arch = source.Architecture ?? throw new ExpertScopeException($"{source.FilePath}: no general.architecture.");
        int experts = (int)(source.TryGetInteger(arch + ".expert_count") ?? throw new ExpertScopeException($"{source.FilePath}: no {arch}.expert_count; not a MoE model."));
        int used = (int)(source.TryGetInteger(arch + ".expert_used_count") ?? throw new ExpertScopeException($"{source.FilePath}: no {arch}.expert_used_count."));
        var moeLayers = MoeLayers(source);
        foreach (int layer in moeLayers)
        {
            if (!keep.ContainsKey(layer))
            {
                throw new ExpertScopeException($"the keep list names no experts for MoE block {layer}; every MoE block needs its kept experts.");
            }
        }

        int? kept = null;
        foreach (var (layer, list) in keep)
        {
            if (!moeLayers.Contains(layer))
            {
                throw new ExpertScopeException($"block {layer} of {source.FilePath} has no routed experts.");
            }

            if (list.Distinct().Count() != list.Count || list.Any(e => e < 0 || e >= experts))
            {
                throw new ExpertScopeException($"block {layer}: kept experts must be distinct indices in 0..{experts - 1}.");
            }

            if (kept is { } k && k != list.Count)
            {
                throw new ExpertScopeException(
                    $"blocks keep different numbers of experts ({k} and {list.Count} in block {layer}); GGUF stores one {arch}.expert_count for all blocks, so keep the same number in every MoE block.");
            }

            kept = list.Count;
        }

        int keptCount = kept ?? throw new ExpertScopeException("the keep list is empty.");
        if (keptCount < 1)
        {
            throw new ExpertScopeException("keep at least one expert per block.");
        }

        int newUsed = Math.Min(used, keptCount);
        int groups = (int)(source.TryGetInteger(arch + ".expert_group_count") ?? 0);
        int groupsUsed = (int)(source.TryGetInteger(arch + ".expert_group_used_count") ?? 0);
        if (groups > 1)
        {
            int perGroup = experts / groups;
            if (keptCount % groups != 0)
            {
                throw new ExpertScopeException(
                    $"{arch}.expert_group_count is {groups}: the kept count {keptCount} must be a multiple of it so that every group keeps the same number of experts.");
            }

            int keptPerGroup = keptCount / groups;
            if (keptPerGroup < Math.Min(2, perGroup))
            {
                throw new ExpertScopeException(
                    $"group-limited routing scores a group by its two best experts: keep at least 2 experts in each of the {groups} groups (keeping {keptPerGroup}).");
            }

            foreach (var (layer, list) in keep)
            {
                for (int g = 0; g < groups; g++)
                {
                    int inGroup = list.Count(e => e / perGroup == g);
                    if (inGroup != keptPerGroup)
                    {
                        throw new ExpertScopeException(
                            $"block {layer} keeps {inGroup} experts of group {g} (experts {g * perGroup}..{(g + 1) * perGroup - 1}); with {groups} groups each group must keep {keptPerGroup} so the groups stay aligned.");
                    }
                }
            }

            if (newUsed > groupsUsed * keptPerGroup)
            {
                throw new ExpertScopeException(
                    $"k = {newUsed} experts cannot be chosen from {groupsUsed} kept groups of {keptPerGroup} experts; keep more experts per group.");
            }
        }

        return newUsed;
    }

    /// <summary>Writes the pruned model to <paramref name="outputPath"/> (atomically: a temporary file is renamed at the end).</summary>
    /// <param name="sourcePath">The source GGUF.</param>
    /// <param name="keep">Per MoE block, the experts to keep.</param>
    /// <param name="outputPath">The new GGUF.</param>
    /// <exception cref="ExpertScopeException">The plan is invalid (see <see cref="Validate"/>).</exception>
    public static PruneSummary Write(string sourcePath, IReadOnlyDictionary<int, IReadOnlyList<int>> keep, string outputPath)
    {
        ArgumentNullException.ThrowIfNull(keep);
        using var source = GgufFile.Open(sourcePath);
        int newUsed = Validate(source, keep);
        string arch = source.Architecture!;
        int experts = (int)source.GetInteger(arch + ".expert_count");
        int used = (int)source.GetInteger(arch + ".expert_used_count");
        int keptCount = keep.Values.First().Count;
        var sorted = keep.ToDictionary(p => p.Key, p => p.Value.Order().ToArray());

        string full = Path.GetFullPath(outputPath);
        if (string.Equals(full, Path.GetFullPath(sourcePath), StringComparison.Ordinal))
        {
            throw new ExpertScopeException($"{outputPath}: the pruned model must not overwrite its source.");
        }

        int sliced = 0;
        GgufWriter.WriteAtomically(full, writer =>
        {
            foreach (var (key, value) in source.Metadata)
            {
                writer.SetMetadata(key, key == arch + ".expert_count" ? WithInteger(value, keptCount)
                    : key == arch + ".expert_used_count" ? WithInteger(value, newUsed)
                    : value);
            }

            var plans = new List<(GgufTensorInfo Tensor, int[]? Kept)>();
            foreach (var tensor in source.Tensors)
            {
                int[]? kept = null;
                if (ExpertTensor(tensor.Name) is { } layer && sorted.TryGetValue(layer, out var list))
                {
                    long last = tensor.Dimensions[^1];
                    if (last != experts)
                    {
                        throw new ExpertScopeException($"{sourcePath}: tensor {tensor.Name} has {last} entries along its last dimension, not the {experts} experts.");
                    }

                    kept = list;
                    sliced++;
                }

                var dims = tensor.Dimensions.ToArray();
                if (kept is not null)
                {
                    dims[^1] = kept.Length;
                }

                writer.AddTensor(tensor.Name, tensor.Type, dims);
                plans.Add((tensor, kept));
            }

            foreach (var (tensor, kept) in plans)
            {
                if (kept is null)
                {
                    writer.WriteTensorData(stream => CopyRange(source, tensor, 0, tensor.ByteSize, stream));
                    continue;
                }

                long slab = tensor.ByteSize / experts;
                writer.WriteTensorData(stream =>
                {
                    foreach (int e in kept)
                    {
                        CopyRange(source, tensor, e * slab, slab, stream);
                    }
                });
            }
        });

        return new PruneSummary(experts, keptCount, used, newUsed, sliced, source.Length, new FileInfo(full).Length);
    }

    /// <summary>The MoE blocks of a model: those with a router tensor <c>blk.N.ffn_gate_inp.weight</c>.</summary>
    public static SortedSet<int> MoeLayers(GgufFile source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var layers = new SortedSet<int>();
        foreach (var tensor in source.Tensors)
        {
            var match = RouterName().Match(tensor.Name);
            if (match.Success)
            {
                layers.Add(int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture));
            }
        }

        return layers;
    }

    /// <summary>The block of a per-routed-expert tensor (<c>ffn_*_exps*</c>, <c>ffn_gate_inp.*</c>, <c>exp_probs_b*</c>), or null.</summary>
    internal static int? ExpertTensor(string name)
    {
        var match = ExpertTensorName().Match(name);
        return match.Success ? int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : null;
    }

    private static void CopyRange(GgufFile source, GgufTensorInfo tensor, long start, long length, Stream destination)
    {
        const int Chunk = 1 << 24;
        for (long done = 0; done < length; done += Chunk)
        {
            int n = (int)Math.Min(Chunk, length - done);
            destination.Write(source.GetTensorData(tensor, start + done, n));
        }
    }

    private static GgufValue WithInteger(GgufValue original, long value) => original.Type switch
    {
        GgufValueType.UInt8 => GgufValue.Create((byte)value),
        GgufValueType.Int8 => GgufValue.Create((sbyte)value),
        GgufValueType.UInt16 => GgufValue.Create((ushort)value),
        GgufValueType.Int16 => GgufValue.Create((short)value),
        GgufValueType.UInt32 => GgufValue.Create((uint)value),
        GgufValueType.Int32 => GgufValue.Create((int)value),
        GgufValueType.UInt64 => GgufValue.Create((ulong)value),
        GgufValueType.Int64 => GgufValue.Create(value),
        _ => throw new ExpertScopeException($"expert counts stored as {original.Type} cannot be rewritten."),
    };

    [GeneratedRegex(@"^blk\.(\d+)\.ffn_gate_inp\.weight$")]
    private static partial Regex RouterName();

    [GeneratedRegex(@"^blk\.(\d+)\.(ffn_[a-z_]+_exps|ffn_gate_inp|exp_probs_b)\.[a-z_]+$")]
    private static partial Regex ExpertTensorName();
}
