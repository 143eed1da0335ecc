namespace ExpertScope.Tokenizers.PreTokenization;

/// <summary>
/// <c>[^\n]+|[\n]+</c>: runs of newlines and runs of anything else (llama.cpp's
/// <c>unicode_regex_split_custom_newlines</c>, used by SentencePiece-style BPE such as Gemma 4's).
/// </summary>
internal sealed class NewlineSplitRule : SplitRule
{
    protected override void SplitPiece(ReadOnlySpan<int> codePoints, int start, int end, List<int> output)
    {
        int pos = start;
        while (pos < end)
        {
            bool newline = codePoints[pos] == '\n';
            int runStart = pos;
            while (pos < end && (codePoints[pos] == '\n') == newline)
            {
                pos++;
            }

            output.Add(pos - runStart);
        }
    }
}
