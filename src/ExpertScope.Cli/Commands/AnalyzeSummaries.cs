using System.Globalization;
using ExpertScope.Experiments.Lens;

namespace ExpertScope.Cli;

/// <summary>The few lines each <c>analyze</c> sub-verb prints on stdout before "wrote …": the headline numbers of its report.</summary>
internal static class AnalyzeSummaries
{
    private static string F(double value) => double.IsFinite(value) ? value.ToString("0.###", CultureInfo.InvariantCulture) : "n/a";

    public static void Domains(CliContext context, DomainRoutingResult result)
    {
        foreach (var domain in result.Summaries.GroupBy(s => s.Domain))
        {
            context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{domain.Key}: {domain.First().Tokens} tokens per layer; experts covering 50% of decisions {F(domain.Average(s => s.ExpertsFor50))} (mean over layers), normalised entropy {F(domain.Average(s => s.NormalizedEntropy))}"));
        }

        int specific = result.Specificity.Count(s => s.QValue < 0.05 && s.LogRatio > 0);
        double meanJs = result.Divergences.Count == 0 ? double.NaN
            : result.Divergences.Average(m => Enumerable.Range(0, m.Domains.Count).SelectMany(i => Enumerable.Range(i + 1, m.Domains.Count - i - 1).Select(j => m.Bits[i, j])).DefaultIfEmpty(double.NaN).Average());
        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{specific} (layer, expert, domain) triples over-used at BH q < 0.05; mean Jensen-Shannon divergence between domains {F(meanJs)} bits"));
    }

    public static void SingleExpert(CliContext context, SingleExpertResult result)
    {
        foreach (var shared in result.Perplexities.Select(p => p.Shared).Distinct())
        {
            double Perplexity(string setting) => result.Perplexities.FirstOrDefault(p => p.Shared == shared && p.Setting == setting && p.Layer is null && p.TopM is null)?.Perplexity ?? double.NaN;
            var cosines = result.Cosines.Where(c => c.Shared == shared).ToList();
            context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"shared experts {shared}: perplexity {F(Perplexity("all-experts"))} with all top-{result.TopK} experts, {F(Perplexity("single-expert-all-layers"))} with the top expert alone in every layer; mean cosine of the MoE output {F(cosines.Count == 0 ? double.NaN : cosines.Average(c => c.MoeOutput))}"));
        }
    }

    public static void Lens(CliContext context, LogitLensResult result)
    {
        int last = result.Summaries.Max(s => s.Layer);
        foreach (var summary in result.Summaries.Where(s => s.Layer == last))
        {
            context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"layer {last}, {summary.Source}: KL to the final distribution {F(summary.KullbackLeiblerToFinal)} nats, top-1 agreement {F(summary.TopOneAgreement)}, entropy {F(summary.EntropyBits)} bits"));
        }
    }

    public static void TokenId(CliContext context, TokenIdResult result)
    {
        if (result.Layers.Count == 0)
        {
            context.Output.WriteLine($"no token id occurs {result.MinimumOccurrences} times: nothing to measure (lower --min-occurrences or give more text)");
            return;
        }

        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{result.Tokens} tokens; top-1 expert consistency per token id {F(result.Layers.Average(l => l.Top1Consistency))} (mean over {result.Layers.Count} layers); I(expert; token) / H(expert) {F(result.Layers.Average(l => l.ExpertEntropy > 0 ? l.MutualInformation / l.ExpertEntropy : double.NaN))}"));
    }
}
