using System.Text.Json;
using ExpertScope.Cli;
using ExpertScope.Models;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary>The bench verb's per-phase times (attention, router, experts, other): present, consistent, and free of side effects.</summary>
public sealed class BenchPhaseTests
{
    [Fact]
    public void JsonAndTextReportPhases_NonNegative_SummingToAtMostTheTotal()
    {
        using var temp = new TempDirectory();
        string model = temp.File("tiny.gguf");
        Assert.Equal(0, Run("make-model", "--preset", "tiny-deepseek2", "--out", model, "--type", "q8_0").Code);
        var (code, output, error) = Run("bench", "--model", model, "--prompt-tokens", "12", "--gen-tokens", "3", "--threads", "2",
            "--capture", "none", "--repeats", "1", "--json");
        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(output);
        foreach (string name in new[] { "prefill_phase_seconds", "generation_phase_seconds" })
        {
            var phases = json.RootElement.GetProperty(name);
            double[] parts = [.. new[] { "attention", "router", "experts", "other" }.Select(p => phases.GetProperty(p).GetDouble())];
            double total = phases.GetProperty("total").GetDouble();
            Assert.All(parts, p => Assert.True(p >= 0, $"{name}: a negative phase."));
            Assert.True(parts[0] > 0 && parts[1] > 0 && parts[2] > 0, $"{name}: attention, router and experts all ran.");
            Assert.True(parts.Take(3).Sum() <= total, $"{name}: the phases exceed the total.");
            Assert.Equal(total, parts.Sum(), 9);
        }

        var (textCode, text, _) = Run("bench", "--model", model, "--prompt-tokens", "8", "--gen-tokens", "1", "--capture", "none", "--repeats", "1");
        Assert.Equal(0, textCode);
        Assert.Contains("prefill phases (one extra run): attention ", text, StringComparison.Ordinal);
        Assert.Contains("generation phases (one extra run): attention ", text, StringComparison.Ordinal);
    }

    [Fact]
    public void PhaseTimer_LeavesTheLogitsBitIdentical()
    {
        using var temp = new TempDirectory();
        string path = temp.File("tiny.gguf");
        Assert.Equal(0, Run("make-model", "--preset", "tiny-olmoe", "--out", path).Code);
        using var model = MoeModel.Load(path);
        int[] tokens = [1, 5, 9, 200, 17, 3];
        var plain = model.Run(tokens, new RunOptions());
        var timer = new BenchPhaseTimer();
        var timed = model.Run(tokens, new RunOptions { Observers = [timer] });
        Assert.True(plain.Values.AsSpan().SequenceEqual(timed.Values));
        Assert.True(timer.AttentionTicks > 0 && timer.RouterTicks > 0 && timer.ExpertTicks > 0);
    }

    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
