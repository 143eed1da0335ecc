using System.Diagnostics;
using System.Text.Json;

namespace ExpertScope.Cli.Tests;

/// <summary>Finds headless Chromium (Debian's <c>chromium</c> package).</summary>
internal static class Chromium
{
    public static string? Path { get; } = new[] { "chromium", "chromium-browser", "google-chrome" }
        .SelectMany(name => (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(System.IO.Path.PathSeparator).Select(dir => System.IO.Path.Combine(dir, name)))
        .FirstOrDefault(File.Exists);

    /// <summary>Runs headless Chromium on <paramref name="page"/> with <paramref name="arguments"/>; returns stdout and stderr.</summary>
    public static (int Code, string Output, string Error) Run(string page, string profile, params string[] arguments)
    {
        var start = new ProcessStartInfo(Path!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in new[]
        {
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars", "--no-first-run",
            "--user-data-dir=" + profile, "--virtual-time-budget=5000",
        }.Concat(arguments).Append(new Uri(page).AbsoluteUri))
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(60_000))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"chromium did not finish on {page} within 60 s");
        }

        return (process.ExitCode, output.Result, error.Result);
    }
}

/// <summary>A test that needs headless Chromium; skipped, saying why, where it is not installed.</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (Chromium.Path is null)
        {
            Skip = "headless Chromium is not installed (Debian: apt-get install --no-install-recommends chromium; .ci/run installs it), so report pages cannot be rendered here";
        }
    }
}

/// <summary>
/// Every report type rendered by headless Chromium, each in a 1280×900 frame (one browser run for the checks, one for
/// the screenshot, to keep the test short): the page runs no failing script, the random-weights banner lies inside
/// its first screen, and nothing is wider than the window. The screenshot shows every report's first screen.
/// </summary>
public sealed class ReportScreenshotTests(ReportGallery gallery) : IClassFixture<ReportGallery>
{
    private const int FrameWidth = 1280, FrameHeight = 900;

    // Injected into a copy of each page (the reports themselves carry no script): records script errors and, once
    // loaded, where the banner is.
    private const string Probe = """
        <script>
        window.__errors = [];
        window.addEventListener('error', e => window.__errors.push(String(e.message)));
        window.addEventListener('load', () => {
          const banner = document.getElementById('random-weights');
          const box = banner ? banner.getBoundingClientRect() : null;
          document.documentElement.setAttribute('data-check', JSON.stringify({
            errors: window.__errors, bannerTop: box ? box.top : -1, bannerBottom: box ? box.bottom : -1,
            bannerHeight: box ? box.height : 0, viewportHeight: innerHeight, viewportWidth: innerWidth,
            pageWidth: document.documentElement.scrollWidth }));
        });
        </script>
        """;

    // The frame page collects every frame's result into one attribute that --dump-dom prints.
    private const string Collect = """
        <script>
        window.addEventListener('load', () => {
          const results = [...document.querySelectorAll('iframe')].map(f => {
            try { return f.contentDocument.documentElement.getAttribute('data-check'); } catch (e) { return null; }
          });
          document.documentElement.setAttribute('data-checks', JSON.stringify(results));
        });
        </script>
        """;

    private string FramePage(string name, IEnumerable<string> pages, string script)
    {
        string path = gallery.Temp.File(name);
        string frames = string.Concat(pages.Select(page => $"<iframe src=\"{new Uri(page).AbsoluteUri}\"></iframe>\n"));
        File.WriteAllText(path, $"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>body{{margin:0}}iframe{{display:block;width:{FrameWidth}px;height:{FrameHeight}px;border:0}}</style></head><body>\n{frames}{script}</body></html>\n");
        return path;
    }

    [ChromiumFact]
    public void EveryReportTypeRenders_WithTheBannerInTheFirstScreen()
    {
        var reports = gallery.Reports;
        var checkedPages = new List<string>();
        foreach (var report in reports)
        {
            string html = File.ReadAllText(report.ReportPath);
            Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
            string copy = Path.Combine(report.Folder, "report.check.html");
            File.WriteAllText(copy, html.Replace("<head>", "<head>\n" + Probe, StringComparison.Ordinal));
            checkedPages.Add(copy);
        }

        var (code, dom, error) = Chromium.Run(FramePage("check.html", checkedPages, Collect), gallery.Temp.File("chromium-a"),
            $"--window-size={FrameWidth},{FrameHeight}", "--allow-file-access-from-files", "--dump-dom");
        int at = dom.IndexOf("data-checks=\"", StringComparison.Ordinal);
        Assert.True(code == 0 && at >= 0, $"chromium did not load the pages (exit {code}): {error}");
        string json = System.Net.WebUtility.HtmlDecode(dom[(at + 13)..dom.IndexOf('"', at + 13)]);
        using var results = JsonDocument.Parse(json);
        var failures = new List<string>();
        foreach (var (report, result) in reports.Zip(results.RootElement.EnumerateArray()))
        {
            if (result.ValueKind != JsonValueKind.String)
            {
                failures.Add($"{report.Verb}: the page did not finish loading");
                continue;
            }

            using var check = JsonDocument.Parse(result.GetString()!);
            var root = check.RootElement;
            if (root.GetProperty("errors").GetArrayLength() > 0)
            {
                failures.Add($"{report.Verb}: script errors {root.GetProperty("errors")}");
            }

            double top = root.GetProperty("bannerTop").GetDouble(), bottom = root.GetProperty("bannerBottom").GetDouble();
            if (top < 0 || bottom > root.GetProperty("viewportHeight").GetDouble() || root.GetProperty("bannerHeight").GetDouble() < 10)
            {
                failures.Add($"{report.Verb}: banner not in the first screen (top {top}, bottom {bottom})");
            }

            if (root.GetProperty("pageWidth").GetDouble() > root.GetProperty("viewportWidth").GetDouble())
            {
                failures.Add($"{report.Verb}: page wider than the window ({root.GetProperty("pageWidth")} px)");
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));

        // The screenshot: every report's first screen, one under the other.
        string png = gallery.Temp.File("reports.png");
        (code, _, error) = Chromium.Run(FramePage("screens.html", reports.Select(r => r.ReportPath), string.Empty), gallery.Temp.File("chromium-b"),
            $"--window-size={FrameWidth},{FrameHeight * reports.Count}", "--screenshot=" + png);
        var bytes = File.Exists(png) ? File.ReadAllBytes(png) : [];
        Assert.True(code == 0 && bytes.Length > 1000, $"no screenshot (exit {code}): {error}");
        Assert.True(bytes.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }), "the screenshot is not a PNG");
        // PNG header: width and height, big-endian, at bytes 16..23.
        Assert.Equal(FrameWidth, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16, 4)));
        Assert.Equal(FrameHeight * reports.Count, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20, 4)));
    }
}
