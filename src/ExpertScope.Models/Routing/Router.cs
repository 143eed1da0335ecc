using ExpertScope.Core;
using ExpertScope.Models.Blocks;

namespace ExpertScope.Models.Routing;

/// <summary>The function that turns router logits into expert probabilities.</summary>
public enum GatingFunction
{
    /// <summary>Softmax over all experts (Mixtral, Qwen, OLMoE, DeepSeek-V2).</summary>
    Softmax,

    /// <summary>Independent sigmoid per expert (DeepSeek-V3 / R1).</summary>
    Sigmoid,

    /// <summary>
    /// Experts chosen by their logits, and the mixing weights a softmax over the k chosen logits only (gpt-oss;
    /// llama.cpp's <c>LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX_WEIGHT</c>): the "probabilities" are the logits themselves.
    /// </summary>
    SoftmaxWeight,
}

/// <summary>A router's fixed settings, read from GGUF metadata by each architecture.</summary>
/// <param name="ExpertCount">Routed experts X (GGUF <c>expert_count</c>).</param>
/// <param name="TopK">Experts per token k (GGUF <c>expert_used_count</c>).</param>
/// <param name="Gating">Gating function (GGUF <c>expert_gating_func</c>: 1 softmax, 2 sigmoid).</param>
/// <param name="NormalizeWeights">Divide the selected weights by their sum (GGUF <c>expert_weights_norm</c>).</param>
/// <param name="WeightScale">Multiplier on the final weights (GGUF <c>expert_weights_scale</c>; 1 = none).</param>
/// <param name="GroupCount">Expert groups for group-limited routing (GGUF <c>expert_group_count</c>; 1 = none).</param>
/// <param name="GroupsKept">Groups kept per token (GGUF <c>expert_group_used_count</c>).</param>
/// <param name="SelectOnLogits">
/// Choose the experts by their raw logits rather than the gated probabilities (Llama 4; llama.cpp's
/// <c>build_moe_ffn</c> ranks logits for <c>LLM_ARCH_LLAMA4</c>). Weights still come from the probabilities.
/// </param>
/// <param name="WeightExpertInput">
/// Multiply each selected expert's input by its weight instead of its output (Llama 4; llama.cpp's
/// <c>weight_before_ffn</c>). The expert's output is then added unweighted.
/// </param>
public sealed record RouterConfig(
    int ExpertCount,
    int TopK,
    GatingFunction Gating,
    bool NormalizeWeights,
    float WeightScale = 1.0f,
    int GroupCount = 1,
    int GroupsKept = 1,
    bool SelectOnLogits = false,
    bool WeightExpertInput = false)
{
    /// <summary>True when scaling changes the weights (llama.cpp skips 0 and 1).</summary>
    public bool ScalesWeights => WeightScale != 0.0f && WeightScale != 1.0f;

    /// <summary>True for group-limited routing.</summary>
    public bool IsGroupLimited => GroupCount > 1;
}

/// <summary>
/// The router of one MoE layer as a first-class object: gating, optional selection bias (used only to choose),
/// group-limited selection, top-k, normalisation and scaling, and the one place interventions are applied.
/// </summary>
/// <remarks>
/// Ties between equal scores are broken towards the lower expert (or group) index. Mixing weights are always
/// gathered from the unbiased probabilities (the selection bias only affects which experts are chosen).
/// </remarks>
public sealed class Router
{
    /// <summary>llama.cpp clamps the weight sum below at the smallest normal float16 to avoid dividing by zero.</summary>
    public const float MinimumWeightSum = 6.103515625e-5f;

    private readonly float[]? _selectionBias;
    private readonly float[]? _logitBias;

