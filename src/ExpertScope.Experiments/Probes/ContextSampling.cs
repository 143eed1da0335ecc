using ExpertScope.Experiments.Data;

namespace ExpertScope.Experiments.Probes;

/// <summary>
/// The substitution probe's <c>--limit</c>: whole contexts, not single pairs, so a sampled context keeps its similar
/// and dissimilar substitutes together (the per-context test needs both in one context).
/// </summary>
public static class ContextSampling
{
    /// <summary>
    /// At most <paramref name="limit"/> pairs: contexts (<see cref="WordPair.ContextId"/>; a pair without one is its own
    /// context) in a seeded random order, each with all its pairs in data-set order, the last one cut at the limit.
    /// Without a limit, every pair in data-set order.
    /// </summary>
    public static IReadOnlyList<WordPair> Sample(IReadOnlyList<WordPair> pairs, int? limit, int seed)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        if (limit is not { } cap || cap >= pairs.Count)
        {
            return pairs;
        }

        var contexts = pairs.GroupBy(pair => pair.ContextId ?? pair.Id, StringComparer.Ordinal).Select(group => group.ToArray()).ToArray();
        new Random(seed).Shuffle(contexts);
        return [.. contexts.SelectMany(context => context).Take(cap)];
    }
}
