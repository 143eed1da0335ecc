namespace ExpertScope.Statistics;

/// <summary>
/// Brent's root finder (Brent 1973; Forsythe, Malcolm and Moler's "zeroin"), the algorithm behind R's
/// <c>uniroot</c>. MathNet has a Brent solver, but its iterates and stopping rule differ from R's; R's Fisher
/// odds ratio stops at the loose <c>uniroot</c> tolerance (ε^¼ ≈ 1.2e-4), so to reproduce R's reported estimate
/// we take exactly the same steps.
/// </summary>
internal static class RootFinding
{
    /// <summary>R's default <c>uniroot</c> tolerance, <c>.Machine$double.eps^0.25</c>.</summary>
    public static readonly double UnirootTolerance = Math.Pow(MachineEpsilon, 0.25);

    /// <summary>The spacing of doubles at 1 (C's DBL_EPSILON, R's <c>.Machine$double.eps</c>).</summary>
    public const double MachineEpsilon = 2.220446049250313e-16;

    /// <summary>Finds x in [lower, upper] with f(x) ≈ 0, given f(lower) and f(upper) of opposite signs.</summary>
    public static double Brent(Func<double, double> f, double lower, double upper, double tolerance, int maxIterations = 1000)
    {
        double a = lower, b = upper;
        double fa = f(a), fb = f(b);
        if (fa == 0.0)
        {
            return a;
        }

        if (fb == 0.0)
        {
            return b;
        }

        if (Math.Sign(fa) == Math.Sign(fb))
        {
            throw new ArgumentException("The function has the same sign at both ends of the interval.", nameof(f));
        }

        // b is the best estimate, a the previous one, c the point that brackets the root with b.
        double c = a, fc = fa;
        for (var iteration = 0; iteration <= maxIterations; iteration++)
        {
            var previousStep = b - a;
            if (Math.Abs(fc) < Math.Abs(fb))
            {
                (a, b, c) = (b, c, b);
                (fa, fb, fc) = (fb, fc, fb);
            }

            var toleranceHere = (2.0 * MachineEpsilon * Math.Abs(b)) + (tolerance / 2.0);
            var step = (c - b) / 2.0;
            if (Math.Abs(step) <= toleranceHere || fb == 0.0)
            {
                return b;
            }

            // Try secant / inverse quadratic interpolation when the last step was useful.
            if (Math.Abs(previousStep) >= toleranceHere && Math.Abs(fa) > Math.Abs(fb))
            {
                var cb = c - b;
                double p, q;
                if (a == c)
                {
                    var ratio = fb / fa;
                    p = cb * ratio;
                    q = 1.0 - ratio;
                }
                else
                {
                    var qa = fa / fc;
                    var rb = fb / fc;
                    var sb = fb / fa;
                    p = sb * ((cb * qa * (qa - rb)) - ((b - a) * (rb - 1.0)));
                    q = (qa - 1.0) * (rb - 1.0) * (sb - 1.0);
                }

                if (p > 0.0)
                {
                    q = -q;
                }
                else
                {
                    p = -p;
                }

                // Accept the interpolated step only if it stays inside [b, c] and shrinks fast enough.
                if (p < (0.75 * cb * q) - (Math.Abs(toleranceHere * q) / 2.0) && p < Math.Abs(previousStep * q / 2.0))
                {
                    step = p / q;
                }
            }

            if (Math.Abs(step) < toleranceHere)
            {
                step = step > 0.0 ? toleranceHere : -toleranceHere;
            }

            a = b;
            fa = fb;
            b += step;
            fb = f(b);
            if ((fb > 0 && fc > 0) || (fb < 0 && fc < 0))
            {
                c = a;
                fc = fa;
            }
        }

        return b;
    }
}
