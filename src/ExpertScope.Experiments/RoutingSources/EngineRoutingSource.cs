using ExpertScope.Models;
using ExpertScope.Models.Routing;

namespace ExpertScope.Experiments.RoutingSources;

/// <summary>Routing from the in-process engine: one forward pass per prompt, no output head, everything recorded.</summary>
public sealed class EngineRoutingSource : IRoutingSource
{
    private readonly MoeModel _model;
    private readonly int? _threads;
    private readonly bool _includeProbabilities;

    /// <summary>Creates the source.</summary>
    /// <param name="model">The model.</param>
    /// <param name="threads">Forward-pass threads (null: all cores).</param>
    /// <param name="includeProbabilities">Keep the full router distribution.</param>
    public EngineRoutingSource(MoeModel model, int? threads = null, bool includeProbabilities = true)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _threads = threads;
        _includeProbabilities = includeProbabilities;
        LayerMap = MoeLayerMap.FromGguf(model.File);
    }

    /// <inheritdoc/>
    public RoutingDetail Detail => new(true, _includeProbabilities);

    /// <inheritdoc/>
    public string Kind => "engine";

    /// <inheritdoc/>
    public int BatchSize => 1;

    /// <inheritdoc/>
    public MoeLayerMap LayerMap { get; }

    /// <inheritdoc/>
    public Task<IReadOnlyList<SequenceRouting>> RouteAsync(IReadOnlyList<RoutingPrompt> prompts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        var results = new List<SequenceRouting>(prompts.Count);
        foreach (var prompt in prompts)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var trace = new RoutingTrace(_includeProbabilities);
            // Causal attention: the routing of the wanted positions depends only on the tokens up to the last of them.
            var tokens = prompt.Tokens.Take(prompt.RoutedPositions).ToArray();
            _model.Run(tokens, new RunOptions { Observers = [trace], Logits = LogitsSelection.None, ThreadCount = _threads });
            results.Add(SequenceRouting.FromTrace(trace, _model.FilePath));
        }

        return Task.FromResult<IReadOnlyList<SequenceRouting>>(results);
    }
}

/// <summary>
/// Any source with its weights, scores and probabilities dropped: reproduces locally exactly what a vLLM or SGLang
/// server gives (expert ids), so ids-only results can be checked against the engine.
/// </summary>
public sealed class IdsOnlyRoutingSource(IRoutingSource inner) : IRoutingSource
{
    /// <inheritdoc/>
    public RoutingDetail Detail => RoutingDetail.IdsOnly;

    /// <inheritdoc/>
    public string Kind => inner.Kind + "-ids";

    /// <inheritdoc/>
    public int BatchSize => inner.BatchSize;

    /// <inheritdoc/>
    public MoeLayerMap LayerMap => inner.LayerMap;

    /// <inheritdoc/>
    public async Task<IReadOnlyList<SequenceRouting>> RouteAsync(IReadOnlyList<RoutingPrompt> prompts, CancellationToken cancellationToken = default)
    {
        var full = await inner.RouteAsync(prompts, cancellationToken).ConfigureAwait(false);
        return [.. full.Select(routing => routing.IdsOnly())];
    }
}
