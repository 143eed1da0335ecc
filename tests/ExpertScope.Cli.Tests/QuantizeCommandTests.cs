using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary><c>quantize</c>, <c>make-model --like</c> and <c>analyze … --baseline</c> as a user runs them.</summary>
public class QuantizeCommandTests
{
    [Fact]
    public void Quantize_WritesALoadableModel_AndNamesItsTypes()
    {
        using var temp = new TempDirectory();
        string target = temp.File("olmoe-q8_0.gguf");

        var (code, output, error) = EngineVerbs.Run("quantize", EngineVerbs.ModelPath("olmoe"), target, "--type", "q8_0");

        Assert.True(code == 0, error);
        Assert.Contains("wrote " + target + ": q8_0", output, StringComparison.Ordinal);
        using var file = GgufFile.Open(target);
        Assert.Equal(GgmlType.Q8_0, file.GetTensor("blk.0.ffn_up_exps.weight").Type);
        Assert.Equal(GgmlType.F32, file.GetTensor("blk.0.ffn_gate_inp.weight").Type);
        var (again, _, againError) = EngineVerbs.Run("quantize", EngineVerbs.ModelPath("olmoe"), target, "--type", "q4_K_M");
        Assert.True(again == 0, againError);
    }

    [Fact]
    public void Quantize_RefusesUnknownTypesAndForeignOutputs_InOneLine()
    {
        using var temp = new TempDirectory();
        string foreign = temp.File("keep.gguf");
        File.WriteAllText(foreign, "mine");

        var (unknown, _, unknownError) = EngineVerbs.Run("quantize", EngineVerbs.ModelPath("olmoe"), temp.File("x.gguf"), "--type", "q3_X");
        var (refused, _, refusedError) = EngineVerbs.Run("quantize", EngineVerbs.ModelPath("olmoe"), foreign, "--type", "q8_0");

        Assert.Equal(1, unknown);
        EngineVerbs.AssertOneErrorLine(unknownError, "unknown quantization type 'q3_X'", "q4_K_M");
        Assert.Equal(1, refused);
        EngineVerbs.AssertOneErrorLine(refusedError, foreign, "--overwrite");
        Assert.Equal("mine", File.ReadAllText(foreign));
    }

    [Fact]
    public void AnalyzeWithABaseline_PutsTheTwinsNumbersInTheReport()
    {
        using var temp = new TempDirectory();
        string model = EngineVerbs.ModelPath("olmoe");
        string twin = temp.File("twin.gguf");
        string input = temp.File("texts.txt");
        File.WriteAllLines(input, Enumerable.Range(0, 12).Select(i => $"the bank of the river {i} and the bank of the town"));

        var (made, madeOutput, madeError) = EngineVerbs.Run("make-model", "--like", model, "--out", twin);
        Assert.True(made == 0, madeError);
        Assert.Contains("random-weight twin", madeOutput, StringComparison.Ordinal);
        var (first, _, firstError) = EngineVerbs.Run("analyze", "token-id", "--model", twin, "--input", input, "--min-occurrences", "5", "--out", temp.File("twin-run"));
        Assert.True(first == 0, firstError);
        var (code, output, error) = EngineVerbs.Run("analyze", "token-id", "--model", model, "--input", input, "--min-occurrences", "5", "--out", temp.File("run"), "--baseline", temp.File("twin-run"));

        Assert.True(code == 0, error);
        Assert.Contains("against the baseline: Layer mean of mi_miller_madow_bits", output, StringComparison.Ordinal);
        Assert.Contains("id=\"baseline\"", File.ReadAllText(Path.Combine(temp.File("run"), "report.html")), StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(temp.File("run"), "baseline.csv")));

        // A baseline of another analysis is refused before any work.
        var (wrong, _, wrongError) = EngineVerbs.Run("analyze", "lens", "--model", model, "--input", input, "--out", temp.File("lens"), "--baseline", temp.File("twin-run"));
        Assert.Equal(1, wrong);
        EngineVerbs.AssertOneErrorLine(wrongError, "'token-id' run, not 'lens'");
        Assert.False(Directory.Exists(temp.File("lens")));
    }
}
