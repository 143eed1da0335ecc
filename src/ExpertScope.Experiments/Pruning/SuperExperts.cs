using System.Globalization;
using ExpertScope.Experiments.Reports;
using ExpertScope.Experiments.Steering;
using ExpertScope.Models;
using ExpertScope.Models.Routing;

namespace ExpertScope.Experiments.Pruning;

/// <summary>Settings of the super-expert profile (defaults are the published rule).</summary>
public sealed record SuperExpertOptions
{
    /// <summary>An expert's maximum must exceed this percentile of the eligible blocks' expert maxima, shared experts included (99.5).</summary>
    public double Percentile { get; init; } = 99.5;

    /// <summary>... and floor(largest eligible maximum × this fraction) (0.1: the reference's <c>max // 10</c>).</summary>
    public double Fraction { get; init; } = 0.1;

    /// <summary>Only blocks below round(this fraction × blocks) are eligible (0.75).</summary>
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
/// <param name="PercentileValue">The percentile of the eligible blocks' maxima (routed and shared experts).</param>
/// <param name="OverallMaximum">The largest maximum in the eligible blocks.</param>
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
    /// <summary>The flagged experts, a block's shared experts as <see cref="SuperExperts.SharedExpert"/> (all are pruned).</summary>
    public IReadOnlyList<LayerExpert> SuperExperts => [.. Experts.Where(e => e.Flagged).Select(e => new LayerExpert(e.Layer, e.Expert))];
}

