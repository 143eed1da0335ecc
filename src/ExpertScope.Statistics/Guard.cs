namespace ExpertScope.Statistics;

/// <summary>Argument checks shared by every test, so that bad input fails loudly instead of producing NaN.</summary>
internal static class Guard
{
    /// <summary>Throws unless <paramref name="values"/> holds at least <paramref name="minimumCount"/> finite numbers.</summary>
    public static void Sample(ReadOnlySpan<double> values, int minimumCount, string parameterName)
    {
        if (values.Length < minimumCount)
        {
            throw new ArgumentException(
                $"The sample needs at least {minimumCount} value(s) but has {values.Length}.", parameterName);
        }

        foreach (var value in values)
        {
            if (!double.IsFinite(value))
            {
                throw new ArgumentException($"The sample contains a non-finite value ({value}).", parameterName);
            }
        }
    }

    /// <summary>Throws unless both paired samples have the same length.</summary>
    public static void SameLength(ReadOnlySpan<double> x, ReadOnlySpan<double> y, string parameterName)
    {
        if (x.Length != y.Length)
        {
            throw new ArgumentException(
                $"Paired samples must have the same length, but x has {x.Length} values and y has {y.Length}.", parameterName);
        }
    }

    /// <summary>Throws unless <paramref name="probability"/> lies in [0, 1].</summary>
    public static void Probability(double probability, string parameterName)
    {
        if (!(probability >= 0.0 && probability <= 1.0))
        {
            throw new ArgumentOutOfRangeException(parameterName, probability, "A probability must lie in [0, 1].");
        }
    }

    /// <summary>Throws unless the alternative is one of the three defined values.</summary>
    public static void Defined(Alternative alternative, string parameterName)
    {
        if (alternative is not (Alternative.TwoSided or Alternative.Less or Alternative.Greater))
        {
            throw new ArgumentOutOfRangeException(parameterName, alternative, "Unknown alternative hypothesis.");
        }
    }
}
