using System.Globalization;
using ExpertScope.Experiments.Reports;
using ExpertScope.Experiments.Steering;
using ExpertScope.Models;
using ExpertScope.Models.Routing;

namespace ExpertScope.Experiments.Pruning;

/// <summary>Settings of the super-expert profile (defaults are the published rule).</summary>
public sealed record SuperExpertOptions
{
    /// <summary>An expert's maximum must exceed this percentile of all routed experts' maxima (99.5).</summary>
    public double Percentile { get; init; } = 99.5;

    /// <summary>... and this fraction of the largest maximum (0.1).</summary>
    public double Fraction { get; init; } = 0.1;

    /// <summary>Only blocks in the first this-fraction of the model are eligible (0.75).</summary>
    public double LayersFraction { get; init; } = 0.75;

    /// <summary>Random-pruning controls (seeds 1..Seeds).</summary>
    public int Seeds { get; init; } = 3;

    /// <summary>Threads (null = processor count).</summary>
    public int? Threads { get; init; }
}

/// <summary>One expert's largest |down-projection output| on the corpus.</summary>
/// <param name="Layer">Block.</param>
/// <param name="Expert">Routed expert index, or -1 for the block's shared experts.</param>
/// <param name="MaxAbs">Largest |value| of its down-projection output (unweighted).</param>
/// <param name="Selections">Tokens that selected it (shared experts: every token).</param>
/// <param name="Flagged">Meets the super-expert rule.</param>
public sealed record ExpertMaximum(int Layer, int Expert, float MaxAbs, long Selections, bool Flagged)
{
    /// <summary>True for a block's shared experts.</summary>
    public bool IsShared => Expert < 0;
}

/// <summary>The residual stream's largest |value| after one block (<c>l_out</c>).</summary>
/// <param name="Layer">Block.</param>
/// <param name="MaxAbs">Largest |value| over the corpus.</param>
/// <param name="Dimension">Its hidden dimension.</param>
/// <param name="Position">Its position within its text.</param>
/// <param name="Text">Index of its text in the corpus.</param>
/// <param name="MedianAbs">Median over dimensions of each dimension's largest |value| (a scale for "massive").</param>
/// <param name="TopDimensions">The dimensions with the largest maxima, largest first (up to 3).</param>
/// <param name="FirstPositionShare">Share of texts whose largest |l_out| lies at position 0.</param>
public sealed record MassiveActivation(int Layer, float MaxAbs, int Dimension, int Position, int Text, float MedianAbs, IReadOnlyList<int> TopDimensions, double FirstPositionShare);

/// <summary>Perplexity under one pruning condition.</summary>
/// <param name="Name">baseline, super-experts, or random-SEED.</param>
/// <param name="Experts">Experts whose output was zeroed.</param>
/// <param name="Perplexity">Perplexity on the corpus.</param>
public sealed record PruningCondition(string Name, IReadOnlyList<LayerExpert> Experts, double Perplexity);

/// <summary>The super-expert profile of a model.</summary>
/// <param name="Experts">Every routed (and shared) expert's maximum.</param>
/// <param name="PercentileValue">The percentile of routed maxima.</param>
/// <param name="OverallMaximum">The largest routed maximum.</param>
/// <param name="EligibleLayers">Blocks below this index are eligible.</param>
/// <param name="Residual">Massive activations per block.</param>
/// <param name="Pruning">Perplexity with super experts zeroed vs random experts zeroed.</param>
public sealed record SuperExpertProfile(
    IReadOnlyList<ExpertMaximum> Experts,
    double PercentileValue,
    double OverallMaximum,
    int EligibleLayers,
    IReadOnlyList<MassiveActivation> Residual,
    IReadOnlyList<PruningCondition> Pruning)
{
    /// <summary>The flagged routed experts.</summary>
    public IReadOnlyList<LayerExpert> SuperExperts => [.. Experts.Where(e => e.Flagged && !e.IsShared).Select(e => new LayerExpert(e.Layer, e.Expert))];
}

