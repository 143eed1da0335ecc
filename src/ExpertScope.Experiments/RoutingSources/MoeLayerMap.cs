using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;

namespace ExpertScope.Experiments.RoutingSources;

/// <summary>
/// Which GGUF blocks are MoE blocks, in order: a server numbers its MoE layers 0, 1, … and skips dense blocks
/// (DeepSeek-V3/R1's first three, <c>first_k_dense_replace</c>), so layer i of a server response is block
/// <see cref="Blocks"/>[i]. Traces always carry block indices.
/// </summary>
public sealed class MoeLayerMap
{
    /// <summary>Creates the map from the MoE block indices, ascending.</summary>
    public MoeLayerMap(IReadOnlyList<int> blocks, string origin)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        if (blocks.Count == 0 || blocks.Zip(blocks.Skip(1)).Any(pair => pair.Second <= pair.First) || blocks[0] < 0)
        {
            throw new ExpertScopeException($"MoE blocks must be non-negative and ascending, got [{string.Join(", ", blocks)}] ({origin})");
        }

        Blocks = [.. blocks];
        Origin = origin;
    }

    /// <summary>Block index of each MoE layer.</summary>
    public IReadOnlyList<int> Blocks { get; }

    /// <summary>Where the map came from (<c>--first-moe-block 3</c>, a GGUF file name), for the trace and messages.</summary>
    public string Origin { get; }

    /// <summary>The first MoE block.</summary>
    public int FirstBlock => Blocks[0];

    /// <summary>The map as the trace records it: <c>3-60</c> style ranges.</summary>
    public override string ToString() => string.Join(',', Ranges());

    /// <summary>Contiguous MoE blocks from <paramref name="firstBlock"/> (the <c>--first-moe-block N</c> option).</summary>
    public static MoeLayerMap Contiguous(int firstBlock, int layerCount) =>
        firstBlock < 0 || layerCount < 1
            ? throw new ExpertScopeException($"--first-moe-block must be ≥ 0 and the layer count ≥ 1, got {firstBlock} and {layerCount}")
            : new MoeLayerMap([.. Enumerable.Range(firstBlock, layerCount)], "--first-moe-block " + firstBlock.ToString(CultureInfo.InvariantCulture));

    /// <summary>The blocks that hold a router (<c>blk.N.ffn_gate_inp.weight</c>) in a GGUF.</summary>
    /// <exception cref="ExpertScopeException">The file has no router tensor.</exception>
    public static MoeLayerMap FromGguf(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var blocks = new SortedSet<int>();
        foreach (var tensor in file.Tensors)
        {
            var parts = tensor.Name.Split('.');
            if (parts.Length == 4 && parts[0] == "blk" && parts[2] == "ffn_gate_inp" && parts[3] == "weight"
                && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var block))
            {
                blocks.Add(block);
            }
        }

        return blocks.Count == 0
            ? throw new ExpertScopeException($"{file.FilePath}: no router tensor (blk.N.ffn_gate_inp.weight); pass --first-moe-block N instead")
            : new MoeLayerMap([.. blocks], Path.GetFileName(file.FilePath));
    }

    /// <summary>Checks a server's MoE layer count against the map.</summary>
    /// <exception cref="ExpertScopeException">The counts differ; the message names the prompt.</exception>
    public void CheckLayerCount(int serverLayers, string prompt)
    {
        if (serverLayers != Blocks.Count)
        {
            throw new ExpertScopeException(
                $"{prompt}: the server returned {serverLayers} MoE layers, but {Origin} gives {Blocks.Count} MoE blocks ({this}); is it the same model?");
        }
    }

    private IEnumerable<string> Ranges()
    {
        var start = 0;
        for (var i = 1; i <= Blocks.Count; i++)
        {
            if (i == Blocks.Count || Blocks[i] != Blocks[i - 1] + 1)
            {
                yield return start == i - 1
                    ? Blocks[start].ToString(CultureInfo.InvariantCulture)
                    : string.Create(CultureInfo.InvariantCulture, $"{Blocks[start]}-{Blocks[i - 1]}");
                start = i;
            }
        }
    }
}
