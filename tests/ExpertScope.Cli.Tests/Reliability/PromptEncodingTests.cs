using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests.Reliability;

/// <summary>Invalid UTF-8 in a prompt file is reported with its line, never replaced silently by U+FFFD and traced.</summary>
public sealed class PromptEncodingTests(TinyModelFixture model) : IClassFixture<TinyModelFixture>, IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Theory]
    [InlineData("prompts.txt")]
    [InlineData("prompts.jsonl")]
    public void InvalidUtf8InAPrompt_IsOneLineNamingFileAndLine(string name)
    {
        string input = _directory.File(name);
        bool json = name.EndsWith(".jsonl", StringComparison.Ordinal);
        byte[] good = json ? "{\"text\": \"The bank\"}\n"u8.ToArray() : "The bank\n"u8.ToArray();
        byte[] before = json ? "{\"text\": \"caf"u8.ToArray() : "caf"u8.ToArray();
        byte[] after = json ? "\"}\n"u8.ToArray() : "\n"u8.ToArray();
        File.WriteAllBytes(input, [.. good, .. before, 0xE9, .. after]); // 0xE9: Latin-1 'é', not UTF-8
        string output = _directory.File("trace.jsonl");

        var (code, _, error) = EngineVerbs.Run("trace", "--model", model.ModelPath, "--input", input, "--out", output);

        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, input + ":2:", "UTF-8", "0xE9");
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void UnpairedSurrogateEscapeInAJsonlPrompt_IsOneLineNamingFileAndLine()
    {
        string input = _directory.File("prompts.jsonl");
        File.WriteAllText(input, "{\"text\": \"The bank\"}\n{\"text\": \"\\ud800\"}\n");

        var (code, _, error) = EngineVerbs.Run("trace", "--model", model.ModelPath, "--input", input, "--out", _directory.File("trace.jsonl"));

        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, input + ":2:", "not valid Unicode");
    }
}
