namespace ExpertScope.Tokenizers;

/// <summary>
/// BPE merge ranks (<c>tokenizer.ggml.merges</c>, rank = position), looked up by the texts of both sides as
/// llama.cpp's <c>find_bpe_rank</c> does. Pairs of vocabulary tokens, i.e. virtually every merge, are keyed by the
/// two token ids so loading 200k+ merges allocates no strings; any other pair falls back to a string key.
/// </summary>
internal sealed class MergeRanks
{
    private readonly Dictionary<long, int> _byIds;
    private readonly Dictionary<(string Left, string Right), int> _byTexts = [];

    public MergeRanks(Vocabulary vocabulary, string[] merges)
    {
        _byIds = new Dictionary<long, int>(merges.Length);
        for (int rank = 0; rank < merges.Length; rank++)
        {
            // llama.cpp splits at the first space after the first character (a merge may start with a space), uses
            // empty texts when there is none, and keeps the first rank of a repeated pair.
            string merge = merges[rank];
            int space = merge.Length > 1 ? merge.IndexOf(' ', 1) : -1;
            var left = space < 0 ? [] : merge.AsSpan(0, space);
            var right = space < 0 ? [] : merge.AsSpan(space + 1);
            int leftId = vocabulary.Find(left);
            int rightId = vocabulary.Find(right);
            if (leftId >= 0 && rightId >= 0)
            {
                _byIds.TryAdd(Key(leftId, rightId), rank);
            }
            else
            {
                _byTexts.TryAdd((left.ToString(), right.ToString()), rank);
            }
        }
    }

    public int Count => _byIds.Count + _byTexts.Count;

    /// <summary>The rank of merging the two texts (given with their token ids, -1 when not tokens), or -1.</summary>
    public int Find(int leftId, int rightId, ReadOnlySpan<char> left, ReadOnlySpan<char> right)
    {
        if (leftId >= 0 && rightId >= 0)
        {
            return _byIds.TryGetValue(Key(leftId, rightId), out int rank) ? rank : -1;
        }

        return _byTexts.Count > 0 && _byTexts.TryGetValue((left.ToString(), right.ToString()), out int other) ? other : -1;
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;
}
