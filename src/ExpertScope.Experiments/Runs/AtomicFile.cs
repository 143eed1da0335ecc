namespace ExpertScope.Experiments.Runs;

/// <summary>
/// Replaces a file all at once: the bytes go to a temporary file beside the target, are flushed to the disk,
/// and the temporary file is renamed over the target, so a reader (or a crash) sees the old file or the new one,
/// never a mix.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> atomically.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            throw new Core.ExpertScopeException($"'{full}' is a directory; it cannot be written as a file.");
        }

        var temporary = full + ".tmp-" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A full disk or a read-only folder must not leave the temporary file behind, and the message names the
            // file the user knows, not our temporary one.
            TryDelete(temporary);
            throw OutputGuard.CannotWrite(full, e);
        }
    }

    /// <summary>
    /// Deletes the temporary files that writes in <paramref name="folder"/> left behind when their process was killed
    /// between creating and renaming them (<c>NAME.tmp-PID</c> whose process no longer runs). A temporary file of a
    /// running process is left alone: it may be mid-write.
    /// </summary>
    /// <param name="folder">The folder written to.</param>
    /// <param name="target">
    /// Only the temporaries of this file (a trace and its commit record beside the user's own files); null for every
    /// temporary in <paramref name="folder"/> (a run folder, all ours).
    /// </param>
    /// <returns>The names of the files deleted.</returns>
    public static IReadOnlyList<string> RemoveAbandoned(string folder, string? target = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var removed = new List<string>();
        if (!Directory.Exists(folder))
        {
            return removed;
        }

        foreach (var file in Directory.EnumerateFiles(folder, (target is null ? "*" : Path.GetFileName(target)) + ".tmp-*"))
        {
            var suffix = file[(file.LastIndexOf(".tmp-", StringComparison.Ordinal) + 5)..];
            if (int.TryParse(suffix, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var processId)
                && !IsRunning(processId))
            {
                TryDelete(file);
                removed.Add(Path.GetFileName(file));
            }
        }

        return removed;
    }

    private static bool IsRunning(int processId)
    {
        if (processId == Environment.ProcessId)
        {
            return true;
        }

        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(processId);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Nothing more can be done; the original failure is what the user must see.
        }
    }

    /// <summary>Writes <paramref name="text"/> as UTF-8 (no byte-order mark) to <paramref name="path"/> atomically.</summary>
    public static void WriteAllText(string path, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        WriteAllBytes(path, new System.Text.UTF8Encoding(false).GetBytes(text));
    }
}
