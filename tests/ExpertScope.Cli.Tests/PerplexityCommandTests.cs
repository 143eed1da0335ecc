using System.Text.Json;
using ExpertScope.Models;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

public class PerplexityCommandTests
{
    public static TheoryData<string> GoldenCases() => EngineVerbs.GoldenCases();

    [Theory]
    [MemberData(nameof(GoldenCases))]
    public void AShortTextScoresEveryTokenAfterBosAsLlamaCppsLogitsSay(string name)
    {
        var golden = GoldenCase.Load(name);
        using var temp = new TempDirectory();
        for (int p = 0; p < 2; p++)
        {
            string input = temp.File($"text{p}.txt");
            File.WriteAllText(input, golden.Prompts[p].Text);

            var (code, output, error) = EngineVerbs.Run(["perplexity", "--model", golden.ModelPath, "--input", input, "--json", .. golden.OverrideArgs]);

            Assert.True(code == 0, error);
            using var json = JsonDocument.Parse(output);
            var tokens = golden.Prompts[p].Tokens;
            double expected = ExpectedPerplexity(golden.ReadFloats(p, "logits"), tokens);
            Assert.Equal(expected, json.RootElement.GetProperty("perplexity").GetDouble(), expected * 1e-12);
            Assert.Equal(tokens.Length - 1, json.RootElement.GetProperty("tokens").GetInt32());
            Assert.Equal(tokens.Length, json.RootElement.GetProperty("text_tokens").GetInt32());
        }
    }

    [Fact]
    public void TopKOneEqualsTheGoldenRunWithExpertUsedCountOne()
    {
        var single = GoldenCase.Load("qwen3moe-k1");
        using var temp = new TempDirectory();
        string input = temp.File("text.txt");
        File.WriteAllText(input, single.Prompts[1].Text);

        var (code, output, error) = EngineVerbs.Run("perplexity", "--model", EngineVerbs.ModelPath("qwen3moe"), "--input", input, "--top-k", "1", "--json");

        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(output);
        double expected = ExpectedPerplexity(single.ReadFloats(1, "logits"), single.Prompts[1].Tokens);
        Assert.Equal(expected, json.RootElement.GetProperty("perplexity").GetDouble(), expected * 1e-12);
        Assert.Equal("top_k", json.RootElement.GetProperty("interventions")[0].GetProperty("kind").GetString());

        // Keeping only the top expert does not renormalise its weight, so qwen3moe (which normalises) differs from k = 1.
        (code, output, error) = EngineVerbs.Run("perplexity", "--model", EngineVerbs.ModelPath("qwen3moe"), "--input", input, "--keep-top-expert", "--json");
        Assert.True(code == 0, error);
        using var kept = JsonDocument.Parse(output);
        Assert.NotEqual(expected, kept.RootElement.GetProperty("perplexity").GetDouble(), expected * 1e-6);
    }

    [Fact]
    public void WindowsScoreEachTokenOnceGivenTheTokensBeforeItInTheFirstWindowThatEndsAfterIt()
    {
        var golden = GoldenCase.Load("olmoe");
        var tokens = golden.Prompts[3].Tokens;
        using var temp = new TempDirectory();
        string input = temp.File("text.txt");
        File.WriteAllText(input, golden.Prompts[3].Text);
        const int Context = 8, Stride = 3;

        var (code, output, error) = EngineVerbs.Run("perplexity", "--model", golden.ModelPath, "--input", input, "--context", "8", "--stride", "3", "--json");

        Assert.True(code == 0, error);
        using var model = MoeModel.Load(golden.ModelPath);
        double total = 0;
        for (int j = 1; j < tokens.Length; j++)
        {
            // Window w covers [w*S, w*S+N); token j is scored by the first window that ends after it.
            int window = Math.Max(0, (j + 1 - Context + Stride - 1) / Stride);
            int begin = window * Stride, end = Math.Min(begin + Context, tokens.Length);
            Assert.InRange(j - begin, window == 0 ? 1 : Context - Stride, Context - 1);
            var logits = model.Run(tokens.AsSpan(begin, end - begin));
            total -= LogSoftmax(logits.Row(j - begin - 1), tokens[j]);
        }

        double expected = Math.Exp(total / (tokens.Length - 1));
        var root = JsonDocument.Parse(output).RootElement;
        Assert.Equal(expected, root.GetProperty("perplexity").GetDouble(), expected * 1e-12);
        Assert.Equal(tokens.Length - 1, root.GetProperty("tokens").GetInt32());
        Assert.Equal(1 + ((tokens.Length - Context + Stride - 1) / Stride), root.GetProperty("windows").GetInt32());
    }

