namespace ExpertScope.Statistics;

/// <summary>Ranks with ties averaged, as R's <c>rank(x)</c> (ties.method = "average").</summary>
public static class Ranking
{
    /// <summary>Returns the 1-based average ranks of <paramref name="values"/>; tied values share the mean of their ranks.</summary>
    /// <param name="values">The values to rank; compared exactly (no tolerance), as R does.</param>
    /// <returns>One rank per value, in input order.</returns>
    public static double[] AverageRanks(ReadOnlySpan<double> values) => AverageRanks(values, out _);

    /// <summary>Average ranks plus the sizes of every tie group (groups of one included).</summary>
    /// <param name="values">The values to rank.</param>
    /// <param name="tieGroupSizes">The size of each group of equal values, in ascending value order.</param>
    /// <returns>One rank per value, in input order.</returns>
    public static double[] AverageRanks(ReadOnlySpan<double> values, out int[] tieGroupSizes)
    {
        var order = new int[values.Length];
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        var keys = values.ToArray();
        Array.Sort(keys, order);

        var ranks = new double[values.Length];
        var groups = new List<int>();
        var start = 0;
        while (start < keys.Length)
        {
            var end = start + 1;
            while (end < keys.Length && keys[end] == keys[start])
            {
                end++;
            }

            // Positions start..end-1 hold ranks start+1..end; their mean is (start + 1 + end) / 2.
            var rank = (start + 1 + end) / 2.0;
            for (var i = start; i < end; i++)
            {
                ranks[order[i]] = rank;
            }

            groups.Add(end - start);
            start = end;
        }

        tieGroupSizes = [.. groups];
        return ranks;
    }

    /// <summary>Σ (t³ − t) over tie groups, the tie term of rank-test variances.</summary>
    internal static double TieCubeSum(int[] tieGroupSizes)
    {
        var sum = 0.0;
        foreach (var t in tieGroupSizes)
        {
            sum += ((double)t * t * t) - t;
        }

        return sum;
    }

    /// <summary>True when any two values are equal.</summary>
    internal static bool HasTies(int[] tieGroupSizes)
    {
        foreach (var t in tieGroupSizes)
        {
            if (t > 1)
            {
                return true;
            }
        }

        return false;
    }
}
