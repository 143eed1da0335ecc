using System.Text.Json;
using ExpertScope.Testing;
using Xunit.Abstractions;

namespace ExpertScope.Statistics.Tests;

/// <summary>
/// Checks every case of the R oracle (shared/golden/stats/r-stats.json). Each test type has one fact that runs all
/// of its cases, collects every mismatch, and reports how many matched.
/// </summary>
public sealed class RGoldenTests(ITestOutputHelper output)
{
    /// <summary>Relative tolerance for p-values and other values from special functions.</summary>
    private const double PValueTolerance = 1e-9;

    /// <summary>Relative tolerance for statistics that are floating computations.</summary>
    private const double StatisticTolerance = 1e-12;

    private static readonly Lazy<JsonElement[]> Cases = new(() =>
    {
        using var stream = File.OpenRead(GoldenData.GoldenPath("stats", "r-stats.json"));
        using var document = JsonDocument.Parse(stream);
        return [.. document.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.Clone())];
    });

    private static readonly string[] KnownTests =
    [
        "mann_whitney", "welch_t", "wilcoxon_signed_rank", "permutation_mean_difference_exact", "p_adjust",
        "correlation", "fisher_exact_2x2", "chi_squared_2x2_yates", "chi_squared_independence", "binomial",
        "normal_cdf", "student_t_cdf",
    ];

    [Fact]
    public void EveryOracleCase_HasACheck()
    {
        var unknown = Cases.Value.Select(TestName).Where(t => !KnownTests.Contains(t)).Distinct().ToArray();
        Assert.Empty(unknown);
        Assert.True(Cases.Value.Length >= 62, $"Expected the full oracle, found {Cases.Value.Length} cases.");
    }

    [Fact]
    public void MannWhitney_MatchesR() => Run("mann_whitney", (c, check) =>
    {
        var result = RankTests.MannWhitney(
            Doubles(c, "x"), Doubles(c, "y"), AlternativeOf(c), c.GetProperty("continuity_correction").GetBoolean());
        check.Exact("W", result.W, c.GetProperty("U_statistic_W").GetDouble());
        check.Equal("exact_used", result.IsExact, c.GetProperty("exact_used").GetBoolean());
        check.Close("p", result.PValue, c.GetProperty("p_value").GetDouble(), PValueTolerance);
    });

    [Fact]
    public void WelchT_MatchesR() => Run("welch_t", (c, check) =>
    {
        var result = TTests.Welch(Doubles(c, "x"), Doubles(c, "y"), AlternativeOf(c));
        check.Close("t", result.T, c.GetProperty("t").GetDouble(), StatisticTolerance);
        check.Close("df", result.DegreesOfFreedom, c.GetProperty("df").GetDouble(), StatisticTolerance);
        check.Close("p", result.PValue, c.GetProperty("p_value").GetDouble(), PValueTolerance);
    });

    [Fact]
    public void WilcoxonSignedRank_MatchesR() => Run("wilcoxon_signed_rank", (c, check) =>
    {
        var result = RankTests.WilcoxonSignedRank(
            Doubles(c, "x"), Doubles(c, "y"), AlternativeOf(c), c.GetProperty("continuity_correction").GetBoolean());
        check.Exact("V", result.V, c.GetProperty("V_statistic").GetDouble());
        var rIsExact = !c.GetProperty("method").GetString()!.Contains("continuity", StringComparison.Ordinal);
        check.Equal("exact", result.IsExact, rIsExact);
        check.Close("p", result.PValue, c.GetProperty("p_value").GetDouble(), PValueTolerance);
    });

    [Fact]
    public void ExactPermutationTest_MatchesR() => Run("permutation_mean_difference_exact", (c, check) =>
    {
        var result = PermutationTests.ExactMeanDifference(Doubles(c, "x"), Doubles(c, "y"));
        check.Close("observed", result.Observed, c.GetProperty("observed").GetDouble(), StatisticTolerance);
        check.Exact("permutations", result.Permutations, c.GetProperty("permutations").GetInt64());
        check.Close("p two-sided", result.PValueTwoSided, c.GetProperty("p_two_sided").GetDouble(), PValueTolerance);
        check.Close("p greater", result.PValueGreater, c.GetProperty("p_greater").GetDouble(), PValueTolerance);
    });

    [Fact]
    public void PAdjust_MatchesR() => Run("p_adjust", (c, check) =>
    {
        var method = c.GetProperty("method").GetString() switch
        {
            "holm" => PAdjustMethod.Holm,
            "hochberg" => PAdjustMethod.Hochberg,
            "BH" => PAdjustMethod.BenjaminiHochberg,
            "BY" => PAdjustMethod.BenjaminiYekutieli,
            "bonferroni" => PAdjustMethod.Bonferroni,
            var other => throw new InvalidDataException($"Unknown p.adjust method '{other}' in the oracle."),
        };
        var adjusted = MultipleComparisons.Adjust(Doubles(c, "p"), method);
        var expected = Doubles(c, "adjusted");
        check.Exact("count", adjusted.Length, expected.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            check.Close($"adjusted[{i}]", adjusted[i], expected[i], StatisticTolerance);
        }
    });

    [Fact]
    public void Correlation_MatchesR() => Run("correlation", (c, check) =>
    {
        var x = Doubles(c, "x");
        var y = Doubles(c, "y");
        var result = c.GetProperty("method").GetString() switch
        {
            "pearson" => Correlation.Pearson(x, y),
            "spearman" => Correlation.Spearman(x, y),
            "kendall" => Correlation.Kendall(x, y),
            var other => throw new InvalidDataException($"Unknown correlation method '{other}' in the oracle."),
        };
        check.Close("estimate", result.Estimate, c.GetProperty("estimate").GetDouble(), StatisticTolerance);
        check.Close("p", result.PValue, c.GetProperty("p_value").GetDouble(), PValueTolerance);
    });

    [Fact]
    public void FisherExact_MatchesR() => Run("fisher_exact_2x2", (c, check) =>
    {
        var t = Ints(c, "table_row_major");
        var result = ContingencyTests.FisherExact2x2(t[0], t[1], t[2], t[3]);
        check.Close("p", result.PValue, c.GetProperty("p_value").GetDouble(), PValueTolerance);
        check.Close("odds ratio", result.OddsRatio, c.GetProperty("odds_ratio_conditional_mle").GetDouble(), PValueTolerance);
    });

    [Fact]
    public void ChiSquaredYates_MatchesR() => Run("chi_squared_2x2_yates", (c, check) =>
    {
        var t = Ints(c, "table_row_major");
        var result = ContingencyTests.ChiSquared2x2Yates(t[0], t[1], t[2], t[3]);
        check.Close("statistic", result.Statistic, c.GetProperty("statistic").GetDouble(), StatisticTolerance);
        check.Exact("df", result.DegreesOfFreedom, 1);
        check.Close("p", result.PValue, c.GetProperty("p_value").GetDouble(), PValueTolerance);
    });

    [Fact]
    public void ChiSquaredIndependence_MatchesR() => Run("chi_squared_independence", (c, check) =>
    {
        var rows = c.GetProperty("rows").GetInt32();
        var columns = c.GetProperty("cols").GetInt32();
        var flat = Ints(c, "table_row_major");
        var table = new double[rows, columns];
        for (var i = 0; i < rows; i++)
        {
            for (var j = 0; j < columns; j++)
            {
                table[i, j] = flat[(i * columns) + j];
            }
        }

        var result = ContingencyTests.ChiSquared(table);
        check.Close("statistic", result.Statistic, c.GetProperty("statistic").GetDouble(), StatisticTolerance);
        check.Exact("df", result.DegreesOfFreedom, c.GetProperty("df").GetInt32());
        check.Close("p", result.PValue, c.GetProperty("p_value").GetDouble(), PValueTolerance);
    });

    [Fact]
    public void Binomial_MatchesR() => Run("binomial", (c, check) =>
    {
        var p = ContingencyTests.Binomial(
            c.GetProperty("successes").GetInt32(), c.GetProperty("trials").GetInt32(), c.GetProperty("p0").GetDouble());
        check.Close("p", p, c.GetProperty("p_value").GetDouble(), PValueTolerance);
    });

    [Fact]
    public void NormalCdf_MatchesR() => Run("normal_cdf", (c, check) =>
    {
        var z = Doubles(c, "z");
        var expected = Doubles(c, "cdf");
        for (var i = 0; i < z.Length; i++)
        {
            check.Close($"pnorm({z[i]})", Distributions.NormalCdf(z[i]), expected[i], PValueTolerance);
        }
    });

    [Fact]
    public void StudentTCdf_MatchesR() => Run("student_t_cdf", (c, check) =>
    {
        var t = Doubles(c, "t");
        var df = Doubles(c, "df");
        var expected = Doubles(c, "cdf");
        for (var i = 0; i < t.Length; i++)
        {
            check.Close($"pt({t[i]}, {df[i]})", Distributions.StudentTCdf(t[i], df[i]), expected[i], PValueTolerance);
        }
    });

    private void Run(string test, Action<JsonElement, CaseCheck> body)
    {
        var cases = Cases.Value.Where(c => TestName(c) == test).ToArray();
        Assert.NotEmpty(cases);
        var failures = new List<string>();
        var matched = 0;
        var worst = 0.0;
        for (var i = 0; i < cases.Length; i++)
        {
            var label = $"{test}[{i}]" + (cases[i].TryGetProperty("name", out var name) ? $" {name.GetString()}" : string.Empty)
                + (cases[i].TryGetProperty("alternative", out var alt) ? $" {alt.GetString()}" : string.Empty);
            var check = new CaseCheck(label);
            try
            {
                body(cases[i], check);
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
            {
                check.Failures.Add($"{label}: threw {ex.GetType().Name}: {ex.Message}");
            }

            worst = Math.Max(worst, check.WorstRelativeError);
            if (check.Failures.Count == 0)
            {
                matched++;
            }

            failures.AddRange(check.Failures);
        }

        output.WriteLine($"{test}: {matched}/{cases.Length} cases matched R (largest relative error {worst:E2}).");
        Assert.True(failures.Count == 0, $"{test}: {matched}/{cases.Length} matched.\n" + string.Join('\n', failures));
    }

    private static string TestName(JsonElement c) => c.GetProperty("test").GetString()!;

    private static double[] Doubles(JsonElement c, string property) =>
        [.. c.GetProperty(property).EnumerateArray().Select(v => v.GetDouble())];

    private static int[] Ints(JsonElement c, string property) =>
        [.. c.GetProperty(property).EnumerateArray().Select(v => v.GetInt32())];

    private static Alternative AlternativeOf(JsonElement c) => c.GetProperty("alternative").GetString() switch
    {
        "two.sided" => Alternative.TwoSided,
        "less" => Alternative.Less,
        "greater" => Alternative.Greater,
        var other => throw new InvalidDataException($"Unknown alternative '{other}' in the oracle."),
    };

    /// <summary>Collects mismatches of one case instead of stopping at the first.</summary>
    private sealed class CaseCheck(string label)
    {
        public List<string> Failures { get; } = [];

        public double WorstRelativeError { get; private set; }

        public void Exact<T>(string what, T actual, T expected)
            where T : IEquatable<T>
        {
            if (!actual.Equals(expected))
            {
                Failures.Add($"{label}: {what} = {actual}, R = {expected}");
            }
        }

        public void Equal(string what, bool actual, bool expected) => Exact(what, actual, expected);

        public void Close(string what, double actual, double expected, double relativeTolerance)
        {
            var error = Math.Abs(actual - expected);
            WorstRelativeError = Math.Max(WorstRelativeError, expected == 0.0 ? error : error / Math.Abs(expected));
            if (!(error <= relativeTolerance * Math.Abs(expected)) && !(expected == 0.0 && error <= relativeTolerance))
            {
                Failures.Add($"{label}: {what} = {actual:R}, R = {expected:R} (relative error {error / Math.Abs(expected):E2})");
            }
        }
    }
}
