using System.CommandLine;
using System.Text.Json;
using ExpertScope.Models;
using ExpertScope.Models.Routing;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

public class GenerateCommandTests
{
    public static TheoryData<string> GoldenCases() => EngineVerbs.GoldenCases();

    [Theory]
    [MemberData(nameof(GoldenCases))]
    public void TheFirstGreedyTokenIsTheArgmaxOfLlamaCppsLogits(string name)
    {
        var golden = GoldenCase.Load(name);
        var prompt = golden.Prompts[0];
        var (code, output, error) = EngineVerbs.Run(["generate", "--model", golden.ModelPath, "--prompt", prompt.Text, "--max-tokens", "1", "--json", .. golden.OverrideArgs]);

        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(output);
        Assert.Equal(prompt.Tokens, json.RootElement.GetProperty("prompt_tokens").EnumerateArray().Select(t => t.GetInt32()));
        var logits = golden.ReadFloats(0, "logits");
        int vocabulary = logits.Length / prompt.Tokens.Length;
        var last = logits.AsSpan(logits.Length - vocabulary);
        int best = 0;
        for (int i = 1; i < last.Length; i++)
        {
            best = last[i] > last[best] ? i : best;
        }

        Assert.Equal([best], json.RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()));
        Assert.Equal(JsonValueKind.Array, json.RootElement.GetProperty("interventions").ValueKind);
        Assert.Equal(0, json.RootElement.GetProperty("interventions").GetArrayLength());
    }

    [Fact]
    public void GreedyAndSeededGenerationAreDeterministic()
    {
        string model = EngineVerbs.ModelPath("qwen2moe");
        string[] greedy = ["generate", "--model", model, "--prompt", "The bank by the river", "-n", "10"];
        var first = EngineVerbs.Run(greedy);
        Assert.True(first.Code == 0, first.Error);
        Assert.Equal(first, EngineVerbs.Run(greedy));
        Assert.Equal(first, EngineVerbs.Run([.. greedy, "--threads", "1"]));

        string[] sampled = ["generate", "--model", model, "--prompt", "The bank by the river", "-n", "10", "--temperature", "1.5", "--seed", "7", "--json"];
        var a = EngineVerbs.Run(sampled);
        Assert.True(a.Code == 0, a.Error);
        Assert.Equal(a, EngineVerbs.Run(sampled));
        using var json = JsonDocument.Parse(a.Output);
        Assert.Equal(10, json.RootElement.GetProperty("tokens").GetArrayLength());
        Assert.Equal("max_tokens", json.RootElement.GetProperty("stopped").GetString());
    }

    [Fact]
    public void DisablingAnExpertRemovesItFromTheTraceOfThatBlockOnly()
    {
        var golden = GoldenCase.Load("olmoe");
        using var model = MoeModel.Load(golden.ModelPath);
        var tokens = golden.Prompts[0].Tokens;
        var baseline = Trace(model, tokens, []);
        int expert = baseline.ExpertsAt(1, 3)[0];

        var interventions = Parse(model, "--disable", $"1:{expert}");
        var steered = Trace(model, tokens, interventions);

        var disable = Assert.IsType<DisableExperts>(Assert.Single(interventions));
        Assert.Equal([1], disable.Layers.Layers.ToArray());
        for (int position = 0; position < tokens.Length; position++)
        {
            Assert.DoesNotContain(expert, steered.ExpertsAt(1, position).ToArray());
            Assert.Equal(baseline.ExpertsAt(0, position).ToArray(), steered.ExpertsAt(0, position).ToArray());
        }

        Assert.NotEqual(baseline.ExpertsAt(1, 3).ToArray(), steered.ExpertsAt(1, 3).ToArray());

        // * and ranges reach every named block; --force puts the expert first everywhere it applies.
        var everywhere = Trace(model, tokens, Parse(model, "--disable", $"*:{expert}"));
        var forced = Trace(model, tokens, Parse(model, "--force", "0-2:5"));
        foreach (int layer in new[] { 0, 1, 2 })
        {
            for (int position = 0; position < tokens.Length; position++)
            {
                Assert.DoesNotContain(expert, everywhere.ExpertsAt(layer, position).ToArray());
                Assert.Equal(5, forced.ExpertsAt(layer, position)[0]);
            }
        }
    }

    [Fact]
    public void InterventionsAreParsedGroupedAndReported()
    {
        using var model = MoeModel.Load(EngineVerbs.ModelPath("deepseek2-lite"));
        var interventions = Parse(model, "--disable", "1:3,2:4", "--disable", "1:5,*:0", "--force", "1-2:7", "--top-k", "2", "--keep-top-expert");

        Assert.Collection(
            interventions,
            i => Assert.Equal(new DisableExperts(LayerSelector.Only(1), [new(3), new(5)]), i),
            i => Assert.Equal(new DisableExperts(LayerSelector.Only(2), [new(4)]), i),
            i => Assert.Equal(new DisableExperts(LayerSelector.All, [new(0)]), i),
            i => Assert.Equal(new ForceExperts(LayerSelector.Only(1, 2), [new(7)]), i),
            i => Assert.Equal(new OverrideTopK(LayerSelector.All, 2), i),
            i => Assert.Equal(new KeepOnlyTopExpert(LayerSelector.All), i));

        var (code, output, error) = EngineVerbs.Run(
            "generate", "--model", model.FilePath, "--prompt", "The bank", "-n", "3", "--disable", "1:3,*:0", "--top-k", "2", "--json");
        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(output);
        var reported = json.RootElement.GetProperty("interventions");
        Assert.Equal(3, reported.GetArrayLength());
        Assert.Equal("disable", reported[0].GetProperty("kind").GetString());
        Assert.Equal([1], reported[0].GetProperty("layers").EnumerateArray().Select(l => l.GetInt32()));
        Assert.Equal([3], reported[0].GetProperty("experts").EnumerateArray().Select(l => l.GetInt32()));
        Assert.Equal("all", reported[1].GetProperty("layers").GetString());
        Assert.Equal(2, reported[2].GetProperty("top_k").GetInt32());
    }

    [Theory]
    [InlineData("--disable", "1", "expected L:E")]
    [InlineData("--disable", "1:x", "expert 'x' is not a non-negative integer")]
    [InlineData("--disable", "1:8", "expert 8 does not exist (the model has experts 0-7)")]
    [InlineData("--disable", "3:1", "block 3 has no router (the model has 3 blocks; MoE blocks: 1,2)")]
    [InlineData("--disable", "0:1", "block 0 has no router")]
    [InlineData("--force", "2-1:1", "the range 2-1 is empty")]
    [InlineData("--force", "a-b:1", "is not a block index, a range like 2-5, or *")]
    [InlineData("--top-k", "0", "--top-k 0: experts per token must be between 1 and the model's 8 experts")]
    [InlineData("--top-k", "9", "--top-k 9")]
    public void BadInterventionsAreOneClearErrorLine(string option, string value, string message)
    {
        var (code, output, error) = EngineVerbs.Run("generate", "--model", EngineVerbs.ModelPath("deepseek2-lite"), "--prompt", "The bank", option, value);

        Assert.Equal(1, code);
        Assert.Equal(string.Empty, output);
        EngineVerbs.AssertOneErrorLine(error, message);
    }

    [Fact]
    public void ForcingADisabledExpertIsOneErrorLine()
    {
        var (code, _, error) = EngineVerbs.Run("generate", "--model", EngineVerbs.ModelPath("mixtral"), "--prompt", "The bank", "--disable", "*:2", "--force", "1:2");

        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error);
    }

    private static RoutingTrace Trace(MoeModel model, int[] tokens, IReadOnlyList<RouterIntervention> interventions)
    {
        var trace = new RoutingTrace();
        model.Run(tokens, new RunOptions { Interventions = interventions, Observers = [trace], Logits = LogitsSelection.None });
        return trace;
    }

    private static IReadOnlyList<RouterIntervention> Parse(MoeModel model, params string[] args)
    {
        var options = new InterventionOptions();
        var command = new RootCommand();
        options.AddTo(command);
        var parse = command.Parse(args);
        Assert.Empty(parse.Errors);
        return options.Parse(parse, model);
    }
}
