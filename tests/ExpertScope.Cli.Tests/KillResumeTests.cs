using System.Diagnostics;
using System.Text;
using ExpertScope.Experiments.Runs;
using ExpertScope.Experiments.Storage;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary>
/// A run killed with SIGKILL (no chance to clean up, as when a machine is reclaimed) and started again with the same
/// command ends with the same result as a run never interrupted: the built CLI runs as a child process, is killed once
/// its journal (or trace commit record) shows finished work and before it has finished, and the same command is then
/// run to the end. Nothing is synchronised by sleeping: the files are polled, with a bound.
/// </summary>
public sealed class KillResumeTests
{
    private static readonly string ModelPath = GoldenData.GoldenPath("models", "olmoe", "model.gguf");

    /// <summary>Longest wait for the child to show finished work (a loaded CI machine is slow; the usual wait is about a second).</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    private static string[] ProbeArguments(string folder) =>
        ["probe", "word-sense", "--model", ModelPath, "--dataset", "wic:dev", "--data-dir", GoldenData.DataPath(),
         "--limit", "40", "--seed", "5", "--bootstrap", "100", "--out", folder];

    [Fact]
    public void ProbeKilledMidRun_ResumesToTheUninterruptedResult() =>
        ProbeKilledAndResumed(ProbeArguments);

    [Fact]
    public async Task ServerBackedProbeKilledMidRun_ResumesToTheUninterruptedResult()
    {
        await using var server = await LoopbackServer.StartAsync();
        ProbeKilledAndResumed(folder => [.. ProbeArguments(folder), "--server", server.Address, "--server-kind", "vllm", "--server-concurrency", "2"]);
    }

    [Fact]
    public async Task TraceKilledMidRun_ResumesToTheUninterruptedTrace()
    {
        using var temp = new TempDirectory();
        var lines = File.ReadLines(GoldenData.DataPath("wic", "dev", "dev.data.txt")).Take(120).Select(line => line.Split('\t')[4]).ToArray();
        File.WriteAllLines(temp.File("in.txt"), lines);
        string[] Arguments(string output) => ["trace", "--model", ModelPath, "--input", temp.File("in.txt"), "--flush-seconds", "0", "--out", output];

        var whole = EngineVerbs.Run(Arguments(temp.File("whole.parquet")));
        Assert.True(whole.Code == 0, whole.Error);

        // The first footer read in this process compiles Parquet.Net's reader, long enough for a short run to end
        // unseen; reading the finished trace once first keeps the poll below as quick as the child's appends.
        Assert.Equal(lines.Length, FinishedSequences(temp.File("whole.parquet")));

        // The footer lists the sequences made durable; it is read only when the commit record (rewritten after every
        // append) has changed, so polling does not compete with the child for the CPU.
        string killed = temp.File("killed.parquet");
        var commit = new FileInfo(killed + ".commit");
        long seenLength = -1;
        KillOnceWorkIsDurable(Arguments(killed), () =>
        {
            commit.Refresh();
            if (!commit.Exists || commit.Length == seenLength)
            {
                return false;
            }

            seenLength = commit.Length;
            return FinishedSequences(killed) > 0;
        });

        var resumed = EngineVerbs.Run(Arguments(killed));
        Assert.True(resumed.Code == 0, resumed.Error);
        var held = System.Text.RegularExpressions.Regex.Match(resumed.Error, @"resuming .*: (\d+) of (\d+) sequences already traced");
        Assert.True(held.Success, resumed.Error);
        Assert.InRange(int.Parse(held.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), 1, lines.Length - 1);

        Assert.Equal(await Rows(temp.File("whole.parquet")), await Rows(killed));
        Assert.Equal(
            Directory.GetFiles(temp.Path, "whole.parquet*").Select(f => Path.GetFileName(f)!.Replace("whole", "killed", StringComparison.Ordinal)).Order(),
            Directory.GetFiles(temp.Path, "killed.parquet*").Select(Path.GetFileName).Order());
    }

    private static void ProbeKilledAndResumed(Func<string, string[]> arguments)
    {
        using var temp = new TempDirectory();
        string whole = temp.File("whole");
        string killed = temp.File("killed");
        var reference = EngineVerbs.Run(arguments(whole));
        Assert.True(reference.Code == 0, reference.Error);
        string journal = Path.Combine(killed, RunFolder.JournalFileName);

        KillOnceWorkIsDurable(arguments(killed), () => WorkJournal.ReadRecords(journal).Count > 0);
        int sentences = WorkJournal.ReadRecords(Path.Combine(whole, RunFolder.JournalFileName)).Count;
        var journaled = WorkJournal.ReadRecords(journal);
        Assert.InRange(journaled.Count, 1, sentences - 1);
        Assert.False(File.Exists(Path.Combine(killed, "pairs.csv")), "the killed run had not finished, so it has no results");

        var resumed = EngineVerbs.Run(arguments(killed));
        Assert.True(resumed.Code == 0, resumed.Error);

        // The sentences journaled before the kill were kept, not routed again, and the rest were added once each.
        var after = WorkJournal.ReadRecords(journal);
        Assert.Equal(journaled, after.Take(journaled.Count));
        Assert.Equal(sentences, after.Count);
        Assert.Equal(after.Count, after.Select(r => r.Unit).Distinct().Count());

        foreach (var file in new[] { "pairs.csv", "results.json" })
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(whole, file)), File.ReadAllBytes(Path.Combine(killed, file)));
        }

        // No half-written file is left: the folder holds exactly what an uninterrupted run leaves.
        Assert.Equal(Directory.GetFiles(whole).Select(Path.GetFileName).Order(), Directory.GetFiles(killed).Select(Path.GetFileName).Order());
    }

    /// <summary>
    /// Starts the CLI with <paramref name="arguments"/> as a child process, polls until <paramref name="durable"/> holds,
    /// then kills it with SIGKILL. Fails if the child ends first (the run was too short to interrupt) or takes too long.
    /// </summary>
    private static void KillOnceWorkIsDurable(string[] arguments, Func<bool> durable)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "expertscope.dll"));
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        var log = new StringBuilder();
        using var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var clock = Stopwatch.StartNew();
        try
        {
            while (!durable())
            {
                if (process.WaitForExit(10))
                {
                    Assert.Fail($"the run ended (exit {process.ExitCode}) before it could be killed mid-run:\n{log}");
                }

                if (clock.Elapsed > Patience)
                {
                    Assert.Fail($"no finished work was made durable within {Patience.TotalSeconds} s:\n{log}");
                }
            }

            Assert.False(process.HasExited, $"the run ended before it could be killed mid-run:\n{log}");
        }
        finally
        {
            // SIGKILL on Linux: no handler, no flush, no cleanup runs in the child.
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
    }

    private static int FinishedSequences(string path)
    {
        try
        {
            return RoutingTraceReader.ReadFinishedSequencesAsync(path).GetAwaiter().GetResult().Count;
        }
        catch (Core.ExpertScopeException)
        {
            // Caught between an append and its footer: the reader says the file is not readable yet.
            return 0;
        }
    }

    private static async Task<List<RoutingTraceRow>> Rows(string path)
    {
        var rows = new List<RoutingTraceRow>();
        await foreach (var row in RoutingTraceReader.ReadRowsAsync(path))
        {
            rows.Add(row);
        }

        return rows;
    }
}
