using ExpertScope.Core;

namespace ExpertScope.Experiments.Runs;

/// <summary>
/// The one rule every verb that writes follows: never replace what ExpertScope did not write. An output file or
/// folder that exists and is not recognisably ours (a trace with its sidecar, a run folder with its manifest) is
/// refused with a message naming it, unless the user passed <c>--overwrite</c>; an output that is one of the inputs
/// is always refused, since the run would destroy what it reads.
/// </summary>
public static partial class OutputGuard
{
    /// <summary>The option that lifts the refusal, as the messages name it.</summary>
    public const string OverwriteOption = "--overwrite";

    /// <summary>Refuses an output path that is an existing folder, or the same file as one of <paramref name="inputs"/>.</summary>
    /// <exception cref="ExpertScopeException">The output is a folder or an input.</exception>
    public static void RequireWritableFile(string output, params string[] inputs)
    {
        ArgumentException.ThrowIfNullOrEmpty(output);
        ArgumentNullException.ThrowIfNull(inputs);
        string full = Path.GetFullPath(output);
        if (Directory.Exists(full))
        {
            throw new ExpertScopeException($"'{full}' is a directory; the output must be a file path.");
        }

        foreach (string input in inputs)
        {
            if (SameFile(full, input))
            {
                throw new ExpertScopeException($"'{full}' is also the input; writing it would destroy what the run reads. Choose another output path.");
            }
        }
    }

    /// <summary>
    /// Makes way for a file output: with <paramref name="overwrite"/> the file and its <paramref name="sidecars"/>
    /// (suffixes such as <c>.meta.json</c>) are deleted; without it, an existing non-empty file that
    /// <paramref name="isOurs"/> does not recognise is refused.
    /// </summary>
    /// <param name="output">The output file.</param>
    /// <param name="overwrite">The user passed <see cref="OverwriteOption"/>.</param>
    /// <param name="isOurs">True when an existing file was written by ExpertScope (and may be resumed).</param>
    /// <param name="what">What the verb writes, for the message ("routing trace").</param>
    /// <param name="sidecars">Suffixes of the files ExpertScope keeps beside the output.</param>
    /// <exception cref="ExpertScopeException">The file exists and is not ours.</exception>
    public static void PrepareFile(string output, bool overwrite, Func<string, bool> isOurs, string what, params string[] sidecars)
    {
        ArgumentException.ThrowIfNullOrEmpty(output);
        ArgumentNullException.ThrowIfNull(isOurs);
        ArgumentNullException.ThrowIfNull(sidecars);
        string full = Path.GetFullPath(output);
        if (overwrite)
        {
            foreach (string path in sidecars.Select(s => full + s).Prepend(full))
            {
                Delete(path);
            }

            return;
        }

        if (File.Exists(full) && new FileInfo(full).Length > 0 && !isOurs(full))
        {
            throw new ExpertScopeException(
                $"'{full}' exists and is not an ExpertScope {what}, so it is not replaced. Choose another path, or pass {OverwriteOption} to replace it.");
        }
    }

    /// <summary>
    /// Makes way for a run folder: refuses a path that is a file; with <paramref name="overwrite"/> deletes the
    /// folder's run record (manifest, journal) and the files named in <paramref name="outputs"/>; without it refuses a
    /// folder that holds any of <paramref name="outputs"/> but no manifest (a user's files, or a copy of another run's
    /// results). A folder with a manifest is left to <see cref="RunFolder"/>, which resumes or refuses it.
    /// </summary>
    /// <exception cref="ExpertScopeException">The folder holds outputs no recorded run wrote, or is a file.</exception>
    public static void PrepareRunFolder(string folder, bool overwrite, IReadOnlyCollection<string> outputs)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(outputs);
        string full = Path.GetFullPath(folder);
        if (File.Exists(full))
        {
            throw new ExpertScopeException($"'{full}' is a file; the output must be a folder.");
        }

        if (!Directory.Exists(full))
        {
            return;
        }

        if (overwrite)
        {
            foreach (string name in outputs.Append(RunFolder.ManifestFileName).Append(RunFolder.JournalFileName))
            {
                Delete(Path.Combine(full, name));
            }

            return;
        }

        if (File.Exists(Path.Combine(full, RunFolder.ManifestFileName)))
        {
            return;
        }

        var present = outputs.Where(name => File.Exists(Path.Combine(full, name))).ToList();
        if (present.Count > 0)
        {
            throw new ExpertScopeException(
                $"The folder '{full}' already holds {string.Join(", ", present)} but no {RunFolder.ManifestFileName}, so no ExpertScope run recorded them and they are not replaced. " +
                $"Choose another folder, or pass {OverwriteOption} to replace them.");
        }
    }

    /// <summary>
    /// The one-line error for a failed write of <paramref name="userPath"/> (the file the user named, not a temporary
    /// or sidecar file): the operating system's reason (no space left on device, permission denied) without the
    /// internal path it may quote.
    /// </summary>
    public static ExpertScopeException CannotWrite(string userPath, Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        string reason = error is UnauthorizedAccessException
            ? "permission denied"
            : QuotedPathSuffix().Replace(error.Message, string.Empty).TrimEnd('.', ' ');
        return new ExpertScopeException($"'{Path.GetFullPath(userPath)}' cannot be written: {reason}.", error);
    }

    /// <summary>True for the exceptions a write to the file system raises (full disk, permissions, I/O errors).</summary>
    public static bool IsWriteFailure(Exception error) =>
        error is IOException or UnauthorizedAccessException || error.InnerException is IOException or UnauthorizedAccessException;

    [System.Text.RegularExpressions.GeneratedRegex(@"\s*:\s*'[^']*'\s*$")]
    private static partial System.Text.RegularExpressions.Regex QuotedPathSuffix();

    private static bool SameFile(string output, string input)
    {
        if (string.IsNullOrEmpty(input))
        {
            return false;
        }

        static string Resolve(string path)
        {
            string full = Path.GetFullPath(path);
            return File.Exists(full) ? new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full : full;
        }

        return string.Equals(Resolve(output), Resolve(input), OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);
    }

    private static void Delete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ExpertScopeException($"'{path}' cannot be replaced: {e.Message}", e);
        }
    }
}
