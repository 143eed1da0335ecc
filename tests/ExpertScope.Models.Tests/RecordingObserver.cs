using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Tests;

/// <summary>Copies every activation and routing decision it is offered, keyed by llama.cpp tensor name.</summary>
internal sealed class RecordingObserver : IRouterObserver
{
    private readonly Func<HookSite, bool> _filter;

    public RecordingObserver(Func<HookSite, bool>? filter = null) => _filter = filter ?? (_ => true);

    public Dictionary<string, float[]> Activations { get; } = [];

    public Dictionary<int, RecordedRouting> Routing { get; } = [];

    public List<string> Order { get; } = [];

    public bool Wants(HookSite site) => _filter(site);

    public void Observe(HookSite site, in ActivationView view)
    {
        Activations[site.ToString()] = view.Values.ToArray();
        Order.Add(site.ToString());
    }

    public void Observe(HookSite site, in RouterView view) =>
        Routing[site.Layer] = new RecordedRouting(view.SelectedCount, view.SelectedExperts.ToArray(), view.Weights.ToArray(), view.Probabilities.ToArray(), view.SelectedGroups.ToArray());
}

internal sealed record RecordedRouting(int TopK, int[] Experts, float[] Weights, float[] Probabilities, int[] Groups);
