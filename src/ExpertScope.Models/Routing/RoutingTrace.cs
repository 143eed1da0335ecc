using System.Runtime.InteropServices;

namespace ExpertScope.Models.Routing;

/// <summary>
/// An observer that keeps every routing decision of a sequence, struct-of-arrays per MoE layer and indexed by
/// position: <c>trace.ExpertsAt(layer, position)</c>. Batches appended to one session (a prompt, then generated
/// tokens) extend the same trace. Attach it to every call of a sequence and start a new one per sequence.
/// </summary>
public sealed class RoutingTrace : IRouterObserver
{
    private readonly LayerSelector _layers;
    private readonly SortedDictionary<int, LayerTrace> _byLayer = [];

    /// <summary>Creates an empty trace.</summary>
    /// <param name="includeProbabilities">Also keep the full router distribution <c>[positions, X]</c> per layer.</param>
    /// <param name="layers">Blocks to record (default all).</param>
    public RoutingTrace(bool includeProbabilities = false, LayerSelector? layers = null)
    {
        IncludesProbabilities = includeProbabilities;
        _layers = layers ?? LayerSelector.All;
    }

    /// <summary>True if <see cref="ProbabilitiesAt"/> holds data.</summary>
    public bool IncludesProbabilities { get; }

    /// <summary>MoE blocks recorded, ascending.</summary>
    public IReadOnlyCollection<int> Layers => _byLayer.Keys;

    /// <summary>Positions recorded (the same for every layer).</summary>
    public int PositionCount => _byLayer.Count == 0 ? 0 : _byLayer.Values.First().Positions;

    /// <summary>Experts per token k in <paramref name="layer"/>.</summary>
    public int TopK(int layer) => Layer(layer).TopK;

    /// <summary>Routed experts X in <paramref name="layer"/>.</summary>
    public int ExpertCount(int layer) => Layer(layer).ExpertCount;

    /// <summary>Selected experts of the token at <paramref name="position"/>, best first.</summary>
    public ReadOnlySpan<int> ExpertsAt(int layer, int position)
    {
        var trace = Layer(layer);
        return trace.Experts.Slice(CheckPosition(trace, position) * trace.TopK, trace.TopK);
    }

    /// <summary>Final mixing weights, aligned with <see cref="ExpertsAt"/>.</summary>
    public ReadOnlySpan<float> WeightsAt(int layer, int position)
    {
        var trace = Layer(layer);
        return trace.Weights.Slice(CheckPosition(trace, position) * trace.TopK, trace.TopK);
    }

    /// <summary>Scores the selected experts were ranked by (probabilities plus any selection bias), aligned with <see cref="ExpertsAt"/>.</summary>
    public ReadOnlySpan<float> ScoresAt(int layer, int position)
    {
        var trace = Layer(layer);
        return trace.Scores.Slice(CheckPosition(trace, position) * trace.TopK, trace.TopK);
    }

    /// <summary>The full router distribution <c>[X]</c> (gating output, no bias); requires <see cref="IncludesProbabilities"/>.</summary>
    /// <exception cref="InvalidOperationException">Probabilities were not kept.</exception>
    public ReadOnlySpan<float> ProbabilitiesAt(int layer, int position)
    {
        if (!IncludesProbabilities)
        {
            throw new InvalidOperationException("This trace was created without probabilities.");
        }

        var trace = Layer(layer);
        return trace.Probabilities.Slice(CheckPosition(trace, position) * trace.ExpertCount, trace.ExpertCount);
    }

    /// <inheritdoc/>
    public bool Wants(HookSite site) => site.Kind == HookKind.Router && _layers.Includes(site.Layer);

    /// <inheritdoc/>
    public void Observe(HookSite site, in RouterView view)
    {
        if (!_byLayer.TryGetValue(site.Layer, out var trace))
        {
            trace = new LayerTrace(view.SelectedCount, view.ExpertCount);
            _byLayer[site.Layer] = trace;
        }

        if (trace.TopK != view.SelectedCount || view.FirstPosition != trace.Positions)
        {
            throw new InvalidOperationException(
                $"Layer {site.Layer}: a trace holds one sequence with a fixed k; got k = {view.SelectedCount} at position {view.FirstPosition} after k = {trace.TopK} for {trace.Positions} positions.");
        }

        int k = view.SelectedCount;
        var scores = new float[view.TokenCount * k];
        for (int t = 0; t < view.TokenCount; t++)
        {
            var experts = view.ExpertsOf(t);
            for (int i = 0; i < k; i++)
            {
                scores[t * k + i] = view.SelectionScores[t * view.ExpertCount + experts[i]];
            }
        }

        trace.Append(view.SelectedExperts, view.Weights, scores, IncludesProbabilities ? view.Probabilities : default, view.TokenCount);
    }

    private LayerTrace Layer(int layer) =>
        _byLayer.TryGetValue(layer, out var trace) ? trace : throw new ArgumentOutOfRangeException(nameof(layer), layer, "No routing was recorded for this block.");

    private static int CheckPosition(LayerTrace trace, int position) =>
        (uint)position < (uint)trace.Positions ? position : throw new ArgumentOutOfRangeException(nameof(position), position, $"{trace.Positions} positions were recorded.");

    private sealed class LayerTrace(int topK, int expertCount)
    {
        public int TopK { get; } = topK;

        public int ExpertCount { get; } = expertCount;

        public int Positions { get; private set; }

        private readonly List<int> _experts = [];
        private readonly List<float> _weights = [];
        private readonly List<float> _scores = [];
        private readonly List<float> _probabilities = [];

        public Span<int> Experts => CollectionsMarshal.AsSpan(_experts);

        public Span<float> Weights => CollectionsMarshal.AsSpan(_weights);

        public Span<float> Scores => CollectionsMarshal.AsSpan(_scores);

        public Span<float> Probabilities => CollectionsMarshal.AsSpan(_probabilities);

        public void Append(ReadOnlySpan<int> experts, ReadOnlySpan<float> weights, ReadOnlySpan<float> scores, ReadOnlySpan<float> probabilities, int tokens)
        {
            _experts.AddRange(experts);
            _weights.AddRange(weights);
            _scores.AddRange(scores);
            _probabilities.AddRange(probabilities);
            Positions += tokens;
        }
    }
}
