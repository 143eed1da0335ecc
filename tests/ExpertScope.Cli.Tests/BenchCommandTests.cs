using System.Text.Json;
using ExpertScope.Cli;

namespace ExpertScope.Cli.Tests;

/// <summary>The bench verb's output shape (never its speed).</summary>
public sealed class BenchCommandTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("expertscope-bench-test").FullName;

    [Theory]
    [InlineData("router")]
    [InlineData("full")]
    [InlineData("none")]
    public void JsonReportsSpeedsMemoryAndCaptureOverhead(string capture)
    {
        string model = Path.Combine(_directory, "tiny.gguf");
        Assert.Equal(0, Run("make-model", "--preset", "tiny-olmoe", "--out", model, "--type", "q8_0").Code);
        var (code, output, _) = Run("bench", "--model", model, "--prompt-tokens", "12", "--gen-tokens", "3", "--threads", "2",
            "--capture", capture, "--repeats", "2", "--json");

        Assert.Equal(0, code);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        Assert.True(root.GetProperty("prefill_tokens_per_s").GetDouble() > 0);
        Assert.True(root.GetProperty("generation_tokens_per_s").GetDouble() > 0);
        if (OperatingSystem.IsLinux())
        {
            Assert.True(root.GetProperty("peak_rss_bytes").GetInt64() > 0);
        }

        var overhead = root.GetProperty("capture_overhead");
        Assert.Equal(capture == "none" ? JsonValueKind.Null : JsonValueKind.Number, overhead.ValueKind);
        Assert.Equal(2, root.GetProperty("prefill_seconds_capture_off").GetArrayLength());
        Assert.Equal(capture == "none" ? 0 : 2, root.GetProperty("prefill_seconds_capture_on").GetArrayLength());
    }

    [Fact]
    public void ArithmeticIsReportedAndUnknownNamesAreRefused()
    {
        string model = Path.Combine(_directory, "tiny3.gguf");
        Assert.Equal(0, Run("make-model", "--preset", "tiny-olmoe", "--out", model).Code);
        foreach (string arithmetic in new[] { "reference", "fused" })
        {
            var (code, output, _) = Run("bench", "--model", model, "--prompt-tokens", "8", "--gen-tokens", "1", "--repeats", "1",
                "--capture", "none", "--arithmetic", arithmetic, "--json");
            Assert.Equal(0, code);
            using var json = JsonDocument.Parse(output);
            Assert.Equal(arithmetic, json.RootElement.GetProperty("arithmetic").GetString());
        }

        var (refused, _, error) = Run("bench", "--model", model, "--arithmetic", "fast");
        Assert.NotEqual(0, refused);
        Assert.Contains("fast", error, StringComparison.Ordinal);
    }

    [Fact]
    public void TraceAcceptsFusedArithmetic()
    {
        string model = Path.Combine(_directory, "tiny4.gguf");
        string prompts = Path.Combine(_directory, "prompts.txt");
        File.WriteAllText(prompts, "the bank by the river\n");
        Assert.Equal(0, Run("make-model", "--preset", "tiny-olmoe", "--out", model).Code);
        var (code, _, error) = Run("trace", "--model", model, "--input", prompts, "--out", Path.Combine(_directory, "trace.parquet"), "--arithmetic", "fused");
        Assert.True(code == 0, error);
    }

    [Fact]
    public void PromptLongerThanTheContextIsAnError()
    {
        string model = Path.Combine(_directory, "tiny2.gguf");
        Assert.Equal(0, Run("make-model", "--preset", "tiny-olmoe", "--out", model).Code);
        var (code, _, error) = Run("bench", "--model", model, "--prompt-tokens", "100000", "--repeats", "1");
        Assert.Equal(1, code);
        Assert.Contains("context length", error, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
