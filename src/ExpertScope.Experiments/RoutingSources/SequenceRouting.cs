using ExpertScope.Core;
using ExpertScope.Experiments.Storage;
using ExpertScope.Models.Routing;

namespace ExpertScope.Experiments.RoutingSources;

/// <summary>What a routing source can give besides the selected expert ids.</summary>
/// <param name="Weights">Mixing weights and selection scores of the selected experts.</param>
/// <param name="Probabilities">The full router distribution over the routed experts.</param>
public readonly record struct RoutingDetail(bool Weights, bool Probabilities)
{
    /// <summary>Everything: the in-process engine.</summary>
    public static RoutingDetail Full { get; } = new(true, true);

    /// <summary>Expert ids only: what vLLM and SGLang return.</summary>
    public static RoutingDetail IdsOnly { get; } = new(false, false);
}

/// <summary>
/// The routing of one prompt: per MoE block (GGUF block index) and position, the selected experts in rank order and,
/// when the source has them (<see cref="Detail"/>), their weights, scores and the router distribution.
/// </summary>
public sealed class SequenceRouting
{
    private readonly int[][] _experts;
    private readonly float[][]? _weights;
    private readonly float[][]? _scores;
    private readonly float[][]? _probabilities;

    /// <summary>Creates the routing from per-layer arrays laid out <c>[position, rank]</c> (probabilities <c>[position, expert]</c>).</summary>
    /// <param name="layers">MoE block indices, ascending.</param>
    /// <param name="positionCount">Positions routed.</param>
    /// <param name="topK">Experts per token and layer.</param>
    /// <param name="expertCount">Routed experts per layer.</param>
    /// <param name="experts">Per layer, <c>[positionCount × topK]</c> expert ids.</param>
    /// <param name="weights">Per layer mixing weights, or null (ids only).</param>
    /// <param name="scores">Per layer selection scores, or null.</param>
    /// <param name="probabilities">Per layer router distributions <c>[positionCount × expertCount]</c>, or null.</param>
    public SequenceRouting(
        IReadOnlyList<int> layers, int positionCount, int topK, int expertCount, int[][] experts,
        float[][]? weights = null, float[][]? scores = null, float[][]? probabilities = null)
    {
        ArgumentNullException.ThrowIfNull(layers);
        ArgumentNullException.ThrowIfNull(experts);
        if (experts.Length != layers.Count || experts.Any(layer => layer.Length != positionCount * topK))
        {
            throw new ArgumentException($"Expected {layers.Count} layers of {positionCount} × {topK} expert ids.", nameof(experts));
        }

        if ((weights is null) != (scores is null))
        {
            throw new ArgumentException("Weights and scores come together.", nameof(scores));
        }

        Layers = [.. layers];
        PositionCount = positionCount;
        TopK = topK;
        ExpertCount = expertCount;
        _experts = experts;
        _weights = weights;
        _scores = scores;
        _probabilities = probabilities;
    }

    /// <summary>MoE block indices (GGUF <c>blk.N</c>), ascending.</summary>
    public IReadOnlyList<int> Layers { get; }

    /// <summary>Positions routed.</summary>
    public int PositionCount { get; }

    /// <summary>Experts selected per token and layer.</summary>
    public int TopK { get; }

    /// <summary>Routed experts per layer.</summary>
    public int ExpertCount { get; }

    /// <summary>What the routing holds besides expert ids.</summary>
    public RoutingDetail Detail => new(_weights is not null, _probabilities is not null);

    /// <summary>Selected experts of layer index <paramref name="layerIndex"/> (into <see cref="Layers"/>) at a position, best first.</summary>
    public ReadOnlySpan<int> ExpertsAt(int layerIndex, int position) => _experts[layerIndex].AsSpan(position * TopK, TopK);

    /// <summary>Their mixing weights (empty when the source gave ids only).</summary>
    public ReadOnlySpan<float> WeightsAt(int layerIndex, int position) =>
        _weights is null ? [] : _weights[layerIndex].AsSpan(position * TopK, TopK);

    /// <summary>Their selection scores (empty when the source gave ids only).</summary>
    public ReadOnlySpan<float> ScoresAt(int layerIndex, int position) =>
        _scores is null ? [] : _scores[layerIndex].AsSpan(position * TopK, TopK);

