using ExpertScope.Core;
using ExpertScope.Experiments.Runs;
using ExpertScope.Experiments.Storage;
using ExpertScope.Formats;

namespace ExpertScope.Experiments.Probes;

/// <summary>What the model is, as the outputs report it.</summary>
/// <param name="FileName">The model's file name (no folder, so outputs do not depend on where it lies).</param>
/// <param name="Sha256">SHA-256 of the model file.</param>
/// <param name="Name"><c>general.name</c>, or null.</param>
/// <param name="Architecture"><c>general.architecture</c>.</param>
/// <param name="ExpertCount">Routed experts per MoE layer.</param>
/// <param name="TopK">Experts selected per token.</param>
/// <param name="SharedExperts">Always-active shared experts.</param>
public sealed record ProbeModelInfo(string FileName, string Sha256, string? Name, string Architecture, int ExpertCount, int TopK, int SharedExperts)
{
    /// <summary>
    /// True when the checkpoint is one of ExpertScope's generated models with random weights (its name contains
    /// <c>synthetic</c>, <c>golden</c> or <c>random</c>): its routing carries no meaning.
    /// </summary>
    public bool HasRandomWeights => Reports.RandomWeightsNotice.IsRandom(Name);

    /// <summary>Transformer blocks of the model (<c>block_count</c>), dense ones included; <c>compare</c> places layers at relative depth with it.</summary>
    public int? BlockCount { get; init; }
}

/// <summary>The finished probe: results plus what went into them.</summary>
/// <param name="Settings">The settings.</param>
/// <param name="Model">The model.</param>
/// <param name="Data">Data-set counts.</param>
/// <param name="Plan">The plan.</param>
/// <param name="Routing">Run statistics (sentences run and resumed).</param>
/// <param name="Results">The statistics.</param>
public sealed record ProbeOutcome(ProbeSettings Settings, ProbeModelInfo Model, ProbeDataSet Data, ProbePlan Plan, ProbeRouting Routing, ProbeResults Results)
{
    /// <summary>Plain-language findings, the same in the console, <c>results.json</c> and <c>report.html</c>.</summary>
    public IReadOnlyList<string> Summary => ProbeOutputs.Summarize(this);
}

/// <summary>Runs a whole probe: load data and model, plan, route (resumably), score, analyse, write the outputs.</summary>
public static class ProbeExperiment
{
    /// <summary>Runs the probe and writes <c>results.json</c>, <c>pairs.csv</c>, <c>trace.parquet</c> and <c>report.html</c> into <paramref name="outFolder"/>.</summary>
    /// <param name="modelPath">The GGUF model.</param>
    /// <param name="settings">The settings.</param>
    /// <param name="outFolder">The output (and run) folder; an earlier attempt with the same settings is resumed.</param>
    /// <param name="progress">Progress display.</param>
    /// <param name="commandLine">The command line, kept in the manifest (not compared on resume).</param>
    /// <param name="cancellationToken">Stops the run at the next sentence.</param>
    /// <exception cref="RunMismatchException">The folder holds a run with other settings, seed or model.</exception>
    /// <exception cref="ExpertScopeException">Missing data, malformed records, or a model without MoE layers.</exception>
    public static async Task<ProbeOutcome> RunAsync(
        string modelPath, ProbeSettings settings, string outFolder, IProgressSink? progress = null, string? commandLine = null,
        CancellationToken cancellationToken = default) =>
        (await RunCoreAsync(modelPath, settings, outFolder, null, progress, commandLine, cancellationToken).ConfigureAwait(false)).Outcome!;

    /// <summary>
    /// Routes only the sentences of one shard (<c>--shard i/n</c>: sentence index mod n = i) into
    /// <paramref name="outFolder"/>'s trace and journal, without analysis. Merge the shards' folders
    /// (<see cref="RunMerge.MergeFoldersAsync"/>) and run the probe on the merged folder: it resumes every sentence and
    /// writes the same results as an unsharded run.
    /// </summary>
    public static async Task<ProbeRouting> RouteShardAsync(
        string modelPath, ProbeSettings settings, Shard shard, string outFolder, IProgressSink? progress = null, string? commandLine = null,
        CancellationToken cancellationToken = default) =>
        (await RunCoreAsync(modelPath, settings, outFolder, shard, progress, commandLine, cancellationToken).ConfigureAwait(false)).Routing;

