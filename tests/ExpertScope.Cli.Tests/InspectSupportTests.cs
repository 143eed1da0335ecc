using System.Text.Json;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Kernels;
using ExpertScope.Models;
using ExpertScope.Models.Architectures;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary><c>inspect</c> lists the tensor types and the architectures the engine runs, and names the nearest one for an unsupported file.</summary>
public class InspectSupportTests
{
    [Fact]
    public void SupportedFile_ListsItsTensorTypesWithKernelsAndTheRunnableArchitectures()
    {
        var (code, output, error) = EngineVerbs.Run("inspect", EngineVerbs.ModelPath("olmoe-q4_k"), "--json");

        Assert.True(code == 0, error);
        var root = JsonDocument.Parse(output).RootElement;
        var types = root.GetProperty("tensor_types").EnumerateArray().ToList();
        Assert.Equal(["f32", "q4_K"], types.Select(t => t.GetProperty("type").GetString()));
        Assert.All(types, t => Assert.True(t.GetProperty("kernels").GetBoolean()));
        Assert.Equal(root.GetProperty("tensors").GetArrayLength(), types.Sum(t => t.GetProperty("tensors").GetInt32()));
        var support = root.GetProperty("support");
        Assert.True(support.GetProperty("architecture_supported").GetBoolean());
        Assert.Equal(ArchitectureRegistry.All.Select(a => a.Name), support.GetProperty("supported_architectures").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public void UnsupportedArchitecture_NamesTheNearestSupportedOne_InInspectAndWhenLoading()
    {
        using var temp = new TempDirectory();
        string path = temp.File("dbrx.gguf");
        var noKernels = GgmlTypes.All.First(t => !TypeKernels.TryGet(t.Type, out _) && t.BlockSize == 1);
        Rewrite(EngineVerbs.ModelPath("olmoe"), path, "dbrx", noKernels.Type);

        var (code, output, error) = EngineVerbs.Run("inspect", path, "--json");
        Assert.True(code == 0, error);
        var support = JsonDocument.Parse(output).RootElement.GetProperty("support");
        Assert.False(support.GetProperty("architecture_supported").GetBoolean());
        Assert.Equal("llama", support.GetProperty("nearest_supported").GetString());
        Assert.Equal([noKernels.Name], support.GetProperty("types_without_kernels").EnumerateArray().Select(e => e.GetString()));

        (code, output, error) = EngineVerbs.Run("inspect", path);
        Assert.True(code == 0, error);
        Assert.Contains("dbrx: not supported; nearest supported: llama", output, StringComparison.Ordinal);

        var failure = Assert.Throws<ExpertScopeException>(() => MoeModel.Load(path));
        Assert.Contains("nearest supported one is llama", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownArchitecture_IsMatchedByItsTensors()
    {
        Assert.Equal("deepseek2", ArchitectureRegistry.Nearest("newmoe", ["blk.1.exp_probs_b.bias", "blk.1.ffn_gate_inp.weight"]).Nearest);
        Assert.Equal("qwen2moe", ArchitectureRegistry.Nearest("newmoe", ["blk.1.ffn_gate_inp_shexp.weight"]).Nearest);
        Assert.Equal("llama", ArchitectureRegistry.Nearest("newmoe", ["blk.1.ffn_gate_inp.weight"]).Nearest);
        Assert.Equal("deepseek2", ArchitectureRegistry.Nearest("dots1", []).Nearest);
    }

    /// <summary>Copies a GGUF under another architecture name (its keys renamed) with one extra tensor of <paramref name="extraType"/>.</summary>
    private static void Rewrite(string source, string destination, string architecture, GgmlType extraType)
    {
        using var input = GgufFile.Open(source);
        string old = input.Architecture + ".";
        using var writer = GgufWriter.Create(destination);
        foreach (var (key, value) in input.Metadata)
        {
            writer.SetMetadata(
                key == "general.architecture" ? key : key.StartsWith(old, StringComparison.Ordinal) ? architecture + "." + key[old.Length..] : key,
                key == "general.architecture" ? GgufValue.Create(architecture) : value);
        }

        foreach (var tensor in input.Tensors)
        {
            writer.AddTensor(tensor.Name, tensor.Type, tensor.Dimensions);
        }

        long extraBytes = writer.AddTensor("extra.weight", extraType, [4]);
        foreach (var tensor in input.Tensors)
        {
            writer.WriteTensorData(input.GetTensorData(tensor));
        }

        writer.WriteTensorData(new byte[extraBytes]);
        writer.Finish();
    }
}
