using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Kernels.Quant;
using ExpertScope.Models.Blocks;
using ExpertScope.Testing;

namespace ExpertScope.Models.Tests;

/// <summary>
/// One file holding tensors of several types (as a Q4_K_M or a dynamic i-quant mix does): each tensor's products go
/// through its own type's kernel (one token and a batch) and every output equals the scalar port of ggml's vec_dot.
/// </summary>
public sealed class MixedTypeKernelSelectionTests
{
    private static readonly GgmlType[] Types = [GgmlType.IQ2_XXS, GgmlType.IQ2_XS, GgmlType.IQ1_S, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.Q8_0];

    [Fact]
    public void EveryTensorOfAMixedFile_GivesTheReferenceBits()
    {
        const int Rows = 9, Columns = 512;
        var random = new Random(1717);
        var data = new Dictionary<GgmlType, byte[]>();
        using var temp = new TempDirectory();
        string path = temp.File("mixed.gguf");
        using (var writer = GgufWriter.Create(path))
        {
            foreach (var type in Types)
            {
                var info = GgmlTypes.Get(type);
                int blocks = Rows * Columns / info.BlockSize;
                var bytes = new byte[blocks * info.TypeSize];
                random.NextBytes(bytes);
                for (int block = 0; block < blocks; block++)
                {
                    // Finite float16 scales: the first field of the block, the last for Q6_K; Q4_K/Q5_K's second is the min scale.
                    int scaleOffset = type == GgmlType.Q6_K ? info.TypeSize - 2 : 0;
                    BitConverter.TryWriteBytes(bytes.AsSpan(block * info.TypeSize + scaleOffset), BitConverter.HalfToUInt16Bits((Half)(random.NextDouble() * 0.02)));
                    if (type is GgmlType.Q4_K or GgmlType.Q5_K)
                    {
                        BitConverter.TryWriteBytes(bytes.AsSpan(block * info.TypeSize + 2), BitConverter.HalfToUInt16Bits((Half)(random.NextDouble() * 0.02)));
                    }
                }

                data[type] = bytes;
                writer.AddTensor($"w.{info.Name}", type, [Columns, Rows]);
            }

            foreach (var type in Types)
            {
                writer.WriteTensorData(data[type]);
            }

            writer.Finish();
        }

        using var file = GgufFile.Open(path);
        foreach (int tokens in new[] { 1, 5 })
        {
            var input = Enumerable.Range(0, tokens * Columns).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            for (int i = 0; i < Types.Length; i++)
            {
                var type = Types[i];
                var weight = new LinearWeight(file, file.Tensors[i], Columns, Rows, 0);
                Assert.True(weight.TakesPackedActivations);
                var output = new float[tokens * Rows];
                weight.Multiply(input, tokens, output, new Parallelism(2));
                int rowBytes = data[type].Length / Rows;
                var activations = new byte[VecDot.ActivationBytes(type, Columns)];
                for (int t = 0; t < tokens; t++)
                {
                    VecDot.QuantizeActivations(type, input.AsSpan(t * Columns, Columns), activations);
                    for (int r = 0; r < Rows; r++)
                    {
                        float expected = VecDot.QuantizedReference(type, data[type].AsSpan(r * rowBytes, rowBytes), activations);
                        Assert.True(float.IsFinite(expected));
                        Assert.True(
                            BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(output[t * Rows + r]),
                            $"{type}, {tokens} tokens: row {r} token {t} is {output[t * Rows + r]:R}, the reference {expected:R}");
                    }
                }
            }
        }
    }
}
