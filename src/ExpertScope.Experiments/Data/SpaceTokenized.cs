namespace ExpertScope.Experiments.Data;

/// <summary>Helpers for the pre-tokenized sentences of WiC and CoarseWSD-20 (tokens separated by single spaces).</summary>
public static class SpaceTokenized
{
    /// <summary>
    /// The character span of token <paramref name="tokenIndex"/> (0-based) when <paramref name="sentence"/> is split
    /// on single spaces, or <see langword="null"/> when the sentence has fewer tokens or the token is empty
    /// (two adjacent spaces).
    /// </summary>
    public static TextSpan? TokenSpan(string sentence, int tokenIndex)
    {
        ArgumentNullException.ThrowIfNull(sentence);
        if (tokenIndex < 0)
        {
            return null;
        }

        var start = 0;
        for (var index = 0; index < tokenIndex; index++)
        {
            var space = sentence.IndexOf(' ', start);
            if (space < 0)
            {
                return null;
            }

            start = space + 1;
        }

        var end = sentence.IndexOf(' ', start);
        if (end < 0)
        {
            end = sentence.Length;
        }

        return end > start ? new TextSpan(start, end) : null;
    }
}
