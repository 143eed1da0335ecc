using System.Text.Json;
using ExpertScope.Experiments.Runs;
using ExpertScope.Experiments.Tracing;
using ExpertScope.Models;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary>
/// Special tokens written as text: perplexity and trace read them as ordinary text (llama-perplexity), unless
/// --parse-special; tokenize parses them (llama-tokenize), unless --no-parse-special. The golden vocabularies'
/// BOS is the control token "&lt;s&gt;" (id 506).
/// </summary>
public class SpecialTokenTextTests
{
    private const string Text = "hi<s>there";

    [Fact]
    public void TokenizeParsesSpecialTokensUnlessAskedNotTo()
    {
        string model = EngineVerbs.ModelPath("olmoe");

        var (code, output, error) = EngineVerbs.Run("tokenize", "--model", model, "--text", Text, "--json");
        Assert.True(code == 0, error);
        var parsed = Ids(output);
        (code, output, error) = EngineVerbs.Run("tokenize", "--model", model, "--text", Text, "--json", "--no-parse-special");
        Assert.True(code == 0, error);
        var plain = Ids(output);

        Assert.Equal(2, parsed.Count(id => id == 506)); // the added BOS and the written one
        Assert.Equal(1, plain.Count(id => id == 506)); // only the added BOS; "<s>" is spelt out
        Assert.True(plain.Length > parsed.Length);
    }

    [Fact]
    public void PerplexityReadsSpecialTokensAsTextUnlessParseSpecial()
    {
        using var temp = new TempDirectory();
        string input = temp.File("text.txt");
        File.WriteAllText(input, Text);
        string model = EngineVerbs.ModelPath("olmoe");
        using var moe = MoeModel.Load(model);

        var (code, output, error) = EngineVerbs.Run("perplexity", "--model", model, "--input", input, "--json");
        Assert.True(code == 0, error);
        Assert.Equal(moe.Tokenizer.Encode(Text, parseSpecial: false).Count, JsonDocument.Parse(output).RootElement.GetProperty("text_tokens").GetInt32());

        (code, output, error) = EngineVerbs.Run("perplexity", "--model", model, "--input", input, "--json", "--parse-special");
        Assert.True(code == 0, error);
        Assert.Equal(moe.Tokenizer.Encode(Text, parseSpecial: true).Count, JsonDocument.Parse(output).RootElement.GetProperty("text_tokens").GetInt32());
        Assert.NotEqual(moe.Tokenizer.Encode(Text, parseSpecial: true).Count, moe.Tokenizer.Encode(Text, parseSpecial: false).Count);
    }

    [Fact]
    public void TraceReadsSpecialTokensAsTextUnlessParseSpecial()
    {
        using var moe = MoeModel.Load(EngineVerbs.ModelPath("olmoe"));
        Prompt[] prompts = [new Prompt(0, 1, Text)];

        var plain = TraceRunner.Tokenize(moe, prompts, truncate: false, "prompts")[0].Tokens;
        var parsed = TraceRunner.Tokenize(moe, prompts, truncate: false, "prompts", parseSpecial: true)[0].Tokens;

        Assert.Equal(1, plain.Count(id => id == 506));
        Assert.Equal(2, parsed.Count(id => id == 506));
    }

    private static int[] Ids(string json) => [.. JsonDocument.Parse(json).RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32())];
}
