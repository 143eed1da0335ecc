using System.Globalization;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using ExpertScope.Core;
using ExpertScope.Experiments.Runs;

namespace ExpertScope.Experiments.Data.Download;

/// <summary>What one data set's download did.</summary>
/// <param name="Dataset">The data set.</param>
/// <param name="Fetched">Files fetched and verified now.</param>
/// <param name="AlreadyPresent">Files that were already there with the pinned checksum.</param>
public sealed record DownloadSummary(Dataset Dataset, int Fetched, int AlreadyPresent);

/// <summary>
/// Fetches data sets into a data folder in the layout the probes read (<c>DIR/wic/dev/dev.data.txt</c>, ...). Every
/// file is checked against its pinned SHA-256 before it takes its place, so a folder never holds a file that differs
/// from the source. A download goes to <c>NAME.part</c> first; an interrupted one is kept and resumed (HTTP range
/// request) by the next run. Files already present with the right checksum are not fetched again.
/// </summary>
public sealed class DatasetDownloader
{
    private const string PartExtension = ".part";
    private readonly HttpClient _http;
    private readonly Uri _baseUrl;

    /// <summary>Creates the downloader.</summary>
    /// <param name="http">The HTTP client (its timeout applies to each request).</param>
    /// <param name="baseUrl">Where repositories are served as <c>{base}/{owner}/{repo}/{commit}/{path}</c>; <see cref="DatasetCatalog.DefaultBaseUrl"/> or a mirror.</param>
    public DatasetDownloader(HttpClient http, Uri baseUrl)
    {
        _http = http ?? throw new ArgumentNullException(nameof(http));
        _baseUrl = baseUrl ?? throw new ArgumentNullException(nameof(baseUrl));
    }

