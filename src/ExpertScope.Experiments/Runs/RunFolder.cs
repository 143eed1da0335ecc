using ExpertScope.Core;

namespace ExpertScope.Experiments.Runs;

/// <summary>Thrown when a run folder holds a run started with different settings, so it cannot be resumed.</summary>
public sealed class RunMismatchException : ExpertScopeException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="folder">The run folder.</param>
    /// <param name="differences">What differs, in words.</param>
    public RunMismatchException(string folder, IReadOnlyList<string> differences)
        : base($"The run folder '{folder}' holds a run started with different settings, so it cannot be resumed: " +
               string.Join("; ", differences) + ". Use a new output folder, or delete this one to start over.")
    {
        Differences = differences;
    }

    /// <summary>What differs between the saved and the requested run, in words.</summary>
    public IReadOnlyList<string> Differences { get; }
}

/// <summary>
/// A folder for one long run: <c>manifest.json</c> (what the run was started with) and <c>finished.jsonl</c>
/// (a <see cref="WorkJournal"/> of finished work units), plus whatever output files the run writes there.
/// Opening an existing folder resumes it when the manifest matches and refuses, saying why, when it does not.
/// </summary>
public sealed class RunFolder : IDisposable
{
    /// <summary>The manifest's file name inside the folder.</summary>
    public const string ManifestFileName = "manifest.json";

    /// <summary>The journal's file name inside the folder.</summary>
    public const string JournalFileName = "finished.jsonl";

    private RunFolder(string path, RunManifest manifest, WorkJournal journal, bool isResumed)
    {
        Path = path;
        Manifest = manifest;
        Journal = journal;
        IsResumed = isResumed;
    }

    /// <summary>The folder.</summary>
    public string Path { get; }

    /// <summary>The manifest in force (the saved one when resuming).</summary>
    public RunManifest Manifest { get; }

    /// <summary>The record of finished work units.</summary>
    public WorkJournal Journal { get; }

    /// <summary>True when the folder already held this run and it is being resumed.</summary>
    public bool IsResumed { get; }

    /// <summary>Ids of the units finished so far (by this and earlier attempts).</summary>
    public IReadOnlySet<string> FinishedUnits => Journal.FinishedUnits;

    /// <summary>Opens the run folder at <paramref name="path"/>, creating it and its manifest if needed.</summary>
    /// <param name="path">The folder.</param>
    /// <param name="manifest">What this run is started with.</param>
    /// <exception cref="RunMismatchException">The folder holds a run started with different settings.</exception>
    /// <exception cref="ExpertScopeException">The saved manifest or journal is damaged.</exception>
    public static RunFolder OpenOrCreate(string path, RunManifest manifest)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(manifest);
        Directory.CreateDirectory(path);

        // A run killed while replacing a file (manifest, results) leaves its temporary copy; the rerun clears it.
        AtomicFile.RemoveAbandoned(path);
        var manifestPath = System.IO.Path.Combine(path, ManifestFileName);
        var journalPath = System.IO.Path.Combine(path, JournalFileName);
        RunManifest inForce;
        bool resumed;
        if (File.Exists(manifestPath))
        {
            var saved = RunManifest.FromJson(File.ReadAllText(manifestPath), manifestPath);
            var differences = saved.DifferencesFrom(manifest);
            if (differences.Count > 0)
            {
                throw new RunMismatchException(path, differences);
            }

            inForce = saved;
            resumed = true;
        }
        else
        {
            if (File.Exists(journalPath) && new FileInfo(journalPath).Length > 0)
            {
                throw new ExpertScopeException(
                    $"The run folder '{path}' has a journal of finished work but no {ManifestFileName}, so it is unknown what it was run with. " +
                    "Use a new output folder, or delete this one to start over.");
            }

            inForce = manifest.StartedUtc is null ? manifest with { StartedUtc = DateTimeOffset.UtcNow } : manifest;
            AtomicFile.WriteAllText(manifestPath, inForce.ToJson());
            resumed = false;
        }

        return new RunFolder(path, inForce, WorkJournal.Open(journalPath), resumed);
    }

    /// <summary>The path of a file named <paramref name="name"/> inside the folder.</summary>
    public string PathOf(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>True if <paramref name="unit"/> was finished by this or an earlier attempt.</summary>
    public bool IsFinished(string unit) => Journal.IsFinished(unit);

    /// <summary>Records a finished unit (flushed to the disk before returning).</summary>
    public void MarkFinished(string unit, string? data = null) => Journal.MarkFinished(unit, data);

    /// <inheritdoc/>
    public void Dispose() => Journal.Dispose();
}
