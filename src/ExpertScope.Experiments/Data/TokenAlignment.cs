namespace ExpertScope.Experiments.Data;

/// <summary>The character range a tokenizer reports for one token, <c>[Start, End)</c> in the encoded text.</summary>
/// <param name="Start">Index of the token's first character.</param>
/// <param name="End">Index one past its last character.</param>
public readonly record struct TokenSpan(int Start, int End);

/// <summary>The tokens that carry a target word.</summary>
/// <param name="Indices">Token indices in ascending order; empty when no token overlaps the target.</param>
/// <param name="SplitsToken">True when a selected token also holds characters outside the target (the span cuts through it).</param>
public sealed record WordTokens(IReadOnlyList<int> Indices, bool SplitsToken)
{
    /// <summary>True when no token overlaps the target.</summary>
    public bool IsEmpty => Indices.Count == 0;
}

/// <summary>
/// Maps a word's character span to the tokens that encode it, given each token's character offsets.
/// </summary>
/// <remarks>
/// Rules:
/// <list type="number">
/// <item>A token's <em>content</em> is its offset range with leading and trailing whitespace and SentencePiece
/// <c>▁</c> (U+2581) characters removed, read from the text. BPE pieces such as <c>" bank"</c> whose offsets include
/// the preceding space, and SentencePiece pieces <c>"▁bank"</c> whose offsets cover the space the marker stands
/// for, therefore count from the word's first letter. Tokens with empty content (pure whitespace, zero-width
/// special tokens such as BOS at (0, 0)) never belong to a word.</item>
/// <item>A token belongs to the word when its content overlaps the target span by at least one character. So all
/// pieces of a multi-token word are returned, including several byte-level tokens that share the offsets of one
/// multi-byte character.</item>
/// <item>When the span cuts through a token (target <c>bank</c> inside the single token <c>banks</c>, or a target
/// that ends mid-piece), that token is still included, because the router saw the target's characters in it, and
/// <see cref="WordTokens.SplitsToken"/> is set so callers can drop or report such cases.</item>
/// </list>
/// </remarks>
public static class TokenAlignment
{
    /// <summary>The tokens covering <paramref name="target"/> in <paramref name="text"/>.</summary>
    /// <param name="text">The text that was tokenized (the offsets index into it).</param>
    /// <param name="target">The word's character span.</param>
    /// <param name="tokens">Per-token character offsets, one per token, in token order.</param>
    /// <exception cref="ArgumentException">The target or a token's offsets fall outside the text.</exception>
    public static WordTokens Align(string text, TextSpan target, IReadOnlyList<TokenSpan> tokens) => Align(text, [target], tokens);

    /// <summary>The tokens covering any part of a possibly discontinuous target (<see cref="SentenceTarget.Parts"/>; parts must not overlap).</summary>
    /// <exception cref="ArgumentException">A part or a token's offsets fall outside the text.</exception>
    public static WordTokens Align(string text, IReadOnlyList<TextSpan> parts, IReadOnlyList<TokenSpan> tokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(parts);
        ArgumentNullException.ThrowIfNull(tokens);
        foreach (var part in parts)
        {
            if (!part.IsValidIn(text.Length))
            {
                throw new ArgumentException($"Target span {part} is empty or outside the text of length {text.Length}.", nameof(parts));
            }
        }

        var indices = new List<int>();
        var splits = false;
        for (var index = 0; index < tokens.Count; index++)
        {
            var token = tokens[index];
            if (token.Start < 0 || token.End < token.Start || token.End > text.Length)
            {
                throw new ArgumentException($"Token {index} has offsets [{token.Start}, {token.End}) outside the text of length {text.Length}.", nameof(tokens));
            }

            var start = token.Start;
            var end = token.End;
            while (start < end && IsSeparator(text[start]))
            {
                start++;
            }

            while (end > start && IsSeparator(text[end - 1]))
            {
                end--;
            }

            if (start == end)
            {
                continue;
            }

            var covered = 0;
            foreach (var part in parts)
            {
                covered += Math.Max(0, Math.Min(end, part.End) - Math.Max(start, part.Start));
            }

            if (covered > 0)
            {
                indices.Add(index);
                // Content the target does not cover (outside the span, or between the parts of a discontinuous target).
                splits |= covered < end - start;
            }
        }

        return new WordTokens(indices, splits);
    }

    private static bool IsSeparator(char character) => char.IsWhiteSpace(character) || character == '\u2581';
}
