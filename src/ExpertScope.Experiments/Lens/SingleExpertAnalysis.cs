using System.Globalization;
using System.Text.Json;
using ExpertScope.Core;
using ExpertScope.Experiments.Analyses;
using ExpertScope.Experiments.Evaluation;
using ExpertScope.Experiments.Reports;
using ExpertScope.Experiments.Runs;
using ExpertScope.Models;
using ExpertScope.Models.Routing;

namespace ExpertScope.Experiments.Lens;

/// <summary>How the single kept expert is weighted.</summary>
public enum SingleExpertWeight
{
    /// <summary>
    /// Weight 1 for every router (MoE Lens, arXiv 2603.05806: the top expert alone, its weight renormalised over the
    /// one kept expert): <see cref="KeepOnlyTopExpert"/> with <see cref="TopExpertWeight.One"/>. On a normalising
    /// router without a routed scaling factor it equals k = 1 routing (<see cref="OverrideTopK"/> 1) bit for bit; on
    /// OLMoE, Qwen1.5-MoE and DeepSeek-V2/MoE (which do not normalise) it differs from <see cref="Raw"/>.
    /// </summary>
    Renormalized,

    /// <summary>Its own final weight from the full top-k routing (<see cref="KeepOnlyTopExpert"/>).</summary>
    Raw,

    /// <summary>The top-k's total final weight moved onto the top expert (<see cref="TopExpertWeight.Mass"/>).</summary>
    Mass,
}

/// <summary>Settings of <see cref="SingleExpertAnalysis"/>.</summary>
public sealed record SingleExpertSettings
{
    /// <summary>How the kept expert is weighted.</summary>
    public SingleExpertWeight Weight { get; init; } = SingleExpertWeight.Renormalized;

    /// <summary>Run with the shared experts on (as the model is).</summary>
    public bool SharedOn { get; init; } = true;

    /// <summary>Also (or only, with <see cref="SharedOn"/> false) run with the shared experts switched off (<see cref="DisableSharedExperts"/>).</summary>
    public bool SharedOff { get; init; }

    /// <summary>Threads of the forward pass.</summary>
    public int? ThreadCount { get; init; }
}

/// <summary>Mean per-token cosine similarity, in one layer, between a single-expert run and the full run.</summary>
/// <param name="Shared">"on" or "off".</param>
/// <param name="Variant">"per-layer" (only this layer changed, so both runs feed it the same hidden state) or "all-layers".</param>
/// <param name="Layer">Block index.</param>
/// <param name="MoeOutput">cos of <c>ffn_moe_out</c> (the routed mixture).</param>
/// <param name="FeedForwardOutput">cos of <c>ffn_out</c> (routed + shared experts).</param>
/// <param name="Residual">cos of <c>l_out</c> (the residual stream after the block).</param>
/// <param name="Tokens">Tokens averaged (rows with a zero vector are left out).</param>
public sealed record SingleExpertCosine(string Shared, string Variant, int Layer, double MoeOutput, double FeedForwardOutput, double Residual, int Tokens);

/// <summary>A perplexity of the input under one routing setting.</summary>
/// <param name="Shared">"on" or "off".</param>
/// <param name="Setting">"all-experts", "single-expert-all-layers", "single-expert-one-layer" or "top-m".</param>
/// <param name="Layer">The one changed block, or null.</param>
/// <param name="TopM">Experts kept per token in every layer (top-m curve), or null.</param>
/// <param name="Perplexity">exp(mean negative log-likelihood).</param>
/// <param name="NegativeLogLikelihood">Sum of −ln p over the scored tokens.</param>
/// <param name="Tokens">Tokens scored (every token after the first).</param>
public sealed record SingleExpertPerplexity(string Shared, string Setting, int? Layer, int? TopM, double Perplexity, double NegativeLogLikelihood, int Tokens);

