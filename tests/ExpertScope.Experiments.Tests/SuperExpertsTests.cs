using ExpertScope.Experiments.Pruning;
using ExpertScope.Experiments.Steering;
using ExpertScope.Models;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>A planted down-projection outlier is flagged as a super expert and its pruning is compared with random pruning.</summary>
public sealed class SuperExpertsTests
{
    private const int Layer = 1;
    private const int Dimension = 7;

    private static readonly string[] Corpus = ["the cat sat on the mat", "a quiet morning in the town", "she reads books every day", "it was a warm day"];

    [Fact]
    public void PlantedOutlier_IsTheOnlySuperExpert_AndDrivesTheMassiveActivation()
    {
        using var temp = new TempDirectory();
        var (expert, corpus) = PlantOutlier(temp, factor: 300f);
        using var model = MoeModel.Load(temp.File("outlier.gguf"));
        var profile = SuperExperts.Analyse(model, corpus, new SuperExpertOptions { Threads = 1, Seeds = 2 });

        Assert.Equal([new LayerExpert(Layer, expert)], profile.SuperExperts);
        Assert.Equal(2, profile.EligibleLayers); // round(0.75 × 3 blocks)
        Assert.Equal(profile.OverallMaximum, profile.Experts.Single(e => e.Flagged).MaxAbs);
        Assert.Equal(Dimension, profile.Residual[Layer].Dimension);
        Assert.Equal(Dimension, profile.Residual[Layer].TopDimensions[0]);
        Assert.True(profile.Residual[Layer].MaxAbs > 10 * profile.Residual[Layer].MedianAbs);

        Assert.Equal(["baseline", "super-experts", "random-1", "random-2"], profile.Pruning.Select(p => p.Name));
        Assert.NotEqual(profile.Pruning[0].Perplexity, profile.Pruning[1].Perplexity);
        Assert.All(profile.Pruning.Skip(2), p => Assert.DoesNotContain(new LayerExpert(Layer, expert), p.Experts));

        SuperExperts.WriteOutputs(temp.File("out"), profile, new Dictionary<string, string>());
        Assert.Contains("Super experts", File.ReadAllText(temp.File("out/report.html")), StringComparison.Ordinal);
        Assert.Equal(1 + 3 * 8, File.ReadAllLines(temp.File("out/experts.csv")).Length);
    }

    [Fact]
    public void Rule_HonoursTheLayerWindow()
    {
        using var temp = new TempDirectory();
        var (expert, corpus) = PlantOutlier(temp, factor: 300f);
        using var model = MoeModel.Load(temp.File("outlier.gguf"));
        var profile = SuperExperts.Analyse(model, corpus, new SuperExpertOptions { Threads = 1, Seeds = 1, LayersFraction = 0.34 });
        Assert.Equal(1, profile.EligibleLayers);
        Assert.DoesNotContain(new LayerExpert(Layer, expert), profile.SuperExperts);
        Assert.All(profile.SuperExperts, e => Assert.Equal(0, e.Layer));

        // The thresholds come from block 0 alone, so its largest expert (an ordinary one) is what the rule flags.
        Assert.Equal(profile.Experts.Where(e => e.Layer == 0).Max(e => e.MaxAbs), profile.OverallMaximum);
    }

    [Fact]
    public void LargerOutlierInTheLastBlock_DoesNotHideTheEligibleSuperExpert()
    {
        // The reference takes the percentile and the maximum over the eligible blocks only; pooled over all blocks,
        // the last block's tenfold larger outlier would push the max/10 threshold above the early super expert.
        using var temp = new TempDirectory();
        var (expert, corpus) = PlantOutlier(temp, factor: 300f, lastBlockFactor: 30000f);
        using var model = MoeModel.Load(temp.File("outlier.gguf"));
        var profile = SuperExperts.Analyse(model, corpus, new SuperExpertOptions { Threads = 1, Seeds = 1 });

        Assert.Equal([new LayerExpert(Layer, expert)], profile.SuperExperts);
        var early = profile.Experts.Single(e => e.Flagged);
        var late = profile.Experts.Where(e => e.Layer == 2).MaxBy(e => e.MaxAbs)!;
        Assert.True(late.MaxAbs > 10 * early.MaxAbs, "the planted late outlier must be large enough to hide the early one under an all-block rule");
        Assert.Equal(early.MaxAbs, profile.OverallMaximum);
    }

