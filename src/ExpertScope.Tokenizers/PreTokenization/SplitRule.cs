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

    /// <summary>Ends a piece at <paramref name="tokenEnd"/> (empty pieces are not emitted) and returns its length.</summary>
    protected static int Emit(List<int> output, ref int previousEnd, int tokenEnd)
    {
        int length = tokenEnd - previousEnd;
        if (length > 0)
        {
            output.Add(length);
        }

        previousEnd = tokenEnd;
        return length;
    }

    /// <summary>
    /// The rules the Llama 3 family of scanners share after their word rules, from <paramref name="pos"/>:
    /// <c>\p{N}{1,maxDigits}</c>, <c> ?[^\s\p{L}\p{N}]+[\r\n]*</c>, <c>\s*[\r\n]+</c>, <c>\s+(?!\S)</c>, <c>\s+</c>, else one
    /// code point. Emits exactly one piece (or a run of digit groups) and returns the position after it. With
    /// <c>marksJoinLetters</c> (Qwen3.5) combining marks count as letters, so they are not "other".
    /// </summary>
    protected static int SplitNumbersSymbolsAndSpaces(
        in PieceReader at, int pos, int maxDigits, bool marksJoinLetters, List<int> output, ref int previousEnd)
    {
        bool IsOther(int cp) =>
            CodePointClass.Exists(cp) && !CodePointClass.IsWhitespace(cp) && !CodePointClass.IsNumber(cp)
            && !CodePointClass.IsLetter(cp) && !(marksJoinLetters && CodePointClass.IsMark(cp));

        int cp = at[pos];

        // \p{N}{1,maxDigits}
        if (CodePointClass.IsNumber(cp))
        {
            int groupStart = pos;
            while (CodePointClass.IsNumber(at[pos]))
            {
                if (++pos - groupStart >= maxDigits)
                {
                    Emit(output, ref previousEnd, pos);
                    groupStart = pos;
                }
            }

            Emit(output, ref previousEnd, pos);
            return pos;
        }

        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        int lead = cp == ' ' ? at[pos + 1] : cp;
        if (IsOther(lead))
        {
            pos += cp == ' ' ? 1 : 0;
            while (IsOther(at[pos]))
            {
                pos++;
            }

            while (at[pos] is '\r' or '\n')
            {
                pos++;
            }

            Emit(output, ref previousEnd, pos);
            return pos;
        }

        int whitespaceCount = 0;
        int lastNewlineEnd = 0;
        while (CodePointClass.IsWhitespace(at[pos + whitespaceCount]))
        {
            if (at[pos + whitespaceCount] is '\r' or '\n')
            {
                lastNewlineEnd = pos + whitespaceCount + 1;
            }

            whitespaceCount++;
        }

        // \s*[\r\n]+ : whitespace up to and including the last newline of the run.
        if (lastNewlineEnd > 0)
        {
            pos = lastNewlineEnd;
        }
        else if (whitespaceCount > 1 && at[pos + whitespaceCount] != CodePointClass.OutOfRange)
        {
            // \s+(?!\S)
            pos += whitespaceCount - 1;
        }
        else if (whitespaceCount > 0)
        {
            // \s+
            pos += whitespaceCount;
        }
        else
        {
            pos++;
        }

        Emit(output, ref previousEnd, pos);
        return pos;
    }
}