/// <summary>
/// Super experts (arXiv 2507.23279): experts whose down projection produces extreme outputs that create the residual
/// stream's massive activations. Profiles every expert's largest |down-projection output| over a corpus and, as the
/// authors' code (ZunhaiSu/Super-Experts-Profilling, <c>_identify_super_experts</c>) does, keeps the routed and shared
/// experts of the first round(<see cref="SuperExpertOptions.LayersFraction"/> × blocks) blocks, flags those above the
/// <see cref="SuperExpertOptions.Percentile"/> of that pool and above floor(<see cref="SuperExpertOptions.Fraction"/> of
/// its largest), then compares perplexity with their outputs zeroed (<see cref="ZeroOutputs"/>: exactly a zeroed down
/// projection) against zeroing as many random routed experts per block.
/// </summary>
public static class SuperExperts
{
    /// <summary>Profiles, flags and compares pruning on the token sequences.</summary>
    /// <param name="model">The model.</param>
    /// <param name="corpus">Token sequences (each cut to the context).</param>
    /// <param name="options">Settings.</param>
    /// <param name="progress">Progress display.</param>
    /// <param name="journal">
    /// Finished work of an earlier attempt: each text's profile (<c>profile/I</c>) and each pruning condition's perplexity
    /// (<c>perplexity/NAME</c>) is a unit; finished units are not run again. Texts are profiled one at a time and added in
    /// order, so a resumed run gives the same bits as an uninterrupted one. Null keeps nothing.
    /// </param>
    /// <param name="cancellationToken">Stops before the next unfinished unit.</param>
    public static SuperExpertProfile Analyse(
        MoeModel model, IReadOnlyList<IReadOnlyList<int>> corpus, SuperExpertOptions options, Runs.IProgressSink? progress = null,
        UnitJournal? journal = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(corpus);
        ArgumentNullException.ThrowIfNull(options);
        progress ??= Runs.NullProgressSink.Instance;
        journal ??= UnitJournal.None;
        var recorder = new ExpertActivityRecorder(model, TokenScope.AllTokens, downMaxima: true);
        var single = new ExpertActivityRecorder(model, TokenScope.AllTokens, downMaxima: true);
        var residual = new ResidualObserver(model.Blocks.Count, model.Hyperparameters.EmbeddingLength);
        var run = new RunOptions { Observers = [single, residual], ThreadCount = options.Threads, Logits = LogitsSelection.None };
        int context = model.Hyperparameters.ContextLength;
        static string ProfileUnit(int i) => "profile/" + i.ToString(CultureInfo.InvariantCulture);
        using (var task = progress.StartTask("profile", corpus.Count, journal.CountFinished(Enumerable.Range(0, corpus.Count).Select(ProfileUnit)), unit: "texts"))
        {
            for (int i = 0; i < corpus.Count; i++)
            {
                var text = corpus[i];
                if (text.Count > 0)
                {
                    // One unit = the text's expert activity and its residual maxima, each as base-64 bits.
                    var saved = journal.GetOrCompute(ProfileUnit(i), () =>
                    {
                        single.Clear();
                        residual.StartText();
                        model.Run(text.Take(context).ToArray(), run);
                        return single.Serialize() + " " + residual.SerializeText();
                    }, cancellationToken).Split(' ');
                    recorder.Add(saved[0]);
                    residual.AddText(saved[1]);
                }

                task.Advance();
            }
        }

        int eligible = EligibleBlocks(model.Blocks.Count, options.LayersFraction);
        var all = new List<ExpertMaximum>();
        for (int layer = 0; layer < recorder.LayerCount; layer++)
        {
            if (!recorder.IsMoeLayer[layer])
            {
                continue;
            }

            int experts = model.Blocks[layer].Moe!.Router.Config.ExpertCount;
            for (int e = 0; e < experts; e++)
            {
                all.Add(new ExpertMaximum(layer, e, recorder.DownMaxima[layer, e], recorder.Selections[layer, e], false));
            }

            if (residual.SharedSeen[layer])
            {
                all.Add(new ExpertMaximum(layer, SharedExpert, residual.SharedMaxima[layer], recorder.Tokens[layer], false));
            }
        }

        var (percentile, overall) = Thresholds(all, eligible, options);
        all = [.. all.Select(m => m with { Flagged = IsSuperExpert(m, eligible, percentile, overall, options) })];
        var super = all.Where(e => e.Flagged).Select(e => new LayerExpert(e.Layer, e.Expert)).ToList();
        var conditions = new List<PruningCondition>();
        var names = new List<string> { "baseline" };
        if (super.Count > 0)
        {
            names.Add("super-experts");
            names.AddRange(Enumerable.Range(1, options.Seeds).Select(seed => "random-" + seed.ToString(CultureInfo.InvariantCulture)));
        }

        using (var task = progress.StartTask("perplexity", names.Count, journal.CountFinished(names.Select(n => "perplexity/" + n)), unit: "conditions"))
        {
            foreach (string name in names)
            {
                IReadOnlyList<LayerExpert> zeroed = name switch
                {
                    "baseline" => [],
                    "super-experts" => super,
                    _ => RandomControl(super, recorder.ExpertCount, int.Parse(name["random-".Length..], CultureInfo.InvariantCulture)),
                };
                var result = UnitJournal.ParsePerplexity(journal.GetOrCompute("perplexity/" + name, () =>
                    UnitJournal.Format(Perplexity.Evaluate(model, corpus, zeroed.Count == 0 ? null : ZeroOutputs(zeroed), options.Threads)), cancellationToken));
                conditions.Add(new PruningCondition(name, zeroed, result.Perplexity));
                task.Advance();
            }
        }

        return new SuperExpertProfile(all, percentile, overall, eligible, residual.Summaries(), conditions);
    }

