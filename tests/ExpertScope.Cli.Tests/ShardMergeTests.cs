using ExpertScope.Cli;
using ExpertScope.Experiments.Storage;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary><c>--shard i/n</c> on probe and trace, and <c>merge</c>: shards merged equal the unsharded run; differing runs are refused.</summary>
public sealed class ShardMergeTests
{
    private static readonly string ModelPath = GoldenData.GoldenPath("models", "olmoe", "model.gguf");

    [Fact]
    public void ShardedWordSenseProbeMergedEqualsTheUnshardedRun()
    {
        using var temp = new TempDirectory();
        string[] common = ["probe", "word-sense", "--model", ModelPath, "--dataset", "wic:dev", "--data-dir", GoldenData.DataPath(), "--limit", "6", "--seed", "5", "--bootstrap", "200"];
        Assert.Equal(0, Run([.. common, "--out", temp.File("whole")]).Code);
        var first = Run([.. common, "--shard", "0/2", "--out", temp.File("s0")]);
        Assert.True(first.Code == 0, first.Error);
        Assert.Contains("shard 0/2", first.Output, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(temp.File("s0"), "pairs.csv")));
        Assert.Equal(0, Run([.. common, "--shard", "1/2", "--out", temp.File("s1")]).Code);

        var merge = Run("merge", temp.File("s0"), temp.File("s1"), "--out", temp.File("merged"));
        Assert.True(merge.Code == 0, merge.Error);
        var final = Run([.. common, "--out", temp.File("merged")]);
        Assert.True(final.Code == 0, final.Error);
        Assert.Equal(File.ReadAllBytes(Path.Combine(temp.File("whole"), "pairs.csv")), File.ReadAllBytes(Path.Combine(temp.File("merged"), "pairs.csv")));

        // A shard of another seed (another sample) is refused, naming the difference.
        Assert.Equal(0, Run([.. common.Take(common.Length - 4), "--seed", "6", "--bootstrap", "200", "--shard", "1/2", "--out", temp.File("other")]).Code);
        var refused = Run("merge", temp.File("s0"), temp.File("other"), "--out", temp.File("bad"));
        Assert.Equal(1, refused.Code);
        Assert.Contains("seed was 5, now 6", refused.Error, StringComparison.Ordinal);

        Assert.Equal(1, Run([.. common, "--shard", "2/2", "--out", temp.File("x")]).Code);
    }

    [Fact]
    public async Task ShardedTracesMergedEqualTheUnshardedTrace()
    {
        using var temp = new TempDirectory();
        File.WriteAllLines(temp.File("in.txt"), ["The bank of the river.", "A bank loan.", "Rivers flow.", "Money talks.", "Steep banks."]);
        string[] common = ["trace", "--model", ModelPath, "--input", temp.File("in.txt")];
        Assert.Equal(0, Run([.. common, "--out", temp.File("whole.parquet")]).Code);
        Assert.Equal(0, Run([.. common, "--shard", "0/2", "--out", temp.File("a.parquet")]).Code);
        Assert.Equal(0, Run([.. common, "--shard", "1/2", "--out", temp.File("b.parquet")]).Code);
        var merge = Run("merge", temp.File("b.parquet"), temp.File("a.parquet"), "--out", temp.File("merged.parquet"));
        Assert.True(merge.Code == 0, merge.Error);
        Assert.Equal(await Rows(temp.File("whole.parquet")), await Rows(temp.File("merged.parquet")));
    }

    private static async Task<List<RoutingTraceRow>> Rows(string path)
    {
        var rows = new List<RoutingTraceRow>();
        await foreach (var row in RoutingTraceReader.ReadRowsAsync(path))
        {
            rows.Add(row with { Probs = null });
        }

        return rows;
    }

    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = CliApp.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