    private static async Task<(ProbeOutcome? Outcome, ProbeRouting Routing)> RunCoreAsync(
        string modelPath, ProbeSettings settings, string outFolder, Shard? shard, IProgressSink? progress, string? commandLine,
        CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentException.ThrowIfNullOrEmpty(outFolder);
        progress ??= NullProgressSink.Instance;
        if (settings.BootstrapResamples < 100)
        {
            throw new ExpertScopeException($"bootstrap resamples must be at least 100, got {settings.BootstrapResamples}");
        }

        if (settings.Limit is < 1)
        {
            throw new ExpertScopeException($"--limit must be at least 1, got {settings.Limit}");
        }

        if (!File.Exists(modelPath))
        {
            throw new ExpertScopeException($"model file '{modelPath}' does not exist");
        }

        var data = ProbeData.Load(settings);
        if (data.Pairs.Count == 0)
        {
            throw new ExpertScopeException($"data set '{settings.Dataset}' gave no pairs");
        }

        var sha = await FileHash.Sha256Async(modelPath, cancellationToken).ConfigureAwait(false);
        using var local = ProbeRoutingSource.Open(modelPath, settings);
        var source = local.Source;
        if (!source.Detail.Weights && settings.Metric is ProbeMetric.Weighted or ProbeMetric.JensenShannon)
        {
            throw new ExpertScopeException(
                $"--metric {ProbeSettings.MetricName(settings.Metric)} needs router weights and probabilities, which the routing source '{settings.RoutingSourceName}' does not give (expert ids only); use kappa, overlap or jaccard");
        }

        var info = local.Info;
        if (info.Moe is not { } moe)
        {
            throw new ExpertScopeException($"{modelPath}: not a Mixture-of-Experts model (no expert_count)");
        }

        var modelInfo = new ProbeModelInfo(Path.GetFileName(modelPath), sha, info.Name, info.Architecture,
            checked((int)moe.ExpertCount), checked((int)(moe.ExpertUsedCount ?? 0)), checked((int)(moe.ExpertSharedCount ?? 0)))
        {
            BlockCount = info.Hyperparameters.BlockCount is { } blocks ? checked((int)blocks) : null,
        };
        var plan = ProbePlan.Build(settings.Kind, data, local.Tokenizer, settings.Seed, local.ContextLength, settings.Position, settings.KeepIdenticalPrefixes);
        if (plan.Pairs.Count == 0)
        {
            throw new ExpertScopeException($"data set '{settings.Dataset}': every pair was dropped ({string.Join("; ", plan.Dropped.Take(3))}{(plan.Dropped.Count > 3 ? "; …" : string.Empty)})");
        }

        var manifest = new RunManifest
        {
            Kind = "probe " + ProbeSettings.KindName(settings.Kind),
            Settings = settings.ToDictionary(),
            Seed = settings.Seed,
            ModelSha256 = sha,
            CommandLine = commandLine,
            ExpertScopeVersion = TraceMetadata.CurrentVersion,
        };
        using var folder = RunFolder.OpenOrCreate(outFolder, manifest);
        var metadata = new TraceMetadata
        {
            ModelSha256 = sha,
            Architecture = info.Architecture,
            ExpertCount = modelInfo.ExpertCount,
            TopK = modelInfo.TopK,
            CommandLine = commandLine ?? string.Empty,
            // The trace names the arithmetic that made it (as `trace` does), so a fused probe's trace is not read as reference.
            FloatArithmetic = settings.FloatArithmetic == Models.FloatArithmetic.Fused ? "fused" : "reference",
            RoutingSource = settings.RoutingSourceName,
            Attention = TraceMetadata.AttentionName(settings.Attention),
            MoeBlocks = source.LayerMap.ToString(),
        };
        var routing = await ProbeRunner.RunAsync(source, plan, folder, metadata, settings.CheckpointEvery, progress, cancellationToken, shard)
            .ConfigureAwait(false);
        if (shard is not null)
        {
            return (null, routing);
        }

        var loads = ProbeAnalysis.MeasureLoads(routing);
        var measurements = ProbeAnalysis.Score(plan.Pairs, routing, settings, modelInfo.SharedExperts, loads);
        var results = ProbeAnalysis.Analyze(settings.Kind, routing.Layers, measurements, settings, loads);
        var outcome = new ProbeOutcome(settings, modelInfo, data, plan, routing, results);
        ProbeOutputs.WriteAll(outcome, outFolder);
        return (outcome, routing);
    }
}
