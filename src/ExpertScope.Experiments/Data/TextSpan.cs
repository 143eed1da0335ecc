namespace ExpertScope.Experiments.Data;

/// <summary>A half-open character range <c>[Start, End)</c> in UTF-16 code units of a .NET string.</summary>
/// <param name="Start">Index of the first character.</param>
/// <param name="End">Index one past the last character.</param>
public readonly record struct TextSpan(int Start, int End)
{
    /// <summary>Number of characters covered.</summary>
    public int Length => End - Start;

    /// <summary>True when the span lies inside a text of <paramref name="textLength"/> characters and is not empty.</summary>
    public bool IsValidIn(int textLength) => Start >= 0 && End > Start && End <= textLength;

    /// <summary>The covered text.</summary>
    public string Slice(string text) => text[Start..End];

    /// <inheritdoc/>
    public override string ToString() => $"[{Start}, {End})";
}

/// <summary>Where a record came from: a file, a 1-based line, and optionally the key of a JSON entry.</summary>
/// <param name="File">The path as the loader was given it (or <c>archive!entry</c> for zip members).</param>
/// <param name="Line">1-based line number where the record starts.</param>
/// <param name="Entry">The JSON key or id of the record, where the format has one.</param>
public readonly record struct SourceLocation(string File, int Line, string? Entry = null)
{
    /// <inheritdoc/>
    public override string ToString() => Entry is null ? $"{File}:{Line}" : $"{File}:{Line} ({Entry})";
}