/// <summary>Results of <see cref="SingleExpertAnalysis.Run"/>.</summary>
/// <param name="Cosines">Per shared setting, variant and MoE layer.</param>
/// <param name="Perplexities">Every perplexity computed.</param>
/// <param name="TopK">The model's k.</param>
/// <param name="HasSharedExperts">Whether any block has shared experts.</param>
public sealed record SingleExpertResult(IReadOnlyList<SingleExpertCosine> Cosines, IReadOnlyList<SingleExpertPerplexity> Perplexities, int TopK, bool HasSharedExperts);

/// <summary>
/// "An expert is all you need" (MoE Lens §4): how close is the output of the single top-weighted expert to the
/// k-expert mixture? Per MoE layer L, a run that keeps only the top expert in L (and nowhere else) is compared with
/// the full run at <c>ffn_moe_out-L</c>, <c>ffn_out-L</c> and <c>l_out-L</c>; since nothing before L changed, both
/// runs give block L the same input, so the comparison isolates that block. A run keeping one expert in every layer
/// gives the compounded (all-layers) variant. Perplexities: full, single expert in every layer, in one layer at a
/// time, and the top-m curve (k = m in every layer, weights renormalised) for m = 1..k.
/// </summary>
/// <remarks>
/// Every run is one unit of the run folder's journal (its numbers stored with it), so an interrupted analysis
/// resumes where it stopped. The input must fit in the model's context (one forward pass per run). The perplexity
/// sums −ln p in the same order as <see cref="Perplexity.Evaluate"/>, so on a normalising router the single-expert,
/// weight-1, all-layers perplexity equals the engine's <c>OverrideTopK(1)</c> perplexity exactly.
/// </remarks>
public static class SingleExpertAnalysis
{
    private static readonly HookKind[] Sites = [HookKind.ExpertOutput, HookKind.FeedForwardOutput, HookKind.LayerOutput];