    [Fact]
    public void EligibleBlocks_RoundHalfToEven_AsPython()
    {
        Assert.Equal(2, SuperExperts.EligibleBlocks(3, 0.75)); // 2.25
        Assert.Equal(3, SuperExperts.EligibleBlocks(4, 0.75));
        Assert.Equal(4, SuperExperts.EligibleBlocks(6, 0.75)); // 4.5 → 4
        Assert.Equal(2, SuperExperts.EligibleBlocks(2, 0.75)); // 1.5 → 2
        Assert.Equal(36, SuperExperts.EligibleBlocks(48, 0.75)); // Qwen3-30B-A3B
        Assert.Equal(20, SuperExperts.EligibleBlocks(27, 0.75)); // DeepSeek-V2-Lite: 20.25
    }

    [Fact]
    public void Rule_PoolsSharedExperts_AndUsesTheFlooredTenth()
    {
        var options = new SuperExpertOptions();
        ExpertMaximum[] maxima = [.. Enumerable.Range(0, 199).Select(e => new ExpertMaximum(0, e, 1f, 1, false)), new ExpertMaximum(0, SuperExperts.SharedExpert, 19.5f, 1, false)];
        var (percentile, largest) = SuperExperts.Thresholds(maxima, eligible: 1, options);
        Assert.Equal(19.5, largest);
        Assert.Equal(SuperExperts.Quantile([.. maxima.Select(m => (double)m.MaxAbs)], 0.995), percentile);
        Assert.True(SuperExperts.IsSuperExpert(maxima[^1], 1, percentile, largest, options));

        // floor(19.5 / 10) = 1: a maximum of 1.5 passes the floored tenth (not 1.95), 1.0 does not.
        Assert.True(SuperExperts.IsSuperExpert(new ExpertMaximum(0, 3, 1.5f, 1, false), 1, 1.0, largest, options));
        Assert.False(SuperExperts.IsSuperExpert(new ExpertMaximum(0, 3, 1.0f, 1, false), 1, 0.5, largest, options));
        Assert.False(SuperExperts.IsSuperExpert(new ExpertMaximum(1, 3, 50f, 1, false), 1, percentile, largest, options));
    }

    [Fact]
    public void FlaggedSharedExpert_IsPruned_AndZeroingItEqualsAZeroedSharedDownProjection()
    {
        using var temp = new TempDirectory();
        SyntheticModelWriter.Write(SyntheticPresets.Get("tiny-qwen2moe"), temp.File("plain.gguf"));
        PlantedModels.Rewrite(temp.File("plain.gguf"), temp.File("outlier.gguf"), (name, values) =>
        {
            if (name == "blk.0.ffn_down_shexp.weight")
            {
                int ff = values.Length / 64;
                foreach (ref float v in values.AsSpan(Dimension * ff, ff))
                {
                    v *= 300f;
                }
            }
        });
        PlantedModels.Rewrite(temp.File("plain.gguf"), temp.File("zeroed.gguf"), (name, values) =>
        {
            if (name == "blk.0.ffn_down_shexp.weight")
            {
                values.AsSpan().Clear();
            }
        });

        using var model = MoeModel.Load(temp.File("outlier.gguf"));
        List<IReadOnlyList<int>> corpus = [.. Corpus.Select(t => (IReadOnlyList<int>)BehaviourDiscovery.Tokenize(model, t))];
        var profile = SuperExperts.Analyse(model, corpus, new SuperExpertOptions { Threads = 1, Seeds = 1 });
        Assert.Equal([new LayerExpert(0, SuperExperts.SharedExpert)], profile.SuperExperts);
        var pruned = profile.Pruning.Single(p => p.Name == "super-experts");
        Assert.Equal([new LayerExpert(0, SuperExperts.SharedExpert)], pruned.Experts);
        Assert.Single(profile.Pruning.Single(p => p.Name == "random-1").Experts, e => e.Layer == 0 && e.Expert >= 0);

        using var plain = MoeModel.Load(temp.File("plain.gguf"));
        using var zeroed = MoeModel.Load(temp.File("zeroed.gguf"));
        var tokens = corpus[0].ToArray();
        var masked = plain.Run(tokens, new RunOptions { Interventions = SuperExperts.ZeroOutputs([new LayerExpert(0, SuperExperts.SharedExpert)]) });
        Assert.Equal(zeroed.Run(tokens).Values, masked.Values);

        SuperExperts.WriteOutputs(temp.File("out"), profile, new Dictionary<string, string>());
        Assert.Contains("0:shared", File.ReadAllText(temp.File("out/pruning.csv")), StringComparison.Ordinal);
        Assert.True(File.Exists(temp.File("out/down_output_maxima.svg")));
    }