    /// <summary>Creates a router.</summary>
    /// <param name="layer">GGUF block index (for layer selectors and hook sites).</param>
    /// <param name="config">Settings.</param>
    /// <param name="selectionBias">Per-expert bias added to the probabilities for selection only (<c>exp_probs_b</c>), or empty.</param>
    /// <param name="logitBias">Per-expert bias of the router projection (<c>ffn_gate_inp.bias</c>, gpt-oss), added to the logits before gating; or empty.</param>
    /// <exception cref="ExpertScopeException">Inconsistent settings.</exception>
    public Router(int layer, RouterConfig config, ReadOnlySpan<float> selectionBias = default, ReadOnlySpan<float> logitBias = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        Layer = layer;
        Config = config;
        if (config.ExpertCount < 1 || config.TopK < 1 || config.TopK > config.ExpertCount)
        {
            throw new ExpertScopeException($"block {layer}: cannot select {config.TopK} of {config.ExpertCount} experts.");
        }

        if (config.IsGroupLimited &&
            (config.ExpertCount % config.GroupCount != 0 || config.GroupsKept < 1 || config.GroupsKept > config.GroupCount))
        {
            throw new ExpertScopeException(
                $"block {layer}: {config.ExpertCount} experts cannot form {config.GroupCount} groups keeping {config.GroupsKept}.");
        }

        if (!selectionBias.IsEmpty)
        {
            if (selectionBias.Length != config.ExpertCount)
            {
                throw new ExpertScopeException($"block {layer}: selection bias has {selectionBias.Length} values for {config.ExpertCount} experts.");
            }

            _selectionBias = selectionBias.ToArray();
        }

        if (!logitBias.IsEmpty)
        {
            if (logitBias.Length != config.ExpertCount)
            {
                throw new ExpertScopeException($"block {layer}: router bias has {logitBias.Length} values for {config.ExpertCount} experts.");
            }

            _logitBias = logitBias.ToArray();
        }
    }

    /// <summary>GGUF block index.</summary>
    public int Layer { get; }

    /// <summary>Settings.</summary>
    public RouterConfig Config { get; }

    /// <summary>True when a selection bias is present.</summary>
    public bool HasSelectionBias => _selectionBias is not null;

    /// <summary>True when the router projection has a bias (<c>ffn_moe_logits_biased</c> is formed).</summary>
    public bool HasLogitBias => _logitBias is not null;

    /// <summary>
    /// Routes <paramref name="tokenCount"/> tokens from their logits, applying the interventions that select this
    /// layer, and writes every stage into <paramref name="result"/>.
    /// </summary>
    /// <param name="logits">Router logits <c>[tokenCount, X]</c>.</param>
    /// <param name="tokenCount">Tokens.</param>
    /// <param name="interventions">Interventions of the run (those not selecting this layer are ignored).</param>
    /// <param name="result">Receives the decision; its buffers are reused across calls.</param>
    /// <exception cref="ExpertScopeException">An intervention names an expert out of range, or forces a disabled one.</exception>
    public void Route(ReadOnlySpan<float> logits, int tokenCount, IReadOnlyList<RouterIntervention> interventions, RoutingResult result)
    {
        ArgumentNullException.ThrowIfNull(interventions);
        ArgumentNullException.ThrowIfNull(result);
        int experts = Config.ExpertCount;
        var plan = Plan(interventions);
        result.Reset(tokenCount, experts, plan.TopK, Config.IsGroupLimited ? Config.GroupsKept : 0, HasSelectionBias, HasLogitBias, Config.Gating == GatingFunction.SoftmaxWeight);
        logits[..(tokenCount * experts)].CopyTo(result.Logits);
        if (_logitBias is not null)
        {
            for (int i = 0; i < tokenCount * experts; i++)
            {
                result.BiasedLogits[i] = logits[i] + _logitBias[i % experts];
            }

            logits = result.BiasedLogits.AsSpan(0, tokenCount * experts);
        }

        Span<int> best = stackalloc int[plan.DisabledTop];
        for (int t = 0; t < tokenCount; t++)
        {
            var probabilities = result.Probabilities.AsSpan(t * experts, experts);
            if (plan.Removed.Length == 0)
            {
                Gate(logits.Slice(t * experts, experts), probabilities);
            }
            else
            {
                GateRemaining(logits.Slice(t * experts, experts), probabilities, plan.Removed);
            }

            if (Config.Gating == GatingFunction.SoftmaxWeight)
            {
                // What observers read as the router's distribution: the softmax over every expert's (biased) logit,
                // whose renormalised top-k are the mixing weights; removed experts get 0.
                var distribution = result.Distribution.AsSpan(t * experts, experts);
                probabilities.CopyTo(distribution);
                foreach (int removed in plan.Removed)
                {
                    distribution[removed] = float.NegativeInfinity;
                }

                GgmlMath.Softmax(distribution);
            }

            var scores = result.Scores.AsSpan(t * experts, experts);
            (Config.SelectOnLogits ? logits.Slice(t * experts, experts) : probabilities).CopyTo(scores);
            if (_selectionBias is not null)
            {
                for (int e = 0; e < experts; e++)
                {
                    scores[e] += _selectionBias[e];
                }

                scores.CopyTo(result.BiasedScores.AsSpan(t * experts, experts));
            }

            foreach (int disabled in plan.Disabled)
            {
                scores[disabled] = float.NegativeInfinity;
            }

            foreach (int removed in plan.Removed)
            {
                scores[removed] = float.NegativeInfinity;
            }

            if (plan.DisabledTop > 0)
            {
                TopIndices(scores, best);
                foreach (int e in best)
                {
                    scores[e] = float.NegativeInfinity;
                }
            }

            if (Config.IsGroupLimited)
            {
                MaskGroups(scores, result.Groups.AsSpan(t * Config.GroupsKept, Config.GroupsKept));
            }

            var selected = result.Experts.AsSpan(t * plan.TopK, plan.TopK);
            Select(scores, plan.Forced, selected);
            Weigh(t, probabilities, selected, plan, result);
        }
    }

