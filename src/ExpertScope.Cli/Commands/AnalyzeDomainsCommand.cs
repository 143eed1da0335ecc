using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Experiments.Corpora;
using ExpertScope.Experiments.Lens;

namespace ExpertScope.Cli;

/// <summary>
/// <c>analyze domains</c>: expert usage by text domain with equal token budgets: layer × expert heatmaps, coverage
/// curves, Jensen-Shannon divergence between domains and the most domain-specific experts (chi-squared + BH).
/// </summary>
public static class AnalyzeDomainsCommand
{
    /// <summary>Creates the sub-verb.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var model = new ModelOptions();
        var output = AnalyzeCommand.OutOption();
        var baseline = AnalyzeCommand.BaselineOption();
        var dataDir = new Option<DirectoryInfo?>("--data-dir") { Description = "Evaluation data folder holding domains/ (or the domains folder itself): the built-in domains." };
        var domainNames = new Option<string?>("--domains") { Description = "Comma-separated built-in domains to use (default: all of them)." };
        var corpora = new Option<string[]>("--corpus")
        {
            Description = "A corpus NAME=PATH (a .txt, .jsonl or .json file, or a folder of them). Repeatable; combined with --data-dir domains.",
            Arity = ArgumentArity.OneOrMore,
        };
        var tokens = new Option<long>("--tokens-per-domain") { Description = "Tokens drawn from each domain (default 20000).", DefaultValueFactory = _ => 20_000 };
        var seed = new Option<int>("--seed") { Description = "Seed of the document shuffle (default 0).", DefaultValueFactory = _ => 0 };
        var top = new Option<int>("--top") { Description = "Most specific experts listed per domain (default 10).", DefaultValueFactory = _ => 10 };
        var includeSpecial = new Option<bool>("--include-special") { Description = "Count BOS, EOS and control tokens too (default: left out of every statistic)." };
        var command = new Command("domains", "Expert usage per text domain (equal token budgets): heatmaps, coverage, JS divergence, domain-specific experts.");
        model.AddTo(command);
        command.Options.Add(output);
        command.Options.Add(baseline);
        command.Options.Add(dataDir);
        command.Options.Add(domainNames);
        command.Options.Add(corpora);
        command.Options.Add(tokens);
        command.Options.Add(seed);
        command.Options.Add(top);
        command.Options.Add(includeSpecial);
        var server = new RoutingServerOptions();
        server.AddTo(command);
        command.SetAction(parse => context.Guard(() =>
        {
            AnalyzeCommand.CheckBaseline(parse, baseline, "domains");
            var watch = Stopwatch.StartNew();
            string folder = parse.GetValue(output)!.FullName;
            var (domains, described) = LoadDomains(parse, dataDir, domainNames, corpora);
            if (domains.Count < 2)
            {
                throw new ExpertScopeException("Give at least two domains: --data-dir (built-in domains) and/or --corpus NAME=PATH.");
            }

            long budget = parse.GetValue(tokens);
            if (budget < 1)
            {
                throw new ExpertScopeException("--tokens-per-domain must be at least 1.");
            }

            if (parse.GetValue(top) < 1)
            {
                throw new ExpertScopeException("--top must be at least 1.");
            }

            int? threads = model.ThreadCount(parse);
            using var moe = model.Load(parse);
            var settings = new DomainRoutingSettings { TokensPerDomain = budget, Seed = parse.GetValue(seed), TopSpecificExperts = parse.GetValue(top), ThreadCount = threads, IncludeSpecialTokens = parse.GetValue(includeSpecial) };
            var serverSettings = server.Parse(parse);
            using var serverSource = serverSettings?.CreateSource(moe.File, Formats.ModelInfo.FromGguf(moe.File));
            var runSettings = new Dictionary<string, string>
            {
                ["domains"] = string.Join(";", described),
                ["tokens_per_domain"] = budget.ToString(CultureInfo.InvariantCulture),
            };
            if (serverSource is not null)
            {
                // Only a server is recorded, so runs made before the option existed still resume.
                runSettings["routing_source"] = serverSource.Kind;
            }

            using var run = AnalyzeCommand.OpenFolder(context, parse, folder, "analyze-domains", moe, runSettings, settings.Seed);
            return AnalyzeCommand.Interruptible(context, folder, token =>
            {
                var result = ProgressDisplay.Run(context, sink => DomainRoutingAnalysis.Run(moe, run, domains, settings, sink, token, serverSource));
                if (!result.HasWeights)
                {
                    context.Output.WriteLine(DomainRoutingAnalysis.WeightsUnavailable(result.RoutingSource));
                }

                foreach (var sample in result.Samples.Where(s => !s.BudgetReached))
                {
                    context.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"warning: domain '{sample.Name}' holds only {sample.TokenCount} of the {sample.TokenBudget} tokens asked for."));
                }

                DomainRoutingAnalysis.WriteOutputs(result, folder, Path.GetFileName(moe.FilePath), settings, RandomWeightsLine.Check(context, moe));
                AnalyzeSummaries.Domains(context, result);
                AnalyzeCommand.CompareWithBaseline(context, parse, baseline, folder);
                AnalyzeCommand.Done(context, folder, watch.Elapsed);
                return 0;
            });
        }));
        return command;
    }

    /// <summary>The domains named by <c>--data-dir</c> (with <c>--domains</c>) and <c>--corpus NAME=PATH</c>, and a description of each for the run manifest.</summary>
    internal static (List<KeyValuePair<string, IReadOnlyList<CorpusDocument>>> Domains, List<string> Described) LoadDomains(
        ParseResult parse, Option<DirectoryInfo?> dataDir, Option<string?> domainNames, Option<string[]> corpora)
    {
        var domains = new List<KeyValuePair<string, IReadOnlyList<CorpusDocument>>>();
        var described = new List<string>();
        if (parse.GetValue(dataDir) is { } data)
        {
            var catalog = new DomainCorpusCatalog(data.FullName);
            var names = parse.GetValue(domainNames) is { } list ? list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [.. catalog.Names];
            foreach (var name in names)
            {
                var domain = catalog.Describe(name);
                domains.Add(new(domain.Name, catalog.Load(domain.Name)));
                described.Add(domain.Name);
            }
        }
        else if (parse.GetValue(domainNames) is not null)
        {
            throw new ExpertScopeException("--domains needs --data-dir.");
        }

        foreach (var value in parse.GetValue(corpora) ?? [])
        {
            int equals = value.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0 || equals == value.Length - 1)
            {
                throw new ExpertScopeException($"--corpus '{value}': expected NAME=PATH.");
            }

            string name = value[..equals], path = Path.GetFullPath(value[(equals + 1)..]);
            if (domains.Any(d => d.Key.Equals(name, StringComparison.OrdinalIgnoreCase)))
            {
                throw new ExpertScopeException($"--corpus '{value}': the name '{name}' is used twice.");
            }

            domains.Add(new(name, CorpusReader.Read(path)));
            described.Add(name + "=" + path);
        }

        return (domains, described);
    }
}