/// <summary>
/// Super experts (arXiv 2507.23279): experts whose down projection produces extreme outputs that create the residual
/// stream's massive activations. Profiles every expert's largest |down-projection output| over a corpus, flags those
/// above the <see cref="SuperExpertOptions.Percentile"/> of all maxima and above <see cref="SuperExpertOptions.Fraction"/>
/// of the largest, in the first <see cref="SuperExpertOptions.LayersFraction"/> of blocks, then compares perplexity with
/// their outputs zeroed (<see cref="ScaleExpert"/> with factor 0, exactly a zeroed down projection for routed experts)
/// against zeroing as many random experts per block.
/// </summary>
public static class SuperExperts
{
    /// <summary>Profiles, flags and compares pruning on the token sequences.</summary>
    public static SuperExpertProfile Analyse(MoeModel model, IReadOnlyList<IReadOnlyList<int>> corpus, SuperExpertOptions options, Runs.IProgressSink? progress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(corpus);
        ArgumentNullException.ThrowIfNull(options);
        progress ??= Runs.NullProgressSink.Instance;
        var recorder = new ExpertActivityRecorder(model, TokenScope.AllTokens, downMaxima: true);
        var residual = new ResidualObserver(model.Blocks.Count, model.Hyperparameters.EmbeddingLength);
        var run = new RunOptions { Observers = [recorder, residual], ThreadCount = options.Threads, Logits = LogitsSelection.None };
        int context = model.Hyperparameters.ContextLength;
        using (var task = progress.StartTask("profile", corpus.Count, unit: "texts"))
        {
            foreach (var text in corpus)
            {
                if (text.Count > 0)
                {
                    residual.StartText();
                    model.Run(text.Take(context).ToArray(), run);
                    residual.EndText();
                }

                task.Advance();
            }
        }

        int eligible = Math.Max(1, (int)Math.Floor(options.LayersFraction * model.Blocks.Count));
        var routed = new List<ExpertMaximum>();
        for (int layer = 0; layer < recorder.LayerCount; layer++)
        {
            if (!recorder.IsMoeLayer[layer])
            {
                continue;
            }

            int experts = model.Blocks[layer].Moe!.Router.Config.ExpertCount;
            for (int e = 0; e < experts; e++)
            {
                routed.Add(new ExpertMaximum(layer, e, recorder.DownMaxima[layer, e], recorder.Selections[layer, e], false));
            }
        }

        double percentile = Quantile([.. routed.Select(r => (double)r.MaxAbs)], options.Percentile / 100);
        double overall = routed.Count == 0 ? 0 : routed.Max(r => r.MaxAbs);
        bool Flag(ExpertMaximum m) => m.Layer < eligible && m.MaxAbs > percentile && m.MaxAbs > options.Fraction * overall;
        var all = routed.Select(r => r with { Flagged = Flag(r) }).ToList();
        for (int layer = 0; layer < model.Blocks.Count; layer++)
        {
            if (residual.SharedSeen[layer])
            {
                var shared = new ExpertMaximum(layer, -1, residual.SharedMaxima[layer], recorder.Tokens[layer], false);
                all.Add(shared with { Flagged = Flag(shared) });
            }
        }

        var super = all.Where(e => e.Flagged && !e.IsShared).Select(e => new LayerExpert(e.Layer, e.Expert)).ToList();
        var conditions = new List<PruningCondition>();
        using (var task = progress.StartTask("perplexity", 2 + (super.Count > 0 ? options.Seeds : 0), unit: "conditions"))
        {
            conditions.Add(new PruningCondition("baseline", [], Perplexity.Evaluate(model, corpus, null, options.Threads).Perplexity));
            task.Advance();
            if (super.Count > 0)
            {
                conditions.Add(new PruningCondition("super-experts", super, Perplexity.Evaluate(model, corpus, ZeroOutputs(super), options.Threads).Perplexity));
                task.Advance();
                int expertCount = recorder.ExpertCount;
                for (int seed = 1; seed <= options.Seeds; seed++)
                {
                    var random = SteeringEvaluation.RandomControl(super, expertCount, seed);
                    conditions.Add(new PruningCondition("random-" + seed.ToString(CultureInfo.InvariantCulture), random, Perplexity.Evaluate(model, corpus, ZeroOutputs(random), options.Threads).Perplexity));
                    task.Advance();
                }
            }
        }

        return new SuperExpertProfile(all, percentile, overall, eligible, residual.Summaries(), conditions);
    }

    /// <summary>Interventions that zero the outputs of <paramref name="experts"/> (their routing is unchanged).</summary>
    public static IReadOnlyList<RouterIntervention> ZeroOutputs(IEnumerable<LayerExpert> experts)
    {
        ArgumentNullException.ThrowIfNull(experts);
        return [.. experts.Select(e => new ScaleExpert(LayerSelector.Only(e.Layer), new Core.ExpertId(e.Expert), 0f))];
    }