    private void Gate(ReadOnlySpan<float> logits, Span<float> probabilities)
    {
        if (Config.Gating == GatingFunction.Sigmoid)
        {
            for (int e = 0; e < logits.Length; e++)
            {
                probabilities[e] = 1.0f / (1.0f + MathF.Exp(-logits[e]));
            }

            return;
        }

        logits.CopyTo(probabilities);
        if (Config.Gating == GatingFunction.Softmax)
        {
            GgmlMath.Softmax(probabilities);
        }
    }

    /// <summary>
    /// The gate over the experts that are not removed, compacted in order so the arithmetic (vector-exp groups, sum
    /// order) is exactly that of a checkpoint without them; removed experts get probability 0.
    /// </summary>
    private void GateRemaining(ReadOnlySpan<float> logits, Span<float> probabilities, int[] removed)
    {
        int kept = logits.Length - removed.Length;
        Span<float> compact = stackalloc float[kept];
        Span<float> gated = stackalloc float[kept];
        int n = 0;
        for (int e = 0; e < logits.Length; e++)
        {
            if (Array.IndexOf(removed, e) < 0)
            {
                compact[n++] = logits[e];
            }
        }

        Gate(compact, gated);
        n = 0;
        for (int e = 0; e < logits.Length; e++)
        {
            probabilities[e] = Array.IndexOf(removed, e) < 0 ? gated[n++] : 0.0f;
        }
    }

    /// <summary>Keeps the best groups (score = sum of a group's two best scores) and sets the rest to -inf.</summary>
    private void MaskGroups(Span<float> scores, Span<int> keptGroups)
    {
        int groupCount = Config.GroupCount;
        int perGroup = Config.ExpertCount / groupCount;
        Span<float> groupScores = stackalloc float[groupCount];
        Span<int> top = stackalloc int[Math.Min(2, perGroup)];
        for (int g = 0; g < groupCount; g++)
        {
            var group = scores.Slice(g * perGroup, perGroup);
            TopIndices(group, top);
            float sum = 0;
            foreach (int index in top)
            {
                sum += group[index];
            }

            groupScores[g] = sum;
        }

        TopIndices(groupScores, keptGroups);
        for (int g = 0; g < groupCount; g++)
        {
            if (!keptGroups.Contains(g))
            {
                scores.Slice(g * perGroup, perGroup).Fill(float.NegativeInfinity);
            }
        }
    }

    private static void Select(ReadOnlySpan<float> scores, int[] forced, Span<int> selected)
    {
        if (forced.Length == 0)
        {
            TopIndices(scores, selected);
            return;
        }

        // Forced experts first (best score first), then the best of the rest.
        Span<float> rest = stackalloc float[scores.Length];
        scores.CopyTo(rest);
        Span<float> forcedScores = stackalloc float[scores.Length];
        forcedScores.Fill(float.NegativeInfinity);
        foreach (int e in forced)
        {
            forcedScores[e] = scores[e] == float.NegativeInfinity ? float.MinValue : scores[e];
            rest[e] = float.NegativeInfinity;
        }

        TopIndices(forcedScores, selected[..forced.Length], forced);
        if (selected.Length > forced.Length)
        {
            TopIndices(rest, selected[forced.Length..]);
        }
    }

