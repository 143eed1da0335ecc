namespace ExpertScope.Tokenizers.PreTokenization;

/// <summary>
/// Kimi K2's pattern, as llama.cpp runs it (<c>unicode_regex_split_custom_kimi_k2</c>): runs of Han characters;
/// words of non-Han letters with an optional leading symbol and an optional trailing contraction; digits in groups of
/// up to three; then the Llama 3 rules for punctuation and whitespace. Reproduced rule by rule, including the
/// scanner's own reading of the contraction and leading-character cases.
/// </summary>
internal sealed class KimiK2SplitRule : SplitRule
{
    protected override void SplitPiece(ReadOnlySpan<int> codePoints, int start, int end, List<int> output)
    {
        var at = new PieceReader(codePoints, start, end);
        int previousEnd = start;
        void Emit(int tokenEnd) => SplitRule.Emit(output, ref previousEnd, tokenEnd);

        for (int pos = start; pos < end;)
        {
            int cp = at[pos];

            // [\p{Han}]+
            if (IsHan(cp))
            {
                while (IsHan(at[pos]))
                {
                    pos++;
                }

                Emit(pos);
                continue;
            }

            // Letter words without Han, with an optional leading character and contraction.
            bool canLead = !(cp is '\r' or '\n' || CodePointClass.IsLetter(cp) || CodePointClass.IsNumber(cp));
            if (IsNonHanLetter(cp) || (canLead && IsNonHanLetter(at[pos + 1])))
            {
                bool leading = false;
                if (canLead)
                {
                    leading = true;
                    pos++;
                }

                bool letters = false;
                while (IsNonHanLetter(at[pos]))
                {
                    letters = true;
                    pos++;
                }

                if (letters || (!leading && IsNonHanLetter(at[pos])))
                {
                    if (!letters)
                    {
                        pos++;
                    }

                    while (IsNonHanLetter(at[pos]))
                    {
                        pos++;
                    }

                    if (at[pos] == '\'' && pos + 1 < end)
                    {
                        int next = CodePointClass.ToLowerForContraction(at[pos + 1]);
                        if (next is 's' or 't' or 'm' or 'd')
                        {
                            pos += 2;
                        }
                        else if (pos + 2 < end)
                        {
                            int nextNext = CodePointClass.ToLowerForContraction(at[pos + 2]);
                            if ((next == 'r' && nextNext == 'e') || (next == 'v' && nextNext == 'e') || (next == 'l' && nextNext == 'l'))
                            {
                                pos += 3;
                            }
                        }
                    }

                    Emit(pos);
                    continue;
                }

                if (leading)
                {
                    pos--;
                }
            }

            pos = SplitNumbersSymbolsAndSpaces(at, pos, 3, marksJoinLetters: false, output, ref previousEnd);
        }
    }

    private static bool IsNonHanLetter(int cp) => CodePointClass.IsLetter(cp) && !IsHan(cp);


    /// <summary>llama.cpp's Han ranges: CJK Unified Ideographs, extensions A to F, and the compatibility ideographs.</summary>
    private static bool IsHan(int cp) => cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF
        or >= 0x20000 and <= 0x2A6DF or >= 0x2A700 and <= 0x2B73F or >= 0x2B740 and <= 0x2B81F
        or >= 0x2B820 and <= 0x2CEAF or >= 0x2CEB0 and <= 0x2EBEF or >= 0xF900 and <= 0xFAFF
        or >= 0x2F800 and <= 0x2FA1F;
}
