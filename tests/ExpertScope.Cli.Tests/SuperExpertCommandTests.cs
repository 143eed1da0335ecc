using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

public sealed class SuperExpertCommandTests
{
    [Fact]
    public void SuperExperts_WritesTheProfileAndPruningComparison()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp);
        var (code, output, error) = VerbRunner.Run("super-experts", "--model", model, "--corpus", temp.File("neutral.txt"), "--seeds", "1",
            "--percentile", "90", "--threads", "1", "--out", temp.File("se"));
        Assert.True(code == 0, error);
        Assert.Contains("super expert(s)", output, StringComparison.Ordinal);
        Assert.Contains("baseline", output, StringComparison.Ordinal);
        foreach (string name in new[] { "experts.csv", "residual.csv", "pruning.csv", "summary.json", "report.html", "manifest.json" })
        {
            Assert.True(File.Exists(temp.File("se/" + name)), name);
        }

        Assert.Equal(1 + 3, File.ReadAllLines(temp.File("se/residual.csv")).Length);
    }
}