    private void Weigh(int token, ReadOnlySpan<float> probabilities, ReadOnlySpan<int> selected, in RoutingPlan plan, RoutingResult result)
    {
        int k = selected.Length;
        var raw = result.RawWeights.AsSpan(token * k, k);
        var weights = result.Weights.AsSpan(token * k, k);
        for (int i = 0; i < k; i++)
        {
            raw[i] = probabilities[selected[i]];
        }

        raw.CopyTo(weights);
        if (Config.Gating == GatingFunction.SoftmaxWeight)
        {
            GgmlMath.Softmax(weights);
            weights.CopyTo(result.SoftmaxWeights.AsSpan(token * k, k));
        }

        if (Config.NormalizeWeights)
        {
            double sum = 0;
            foreach (float w in raw)
            {
                sum += w;
            }

            float clamped = MathF.Max((float)sum, MinimumWeightSum);
            result.WeightSums[token] = (float)sum;
            for (int i = 0; i < k; i++)
            {
                weights[i] = raw[i] / clamped;
            }

            weights.CopyTo(result.NormalizedWeights.AsSpan(token * k, k));
        }

        if (Config.ScalesWeights)
        {
            for (int i = 0; i < k; i++)
            {
                weights[i] *= Config.WeightScale;
            }

            weights.CopyTo(result.ScaledWeights.AsSpan(token * k, k));
        }

        if (plan.KeepOnlyTop)
        {
            if (plan.KeptWeight == TopExpertWeight.Mass)
            {
                float mass = 0;
                foreach (float w in weights)
                {
                    mass += w;
                }

                weights[0] = mass;
            }
            else if (plan.KeptWeight == TopExpertWeight.One)
            {
                weights[0] = 1f;
            }

            weights[1..].Clear();
        }

        foreach (var (expert, factor) in plan.Scales)
        {
            int slot = selected.IndexOf(expert);
            if (slot >= 0)
            {
                weights[slot] *= factor;
            }
        }
    }

    /// <summary>Indices of the largest values, descending; ties go to the lower index; -inf entries are never picked if avoidable.</summary>
    private static void TopIndices(ReadOnlySpan<float> values, Span<int> destination, int[]? candidates = null)
    {
        Span<bool> taken = stackalloc bool[values.Length];
        for (int slot = 0; slot < destination.Length; slot++)
        {
            int best = -1;
            for (int i = 0; i < values.Length; i++)
            {
                if (taken[i] || (candidates is not null && Array.IndexOf(candidates, i) < 0))
                {
                    continue;
                }

                if (best < 0 || values[i] > values[best])
                {
                    best = i;
                }
            }

            taken[best] = true;
            destination[slot] = best;
        }
    }

