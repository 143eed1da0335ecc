using System.Globalization;
using System.Text.Json;
using ExpertScope.Core;
using ExpertScope.Experiments.Analyses;
using ExpertScope.Experiments.Reports;
using ExpertScope.Experiments.Runs;
using ExpertScope.Models;
using ExpertScope.Models.Routing;

namespace ExpertScope.Experiments.Lens;

/// <summary>Whether a selected expert's output is read as computed or multiplied by its mixing weight.</summary>
public enum ExpertOutputScale
{
    /// <summary>The expert's own output (<c>ffn_moe_weighted</c> divided by the weight).</summary>
    Unweighted,

    /// <summary>Its contribution to the mixture (<c>ffn_moe_weighted</c> as is).</summary>
    Weighted,
}

/// <summary>What vector an expert or mixture readout decodes.</summary>
public enum LensReadoutKind
{
    /// <summary>
    /// MoE Lens's extended logit lens (arXiv 2603.05806, §5): the residual stream entering the feed-forward part
    /// (<c>ffn_inp</c>) plus the expert's output (or plus the mixture), the state the block would hand on if that
    /// were its whole feed-forward output.
    /// </summary>
    Extended,

    /// <summary>The expert's output (or the mixture) alone, as a bare vector.</summary>
    Bare,
}

/// <summary>One logit-lens readout: a vector at one layer and position through the final norm and unembedding.</summary>
/// <param name="Layer">Block index.</param>
/// <param name="Source"><c>l_out</c> (residual after the block), <c>ffn_moe_out</c> (the mixture) or <c>expert</c>.</param>
/// <param name="Rank">For an expert, its selection rank (0 = first); otherwise −1.</param>
/// <param name="Expert">For an expert, its index; otherwise −1.</param>
/// <param name="Position">Token position.</param>
/// <param name="TopTokens">The most probable tokens, best first.</param>
/// <param name="EntropyBits">Entropy of the readout distribution, bits.</param>
/// <param name="KullbackLeiblerToFinal">KL(final distribution at the position ‖ readout), nats.</param>
/// <param name="AgreesWithFinal">Whether the readout's top-1 token is the model's final top-1 token.</param>
public sealed record LensReadout(
    int Layer, string Source, int Rank, int Expert, int Position, IReadOnlyList<TokenProbability> TopTokens, double EntropyBits, double KullbackLeiblerToFinal, bool AgreesWithFinal);

/// <summary>Means over positions of one (layer, source) readout.</summary>
/// <param name="Layer">Block index.</param>
/// <param name="Source">As <see cref="LensReadout.Source"/>; experts are summarised per rank (<c>expert-r0</c>, …).</param>
/// <param name="EntropyBits">Mean entropy, bits.</param>
/// <param name="KullbackLeiblerToFinal">Mean KL(final ‖ readout), nats.</param>
/// <param name="TopOneAgreement">Share of positions whose top-1 token is the final top-1.</param>
/// <param name="Positions">Positions averaged.</param>
public sealed record LensLayerSummary(int Layer, string Source, double EntropyBits, double KullbackLeiblerToFinal, double TopOneAgreement, int Positions);

/// <summary>Results of <see cref="LogitLensAnalysis.Run"/>.</summary>
/// <param name="Readouts">Every readout, by layer, source, rank, position.</param>
/// <param name="Summaries">Per layer and source.</param>
/// <param name="Scale">How expert outputs were read.</param>
public sealed record LogitLensResult(IReadOnlyList<LensReadout> Readouts, IReadOnlyList<LensLayerSummary> Summaries, ExpertOutputScale Scale)
{
    /// <summary>Whether expert and mixture readouts added the residual stream (<see cref="LensReadoutKind.Extended"/>).</summary>
    public LensReadoutKind Kind { get; init; } = LensReadoutKind.Extended;
}

