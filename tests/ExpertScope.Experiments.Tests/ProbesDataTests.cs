using ExpertScope.Core;
using ExpertScope.Experiments.Data;
using ExpertScope.Experiments.Probes;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>Probe data-set loading: errors that name what is wrong, lenient skipping, the seeded sample.</summary>
public sealed class ProbesDataTests
{
    [Fact]
    public void MalformedWicLineNamesFileAndLine()
    {
        using var temp = new TempDirectory();
        var folder = WriteWic(temp, "bank\tN\t1-2\tThe bank .\tA river bank .\nbroken line without tabs\n", "T\nF\n");
        var error = Assert.Throws<DataFormatException>(() => ProbeData.Load(Settings(temp.Path)));
        Assert.Equal(2, error.Line);
        Assert.EndsWith("dev.data.txt", error.File, StringComparison.Ordinal);
        Assert.Contains("5 tab-separated fields", error.Message, StringComparison.Ordinal);

        var lenient = ProbeData.Load(Settings(temp.Path) with { Lenient = true });
        Assert.Single(lenient.Pairs);
        Assert.Contains("line 2", Assert.Single(lenient.Skipped), StringComparison.Ordinal);
        Assert.True(Directory.Exists(folder));
    }

    [Fact]
    public void MissingDataNamesThePathAndHowToFixIt()
    {
        using var temp = new TempDirectory();
        var error = Assert.Throws<ExpertScopeException>(() => ProbeData.Load(Settings(temp.Path)));
        Assert.Contains(Path.Combine(temp.Path, "wic", "dev", "dev.data.txt"), error.Message, StringComparison.Ordinal);
        Assert.Contains("--data-dir", error.Message, StringComparison.Ordinal);
        Assert.Contains(ProbeData.EnvironmentVariable, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownOrMismatchedDataSetsAreRefused()
    {
        var data = GoldenData.DataPath();
        Assert.Contains("unknown data set", Assert.Throws<ExpertScopeException>(() => ProbeData.Load(Settings(data) with { Dataset = "nope" })).Message, StringComparison.Ordinal);
        Assert.Contains("unknown split", Assert.Throws<ExpertScopeException>(() => ProbeData.Load(Settings(data) with { Dataset = "wic:val" })).Message, StringComparison.Ordinal);
        Assert.Contains("substitution", Assert.Throws<ExpertScopeException>(() => ProbeData.Load(Settings(data) with { Dataset = "swords:dev" })).Message, StringComparison.Ordinal);
        Assert.Contains("SWORDS", Assert.Throws<ExpertScopeException>(() => ProbeData.Load(Settings(data) with { Kind = ProbeKind.Substitution })).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DataFolderComesFromTheOptionThenTheEnvironmentThenDotData()
    {
        Assert.Equal("/given", ProbeData.ResolveDataFolder("/given"));
        var fallback = ProbeData.ResolveDataFolder(null);
        var environment = Environment.GetEnvironmentVariable(ProbeData.EnvironmentVariable);
        Assert.Equal(string.IsNullOrEmpty(environment) ? Path.Combine(Directory.GetCurrentDirectory(), "data") : environment, fallback);
    }

    [Fact]
    public void SampleIsSeededAndBalanced()
    {
        var all = ProbeData.Load(Settings(GoldenData.DataPath())).Pairs;
        var first = ProbeData.Sample(all, 40, 5);
        Assert.Equal(40, first.Count);
        Assert.Equal(20, first.Count(pair => pair.Label == PairLabel.Same));
        Assert.Equal(first.Select(p => p.Id), ProbeData.Sample(all, 40, 5).Select(p => p.Id));
        Assert.NotEqual(first.Select(p => p.Id), ProbeData.Sample(all, 40, 6).Select(p => p.Id));
        Assert.Same(all, ProbeData.Sample(all, null, 5));
        var loaded = ProbeData.Load(Settings(GoldenData.DataPath()) with { Limit = 40, Seed = 5 });
        Assert.Equal(638, loaded.Available);
        Assert.InRange(loaded.Pool.Count, 1000, 1276);
    }

    private static ProbeSettings Settings(string dataFolder) => new() { Kind = ProbeKind.WordSense, Dataset = "wic:dev", DataFolder = dataFolder };

    private static string WriteWic(TempDirectory temp, string data, string gold)
    {
        var folder = Path.Combine(temp.Path, "wic", "dev");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "dev.data.txt"), data);
        File.WriteAllText(Path.Combine(folder, "dev.gold.txt"), gold);
        return folder;
    }
}
