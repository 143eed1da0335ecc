namespace ExpertScope.Statistics.Tests;

/// <summary>
/// The Cochran–Mantel–Haenszel test against R 4's <c>mantelhaen.test</c> (values computed once with Rscript and
/// printed with <c>%.17g</c>; the script is in each test's comment).
/// </summary>
public sealed class MantelHaenszelTests
{
    // R: x <- UCBAdmissions (Admit × Gender × Dept); stratum k = x[, , k] as [[a, b], [c, d]] = [[x11, x12], [x21, x22]].
    private static readonly Stratum2x2[] Berkeley =
    [
        new(512, 89, 313, 19), new(353, 17, 207, 8), new(120, 202, 205, 391),
        new(138, 131, 279, 244), new(53, 94, 138, 299), new(22, 24, 351, 317),
    ];

    [Fact]
    public void Berkeley_MatchesR()
    {
        // mantelhaen.test(UCBAdmissions): X² 1.4269462285866883, p 0.23226346281704827, OR 0.90469682825862308
        var result = MantelHaenszel.Test(Berkeley);
        Assert.Equal(1.4269462285866883, result.Statistic, 1e-12);
        Assert.Equal(0.23226346281704827, result.PValue, 1e-12);
        Assert.Equal(0.90469682825862308, result.CommonOddsRatio, 1e-12);
        Assert.Equal(6, result.InformativeStrata);
    }

    [Fact]
    public void Berkeley_WithoutCorrectionAndOneSided_MatchesR()
    {
        // mantelhaen.test(UCBAdmissions, correct = FALSE): X² 1.5246066604434356, p 0.21692369705551837
        var plain = MantelHaenszel.Test(Berkeley, correct: false);
        Assert.Equal(1.5246066604434356, plain.Statistic, 1e-12);
        Assert.Equal(0.21692369705551837, plain.PValue, 1e-12);

        // alternative = "greater": p 0.88386826859147594; "less": p 0.11613173140852406
        Assert.Equal(0.88386826859147594, MantelHaenszel.Test(Berkeley, alternative: Alternative.Greater).PValue, 1e-12);
        Assert.Equal(0.11613173140852406, MantelHaenszel.Test(Berkeley, alternative: Alternative.Less).PValue, 1e-12);
    }

    [Fact]
    public void UninformativeStrata_AddNothing_AsInR()
    {
        // y <- array(c(5,2,1,7, 3,4,2,6, 4,0,3,0, 2,2,2,2), dim = c(2,2,4)); mantelhaen.test(y):
        // X² 2.3142051416579221, p 0.12819681729347851, OR 3.4571428571428569. Stratum 3 has no second row (variance 0);
        // a one-token stratum (R refuses those) and an empty one must not change anything either.
        Stratum2x2[] strata = [new(5, 1, 2, 7), new(3, 2, 4, 6), new(4, 3, 0, 0), new(2, 2, 2, 2), new(1, 0, 0, 0), new(0, 0, 0, 0)];
        var result = MantelHaenszel.Test(strata);
        Assert.Equal(2.3142051416579221, result.Statistic, 1e-12);
        Assert.Equal(0.12819681729347851, result.PValue, 1e-12);
        Assert.Equal(3.4571428571428569, result.CommonOddsRatio, 1e-12);
        Assert.Equal(3, result.InformativeStrata);
    }

    [Fact]
    public void SmallDifference_GetsNoContinuityCorrection_AsInR()
    {
        // z <- array(c(2,3,3,2, 3,2,2,3, 1,1,1,2), dim = c(2,2,3)); Δ = 0.2 < ½, so R applies no correction:
        // X² 0.022871664548919941, p 0.87979128241613991, OR 1.1333333333333335
        var result = MantelHaenszel.Test([new(2, 3, 3, 2), new(3, 2, 2, 3), new(1, 1, 1, 2)]);
        Assert.Equal(0.2, result.Difference, 1e-12);
        Assert.Equal(0.022871664548919941, result.Statistic, 1e-12);
        Assert.Equal(0.87979128241613991, result.PValue, 1e-12);
        Assert.Equal(1.1333333333333335, result.CommonOddsRatio, 1e-12);
    }

    [Fact]
    public void NoInformativeStratum_IsNoEvidence()
    {
        var result = MantelHaenszel.Test([new(3, 0, 4, 0), new(0, 2, 0, 5)]);
        Assert.Equal(0, result.InformativeStrata);
        Assert.Equal(1, result.PValue);
        Assert.Throws<ArgumentException>(() => MantelHaenszel.Test([new(-1, 0, 4, 0)]));
    }
}