    /// <summary>
    /// The settings a resumable super-expert run is compared on (the corpus by the SHA-256 of its tokens); a run folder
    /// made with other values is refused, naming the setting.
    /// </summary>
    public static Dictionary<string, string> RunSettings(IReadOnlyList<IReadOnlyList<int>> corpus, SuperExpertOptions options)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        ArgumentNullException.ThrowIfNull(options);
        return new Dictionary<string, string>
        {
            ["corpus tokens sha256"] = UnitJournal.HashOf(corpus),
            ["sequences"] = corpus.Count.ToString(CultureInfo.InvariantCulture),
            ["percentile"] = options.Percentile.ToString("R", CultureInfo.InvariantCulture),
            ["fraction"] = options.Fraction.ToString("R", CultureInfo.InvariantCulture),
            ["layers fraction"] = options.LayersFraction.ToString("R", CultureInfo.InvariantCulture),
            ["seeds"] = options.Seeds.ToString(CultureInfo.InvariantCulture),
        };
    }

    /// <summary>The <see cref="LayerExpert.Expert"/> that stands for a block's shared experts (as the reference code's -1).</summary>
    public const int SharedExpert = -1;

    /// <summary>
    /// Blocks below this index are eligible: round(<paramref name="layersFraction"/> × blocks) with Python's round
    /// (half to even), as the reference code's <c>round(total_layers * include_layers)</c>; at least one.
    /// </summary>
    public static int EligibleBlocks(int blocks, double layersFraction) =>
        Math.Max(1, (int)Math.Round(layersFraction * blocks, MidpointRounding.ToEven));

    /// <summary>
    /// The two thresholds of the rule, both over the eligible pool only (routed and shared experts of blocks below
    /// <paramref name="eligible"/>), as the reference code takes them after dropping later blocks: the
    /// <see cref="SuperExpertOptions.Percentile"/> (R type 7, numpy's default) and the largest maximum.
    /// </summary>
    public static (double Percentile, double Maximum) Thresholds(IEnumerable<ExpertMaximum> maxima, int eligible, SuperExpertOptions options)
    {
        ArgumentNullException.ThrowIfNull(maxima);
        ArgumentNullException.ThrowIfNull(options);
        double[] pool = [.. maxima.Where(m => m.Layer < eligible).Select(m => (double)m.MaxAbs)];
        return (Quantile(pool, options.Percentile / 100), pool.Length == 0 ? 0 : pool.Max());
    }

    /// <summary>
    /// The rule of the reference code (<c>_identify_super_experts</c>): in an eligible block, the maximum exceeds the
    /// percentile and floor(largest maximum / (1 / <see cref="SuperExpertOptions.Fraction"/>)) (<c>np.max(...) // 10</c>).
    /// </summary>
    public static bool IsSuperExpert(ExpertMaximum maximum, int eligible, double percentile, double largest, SuperExpertOptions options)
    {
        ArgumentNullException.ThrowIfNull(maximum);
        ArgumentNullException.ThrowIfNull(options);
        return maximum.Layer < eligible && maximum.MaxAbs > percentile && maximum.MaxAbs > Math.Floor(largest / (1 / options.Fraction));
    }

    /// <summary>
    /// A random control for <paramref name="flagged"/>: per block, as many routed experts (drawn by <paramref name="seed"/>
    /// among the block's unflagged routed experts) as the block has flagged experts, shared ones included.
    /// </summary>
    public static IReadOnlyList<LayerExpert> RandomControl(IReadOnlyList<LayerExpert> flagged, int expertCount, int seed)
    {
        ArgumentNullException.ThrowIfNull(flagged);
        var random = new Random(seed);
        var control = new List<LayerExpert>();
        foreach (var group in flagged.GroupBy(c => c.Layer).OrderBy(g => g.Key))
        {
            var taken = group.Select(c => c.Expert).ToHashSet();
            var pool = Enumerable.Range(0, expertCount).Where(e => !taken.Contains(e)).ToArray();
            random.Shuffle(pool);
            control.AddRange(pool.Take(group.Count()).Order().Select(e => new LayerExpert(group.Key, e)));
        }

        return control;
    }

    /// <summary>
    /// Interventions that zero the outputs of <paramref name="experts"/> (their routing is unchanged): routed experts by
    /// <see cref="ScaleExpert"/> 0, a block's shared experts (<see cref="SharedExpert"/>) by <see cref="DisableSharedExperts"/>
    /// (the reference zeroes the shared down projection, which gives the same zero output).
    /// </summary>
    public static IReadOnlyList<RouterIntervention> ZeroOutputs(IEnumerable<LayerExpert> experts)
    {
        ArgumentNullException.ThrowIfNull(experts);
        return [.. experts.Select(e => e.Expert == SharedExpert
            ? (RouterIntervention)new DisableSharedExperts(LayerSelector.Only(e.Layer))
            : new ScaleExpert(LayerSelector.Only(e.Layer), new Core.ExpertId(e.Expert), 0f))];
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
    public static void WriteOutputs(string folder, SuperExpertProfile profile, IReadOnlyDictionary<string, string> settings, bool randomWeights = false)
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
                csv.WriteRow(c.Name, string.Join(" ", c.Experts.Select(Label)), c.Perplexity);
            }
        }

        RandomWeightsNotice.WriteResultsFile(Path.Combine(folder, "summary.json"), new
        {
            settings,
            percentile_value = profile.PercentileValue,
            overall_maximum = profile.OverallMaximum,
            eligible_layers_below = profile.EligibleLayers,
            super_experts = profile.Experts.Where(e => e.Flagged).Select(e => new { layer = e.Layer, expert = e.IsShared ? "shared" : e.Expert.ToString(CultureInfo.InvariantCulture), max_abs = e.MaxAbs }),
            pruning = profile.Pruning.Select(c => new { name = c.Name, experts = c.Experts.Select(Label), perplexity = c.Perplexity }),
            residual = profile.Residual.Select(r => new { layer = r.Layer, max_abs = r.MaxAbs, dimension = r.Dimension, position = r.Position, text = r.Text, median_dimension_max = r.MedianAbs, top_dimensions = r.TopDimensions, first_position_share = r.FirstPositionShare }),
        }, randomWeights);

        var flagged = profile.Experts.Where(e => e.Flagged).ToList();
        var report = new HtmlReport("Super experts") { Generated = DateTimeOffset.UtcNow, RandomWeights = randomWeights };
        report.AddSummary(
            string.Create(CultureInfo.InvariantCulture,
                $"{flagged.Count} super expert(s) flagged: maximum |down-projection output| above {ReportTable.Number(profile.PercentileValue)} (the percentile of the maxima of routed and shared experts in blocks below {profile.EligibleLayers}) and above the floor of the fraction of their largest maximum {ReportTable.Number(profile.OverallMaximum)}, as the authors' code (ZunhaiSu/Super-Experts-Profilling)."),
            "Shared experts are measured on their whole down-projection output (ffn_shexp), pooled with the routed experts and pruned when flagged (the shared FFN skipped, identical to a zeroed down projection); routed experts are pruned by ScaleExpert 0 (identical to a zeroed down projection). Random controls zero as many unflagged routed experts per block.",
            "Attention weights are not exposed by the engine, so the attention-sink pattern is not measured directly. Reported instead: per block, where the residual stream's largest |value| lies (dimension, position) and the share of texts whose largest |l_out| is at position 0 — massive activations at the first token are the signature of an attention sink.");
        report.AddSection("Settings").AddKeyValues(settings);
        report.AddSection("Pruning").AddTable(new ReportTable(
            ["condition", "experts zeroed", "perplexity"],
            [.. profile.Pruning.Select(c => (IReadOnlyList<string>)[c.Name, string.Join(" ", c.Experts.Select(Label)), ReportTable.Number(c.Perplexity)])]));
        var heatmap = MaximaHeatmap(profile);
        heatmap.SaveSvg(Path.Combine(folder, "down_output_maxima.svg"));
        report.AddSection("Down-projection output maxima").AddFigure(heatmap, "The paper's heatmap: each expert's largest |down-projection output| per block; the last column is the block's shared experts where it has them.");
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

    /// <summary>Layer × expert heatmap of down-projection output maxima (shared experts as a last column when present).</summary>
    public static Heatmap MaximaHeatmap(SuperExpertProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        int[] layers = [.. profile.Experts.Select(e => e.Layer).Distinct().Order()];
        int routed = profile.Experts.Where(e => !e.IsShared).Select(e => e.Expert + 1).DefaultIfEmpty(0).Max();
        bool shared = profile.Experts.Any(e => e.IsShared);
        var values = new double[layers.Length, routed + (shared ? 1 : 0)];
        for (int row = 0; row < values.GetLength(0); row++)
        {
            for (int column = 0; column < values.GetLength(1); column++)
            {
                values[row, column] = double.NaN;
            }
        }

        foreach (var e in profile.Experts)
        {
            values[Array.IndexOf(layers, e.Layer), e.IsShared ? routed : e.Expert] = e.MaxAbs;
        }

        return new Heatmap
        {
            Title = "Largest |down-projection output| per expert", Values = values,
            RowLabels = [.. layers.Select(l => l.ToString(CultureInfo.InvariantCulture))],
            ColumnLabels = [.. Enumerable.Range(0, routed).Select(e => e.ToString(CultureInfo.InvariantCulture)).Concat(shared ? ["shared"] : [])],
            XLabel = "expert", YLabel = "layer", ValueLabel = "max |value|", Minimum = 0,
        };
    }

    private static string Label(LayerExpert e) => e.Expert == SharedExpert
        ? e.Layer.ToString(CultureInfo.InvariantCulture) + ":shared"
        : e.ToString();

    /// <summary>
    /// Tracks l_out maxima per block and the shared experts' output maxima. Each text is observed on its own
    /// (<see cref="StartText"/>, <see cref="SerializeText"/>) and then added (<see cref="AddText"/>), so a text's
    /// result can be journalled and added back on resume; adding texts in order keeps the first largest value, as
    /// observing them one after another would.
    /// </summary>
    private sealed class ResidualObserver(int layers, int width) : IRouterObserver
    {
        private readonly float[,] _dimensionMaxima = new float[layers, width];
        private readonly (float Value, int Dimension, int Position, int Text)[] _best = new (float, int, int, int)[layers];
        private readonly int[] _atFirst = new int[layers];
        private readonly float[,] _textDimensionMaxima = new float[layers, width];
        private readonly (float Value, int Dimension, int Position)[] _textBest = new (float, int, int)[layers];
        private readonly float[] _textShared = new float[layers];
        private readonly bool[] _textSharedSeen = new bool[layers];
        private int _texts;

        public float[] SharedMaxima { get; } = new float[layers];

        public bool[] SharedSeen { get; } = new bool[layers];

        public bool Wants(HookSite site) => site.Kind is HookKind.LayerOutput or HookKind.SharedExpert;

        public void StartText()
        {
            Array.Clear(_textDimensionMaxima);
            Array.Fill(_textBest, (-1f, 0, 0));
            Array.Clear(_textShared);
            Array.Clear(_textSharedSeen);
        }

        public string SerializeText()
        {
            using var buffer = new MemoryStream();
            using (var writer = new BinaryWriter(buffer))
            {
                for (int layer = 0; layer < layers; layer++)
                {
                    writer.Write(_textBest[layer].Value);
                    writer.Write(_textBest[layer].Dimension);
                    writer.Write(_textBest[layer].Position);
                    writer.Write(_textShared[layer]);
                    writer.Write(_textSharedSeen[layer]);
                    for (int d = 0; d < width; d++)
                    {
                        writer.Write(_textDimensionMaxima[layer, d]);
                    }
                }
            }

            return Convert.ToBase64String(buffer.ToArray());
        }

        public void AddText(string serialized)
        {
            using var reader = new BinaryReader(new MemoryStream(Convert.FromBase64String(serialized)));
            for (int layer = 0; layer < layers; layer++)
            {
                float value = reader.ReadSingle();
                int dimension = reader.ReadInt32();
                int position = reader.ReadInt32();
                float shared = reader.ReadSingle();
                bool sharedSeen = reader.ReadBoolean();
                if (value > _best[layer].Value)
                {
                    _best[layer] = (value, dimension, position, _texts);
                }

                if (value >= 0 && position == 0)
                {
                    _atFirst[layer]++;
                }

                if (sharedSeen)
                {
                    SharedSeen[layer] = true;
                    SharedMaxima[layer] = MathF.Max(SharedMaxima[layer], shared);
                }

                for (int d = 0; d < width; d++)
                {
                    _dimensionMaxima[layer, d] = MathF.Max(_dimensionMaxima[layer, d], reader.ReadSingle());
                }
            }

            _texts++;
        }

        public void Observe(HookSite site, in ActivationView view)
        {
            int layer = site.Layer;
            if (site.Kind == HookKind.SharedExpert)
            {
                _textSharedSeen[layer] = true;
                foreach (float v in view.Values)
                {
                    _textShared[layer] = MathF.Max(_textShared[layer], MathF.Abs(v));
                }

                return;
            }

            for (int t = 0; t < view.TokenCount; t++)
            {
                var row = view.Row(t);
                for (int d = 0; d < row.Length; d++)
                {
                    float a = MathF.Abs(row[d]);
                    if (a > _textDimensionMaxima[layer, d])
                    {
                        _textDimensionMaxima[layer, d] = a;
                    }

                    if (a > _textBest[layer].Value)
                    {
                        _textBest[layer] = (a, d, view.FirstPosition + t);
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
