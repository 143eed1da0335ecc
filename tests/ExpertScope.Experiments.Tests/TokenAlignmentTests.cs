using ExpertScope.Experiments.Data;

namespace ExpertScope.Experiments.Tests;

public class TokenAlignmentTests
{
    private const string Text = "He sat by the bank of the river.";

    // "bank" occupies [14, 18).
    private static readonly TextSpan Bank = new(14, 18);

    [Fact]
    public void LeadingSpaceBpePieceAlignsToTheWord()
    {
        // GPT-2 style: "He" " sat" " by" " the" " bank" " of" ...; " bank" = [13, 18) includes the space.
        TokenSpan[] tokens = [new(0, 2), new(2, 6), new(6, 9), new(9, 13), new(13, 18), new(18, 21), new(21, 25), new(25, 31), new(31, 32)];
        var result = TokenAlignment.Align(Text, Bank, tokens);
        Assert.Equal([4], result.Indices);
        Assert.False(result.SplitsToken);
    }

    [Fact]
    public void SentencePieceMarkerIsNotPartOfTheWord()
    {
        // Pre-normalised SentencePiece text: "▁He▁sat▁by▁the▁bank" — "▁bank" = [14, 19), "bank" = [15, 19).
        const string text = "\u2581He\u2581sat\u2581by\u2581the\u2581bank";
        TokenSpan[] tokens = [new(0, 3), new(3, 7), new(7, 10), new(10, 14), new(14, 19)];
        var result = TokenAlignment.Align(text, new TextSpan(15, 19), tokens);
        Assert.Equal([4], result.Indices);
        Assert.False(result.SplitsToken);
    }

    [Fact]
    public void MultiTokenWordReturnsEveryPiece()
    {
        // "riverbank" = [18, 27) split as " river" [17, 23) + "bank" [23, 27) in "He sat by the old riverbank".
        const string text = "He sat by the old riverbank";
        TokenSpan[] tokens = [new(0, 2), new(2, 6), new(6, 9), new(9, 13), new(13, 17), new(17, 23), new(23, 27)];
        var result = TokenAlignment.Align(text, new TextSpan(18, 27), tokens);
        Assert.Equal([5, 6], result.Indices);
        Assert.False(result.SplitsToken);
    }

    [Fact]
    public void SpanThatCutsATokenIncludesItAndSaysSo()
    {
        // Target "bank" inside the single token " banks" [13, 19) of "He sat by the banks".
        const string text = "He sat by the banks";
        TokenSpan[] tokens = [new(0, 2), new(2, 6), new(6, 9), new(9, 13), new(13, 19)];
        var result = TokenAlignment.Align(text, new TextSpan(14, 18), tokens);
        Assert.Equal([4], result.Indices);
        Assert.True(result.SplitsToken);
    }

    [Fact]
    public void ZeroWidthAndWhitespaceTokensAreIgnored()
    {
        // BOS at (0, 0), then "bank" [0, 4), then a whitespace-only token [4, 6).
        const string text = "bank  x";
        TokenSpan[] tokens = [new(0, 0), new(0, 4), new(4, 6), new(6, 7)];
        Assert.Equal([1], TokenAlignment.Align(text, new TextSpan(0, 4), tokens).Indices);
        Assert.True(TokenAlignment.Align(text, new TextSpan(6, 7), [new(0, 0)]).IsEmpty);
    }

    [Fact]
    public void ByteTokensSharingOneCharacterAreAllIncluded()
    {
        // "é" encoded as two byte-level tokens that both report [1, 2).
        const string text = "té";
        TokenSpan[] tokens = [new(0, 1), new(1, 2), new(1, 2)];
        Assert.Equal([1, 2], TokenAlignment.Align(text, new TextSpan(1, 2), tokens).Indices);
    }

    [Fact]
    public void DiscontinuousTargetCollectsBothParts()
    {
        // "turn the lights off": parts "turn" [0, 4) and "off" [16, 19); tokens "turn"," the"," lights"," off".
        const string text = "turn the lights off";
        TokenSpan[] tokens = [new(0, 4), new(4, 8), new(8, 15), new(15, 19)];
        var result = TokenAlignment.Align(text, [new TextSpan(0, 4), new TextSpan(16, 19)], tokens);
        Assert.Equal([0, 3], result.Indices);
        Assert.False(result.SplitsToken);
    }

    [Fact]
    public void OffsetsOutsideTheTextAreRejected()
    {
        Assert.Throws<ArgumentException>(() => TokenAlignment.Align("bank", new TextSpan(0, 4), [new TokenSpan(0, 9)]));
        Assert.Throws<ArgumentException>(() => TokenAlignment.Align("bank", new TextSpan(2, 9), [new TokenSpan(0, 4)]));
    }
}
