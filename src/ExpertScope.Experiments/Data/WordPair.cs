namespace ExpertScope.Experiments.Data;

/// <summary>
/// The label of a pair of occurrences of one target word: the same meaning (same sense, or a substitute judged
/// similar) versus a different meaning (different sense, or a substitute judged dissimilar).
/// </summary>
public enum PairLabel
{
    /// <summary>Same sense (WiC <c>T</c>) or a similar substitute.</summary>
    Same,

    /// <summary>Different sense (WiC <c>F</c>) or a dissimilar substitute.</summary>
    Different,
}

/// <summary>One sentence with the target word located in it.</summary>
/// <param name="Sentence">The sentence text, as the data set gives it (WiC and CoarseWSD-20 are space-tokenized).</param>
/// <param name="Span">Character span of the target; for discontinuous targets, from the first part's start to the last part's end.</param>
/// <param name="Source">File and line the sentence was read from.</param>
public sealed record SentenceTarget(string Sentence, TextSpan Span, SourceLocation Source)
{
    private readonly IReadOnlyList<TextSpan>? _parts;

    /// <summary>ISO 639-1 language of the sentence (<c>en</c> unless the data set says otherwise).</summary>
    public string Language { get; init; } = "en";

    /// <summary>
    /// The pieces of a discontinuous target (MCL-WiC cross-lingual files mark phrasal targets such as
    /// <c>0-5,57-64</c>); a single-element list holding <see cref="Span"/> otherwise.
    /// </summary>
    public IReadOnlyList<TextSpan> Parts
    {
        get => _parts ?? [Span];
        init => _parts = value;
    }

    /// <summary>The target as it is written in the sentence (an inflected form such as <c>boards</c> for <c>board</c>).</summary>
    public string SurfaceForm => Span.Slice(Sentence);
}

/// <summary>Two occurrences of one target word with a same/different meaning label.</summary>
/// <param name="Id">Stable id: the data set's own id where it has one (<c>dev.en-en.17</c>), otherwise built from file and row.</param>
/// <param name="Word">The target lemma.</param>
/// <param name="PartOfSpeech">Part of speech as the source spells it (<c>N</c>, <c>NOUN</c>, <c>n</c>).</param>
/// <param name="First">The first sentence.</param>
/// <param name="Second">The second sentence.</param>
/// <param name="Label">Same or different meaning.</param>
public sealed record WordPair(string Id, string Word, string PartOfSpeech, SentenceTarget First, SentenceTarget Second, PairLabel Label)
{
    /// <summary>Graded similarity where the source has one (SWORDS: fraction of annotators who judged the substitute apt).</summary>
    public double? Score { get; init; }

    /// <summary>For substitution pairs, the word put in place of the target in <see cref="Second"/>.</summary>
    public string? Substitute { get; init; }

    /// <summary>For substitution pairs, the context they share (SWORDS context id): all substitutes of a context share one anchor.</summary>
    public string? ContextId { get; init; }

    /// <summary>For substitution pairs, how the substitute was put into the target's form (<see cref="WordNet.SubstituteForm"/>); null when not inflected.</summary>
    public string? SubstituteForm { get; init; }
}
