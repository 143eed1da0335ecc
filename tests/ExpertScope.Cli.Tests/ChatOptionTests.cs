using System.Text.Json;
using ExpertScope.Models;
using ExpertScope.Testing;
using ExpertScope.Tokenizers;

namespace ExpertScope.Cli.Tests;

/// <summary><c>--chat</c>, <c>--system</c>, <c>--chat-template</c>, <c>--no-chat</c> on generate and trace.</summary>
public class ChatOptionTests
{
    [Fact]
    public void GenerateWithAChatTemplate_RunsThePromptAsAUserTurn()
    {
        string model = EngineVerbs.ModelPath("olmoe");
        var (code, output, error) = EngineVerbs.Run("generate", "--model", model, "--prompt", "Hello", "--chat-template", "chatml", "--system", "Be brief", "-n", "2", "--json");

        Assert.True(code == 0, error);
        var root = JsonDocument.Parse(output).RootElement;
        string expected = "<|im_start|>system\nBe brief<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n";
        Assert.Equal(expected, root.GetProperty("prompt").GetString());
        using var moe = MoeModel.Load(model);
        Assert.Equal(moe.Tokenizer.Encode(expected), root.GetProperty("prompt_tokens").EnumerateArray().Select(e => e.GetInt32()));

        (code, output, error) = EngineVerbs.Run("generate", "--model", model, "--prompt", "Hello", "--chat-template", "chatml", "--no-chat", "-n", "1", "--json");
        Assert.True(code == 0, error);
        Assert.Equal("Hello", JsonDocument.Parse(output).RootElement.GetProperty("prompt").GetString());
    }

    [Fact]
    public void ChatWithoutATemplateOrSystemWithoutChat_IsOneErrorLine()
    {
        using var temp = new TempDirectory();
        string input = temp.File("prompts.txt");
        File.WriteAllText(input, "Hello\n");
        string model = EngineVerbs.ModelPath("olmoe");

        var (code, _, error) = EngineVerbs.Run("trace", "--model", model, "--input", input, "--out", temp.File("t.jsonl"), "--chat");
        Assert.NotEqual(0, code);
        EngineVerbs.AssertOneErrorLine(error, "no tokenizer.chat_template", "--no-chat");

        (code, _, error) = EngineVerbs.Run("generate", "--model", model, "--prompt", "Hello", "--system", "x");
        Assert.NotEqual(0, code);
        EngineVerbs.AssertOneErrorLine(error, "--system needs --chat");

        (code, _, error) = EngineVerbs.Run("generate", "--model", model, "--prompt", "Hello", "--chat-template", "gemma");
        Assert.NotEqual(0, code);
        EngineVerbs.AssertOneErrorLine(error, "gemma");
    }

    [Fact]
    public void TraceWithAChatTemplate_ParsesTheTemplatesSpecialTokens()
    {
        using var temp = new TempDirectory();
        string input = temp.File("prompts.txt");
        File.WriteAllText(input, "Hello\n");
        string model = EngineVerbs.ModelPath("olmoe");

        // llama2's "[INST] ... [/INST]" has no special tokens; the trace's tokens are those of the formatted text.
        var (code, _, error) = EngineVerbs.Run("trace", "--model", model, "--input", input, "--out", temp.File("t.jsonl"), "--chat-template", "llama2");
        Assert.True(code == 0, error);
        using var moe = MoeModel.Load(model);
        int expectedTokens = moe.Tokenizer.Encode(ChatTemplate.FromName("llama2").FormatPrompt("Hello")).Count;
        var positions = File.ReadLines(temp.File("t.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(r => r.TryGetProperty("position", out _)).Select(r => r.GetProperty("position").GetInt32()).Distinct().Count();
        Assert.Equal(expectedTokens, positions);
    }
}
