using ExpertScope.Experiments.Reports;
using ExpertScope.Models;

namespace ExpertScope.Cli;

/// <summary>The random-weights warning as every verb prints it, first in its stdout summary.</summary>
internal static class RandomWeightsLine
{
    /// <summary>Prints the warning when <paramref name="model"/> has random weights; returns whether it has.</summary>
    public static bool Check(CliContext context, MoeModel model)
    {
        bool random = RandomWeightsNotice.IsRandom(model.File);
        if (random)
        {
            context.Output.WriteLine("WARNING: " + RandomWeightsNotice.Text);
        }

        return random;
    }
}
