namespace ExpertScope.Experiments.Metrics;

/// <summary>One expert a token was routed to, with its mixing weight.</summary>
/// <param name="Expert">The expert index within its layer.</param>
/// <param name="Weight">The mixing weight applied to its output (after any normalisation and scaling).</param>
/// <param name="IsShared">
/// True for an always-active shared expert (DeepSeek, Qwen-MoE). Shared experts say nothing about routing,
/// so the overlap metrics leave them out unless asked to include them.
/// </param>
public readonly record struct ExpertChoice(int Expert, float Weight, bool IsShared = false);
