namespace ExpertScope.Experiments.RoutingSources;

/// <summary>One prompt to route.</summary>
/// <param name="Name">How errors and reports name it (e.g. <c>sentence 12</c>, <c>prompts.txt:7</c>).</param>
/// <param name="Text">The prompt's text, sent to a server that tokenizes it itself; null: the server is sent <paramref name="Tokens"/> (vLLM and SGLang accept a list of token ids as the prompt).</param>
/// <param name="Tokens">The token ids of <paramref name="Text"/> by the local tokenizer (BOS as the vocabulary adds it): the engine runs them, a server's token count must equal their count.</param>
/// <param name="RoutedPositions">Positions whose routing is wanted (a prefix of <paramref name="Tokens"/>; causal attention lets the engine stop there).</param>
public sealed record RoutingPrompt(string Name, string? Text, IReadOnlyList<int> Tokens, int RoutedPositions);

/// <summary>
/// Where routing comes from: the in-process engine (<see cref="EngineRoutingSource"/>) or an inference server that
/// returns routed expert ids (<see cref="ServerRoutingSource"/>, vLLM or SGLang). The experiments ask a source for a
/// batch of prompts at a time so that a server can be kept busy with concurrent requests.
/// </summary>
public interface IRoutingSource
{
    /// <summary>What the routing holds besides expert ids; metrics needing more are skipped for ids-only sources.</summary>
    RoutingDetail Detail { get; }

    /// <summary>How the trace names the source (<c>engine</c>, <c>vllm</c>, <c>sglang</c>).</summary>
    string Kind { get; }

    /// <summary>The first MoE block index (GGUF <c>blk.N</c>) and the mapping from a server's MoE-layer index to blocks, recorded in the trace.</summary>
    MoeLayerMap LayerMap { get; }

    /// <summary>Prompts worth asking for at once (1 for the engine, which then stops at any prompt; a few per connection for a server).</summary>
    int BatchSize { get; }

    /// <summary>Routes every prompt; results in the order of <paramref name="prompts"/>, each cut to its <see cref="RoutingPrompt.RoutedPositions"/>.</summary>
    /// <exception cref="Core.ExpertScopeException">A prompt failed for good (after retries); the message names it.</exception>
    Task<IReadOnlyList<SequenceRouting>> RouteAsync(IReadOnlyList<RoutingPrompt> prompts, CancellationToken cancellationToken = default);
}
