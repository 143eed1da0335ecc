using System.Diagnostics;
using ExpertScope.Models.Routing;

namespace ExpertScope.Cli;

/// <summary>
/// Times the phases of a forward pass from the hook sites every decoder block emits anyway (so it computes nothing
/// extra and changes no result): attention from <c>attn_norm</c> to <c>ffn_inp</c>, the router from <c>ffn_norm</c>
/// to the routing decision, the experts (routed and shared, plus the residual add) from the decision to <c>l_out</c>.
/// Everything else (embedding, norms, dense feed-forward blocks, output head) is the caller's total minus these.
/// </summary>
internal sealed class BenchPhaseTimer : IRouterObserver
{
    private long _phaseStart;
    private bool _routed;

    /// <summary>Stopwatch ticks spent in attention.</summary>
    public long AttentionTicks { get; private set; }

    /// <summary>Stopwatch ticks spent in the router projection and top-k selection.</summary>
    public long RouterTicks { get; private set; }

    /// <summary>Stopwatch ticks spent in the experts of MoE blocks.</summary>
    public long ExpertTicks { get; private set; }

    public bool Wants(HookSite site) =>
        site.Kind is HookKind.AttentionNorm or HookKind.FeedForwardInput or HookKind.FeedForwardNorm or HookKind.Router or HookKind.LayerOutput;

    public void Observe(HookSite site, in ActivationView view)
    {
        long now = Stopwatch.GetTimestamp();
        switch (site.Kind)
        {
            case HookKind.AttentionNorm or HookKind.FeedForwardNorm:
                _phaseStart = now;
                _routed = false;
                break;
            case HookKind.FeedForwardInput:
                AttentionTicks += now - _phaseStart;
                break;
            case HookKind.LayerOutput when _routed:
                ExpertTicks += now - _phaseStart;
                _routed = false;
                break;
        }
    }

    public void Observe(HookSite site, in RouterView view)
    {
        long now = Stopwatch.GetTimestamp();
        RouterTicks += now - _phaseStart;
        _phaseStart = now;
        _routed = true;
    }

    /// <summary>The phases so far in seconds, with <paramref name="totalSeconds"/> as the whole, then starts again from zero.</summary>
    public BenchPhases Take(double totalSeconds)
    {
        double attention = Seconds(AttentionTicks), router = Seconds(RouterTicks), experts = Seconds(ExpertTicks);
        AttentionTicks = RouterTicks = ExpertTicks = 0;
        return new BenchPhases(attention, router, experts, Math.Max(0, totalSeconds - attention - router - experts), totalSeconds);
    }

    private static double Seconds(long ticks) => (double)ticks / Stopwatch.Frequency;
}

/// <summary>Seconds of one timed prefill or generation, by phase; <c>Other</c> is the total minus the three phases.</summary>
internal sealed record BenchPhases(double Attention, double Router, double Experts, double Other, double Total);
