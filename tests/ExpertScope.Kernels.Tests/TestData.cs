using System.Runtime.InteropServices;
using ExpertScope.Core;

namespace ExpertScope.Kernels.Tests;

internal static class TestData
{
    /// <summary>Random blocks: random bytes (so NaN and infinite scales occur too), except F32, which gets random floats.</summary>
    public static byte[] RandomBlocks(GgmlType type, int blockCount, Random random)
    {
        var info = GgmlTypes.Get(type);
        var bytes = new byte[blockCount * info.TypeSize];
        random.NextBytes(bytes);
        if (type is GgmlType.F32)
        {
            var floats = MemoryMarshal.Cast<byte, float>(bytes.AsSpan());
            for (int i = 0; i < floats.Length; i++)
            {
                floats[i] = (float)(random.NextDouble() * 4 - 2);
            }
        }

        return bytes;
    }

    public static float[] RandomFloats(int count, Random random, float scale = 1f)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            // Mostly Gaussian-like with a few outliers, as weights and activations look.
            double u = random.NextDouble() + random.NextDouble() + random.NextDouble() - 1.5;
            values[i] = (float)(u * scale * (random.Next(50) == 0 ? 8 : 1));
        }

        return values;
    }

    public static bool SameBitsOrBothNaN(float a, float b) =>
        BitConverter.SingleToUInt32Bits(a) == BitConverter.SingleToUInt32Bits(b) || (float.IsNaN(a) && float.IsNaN(b));
}
