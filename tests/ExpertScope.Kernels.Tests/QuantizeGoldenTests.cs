using ExpertScope.Kernels.Quant;

namespace ExpertScope.Kernels.Tests;

public class QuantizeGoldenTests
{
    /// <summary>Types whose golden tensor was written by ggml's reference quantizer (no importance matrix).</summary>
    public static TheoryData<string> BitExactTypes() => new()
    {
        "f16", "bf16", "q8_0", "q4_0", "q4_K", "q6_K", "q4_1", "q5_0", "q5_1", "q1_0", "q2_0", "mxfp4", "nvfp4", "q2_K", "q3_K", "q5_K", "tq1_0", "tq2_0", "iq4_nl", "iq4_xs",
    };

    [Theory]
    [MemberData(nameof(BitExactTypes))]
    public void QuantizingTheSourceGivesGgmlsBytes(string typeName)
    {
        var entry = GoldenQuants.Get(typeName);
        var actual = new byte[entry.Data.Length];
        Quantize.Row(entry.Type, entry.Source, actual);

        for (int i = 0; i < actual.Length; i++)
        {
            if (actual[i] != entry.Data[i])
            {
                int block = i / entry.TypeSize;
                Assert.Fail($"{typeName}: byte {i} (block {block}, offset {i % entry.TypeSize}) is 0x{actual[i]:X2}, ggml wrote 0x{entry.Data[i]:X2}.");
            }
        }
    }
}
