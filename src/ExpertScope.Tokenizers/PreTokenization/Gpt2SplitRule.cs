namespace ExpertScope.Tokenizers.PreTokenization;

/// <summary>
/// GPT-2's pattern <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c> as llama.cpp
/// runs it: by a hand-written scanner (<c>unicode_regex_split_custom_gpt2</c>), not a regex engine. The scanner is
/// reproduced rule for rule because its corner cases (e.g. the contraction test, whitespace at the piece end)
/// are what llama.cpp's token ids depend on.
/// </summary>
internal sealed class Gpt2SplitRule : SplitRule
{
    protected override void SplitPiece(ReadOnlySpan<int> codePoints, int start, int end, List<int> output)
    {
        var at = new PieceReader(codePoints, start, end);
        int previousEnd = start;
        int Emit(int tokenEnd)
        {
            int length = tokenEnd - previousEnd;
            if (length > 0)
            {
                output.Add(length);
            }

            previousEnd = tokenEnd;
            return length;
        }

        for (int pos = start; pos < end;)
        {
            int cp = at[pos];

            // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive here, unlike Llama 3)
            if (cp == '\'' && pos + 1 < end)
            {
                int next = at[pos + 1];
                if (next is 's' or 't' or 'm' or 'd')
                {
                    pos += Emit(pos + 2);
                    continue;
                }

                if (pos + 2 < end)
                {
                    int nextNext = at[pos + 2];
                    if ((next == 'r' && nextNext == 'e') || (next == 'v' && nextNext == 'e') || (next == 'l' && nextNext == 'l'))
                    {
                        pos += Emit(pos + 3);
                        continue;
                    }
                }
            }

            // After an optional leading space, the class of the next code point decides the rule.
            int lead = cp == ' ' ? at[pos + 1] : cp;
            int skip = cp == ' ' ? 1 : 0;

            // ' ?\p{L}+'
            if (CodePointClass.IsLetter(lead))
            {
                pos += skip;
                while (CodePointClass.IsLetter(at[pos]))
                {
                    pos++;
                }

                Emit(pos);
                continue;
            }

            // ' ?\p{N}+'
            if (CodePointClass.IsNumber(lead))
            {
                pos += skip;
                while (CodePointClass.IsNumber(at[pos]))
                {
                    pos++;
                }

                Emit(pos);
                continue;
            }

            // ' ?[^\s\p{L}\p{N}]+'
            if (IsOther(lead))
            {
                pos += skip;
                while (IsOther(at[pos]))
                {
                    pos++;
                }

                Emit(pos);
                continue;
            }

            int whitespaceCount = 0;
            while (CodePointClass.IsWhitespace(at[pos + whitespaceCount]))
            {
                whitespaceCount++;
            }

            // '\s+(?!\S)': a run followed by a non-space leaves its last space to prefix the next word.
            if (whitespaceCount > 1 && at[pos + whitespaceCount] != CodePointClass.OutOfRange)
            {
                pos += whitespaceCount - 1;
                Emit(pos);
                continue;
            }

            // '\s+'
            if (whitespaceCount > 0)
            {
                pos += whitespaceCount;
                Emit(pos);
                continue;
            }

            Emit(++pos);
        }
    }

    private static bool IsOther(int cp) =>
        CodePointClass.Exists(cp) && !CodePointClass.IsWhitespace(cp) && !CodePointClass.IsLetter(cp) && !CodePointClass.IsNumber(cp);
}
