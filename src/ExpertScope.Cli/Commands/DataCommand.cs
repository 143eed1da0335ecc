using System.CommandLine;
using System.Globalization;
using ExpertScope.Experiments.Data.Download;
using ExpertScope.Experiments.Probes;
using ExpertScope.Experiments.Runs;

namespace ExpertScope.Cli;

/// <summary>
/// <c>data list|download</c>: the evaluation data sets the probes read (WiC, CoarseWSD-20, MCL-WiC, SWORDS), fetched
/// from their public sources at pinned commits, verified by SHA-256 and unpacked in the layout <c>--data-dir</c> expects.
/// </summary>
public static class DataCommand
{
    /// <summary>Creates the verb with its sub-verbs.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var command = new Command("data", "The evaluation data sets of the probes: list them, or download, verify (SHA-256) and unpack them where --data-dir reads.");
        command.Subcommands.Add(CreateList(context));
        command.Subcommands.Add(CreateDownload(context));
        return command;
    }

    private static Option<DirectoryInfo?> ToOption(bool required) => new("--to")
    {
        Description = required
            ? "Data folder to fill (created); then pass it as --data-dir, or set $" + ProbeData.EnvironmentVariable + "."
            : "Data folder to check (default: $" + ProbeData.EnvironmentVariable + ", else ./data).",
        Required = required,
    };

    private static Command CreateList(CliContext context)
    {
        var to = ToOption(required: false);
        var command = new Command("list", "List the data sets: source, licence, size, which probe reads them, and whether the data folder holds them.") { to };
        command.SetAction(parse => context.Guard(() =>
        {
            string folder = parse.GetValue(to)?.FullName ?? ProbeData.ResolveDataFolder(null);
            foreach (var dataset in DatasetCatalog.All)
            {
                string state = DatasetDownloader.IsInstalled(dataset, folder) ? "installed" : "not installed";
                context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{dataset.Name,-12} {dataset.Size / 1e6,5:0.0} MB  {dataset.Files.Count,3} files  {state,-13}  {dataset.License,-16}  {dataset.Title}"));
                context.Output.WriteLine($"{string.Empty,-12} probe {dataset.Probe}; source github.com/{dataset.Repository} @ {dataset.Commit[..8]}");
            }

            context.Output.WriteLine($"data folder: {folder}");
            return 0;
        }));
        return command;
    }

    private static Command CreateDownload(CliContext context)
    {
        var names = new Argument<string[]>("name") { Description = "Data sets to fetch (default: all): " + string.Join(", ", DatasetCatalog.All.Select(d => d.Name)) + ".", Arity = ArgumentArity.ZeroOrMore };
        var to = ToOption(required: true);
        var mirror = new Option<string?>("--mirror")
        {
            Description = "Fetch from a mirror serving {mirror}/{owner}/{repo}/{commit}/{path} instead of " + DatasetCatalog.DefaultBaseUrl + " (checksums are checked the same way).",
        };
        var command = new Command("download", "Fetch data sets from their public sources (pinned commits), verify every file's SHA-256 and unpack them in the layout the probes read. Re-running resumes an interrupted download and skips verified files.")
        {
            names, to, mirror,
        };
        command.SetAction(parse => context.Guard(() =>
        {
            var datasets = DatasetCatalog.Select(parse.GetValue(names) ?? []);
            string folder = parse.GetValue(to)!.FullName;
            var baseUrl = parse.GetValue(mirror) is { } text
                ? Uri.TryCreate(text.EndsWith('/') ? text : text + "/", UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
                    ? uri
                    : throw new Core.ExpertScopeException($"--mirror '{text}': expected an http(s) address.")
                : DatasetCatalog.DefaultBaseUrl;
            using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(10) };
            var downloader = new DatasetDownloader(http, baseUrl);
            var progress = new TextProgressSink(context.Error);
            foreach (var dataset in datasets)
            {
                var summary = downloader.DownloadAsync(dataset, folder, progress).GetAwaiter().GetResult();
                context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{dataset.Name}: {summary.Fetched} files fetched, {summary.AlreadyPresent} already there; all {dataset.Files.Count} match their pinned SHA-256 ({dataset.License}; cite: {dataset.Title})."));
            }

            context.Output.WriteLine($"data folder: {folder} (use --data-dir {folder}, or set {ProbeData.EnvironmentVariable})");
            return 0;
        }));
        return command;
    }
}
