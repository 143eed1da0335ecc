using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models;
using ExpertScope.Models.Routing;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

public sealed class PruneCommandTests
{
    [Theory]
    [InlineData("frequency")]
    [InlineData("output-aware")]
    public void Prune_WritesAModelThatEqualsTheSourceWithTheRestRemoved(string score)
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp);
        var (code, output, error) = VerbRunner.Run("prune", "--model", model, "--keep-per-layer", "5", "--corpus", temp.File("neutral.txt"),
            "--score", score, "--threads", "1", "--out", temp.File("pruned.gguf"));
        Assert.True(code == 0, error);
        Assert.Contains("5 of 8 experts", output, StringComparison.Ordinal);

        using (var file = GgufFile.Open(temp.File("pruned.gguf")))
        {
            Assert.Equal(5, file.GetInteger("olmoe.expert_count"));
            Assert.Equal(4, file.GetInteger("olmoe.expert_used_count"));
            Assert.Equal([64L, 32, 5], file.GetTensor("blk.0.ffn_up_exps.weight").Dimensions.ToArray());
            Assert.Equal([64L, 5], file.GetTensor("blk.2.ffn_gate_inp.weight").Dimensions.ToArray());
        }

        var keep = File.ReadAllLines(temp.File("pruned.gguf.keep.txt")).Where(l => !l.StartsWith('#'))
            .Select(l => l.Split(':'))
            .ToDictionary(p => int.Parse(p[0], System.Globalization.CultureInfo.InvariantCulture), p => p[1].Split(',').Select(e => int.Parse(e, System.Globalization.CultureInfo.InvariantCulture)).ToArray());
        RouterIntervention[] removed = [.. keep.Select(p => new RemoveExperts(LayerSelector.Only(p.Key),
            [.. Enumerable.Range(0, 8).Except(p.Value).Select(e => new ExpertId(e))]))];
        using var original = MoeModel.Load(model);
        using var pruned = MoeModel.Load(temp.File("pruned.gguf"));
        int[] tokens = [.. original.Tokenizer.Encode("The river flows to the sea.")];
        Assert.Equal(original.Run(tokens, new RunOptions { Interventions = removed }).Values, pruned.Run(tokens).Values);
    }

    [Fact]
    public void Prune_FromAnExpertsFile_ClampsK()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp);
        File.WriteAllLines(temp.File("keep.txt"), ["0: 0, 1", "1: 2, 3", "2: 6, 7"]);
        var (code, output, error) = VerbRunner.Run("prune", "--model", model, "--experts-file", temp.File("keep.txt"), "--verify", "--out", temp.File("p.gguf"));
        Assert.True(code == 0, error);
        Assert.Contains("k 4 -> 2", output, StringComparison.Ordinal);
        Assert.Contains("verified", output, StringComparison.Ordinal);
        using var file = GgufFile.Open(temp.File("p.gguf"));
        Assert.Equal(2, file.GetInteger("olmoe.expert_used_count"));
    }

    [Fact]
    public void Prune_NeedsExactlyOneSelection()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp);
        var (code, _, error) = VerbRunner.Run("prune", "--model", model, "--keep-per-layer", "4", "--keep-fraction", "0.5", "--out", temp.File("p.gguf"));
        Assert.Equal(1, code);
        Assert.Contains("exactly one", error, StringComparison.Ordinal);
        (code, _, error) = VerbRunner.Run("prune", "--model", model, "--keep-per-layer", "4", "--out", temp.File("p.gguf"));
        Assert.Equal(1, code);
        Assert.Contains("--corpus", error, StringComparison.Ordinal);
    }
}
