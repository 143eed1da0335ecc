using ExpertScope.Statistics;

namespace ExpertScope.Experiments.Analyses;

/// <summary>How specific one expert of one layer is to one domain compared with all other domains.</summary>
/// <param name="Domain">The domain.</param>
/// <param name="Layer">The layer.</param>
/// <param name="Expert">The expert.</param>
/// <param name="DomainSelected">a: tokens of the domain routed to the expert.</param>
/// <param name="DomainTokens">n_d: tokens of the domain in the layer.</param>
/// <param name="OtherSelected">c: tokens of the other domains routed to the expert.</param>
/// <param name="OtherTokens">n_o: tokens of the other domains in the layer.</param>
/// <param name="LogRatio">log₂ of the selection-rate ratio with 0.5 pseudo-counts: log₂[((a + ½)/(n_d + 1)) / ((c + ½)/(n_o + 1))].</param>
/// <param name="ChiSquared">Pearson's X² of the 2×2 table (with Yates' correction when asked).</param>
/// <param name="PValue">Its upper-tail p-value (df 1); 1 when the table has an empty margin.</param>
/// <param name="QValue">Benjamini-Hochberg adjusted p-value over all tests of the analysis.</param>
/// <param name="Rank">1-based rank within the domain (over-used experts first, then by q-value, then by log-ratio).</param>
public sealed record ExpertSpecificity(
    string Domain, int Layer, int Expert, long DomainSelected, long DomainTokens, long OtherSelected, long OtherTokens,
    double LogRatio, double ChiSquared, double PValue, double QValue, int Rank)
{
    /// <summary>a / n_d.</summary>
    public double DomainRate => DomainTokens > 0 ? (double)DomainSelected / DomainTokens : 0;

    /// <summary>c / n_o.</summary>
    public double OtherRate => OtherTokens > 0 ? (double)OtherSelected / OtherTokens : 0;
}

/// <summary>
/// Experts most specific to each domain: for every (layer, expert, domain) the 2×2 table
/// <c>[[a, n_d − a], [c, n_o − c]]</c> (rows: this domain, the rest; columns: selected, not selected), Pearson's
/// chi-squared test of independence, Benjamini-Hochberg correction over every test, and a log-ratio effect size.
/// </summary>
/// <remarks>
/// A token is counted as "selected" once per layer when any of its k routing records names the expert, so the
/// count of a table cell is the expert's <see cref="ExpertUsageTable.Counts"/> entry (each expert appears at most
/// once among a token's top-k). The chi-squared test is two-sided; the sign of <see cref="ExpertSpecificity.LogRatio"/>
/// says whether the domain uses the expert more (positive) or less. With many tokens tiny differences are
/// significant, so read the effect size, not just q.
/// </remarks>
public static class DomainSpecificity
{
    /// <summary>Tests every expert of every layer present in all tables, for every domain against the others.</summary>
    /// <param name="tables">One usage table per domain (at least two, same expert count).</param>
    /// <param name="continuityCorrection">Apply Yates' continuity correction (R's default for 2×2 tables).</param>
    /// <returns>Rows grouped by domain in table order, each group ranked (see <see cref="ExpertSpecificity.Rank"/>).</returns>
    /// <exception cref="ArgumentException">Fewer than two domains, or different expert counts.</exception>
    public static IReadOnlyList<ExpertSpecificity> Rank(IReadOnlyList<ExpertUsageTable> tables, bool continuityCorrection = true)
    {
        ArgumentNullException.ThrowIfNull(tables);
        if (tables.Count < 2)
        {
            throw new ArgumentException("Domain specificity compares at least two domains.", nameof(tables));
        }

        var expertCount = tables[0].ExpertCount;
        if (tables.Any(table => table.ExpertCount != expertCount))
        {
            throw new ArgumentException("The domains' tables have different expert counts.", nameof(tables));
        }

        var layers = tables.Select(table => (IEnumerable<int>)table.Layers).Aggregate((x, y) => x.Intersect(y)).Order().ToList();
        var raw = new List<ExpertSpecificity>();
        foreach (var layer in layers)
        {
            var counts = tables.Select(table => table.Counts(layer)).ToArray();
            var tokens = tables.Select(table => table.Tokens(layer)).ToArray();
            var allTokens = tokens.Sum();
            for (var expert = 0; expert < expertCount; expert++)
            {
                var allSelected = (long)counts.Sum(c => c[expert]);
                for (var d = 0; d < tables.Count; d++)
                {
                    var a = (long)counts[d][expert];
                    var c = allSelected - a;
                    var otherTokens = allTokens - tokens[d];
                    var (statistic, p) = Test(a, tokens[d] - a, c, otherTokens - c, continuityCorrection);
                    var logRatio = Math.Log2((a + 0.5) / (tokens[d] + 1.0) / ((c + 0.5) / (otherTokens + 1.0)));
                    raw.Add(new ExpertSpecificity(tables[d].Domain, layer, expert, a, tokens[d], c, otherTokens, logRatio, statistic, p, double.NaN, 0));
                }
            }
        }

        var q = MultipleComparisons.Adjust([.. raw.Select(row => row.PValue)], PAdjustMethod.BenjaminiHochberg);
        var adjusted = raw.Select((row, index) => row with { QValue = q[index] }).ToList();
        var ranked = new List<ExpertSpecificity>(adjusted.Count);
        foreach (var table in tables)
        {
            var group = adjusted.Where(row => row.Domain == table.Domain)
                .OrderByDescending(row => row.LogRatio > 0)
                .ThenBy(row => row.QValue)
                .ThenByDescending(row => row.LogRatio)
                .ThenBy(row => row.Layer)
                .ThenBy(row => row.Expert);
            ranked.AddRange(group.Select((row, index) => row with { Rank = index + 1 }));
        }

        return ranked;
    }

    /// <summary>The over-used experts of one domain with q below <paramref name="alpha"/>, best first, at most <paramref name="count"/>.</summary>
    public static IReadOnlyList<ExpertSpecificity> TopForDomain(IReadOnlyList<ExpertSpecificity> ranked, string domain, int count, double alpha = 0.05)
    {
        ArgumentNullException.ThrowIfNull(ranked);
        return [.. ranked.Where(row => row.Domain == domain && row.LogRatio > 0 && row.QValue < alpha).OrderBy(row => row.Rank).Take(count)];
    }

    private static (double Statistic, double PValue) Test(long a, long b, long c, long d, bool yates)
    {
        // An empty margin (expert never or always chosen, or an empty group) leaves nothing to test.
        if (a + b == 0 || c + d == 0 || a + c == 0 || b + d == 0)
        {
            return (0, 1);
        }

        var result = ContingencyTests.ChiSquared(new double[,] { { a, b }, { c, d } }, yates);
        return (result.Statistic, result.PValue);
    }
}
