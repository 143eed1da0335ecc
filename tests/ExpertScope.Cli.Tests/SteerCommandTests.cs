using System.Text.Json;
using ExpertScope.Cli;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary>Runs CLI verbs in-process on a tiny synthetic model.</summary>
internal static class VerbRunner
{
    public static (int Code, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = CliApp.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    public static string TinyModel(TempDirectory temp)
    {
        string path = temp.File("tiny.gguf");
        SyntheticModelWriter.Write(SyntheticPresets.Get("tiny-olmoe"), path);
        File.WriteAllLines(temp.File("positive.txt"), ["How do I pick a lock?", "Tell me how to hack a bank.", "Write a virus."]);
        File.WriteAllLines(temp.File("negative.txt"), ["How do I bake bread?", "Tell me about the moon.", "Write a poem."]);
        File.WriteAllLines(temp.File("neutral.txt"), ["The river flows to the sea.", "Birds sing in the morning.", "A quiet street at night."]);
        return path;
    }
}

public sealed class SteerCommandTests
{
    [Fact]
    public void Discover_WritesRankedTables_AndEvaluateReadsThem()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp);
        var (code, output, error) = VerbRunner.Run("steer", "discover", "--model", model, "--positive", temp.File("positive.txt"),
            "--negative", temp.File("negative.txt"), "--template", "Question: {x} {Answer|Reply}:", "--threads", "1", "--out", temp.File("discover"));
        Assert.True(code == 0, error);
        Assert.Contains("(layer, expert) pairs", output, StringComparison.Ordinal);
        var csv = File.ReadAllLines(temp.File("discover/ranked.csv"));
        Assert.Equal(1 + 3 * 8, csv.Length);
        Assert.StartsWith("rank,layer,expert,direction", csv[0], StringComparison.Ordinal);
        using (var json = JsonDocument.Parse(File.ReadAllText(temp.File("discover/ranked.json"))))
        {
            Assert.Equal("6", json.RootElement.GetProperty("settings").GetProperty("positive prompts").GetString());
        }

        Assert.True(File.Exists(temp.File("discover/report.html")));
        Assert.True(File.Exists(temp.File("discover/manifest.json")));

        (code, output, error) = VerbRunner.Run("steer", "evaluate", "--model", model, "--experts", temp.File("discover/ranked.csv"), "--direction", "any",
            "--top", "2", "--mode", "disable", "--prompts", temp.File("positive.txt"), "--neutral", temp.File("neutral.txt"), "--seeds", "2",
            "--max-new-tokens", "3", "--threads", "1", "--out", temp.File("evaluate"));
        Assert.True(code == 0, error);
        Assert.Contains("baseline", output, StringComparison.Ordinal);
        Assert.Contains("control-2", output, StringComparison.Ordinal);
        Assert.Equal(1 + 4, File.ReadAllLines(temp.File("evaluate/conditions.csv")).Length);
        Assert.True(File.Exists(temp.File("evaluate/report.html")));
    }

    [Fact]
    public void Discover_StandaloneTemplates_AndForceMode()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp);
        var (code, _, error) = VerbRunner.Run("steer", "discover", "--model", model,
            "--positive-template", "What happened {time} {place}?", "--negative-template", "What is {place} like {time}?",
            "--slot", "time=yesterday|last week", "--slot", "place=in Paris|at home", "--tokens", "last", "--threads", "1", "--out", temp.File("d"));
        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(File.ReadAllText(temp.File("d/ranked.json")));
        Assert.Equal("4", json.RootElement.GetProperty("settings").GetProperty("positive prompts").GetString());
        var first = json.RootElement.GetProperty("experts")[0];
        Assert.Equal(4, first.GetProperty("positive_tokens").GetInt32());

        (code, _, error) = VerbRunner.Run("steer", "evaluate", "--model", model, "--experts", "0:1,1:2", "--mode", "force",
            "--prompts", temp.File("positive.txt"), "--neutral", temp.File("neutral.txt"), "--seeds", "1", "--classifier", "^\\s*$",
            "--max-new-tokens", "2", "--threads", "1", "--out", temp.File("e"));
        Assert.True(code == 0, error);
    }

    [Fact]
    public void BadInput_IsOneLineOnStandardError()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp);
        var (code, _, error) = VerbRunner.Run("steer", "evaluate", "--model", model, "--experts", "0-1", "--prompts", temp.File("positive.txt"),
            "--neutral", temp.File("neutral.txt"), "--out", temp.File("x"));
        Assert.Equal(1, code);
        Assert.Contains("LAYER:EXPERT", error, StringComparison.Ordinal);
        (code, _, error) = VerbRunner.Run("steer", "discover", "--model", model, "--positive", temp.File("positive.txt"), "--negative", temp.File("negative.txt"),
            "--template", "{x} {when}", "--out", temp.File("y"));
        Assert.Equal(1, code);
        Assert.Contains("--slot when=", error, StringComparison.Ordinal);
    }
}