    [Fact]
    public void ZeroingAnExpertsOutput_EqualsZeroingItsDownProjection_BitForBit()
    {
        using var temp = new TempDirectory();
        var (expert, corpus) = PlantOutlier(temp, factor: 1f);
        PlantedModels.Rewrite(temp.File("plain.gguf"), temp.File("zeroed.gguf"), (name, values) =>
        {
            if (name == $"blk.{Layer}.ffn_down_exps.weight")
            {
                int slab = values.Length / 8;
                values.AsSpan(expert * slab, slab).Clear();
            }
        });
        using var plain = MoeModel.Load(temp.File("plain.gguf"));
        using var zeroed = MoeModel.Load(temp.File("zeroed.gguf"));
        var tokens = corpus[0].ToArray();
        var masked = plain.Run(tokens, new RunOptions { Interventions = SuperExperts.ZeroOutputs([new LayerExpert(Layer, expert)]) });
        Assert.Equal(zeroed.Run(tokens).Values, masked.Values);
        Assert.NotEqual(plain.Run(tokens).Values, masked.Values);
    }

    [Fact]
    public void Quantile_IsRType7()
    {
        Assert.Equal(2.5, SuperExperts.Quantile([1, 2, 3, 4], 0.5));
        Assert.Equal(3.985, SuperExperts.Quantile([1, 2, 3, 4], 0.995), 12);
    }

    /// <summary>Writes tiny-olmoe and a copy whose most-used expert of block 1 has its down-projection row 7 scaled.</summary>
    internal static (int Expert, List<IReadOnlyList<int>> Corpus) PlantOutlier(TempDirectory temp, float factor, float lastBlockFactor = 1f)
    {
        SyntheticModelWriter.Write(SyntheticPresets.Get("tiny-olmoe"), temp.File("plain.gguf"));
        int expert;
        List<IReadOnlyList<int>> corpus;
        using (var model = MoeModel.Load(temp.File("plain.gguf")))
        {
            corpus = [.. Corpus.Select(t => (IReadOnlyList<int>)BehaviourDiscovery.Tokenize(model, t))];
            var recorder = new ExpertActivityRecorder(model);
            foreach (var text in corpus)
            {
                model.Run(text.ToArray(), new RunOptions { Observers = [recorder], ThreadCount = 1 });
            }

            expert = Enumerable.Range(0, 8).OrderByDescending(e => recorder.Selections[Layer, e]).First();
        }

        // ffn_down_exps is ne = [ff, E, X]: expert e's slab holds E rows (one per output dimension) of ff values.
        PlantedModels.Rewrite(temp.File("plain.gguf"), temp.File("outlier.gguf"), (name, values) =>
        {
            if (name == $"blk.{Layer}.ffn_down_exps.weight")
            {
                int slab = values.Length / 8;
                int ff = slab / 64;
                foreach (ref float v in values.AsSpan(expert * slab + Dimension * ff, ff))
                {
                    v *= factor;
                }
            }
            else if (name == "blk.2.ffn_down_exps.weight")
            {
                // Every expert of the last block scaled, so whichever is selected carries the late outlier.
                foreach (ref float v in values.AsSpan())
                {
                    v *= lastBlockFactor;
                }
            }
        });
        return (expert, corpus);
    }
}