    /// <summary>Runs the analysis over <paramref name="tokens"/>.</summary>
    /// <exception cref="ExpertScopeException">Fewer than two tokens, more than the context, or a model without MoE blocks.</exception>
    public static SingleExpertResult Run(
        MoeModel model, IReadOnlyList<int> tokens, SingleExpertSettings settings, RunFolder folder, IProgressSink progress, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(progress);
        if (tokens.Count < 2 || tokens.Count > model.Hyperparameters.ContextLength)
        {
            throw new ExpertScopeException(
                $"The input has {tokens.Count} tokens; the single-expert analysis needs 2 to {model.Hyperparameters.ContextLength} (the model's context).");
        }

        var moeLayers = model.Blocks.Where(b => b.Moe is not null).Select(b => b.Layer).Order().ToArray();
        if (moeLayers.Length == 0)
        {
            throw new ExpertScopeException($"The model '{model.FilePath}' has no MoE blocks.");
        }

        int topK = model.Blocks.First(b => b.Moe is not null).Moe!.Router.Config.TopK;
        bool hasShared = model.Blocks.Any(b => b.Moe?.Shared is not null);
        var sharedModes = new List<string>();
        if (settings.SharedOn)
        {
            sharedModes.Add("on");
        }

        if (settings.SharedOff && hasShared)
        {
            sharedModes.Add("off");
        }

        if (sharedModes.Count == 0)
        {
            throw new ExpertScopeException($"--shared off: the model '{model.FilePath}' has no shared experts, so there is nothing to switch off.");
        }

        var ids = tokens.ToArray();
        int runsPerMode = 2 + moeLayers.Length + Math.Max(0, topK - 1);
        int total = runsPerMode * sharedModes.Count;
        int already = folder.FinishedUnits.Count(u => u.StartsWith("run/", StringComparison.Ordinal));
        var cosines = new List<SingleExpertCosine>();
        var perplexities = new List<SingleExpertPerplexity>();
        using var task = progress.StartTask("single-expert runs", total, already, "runs");
        foreach (string shared in sharedModes)
        {
            RouterIntervention[] baseInterventions = shared == "off" ? [new DisableSharedExperts(LayerSelector.All)] : [];
            ActivationRecorder? baseline = null;
            ActivationRecorder Baseline()
            {
                if (baseline is null)
                {
                    baseline = new ActivationRecorder(Sites);
                    model.Run(ids, new RunOptions { Interventions = baseInterventions, Observers = [baseline], ThreadCount = settings.ThreadCount, Logits = LogitsSelection.None });
                }

                return baseline;
            }

            UnitResult Unit(string name, IReadOnlyList<RouterIntervention> extra, int[] compareLayers)
            {
                string unit = $"run/{shared}/{name}";
                var saved = folder.Journal.Records.LastOrDefault(r => r.Unit == unit);
                if (saved.Unit is not null && saved.Data is not null)
                {
                    return JsonSerializer.Deserialize<UnitResult>(saved.Data, JsonOutput.CompactOptions)!;
                }

                cancellationToken.ThrowIfCancellationRequested();
                var recorder = new ActivationRecorder(compareLayers.Length > 0 ? Sites : []);
                var logits = model.Run(ids, new RunOptions { Interventions = [.. baseInterventions, .. extra], Observers = [recorder], ThreadCount = settings.ThreadCount });
                double nll = 0;
                for (int position = 1; position < ids.Length; position++)
                {
                    nll -= Perplexity.LogProbability(logits.Row(position - 1), ids[position]);
                }

                var layerCosines = new List<double[]>();
                foreach (int layer in compareLayers)
                {
                    var reference = Baseline();
                    var row = new double[4];
                    for (int s = 0; s < Sites.Length; s++)
                    {
                        var site = new HookSite(Sites[s], layer);
                        var (a, width) = recorder.Get(site);
                        var (b, _) = reference.Get(site);
                        (row[s], int count) = MeanCosine(a, b, width);
                        row[3] = count;
                    }

                    layerCosines.Add([layer, .. row]);
                }

                var result = new UnitResult { NegativeLogLikelihood = nll, Tokens = ids.Length - 1, Cosines = layerCosines };
                folder.MarkFinished(unit, JsonSerializer.Serialize(result, JsonOutput.CompactOptions));
                task.Advance();
                return result;
            }

            SingleExpertPerplexity Ppl(UnitResult r, string setting, int? layer, int? m) =>
                new(shared, setting, layer, m, Math.Exp(r.NegativeLogLikelihood / r.Tokens), r.NegativeLogLikelihood, r.Tokens);

            RouterIntervention Single(LayerSelector layers) => new KeepOnlyTopExpert(layers) { Weight = TopExpertWeightOf(settings.Weight) };

            var full = Unit("all-experts", [], []);
            perplexities.Add(Ppl(full, "all-experts", null, null));
            var all = Unit("single-all-layers", [Single(LayerSelector.All)], moeLayers);
            perplexities.Add(Ppl(all, "single-expert-all-layers", null, null));
            foreach (var c in all.Cosines)
            {
                cosines.Add(new SingleExpertCosine(shared, "all-layers", (int)c[0], c[1], c[2], c[3], (int)c[4]));
            }

            foreach (int layer in moeLayers)
            {
                var one = Unit(string.Create(CultureInfo.InvariantCulture, $"single-layer-{layer}"), [Single(LayerSelector.Only(layer))], [layer]);
                perplexities.Add(Ppl(one, "single-expert-one-layer", layer, null));
                var c = one.Cosines[0];
                cosines.Add(new SingleExpertCosine(shared, "per-layer", layer, c[1], c[2], c[3], (int)c[4]));
            }

            for (int m = 1; m <= topK; m++)
            {
                var r = m == topK ? full : Unit(string.Create(CultureInfo.InvariantCulture, $"top-{m}"), [new OverrideTopK(LayerSelector.All, m)], []);
                perplexities.Add(Ppl(r, "top-m", null, m));
            }
        }

        task.Complete();
        return new SingleExpertResult(cosines, perplexities, topK, hasShared);
    }

