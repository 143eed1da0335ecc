using System.Text.Json;
using ExpertScope.Experiments.Storage;

namespace ExpertScope.Cli.Tests;

/// <summary>Every run folder records how it was started: the whole command line and the ExpertScope version.</summary>
public sealed class RunRecordTests(ReportGallery gallery) : IClassFixture<ReportGallery>
{
    [Theory]
    [MemberData(nameof(RandomWeightsReportTests.Verbs), MemberType = typeof(RandomWeightsReportTests))]
    public void ManifestHoldsTheArgumentsAndTheVersion(string verb)
    {
        var report = gallery.Reports.Single(r => r.Verb == verb);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(report.Folder, "manifest.json")));
        string commandLine = json.RootElement.GetProperty("command_line").GetString()!;
        Assert.StartsWith("expertscope " + verb, commandLine, StringComparison.Ordinal);
        Assert.Contains("--out " + report.Folder, commandLine, StringComparison.Ordinal);
        Assert.Equal(TraceMetadata.CurrentVersion, json.RootElement.GetProperty("expertscope_version").GetString());
    }

    [Fact]
    public async Task ProbeTraceMetadataHoldsTheCommandLine()
    {
        var report = gallery.Reports.Single(r => r.Verb == "probe word-sense");
        var metadata = await RoutingTraceReader.ReadMetadataAsync(Path.Combine(report.Folder, "trace.parquet"));
        Assert.StartsWith("expertscope probe word-sense --model ", metadata.CommandLine, StringComparison.Ordinal);
        Assert.Contains("--limit 12", metadata.CommandLine, StringComparison.Ordinal);
    }
}
