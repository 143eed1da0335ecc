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
        Assert.Equal(2, profile.EligibleLayers); // floor(0.75 × 3 blocks)
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
        var (_, corpus) = PlantOutlier(temp, factor: 300f);
        using var model = MoeModel.Load(temp.File("outlier.gguf"));
        var profile = SuperExperts.Analyse(model, corpus, new SuperExpertOptions { Threads = 1, Seeds = 1, LayersFraction = 0.34 });
        Assert.Equal(1, profile.EligibleLayers);
        Assert.Empty(profile.SuperExperts);
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
    internal static (int Expert, List<IReadOnlyList<int>> Corpus) PlantOutlier(TempDirectory temp, float factor)
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
        });
        return (expert, corpus);
    }
}
