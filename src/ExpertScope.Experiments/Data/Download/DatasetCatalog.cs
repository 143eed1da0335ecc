using System.Text.Json;
using ExpertScope.Core;

namespace ExpertScope.Experiments.Data.Download;

/// <summary>One file of a data set as the probes read it, with where it comes from and its pinned SHA-256.</summary>
/// <param name="Path">Path below the data folder, with '/' separators (<c>wic/dev/dev.data.txt</c>).</param>
/// <param name="Source">Path in the source repository at the pinned commit: the file itself, or the zip archive holding it.</param>
/// <param name="Member">The file's name inside the <see cref="Source"/> zip, or null when the source is the file itself.</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the file's bytes.</param>
/// <param name="Size">The file's length in bytes.</param>
public sealed record DatasetFile(string Path, string Source, string? Member, string Sha256, long Size);

/// <summary>An evaluation data set: its public source (a GitHub repository pinned to a commit), licence and files.</summary>
/// <param name="Name">The name <c>expertscope data download</c> takes (<c>wic</c>).</param>
/// <param name="Title">What it is, with its paper.</param>
/// <param name="License">Its licence.</param>
/// <param name="Repository">The GitHub repository (<c>owner/name</c>).</param>
/// <param name="Commit">The pinned commit.</param>
/// <param name="Probe">The probe and <c>--dataset</c> values that read it.</param>
/// <param name="Files">Its files.</param>
public sealed record Dataset(string Name, string Title, string License, string Repository, string Commit, string Probe, IReadOnlyList<DatasetFile> Files)
{
    /// <summary>Bytes of all files.</summary>
    public long Size => Files.Sum(f => f.Size);

    /// <summary>The web address of <paramref name="sourcePath"/> at the pinned commit below <paramref name="baseUrl"/>.</summary>
    public Uri UrlOf(string sourcePath, Uri baseUrl)
    {
        ArgumentNullException.ThrowIfNull(baseUrl);
        string root = baseUrl.AbsoluteUri.TrimEnd('/');
        return new Uri($"{root}/{Repository}/{Commit}/{sourcePath}");
    }
}

/// <summary>
/// The data sets ExpertScope can fetch: WiC, CoarseWSD-20, MCL-WiC and SWORDS from the public repositories named in
/// the data README, each file pinned by SHA-256 (computed from the copies the tests use, which are byte-identical to
/// the sources).
/// </summary>
public static class DatasetCatalog
{
    /// <summary>Where files are fetched from by default: GitHub's raw file server (<c>{base}/{owner}/{repo}/{commit}/{path}</c>).</summary>
    public static Uri DefaultBaseUrl { get; } = new("https://raw.githubusercontent.com/");

    private static readonly Lazy<IReadOnlyList<Dataset>> Catalog = new(Load);

    /// <summary>Every data set, in catalog order.</summary>
    public static IReadOnlyList<Dataset> All => Catalog.Value;

    /// <summary>The data sets named (all of them when none is), in the order given.</summary>
    /// <exception cref="ExpertScopeException">A name that is not in the catalog.</exception>
    public static IReadOnlyList<Dataset> Select(IReadOnlyCollection<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        if (names.Count == 0)
        {
            return All;
        }

        return [.. names.Distinct(StringComparer.OrdinalIgnoreCase).Select(name => All.FirstOrDefault(d => d.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
            ?? throw new ExpertScopeException($"unknown data set '{name}'; known: {string.Join(", ", All.Select(d => d.Name))}."))];
    }

    private static IReadOnlyList<Dataset> Load()
    {
        using var stream = typeof(DatasetCatalog).Assembly.GetManifestResourceStream("ExpertScope.Experiments.Data.Download.catalog.json")
            ?? throw new InvalidOperationException("The data catalog resource is missing from the assembly.");
        using var json = JsonDocument.Parse(stream);
        return [.. json.RootElement.GetProperty("datasets").EnumerateArray().Select(d => new Dataset(
            d.GetProperty("name").GetString()!,
            d.GetProperty("title").GetString()!,
            d.GetProperty("license").GetString()!,
            d.GetProperty("repository").GetString()!,
            d.GetProperty("commit").GetString()!,
            d.GetProperty("probe").GetString()!,
            [.. d.GetProperty("files").EnumerateArray().Select(f => new DatasetFile(
                f.GetProperty("path").GetString()!,
                f.GetProperty("source").GetString()!,
                f.TryGetProperty("member", out var member) ? member.GetString() : null,
                f.GetProperty("sha256").GetString()!,
                f.GetProperty("size").GetInt64()))]))];
    }
}
