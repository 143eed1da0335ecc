using ExpertScope.Models;
using ExpertScope.Models.Routing;

namespace ExpertScope.Experiments.Pruning;

/// <summary>Which tokens of each forward pass an <see cref="ExpertActivityRecorder"/> counts.</summary>
public enum TokenScope
{
    /// <summary>Every token of every batch.</summary>
    AllTokens,

    /// <summary>Only the last token of each batch (the prompt's last token when a prompt is run in one call).</summary>
    LastToken,
}

/// <summary>
/// An observer that accumulates, per (block, routed expert): how often the expert is selected, the sum of its final
/// mixing weights g, optionally the sum of g·‖E(h)‖ (the norm of its weighted output, the output-aware usage score of
/// EASY-EP-style pruning), and optionally the largest |value| of its unweighted down-projection output.
/// Blocks without a router are left at zero.
/// </summary>
public sealed class ExpertActivityRecorder : IRouterObserver
{
    private readonly bool _outputNorms;
    private readonly bool _downMaxima;
    private readonly TokenScope _scope;
    private readonly int[][] _lastExperts;
    private readonly int[] _lastK;

    /// <summary>Creates a recorder shaped after <paramref name="model"/>.</summary>
    /// <param name="model">The model whose blocks are observed.</param>
    /// <param name="scope">Which tokens count.</param>
    /// <param name="outputNorms">Also accumulate g·‖E(h)‖ (needs the <c>ffn_moe_weighted</c> site).</param>
    /// <param name="downMaxima">Also record the largest |unweighted down-projection output| (the <c>ffn_moe_down</c> site).</param>
    public ExpertActivityRecorder(MoeModel model, TokenScope scope = TokenScope.AllTokens, bool outputNorms = false, bool downMaxima = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        LayerCount = model.Blocks.Count;
        ExpertCount = model.Blocks.Select(b => b.Moe?.Router.Config.ExpertCount ?? 0).DefaultIfEmpty(0).Max();
        IsMoeLayer = [.. model.Blocks.Select(b => b.Moe is not null)];
        _scope = scope;
        _outputNorms = outputNorms;
        _downMaxima = downMaxima;
        Tokens = new long[LayerCount];
        Selections = new long[LayerCount, ExpertCount];
        WeightSums = new double[LayerCount, ExpertCount];
        OutputNormSums = new double[LayerCount, ExpertCount];
        DownMaxima = new float[LayerCount, ExpertCount];
        _lastExperts = new int[LayerCount][];
        _lastK = new int[LayerCount];
    }

    /// <summary>Blocks of the model.</summary>
    public int LayerCount { get; }

    /// <summary>Routed experts per MoE block (the largest over blocks).</summary>
    public int ExpertCount { get; }

    /// <summary>Per block: true if it has a router.</summary>
    public IReadOnlyList<bool> IsMoeLayer { get; }

    /// <summary>Tokens counted per block.</summary>
    public long[] Tokens { get; }

    /// <summary>Tokens that selected each expert (with a non-zero weight), <c>[layer, expert]</c>.</summary>
    public long[,] Selections { get; }

    /// <summary>Sum of final mixing weights, <c>[layer, expert]</c>.</summary>
    public double[,] WeightSums { get; }

    /// <summary>Sum of ‖g·E(h)‖₂ over counted tokens, <c>[layer, expert]</c> (zero unless requested).</summary>
    public double[,] OutputNormSums { get; }

    /// <summary>Largest |unweighted down-projection output| over counted tokens, <c>[layer, expert]</c> (zero unless requested).</summary>
    public float[,] DownMaxima { get; }

    /// <summary>Selection frequency of an expert in a block (0 when no token was counted).</summary>
    public double Frequency(int layer, int expert) => Tokens[layer] == 0 ? 0 : (double)Selections[layer, expert] / Tokens[layer];

    /// <inheritdoc/>
    public bool Wants(HookSite site) => site.Kind switch
    {
        HookKind.Router => true,
        HookKind.WeightedExpertOutputs => _outputNorms,
        HookKind.ExpertDownOutputs => _downMaxima,
        _ => false,
    };