    /// <summary>True when every file of <paramref name="dataset"/> is in <paramref name="dataFolder"/> with its pinned checksum.</summary>
    public static bool IsInstalled(Dataset dataset, string dataFolder)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        return dataset.Files.All(f => HasChecksum(TargetOf(dataFolder, f), f));
    }

    /// <summary>Fetches, verifies and unpacks <paramref name="dataset"/> into <paramref name="dataFolder"/>.</summary>
    /// <exception cref="ExpertScopeException">An HTTP error, an interrupted download (kept for resuming), a checksum mismatch (nothing written) or a damaged archive.</exception>
    public async Task<DownloadSummary> DownloadAsync(Dataset dataset, string dataFolder, IProgressSink? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentException.ThrowIfNullOrEmpty(dataFolder);
        progress ??= NullProgressSink.Instance;
        int fetched = 0, present = 0;
        var sources = dataset.Files.GroupBy(f => f.Source).ToList();
        // Completed only on success: a failed download must not print "done".
        var task = progress.StartTask("downloading " + dataset.Name, sources.Count, unit: "files");
        foreach (var source in sources)
        {
            var files = source.ToList();
            var missing = files.Where(f => !HasChecksum(TargetOf(dataFolder, f), f)).ToList();
            present += files.Count - missing.Count;
            if (missing.Count > 0)
            {
                var url = dataset.UrlOf(source.Key, _baseUrl);
                if (files[0].Member is null)
                {
                    await FetchFileAsync(url, missing[0], TargetOf(dataFolder, missing[0]), cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    string archive = Path.Combine(dataFolder, ".downloads", dataset.Name, Path.GetFileName(source.Key));
                    await FetchAsync(url, archive + PartExtension, expectedLength: null, cancellationToken).ConfigureAwait(false);
                    File.Move(archive + PartExtension, archive, overwrite: true);
                    Unpack(url, archive, missing, dataFolder);
                    File.Delete(archive);
                }

                fetched += missing.Count;
            }

            task.Advance();
        }

        task.Complete();
        return new DownloadSummary(dataset, fetched, present);
    }

    private static string TargetOf(string dataFolder, DatasetFile file) => Path.Combine([dataFolder, .. file.Path.Split('/')]);

    private static bool HasChecksum(string path, DatasetFile file) =>
        File.Exists(path) && new FileInfo(path).Length == file.Size && Sha256Of(path) == file.Sha256;

    private static string Sha256Of(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private async Task FetchFileAsync(Uri url, DatasetFile file, string target, CancellationToken cancellationToken)
    {
        string part = target + PartExtension;
        await FetchAsync(url, part, file.Size, cancellationToken).ConfigureAwait(false);
        Verify(url, part, file);
        File.Move(part, target, overwrite: true);
    }

    /// <summary>Checks a fetched or unpacked file; a mismatch deletes it and says what differs.</summary>
    private static void Verify(Uri url, string part, DatasetFile file)
    {
        string actual = Sha256Of(part);
        if (actual != file.Sha256)
        {
            long length = new FileInfo(part).Length;
            File.Delete(part);
            throw new ExpertScopeException(string.Create(CultureInfo.InvariantCulture,
                $"{url}: checksum mismatch for {file.Path}: expected SHA-256 {file.Sha256} ({file.Size} bytes), got {actual} ({length} bytes); the file was not written. The source changed or the download was damaged."));
        }
    }

    /// <summary>Downloads <paramref name="url"/> into <paramref name="part"/>, resuming what an earlier attempt left there.</summary>
    private async Task FetchAsync(Uri url, string part, long? expectedLength, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(part)!);
        long have = File.Exists(part) ? new FileInfo(part).Length : 0;
        if (expectedLength is { } full && have == full)
        {
            return; // an earlier run fetched every byte; the checksum decides
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (have > 0)
        {
            request.Headers.Range = new RangeHeaderValue(have, null);
        }

        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new ExpertScopeException($"{url}: cannot connect ({e.Message}).", e);
        }

        using (response)
        {
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0)
            {
                return; // the part is already whole
            }

            if (!response.IsSuccessStatusCode)
            {
                throw new ExpertScopeException(string.Create(CultureInfo.InvariantCulture, $"{url}: HTTP {(int)response.StatusCode} {response.ReasonPhrase}."));
            }

            bool append = response.StatusCode == HttpStatusCode.PartialContent;
            long total = (append ? have : 0) + (response.Content.Headers.ContentLength ?? 0);
            long written = append ? have : 0;
            await using var output = new FileStream(part, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None);
            try
            {
                await using var input = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                var buffer = new byte[81920];
                int read;
                while ((read = await input.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                    written += read;
                }
            }
            catch (Exception e) when (e is IOException or HttpRequestException)
            {
                await output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                throw new ExpertScopeException(string.Create(CultureInfo.InvariantCulture,
                    $"{url}: download interrupted after {written} of {total} bytes ({e.Message}); the part is kept in {part}: re-run the same command to resume."), e);
            }

            if (response.Content.Headers.ContentLength is not null && written < total)
            {
                throw new ExpertScopeException(string.Create(CultureInfo.InvariantCulture,
                    $"{url}: download interrupted after {written} of {total} bytes; the part is kept in {part}: re-run the same command to resume."));
            }
        }
    }

    /// <summary>Extracts the files of one archive, each verified before it takes its place.</summary>
    private static void Unpack(Uri url, string archive, IReadOnlyList<DatasetFile> files, string dataFolder)
    {
        try
        {
            using var zip = ZipFile.OpenRead(archive);
            foreach (var file in files)
            {
                var entries = zip.Entries.Where(e => e.Name == file.Member).ToList();
                if (entries.Count != 1)
                {
                    throw new ExpertScopeException($"{url}: the archive holds {entries.Count} entries named '{file.Member}' (expected one).");
                }

                string target = TargetOf(dataFolder, file);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                entries[0].ExtractToFile(target + PartExtension, overwrite: true);
                Verify(url, target + PartExtension, file);
                File.Move(target + PartExtension, target, overwrite: true);
            }
        }
        catch (InvalidDataException e)
        {
            File.Delete(archive);
            throw new ExpertScopeException($"{url}: the archive is damaged ({e.Message}); it was deleted, re-run to fetch it again.", e);
        }
    }
}
