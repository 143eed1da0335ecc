using ExpertScope.Experiments.Metrics;

namespace ExpertScope.Experiments.Tests;

public class RouterDistanceTests
{
    [Fact]
    public void IdenticalDistributionsAreAtDistanceZero()
    {
        float[] p = [0.1f, 0.2f, 0.3f, 0.4f];
        Assert.Equal(0.0, RouterDistance.JensenShannon(p, p), 12);
    }

    [Fact]
    public void DisjointSupportsAreAtDistanceOne()
    {
        // m = (0.5, 0.5): JSD = ½·1·log2(1/0.5) + ½·1·log2(1/0.5) = 1, distance sqrt(1) = 1.
        Assert.Equal(1.0, RouterDistance.JensenShannon([1f, 0f], [0f, 1f]), 12);
    }

    [Fact]
    public void HalfOverlappingDistributionMatchesHandArithmetic()
    {
        // p = (1, 0), q = (½, ½): m = (¾, ¼).
        // KL(p‖m) = 1·log2(1/¾) = log2(4/3) = 0.415037…
        // KL(q‖m) = ½·log2(½/¾) + ½·log2(½/¼) = ½·log2(2/3) + ½·1 = −0.292481… + 0.5 = 0.207519…
        // JSD = ½(0.415037 + 0.207519) = 0.311278…; distance = sqrt = 0.557923…
        var expected = Math.Sqrt(0.5 * (Math.Log2(4.0 / 3.0) + 0.5 * Math.Log2(2.0 / 3.0) + 0.5));
        Assert.Equal(expected, RouterDistance.JensenShannon([1f, 0f], [0.5f, 0.5f]), 6);
        Assert.Equal(0.557923, RouterDistance.JensenShannon([1f, 0f], [0.5f, 0.5f]), 5);
    }

    [Fact]
    public void InputsAreNormalisedFirst()
    {
        // (2, 0) is (1, 0) and (3, 3) is (½, ½).
        Assert.Equal(RouterDistance.JensenShannon([1f, 0f], [0.5f, 0.5f]), RouterDistance.JensenShannon([2f, 0f], [3f, 3f]), 12);
    }

    [Fact]
    public void InvalidDistributionsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => RouterDistance.JensenShannon([1f], [0.5f, 0.5f]));
        Assert.Throws<ArgumentException>(() => RouterDistance.JensenShannon([-1f, 2f], [0.5f, 0.5f]));
        Assert.Throws<ArgumentException>(() => RouterDistance.JensenShannon([0f, 0f], [0.5f, 0.5f]));
        Assert.Throws<ArgumentException>(() => RouterDistance.JensenShannon([float.NaN, 1f], [0.5f, 0.5f]));
    }
}
