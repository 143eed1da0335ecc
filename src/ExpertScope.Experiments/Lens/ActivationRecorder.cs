using ExpertScope.Models.Routing;

namespace ExpertScope.Experiments.Lens;

/// <summary>One MoE layer's routing decision for a whole run: <c>[T, k]</c> experts and final weights.</summary>
/// <param name="Layer">Block index.</param>
/// <param name="SelectedCount">k (after interventions).</param>
/// <param name="Experts">Selected experts, row-major <c>[T, k]</c>, in selection order.</param>
/// <param name="Weights">Their final mixing weights, aligned with <paramref name="Experts"/>.</param>
public sealed record RecordedRouting(int Layer, int SelectedCount, int[] Experts, float[] Weights);

/// <summary>
/// An observer that copies the activations of chosen hook kinds (every layer) and, optionally, every routing
/// decision, for a single <c>MoeModel.Run</c> from position 0. Values are stored <c>[T, width]</c> per site.
/// </summary>
public sealed class ActivationRecorder : IRouterObserver
{
    private readonly HashSet<HookKind> _kinds;
    private readonly bool _routing;
    private readonly Dictionary<HookSite, (float[] Values, int Width)> _activations = [];
    private readonly SortedDictionary<int, RecordedRouting> _routes = [];

    /// <summary>Creates a recorder.</summary>
    /// <param name="kinds">Activation kinds to copy (in every layer).</param>
    /// <param name="routing">Also record every MoE layer's routing decision.</param>
    public ActivationRecorder(IEnumerable<HookKind> kinds, bool routing = false)
    {
        ArgumentNullException.ThrowIfNull(kinds);
        _kinds = [.. kinds];
        _routing = routing;
    }

    /// <summary>The routing decisions recorded, by block index.</summary>
    public IReadOnlyDictionary<int, RecordedRouting> Routes => _routes;

    /// <inheritdoc/>
    public bool Wants(HookSite site) => _kinds.Contains(site.Kind) || (_routing && site.Kind == HookKind.Router);

    /// <inheritdoc/>
    public void Observe(HookSite site, in ActivationView view)
    {
        _activations[site] = (view.Values.ToArray(), view.Width);
    }

    /// <inheritdoc/>
    public void Observe(HookSite site, in RouterView view)
    {
        _routes[site.Layer] = new RecordedRouting(site.Layer, view.SelectedCount, view.SelectedExperts.ToArray(), view.Weights.ToArray());
    }

    /// <summary>True if <paramref name="site"/> was recorded.</summary>
    public bool Has(HookSite site) => _activations.ContainsKey(site);

    /// <summary>The values of a recorded site, <c>[T, width]</c>.</summary>
    /// <exception cref="KeyNotFoundException">The site was not emitted in the run.</exception>
    public (float[] Values, int Width) Get(HookSite site) =>
        _activations.TryGetValue(site, out var entry) ? entry : throw new KeyNotFoundException($"The hook site {site} was not recorded.");

    /// <summary>Forgets everything recorded (to reuse the recorder for another run).</summary>
    public void Clear()
    {
        _activations.Clear();
        _routes.Clear();
    }
}