    [Fact]
    public void ALongTextNeedsAStride()
    {
        using var temp = new TempDirectory();
        string input = temp.File("long.txt");
        File.WriteAllText(input, string.Join(' ', Enumerable.Repeat("The bank by the river bank was closed.", 12)));
        string model = EngineVerbs.ModelPath("mixtral");

        var (code, output, error) = EngineVerbs.Run("perplexity", "--model", model, "--input", input);
        Assert.Equal(1, code);
        Assert.Equal(string.Empty, output);
        EngineVerbs.AssertOneErrorLine(error, input, "tokens long, longer than the window of 128 tokens", "--stride");

        (code, output, error) = EngineVerbs.Run("perplexity", "--model", model, "--input", input, "--stride", "64", "--json");
        Assert.True(code == 0, error);
        var root = JsonDocument.Parse(output).RootElement;
        int textTokens = root.GetProperty("text_tokens").GetInt32();
        Assert.InRange(textTokens, 129, 1000);
        Assert.Equal(textTokens - 1, root.GetProperty("tokens").GetInt32());
        Assert.Equal(1 + ((textTokens - 128 + 63) / 64), root.GetProperty("windows").GetInt32());
        Assert.True(double.IsFinite(root.GetProperty("perplexity").GetDouble()));

        (code, output, error) = EngineVerbs.Run("perplexity", "--model", model, "--input", input, "--stride", "64");
        Assert.True(code == 0, error);
        Assert.StartsWith("perplexity ", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--context", "129", "between 2 and the model's context of 128")]
    [InlineData("--context", "1", "between 2 and the model's context of 128")]
    [InlineData("--stride", "0", "The stride 0 must be between 1 and the window length 128")]
    [InlineData("--stride", "200", "The stride 200")]
    [InlineData("--disable", "9:0", "block 9 has no router")]
    public void BadSettingsAreOneErrorLine(string option, string value, string message)
    {
        using var temp = new TempDirectory();
        string input = temp.File("text.txt");
        File.WriteAllText(input, "The bank by the river bank was closed.");

        var (code, _, error) = EngineVerbs.Run("perplexity", "--model", EngineVerbs.ModelPath("olmoe"), "--input", input, option, value);

        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, message);
    }

    [Fact]
    public void DisablingExpertsChangesThePerplexity()
    {
        using var temp = new TempDirectory();
        string input = temp.File("text.txt");
        File.WriteAllText(input, "She sat on the bank and watched the water.");
        string model = EngineVerbs.ModelPath("olmoe");

        var plain = JsonDocument.Parse(EngineVerbs.Run("perplexity", "--model", model, "--input", input, "--json").Output).RootElement;
        var (code, output, error) = EngineVerbs.Run("perplexity", "--model", model, "--input", input, "--json", "--disable", "*:0,*:1,*:2");

        Assert.True(code == 0, error);
        var steered = JsonDocument.Parse(output).RootElement;
        Assert.NotEqual(plain.GetProperty("perplexity").GetDouble(), steered.GetProperty("perplexity").GetDouble());
        Assert.Equal(plain.GetProperty("tokens").GetInt32(), steered.GetProperty("tokens").GetInt32());
        Assert.Equal([0, 1, 2], steered.GetProperty("interventions")[0].GetProperty("experts").EnumerateArray().Select(e => e.GetInt32()));
    }

    private static double ExpectedPerplexity(float[] logits, int[] tokens)
    {
        int vocabulary = logits.Length / tokens.Length;
        double total = 0;
        for (int i = 1; i < tokens.Length; i++)
        {
            total -= LogSoftmax(logits.AsSpan((i - 1) * vocabulary, vocabulary), tokens[i]);
        }

        return Math.Exp(total / (tokens.Length - 1));
    }

    private static double LogSoftmax(ReadOnlySpan<float> row, int token)
    {
        double max = double.NegativeInfinity;
        foreach (float value in row)
        {
            max = Math.Max(max, value);
        }

        double sum = 0;
        foreach (float value in row)
        {
            sum += Math.Exp(value - max);
        }

        return row[token] - max - Math.Log(sum);
    }
}