    /// <inheritdoc/>
    public void Observe(HookSite site, in RouterView view)
    {
        int layer = site.Layer;
        int k = view.SelectedCount;
        _lastK[layer] = k;
        _lastExperts[layer] = view.SelectedExperts.ToArray();
        var (first, end) = Range(view.TokenCount);
        Tokens[layer] += end - first;
        for (int t = first; t < end; t++)
        {
            var experts = view.ExpertsOf(t);
            var weights = view.WeightsOf(t);
            for (int slot = 0; slot < k; slot++)
            {
                if (weights[slot] != 0.0f)
                {
                    Selections[layer, experts[slot]]++;
                    WeightSums[layer, experts[slot]] += weights[slot];
                }
            }
        }
    }

    /// <inheritdoc/>
    public void Observe(HookSite site, in ActivationView view)
    {
        int layer = site.Layer;
        int k = _lastK[layer];
        var experts = _lastExperts[layer];
        int width = view.Width / k;
        var (first, end) = Range(view.TokenCount);
        for (int t = first; t < end; t++)
        {
            for (int slot = 0; slot < k; slot++)
            {
                var values = view.Values.Slice((t * k + slot) * width, width);
                int expert = experts[t * k + slot];
                if (site.Kind == HookKind.WeightedExpertOutputs)
                {
                    double squares = 0;
                    foreach (float v in values)
                    {
                        squares += (double)v * v;
                    }

                    OutputNormSums[layer, expert] += Math.Sqrt(squares);
                }
                else
                {
                    float max = DownMaxima[layer, expert];
                    foreach (float v in values)
                    {
                        max = MathF.Max(max, MathF.Abs(v));
                    }

                    DownMaxima[layer, expert] = max;
                }
            }
        }
    }

    /// <summary>Sets every count, sum and maximum back to zero (to record the next work unit on its own).</summary>
    public void Clear()
    {
        Array.Clear(Tokens);
        Array.Clear(Selections);
        Array.Clear(WeightSums);
        Array.Clear(OutputNormSums);
        Array.Clear(DownMaxima);
    }

    /// <summary>
    /// Everything recorded so far as base-64 text (exact bits), so a run can journal one work unit's activity and a
    /// resumed run can add it back with <see cref="Add(string)"/> instead of running the unit again.
    /// </summary>
    public string Serialize()
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer))
        {
            writer.Write(LayerCount);
            writer.Write(ExpertCount);
            for (int layer = 0; layer < LayerCount; layer++)
            {
                writer.Write(Tokens[layer]);
                for (int e = 0; e < ExpertCount; e++)
                {
                    writer.Write(Selections[layer, e]);
                    writer.Write(WeightSums[layer, e]);
                    writer.Write(OutputNormSums[layer, e]);
                    writer.Write(DownMaxima[layer, e]);
                }
            }
        }

        return Convert.ToBase64String(buffer.ToArray());
    }

    /// <summary>
    /// Adds activity saved by <see cref="Serialize"/> (of a recorder of the same shape): counts and sums are added,
    /// maxima combined. Adding units in the same order always gives the same bits.
    /// </summary>
    /// <exception cref="Core.ExpertScopeException">The text is not a saved recorder of this shape.</exception>
    public void Add(string serialized)
    {
        ArgumentNullException.ThrowIfNull(serialized);
        try
        {
            using var reader = new BinaryReader(new MemoryStream(Convert.FromBase64String(serialized)));
            if (reader.ReadInt32() != LayerCount || reader.ReadInt32() != ExpertCount)
            {
                throw new Core.ExpertScopeException("saved expert activity has another shape than this model (was the run folder made with another model?)");
            }

            for (int layer = 0; layer < LayerCount; layer++)
            {
                Tokens[layer] += reader.ReadInt64();
                for (int e = 0; e < ExpertCount; e++)
                {
                    Selections[layer, e] += reader.ReadInt64();
                    WeightSums[layer, e] += reader.ReadDouble();
                    OutputNormSums[layer, e] += reader.ReadDouble();
                    DownMaxima[layer, e] = MathF.Max(DownMaxima[layer, e], reader.ReadSingle());
                }
            }
        }
        catch (Exception e) when (e is FormatException or EndOfStreamException)
        {
            throw new Core.ExpertScopeException("saved expert activity is damaged: " + e.Message, e);
        }
    }

    private (int First, int End) Range(int tokenCount) =>
        _scope == TokenScope.LastToken ? (tokenCount - 1, tokenCount) : (0, tokenCount);
}