    /// <summary>Writes <c>results.json</c>, <c>cosine.csv</c>, <c>perplexity.csv</c>, SVG figures and <c>report.html</c>.</summary>
    public static void WriteOutputs(SingleExpertResult result, string folder, string modelName, SingleExpertSettings settings, int inputTokens, bool randomWeights = false)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(settings);
        var f = CultureInfo.InvariantCulture;
        using (var csv = CsvWriter.Create(Path.Combine(folder, "cosine.csv")))
        {
            csv.WriteRow("shared", "variant", "layer", "ffn_moe_out", "ffn_out", "l_out", "tokens");
            foreach (var c in result.Cosines)
            {
                csv.WriteRow(c.Shared, c.Variant, c.Layer, c.MoeOutput, c.FeedForwardOutput, c.Residual, c.Tokens);
            }
        }

        using (var csv = CsvWriter.Create(Path.Combine(folder, "perplexity.csv")))
        {
            csv.WriteRow("shared", "setting", "layer", "top_m", "perplexity", "negative_log_likelihood", "tokens");
            foreach (var p in result.Perplexities)
            {
                csv.WriteRow(p.Shared, p.Setting, p.Layer, p.TopM, p.Perplexity, p.NegativeLogLikelihood, p.Tokens);
            }
        }

        string weight = settings.Weight switch
        {
            SingleExpertWeight.Renormalized => "1 (renormalised over the one kept expert, for every router)",
            SingleExpertWeight.Mass => "the top-k's total weight",
            _ => "its own weight in the full top-k routing",
        };
        var report = new HtmlReport("One expert vs the mixture") { Subtitle = modelName, Generated = DateTimeOffset.UtcNow, RandomWeights = randomWeights };
        report.AddSummary(
            string.Create(f, $"{inputTokens} input tokens; k = {result.TopK}; the single expert's weight: {weight}."),
            "Per-layer: only that block keeps its top expert, so both runs give it the same input. All-layers: every block keeps one expert.");
        foreach (var shared in result.Cosines.Select(c => c.Shared).Distinct())
        {
            var section = report.AddSection("Shared experts " + shared);
            var series = new List<LineSeries>();
            foreach (var (variant, label) in new[] { ("per-layer", "per layer"), ("all-layers", "all layers") })
            {
                var rows = result.Cosines.Where(c => c.Shared == shared && c.Variant == variant).OrderBy(c => c.Layer).ToList();
                double[] x = [.. rows.Select(c => (double)c.Layer)];
                series.Add(new LineSeries($"ffn_moe_out ({label})", x, [.. rows.Select(c => c.MoeOutput)]));
                if (result.HasSharedExperts)
                {
                    series.Add(new LineSeries($"ffn_out ({label})", x, [.. rows.Select(c => c.FeedForwardOutput)]));
                }

                series.Add(new LineSeries($"l_out ({label})", x, [.. rows.Select(c => c.Residual)]));
            }

            var cosineChart = new LineChart { Title = "Cosine similarity, single expert vs all k", Series = series, XLabel = "layer", YLabel = "mean cosine", YMaximum = 1 };
            cosineChart.SaveSvg(Path.Combine(folder, $"cosine_shared_{shared}.svg"));
            section.AddFigure(cosineChart);

            var perLayer = result.Perplexities.Where(p => p.Shared == shared && p.Setting == "single-expert-one-layer").OrderBy(p => p.Layer).ToList();
            double full = result.Perplexities.First(p => p.Shared == shared && p.Setting == "all-experts").Perplexity;
            var pplChart = new LineChart
            {
                Title = "Perplexity with one expert in one layer (dashed: all experts)",
                Series = [new LineSeries("single expert in this layer", [.. perLayer.Select(p => (double)p.Layer!.Value)], [.. perLayer.Select(p => p.Perplexity)])],
                XLabel = "layer", YLabel = "perplexity", ReferenceY = full,
            };
            pplChart.SaveSvg(Path.Combine(folder, $"perplexity_layers_shared_{shared}.svg"));
            section.AddFigure(pplChart);

            var curve = result.Perplexities.Where(p => p.Shared == shared && p.Setting == "top-m").OrderBy(p => p.TopM).ToList();
            var curveChart = new LineChart
            {
                Title = "Perplexity with the top m experts in every layer",
                Series = [new LineSeries("top-m", [.. curve.Select(p => (double)p.TopM!.Value)], [.. curve.Select(p => p.Perplexity)])],
                XLabel = "m (experts per token)", YLabel = "perplexity",
            };
            curveChart.SaveSvg(Path.Combine(folder, $"perplexity_topm_shared_{shared}.svg"));
            section.AddFigure(curveChart);
            section.AddTable(new ReportTable(
                ["setting", "layer", "m", "perplexity"],
                [.. result.Perplexities.Where(p => p.Shared == shared).Select(p => (IReadOnlyList<string>)[p.Setting, p.Layer?.ToString(f) ?? "", p.TopM?.ToString(f) ?? "", ReportTable.Number(p.Perplexity, 6)])]));
        }

