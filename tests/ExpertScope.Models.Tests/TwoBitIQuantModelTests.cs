using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Kernels.Quant;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;

namespace ExpertScope.Models.Tests;

/// <summary>
/// Models whose experts are IQ2_XXS, IQ2_XS or IQ1_S (the 1.58–2-bit dynamic GGUFs) load and run. There is no
/// ggml quantizer for these types here, so the test writes seeded random blocks into a tiny OLMoE and compares
/// the run with the same model holding the dequantized values as F32: the only difference left is the Q8_K
/// rounding of the activations (ggml's vec_dot_type), so the logits must agree closely, while a model with
/// other random blocks (the control) must not.
/// </summary>
public sealed class TwoBitIQuantModelTests
{
    [Theory]
    [InlineData(GgmlType.IQ2_XXS, 0.001f)]
    [InlineData(GgmlType.IQ2_XS, 0.001f)]
    [InlineData(GgmlType.IQ1_S, 0.005f)]
    public void ModelWithLowBitExperts_RunsLikeItsDequantizedF32Twin(GgmlType type, float blockScale)
    {
        using var temp = new TempDirectory();
        var spec = SyntheticPresets.Get("tiny-olmoe") with { EmbeddingLength = 256, ExpertFeedForwardLength = 256, FeedForwardLength = 256 };
        SyntheticModelWriter.Write(spec, temp.File("f32.gguf"));
        WriteWithRandomExperts(temp.File("f32.gguf"), temp.File("quantized.gguf"), type, blockScale, seed: 11, storeDequantized: false);
        WriteWithRandomExperts(temp.File("f32.gguf"), temp.File("twin.gguf"), type, blockScale, seed: 11, storeDequantized: true);
        WriteWithRandomExperts(temp.File("f32.gguf"), temp.File("control.gguf"), type, blockScale, seed: 12, storeDequantized: true);

        int[] tokens = [1, 5, 9, 200, 17, 3, 42, 77];
        float[] Run(string name)
        {
            using var model = MoeModel.Load(temp.File(name));
            return model.Run(tokens, new RunOptions { ThreadCount = 1 }).Values;
        }

        var quantized = Run("quantized.gguf");
        var twin = Run("twin.gguf");
        var control = Run("control.gguf");
        Assert.All(quantized, v => Assert.True(float.IsFinite(v)));

        double twinError = RelativeRms(quantized, twin);
        double controlError = RelativeRms(control, twin);
        Assert.InRange(twinError, 0, 0.02);
        Assert.True(controlError > 10 * twinError, $"control differs by {controlError:G3}, the quantized model by {twinError:G3}");
    }

    private static double RelativeRms(float[] actual, float[] expected)
    {
        double error = 0;
        double norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            error += Math.Pow(actual[i] - expected[i], 2);
            norm += Math.Pow(expected[i], 2);
        }

        return Math.Sqrt(error / norm);
    }

    /// <summary>Copies <paramref name="source"/>, replacing every expert tensor by random blocks of <paramref name="type"/> (or their dequantized floats).</summary>
    private static void WriteWithRandomExperts(string source, string destination, GgmlType type, float blockScale, int seed, bool storeDequantized)
    {
        var info = GgmlTypes.Get(type);
        var random = new Random(seed);
        using var input = GgufFile.Open(source);
        using var writer = GgufWriter.Create(destination);
        foreach (var (key, value) in input.Metadata)
        {
            writer.SetMetadata(key, value);
        }

        static bool IsExpert(GgufTensorInfo tensor) => tensor.Name.EndsWith("_exps.weight", StringComparison.Ordinal);
        foreach (var tensor in input.Tensors)
        {
            writer.AddTensor(tensor.Name, IsExpert(tensor) && !storeDequantized ? type : tensor.Type, tensor.Dimensions);
        }

        foreach (var tensor in input.Tensors)
        {
            if (!IsExpert(tensor))
            {
                writer.WriteTensorData(input.GetTensorData(tensor));
                continue;
            }

            long elements = tensor.ElementCount;
            var blocks = new byte[elements / info.BlockSize * info.TypeSize];
            random.NextBytes(blocks);
            for (int offset = 0; offset < blocks.Length; offset += info.TypeSize)
            {
                // Every block's float16 scale d comes first; random bytes elsewhere pick grid entries, signs and sub-scales.
                BitConverter.TryWriteBytes(blocks.AsSpan(offset), BitConverter.HalfToUInt16Bits((Half)(blockScale * (0.5 + random.NextDouble()))));
            }

            if (!storeDequantized)
            {
                writer.WriteTensorData(blocks);
                continue;
            }

            var floats = new float[elements];
            Dequantize.Row(type, blocks, floats);
            writer.WriteTensorData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(floats.AsSpan()));
        }

        writer.Finish();
    }
}
