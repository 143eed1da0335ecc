using System.Diagnostics;
using ExpertScope.Experiments.Runs;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>
/// A run killed (SIGKILL) between writing an <see cref="AtomicFile"/> temporary and renaming it leaves
/// <c>NAME.tmp-PID</c> behind; the rerun in the same folder removes it, and never a temporary of a process still running.
/// </summary>
public sealed class AbandonedTemporaryFileTests
{
    [Fact]
    public void ReopeningARunFolder_RemovesTemporariesOfEndedProcesses_AndKeepsThoseOfRunningOnes()
    {
        using var temp = new TempDirectory();
        int ended = EndedProcessId();
        File.WriteAllText(temp.File($"results.json.tmp-{ended}"), "{\"half\": ");
        File.WriteAllText(temp.File($"pairs.csv.tmp-{Environment.ProcessId}"), "being written");
        File.WriteAllText(temp.File("notes.tmp-draft"), "a user's file");

        using (RunFolder.OpenOrCreate(temp.Path, new RunManifest { Kind = "probe word-sense", Seed = 1 }))
        {
        }

        Assert.False(File.Exists(temp.File($"results.json.tmp-{ended}")));
        Assert.True(File.Exists(temp.File($"pairs.csv.tmp-{Environment.ProcessId}")), "this process is running: its temporary may be mid-write");
        Assert.True(File.Exists(temp.File("notes.tmp-draft")), "not a temporary AtomicFile names");
        Assert.Empty(AtomicFile.RemoveAbandoned(temp.Path));
    }

    [Fact]
    public async Task ReopeningATrace_RemovesOnlyItsOwnAbandonedTemporaries()
    {
        using var temp = new TempDirectory();
        int ended = EndedProcessId();
        string trace = temp.File("trace.parquet");
        File.WriteAllText(temp.File($"trace.parquet.tmp-{ended}"), "half");
        File.WriteAllText(temp.File($"trace.parquet.commit.tmp-{ended}"), "half");
        File.WriteAllText(temp.File($"other.json.tmp-{ended}"), "the user's folder: not ours to clean");

        await using (await Storage.ParquetTraceWriter.OpenAsync(trace, StorageTraceTests.Metadata))
        {
        }

        Assert.False(File.Exists(temp.File($"trace.parquet.tmp-{ended}")));
        Assert.False(File.Exists(temp.File($"trace.parquet.commit.tmp-{ended}")));
        Assert.True(File.Exists(temp.File($"other.json.tmp-{ended}")), "a trace writer cleans only the temporaries of its own files");
    }

    private static int EndedProcessId()
    {
        using var process = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        process.WaitForExit();
        return process.Id;
    }
}
