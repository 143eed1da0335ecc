using ExpertScope.Formats.Gguf;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary><c>make-model --type q4_K_M</c> as a user runs it: the quantize verb's file for the same F32 preset, then generate runs on it.</summary>
public class MakeModelMixTests
{
    [Fact]
    public void MakeModel_Q4KM_HasTheTypesQuantizeGives_AndGenerates()
    {
        using var temp = new TempDirectory();
        string mixed = temp.File("tiny-q4_K_M.gguf");
        string floats = temp.File("tiny-f32.gguf");
        string quantized = temp.File("tiny-quantized.gguf");

        var (code, output, error) = EngineVerbs.Run("make-model", "--preset", "tiny-olmoe", "--out", mixed, "--type", "q4_K_M");
        Assert.True(code == 0, error);
        Assert.Contains("as q4_K_M (", output, StringComparison.Ordinal);
        Assert.True(EngineVerbs.Run("make-model", "--preset", "tiny-olmoe", "--out", floats).Code == 0);
        Assert.True(EngineVerbs.Run("quantize", floats, quantized, "--type", "q4_K_M").Code == 0);
        using (var made = GgufFile.Open(mixed))
        using (var reference = GgufFile.Open(quantized))
        {
            Assert.Equal(reference.Tensors.Select(t => (t.Name, t.Type)), made.Tensors.Select(t => (t.Name, t.Type)));
        }

        var (generated, _, generateError) = EngineVerbs.Run("generate", "--model", mixed, "--prompt", "The bank by the river", "--max-tokens", "3");
        Assert.True(generated == 0, generateError);
        Assert.DoesNotContain(Directory.GetFiles(temp.Path), f => f.EndsWith(".partial", StringComparison.Ordinal));
    }

    [Fact]
    public void MakeModel_Mix_KeepsAFileItDidNotWrite_AndCtrlCLeavesNoTarget()
    {
        using var temp = new TempDirectory();
        string path = temp.File("model.gguf");
        File.WriteAllText(path, "not a model of ours");
        var (code, _, error) = EngineVerbs.Run("make-model", "--preset", "tiny-olmoe", "--out", path, "--type", "q6_K");
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "model.gguf", "--overwrite");
        Assert.Equal("not a model of ours", File.ReadAllText(path));

        // Ctrl+C as the first signal does it: exit 130, the older file untouched, no temporary left.
        StopSignal.TestHook.Value = stop => stop.Request();
        (code, _, error) = EngineVerbs.Run("make-model", "--preset", "tiny-olmoe", "--out", path, "--type", "q6_K", "--overwrite");
        StopSignal.TestHook.Value = null;
        Assert.Equal(130, code);
        Assert.Contains("was not written", error, StringComparison.Ordinal);
        Assert.Equal("not a model of ours", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(temp.Path));

        (code, var output, error) = EngineVerbs.Run("make-model", "--preset", "tiny-olmoe", "--out", path, "--type", "q6_K", "--overwrite");
        Assert.True(code == 0, error);
        Assert.Contains("as q6_K (", output, StringComparison.Ordinal);
        Assert.Single(Directory.GetFiles(temp.Path));
    }
}
