using System.Collections.Immutable;
using ExpertScope.Core;
using ExpertScope.Experiments.Pruning;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models;
using ExpertScope.Models.Routing;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>A pruned GGUF reloads and computes exactly what its source computes with the same experts removed.</summary>
public sealed class PruningTests
{
    private static readonly int[] Prompt = [1, 5, 9, 200, 17, 3, 42, 7];

    public static TheoryData<string> GoldenModels() => new("mixtral", "olmoe", "olmoe-q8_0", "olmoe-q4_k", "qwen2moe", "qwen2moe-f16", "qwen3moe", "qwen3moe-k1", "deepseek2-lite");

    [Theory]
    [MemberData(nameof(GoldenModels))]
    public void GoldenModel_PrunedEqualsRemoveExpertsBitForBit(string name)
    {
        using var temp = new TempDirectory();
        string source = GoldenData.GoldenPath("models", name, "model.gguf");
        AssertPrunedMatches(source, temp.File("pruned.gguf"), keepCount: 5, useDisable: false);
    }

    [Theory]
    [InlineData("tiny-olmoe")]
    [InlineData("tiny-qwen2moe")]
    [InlineData("tiny-mixtral")]
    public void TinyModel_PrunedEqualsRemoveExpertsBitForBit(string preset)
    {
        using var temp = new TempDirectory();
        SyntheticModelWriter.Write(SyntheticPresets.Get(preset), temp.File("model.gguf"));
        AssertPrunedMatches(temp.File("model.gguf"), temp.File("pruned.gguf"), keepCount: 3, useDisable: false);
    }

    [Fact]
    public void SigmoidGroupedModel_PrunedEqualsDisableExpertsBitForBit()
    {
        using var temp = new TempDirectory();
        var spec = SyntheticPresets.Get("tiny-deepseek3") with { ExpertCount = 16 };
        SyntheticModelWriter.Write(spec, temp.File("model.gguf"));

        // 16 experts in 4 groups of 4: keeping 2 per group keeps the groups aligned.
        AssertPrunedMatches(temp.File("model.gguf"), temp.File("pruned.gguf"), keepCount: 8, useDisable: true);
        AssertPrunedMatches(temp.File("model.gguf"), temp.File("pruned2.gguf"), keepCount: 8, useDisable: false);
        using var pruned = GgufFile.Open(temp.File("pruned.gguf"));
        Assert.Equal(8, pruned.GetInteger("deepseek2.expert_count"));
        Assert.Equal(4, pruned.GetInteger("deepseek2.expert_group_count"));
        Assert.Equal(8, pruned.GetTensor("blk.1.exp_probs_b.bias").Dimensions[0]);
    }

    [Fact]
    public void GroupedModel_UnevenGroups_AreRefusedWithAClearMessage()
    {
        string source = GoldenData.GoldenPath("models", "deepseek3", "model.gguf");
        using var file = GgufFile.Open(source);
        var keep = ExpertPruner.MoeLayers(file).ToDictionary(l => l, _ => (IReadOnlyList<int>)[0, 1, 2, 3]);
        var error = Assert.Throws<ExpertScopeException>(() => ExpertPruner.Validate(file, keep));
        Assert.Contains("group", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnevenKeepCounts_AreRefused()
    {
        using var file = GgufFile.Open(GoldenData.GoldenPath("models", "olmoe", "model.gguf"));
        var layers = ExpertPruner.MoeLayers(file).ToArray();
        var keep = layers.ToDictionary(l => l, l => (IReadOnlyList<int>)(l == layers[0] ? [0, 1] : [0, 1, 2]));
        var error = Assert.Throws<ExpertScopeException>(() => ExpertPruner.Validate(file, keep));
        Assert.Contains("expert_count", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KeepFile_ParsesAndReportsBadLines()
    {
        using var temp = new TempDirectory();
        File.WriteAllLines(temp.File("keep.txt"), ["# kept experts", "0: 1, 3,4", "", "2:0,7"]);
        var plan = PruneSelection.ReadKeepFile(temp.File("keep.txt"));
        Assert.Equal([1, 3, 4], plan[0]);
        Assert.Equal([0, 7], plan[2]);
        File.WriteAllLines(temp.File("bad.txt"), ["0: 1, x"]);
        var error = Assert.Throws<ExpertScopeException>(() => PruneSelection.ReadKeepFile(temp.File("bad.txt")));
        Assert.Contains("bad.txt:1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TopByScore_KeepsTheBestPerGroup()
    {
        var scores = new double[1, 8];
        double[] values = [5, 6, 2, 9, 3, 1, 0, 7];
        for (int e = 0; e < 8; e++)
        {
            scores[0, e] = values[e];
        }

        Assert.Equal([0, 1, 3, 7], PruneSelection.TopByScore(scores, [0], 8, 4, groupCount: 1)[0]);
        Assert.Equal([1, 3, 4, 7], PruneSelection.TopByScore(scores, [0], 8, 4, groupCount: 4)[0]);
        Assert.Equal(4, PruneSelection.KeepCountForFraction(0.5, 8));
    }

    private static void AssertPrunedMatches(string source, string target, int keepCount, bool useDisable)
    {
        Dictionary<int, IReadOnlyList<int>> keep;
        int experts;
        int groups;
        using (var file = GgufFile.Open(source))
        {
            string arch = file.Architecture!;
            experts = (int)file.GetInteger(arch + ".expert_count");
            groups = (int)(file.TryGetInteger(arch + ".expert_group_count") ?? 1);
            var layers = ExpertPruner.MoeLayers(file);

            // Pseudo-random scores so each block keeps a different set.
            var scores = new double[layers.Max + 1, experts];
            foreach (int layer in layers)
            {
                for (int e = 0; e < experts; e++)
                {
                    scores[layer, e] = (e * 7 + layer * 3) % experts;
                }
            }

            keep = PruneSelection.TopByScore(scores, layers, experts, keepCount, groups);
        }

        var summary = ExpertPruner.Write(source, keep, target);
        Assert.Equal(keepCount, summary.KeptCount);
        Assert.True(summary.BytesAfter < summary.BytesBefore);

        using var original = MoeModel.Load(source);
        using var pruned = MoeModel.Load(target);
        var removed = PruneSelection.Removed(keep, experts);
        RouterIntervention[] interventions = [.. removed.Select(p => useDisable
            ? (RouterIntervention)new DisableExperts(LayerSelector.Only(p.Key), [.. p.Value.Select(e => new ExpertId(e))])
            : new RemoveExperts(LayerSelector.Only(p.Key), [.. p.Value.Select(e => new ExpertId(e))]))];
        int vocabulary = original.Hyperparameters.VocabularySize;
        int[] tokens = [.. Prompt.Select(t => t % vocabulary)];
        var expected = original.Run(tokens, new RunOptions { Interventions = interventions });
        var actual = pruned.Run(tokens);
        Assert.Equal(expected.Values, actual.Values);

        // The masked run must differ from the plain one, or the comparison proves nothing.
        Assert.NotEqual(original.Run(tokens).Values, actual.Values);
    }
}
