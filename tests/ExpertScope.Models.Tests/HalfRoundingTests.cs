using System.Runtime.Intrinsics;
using ExpertScope.Models.Blocks;

namespace ExpertScope.Models.Tests;

/// <summary>The eight-lane float16 rounding equals <c>(float)(Half)x</c> bit for bit, ties and edges included.</summary>
public sealed class HalfRoundingTests
{
    [Fact]
    public void EqualsTheScalarConversion_OnRandomBitPatterns()
    {
        var random = new Random(5);
        var values = new float[1 << 20];
        var bytes = new byte[values.Length * 4];
        random.NextBytes(bytes);
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        AssertSameAsScalar(values);
    }

    [Fact]
    public void EqualsTheScalarConversion_OnEveryFloatNearFloat16Values()
    {
        // Every float16 value, the floats just around it and the midpoints to its neighbours (the ties).
        var values = new List<float>();
        for (int bits = 0; bits < 0x10000; bits++)
        {
            float h = (float)BitConverter.UInt16BitsToHalf((ushort)bits);
            float next = (float)BitConverter.UInt16BitsToHalf((ushort)(bits + 1 & 0xFFFF));
            if (!float.IsFinite(h))
            {
                continue;
            }

            uint raw = BitConverter.SingleToUInt32Bits(h);
            values.Add(h);
            values.Add(BitConverter.UInt32BitsToSingle(raw + 1));
            values.Add(BitConverter.UInt32BitsToSingle(raw - 1));
            if (float.IsFinite(next) && Math.Sign(next) == Math.Sign(h))
            {
                float middle = (float)(((double)h + next) / 2);
                uint middleBits = BitConverter.SingleToUInt32Bits(middle);
                values.Add(middle);
                values.Add(BitConverter.UInt32BitsToSingle(middleBits + 1));
                values.Add(BitConverter.UInt32BitsToSingle(middleBits - 1));
            }
        }

        values.AddRange([65504f, 65519.99f, 65520f, 65536f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, -0.0f,
            float.Epsilon, -float.Epsilon, 1e-30f, -1e-30f, 2.9802322e-08f, 5.9604645e-08f, 8.940697e-08f]);
        AssertSameAsScalar([.. values]);
    }

    private static void AssertSameAsScalar(float[] values)
    {
        var fast = (float[])values.Clone();
        var reference = (float[])values.Clone();
        HalfRounding.Round(fast);
        HalfRounding.RoundScalar(reference);
        for (int i = 0; i < values.Length; i++)
        {
            if (BitConverter.SingleToUInt32Bits(fast[i]) != BitConverter.SingleToUInt32Bits(reference[i]))
            {
                Assert.Fail($"{values[i]:R} (0x{BitConverter.SingleToUInt32Bits(values[i]):X8}): {fast[i]:R} vs {(float)(Half)values[i]:R}");
            }
        }

        Assert.True(Vector256.IsHardwareAccelerated || fast.Length > 0);
    }
}