/// <summary>
/// Early decoding (MoE Lens §5): each selected expert's output, the routed mixture (<c>ffn_moe_out</c>) and the
/// residual stream after every block (<c>l_out</c>) read through the final norm and the unembedding
/// (<see cref="LensProjection"/>); per readout the top tokens, the entropy and KL(final ‖ readout). By default the
/// expert and mixture readouts are the paper's extended lens, residual (<c>ffn_inp</c>) + output
/// (<see cref="LensReadoutKind"/>); read bare, scaling a vector barely changes its readout (the final RMS norm removes
/// the scale up to its epsilon), so there weighted and unweighted expert outputs read almost alike.
/// </summary>
/// <remarks>One forward pass; each layer's readouts are journalled (<c>lens/layer-L</c>), so a resumed run projects only the rest.</remarks>
public static class LogitLensAnalysis
{
    /// <summary>Runs the lens over <paramref name="tokens"/> (at most the model's context).</summary>
    /// <param name="model">The model.</param>
    /// <param name="tokens">Input tokens.</param>
    /// <param name="scale">How expert outputs are read.</param>
    /// <param name="topTokens">Top tokens kept per readout.</param>
    /// <param name="folder">The run folder.</param>
    /// <param name="progress">Progress, counted in layers.</param>
    /// <param name="threadCount">Threads.</param>
    /// <param name="cancellationToken">Stops between layers.</param>
    /// <param name="kind">Extended (residual + output, default) or bare expert and mixture readouts.</param>
    public static LogitLensResult Run(
        MoeModel model, IReadOnlyList<int> tokens, ExpertOutputScale scale, int topTokens, RunFolder folder, IProgressSink progress, int? threadCount,
        CancellationToken cancellationToken = default, LensReadoutKind kind = LensReadoutKind.Extended)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(progress);
        if (tokens.Count < 1 || tokens.Count > model.Hyperparameters.ContextLength)
        {
            throw new ExpertScopeException($"The input has {tokens.Count} tokens; the lens needs 1 to {model.Hyperparameters.ContextLength} (the model's context).");
        }

        var layers = model.Blocks.Select(b => b.Layer).Order().ToArray();
        var readouts = new List<LensReadout>();
        int already = layers.Count(l => folder.IsFinished(UnitOf(l)));
        using var task = progress.StartTask("logit lens", layers.Length, already, "layers");
        ActivationRecorder? recorder = null;
        float[]? final = null;
        var lens = new LensProjection(model, threadCount);
        int vocabulary = lens.VocabularySize;
        int width = lens.Width;
        int count = tokens.Count;
        foreach (int layer in layers)
        {
            var saved = folder.Journal.Records.LastOrDefault(r => r.Unit == UnitOf(layer));
            if (saved.Unit is not null && saved.Data is not null)
            {
                readouts.AddRange(JsonSerializer.Deserialize<List<LensReadout>>(saved.Data, JsonOutput.CompactOptions)!);
                continue;
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (recorder is null)
            {
                recorder = new ActivationRecorder([HookKind.LayerOutput, HookKind.FeedForwardInput, HookKind.ExpertOutput, HookKind.WeightedExpertOutputs], routing: true);
                final = model.Run([.. tokens], new RunOptions { Observers = [recorder], ThreadCount = threadCount }).Values;
            }

            var layerReadouts = new List<LensReadout>();
            void Read(string source, int rank, int[]? experts, float[] vectors)
            {
                var logits = lens.Project(vectors, count);
                for (int t = 0; t < count; t++)
                {
                    var row = logits.AsSpan(t * vocabulary, vocabulary);
                    var finalRow = final.AsSpan(t * vocabulary, vocabulary);
                    var top = LogitLens.TopTokens(row, topTokens);
                    var finalTop = LogitLens.TopTokens(finalRow, 1)[0].TokenId;
                    layerReadouts.Add(new LensReadout(
                        layer, source, rank, experts?[t] ?? -1, t, top, LogitLens.EntropyBits(row), LogitLens.KullbackLeibler(finalRow, row), top[0].TokenId == finalTop));
                }
            }

            Read("l_out", -1, null, recorder.Get(new HookSite(HookKind.LayerOutput, layer)).Values);
            var moeSite = new HookSite(HookKind.ExpertOutput, layer);
            if (recorder.Has(moeSite) && recorder.Routes.TryGetValue(layer, out var route))
            {
                float[]? residual = kind == LensReadoutKind.Extended ? recorder.Get(new HookSite(HookKind.FeedForwardInput, layer)).Values : null;
                float[] WithResidual(float[] vectors)
                {
                    if (residual is not null)
                    {
                        for (int i = 0; i < vectors.Length; i++)
                        {
                            vectors[i] += residual[i];
                        }
                    }

                    return vectors;
                }

                Read("ffn_moe_out", -1, null, WithResidual([.. recorder.Get(moeSite).Values]));
                var (weighted, _) = recorder.Get(new HookSite(HookKind.WeightedExpertOutputs, layer));
                int k = route.SelectedCount;
                for (int rank = 0; rank < k; rank++)
                {
                    var vectors = new float[count * width];
                    var experts = new int[count];
                    for (int t = 0; t < count; t++)
                    {
                        float weight = route.Weights[t * k + rank];
                        experts[t] = route.Experts[t * k + rank];
                        float factor = scale == ExpertOutputScale.Weighted || weight == 0 ? 1 : 1 / weight;
                        var source = weighted.AsSpan((t * k + rank) * width, width);
                        for (int j = 0; j < width; j++)
                        {
                            vectors[t * width + j] = source[j] * factor;
                        }
                    }

                    Read("expert", rank, experts, WithResidual(vectors));
                }
            }

            folder.MarkFinished(UnitOf(layer), JsonSerializer.Serialize(layerReadouts, JsonOutput.CompactOptions));
            readouts.AddRange(layerReadouts);
            task.Advance();
        }

        task.Complete();
        var summaries = readouts
            .GroupBy(r => (r.Layer, Source: r.Source == "expert" ? string.Create(CultureInfo.InvariantCulture, $"expert-r{r.Rank}") : r.Source))
            .Select(g => new LensLayerSummary(g.Key.Layer, g.Key.Source, g.Average(r => r.EntropyBits), g.Average(r => r.KullbackLeiblerToFinal), g.Average(r => r.AgreesWithFinal ? 1.0 : 0.0), g.Count()))
            .OrderBy(s => s.Layer).ThenBy(s => SourceOrder(s.Source)).ToList();
        return new LogitLensResult(readouts, summaries, scale) { Kind = kind };
    }

