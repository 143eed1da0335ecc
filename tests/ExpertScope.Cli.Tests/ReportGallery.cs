using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary>One verb's outputs: its folder, its results/summary JSON and its stdout.</summary>
internal sealed record GalleryReport(string Verb, string Folder, string JsonFile, string Output)
{
    public string ReportPath => Path.Combine(Folder, "report.html");

    public string JsonPath => Path.Combine(Folder, JsonFile);
}

/// <summary>
/// Runs every verb that writes a report on the tiny random-weight model (in-process, one thread, small inputs), so
/// report tests (banner, JSON field, screenshots) check every report type. Built once per test class.
/// </summary>
public sealed class ReportGallery : IDisposable
{
    private readonly TempDirectory _temp = new();

    public ReportGallery()
    {
        string model = VerbRunner.TinyModel(_temp);
        string text = _temp.File("text.txt");
        File.WriteAllText(text, "The bank by the river bank was closed. She sat on the bank and watched the water flow past the old mill.");
        File.WriteAllLines(_temp.File("code.txt"), ["int x = 1; return x + 2;", "", "for (i = 0; i < n; i++) sum += a[i];", "", "if (a > b) { swap(a, b); }"]);
        File.WriteAllLines(_temp.File("prose.txt"), ["The sun rose over the hills.", "", "A cat slept by the warm fire.", "", "Rain fell on the quiet town."]);
        var reports = new List<GalleryReport>();
        void Verb(string verb, string folder, string json, params string[] args)
        {
            var (code, output, error) = VerbRunner.Run(args);
            Assert.True(code == 0, $"{verb}: exit {code}: {error}");
            reports.Add(new GalleryReport(verb, _temp.File(folder), json, output));
        }

        Verb("analyze domains", "domains", "results.json", "analyze", "domains", "-m", model, "-t", "1", "--corpus", "code=" + _temp.File("code.txt"),
            "--corpus", "prose=" + _temp.File("prose.txt"), "--tokens-per-domain", "40", "--out", _temp.File("domains"));
        Verb("analyze single-expert", "single", "results.json", "analyze", "single-expert", "-m", model, "-t", "1", "--input", text, "--out", _temp.File("single"));
        Verb("analyze lens", "lens", "results.json", "analyze", "lens", "-m", model, "-t", "1", "--input", text, "--out", _temp.File("lens"));
        Verb("analyze token-id", "token-id", "results.json", "analyze", "token-id", "-m", model, "-t", "1", "--input", text, "--min-occurrences", "2", "--out", _temp.File("token-id"));
        Verb("super-experts", "super", "summary.json", "super-experts", "--model", model, "--corpus", _temp.File("neutral.txt"), "--seeds", "1", "--threads", "1",
            "--out", _temp.File("super"));
        Verb("steer discover", "discover", "ranked.json", "steer", "discover", "--model", model, "--positive", _temp.File("positive.txt"),
            "--negative", _temp.File("negative.txt"), "--threads", "1", "--out", _temp.File("discover"));
        Verb("steer evaluate", "evaluate", "summary.json", "steer", "evaluate", "--model", model, "--experts", "1:0", "--mode", "disable",
            "--prompts", _temp.File("positive.txt"), "--neutral", _temp.File("neutral.txt"), "--seeds", "1", "--max-new-tokens", "2", "--threads", "1",
            "--out", _temp.File("evaluate"));
        Verb("probe word-sense", "probe", "results.json", "probe", "word-sense", "--model", model, "--dataset", "wic:dev", "--data-dir", GoldenData.DataPath(),
            "--limit", "12", "--bootstrap", "100", "--threads", "1", "--out", _temp.File("probe"));
        Reports = reports;
        ModelPath = model;
        Temp = _temp;
    }

    internal IReadOnlyList<GalleryReport> Reports { get; }

    internal string ModelPath { get; }

    internal TempDirectory Temp { get; }

    public void Dispose() => _temp.Dispose();
}
