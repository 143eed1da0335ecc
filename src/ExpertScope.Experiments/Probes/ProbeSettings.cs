using System.Globalization;
using ExpertScope.Experiments.Metrics;

namespace ExpertScope.Experiments.Probes;

/// <summary>Which semantic-routing probe to run.</summary>
public enum ProbeKind
{
    /// <summary>One word in two contexts: same sense against different sense (WiC, CoarseWSD-20, MCL-WiC, WordNet).</summary>
    WordSense,

    /// <summary>One context with the target replaced by a similar or a dissimilar substitute (SWORDS).</summary>
    Substitution,
}

/// <summary>The routing similarity a probe's statistics are computed on (all of them are written to <c>pairs.csv</c>).</summary>
public enum ProbeMetric
{
    /// <summary>Chance-corrected overlap κ = (O − k²/N)/(k − k²/N) (chance under uniform expert load).</summary>
    Kappa,

    /// <summary>|A ∩ B| / k.</summary>
    Overlap,

    /// <summary>|A ∩ B| / |A ∪ B|.</summary>
    Jaccard,

    /// <summary>Σ min weight over shared experts, each token's selected weights renormalised to sum 1 (in [0, 1]).</summary>
    Weighted,

    /// <summary>Jensen-Shannon distance between the full router distributions (a distance: lower means more similar).</summary>
    JensenShannon,

    /// <summary>κ against the chance of the measured expert load: (O − Σₑ qₑ²)/(k − Σₑ qₑ²).</summary>
    LoadCorrectedKappa,
}

/// <summary>Which token's routing stands for a word occurrence.</summary>
public enum ProbeReadout
{
    /// <summary>The target word's own sub-tokens (the default).</summary>
    Target,

    /// <summary>
    /// The last token of the sentence: the routing after all disambiguating context has been read (a causal model's
    /// target token sees only the words before it).
    /// </summary>
    SentenceEnd,
}

/// <summary>Everything that decides a probe's results; recorded in the run manifest so a changed setting refuses to resume.</summary>
public sealed record ProbeSettings
{
    /// <summary>The probe.</summary>
    public required ProbeKind Kind { get; init; }

    /// <summary>Data set spec such as <c>wic:dev</c>, <c>coarsewsd20</c>, <c>mcl-wic:fr</c>, <c>wordnet</c>, <c>swords:dev</c>.</summary>
    public required string Dataset { get; init; }

    /// <summary>The evaluation data folder (holding <c>wic/</c>, <c>swords/</c>, …); see <see cref="ProbeData.ResolveDataFolder"/>.</summary>
    public required string DataFolder { get; init; }

    /// <summary>WordNet 3.0 dictionary folder (for <c>wordnet</c> and <see cref="WordNetDissimilar"/>); null for the system default.</summary>
    public string? WordNetFolder { get; init; }

    /// <summary>At most this many pairs (a seeded sample balanced across labels); null for all.</summary>
    public int? Limit { get; init; }

    /// <summary>Seed of every random choice (pair sample, control sampling, bootstrap).</summary>
    public int Seed { get; init; }

    /// <summary>The metric the statistics use.</summary>
    public ProbeMetric Metric { get; init; } = ProbeMetric.Kappa;

    /// <summary>How multi-token words are reduced to one value (default: every sub-token pairing averaged).</summary>
    public SubTokenMode SubTokens { get; init; } = SubTokenMode.Mean;

    /// <summary>Which token's routing is compared: the target's sub-tokens or the sentence's last token.</summary>
    public ProbeReadout Position { get; init; } = ProbeReadout.Target;

    /// <summary>
    /// Keep pairs whose two token sequences are identical up to and including the target's last sub-token. They are
    /// excluded by default: a causal model routes such targets identically whatever their sense, so they measure
    /// nothing about meaning (WiC has more of them among same-sense pairs).
    /// </summary>
    public bool KeepIdenticalPrefixes { get; init; }

    /// <summary>Count always-active shared experts in the overlap metrics (excluded by default: they say nothing about routing).</summary>
    public bool IncludeShared { get; init; }

    /// <summary>Skip malformed data records (listed in the results) instead of stopping at the first.</summary>
    public bool Lenient { get; init; }

    /// <summary>Substitution: the lowest SWORDS score counted as a similar substitute.</summary>
    public double SimilarThreshold { get; init; } = 0.5;

    /// <summary>Substitution: WordNet dissimilar substitutes added per target (0 = none).</summary>
    public int WordNetDissimilar { get; init; }

    /// <summary>Substitution: put each substitute into the target's inflected form with WordNet's morphology (<see cref="Data.WordNet.SubstituteInflector"/>).</summary>
    public bool InflectSubstitutes { get; init; } = true;

    /// <summary>Bootstrap resamples for every confidence interval.</summary>
    public int BootstrapResamples { get; init; } = 2000;

    /// <summary>Largest |position difference| (in tokens) of a pair counted as position-matched.</summary>
    public int PositionMatchTolerance { get; init; } = 2;

    /// <summary>Sentences run between two durable checkpoints of the trace and journal.</summary>
    public int CheckpointEvery { get; init; } = 32;

    /// <summary>Threads of the forward pass (null: all cores); results do not depend on it.</summary>
    public int? ThreadCount { get; init; }

    /// <summary>How float weight matrices are multiplied (the default reproduces llama.cpp's portable kernels).</summary>
    public Models.FloatArithmetic FloatArithmetic { get; init; } = Models.FloatArithmetic.Reference;