        report.Save(Path.Combine(folder, "report.html"));
        RandomWeightsNotice.WriteResultsFile(Path.Combine(folder, "results.json"), new
        {
            analysis = "single-expert",
            model = modelName,
            input_tokens = inputTokens,
            top_k = result.TopK,
            weight = WeightName(settings.Weight),
            has_shared_experts = result.HasSharedExperts,
            cosines = result.Cosines.Select(c => new { shared = c.Shared, variant = c.Variant, layer = c.Layer, ffn_moe_out = c.MoeOutput, ffn_out = c.FeedForwardOutput, l_out = c.Residual, tokens = c.Tokens }),
            perplexities = result.Perplexities.Select(p => new { shared = p.Shared, setting = p.Setting, layer = p.Layer, top_m = p.TopM, perplexity = p.Perplexity, negative_log_likelihood = p.NegativeLogLikelihood, tokens = p.Tokens }),
        }, randomWeights);
    }

    /// <summary>The CLI name of a weighting: renormalized, raw or mass.</summary>
    public static string WeightName(SingleExpertWeight weight) => weight.ToString().ToLowerInvariant();

    /// <summary>The engine's weighting of the kept expert for <paramref name="weight"/>.</summary>
    public static TopExpertWeight TopExpertWeightOf(SingleExpertWeight weight) => weight switch
    {
        SingleExpertWeight.Renormalized => TopExpertWeight.One,
        SingleExpertWeight.Mass => TopExpertWeight.Mass,
        _ => TopExpertWeight.Own,
    };

    private static (double Mean, int Count) MeanCosine(float[] a, float[] b, int width)
    {
        double sum = 0;
        int count = 0;
        for (int row = 0; row * width < a.Length; row++)
        {
            var x = a.AsSpan(row * width, width);
            var y = b.AsSpan(row * width, width);
            if (IsZero(x) || IsZero(y))
            {
                continue;
            }

            sum += HiddenStateSimilarity.Cosine(x, y);
            count++;
        }

        return (count > 0 ? sum / count : double.NaN, count);
    }

    private static bool IsZero(ReadOnlySpan<float> values)
    {
        foreach (float v in values)
        {
            if (v != 0)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>One run's numbers as journalled: the negative log-likelihood and, per compared layer, [layer, cos moe, cos ffn, cos l_out, tokens].</summary>
    private sealed class UnitResult
    {
        public double NegativeLogLikelihood { get; init; }

        public int Tokens { get; init; }

        public List<double[]> Cosines { get; init; } = [];
    }
}
