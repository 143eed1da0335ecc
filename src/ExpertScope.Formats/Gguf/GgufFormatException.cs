using ExpertScope.Core;

namespace ExpertScope.Formats.Gguf;

/// <summary>
/// The one error a malformed GGUF file produces: it names the file, the byte offset where reading failed
/// and what was wrong there.
/// </summary>
public sealed class GgufFormatException : ExpertScopeException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="filePath">The file being read.</param>
    /// <param name="offset">Byte offset in the file where the problem was found.</param>
    /// <param name="problem">What is wrong, in words.</param>
    public GgufFormatException(string filePath, long offset, string problem)
        : base($"{filePath}: invalid GGUF at byte {offset}: {problem}")
    {
        FilePath = filePath;
        Offset = offset;
        Problem = problem;
    }

    /// <summary>The file being read.</summary>
    public string FilePath { get; }

    /// <summary>Byte offset where the problem was found.</summary>
    public long Offset { get; }

    /// <summary>What is wrong.</summary>
    public string Problem { get; }
}
