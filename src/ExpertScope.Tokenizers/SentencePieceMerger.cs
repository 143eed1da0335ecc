using System.Globalization;
using System.Text;
using ExpertScope.Core;

namespace ExpertScope.Tokenizers;

/// <summary>
/// llama.cpp's SentencePiece merge (<c>llm_tokenizer_spm_session</c>): start from single code points, repeatedly
/// merge the adjacent pair whose concatenation is the highest-scoring token (leftmost on ties), then spell out
/// symbols that are not tokens as byte tokens.
/// </summary>
/// <remarks>
/// Microsoft.ML.Tokenizers' <c>SentencePieceTokenizer</c> needs the original protobuf model, which a GGUF file does
/// not carry, and its BPE differs in details llama.cpp's ids depend on (tie order, byte fallback lookup, the
/// re-segmentation of symbols). So this loop is ours.
/// </remarks>
internal sealed class SentencePieceMerger
{
    private readonly Vocabulary _vocabulary;
    private readonly string _source;
    private readonly List<Symbol> _symbols = [];
    private readonly PriorityQueue<Pair, Pair> _queue = new(PairComparer.Instance);
    private readonly Dictionary<string, (int Left, int Right)> _reverseMerges = new(StringComparer.Ordinal);

    public SentencePieceMerger(Vocabulary vocabulary, string source)
    {
        _vocabulary = vocabulary;
        _source = source;
    }

    /// <summary>
    /// Encodes <paramref name="text"/> (spaces already turned into "▁") and reports each token with the range of
    /// <paramref name="text"/> characters it covers.
    /// </summary>
    public void Encode(string text, Action<int, int, int> emit)
    {
        _symbols.Clear();
        _queue.Clear();
        _reverseMerges.Clear();

        // One symbol per code point (llama.cpp splits the UTF-8 text into characters).
        for (int i = 0; i < text.Length;)
        {
            int length = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            int index = _symbols.Count;
            _symbols.Add(new Symbol(i, length, index - 1, i + length == text.Length ? -1 : index + 1));
            i += length;
        }

        for (int i = 1; i < _symbols.Count; i++)
        {
            AddPair(text, i - 1, i);
        }

        while (_queue.TryDequeue(out var pair, out _))
        {
            var left = _symbols[pair.Left];
            var right = _symbols[pair.Right];
            if (left.Length == 0 || right.Length == 0 || left.Length + right.Length != pair.Size)
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

            AddPair(text, left.Previous, pair.Left);
            AddPair(text, pair.Left, left.Next);
        }

        for (int i = 0; i != -1 && _symbols.Count > 0; i = _symbols[i].Next)
        {
            Resegment(text, _symbols[i], emit, depth: 0);
        }
    }

    private void Resegment(string text, Symbol symbol, Action<int, int, int> emit, int depth)
    {
        string piece = text.Substring(symbol.Start, symbol.Length);
        int id = _vocabulary.Find(piece);
        if (id >= 0)
        {
            emit(id, symbol.Start, symbol.Start + symbol.Length);
            return;
        }

        // Only merged symbols can be missing from the vocabulary through a recorded merge; the depth bound guards
        // against a cycle in that record, which a well-formed vocabulary never produces.
        if (_reverseMerges.TryGetValue(piece, out var parts) && depth < 64)
        {
            Resegment(text, _symbols[parts.Left], emit, depth + 1);
            Resegment(text, _symbols[parts.Right], emit, depth + 1);
            return;
        }

        Span<byte> bytes = stackalloc byte[Encoding.UTF8.GetMaxByteCount(piece.Length)];
        int count = Encoding.UTF8.GetBytes(piece, bytes);
        foreach (byte b in bytes[..count])
        {
            emit(ByteToToken(b), symbol.Start, symbol.Start + symbol.Length);
        }
    }

    /// <summary>The byte-fallback token <c>&lt;0xXX&gt;</c>, else the one-character token (llama.cpp's byte_to_token).</summary>
    private int ByteToToken(byte value)
    {
        int id = _vocabulary.Find(BytePairMerger.ByteTokenText(value));
        if (id < 0 && value < 0x80)
        {
            id = _vocabulary.Find(((char)value).ToString());
        }

        return id >= 0 ? id : throw new ExpertScopeException($"{_source}: the vocabulary has no token for byte 0x{value:X2} (no <0x{value:X2}> byte-fallback token).");
    }

    private void AddPair(string text, int left, int right)
    {
        if (left < 0 || right < 0)
        {
            return;
        }

        var l = _symbols[left];
        var r = _symbols[right];
        string merged = text.Substring(l.Start, l.Length + r.Length);
        int id = _vocabulary.Find(merged);
        if (id < 0)
        {
            return;
        }

        var pair = new Pair(left, right, _vocabulary.Score(id), merged.Length);
        _queue.Enqueue(pair, pair);
        _reverseMerges[merged] = (left, right);
    }

    private readonly record struct Symbol(int Start, int Length, int Previous, int Next);

    private readonly record struct Pair(int Left, int Right, float Score, int Size);

    /// <summary>Highest score first; on equal scores the leftmost pair (llama.cpp's comparator).</summary>
    private sealed class PairComparer : IComparer<Pair>
    {
        public static readonly PairComparer Instance = new();

        public int Compare(Pair x, Pair y)
        {
            int byScore = y.Score.CompareTo(x.Score);
            return byScore != 0 ? byScore : x.Left.CompareTo(y.Left);
        }
    }
}
