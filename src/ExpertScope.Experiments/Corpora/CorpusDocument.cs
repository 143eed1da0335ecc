using ExpertScope.Experiments.Data;

namespace ExpertScope.Experiments.Corpora;

/// <summary>One document of a text corpus: its text and where it came from.</summary>
/// <param name="Source">The file the document was read from (as given to the reader).</param>
/// <param name="Line">1-based line on which the document starts in <paramref name="Source"/>.</param>
/// <param name="Text">The document text, line endings normalised to <c>\n</c>.</param>
public sealed record CorpusDocument(string Source, int Line, string Text);

/// <summary>How a plain text file is cut into documents.</summary>
public enum TextSplit
{
    /// <summary>Runs of non-blank lines separated by blank (or whitespace-only) lines.</summary>
    Paragraphs,

    /// <summary>Every non-blank line is a document.</summary>
    Lines,

    /// <summary>
    /// Consecutive blocks of <see cref="CorpusReadOptions.LinesPerBlock"/> non-blank lines; for hard-wrapped prose
    /// without blank lines (such as a novel with one line per 75 characters).
    /// </summary>
    LineBlocks,

    /// <summary>The whole file is one document.</summary>
    WholeFile,
}

/// <summary>How <see cref="CorpusReader"/> turns files into documents.</summary>
public sealed record CorpusReadOptions
{
    /// <summary>
    /// Fields of JSON records whose values make up the document, joined by <see cref="FieldSeparator"/>. A field is
    /// a dotted path (<c>meta.title</c>, <c>messages.0.content</c>: numeric steps index arrays). A string value is
    /// taken as is, an array of strings is joined with <c>\n</c>, a number or boolean is taken as written.
    /// </summary>
    public IReadOnlyList<string> Fields { get; init; } = ["text"];

    /// <summary>Put between the values of several <see cref="Fields"/>.</summary>
    public string FieldSeparator { get; init; } = "\n";

    /// <summary>How plain text files are split.</summary>
    public TextSplit Split { get; init; } = TextSplit.Paragraphs;

    /// <summary>Lines per document for <see cref="TextSplit.LineBlocks"/>.</summary>
    public int LinesPerBlock { get; init; } = 20;

    /// <summary>Strict (throw on the first malformed record) or lenient (skip and count it).</summary>
    public LoadOptions Load { get; init; } = LoadOptions.Strict;
}
