using System.Text.Json;
using ExpertScope.Cli;
using ExpertScope.Formats.Gguf;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

public class InspectCommandTests
{
    public static TheoryData<string> GoldenModels()
    {
        var data = new TheoryData<string>();
        foreach (var dir in Directory.EnumerateDirectories(GoldenData.GoldenPath("models")).Order(StringComparer.Ordinal))
        {
            if (File.Exists(Path.Combine(dir, "model.gguf")))
            {
                data.Add(Path.GetFileName(dir));
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(GoldenModels))]
    public void JsonIsOneObjectWithTheSummaryAndMetadata(string model)
    {
        string path = ModelPath(model);
        var (code, output, error) = Run("inspect", path, "--json");

        Assert.Equal(0, code);
        Assert.Equal(string.Empty, error);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        Assert.Equal(JsonValueKind.Object, root.ValueKind);
        var metadata = root.GetProperty("metadata");
        string arch = root.GetProperty("architecture").GetString()!;
        Assert.Equal(metadata.GetProperty("general.architecture").GetString(), arch);

        // Hyperparameters and MoE echo the {arch}.* keys.
        var hyper = root.GetProperty("hyperparameters");
        Assert.Equal(metadata.GetProperty($"{arch}.block_count").GetInt64(), hyper.GetProperty("block_count").GetInt64());
        Assert.Equal(metadata.GetProperty($"{arch}.embedding_length").GetInt64(), hyper.GetProperty("embedding_length").GetInt64());
        Assert.Equal(128, hyper.GetProperty("context_length").GetInt64());
        var moe = root.GetProperty("moe");
        Assert.Equal(metadata.GetProperty($"{arch}.expert_count").GetInt64(), moe.GetProperty("expert_count").GetInt64());
        Assert.Equal(metadata.GetProperty($"{arch}.expert_used_count").GetInt64(), moe.GetProperty("expert_used_count").GetInt64());

        // Parameter totals agree with the tensor list; routed experts are the only tensors that shrink.
        var tensors = root.GetProperty("tensors").EnumerateArray().ToList();
        Assert.Equal(tensors.Sum(t => t.GetProperty("parameters").GetInt64()), root.GetProperty("parameters").GetProperty("total").GetInt64());
        Assert.Equal(tensors.Sum(t => t.GetProperty("active_parameters").GetInt64()), root.GetProperty("parameters").GetProperty("active").GetInt64());
        long used = moe.GetProperty("expert_used_count").GetInt64(), count = moe.GetProperty("expert_count").GetInt64();
        foreach (var t in tensors)
        {
            long parameters = t.GetProperty("parameters").GetInt64();
            long expected = t.GetProperty("name").GetString()!.Contains("_exps.", StringComparison.Ordinal) ? parameters / count * used : parameters;
            Assert.Equal(expected, t.GetProperty("active_parameters").GetInt64());
            Assert.Equal(parameters, t.GetProperty("ne").EnumerateArray().Aggregate(1L, (p, d) => p * d.GetInt64()));
        }

        long tensorBytes = tensors.Sum(t => t.GetProperty("bytes").GetInt64());
        long kv = root.GetProperty("memory").GetProperty("kv_cache_bytes").GetInt64();
        Assert.Equal(tensorBytes + kv, root.GetProperty("memory_bytes").GetInt64());

        // The vocabulary is summarized, not dumped.
        var tokens = metadata.GetProperty("tokenizer.ggml.tokens");
        Assert.Equal(508, tokens.GetProperty("length").GetInt32());
        Assert.Equal("String", tokens.GetProperty("element_type").GetString());
    }

    [Fact]
    public void TablesShowEachSectionPlainlyWhenNotATerminal()
    {
        var (code, output, error) = Run("inspect", ModelPath("mixtral"));

        Assert.Equal(0, code);
        Assert.Equal(string.Empty, error);
        foreach (string expected in new[] { "Hyperparameters", "Mixture of experts", "expert_used_count", "blk.N.ffn_gate_exps.weight", "0-2", "tokenizer.ggml.tokens", "508 × String" })
        {
            Assert.Contains(expected, output, StringComparison.Ordinal);
        }

        // No box drawing and no ANSI escapes when the output is not a terminal.
        Assert.DoesNotContain('\u2502', output);
        Assert.DoesNotContain('\u001b', output);
        Assert.DoesNotContain("blk.2.ffn_down_exps.weight", output, StringComparison.Ordinal);
    }

    [Fact]
    public void AllTensorsListsEveryTensor()
    {
        var (code, output, _) = Run("inspect", ModelPath("deepseek3"), "--all-tensors");

        Assert.Equal(0, code);
        Assert.Contains("blk.2.ffn_down_exps.weight", output, StringComparison.Ordinal);
        Assert.Contains("blk.0.ffn_gate.weight", output, StringComparison.Ordinal);
        Assert.Contains("2 (sigmoid)", output, StringComparison.Ordinal);
    }

    [Fact]
    public void AMissingFileIsOneErrorLine()
    {
        using var temp = new TempDirectory();
        string path = temp.File("absent.gguf");
        var (code, output, error) = Run("inspect", path, "--json");

        Assert.NotEqual(0, code);
        Assert.Equal(string.Empty, output);
        AssertOneErrorLine(error, path);
    }

    [Fact]
    public void ANonGgufFileIsOneErrorLine()
    {
        using var temp = new TempDirectory();
        string path = temp.File("notes.gguf");
        File.WriteAllText(path, "this is not a model, just some text that is long enough");
        var (code, _, error) = Run("inspect", path);

        Assert.Equal(1, code);
        AssertOneErrorLine(error, path);
        Assert.Contains("magic", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(10)]
    [InlineData(700)]
    [InlineData(20_000)]
    public void ATruncatedCopyIsOneErrorLine(int length)
    {
        using var temp = new TempDirectory();
        string path = temp.File("truncated.gguf");
        File.WriteAllBytes(path, File.ReadAllBytes(ModelPath("qwen2moe"))[..length]);
        var (code, output, error) = Run("inspect", path, "--json");

        Assert.Equal(1, code);
        Assert.Equal(string.Empty, output);
        AssertOneErrorLine(error, path);
    }

    [Fact]
    public void CorruptedCopiesEitherInspectOrFailWithOneLine()
    {
        byte[] original = File.ReadAllBytes(ModelPath("deepseek3"));
        using var temp = new TempDirectory();
        string path = temp.File("corrupt.gguf");
        var random = new Random(20261124);
        int failures = 0;
        for (int i = 0; i < 150; i++)
        {
            byte[] copy = (byte[])original.Clone();
            int offset = random.Next(0, 15356);
            copy[offset] ^= (byte)random.Next(1, 256);
            File.WriteAllBytes(path, copy);
            bool json = i % 2 == 0;
            var (code, output, error) = json ? Run("inspect", path, "--json") : Run("inspect", path);

            string what = $"byte {offset}: exit {code}, stderr '{error}'";
            Assert.True(code is 0 or 1, what);
            if (code == 0)
            {
                Assert.True(error.Length == 0, what);
                if (json)
                {
                    using var document = JsonDocument.Parse(output);
                    Assert.Equal(JsonValueKind.Object, document.RootElement.ValueKind);
                }
            }
            else
            {
                failures++;
                AssertOneErrorLine(error, path);
            }
        }

        Assert.InRange(failures, 1, 150);
    }

    [Fact]
    public void OddButValidMetadataStillGivesValidJsonAndTables()
    {
        using var temp = new TempDirectory();
        string path = temp.File("odd.gguf");
        using (var writer = GgufWriter.Create(path))
        {
            writer.SetMetadata("general.architecture", GgufValue.Create("mystery"));
            writer.SetMetadata("mystery.rope.freq_base", GgufValue.Create(float.NaN));
            writer.SetMetadata("mystery.attention.layer_norm_rms_epsilon", GgufValue.Create(double.PositiveInfinity));
            writer.SetMetadata("weird \"key\" [red]", GgufValue.Create("line\nbreak \u001b[31m [bold]markup[/]"));
            writer.SetMetadata("nested", GgufValue.CreateArray(GgufArray.Create(new[] { float.NegativeInfinity, 1f }), GgufArray.Create(Array.Empty<string>())));
            writer.SetMetadata("u64", GgufValue.Create(ulong.MaxValue));
            writer.AddTensor("blk.0.ffn_up_exps.weight", Core.GgmlType.F32, [2, 3, 4]);
            writer.WriteTensorData(new byte[96]);
            writer.Finish();
        }

        var (code, output, error) = Run("inspect", path, "--json");
        Assert.Equal(0, code);
        Assert.Equal(string.Empty, error);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        Assert.Equal("NaN", root.GetProperty("hyperparameters").GetProperty("rope").GetProperty("freq_base").GetString());
        Assert.Equal("Infinity", root.GetProperty("hyperparameters").GetProperty("layer_norm_rms_epsilon").GetString());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("moe").ValueKind);
        Assert.Equal(ulong.MaxValue, root.GetProperty("metadata").GetProperty("u64").GetUInt64());
        Assert.Equal("-Infinity", root.GetProperty("metadata").GetProperty("nested")[0][0].GetString());
        Assert.Equal(24, root.GetProperty("parameters").GetProperty("active").GetInt64());

        (code, output, error) = Run("inspect", path);
        Assert.Equal(0, code);
        Assert.Equal(string.Empty, error);
        Assert.Contains("[bold]markup[/]", output, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', output);
        Assert.Contains("none (dense model", output, StringComparison.Ordinal);
    }

    private static void AssertOneErrorLine(string error, string path)
    {
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line, got: {error}");
        Assert.StartsWith("error: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(path, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("internal error", lines[0], StringComparison.Ordinal);
    }

    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = CliApp.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static string ModelPath(string model) => GoldenData.GoldenPath("models", model, "model.gguf");
}
