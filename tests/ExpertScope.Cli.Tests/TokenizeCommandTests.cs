using System.Text.Json;
using ExpertScope.Formats.Gguf;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary>The <c>tokenize</c> verb, run in-process against the oracle vocabularies.</summary>
public sealed class TokenizeCommandTests
{
    private static string Vocabulary(string name) => GoldenData.GoldenPath("tokenizers", name + ".gguf");

    [Theory]
    [InlineData("bpe-llama-bpe", false)]
    [InlineData("bpe-llama-bpe", true)]
    [InlineData("spm-llama", false)]
    [InlineData("spm-llama", true)]
    public void Json_PrintsLlamaCppIds(string vocabulary, bool noSpecial)
    {
        const string text = "The quick brown fox jumps over the lazy dog.";
        string[] args = noSpecial
            ? ["tokenize", "--model", Vocabulary(vocabulary), "--text", text, "--json", "--no-special"]
            : ["tokenize", "--model", Vocabulary(vocabulary), "--text", text, "--json"];
        var (code, output, error) = Run(args);

        Assert.Equal(0, code);
        Assert.Equal(string.Empty, error);
        using var json = JsonDocument.Parse(output);
        Assert.Equal(["ids", "pieces"], json.RootElement.EnumerateObject().Select(p => p.Name));
        int[] ids = [.. json.RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32())];
        string[] pieces = [.. json.RootElement.GetProperty("pieces").EnumerateArray().Select(x => x.GetString()!)];

        Assert.Equal(OracleIds(vocabulary, text, addSpecial: !noSpecial), ids);
        Assert.Equal(ids.Length, pieces.Length);
        Assert.Equal(text, string.Concat(pieces.Where(p => p is not ("<s>" or "</s>"))).TrimStart());
        Assert.StartsWith("{\"ids\": [", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Table_ListsEveryToken()
    {
        var (code, output, error) = Run(["tokenize", "--model", Vocabulary("bpe-qwen2"), "--text", "bank bank bank"]);

        Assert.Equal(0, code);
        Assert.Equal(string.Empty, error);
        int[] ids = OracleIds("bpe-qwen2", "bank bank bank", addSpecial: true);
        Assert.Contains($"{ids.Length} tokens", output, StringComparison.Ordinal);
        Assert.Contains("'<s>'", output, StringComparison.Ordinal);
        Assert.Contains("' b'", output, StringComparison.Ordinal);
        foreach (int id in ids)
        {
            Assert.Contains(id.ToString(System.Globalization.CultureInfo.InvariantCulture), output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void MissingModel_IsOneErrorLine()
    {
        var (code, output, error) = Run(["tokenize", "--model", "no-such-file.gguf", "--text", "x"]);

        Assert.Equal(1, code);
        Assert.Equal(string.Empty, output);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", error, StringComparison.Ordinal);
        Assert.Contains("no-such-file.gguf", error, StringComparison.Ordinal);
    }

    [Fact]
    public void FileWithoutTokenizer_IsOneErrorLine()
    {
        using var temp = new TempDirectory();
        string path = temp.File("empty.gguf");
        using (var writer = GgufWriter.Create(path))
        {
            writer.SetMetadata("general.architecture", new GgufValue(GgufValueType.String, "llama"));
            writer.Finish();
        }

        var (code, _, error) = Run(["tokenize", "--model", path, "--text", "x"]);

        Assert.Equal(1, code);
        Assert.Contains("tokenizer.ggml.model", error, StringComparison.Ordinal);
    }

    private static int[] OracleIds(string vocabulary, string text, bool addSpecial)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(GoldenData.GoldenPath("tokenizers", vocabulary + ".json")));
        var match = json.RootElement.GetProperty("cases").EnumerateArray()
            .First(c => c.GetProperty("text").GetString() == text && c.GetProperty("add_special").GetBoolean() == addSpecial);
        return [.. match.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32())];
    }

    private static (int Code, string Output, string Error) Run(string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = CliApp.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
