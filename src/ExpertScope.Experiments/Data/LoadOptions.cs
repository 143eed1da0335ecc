using ExpertScope.Core;

namespace ExpertScope.Experiments.Data;

/// <summary>A malformed record in a data file: names the file, the line and what is wrong.</summary>
public sealed class DataFormatException : ExpertScopeException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="file">The data file.</param>
    /// <param name="line">1-based line number of the bad record.</param>
    /// <param name="problem">What is wrong with it.</param>
    public DataFormatException(string file, int line, string problem)
        : base($"{file}, line {line}: {problem}")
    {
        File = file;
        Line = line;
        Problem = problem;
    }

    /// <summary>The data file.</summary>
    public string File { get; }

    /// <summary>1-based line number of the bad record.</summary>
    public int Line { get; }

    /// <summary>What is wrong, without the location.</summary>
    public string Problem { get; }
}

/// <summary>The records a lenient load skipped, each with its reason, so nothing disappears silently.</summary>
public sealed class SkippedRecords
{
    private readonly List<DataFormatException> _reasons = [];

    /// <summary>How many records were skipped.</summary>
    public int Count => _reasons.Count;

    /// <summary>Why each was skipped, in reading order.</summary>
    public IReadOnlyList<DataFormatException> Reasons => _reasons;

    internal void Add(DataFormatException reason) => _reasons.Add(reason);
}

/// <summary>How a loader treats malformed records.</summary>
public sealed record LoadOptions
{
    /// <summary>Strict loading: the first malformed record throws <see cref="DataFormatException"/>.</summary>
    public static LoadOptions Strict { get; } = new();

    /// <summary>Skip malformed records and count them in <see cref="Skipped"/> instead of throwing.</summary>
    public bool Lenient { get; init; }

    /// <summary>The records skipped by a lenient load (read it after enumerating the loader's results).</summary>
    public SkippedRecords Skipped { get; init; } = new();

    /// <summary>A lenient options object with a fresh skip counter.</summary>
    public static LoadOptions CreateLenient() => new() { Lenient = true };

    /// <summary>Throws when strict; records the problem and returns normally when lenient (the caller then skips the record).</summary>
    internal void Reject(string file, int line, string problem)
    {
        var error = new DataFormatException(file, line, problem);
        if (!Lenient)
        {
            throw error;
        }

        Skipped.Add(error);
    }
}