    /// <summary>Writes <c>results.json</c>, <c>readouts.csv</c>, <c>summary.csv</c>, SVG figures and <c>report.html</c>.</summary>
    public static void WriteOutputs(LogitLensResult result, string folder, string modelName, MoeModel model, IReadOnlyList<int> tokens, bool randomWeights = false)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokens);
        var f = CultureInfo.InvariantCulture;
        string Piece(int id) => model.Tokenizer.Decode([id]);
        string Tops(LensReadout r) => string.Join(" | ", r.TopTokens.Select(t => string.Create(f, $"{Piece(t.TokenId)} ({t.Probability:0.000})")));
        using (var csv = CsvWriter.Create(Path.Combine(folder, "readouts.csv")))
        {
            csv.WriteRow("layer", "source", "rank", "expert", "position", "input_token", "top1_id", "top1_token", "top1_probability", "entropy_bits", "kl_to_final_nats", "agrees_with_final", "top_tokens");
            foreach (var r in result.Readouts)
            {
                csv.WriteRow(r.Layer, r.Source, r.Rank, r.Expert, r.Position, Piece(tokens[r.Position]), r.TopTokens[0].TokenId, Piece(r.TopTokens[0].TokenId), r.TopTokens[0].Probability,
                    r.EntropyBits, r.KullbackLeiblerToFinal, r.AgreesWithFinal, Tops(r));
            }
        }

        using (var csv = CsvWriter.Create(Path.Combine(folder, "summary.csv")))
        {
            csv.WriteRow("layer", "source", "mean_entropy_bits", "mean_kl_to_final_nats", "top1_agreement", "positions");
            foreach (var s in result.Summaries)
            {
                csv.WriteRow(s.Layer, s.Source, s.EntropyBits, s.KullbackLeiblerToFinal, s.TopOneAgreement, s.Positions);
            }
        }

        string scale = result.Scale == ExpertOutputScale.Weighted ? "weighted (times the mixing weight)" : "unweighted (the expert's own output)";
        var report = new HtmlReport("Logit lens on experts, mixture and residual stream") { Subtitle = modelName, Generated = DateTimeOffset.UtcNow, RandomWeights = randomWeights };
        report.AddSummary(
            string.Create(f, $"{tokens.Count} input tokens. Expert outputs are read {scale}. Each vector goes through the final RMS norm and the unembedding."),
            result.Kind == LensReadoutKind.Extended
                ? "Extended lens (MoE Lens): expert and mixture readouts decode the residual stream entering the feed-forward part (ffn_inp) plus the output."
                : "Bare readouts: expert and mixture outputs decoded on their own.",
            "KL is KL(final distribution ‖ readout) in nats; agreement is the share of positions whose top-1 token is the model's final top-1.");
        var sources = result.Summaries.Select(s => s.Source).Distinct().OrderBy(SourceOrder).ToList();
        LineChart Chart(string title, string yLabel, Func<LensLayerSummary, double> value) => new()
        {
            Title = title, XLabel = "layer", YLabel = yLabel,
            Series = [.. sources.Select(source =>
            {
                var rows = result.Summaries.Where(s => s.Source == source).ToList();
                return new LineSeries(source, [.. rows.Select(s => (double)s.Layer)], [.. rows.Select(value)]);
            })],
        };
        var section = report.AddSection("Per layer");
        foreach (var (name, chart) in new[]
        {
            ("lens_kl", Chart("KL divergence to the final distribution", "KL (nats)", s => s.KullbackLeiblerToFinal)),
            ("lens_entropy", Chart("Entropy of the readout", "entropy (bits)", s => s.EntropyBits)),
            ("lens_agreement", Chart("Top-1 agreement with the final prediction", "share of positions", s => s.TopOneAgreement)),
        })
        {
            chart.SaveSvg(Path.Combine(folder, name + ".svg"));
            section.AddFigure(chart);
        }

        int last = tokens.Count - 1;
        report.AddSection("Top tokens at the last position").AddTable(new ReportTable(
            ["layer", "source", "expert", "top tokens (probability)", "entropy (bits)", "KL (nats)"],
            [.. result.Readouts.Where(r => r.Position == last).Select(r => (IReadOnlyList<string>)[
                r.Layer.ToString(f), r.Source == "expert" ? string.Create(f, $"expert r{r.Rank}") : r.Source, r.Expert >= 0 ? r.Expert.ToString(f) : "",
                Tops(r), ReportTable.Number(r.EntropyBits), ReportTable.Number(r.KullbackLeiblerToFinal)])],
            string.Create(f, $"Position {last} (input token '{Piece(tokens[last])}')")));
        report.Save(Path.Combine(folder, "report.html"));
        RandomWeightsNotice.WriteResultsFile(Path.Combine(folder, "results.json"), new
        {
            analysis = "lens",
            model = modelName,
            input_tokens = tokens.Count,
            expert_outputs = result.Scale == ExpertOutputScale.Weighted ? "weighted" : "unweighted",
            readout = result.Kind == LensReadoutKind.Extended ? "extended" : "bare",
            kl = "KL(final || readout), nats",
            summary = result.Summaries.Select(s => new { layer = s.Layer, source = s.Source, mean_entropy_bits = s.EntropyBits, mean_kl_to_final_nats = s.KullbackLeiblerToFinal, top1_agreement = s.TopOneAgreement, positions = s.Positions }),
            last_position = result.Readouts.Where(r => r.Position == last).Select(r => new
            {
                layer = r.Layer, source = r.Source, rank = r.Rank, expert = r.Expert,
                top_tokens = r.TopTokens.Select(t => new { id = t.TokenId, token = Piece(t.TokenId), probability = t.Probability }),
                entropy_bits = r.EntropyBits, kl_to_final_nats = r.KullbackLeiblerToFinal,
            }),
        }, randomWeights);
    }

    /// <summary>The journal unit of one layer.</summary>
    public static string UnitOf(int layer) => string.Create(CultureInfo.InvariantCulture, $"lens/layer-{layer}");

    private static int SourceOrder(string source) => source switch
    {
        "l_out" => 0,
        "ffn_moe_out" => 1,
        _ => 2 + (source.StartsWith("expert-r", StringComparison.Ordinal) ? int.Parse(source.AsSpan(8), CultureInfo.InvariantCulture) : 0),
    };

}
