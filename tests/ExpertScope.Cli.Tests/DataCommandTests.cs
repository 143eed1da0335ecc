using System.Collections.Concurrent;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using ExpertScope.Experiments.Data.Download;
using ExpertScope.Experiments.Probes;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary>
/// A mirror of the data sets' sources on 127.0.0.1 (no network): every catalog file served from the copies in
/// ../shared/data at {owner}/{repo}/{commit}/{path}, archives built as zips. Honours range requests; can damage or
/// cut off a file.
/// </summary>
internal sealed class LocalMirror : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Dictionary<string, byte[]> _files = new(StringComparer.Ordinal);
    private readonly Task _serving;

    public LocalMirror()
    {
        foreach (var dataset in DatasetCatalog.All)
        {
            foreach (var source in dataset.Files.GroupBy(f => f.Source))
            {
                string key = $"/{dataset.Repository}/{dataset.Commit}/{source.Key}";
                if (source.First().Member is null)
                {
                    _files[key] = File.ReadAllBytes(GoldenData.DataPath(source.First().Path.Split('/')));
                    continue;
                }

                using var buffer = new MemoryStream();
                using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
                {
                    foreach (var file in source)
                    {
                        var entry = zip.CreateEntry("MCL-WiC/" + file.Path.Split('/')[^2] + "/" + file.Member);
                        using var stream = entry.Open();
                        stream.Write(File.ReadAllBytes(GoldenData.DataPath(file.Path.Split('/'))));
                    }
                }

                _files[key] = buffer.ToArray();
            }
        }

        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            Port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _serving = Task.Run(ServeAsync);
    }

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}/";

    /// <summary>Paths (below the mirror) whose bytes are altered.</summary>
    public ConcurrentDictionary<string, bool> Damaged { get; } = new();

    /// <summary>Paths whose next full response is cut off half-way (the connection dropped).</summary>
    public ConcurrentDictionary<string, bool> CutOffOnce { get; } = new();

    /// <summary>Range headers received, by path.</summary>
    public ConcurrentQueue<(string Path, string? Range)> Requests { get; } = new();

    public static string PathOf(Dataset dataset, DatasetFile file) => $"/{dataset.Repository}/{dataset.Commit}/{file.Source}";

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            string path = context.Request.Url!.AbsolutePath;
            string? range = context.Request.Headers["Range"];
            Requests.Enqueue((path, range));
            var response = context.Response;
            if (!_files.TryGetValue(path, out var bytes))
            {
                response.StatusCode = 404;
                response.Close();
                continue;
            }

            if (Damaged.ContainsKey(path))
            {
                bytes = [.. bytes];
                bytes[bytes.Length / 2] ^= 0x20;
            }

            long start = range is not null && range.StartsWith("bytes=", StringComparison.Ordinal) ? long.Parse(range[6..].TrimEnd('-'), System.Globalization.CultureInfo.InvariantCulture) : 0;
            if (start > 0)
            {
                response.StatusCode = 206;
                response.AddHeader("Content-Range", $"bytes {start}-{bytes.Length - 1}/{bytes.Length}");
            }

            response.ContentLength64 = bytes.Length - start;
            try
            {
                if (start == 0 && CutOffOnce.TryRemove(path, out _))
                {
                    await response.OutputStream.WriteAsync(bytes.AsMemory(0, bytes.Length / 2));
                    await response.OutputStream.FlushAsync();
                    response.Abort();
                    continue;
                }

                await response.OutputStream.WriteAsync(bytes.AsMemory((int)start));
                response.Close();
            }
            catch (HttpListenerException)
            {
                // The client went away.
            }
        }
    }

    public void Dispose()
    {
        if (!_listener.IsListening)
        {
            return;
        }

        _listener.Stop();
        _listener.Close();
        _serving.Wait(TimeSpan.FromSeconds(5));
    }
}

public sealed class DataCommandTests
{
    /// <summary>The error line among stderr's progress lines: exactly one, naming what went wrong.</summary>
    private static void AssertOneErrorLine(string error, params string[] expected) =>
        EngineVerbs.AssertOneErrorLine(string.Join('\n', error.Split('\n').Where(l => l.StartsWith("error:", StringComparison.Ordinal))), expected);

