using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models;

/// <summary>
/// What one forward pass over a batch of tokens needs besides weights: the batch's positions, threads,
/// interventions and observers. Blocks emit hook sites through it; nothing is emitted unless an observer asked.
/// </summary>
public sealed class ForwardContext
{
    private readonly IRouterObserver[] _observers;

    /// <summary>Creates a context for a batch.</summary>
    /// <param name="tokenCount">Tokens in the batch.</param>
    /// <param name="firstPosition">Position of the batch's first token.</param>
    /// <param name="parallelism">Threads.</param>
    /// <param name="interventions">Router interventions.</param>
    /// <param name="observers">Observers.</param>
    public ForwardContext(
        int tokenCount,
        int firstPosition,
        Parallelism parallelism,
        IReadOnlyList<RouterIntervention> interventions,
        IReadOnlyList<IRouterObserver> observers)
    {
        ArgumentNullException.ThrowIfNull(interventions);
        ArgumentNullException.ThrowIfNull(observers);
        TokenCount = tokenCount;
        FirstPosition = firstPosition;
        Parallelism = parallelism;
        Interventions = interventions;
        _observers = [.. observers];
    }

    /// <summary>Tokens in the batch.</summary>
    public int TokenCount { get; }

    /// <summary>Position of the batch's first token.</summary>
    public int FirstPosition { get; }

    /// <summary>Threads for matrix products.</summary>
    public Parallelism Parallelism { get; }

    /// <summary>Router interventions of this run.</summary>
    public IReadOnlyList<RouterIntervention> Interventions { get; }

    /// <summary>True if any observer wants the site (compute optional sites only then).</summary>
    public bool Wants(HookKind kind, int layer)
    {
        if (_observers.Length == 0)
        {
            return false;
        }

        var site = new HookSite(kind, layer);
        foreach (var observer in _observers)
        {
            if (observer.Wants(site))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Passes <c>[TokenCount, width]</c> values to the observers that want the site.</summary>
    public void Emit(HookKind kind, int layer, ReadOnlySpan<float> values, int width)
    {
        if (_observers.Length == 0)
        {
            return;
        }

        var site = new HookSite(kind, layer);
        var view = new ActivationView(values[..(TokenCount * width)], TokenCount, width, FirstPosition);
        foreach (var observer in _observers)
        {
            if (observer.Wants(site))
            {
                observer.Observe(site, in view);
            }
        }
    }

    /// <summary>Passes a routing decision (and its per-stage sites) to the observers that want them.</summary>
    public void EmitRouting(int layer, Router router, RoutingResult result)
    {
        ArgumentNullException.ThrowIfNull(router);
        ArgumentNullException.ThrowIfNull(result);
        if (_observers.Length == 0)
        {
            return;
        }

        int experts = result.ExpertCount;
        int k = result.TopK;
        Emit(HookKind.RouterLogits, layer, result.Logits, experts);
        if (result.HasLogitBias)
        {
            Emit(HookKind.RouterBiasedLogits, layer, result.BiasedLogits, experts);
        }

        Emit(HookKind.RouterProbabilities, layer, result.Probabilities, experts);
        if (result.HasBias)
        {
            Emit(HookKind.RouterBiasedScores, layer, result.BiasedScores, experts);
        }

        if (router.Config.IsGroupLimited)
        {
            Emit(HookKind.RouterMaskedScores, layer, result.Scores, experts);
        }

        Emit(HookKind.RouterWeights, layer, result.RawWeights, k);
        if (router.Config.Gating == GatingFunction.SoftmaxWeight)
        {
            Emit(HookKind.RouterWeightsSoftmax, layer, result.SoftmaxWeights, k);
        }

        if (router.Config.NormalizeWeights)
        {
            Emit(HookKind.RouterWeightsNormalized, layer, result.NormalizedWeights, k);
        }

        if (router.Config.ScalesWeights)
        {
            Emit(HookKind.RouterWeightsScaled, layer, result.ScaledWeights, k);
        }

        var site = new HookSite(HookKind.Router, layer);
        var view = result.View(FirstPosition);
        foreach (var observer in _observers)
        {
            if (observer.Wants(site))
            {
                observer.Observe(site, in view);
            }
        }
    }
}
