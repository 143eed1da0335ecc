using MathNet.Numerics;

namespace ExpertScope.Statistics;

/// <summary>
/// Fisher's noncentral hypergeometric distribution of the top-left cell of a 2×2 table with fixed margins,
/// the model behind Fisher's exact test. MathNet only has the central hypergeometric distribution, and the
/// odds-ratio estimate needs the noncentral one, so it is written here (following R's fisher.test).
/// </summary>
internal sealed class NoncentralHypergeometric
{
    private readonly double[] _logCentral;

    /// <summary>Creates the distribution for column totals m, n and first-row total k.</summary>
    public NoncentralHypergeometric(int column1, int column2, int row1)
    {
        Low = Math.Max(0, row1 - column2);
        High = Math.Min(row1, column1);
        _logCentral = new double[High - Low + 1];
        var logTotal = SpecialFunctions.BinomialLn(column1 + column2, row1);
        for (var i = 0; i < _logCentral.Length; i++)
        {
            var x = Low + i;
            _logCentral[i] = SpecialFunctions.BinomialLn(column1, x) + SpecialFunctions.BinomialLn(column2, row1 - x) - logTotal;
        }
    }

    /// <summary>Smallest possible top-left count.</summary>
    public int Low { get; }

    /// <summary>Largest possible top-left count.</summary>
    public int High { get; }

    /// <summary>Probabilities of Low..High under odds ratio <paramref name="oddsRatio"/> (finite, &gt; 0).</summary>
    public double[] Density(double oddsRatio)
    {
        var logOdds = Math.Log(oddsRatio);
        var weights = new double[_logCentral.Length];
        var max = double.NegativeInfinity;
        for (var i = 0; i < weights.Length; i++)
        {
            weights[i] = _logCentral[i] + (logOdds * (Low + i));
            max = Math.Max(max, weights[i]);
        }

        // Scale by the largest term before exponentiating so nothing overflows.
        var sum = 0.0;
        for (var i = 0; i < weights.Length; i++)
        {
            weights[i] = Math.Exp(weights[i] - max);
            sum += weights[i];
        }

        for (var i = 0; i < weights.Length; i++)
        {
            weights[i] /= sum;
        }

        return weights;
    }

    /// <summary>E[X] under odds ratio <paramref name="oddsRatio"/> (0 and +∞ give the support ends).</summary>
    public double Mean(double oddsRatio)
    {
        if (oddsRatio == 0.0)
        {
            return Low;
        }

        if (double.IsPositiveInfinity(oddsRatio))
        {
            return High;
        }

        var density = Density(oddsRatio);
        var mean = 0.0;
        for (var i = 0; i < density.Length; i++)
        {
            mean += (Low + i) * density[i];
        }

        return mean;
    }

    /// <summary>
    /// The conditional MLE: the odds ratio whose mean equals the observed count, solved on [0, 1] for ψ or for
    /// 1/ψ exactly as R's fisher.test does, so that the reported value (tolerance ε^¼) matches R's.
    /// </summary>
    public double ConditionalMle(int observed)
    {
        if (observed == Low)
        {
            return 0.0;
        }

        if (observed == High)
        {
            return double.PositiveInfinity;
        }

        var centralMean = Mean(1.0);
        if (centralMean > observed)
        {
            return RootFinding.Brent(t => Mean(t) - observed, 0.0, 1.0, RootFinding.UnirootTolerance);
        }

        if (centralMean < observed)
        {
            return 1.0 / RootFinding.Brent(t => Mean(1.0 / t) - observed, RootFinding.MachineEpsilon, 1.0, RootFinding.UnirootTolerance);
        }

        return 1.0;
    }
}
