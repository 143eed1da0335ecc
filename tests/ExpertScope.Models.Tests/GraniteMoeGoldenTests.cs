using ExpertScope.Core;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Synthetic;
using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

/// <summary>
/// <c>granitemoe</c> against llama.cpp: tests/golden/granitemoe (float32, Granite 3.0 MoE multipliers) and
/// tests/golden/granitemoe-q8_0 (the shared-expert variant with Q8_0 experts written by ExpertScope's quantizer).
/// </summary>
public sealed class GraniteMoeGoldenTests(ITestOutputHelper output)
{
    [Fact]
    public void Float32Case_EveryDumpedSite_MatchesLlamaCpp()
    {
        float largest = GoldenParity.Check(GoldenCase.LoadRepository("granitemoe"), Tolerances.Float32);
        output.WriteLine($"granitemoe: largest logit difference {largest:E3}");
    }

    [Fact]
    public void SharedExpertQ8Case_EveryDumpedSite_MatchesLlamaCpp()
    {
        float largest = GoldenParity.Check(GoldenCase.LoadRepository("granitemoe-q8_0"), Tolerances.Quantized);
        output.WriteLine($"granitemoe-q8_0: largest logit difference {largest:E3}");
    }

    [Theory]
    [InlineData("granitemoe")]
    [InlineData("granitemoe-q8_0")]
    public void TwoThreads_AreBitIdenticalToOne(string name) =>
        ArchitectureTestRuns.AssertThreadCountInvariant(GoldenCase.LoadRepository(name));

    [Theory]
    [InlineData("granitemoe", "tiny-granitemoe", GgmlType.F32)]
    [InlineData("granitemoe-q8_0", "tiny-granitemoe-shared", GgmlType.Q8_0)]
    public void CommittedModel_IsWhatItsPresetWrites(string name, string preset, GgmlType expertType) =>
        ArchitectureTestRuns.AssertWriterReproducesCaseModel(SyntheticPresets.Get(preset) with { ExpertTensorType = expertType }, name);

    [Fact]
    public void Multipliers_AreReadFromTheMetadata()
    {
        using var model = MoeModel.Load(GoldenCase.LoadRepository("granitemoe").ModelPath);
        Assert.Equal(12f, model.Definition.EmbeddingScale);
        Assert.Equal(6f, model.Definition.LogitScale);
        Assert.All(model.Blocks, b => Assert.Equal(0.22f, b.ResidualScale));
        Assert.All(model.Blocks, b => Assert.Equal(0.0625f, ((Attention)b.Attention).Options.Scale));
        Assert.All(model.Blocks, b => Assert.Null(b.Moe!.Shared));
    }

    [Fact]
    public void LogitScale_DividesTheLogitsAsLlamaCppDoes()
    {
        // Planted: the same file with logit_scale 1 gives the unscaled logits; the real run is them times the float 1/6.
        var golden = GoldenCase.LoadRepository("granitemoe");
        var tokens = golden.Prompts[0].Tokens;
        using var scaled = MoeModel.Load(golden.ModelPath);
        using var unscaled = MoeModel.Load(golden.ModelPath, new ModelLoadOptions { MetadataOverrides = new Dictionary<string, object> { ["granitemoe.logit_scale"] = 1.0 } });
        var expected = unscaled.Run(tokens).Values.Select(v => v * (1.0f / 6f)).ToArray();
        Assert.Equal(expected, scaled.Run(tokens).Values);
    }

    [Fact]
    public void ResidualScale_ScalesEachBranchBeforeItsResidualAdd()
    {
        // Plain reference: l_out = ffn_inp + s · ffn_out and ffn_inp = block input + s · attn_out.
        var golden = GoldenCase.LoadRepository("granitemoe");
        using var model = MoeModel.Load(golden.ModelPath);
        var recorder = new RecordingObserver();
        model.Run(golden.Prompts[0].Tokens, new RunOptions { Observers = [recorder] });
        var ffnInput = recorder.Activations["ffn_inp-1"];
        var ffnOutput = recorder.Activations["ffn_out-1"];
        var layerOutput = recorder.Activations["l_out-1"];
        var attentionOutput = recorder.Activations["attn_out-1"];
        var blockInput = recorder.Activations["l_out-0"];
        for (int i = 0; i < layerOutput.Length; i++)
        {
            Assert.Equal((ffnOutput[i] * 0.22f) + ffnInput[i], layerOutput[i]);
            Assert.Equal((attentionOutput[i] * 0.22f) + blockInput[i], ffnInput[i]);
        }
    }

    [Theory]
    [InlineData("granitemoe.logit_scale", 0.0, "logit_scale is 0")]
    [InlineData("granitemoe.rope.scaling.finetuned", false, "rope.scaling.finetuned = false")]
    public void UnsupportedSettings_AreOneClearError(string key, object value, string expected)
    {
        var path = GoldenCase.LoadRepository("granitemoe").ModelPath;
        var options = new ModelLoadOptions { MetadataOverrides = new Dictionary<string, object> { [key] = value } };
        var error = Assert.Throws<ExpertScopeException>(() => MoeModel.Load(path, options));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }
}
