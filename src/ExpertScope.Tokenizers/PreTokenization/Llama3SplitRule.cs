namespace ExpertScope.Tokenizers.PreTokenization;

/// <summary>
/// The Llama 3 pattern <c>(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</c>
/// and, with single digits, Qwen2's, and with marks joining letters (<c>[\p{L}\p{M}]+</c>) Qwen3.5's, as llama.cpp
/// runs them: by hand-written scanners (<c>unicode_regex_split_custom_llama3</c> / <c>_qwen2</c> / <c>_qwen35</c>)
/// whose rules are reproduced here one by one.
/// </summary>
internal sealed class Llama3SplitRule : SplitRule
{
    private readonly int _maxDigits;
    private readonly bool _marksJoinLetters;

    /// <param name="maxDigits">3 for Llama 3 (<c>\p{N}{1,3}</c>), 1 for Qwen2 (<c>\p{N}</c>).</param>
    /// <param name="marksJoinLetters">Qwen3.5: combining marks count as letters in words and not as "other".</param>
    public Llama3SplitRule(int maxDigits, bool marksJoinLetters = false)
    {
        _maxDigits = maxDigits;
        _marksJoinLetters = marksJoinLetters;
    }

    protected override void SplitPiece(ReadOnlySpan<int> codePoints, int start, int end, List<int> output)
    {
        var at = new PieceReader(codePoints, start, end);
        int previousEnd = start;
        int Emit(int tokenEnd) => SplitRule.Emit(output, ref previousEnd, tokenEnd);

        for (int pos = start; pos < end;)
        {
            int cp = at[pos];

            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if (cp == '\'' && pos + 1 < end)
            {
                int next = CodePointClass.ToLowerForContraction(at[pos + 1]);
                if (next is 's' or 't' or 'm' or 'd')
                {
                    pos += Emit(pos + 2);
                    continue;
                }

                if (pos + 2 < end)
                {
                    int nextNext = CodePointClass.ToLowerForContraction(at[pos + 2]);
                    if ((next == 'r' && nextNext == 'e') || (next == 'v' && nextNext == 'e') || (next == 'l' && nextNext == 'l'))
                    {
                        pos += Emit(pos + 3);
                        continue;
                    }
                }
            }

            // [^\r\n\p{L}\p{N}]?\p{L}+ : one non-letter, non-digit, non-newline may lead a run of letters.
            if (!(cp == '\r' || cp == '\n' || CodePointClass.IsNumber(cp)))
            {
                if (IsWordCharacter(cp) || IsWordCharacter(at[pos + 1]))
                {
                    pos++;
                    while (IsWordCharacter(at[pos]))
                    {
                        pos++;
                    }

                    Emit(pos);
                    continue;
                }
            }

            pos = SplitNumbersSymbolsAndSpaces(at, pos, _maxDigits, _marksJoinLetters, output, ref previousEnd);
        }
    }

    private bool IsWordCharacter(int cp) => CodePointClass.IsLetter(cp) || (_marksJoinLetters && CodePointClass.IsMark(cp));
}
