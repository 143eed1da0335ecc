using System.Globalization;

namespace ExpertScope.Experiments.Reports;

/// <summary>
/// An axis range widened to "nice" round numbers with evenly spaced ticks (1, 2, 2.5 or 5 times a power of ten),
/// as people draw axes by hand: data from 0.13 to 0.87 gets ticks 0, 0.2, 0.4, 0.6, 0.8, 1.
/// </summary>
public sealed record NiceScale
{
    private static readonly double[] NiceSteps = [1, 2, 2.5, 5, 10, 20];

    private NiceScale(double minimum, double maximum, double spacing)
    {
        Minimum = minimum;
        Maximum = maximum;
        Spacing = spacing;
        // Ticks are the multiples of the spacing within the range (all of it, for a widened range).
        var first = Math.Ceiling(minimum / spacing - 1e-9);
        var last = Math.Floor(maximum / spacing + 1e-9);
        var ticks = new List<double>();
        for (var i = first; i <= last; i++)
        {
            // Round away the binary noise of i * spacing so labels and positions are exact decimals.
            ticks.Add(Math.Round(i * spacing, Decimals + 2));
        }

        Ticks = ticks;
    }

    /// <summary>The axis start (a multiple of <see cref="Spacing"/>, at or below the data minimum).</summary>
    public double Minimum { get; }

    /// <summary>The axis end (a multiple of <see cref="Spacing"/>, at or above the data maximum).</summary>
    public double Maximum { get; }

    /// <summary>Distance between ticks.</summary>
    public double Spacing { get; }

    /// <summary>Tick values from <see cref="Minimum"/> to <see cref="Maximum"/>.</summary>
    public IReadOnlyList<double> Ticks { get; }

    /// <summary>Decimal places that tick labels need.</summary>
    public int Decimals => Math.Max(0, (int)-Math.Floor(Math.Log10(Spacing) + 1e-9) + (IsQuarterStep ? 1 : 0));

    private bool IsQuarterStep
    {
        get
        {
            var magnitude = Math.Pow(10, Math.Floor(Math.Log10(Spacing) + 1e-9));
            return Math.Abs(Spacing / magnitude - 2.5) < 1e-9;
        }
    }

    /// <summary>Builds the scale for data between <paramref name="minimum"/> and <paramref name="maximum"/>.</summary>
    /// <param name="minimum">Smallest value to show.</param>
    /// <param name="maximum">Largest value to show.</param>
    /// <param name="maximumTicks">Most ticks wanted (at least 2); the scale may use fewer.</param>
    public static NiceScale Create(double minimum, double maximum, int maximumTicks = 6)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maximumTicks, 2);
        if (!double.IsFinite(minimum) || !double.IsFinite(maximum))
        {
            (minimum, maximum) = (0, 1);
        }

        if (minimum > maximum)
        {
            (minimum, maximum) = (maximum, minimum);
        }

        if (minimum == maximum)
        {
            // One value: give it room on both sides (or 0..1 for zero).
            var pad = minimum == 0 ? 1 : Math.Abs(minimum) * 0.5;
            (minimum, maximum) = (minimum == 0 ? 0 : minimum - pad, maximum + pad);
        }

        // The smallest step of the form {1, 2, 2.5, 5} x 10^n that covers the data in at most maximumTicks ticks.
        var rough = (maximum - minimum) / (maximumTicks - 1);
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        double spacing = 0, low = 0, high = 0;
        foreach (var candidate in NiceSteps.Select(step => step * magnitude))
        {
            spacing = candidate;
            low = Math.Floor(minimum / spacing + 1e-9) * spacing;
            high = Math.Ceiling(maximum / spacing - 1e-9) * spacing;
            if (Math.Round((high - low) / spacing) + 1 <= maximumTicks)
            {
                break;
            }
        }

        return new NiceScale(low, high, spacing);
    }

    /// <summary>
    /// A scale over exactly <paramref name="minimum"/>..<paramref name="maximum"/> (not widened), with nice ticks
    /// inside it: 0..64 gets ticks 0, 10, …, 60 and the axis still ends at 64.
    /// </summary>
    public static NiceScale CreateWithin(double minimum, double maximum, int maximumTicks = 6)
    {
        var widened = Create(minimum, maximum, maximumTicks);
        if (!(maximum > minimum) || !double.IsFinite(minimum) || !double.IsFinite(maximum))
        {
            return widened;
        }

        return new NiceScale(minimum, maximum, widened.Spacing);
    }

    /// <summary>Like <see cref="Create"/>, but every tick is a whole number (for layers, counts, expert ranks).</summary>
    public static NiceScale CreateInteger(double minimum, double maximum, int maximumTicks = 8)
    {
        var scale = Create(minimum, maximum, maximumTicks);
        if (scale.Spacing >= 1 && Math.Abs(scale.Spacing - Math.Round(scale.Spacing)) < 1e-9)
        {
            return scale;
        }

        // Fractional spacing: step by 1 (or 2 past 2.5, which is not a whole number) between whole bounds.
        var spacing = scale.Spacing < 1 ? 1 : 2;
        var low = Math.Floor(Math.Min(minimum, maximum) / spacing) * spacing;
        var high = Math.Ceiling(Math.Max(minimum, maximum) / spacing) * spacing;
        if (high == low)
        {
            high = low + spacing;
        }

        return new NiceScale(low, high, spacing);
    }

    /// <summary>The tick label of <paramref name="value"/> with <see cref="Decimals"/> places, invariant culture, no "-0".</summary>
    public string Format(double value)
    {
        var magnitude = Math.Max(Math.Abs(Minimum), Math.Abs(Maximum));
        if (magnitude >= 1e6 || Decimals > 6)
        {
            return value == 0 ? "0" : value.ToString("0.###E+0", CultureInfo.InvariantCulture);
        }

        var text = value.ToString("F" + Decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        return text.TrimStart('-').Trim('0', '.').Length == 0 ? text.TrimStart('-') : text;
    }

    /// <summary>Where <paramref name="value"/> falls on a pixel range: <see cref="Minimum"/> maps to <paramref name="start"/>, <see cref="Maximum"/> to <paramref name="end"/>.</summary>
    public double Map(double value, double start, double end) => start + (value - Minimum) / (Maximum - Minimum) * (end - start);
}
