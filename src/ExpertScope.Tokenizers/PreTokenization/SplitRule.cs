namespace ExpertScope.Tokenizers.PreTokenization;

/// <summary>
/// One splitting pass of a pre-tokenizer. As in llama.cpp's <c>unicode_regex_split</c>, every pass refines the
/// pieces the previous pass produced and never merges across a piece boundary.
/// </summary>
internal abstract class SplitRule
{
    /// <summary>
    /// Splits every piece of <paramref name="pieces"/> (lengths in code points, consecutive over
    /// <paramref name="codePoints"/>) and appends the finer lengths to <paramref name="output"/>.
    /// </summary>
    public void Split(ReadOnlySpan<int> codePoints, List<int> pieces, List<int> output)
    {
        int start = 0;
        foreach (int length in pieces)
        {
            SplitPiece(codePoints, start, start + length, output);
            start += length;
        }
    }

    /// <summary>Splits the code points [<paramref name="start"/>, <paramref name="end"/>) into pieces.</summary>
    protected abstract void SplitPiece(ReadOnlySpan<int> codePoints, int start, int end, List<int> output);

    /// <summary>Reads code points of one piece; past either end it returns <see cref="CodePointClass.OutOfRange"/>.</summary>
    protected readonly ref struct PieceReader
    {
        private readonly ReadOnlySpan<int> _codePoints;
        private readonly int _start;
        private readonly int _end;

        public PieceReader(ReadOnlySpan<int> codePoints, int start, int end)
        {
            _codePoints = codePoints;
            _start = start;
            _end = end;
        }

        public int this[int position] => position >= _start && position < _end ? _codePoints[position] : CodePointClass.OutOfRange;
    }
}