    /// <summary>R's type-7 quantile (linear interpolation between order statistics) of <paramref name="values"/>.</summary>
    public static double Quantile(double[] values, double probability)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        double h = (sorted.Length - 1) * Math.Clamp(probability, 0, 1);
        int low = (int)Math.Floor(h);
        int high = Math.Min(low + 1, sorted.Length - 1);
        return sorted[low] + (h - low) * (sorted[high] - sorted[low]);
    }

    /// <summary>Writes <c>experts.csv</c>, <c>residual.csv</c>, <c>pruning.csv</c>, <c>summary.json</c> and <c>report.html</c>.</summary>
    public static void WriteOutputs(string folder, SuperExpertProfile profile, IReadOnlyDictionary<string, string> settings)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(settings);
        Directory.CreateDirectory(folder);
        using (var csv = CsvWriter.Create(Path.Combine(folder, "experts.csv")))
        {
            csv.WriteRow("layer", "expert", "shared", "max_abs_down_output", "selections", "flagged");
            foreach (var e in profile.Experts.OrderByDescending(e => e.MaxAbs))
            {
                csv.WriteRow(e.Layer, e.IsShared ? "shared" : e.Expert.ToString(CultureInfo.InvariantCulture), e.IsShared, e.MaxAbs, e.Selections, e.Flagged);
            }
        }

        using (var csv = CsvWriter.Create(Path.Combine(folder, "residual.csv")))
        {
            csv.WriteRow("layer", "max_abs", "dimension", "position", "text", "median_dimension_max", "top_dimensions", "first_position_share");
            foreach (var r in profile.Residual)
            {
                csv.WriteRow(r.Layer, r.MaxAbs, r.Dimension, r.Position, r.Text, r.MedianAbs, string.Join(" ", r.TopDimensions), r.FirstPositionShare);
            }
        }

        using (var csv = CsvWriter.Create(Path.Combine(folder, "pruning.csv")))
        {
            csv.WriteRow("condition", "experts", "perplexity");
            foreach (var c in profile.Pruning)
            {
                csv.WriteRow(c.Name, string.Join(" ", c.Experts), c.Perplexity);
            }
        }

        JsonOutput.WriteFile(Path.Combine(folder, "summary.json"), new
        {
            settings,
            percentile_value = profile.PercentileValue,
            overall_maximum = profile.OverallMaximum,
            eligible_layers_below = profile.EligibleLayers,
            super_experts = profile.Experts.Where(e => e.Flagged).Select(e => new { layer = e.Layer, expert = e.IsShared ? "shared" : e.Expert.ToString(CultureInfo.InvariantCulture), max_abs = e.MaxAbs }),
            pruning = profile.Pruning.Select(c => new { name = c.Name, experts = c.Experts.Select(x => x.ToString()), perplexity = c.Perplexity }),
            residual = profile.Residual.Select(r => new { layer = r.Layer, max_abs = r.MaxAbs, dimension = r.Dimension, position = r.Position, text = r.Text, median_dimension_max = r.MedianAbs, top_dimensions = r.TopDimensions, first_position_share = r.FirstPositionShare }),
        });

        var flagged = profile.Experts.Where(e => e.Flagged).ToList();
        var report = new HtmlReport("Super experts") { Generated = DateTimeOffset.UtcNow };
        report.AddSummary(
            string.Create(CultureInfo.InvariantCulture,
                $"{flagged.Count} super expert(s) flagged: maximum |down-projection output| above {ReportTable.Number(profile.PercentileValue)} (the percentile of all routed experts' maxima) and above the fraction of the overall maximum {ReportTable.Number(profile.OverallMaximum)}, in blocks below {profile.EligibleLayers}."),
            "Shared experts are measured on their whole down-projection output (ffn_shexp) and flagged by the same thresholds, but only routed experts are pruned (ScaleExpert 0, identical to a zeroed down projection).",
            "Attention weights are not exposed by the engine, so the attention-sink pattern is not measured directly. Reported instead: per block, where the residual stream's largest |value| lies (dimension, position) and the share of texts whose largest |l_out| is at position 0 — massive activations at the first token are the signature of an attention sink.");
        report.AddSection("Settings").AddKeyValues(settings);
        report.AddSection("Pruning").AddTable(new ReportTable(
            ["condition", "experts zeroed", "perplexity"],
            [.. profile.Pruning.Select(c => (IReadOnlyList<string>)[c.Name, string.Join(" ", c.Experts), ReportTable.Number(c.Perplexity)])]));
        var top = profile.Experts.OrderByDescending(e => e.MaxAbs).Take(20).ToList();
        report.AddSection("Largest expert outputs").AddFigure(new BarChart
        {
            Title = "Largest |down-projection output| (top 20)",
            Categories = [.. top.Select(e => e.IsShared ? $"L{e.Layer}:shared" : $"L{e.Layer}:E{e.Expert}")],
            Series = [new BarSeries("max |output|", [.. top.Select(e => (double)e.MaxAbs)], Marks: [.. top.Select(e => e.Flagged ? "super" : null)])],
            YLabel = "max |value|",
        }).AddTable(new ReportTable(
            ["layer", "expert", "max |output|", "selections", "flagged"],
            [.. top.Select(e => (IReadOnlyList<string>)[e.Layer.ToString(CultureInfo.InvariantCulture), e.IsShared ? "shared" : e.Expert.ToString(CultureInfo.InvariantCulture), ReportTable.Number(e.MaxAbs), e.Selections.ToString(CultureInfo.InvariantCulture), e.Flagged ? "yes" : ""])]));
        report.AddSection("Massive activations (l_out)").AddTable(new ReportTable(
            ["layer", "max |value|", "dimension", "position", "text", "median dim max", "top dims", "share at position 0"],
            [.. profile.Residual.Select(r => (IReadOnlyList<string>)
            [
                r.Layer.ToString(CultureInfo.InvariantCulture), ReportTable.Number(r.MaxAbs), r.Dimension.ToString(CultureInfo.InvariantCulture),
                r.Position.ToString(CultureInfo.InvariantCulture), r.Text.ToString(CultureInfo.InvariantCulture), ReportTable.Number(r.MedianAbs),
                string.Join(" ", r.TopDimensions), ReportTable.Number(r.FirstPositionShare),
            ])]));
        report.Save(Path.Combine(folder, "report.html"));
    }

    /// <summary>Tracks l_out maxima per block and the shared experts' output maxima.</summary>
    private sealed class ResidualObserver(int layers, int width) : IRouterObserver
    {
        private readonly float[,] _dimensionMaxima = new float[layers, width];
        private readonly (float Value, int Dimension, int Position, int Text)[] _best = new (float, int, int, int)[layers];
        private readonly (float Value, int Position)[] _textBest = new (float, int)[layers];
        private readonly int[] _atFirst = new int[layers];
        private int _texts;

        public float[] SharedMaxima { get; } = new float[layers];

        public bool[] SharedSeen { get; } = new bool[layers];

        public bool Wants(HookSite site) => site.Kind is HookKind.LayerOutput or HookKind.SharedExpert;

        public void StartText() => Array.Fill(_textBest, (-1f, 0));

        public void EndText()
        {
            for (int layer = 0; layer < _textBest.Length; layer++)
            {
                if (_textBest[layer].Value >= 0 && _textBest[layer].Position == 0)
                {
                    _atFirst[layer]++;
                }
            }

            _texts++;
        }

        public void Observe(HookSite site, in ActivationView view)
        {
            int layer = site.Layer;
            if (site.Kind == HookKind.SharedExpert)
            {
                SharedSeen[layer] = true;
                foreach (float v in view.Values)
                {
                    SharedMaxima[layer] = MathF.Max(SharedMaxima[layer], MathF.Abs(v));
                }

                return;
            }

            for (int t = 0; t < view.TokenCount; t++)
            {
                var row = view.Row(t);
                for (int d = 0; d < row.Length; d++)
                {
                    float a = MathF.Abs(row[d]);
                    if (a > _dimensionMaxima[layer, d])
                    {
                        _dimensionMaxima[layer, d] = a;
                    }

                    if (a > _best[layer].Value)
                    {
                        _best[layer] = (a, d, view.FirstPosition + t, _texts);
                    }

                    if (a > _textBest[layer].Value)
                    {
                        _textBest[layer] = (a, view.FirstPosition + t);
                    }
                }
            }
        }

        public List<MassiveActivation> Summaries()
        {
            var list = new List<MassiveActivation>();
            for (int layer = 0; layer < _best.Length; layer++)
            {
                var maxima = Enumerable.Range(0, _dimensionMaxima.GetLength(1)).Select(d => _dimensionMaxima[layer, d]).ToArray();
                var (value, dimension, position, text) = _best[layer];
                list.Add(new MassiveActivation(
                    layer, value, dimension, position, text,
                    (float)Quantile([.. maxima.Select(m => (double)m)], 0.5),
                    [.. Enumerable.Range(0, maxima.Length).OrderByDescending(d => maxima[d]).ThenBy(d => d).Take(3)],
                    _texts == 0 ? double.NaN : (double)_atFirst[layer] / _texts));
            }

            return list;
        }
    }
}