    /// <summary>The router distribution (empty when the source gave none).</summary>
    public ReadOnlySpan<float> ProbabilitiesAt(int layerIndex, int position) =>
        _probabilities is null ? [] : _probabilities[layerIndex].AsSpan(position * ExpertCount, ExpertCount);

    /// <summary>The first <paramref name="positions"/> positions (causal attention: a prefix's routing is the same in a longer prompt).</summary>
    public SequenceRouting Prefix(int positions)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(positions, PositionCount);
        if (positions == PositionCount)
        {
            return this;
        }

        static float[][]? Cut(float[][]? arrays, int length) => arrays?.Select(layer => layer[..length]).ToArray();
        return new SequenceRouting(Layers, positions, TopK, ExpertCount, [.. _experts.Select(layer => layer[..(positions * TopK)])],
            Cut(_weights, positions * TopK), Cut(_scores, positions * TopK), Cut(_probabilities, positions * ExpertCount));
    }

    /// <summary>The same routing without weights, scores and probabilities: what a server would return.</summary>
    public SequenceRouting IdsOnly() => new(Layers, PositionCount, TopK, ExpertCount, _experts);

    /// <summary>
    /// The trace rows of this routing (position, layer, rank order) for a sequence's tokens. Without weights (ids only)
    /// the <c>weight</c> and <c>score</c> columns are NaN: not available, never estimated.
    /// </summary>
    public IReadOnlyList<RoutingTraceRow> ToTraceRows(int sequence, IReadOnlyList<int> tokens, Func<int, string> tokenText)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(tokenText);
        var rows = new List<RoutingTraceRow>(PositionCount * Layers.Count * TopK);
        for (var position = 0; position < PositionCount; position++)
        {
            var text = tokenText(tokens[position]);
            for (var l = 0; l < Layers.Count; l++)
            {
                var experts = ExpertsAt(l, position);
                var weights = WeightsAt(l, position);
                var scores = ScoresAt(l, position);
                float[]? probabilities = _probabilities is null ? null : ProbabilitiesAt(l, position).ToArray();
                for (var rank = 0; rank < experts.Length; rank++)
                {
                    rows.Add(new RoutingTraceRow(sequence, position, tokens[position], text, Layers[l], rank, experts[rank],
                        weights.IsEmpty ? float.NaN : weights[rank], scores.IsEmpty ? float.NaN : scores[rank], probabilities));
                }
            }
        }

        return rows;
    }

    /// <summary>Copies an engine trace (every layer it recorded must have the same k and N).</summary>
    /// <exception cref="ExpertScopeException">The trace recorded no MoE layer.</exception>
    public static SequenceRouting FromTrace(RoutingTrace trace, string source)
    {
        ArgumentNullException.ThrowIfNull(trace);
        var layers = trace.Layers.Order().ToArray();
        if (layers.Length == 0)
        {
            throw new ExpertScopeException($"{source}: the model routed no token (it has no MoE layer)");
        }

        int positions = trace.PositionCount, topK = trace.TopK(layers[0]), expertCount = trace.ExpertCount(layers[0]);
        var experts = new int[layers.Length][];
        var weights = new float[layers.Length][];
        var scores = new float[layers.Length][];
        var probabilities = trace.IncludesProbabilities ? new float[layers.Length][] : null;
        for (var l = 0; l < layers.Length; l++)
        {
            experts[l] = new int[positions * topK];
            weights[l] = new float[positions * topK];
            scores[l] = new float[positions * topK];
            if (probabilities is not null)
            {
                probabilities[l] = new float[positions * expertCount];
            }

            for (var p = 0; p < positions; p++)
            {
                trace.ExpertsAt(layers[l], p).CopyTo(experts[l].AsSpan(p * topK));
                trace.WeightsAt(layers[l], p).CopyTo(weights[l].AsSpan(p * topK));
                trace.ScoresAt(layers[l], p).CopyTo(scores[l].AsSpan(p * topK));
                if (probabilities is not null)
                {
                    trace.ProbabilitiesAt(layers[l], p).CopyTo(probabilities[l].AsSpan(p * expertCount));
                }
            }
        }

        return new SequenceRouting(layers, positions, topK, expertCount, experts, weights, scores, probabilities);
    }
}
