namespace ExpertScope.Tokenizers;

/// <summary>
/// llama.cpp's BPE merge loop (<c>llm_tokenizer_bpe_session</c>) for one pre-tokenized word.
/// </summary>
/// <remarks>
/// Microsoft.ML.Tokenizers' <c>BpeTokenizer</c> applies merges too, but llama.cpp's ids depend on its exact loop:
/// a queue ordered by merge rank then by left position, stale pairs skipped, merges looked up
/// by the strings of both sides (so a merge whose result is not in the vocabulary still applies), words that are
/// whole tokens kept when <c>ignore_merges</c> is set, and unknown results spelled out as single-character tokens.
/// So the loop is ours.
/// </remarks>
internal sealed class BytePairMerger
{
    private readonly Vocabulary _vocabulary;
    private readonly MergeRanks _ranks;
    private readonly PriorityQueue<Pair, (int Rank, int Left)> _queue = new();
    private readonly List<Symbol> _symbols = [];

    public BytePairMerger(Vocabulary vocabulary, MergeRanks ranks)
    {
        _vocabulary = vocabulary;
        _ranks = ranks;
    }

    /// <summary>
    /// Merges <paramref name="word"/> and reports each resulting token with the range of word characters it covers.
    /// </summary>
    /// <param name="word">One pre-tokenized word: GPT-2 byte characters, or raw text for SentencePiece-style BPE.</param>
    /// <param name="ignoreMerges">Emit the word whole when it is a token (llama.cpp's <c>ignore_merges</c>).</param>
    /// <param name="rawText">The word is raw text (not byte characters): unknown pieces fall back to <c>&lt;0xXX&gt;</c> tokens.</param>
    /// <param name="emit">Receives (token id, first word character, end word character).</param>
    public void Encode(string word, bool ignoreMerges, bool rawText, Action<int, int, int> emit)
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

        // One symbol per code point (llama.cpp splits the UTF-8 word into characters); a byte-encoded word has one
        // character per byte, all in the BMP.
        _symbols.Clear();
        _queue.Clear();
        for (int i = 0; i < word.Length;)
        {
            int length = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            int index = _symbols.Count;
            _symbols.Add(new Symbol(i, length, index - 1, i + length == word.Length ? -1 : index + 1, _vocabulary.Find(word.AsSpan(i, length))));
            i += length;
        }

        for (int i = 1; i < _symbols.Count; i++)
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

            // Stale when either side changed since the pair was queued. llama.cpp compares the two texts with the
            // queued text; both start where the left symbol starts, so comparing lengths is the same test.
            if (left.Length + right.Length != pair.Size)
            {
                continue;
            }

            left = left with { Length = left.Length + right.Length, Next = right.Next, Id = _vocabulary.Find(word.AsSpan(left.Start, pair.Size)) };
            _symbols[pair.Left] = left;
            _symbols[pair.Right] = right with { Length = 0 };
            if (right.Next >= 0)
            {
                _symbols[right.Next] = _symbols[right.Next] with { Previous = pair.Left };
            }

            AddPair(word, left.Previous, pair.Left);
            AddPair(word, pair.Left, left.Next);
        }

        Span<byte> utf8 = stackalloc byte[4];
        foreach (var symbol in _symbols)
        {
            if (symbol.Length == 0)
            {
                continue;
            }

            int end = symbol.Start + symbol.Length;
            if (symbol.Id >= 0)
            {
                emit(symbol.Id, symbol.Start, end);
                continue;
            }

            var text = word.AsSpan(symbol.Start, symbol.Length);
            if (rawText)
            {
                // SentencePiece-style BPE: each UTF-8 byte as its <0xXX> token, misses dropped (as llama.cpp does).
                for (int i = 0; i < text.Length;)
                {
                    System.Text.Rune.DecodeFromUtf16(text[i..], out var rune, out int consumed);
                    int count = rune.EncodeToUtf8(utf8);
                    foreach (byte b in utf8[..count])
                    {
                        int id = _vocabulary.Find(ByteTokenText(b));
                        if (id >= 0)
                        {
                            emit(id, symbol.Start, end);
                        }
                    }

                    i += consumed;
                }

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
                        emit(single, symbol.Start, end);
                    }
                }
            }
        }
    }

    /// <summary>The text of a byte-fallback token, e.g. "&lt;0x0A&gt;".</summary>
    public static string ByteTokenText(byte value) => "<0x" + value.ToString("X2", System.Globalization.CultureInfo.InvariantCulture) + ">";

    private void AddPair(string word, int left, int right)
    {
        if (left < 0 || right < 0)
        {
            return;
        }

        var l = _symbols[left];
        var r = _symbols[right];
        int rank = _ranks.Find(l.Id, r.Id, word.AsSpan(l.Start, l.Length), word.AsSpan(r.Start, r.Length));
        if (rank >= 0)
        {
            _queue.Enqueue(new Pair(left, right, l.Length + r.Length), (rank, left));
        }
    }

    /// <summary>A run of word characters; <paramref name="Id"/> is the token with that text, or -1.</summary>
    private readonly record struct Symbol(int Start, int Length, int Previous, int Next, int Id);

    private readonly record struct Pair(int Left, int Right, int Size);
}