    [Fact]
    public void Download_FetchesVerifiesAndUnpacksEveryDataSet_InTheProbesLayout()
    {
        using var mirror = new LocalMirror();
        using var temp = new TempDirectory();
        string data = temp.File("data");
        var (code, output, error) = VerbRunner.Run("data", "download", "--to", data, "--mirror", mirror.Url);
        Assert.True(code == 0, error);
        foreach (var dataset in DatasetCatalog.All)
        {
            Assert.Contains($"{dataset.Name}: {dataset.Files.Count} files fetched, 0 already there", output, StringComparison.Ordinal);
            foreach (var file in dataset.Files)
            {
                Assert.Equal(File.ReadAllBytes(GoldenData.DataPath(file.Path.Split('/'))), File.ReadAllBytes(Path.Combine([data, .. file.Path.Split('/')])));
            }
        }

        Assert.Empty(Directory.EnumerateFiles(data, "*.part", SearchOption.AllDirectories));
        Assert.Empty(Directory.EnumerateFiles(data, "*.zip", SearchOption.AllDirectories));
        // The probes read the folder as it is.
        var wic = ProbeData.Load(new ProbeSettings { Kind = ProbeKind.WordSense, Dataset = "wic:dev", DataFolder = data });
        Assert.Equal(638, wic.Available);

        // A second run fetches nothing; list says installed.
        (code, output, error) = VerbRunner.Run("data", "download", "wic", "--to", data, "--mirror", mirror.Url);
        Assert.True(code == 0, error);
        Assert.Contains("wic: 0 files fetched, 7 already there", output, StringComparison.Ordinal);
        (code, output, _) = VerbRunner.Run("data", "list", "--to", data);
        Assert.Equal(0, code);
        Assert.Equal(DatasetCatalog.All.Count, output.Split('\n').Count(l => l.Contains(" installed ", StringComparison.Ordinal)));
    }

    [Fact]
    public void ChecksumMismatch_IsOneLine_AndWritesNothing()
    {
        using var mirror = new LocalMirror();
        using var temp = new TempDirectory();
        var wic = DatasetCatalog.All.Single(d => d.Name == "wic");
        var gold = wic.Files.Single(f => f.Path == "wic/dev/dev.gold.txt");
        mirror.Damaged[LocalMirror.PathOf(wic, gold)] = true;
        string data = temp.File("data");
        var (code, _, error) = VerbRunner.Run("data", "download", "wic", "--to", data, "--mirror", mirror.Url);
        Assert.Equal(1, code);
        AssertOneErrorLine(error, "checksum mismatch for wic/dev/dev.gold.txt", gold.Sha256, "was not written");
        Assert.False(File.Exists(Path.Combine(data, "wic", "dev", "dev.gold.txt")));
        Assert.False(File.Exists(Path.Combine(data, "wic", "dev", "dev.gold.txt.part")));
    }

    [Fact]
    public void InterruptedDownload_IsKept_AndTheNextRunResumesIt()
    {
        using var mirror = new LocalMirror();
        using var temp = new TempDirectory();
        var swords = DatasetCatalog.All.Single(d => d.Name == "swords");
        var dev = swords.Files.Single(f => f.Path.EndsWith("_dev.json.gz", StringComparison.Ordinal));
        string path = LocalMirror.PathOf(swords, dev);
        mirror.CutOffOnce[path] = true;
        string data = temp.File("data"), target = Path.Combine(data, "swords", "swords-v1.1_dev.json.gz");

        var (code, _, error) = VerbRunner.Run("data", "download", "swords", "--to", data, "--mirror", mirror.Url);
        Assert.Equal(1, code);
        AssertOneErrorLine(error, "download interrupted after", "re-run the same command to resume");
        Assert.False(File.Exists(target));
        long kept = new FileInfo(target + ".part").Length;
        Assert.InRange(kept, 1, dev.Size - 1);

        (code, var output, error) = VerbRunner.Run("data", "download", "swords", "--to", data, "--mirror", mirror.Url);
        Assert.True(code == 0, error);
        Assert.Contains("swords: 2 files fetched", output, StringComparison.Ordinal);
        Assert.Contains(mirror.Requests, r => r.Path == path && r.Range == $"bytes={kept}-");
        Assert.Equal(File.ReadAllBytes(GoldenData.DataPath("swords", "swords-v1.1_dev.json.gz")), File.ReadAllBytes(target));
    }

    [Fact]
    public void UnknownNamesAndUnreachableSourcesAreOneLine()
    {
        using var temp = new TempDirectory();
        var (code, _, error) = VerbRunner.Run("data", "download", "wikipedia", "--to", temp.File("d"));
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "unknown data set 'wikipedia'", "wic, coarsewsd20, mcl-wic, swords");

        using var mirror = new LocalMirror();
        int port = mirror.Port;
        mirror.Dispose();
        (code, _, error) = VerbRunner.Run("data", "download", "wic", "--to", temp.File("d"), "--mirror", $"http://127.0.0.1:{port}/");
        Assert.Equal(1, code);
        AssertOneErrorLine(error, "cannot connect");
    }
}
