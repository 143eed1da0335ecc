namespace ExpertScope.Tokenizers;

/// <summary>
/// llama.cpp's BPE merge loop (<c>llm_tokenizer_bpe_session</c>) for one pre-tokenized, byte-encoded word.
/// </summary>
/// <remarks>
/// Microsoft.ML.Tokenizers' <c>BpeTokenizer</c> applies merges too, but llama.cpp's ids depend on its exact loop:
/// a queue ordered by merge rank then by left position, stale pairs detected by comparing texts, merges looked up
/// by the strings of both sides (so a merge whose result is not in the vocabulary still applies), words that are
/// whole tokens kept when <c>ignore_merges</c> is set, and unknown results spelled out as single-character tokens.
/// So the loop is ours.
/// </remarks>
internal sealed class BytePairMerger
{
    private readonly Vocabulary _vocabulary;
    private readonly Dictionary<(string Left, string Right), int> _ranks;
    private readonly PriorityQueue<Pair, (int Rank, int Left)> _queue = new();
    private readonly List<Symbol> _symbols = [];

    public BytePairMerger(Vocabulary vocabulary, Dictionary<(string Left, string Right), int> ranks)
    {
        _vocabulary = vocabulary;
        _ranks = ranks;
    }

    /// <summary>
    /// Merges <paramref name="word"/> (one character per byte) and reports each resulting token with the range of
    /// word characters it covers.
    /// </summary>
    public void Encode(string word, bool ignoreMerges, Action<int, int, int> emit)
    {
        if (word.Length == 0)
        {
            return;
        }

        if (ignoreMerges)
        {
            int whole = _vocabulary.Find(word);
            if (whole >= 0)
            {
                emit(whole, 0, word.Length);
                return;
            }
        }

        // One symbol per character: every character of a byte-encoded word is one byte, one UTF-16 unit.
        _symbols.Clear();
        _queue.Clear();
        for (int i = 0; i < word.Length; i++)
        {
            _symbols.Add(new Symbol(i, 1, i - 1, i + 1 == word.Length ? -1 : i + 1));
        }

        for (int i = 1; i < word.Length; i++)
        {
            AddPair(word, i - 1, i);
        }

        while (_queue.TryDequeue(out var pair, out _))
        {
            var left = _symbols[pair.Left];
            var right = _symbols[pair.Right];
            if (left.Length == 0 || right.Length == 0)
            {
                continue;
            }

            // Stale when either side changed since the pair was queued.
            if (left.Length + right.Length != pair.Text.Length ||
                !word.AsSpan(left.Start, left.Length + right.Length).SequenceEqual(pair.Text) ||
                left.Start + left.Length != right.Start)
            {
                continue;
            }

            left = left with { Length = left.Length + right.Length, Next = right.Next };
            _symbols[pair.Left] = left;
            _symbols[pair.Right] = right with { Length = 0 };
            if (right.Next >= 0)
            {
                _symbols[right.Next] = _symbols[right.Next] with { Previous = pair.Left };
            }

            AddPair(word, left.Previous, pair.Left);
            AddPair(word, pair.Left, left.Next);
        }

        foreach (var symbol in _symbols)
        {
            if (symbol.Length == 0)
            {
                continue;
            }

            var text = word.AsSpan(symbol.Start, symbol.Length);
            int id = _vocabulary.Find(text);
            if (id >= 0)
            {
                emit(id, symbol.Start, symbol.Start + symbol.Length);
                continue;
            }

            // llama.cpp looks up every UTF-8 byte of the symbol's text as a one-byte token and drops misses; only
            // ASCII bytes can be one-byte strings, and every non-ASCII stand-in character encodes to two bytes.
            foreach (char c in text)
            {
                if (c < 0x80)
                {
                    int single = _vocabulary.Find(new ReadOnlySpan<char>(in c));
                    if (single >= 0)
                    {
                        emit(single, symbol.Start, symbol.Start + symbol.Length);
                    }
                }
            }
        }
    }

    private void AddPair(string word, int left, int right)
    {
        if (left < 0 || right < 0)
        {
            return;
        }

        var l = _symbols[left];
        var r = _symbols[right];
        string leftText = word.Substring(l.Start, l.Length);
        string rightText = word.Substring(r.Start, r.Length);
        if (_ranks.TryGetValue((leftText, rightText), out int rank))
        {
            _queue.Enqueue(new Pair(left, right, leftText + rightText), (rank, left));
        }
    }

    private readonly record struct Symbol(int Start, int Length, int Previous, int Next);

    private readonly record struct Pair(int Left, int Right, string Text);
}