    private RoutingPlan Plan(IReadOnlyList<RouterIntervention> interventions)
    {
        int experts = Config.ExpertCount;
        int topK = Config.TopK;
        var disabled = new SortedSet<int>();
        var removed = new SortedSet<int>();
        var forced = new List<int>();
        var scales = new List<(int, float)>();
        bool keepOnlyTop = false;
        var keptWeight = TopExpertWeight.Own;
        int disabledTop = 0;
        foreach (var intervention in interventions)
        {
            if (!intervention.Layers.Includes(Layer))
            {
                continue;
            }

            switch (intervention)
            {
                case DisableExperts d:
                    foreach (var e in d.Experts)
                    {
                        disabled.Add(CheckExpert(e, intervention));
                    }

                    break;
                case RemoveExperts r:
                    foreach (var e in r.Experts)
                    {
                        removed.Add(CheckExpert(e, intervention));
                    }

                    break;
                case ForceExperts f:
                    foreach (var e in f.Experts)
                    {
                        int id = CheckExpert(e, intervention);
                        if (!forced.Contains(id))
                        {
                            forced.Add(id);
                        }
                    }

                    break;
                case OverrideTopK o:
                    if (o.TopK < 1 || o.TopK > experts)
                    {
                        throw new ExpertScopeException($"{intervention}: block {Layer} has {experts} experts; k must be 1..{experts}.");
                    }

                    topK = o.TopK;
                    break;
                case DisableTopRankedExperts top:
                    if (top.Count < 0 || top.Count >= experts)
                    {
                        throw new ExpertScopeException($"{intervention}: block {Layer} has {experts} experts; the count must be 0..{experts - 1}.");
                    }

                    disabledTop = Math.Max(disabledTop, top.Count);
                    break;
                case KeepOnlyTopExpert keep:
                    keepOnlyTop = true;
                    keptWeight = keep.Weight;
                    break;
                case ScaleExpert s:
                    scales.Add((CheckExpert(s.Expert, intervention), s.Factor));
                    break;
                case DisableSharedExperts:
                    // Acts on the shared experts in MoeLayer, not on the routing decision.
                    break;
                default:
                    throw new ExpertScopeException($"unknown router intervention {intervention.GetType().Name}.");
            }
        }

        foreach (int e in forced)
        {
            if (disabled.Contains(e) || removed.Contains(e))
            {
                throw new ExpertScopeException($"block {Layer}: expert {e} is both forced and disabled (or removed).");
            }
        }

        topK = Math.Max(topK, forced.Count);
        disabled.ExceptWith(removed);
        topK = Math.Min(topK, experts - disabled.Count - removed.Count - disabledTop);
        if (topK < 1)
        {
            throw new ExpertScopeException($"block {Layer}: every expert is disabled.");
        }

        return new RoutingPlan(topK, [.. disabled], [.. removed], [.. forced], keepOnlyTop, keptWeight, [.. scales]) { DisabledTop = disabledTop };
    }

    private int CheckExpert(ExpertId expert, RouterIntervention intervention) =>
        expert.Value >= 0 && expert.Value < Config.ExpertCount
            ? expert.Value
            : throw new ExpertScopeException($"{intervention}: expert {expert} does not exist in block {Layer} ({Config.ExpertCount} experts).");

    private readonly record struct RoutingPlan(int TopK, int[] Disabled, int[] Removed, int[] Forced, bool KeepOnlyTop, TopExpertWeight KeptWeight, (int Expert, float Factor)[] Scales)
    {
        /// <summary>Top-ranked experts masked per token (<see cref="DisableTopRankedExperts"/>).</summary>
        public int DisabledTop { get; init; }
    }
}

/// <summary>Every stage of one layer's routing for a batch; buffers are reused between batches.</summary>
public sealed class RoutingResult
{
    /// <summary>Tokens routed.</summary>
    public int TokenCount { get; private set; }

    /// <summary>Experts X.</summary>
    public int ExpertCount { get; private set; }

    /// <summary>Experts selected per token k (after interventions).</summary>
    public int TopK { get; private set; }

    /// <summary>Groups kept per token (0 without group-limited routing).</summary>
    public int GroupsKept { get; private set; }

    /// <summary>True when <see cref="BiasedScores"/> holds data.</summary>
    public bool HasBias { get; private set; }

    /// <summary>Logits <c>[T, X]</c>.</summary>
    public float[] Logits { get; private set; } = [];

    /// <summary>True when <see cref="BiasedLogits"/> holds data.</summary>
    public bool HasLogitBias { get; private set; }

    /// <summary>Logits plus the router projection's bias <c>[T, X]</c> (<c>ffn_moe_logits_biased</c>), when it has one.</summary>
    public float[] BiasedLogits { get; private set; } = [];

    /// <summary>Softmax over the selected experts' weights <c>[T, k]</c> (<c>ffn_moe_weights_softmax</c>), for <see cref="GatingFunction.SoftmaxWeight"/>.</summary>
    public float[] SoftmaxWeights { get; private set; } = [];

    /// <summary>
    /// For <see cref="GatingFunction.SoftmaxWeight"/>: softmax over all experts' biased logits <c>[T, X]</c>, the
    /// distribution observers receive as <see cref="RouterView.Probabilities"/> (llama.cpp's <c>ffn_moe_probs</c> is the
    /// logits there, which are no distribution).
    /// </summary>
    public float[] Distribution { get; private set; } = [];