    /// <summary>llama.cpp's cache types and flash attention (<c>--cache-type-k/-v</c>, <c>--no-flash-attn</c>) of the engine.</summary>
    public Models.AttentionSettings Attention { get; init; } = Models.AttentionSettings.Default;

    /// <summary>Take routing from a vLLM or SGLang server (expert ids only) instead of the engine; null: the engine.</summary>
    public RoutingSources.RoutingServerSettings? Server { get; init; }

    /// <summary>Run the engine but keep expert ids only, exactly what a server gives (to check a server run locally).</summary>
    public bool IdsOnly { get; init; }

    /// <summary>The routing source as runs record it: <c>engine</c>, <c>engine-ids</c>, <c>vllm</c> or <c>sglang</c>.</summary>
    public string RoutingSourceName => Server?.SourceName ?? (IdsOnly ? "engine-ids" : "engine");

    /// <summary>The settings that decide the results, as text (for the manifest and <c>results.json</c>); paths and threads are left out.</summary>
    public IReadOnlyDictionary<string, string> ToDictionary()
    {
        var settings = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["probe"] = KindName(Kind),
            ["dataset"] = Dataset,
            ["limit"] = Limit?.ToString(CultureInfo.InvariantCulture) ?? "all",
            ["metric"] = MetricName(Metric),
            ["subtokens"] = SubTokens switch { SubTokenMode.First => "first", SubTokenMode.Last => "last", _ => "all" },
            ["include_shared"] = IncludeShared ? "true" : "false",
            ["position"] = ReadoutName(Position),
            ["identical_prefixes"] = KeepIdenticalPrefixes ? "kept" : "excluded",
            ["lenient"] = Lenient ? "true" : "false",
            ["similar_threshold"] = SimilarThreshold.ToString("R", CultureInfo.InvariantCulture),
            ["wordnet_dissimilar"] = WordNetDissimilar.ToString(CultureInfo.InvariantCulture),
            ["bootstrap_resamples"] = BootstrapResamples.ToString(CultureInfo.InvariantCulture),
            ["position_match_tolerance"] = PositionMatchTolerance.ToString(CultureInfo.InvariantCulture),
        };

        if (Kind == ProbeKind.Substitution)
        {
            settings["inflect_substitutes"] = InflectSubstitutes ? "true" : "false";
        }

        // Only the non-default arithmetic is recorded, so runs made before the option existed still resume.
        if (FloatArithmetic != Models.FloatArithmetic.Reference)
        {
            settings["arithmetic"] = "fused";
        }

        // Likewise only attention settings other than llama.cpp's defaults (they change the routing scores).
        foreach (var (key, value) in Attention.NonDefaultSettings())
        {
            settings[key] = value;
        }

        // Likewise only a routing source other than the full engine (ids-only routing changes which metrics exist).
        if (RoutingSourceName != "engine")
        {
            settings["routing_source"] = RoutingSourceName;
        }

        return settings;
    }

    /// <summary>The command-line name of a probe kind.</summary>
    public static string KindName(ProbeKind kind) => kind == ProbeKind.WordSense ? "word-sense" : "substitution";

    /// <summary>The command-line name of a readout (<c>target|sentence-end</c>).</summary>
    public static string ReadoutName(ProbeReadout readout) => readout == ProbeReadout.SentenceEnd ? "sentence-end" : "target";

    /// <summary>Parses a readout name (<c>target|sentence-end</c>).</summary>
    /// <exception cref="Core.ExpertScopeException">Unknown name.</exception>
    public static ProbeReadout ParseReadout(string name) => name.ToLowerInvariant() switch
    {
        "target" => ProbeReadout.Target,
        "sentence-end" => ProbeReadout.SentenceEnd,
        _ => throw new Core.ExpertScopeException($"unknown --position '{name}'; use target or sentence-end"),
    };

    /// <summary>The command-line name of a metric.</summary>
    public static string MetricName(ProbeMetric metric) => metric switch
    {
        ProbeMetric.Kappa => "kappa",
        ProbeMetric.LoadCorrectedKappa => "kappa-load",
        ProbeMetric.Overlap => "overlap",
        ProbeMetric.Jaccard => "jaccard",
        ProbeMetric.Weighted => "weighted",
        _ => "js",
    };

    /// <summary>Parses a metric name (<c>kappa|kappa-load|overlap|jaccard|weighted|js</c>).</summary>
    /// <exception cref="Core.ExpertScopeException">Unknown name.</exception>
    public static ProbeMetric ParseMetric(string name) => name.ToLowerInvariant() switch
    {
        "kappa" => ProbeMetric.Kappa,
        "kappa-load" => ProbeMetric.LoadCorrectedKappa,
        "overlap" => ProbeMetric.Overlap,
        "jaccard" => ProbeMetric.Jaccard,
        "weighted" => ProbeMetric.Weighted,
        "js" => ProbeMetric.JensenShannon,
        _ => throw new Core.ExpertScopeException($"unknown metric '{name}'; use kappa, kappa-load, overlap, jaccard, weighted or js"),
    };

    /// <summary>Parses a sub-token mode (<c>all|first|last</c>).</summary>
    /// <exception cref="Core.ExpertScopeException">Unknown name.</exception>
    public static SubTokenMode ParseSubTokens(string name) => name.ToLowerInvariant() switch
    {
        "all" or "mean" => SubTokenMode.Mean,
        "first" => SubTokenMode.First,
        "last" => SubTokenMode.Last,
        _ => throw new Core.ExpertScopeException($"unknown --subtokens '{name}'; use all, first or last"),
    };
}