    /// <summary>True when <see cref="Distribution"/> holds data.</summary>
    public bool HasDistribution { get; private set; }

    /// <summary>Gated probabilities <c>[T, X]</c> (<c>ffn_moe_probs</c>).</summary>
    public float[] Probabilities { get; private set; } = [];

    /// <summary>Probabilities plus selection bias <c>[T, X]</c> (<c>ffn_moe_probs_biased</c>), when a bias exists.</summary>
    public float[] BiasedScores { get; private set; } = [];

    /// <summary>Final selection scores <c>[T, X]</c>: biased, disabled experts and dropped groups at -inf (<c>ffn_moe_probs_masked</c>).</summary>
    public float[] Scores { get; private set; } = [];

    /// <summary>Kept groups <c>[T, GroupsKept]</c> (<c>ffn_moe_group_topk</c>).</summary>
    public int[] Groups { get; private set; } = [];

    /// <summary>Selected experts <c>[T, k]</c> (<c>ffn_moe_topk</c>).</summary>
    public int[] Experts { get; private set; } = [];

    /// <summary>Unbiased probabilities of the selected experts <c>[T, k]</c> (<c>ffn_moe_weights</c>).</summary>
    public float[] RawWeights { get; private set; } = [];

    /// <summary>Sums of the raw weights before clamping <c>[T]</c> (<c>ffn_moe_weights_sum</c>), when normalising.</summary>
    public float[] WeightSums { get; private set; } = [];

    /// <summary>Normalised weights <c>[T, k]</c> (<c>ffn_moe_weights_norm</c>), when normalising.</summary>
    public float[] NormalizedWeights { get; private set; } = [];

    /// <summary>Scaled weights <c>[T, k]</c> (<c>ffn_moe_weights_scaled</c>), when scaling.</summary>
    public float[] ScaledWeights { get; private set; } = [];

    /// <summary>Final mixing weights <c>[T, k]</c> after interventions.</summary>
    public float[] Weights { get; private set; } = [];

    /// <summary>A view for observers.</summary>
    public RouterView View(int firstPosition) => new(
        TokenCount,
        ExpertCount,
        TopK,
        firstPosition,
        Logits.AsSpan(0, TokenCount * ExpertCount),
        (HasDistribution ? Distribution : Probabilities).AsSpan(0, TokenCount * ExpertCount),
        Scores.AsSpan(0, TokenCount * ExpertCount),
        Groups.AsSpan(0, TokenCount * GroupsKept),
        Experts.AsSpan(0, TokenCount * TopK),
        Weights.AsSpan(0, TokenCount * TopK));

    internal void Reset(int tokenCount, int expertCount, int topK, int groupsKept, bool hasBias, bool hasLogitBias = false, bool hasDistribution = false)
    {
        TokenCount = tokenCount;
        ExpertCount = expertCount;
        TopK = topK;
        GroupsKept = groupsKept;
        HasBias = hasBias;
        int full = tokenCount * expertCount;
        int chosen = tokenCount * topK;
        Logits = Ensure(Logits, full);
        HasLogitBias = hasLogitBias;
        HasDistribution = hasDistribution;
        Distribution = Ensure(Distribution, hasDistribution ? full : 0);
        BiasedLogits = Ensure(BiasedLogits, hasLogitBias ? full : 0);
        SoftmaxWeights = Ensure(SoftmaxWeights, chosen);
        Probabilities = Ensure(Probabilities, full);
        BiasedScores = Ensure(BiasedScores, hasBias ? full : 0);
        Scores = Ensure(Scores, full);
        Groups = Ensure(Groups, tokenCount * groupsKept);
        Experts = Ensure(Experts, chosen);
        RawWeights = Ensure(RawWeights, chosen);
        WeightSums = Ensure(WeightSums, tokenCount);
        NormalizedWeights = Ensure(NormalizedWeights, chosen);
        ScaledWeights = Ensure(ScaledWeights, chosen);
        Weights = Ensure(Weights, chosen);
    }

    private static T[] Ensure<T>(T[] buffer, int length) => buffer.Length >= length ? buffer : new T[length];
}
