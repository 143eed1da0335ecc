using System.Buffers;
using System.Globalization;
using System.Text;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Tokenizers.PreTokenization;
using Microsoft.ML.Tokenizers;

namespace ExpertScope.Tokenizers;

/// <summary>
/// The tokenizer a GGUF file describes (<c>tokenizer.ggml.*</c>), reproducing llama.cpp's <c>llama_tokenize</c>
/// and <c>llama_detokenize</c> id for id: byte-level BPE (<c>gpt2</c>) with the pre-tokenizer named by
/// <c>tokenizer.ggml.pre</c>, Gemma 4's SentencePiece-style BPE (<c>gemma4</c>), or SentencePiece merging (<c>llama</c>).
/// </summary>
/// <remarks>
/// It derives from Microsoft.ML.Tokenizers' <see cref="Tokenizer"/>, so it plugs into code written against that
/// abstraction (<c>EncodeToIds</c>, <c>EncodeToTokens</c>, <c>CountTokens</c>, <c>Decode</c>); those inherited
/// entry points add BOS/EOS as the model asks and match special tokens in the text. The algorithms themselves are
/// our own (see <see cref="BytePairMerger"/>, <see cref="SentencePieceMerger"/> and <see cref="LlamaPreTokenizer"/> for why).
/// Instances are immutable after loading and safe to use from several threads at once.
/// </remarks>
public sealed class GgufTokenizer : Tokenizer
{
    private const char SpaceMarker = '\u2581';

    // Texts llama.cpp forces to control tokens whatever their stored type: end-of-generation markers (its EOG list).
    private static readonly string[] EndOfGenerationTexts =
    [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
        "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
        "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<\uFF5Cend\u2581of\u2581sentence\uFF5C>", "[e~[",
    ];

    // Fill-in-the-middle markers, forced to control tokens when the file does not name that FIM token by id.
    private static readonly (string Key, string[] Texts)[] FillInTheMiddleTexts =
    [
        ("fim_pre", ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\uFF5Cfim\u2581begin\uFF5C>", "<PRE>", "\u2581<PRE>", "<|code_prefix|>", "<|prefix|>"]),
        ("fim_suf", ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\uFF5Cfim\u2581hole\uFF5C>", "<SUF>", "\u2581<SUF>", "<|code_suffix|>", "<|suffix|>"]),
        ("fim_mid", ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\uFF5Cfim\u2581end\uFF5C>", "<MID>", "\u2581<MID>", "<|code_middle|>", "<|middle|>"]),
        ("fim_pad", ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]),
        ("fim_rep", ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]),
        ("fim_sep", ["<|file_sep|>"]),
    ];

    private readonly Vocabulary _vocabulary;
    private readonly LlamaPreTokenizer? _preTokenizer;
    private readonly MergeRanks? _ranks;
    private readonly int[] _specialTokens;
    private readonly byte[]?[] _pieces;
    private readonly bool _cleanSpaces;
    private readonly bool _ignoreMerges;
    private readonly string _source;

    private GgufTokenizer(
        string source,
        TokenizerKind kind,
        Vocabulary vocabulary,
        LlamaPreTokenizer? preTokenizer,
        MergeRanks? ranks,
        SpecialIds ids,
        bool addBos,
        bool addEos,
        bool addSpacePrefix,
        bool cleanSpaces,
        IReadOnlySet<int> endOfGeneration)
    {
        _source = source;
        Kind = kind;
        _vocabulary = vocabulary;
        _preTokenizer = preTokenizer;
        _ranks = ranks;
        _ignoreMerges = preTokenizer?.IgnoreMerges ?? false;
        _cleanSpaces = cleanSpaces;
        BosId = ids.Bos;
        EosId = ids.Eos;
        UnknownId = ids.Unknown;
        PaddingId = ids.Padding;
        EndOfTurnId = ids.EndOfTurn;
        EndOfGenerationIds = endOfGeneration;
        AddBos = addBos;
        AddEos = addEos;
        AddSpacePrefix = addSpacePrefix;
        _pieces = new byte[vocabulary.Count][];

        // llama.cpp's special-token cache: control, user-defined and unknown tokens, longest text first.
        _specialTokens = Enumerable.Range(0, vocabulary.Count)
            .Where(id => (vocabulary.Attributes[id] & (TokenAttributes.Control | TokenAttributes.UserDefined | TokenAttributes.Unknown)) != 0)
            .OrderByDescending(id => Encoding.UTF8.GetByteCount(vocabulary.Texts[id]))
            .ToArray();
    }

    /// <summary>The algorithm (<c>tokenizer.ggml.model</c>).</summary>
    public TokenizerKind Kind { get; }

    /// <summary>The pre-tokenizer name for BPE vocabularies (<c>tokenizer.ggml.pre</c>, "default" when absent); null for SentencePiece.</summary>
    public string? PreTokenizerName => _preTokenizer?.Name;

    /// <summary>Number of tokens (<c>tokenizer.ggml.tokens</c>).</summary>
    public int VocabularySize => _vocabulary.Count;

    /// <summary>Beginning-of-sequence token (<c>tokenizer.ggml.bos_token_id</c>, else llama.cpp's default), or null.</summary>
    public int? BosId { get; }

    /// <summary>End-of-sequence token (<c>tokenizer.ggml.eos_token_id</c>, else llama.cpp's default), or null.</summary>
    public int? EosId { get; }

    /// <summary>Unknown token (<c>tokenizer.ggml.unknown_token_id</c>), or null.</summary>
    public int? UnknownId { get; }

    /// <summary>Padding token (<c>tokenizer.ggml.padding_token_id</c>), or null.</summary>
    public int? PaddingId { get; }

    /// <summary>End-of-turn token (<c>tokenizer.ggml.eot_token_id</c>), or null.</summary>
    public int? EndOfTurnId { get; }

    /// <summary>
    /// Tokens that end generation (llama.cpp's EOG set): EOS, end-of-turn, and tokens whose text is one of llama.cpp's
    /// end markers (e.g. "&lt;|im_end|&gt;", "&lt;|endoftext|&gt;") or a fill-in-the-middle pad/repo/separator marker.
    /// </summary>
    public IReadOnlySet<int> EndOfGenerationIds { get; }

    /// <summary>Whether encoding with special tokens prepends BOS (<c>tokenizer.ggml.add_bos_token</c>).</summary>
    public bool AddBos { get; }

    /// <summary>Whether encoding with special tokens appends EOS (<c>tokenizer.ggml.add_eos_token</c>).</summary>
    public bool AddEos { get; }

    /// <summary>SentencePiece: a space is put before text that starts the input or follows a special token (<c>tokenizer.ggml.add_space_prefix</c>).</summary>
    public bool AddSpacePrefix { get; }

    /// <summary>Opens a GGUF file and reads its tokenizer.</summary>
    /// <exception cref="ExpertScopeException">The file is not GGUF or its tokenizer metadata is missing or unsupported.</exception>
    public static GgufTokenizer Load(string path)
    {
        using var file = GgufFile.Open(path);
        return FromGguf(file);
    }

    /// <summary>Builds the tokenizer from a GGUF file's <c>tokenizer.ggml.*</c> metadata (the file may be disposed afterwards).</summary>
    /// <exception cref="ExpertScopeException">The tokenizer metadata is missing, inconsistent or of an unsupported kind.</exception>
    public static GgufTokenizer FromGguf(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        string source = file.FilePath;
        string model = file.TryGetString("tokenizer.ggml.model")
            ?? throw new ExpertScopeException($"{source}: no tokenizer (metadata 'tokenizer.ggml.model' is missing).");
        var kind = model switch
        {
            "gpt2" or "gemma4" => TokenizerKind.BytePair,
            "llama" => TokenizerKind.SentencePiece,
            _ => throw new ExpertScopeException($"{source}: unsupported tokenizer model '{model}' (supported: gpt2, gemma4, llama)."),
        };

        string[] texts = (string[])(file.TryGetArray<string>("tokenizer.ggml.tokens")
            ?? throw new ExpertScopeException($"{source}: metadata 'tokenizer.ggml.tokens' is missing.")).Clone();
        int count = texts.Length;
        float[]? scores = file.TryGetArray<float>("tokenizer.ggml.scores");
        if (scores is not null && scores.Length < count)
        {
            throw new ExpertScopeException($"{source}: 'tokenizer.ggml.scores' has {scores.Length} entries for {count} tokens.");
        }

        int[]? types = ReadIntegerArray(file, "tokenizer.ggml.token_type");
        if (types is not null && types.Length < count)
        {
            throw new ExpertScopeException($"{source}: 'tokenizer.ggml.token_type' has {types.Length} entries for {count} tokens.");
        }

        var attributes = new TokenAttributes[count];
        for (int id = 0; id < count; id++)
        {
            // llama.cpp reads token texts as C strings: a text ends at its first NUL, and an empty one is renamed.
            texts[id] = CutAtNul(texts[id]);
            if (texts[id].Length == 0)
            {
                texts[id] = "[EMPTY_" + id.ToString(CultureInfo.InvariantCulture) + "]";
            }

            attributes[id] = types is null ? TokenAttributes.Normal : types[id] switch
            {
                1 => TokenAttributes.Normal,
                2 => TokenAttributes.Unknown,
                3 => TokenAttributes.Control,
                4 => TokenAttributes.UserDefined,
                5 => TokenAttributes.Unused,
                6 => TokenAttributes.Byte,
                _ => TokenAttributes.Undefined,
            };
        }

        var vocabulary = new Vocabulary(texts, scores, attributes);
        ApplyNameBasedAttributes(file, vocabulary);

        LlamaPreTokenizer? preTokenizer = null;
        MergeRanks? ranks = null;
        bool addBos, addSpacePrefix, cleanSpaces;
        SpecialIds ids;
        if (kind == TokenizerKind.BytePair)
        {
            // The gemma4 model always uses its own pre-tokenizer and names no default special tokens.
            preTokenizer = LlamaPreTokenizer.Create(model == "gemma4" ? "gemma4" : file.TryGetString("tokenizer.ggml.pre"), source);
            // Kimi K2 files may carry no merges; llama.cpp then merges nothing.
            string[] merges = file.TryGetArray<string>("tokenizer.ggml.merges")
                ?? (preTokenizer.Name == "kimi-k2" ? [] : throw new ExpertScopeException($"{source}: BPE tokenizer without 'tokenizer.ggml.merges'."));
            ranks = new MergeRanks(vocabulary, Array.ConvertAll(merges, CutAtNul));
            ids = model == "gemma4"
                ? new SpecialIds(Bos: null, Eos: null, Unknown: null, Padding: null, EndOfTurn: null)
                : new SpecialIds(Bos: 11, Eos: 11, Unknown: null, Padding: null, EndOfTurn: null);
            addBos = preTokenizer.AddBos;
            addSpacePrefix = false;
            cleanSpaces = preTokenizer.CleanSpaces;
        }
        else
        {
            ids = new SpecialIds(Bos: 1, Eos: 2, Unknown: 0, Padding: null, EndOfTurn: null);
            addBos = true;
            addSpacePrefix = true;
            cleanSpaces = false;
        }

        addSpacePrefix = file.TryGetBool("tokenizer.ggml.add_space_prefix") ?? addSpacePrefix;
        ids = new SpecialIds(
            ReadId(file, "tokenizer.ggml.bos_token_id", ids.Bos, count),
            ReadId(file, "tokenizer.ggml.eos_token_id", ids.Eos, count),
            ReadId(file, "tokenizer.ggml.unknown_token_id", ids.Unknown, count),
            ReadId(file, "tokenizer.ggml.padding_token_id", ids.Padding, count),
            ReadId(file, "tokenizer.ggml.eot_token_id", ids.EndOfTurn, count));
        addBos = file.TryGetBool("tokenizer.ggml.add_bos_token") ?? addBos;

        // llama.cpp forces BOS on for Gemma 4 whatever the file says.
        addBos |= preTokenizer?.KeepsNewlineTokens ?? false;
        bool addEos = file.TryGetBool("tokenizer.ggml.add_eos_token") ?? false;

        var endOfGeneration = FindEndOfGeneration(file, vocabulary, ids);
        return new GgufTokenizer(source, kind, vocabulary, preTokenizer, ranks, ids, addBos, addEos, addSpacePrefix, cleanSpaces, endOfGeneration);
    }

    /// <summary>
    /// Token ids for <paramref name="text"/>, exactly as llama.cpp's <c>llama_tokenize</c> returns them.
    /// </summary>
    /// <param name="text">The text.</param>
    /// <param name="addSpecial">Add BOS/EOS as the model asks (<see cref="AddBos"/>, <see cref="AddEos"/>).</param>
    /// <param name="parseSpecial">Match control tokens written in the text (e.g. "&lt;s&gt;"); user-defined tokens always match.</param>
    /// <exception cref="ExpertScopeException">The model asks for BOS/EOS but has none, or a byte has no token.</exception>
    public IReadOnlyList<int> Encode(string text, bool addSpecial = true, bool parseSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        EncodeCore(text, addSpecial, parseSpecial, (id, _, _) => ids.Add(id));
        return ids;
    }

    /// <summary>
    /// Like <see cref="Encode"/>, with each token's span of <paramref name="text"/>: <see cref="EncodedToken.Offset"/>
    /// is the [start, end) range of UTF-16 characters the token covers. Tokens for part of a character (a byte token of
    /// an emoji) each carry the whole character's span; added BOS/EOS and SentencePiece's space prefix are empty spans.
    /// <see cref="EncodedToken.Value"/> is <see cref="TokenToPiece"/>.
    /// </summary>
    /// <exception cref="ExpertScopeException">As for <see cref="Encode"/>.</exception>
    public IReadOnlyList<EncodedToken> EncodeWithOffsets(string text, bool addSpecial = true, bool parseSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tokens = new List<EncodedToken>();
        EncodeCore(text, addSpecial, parseSpecial, (id, start, end) => tokens.Add(new EncodedToken(id, TokenToPiece(id), new Range(start, end))));
        return tokens;
    }

    /// <summary>The text of <paramref name="ids"/> as llama.cpp's <c>llama_detokenize</c> gives it, special tokens left out.</summary>
    public override string Decode(IEnumerable<int> ids) => Decode(ids, removeSpecial: false, unparseSpecial: false);

    /// <summary>The text of <paramref name="ids"/> as llama.cpp's <c>llama_detokenize</c> gives it.</summary>
    /// <param name="ids">Token ids.</param>
    /// <param name="removeSpecial">Drop a leading BOS and trailing EOS the model adds (and then keep a SentencePiece prefix space).</param>
    /// <param name="unparseSpecial">Write control tokens as their text instead of leaving them out.</param>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public string Decode(IEnumerable<int> ids, bool removeSpecial, bool unparseSpecial) =>
        Encoding.UTF8.GetString(DecodeToBytes(ids, removeSpecial, unparseSpecial));

    /// <inheritdoc/>
    public override OperationStatus Decode(IEnumerable<int> ids, Span<char> destination, out int idsConsumed, out int charsWritten)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var list = ids.ToList();

        // Decoding is not local (space cleaning looks at neighbours), so find the longest prefix that fits.
        int low = 0, high = list.Count;
        while (low < high)
        {
            int middle = (low + high + 1) / 2;
            if (Decode(list.Take(middle)).Length <= destination.Length)
            {
                low = middle;
            }
            else
            {
                high = middle - 1;
            }
        }

        string text = Decode(list.Take(low));
        text.AsSpan().CopyTo(destination);
        idsConsumed = low;
        charsWritten = text.Length;
        return low == list.Count ? OperationStatus.Done : OperationStatus.DestinationTooSmall;
    }

    /// <summary>The bytes of <paramref name="ids"/> decoded (see <see cref="Decode(IEnumerable{int}, bool, bool)"/>); pieces of a character may be split across tokens.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public byte[] DecodeToBytes(IEnumerable<int> ids, bool removeSpecial = false, bool unparseSpecial = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var list = ids as IReadOnlyList<int> ?? ids.ToList();
        int first = 0, end = list.Count;
        bool removeSpace = AddSpacePrefix;
        if (removeSpecial && AddBos && end > 0 && list[0] == BosId)
        {
            removeSpace = false;
            first = 1;
        }

        if (removeSpecial && AddEos && end > first && list[end - 1] == EosId)
        {
            end--;
        }

        var bytes = new List<byte>();
        for (int i = first; i < end; i++)
        {
            var piece = PieceBytes(list[i], unparseSpecial);
            if (removeSpace && piece.Length > 0 && piece[0] == (byte)' ')
            {
                piece = piece[1..];
            }

            removeSpace = false;
            bytes.AddRange(piece);
        }

        return _cleanSpaces ? CleanSpaces(bytes) : [.. bytes];
    }

    /// <summary>
    /// What a token displays as: its text after byte-level or "▁" decoding, control tokens included (e.g. "&lt;s&gt;").
    /// A token holding only part of a UTF-8 character shows each such byte as <c>&lt;0xXX&gt;</c>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="id"/> is outside the vocabulary.</exception>
    public string TokenToPiece(int id)
    {
        var bytes = PieceBytes(id, special: true);
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return DescribeBytes(bytes);
        }
    }

    /// <summary>The bytes a token contributes to decoded text (llama.cpp's <c>token_to_piece</c>).</summary>
    /// <param name="id">The token.</param>
    /// <param name="special">Include control and unknown tokens' text (otherwise they are empty).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="id"/> is outside the vocabulary.</exception>
    public byte[] TokenToBytes(int id, bool special = true) => PieceBytes(id, special).ToArray();

    /// <summary>The token's stored text (<c>tokenizer.ggml.tokens</c>), e.g. "Ġthe" or "▁the".</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="id"/> is outside the vocabulary.</exception>
    public string GetTokenText(int id) => _vocabulary.Texts[CheckId(id)];

    /// <summary>The id of the token whose stored text is <paramref name="text"/>, or null.</summary>
    public int? FindToken(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int id = _vocabulary.Find(text);
        return id >= 0 ? id : null;
    }

    /// <summary>The token's attributes (type plus llama.cpp's by-name fixes).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="id"/> is outside the vocabulary.</exception>
    public TokenAttributes GetAttributes(int id) => _vocabulary.Attributes[CheckId(id)];

    /// <summary>The token's score (<c>tokenizer.ggml.scores</c>, 0 when absent).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="id"/> is outside the vocabulary.</exception>
    public float GetScore(int id) => _vocabulary.Score(CheckId(id));

    /// <inheritdoc/>
    protected override EncodeResults<EncodedToken> EncodeToTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        string input = text ?? textSpan.ToString();
        var tokens = EncodeWithOffsets(input);
        int consumed = input.Length;
        if (settings.MaxTokenCount < tokens.Count)
        {
            // Truncated: report the text up to the end of the last token kept.
            tokens = [.. tokens.Take(Math.Max(0, settings.MaxTokenCount))];
            consumed = tokens.Count == 0 ? 0 : tokens[^1].Offset.End.Value;
        }

        return new EncodeResults<EncodedToken> { Tokens = tokens, NormalizedText = null, CharsConsumed = consumed };
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private int CheckId(int id) =>
        (uint)id < (uint)_vocabulary.Count ? id : throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id {id} is outside the vocabulary of {_vocabulary.Count} tokens.");

    private void EncodeCore(string text, bool addSpecial, bool parseSpecial, Action<int, int, int> emit)
    {
        // The mergers hold per-call scratch state, which keeps the tokenizer itself safe to share across threads.
        var sentencePiece = Kind == TokenizerKind.SentencePiece ? new SentencePieceMerger(_vocabulary, _source) : null;
        var bytePair = _ranks is null ? null : new BytePairMerger(_vocabulary, _ranks);
        var fragments = Partition(text, parseSpecial);
        if (addSpecial && AddBos)
        {
            emit(BosId ?? throw new ExpertScopeException($"{_source}: the model asks for a BOS token but defines none."), 0, 0);
        }

        bool previousWasSpecial = true;
        foreach (var fragment in fragments)
        {
            if (fragment.TokenId >= 0)
            {
                emit(fragment.TokenId, fragment.Start, fragment.Start + fragment.Length);
                previousWasSpecial = true;
                continue;
            }

            if (sentencePiece is not null)
            {
                EncodeSentencePiece(sentencePiece, text, fragment, prefixSpace: AddSpacePrefix && previousWasSpecial, emit);
            }
            else
            {
                EncodeBytePair(bytePair!, text, fragment, emit);
            }

            previousWasSpecial = false;
        }

        if (addSpecial && AddEos)
        {
            emit(EosId ?? throw new ExpertScopeException($"{_source}: the model asks for an EOS token but defines none."), text.Length, text.Length);
        }
    }

    private static void EncodeSentencePiece(SentencePieceMerger merger, string text, Fragment fragment, bool prefixSpace, Action<int, int, int> emit)
    {
        int offset = prefixSpace ? 1 : 0;
        var escaped = new StringBuilder(fragment.Length + offset);
        if (prefixSpace)
        {
            escaped.Append(SpaceMarker);
        }

        for (int i = 0; i < fragment.Length; i++)
        {
            char c = text[fragment.Start + i];
            escaped.Append(c == ' ' ? SpaceMarker : c);
        }

        // Escaped character k is input character fragment.Start + k - offset; the added prefix covers nothing.
        int Source(int k) => fragment.Start + Math.Max(0, k - offset);
        merger.Encode(escaped.ToString(), (id, start, end) => emit(id, Source(start), Math.Max(Source(start), Source(end))));
    }

    private void EncodeBytePair(BytePairMerger merger, string text, Fragment fragment, Action<int, int, int> emit)
    {
        var preTokenizer = _preTokenizer!;
        bool raw = preTokenizer.SentencePieceStyle;

        // Code points of the fragment and where each starts in the input (lone surrogates read as U+FFFD, as
        // llama.cpp reads invalid UTF-8); SentencePiece-style BPE first turns spaces into "▁".
        var codePoints = new List<int>(fragment.Length);
        var starts = new List<int>(fragment.Length + 1);
        int end = fragment.Start + fragment.Length;
        for (int i = fragment.Start; i < end;)
        {
            Rune.DecodeFromUtf16(text.AsSpan(i, end - i), out var rune, out int consumed);
            codePoints.Add(raw && rune.Value == ' ' ? SpaceMarker : rune.Value);
            starts.Add(i);
            i += consumed;
        }

        starts.Add(end);
        var pieces = preTokenizer.Split(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(codePoints));

        // The word handed to the merger: GPT-2 byte characters (one per UTF-8 byte) or the raw text; each of its
        // characters remembers the input range of the code point it came from.
        var word = new StringBuilder();
        var charStart = new List<int>();
        var charEnd = new List<int>();
        Span<byte> utf8 = stackalloc byte[4];
        Span<char> utf16 = stackalloc char[2];
        int cp = 0;
        foreach (int pieceLength in pieces)
        {
            word.Clear();
            charStart.Clear();
            charEnd.Clear();
            bool onlyNewlines = true;
            for (int k = 0; k < pieceLength; k++, cp++)
            {
                var rune = new Rune(codePoints[cp]);
                onlyNewlines &= rune.Value == '\n';
                int count = raw ? rune.EncodeToUtf16(utf16) : rune.EncodeToUtf8(utf8);
                for (int b = 0; b < count; b++)
                {
                    word.Append(raw ? utf16[b] : ByteLevel.ToChar(utf8[b]));
                    charStart.Add(starts[cp]);
                    charEnd.Add(starts[cp + 1]);
                }
            }

            bool keepWhole = _ignoreMerges || (onlyNewlines && preTokenizer.KeepsNewlineTokens);
            merger.Encode(word.ToString(), keepWhole, raw, (id, s, e) => emit(id, charStart[s], charEnd[e - 1]));
        }
    }

    /// <summary>
    /// Splits the input at special tokens as llama.cpp's <c>tokenizer_st_partition</c> does: each special token in
    /// turn (longest first) is cut out of every remaining text fragment, left to right.
    /// </summary>
    private List<Fragment> Partition(string text, bool parseSpecial)
    {
        var fragments = new List<Fragment>();
        if (text.Length == 0)
        {
            return fragments;
        }

        fragments.Add(new Fragment(-1, 0, text.Length));
        var next = new List<Fragment>();
        foreach (int id in _specialTokens)
        {
            var attributes = _vocabulary.Attributes[id];
            if (!parseSpecial && (attributes & (TokenAttributes.Control | TokenAttributes.Unknown)) != 0)
            {
                continue;
            }

            string token = _vocabulary.Texts[id];
            next.Clear();
            foreach (var fragment in fragments)
            {
                if (fragment.TokenId >= 0)
                {
                    next.Add(fragment);
                    continue;
                }

                int start = fragment.Start;
                int end = fragment.Start + fragment.Length;
                while (start < end)
                {
                    int match = text.IndexOf(token, start, end - start, StringComparison.Ordinal);
                    if (match < 0)
                    {
                        break;
                    }

                    int leftEnd = match;
                    if ((attributes & TokenAttributes.LeftStrip) != 0)
                    {
                        while (leftEnd > start && IsAsciiSpace(text[leftEnd - 1]))
                        {
                            leftEnd--;
                        }
                    }

                    if (leftEnd > start)
                    {
                        next.Add(new Fragment(-1, start, leftEnd - start));
                    }

                    next.Add(new Fragment(id, match, token.Length));
                    start = match + token.Length;
                    if ((attributes & TokenAttributes.RightStrip) != 0)
                    {
                        while (start < end && IsAsciiSpace(text[start]))
                        {
                            start++;
                        }
                    }
                }

                if (start < end)
                {
                    next.Add(new Fragment(-1, start, end - start));
                }
            }

            (fragments, next) = (next, fragments);
        }

        return fragments;
    }

    private static bool IsAsciiSpace(char c) => c is ' ' or '\t' or '\n' or '\v' or '\f' or '\r';

    /// <summary>llama.cpp's <c>token_to_piece</c> without the leading-space strip, cached per token for special = true.</summary>
    private ReadOnlySpan<byte> PieceBytes(int id, bool special)
    {
        CheckId(id);
        var attributes = _vocabulary.Attributes[id];
        if (!special && (attributes & (TokenAttributes.Unknown | TokenAttributes.Control)) != 0)
        {
            return [];
        }

        // Racing threads may both compute a piece; they store equal arrays, so the cache needs no lock.
        return _pieces[id] ??= ComputePiece(id, attributes);
    }

    private byte[] ComputePiece(int id, TokenAttributes attributes)
    {
        string text = _vocabulary.Texts[id];
        if ((attributes & (TokenAttributes.Unknown | TokenAttributes.Control | TokenAttributes.UserDefined)) != 0)
        {
            return Encoding.UTF8.GetBytes(text);
        }

        if ((attributes & TokenAttributes.Normal) != 0)
        {
            return Kind == TokenizerKind.SentencePiece || (_preTokenizer?.SentencePieceStyle ?? false)
                ? Encoding.UTF8.GetBytes(text.Replace(SpaceMarker, ' '))
                : ByteLevelDecode(text);
        }

        if ((attributes & TokenAttributes.Byte) != 0 && text.Length >= 5 &&
            byte.TryParse(text.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte value))
        {
            return [value];
        }

        return [];
    }

    /// <summary>Byte-level characters back to bytes; a character outside the table is written as llama.cpp writes it.</summary>
    private static byte[] ByteLevelDecode(string text)
    {
        var bytes = new List<byte>(text.Length);
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < text.Length;)
        {
            Rune.DecodeFromUtf16(text.AsSpan(i), out var rune, out int consumed);
            if (consumed == 1 && ByteLevel.TryGetByte(text[i], out byte value))
            {
                bytes.Add(value);
            }
            else
            {
                int n = rune.EncodeToUtf8(utf8);
                var marker = new StringBuilder("[UNK_BYTE_0x");
                foreach (byte b in utf8[..n])
                {
                    marker.Append(b.ToString("x2", CultureInfo.InvariantCulture));
                }

                marker.Append(text).Append(']');
                bytes.AddRange(Encoding.UTF8.GetBytes(marker.ToString()));
            }

            i += consumed;
        }

        return [.. bytes];
    }

    /// <summary>llama.cpp's <c>clean_spaces</c> passes over decoded bytes: " ?", " !", " .", " ,", " ' " and " 's"-style contractions.</summary>
    private static byte[] CleanSpaces(List<byte> input)
    {
        var text = input.ToArray();
        int total = text.Length;

        // Pass 1: no space before ? ! . ,
        int kept = total > 0 ? 1 : 0;
        for (int i = 1; i < total; i++)
        {
            byte x = text[i];
            if (text[i - 1] == ' ' && x is (byte)'?' or (byte)'!' or (byte)'.' or (byte)',')
            {
                kept--;
            }

            text[kept++] = x;
        }

        // Pass 2: a lone apostrophe between spaces loses both spaces.
        total = kept;
        kept = total > 0 ? 1 : 0;
        for (int i = 1; i < total; i++)
        {
            byte x = text[i];
            if (x == '\'' && i + 1 < total && text[i - 1] == ' ' && text[i + 1] == ' ')
            {
                kept--;
                text[++i] = 0;
            }

            text[kept++] = x;
        }

        // Pass 3: " 's", " 'm", " 're", " 've" lose their space (" 't", " 'd", " 'll" keep it).
        total = kept;
        kept = total > 0 ? 1 : 0;
        for (int i = 1; i < total; i++)
        {
            byte x = text[i];
            if (text[i - 1] == ' ' && x == '\'' && i + 1 < total)
            {
                byte x1 = text[i + 1];
                if (x1 is (byte)'s' or (byte)'m')
                {
                    kept--;
                }
                else if (i + 2 < total && ((x1 == 'r' && text[i + 2] == 'e') || (x1 == 'v' && text[i + 2] == 'e')))
                {
                    kept--;
                }
            }

            text[kept++] = x;
        }

        return text[..kept];
    }

    private static string DescribeBytes(ReadOnlySpan<byte> bytes)
    {
        var result = new StringBuilder();
        int i = 0;
        while (i < bytes.Length)
        {
            var status = Rune.DecodeFromUtf8(bytes[i..], out var rune, out int consumed);
            if (status == OperationStatus.Done)
            {
                result.Append(rune.ToString());
            }
            else
            {
                for (int k = 0; k < consumed; k++)
                {
                    result.Append(CultureInfo.InvariantCulture, $"<0x{bytes[i + k]:X2}>");
                }
            }

            i += consumed;
        }

        return result.ToString();
    }

    private static void ApplyNameBasedAttributes(GgufFile file, Vocabulary vocabulary)
    {
        void AddControl(string text)
        {
            int id = vocabulary.Find(text);
            if (id >= 0)
            {
                vocabulary.Attributes[id] |= TokenAttributes.Control;
            }
        }

        foreach (var (key, texts) in FillInTheMiddleTexts)
        {
            if (file.TryGet($"tokenizer.ggml.{key}_token_id") is null)
            {
                foreach (string text in texts)
                {
                    AddControl(text);
                }
            }
        }

        foreach (string text in EndOfGenerationTexts)
        {
            AddControl(text);
        }

        // llama.cpp always renders these gpt-oss markers, as user-defined tokens.
        foreach (string text in (string[])["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"])
        {
            int id = vocabulary.Find(text);
            if (id >= 0)
            {
                vocabulary.Attributes[id] = TokenAttributes.UserDefined;
            }
        }
    }

    private static HashSet<int> FindEndOfGeneration(GgufFile file, Vocabulary vocabulary, SpecialIds ids)
    {
        var result = new HashSet<int>();
        foreach (string text in EndOfGenerationTexts)
        {
            int id = vocabulary.Find(text);
            if (id >= 0)
            {
                result.Add(id);
            }
        }

        foreach (var (key, texts) in FillInTheMiddleTexts.Where(f => f.Key is "fim_pad" or "fim_rep" or "fim_sep"))
        {
            int? stored = ReadId(file, $"tokenizer.ggml.{key}_token_id", null, vocabulary.Count);
            if (stored is not null)
            {
                result.Add(stored.Value);
                continue;
            }

            foreach (string text in texts)
            {
                if (vocabulary.Find(text) is var id and >= 0)
                {
                    result.Add(id);
                }
            }
        }

        foreach (int? id in (int?[])[ids.Eos, ids.EndOfTurn, ReadId(file, "tokenizer.ggml.eom_token_id", null, vocabulary.Count)])
        {
            if (id is not null)
            {
                result.Add(id.Value);
            }
        }

        return result;
    }

    private static string CutAtNul(string text)
    {
        int nul = text.IndexOf('\0', StringComparison.Ordinal);
        return nul < 0 ? text : text[..nul];
    }

    private static int[]? ReadIntegerArray(GgufFile file, string key)
    {
        var value = file.TryGet(key);
        if (value is null)
        {
            return null;
        }

        if (value.Value is not GgufArray array)
        {
            throw new ExpertScopeException($"{file.FilePath}: metadata '{key}' is not an array.");
        }

        return array.Items switch
        {
            int[] ints => ints,
            uint[] uints => Array.ConvertAll(uints, x => unchecked((int)x)),
            long[] longs => Array.ConvertAll(longs, x => (int)x),
            short[] shorts => Array.ConvertAll(shorts, x => (int)x),
            sbyte[] bytes => Array.ConvertAll(bytes, x => (int)x),
            byte[] bytes => Array.ConvertAll(bytes, x => (int)x),
            _ => throw new ExpertScopeException($"{file.FilePath}: metadata '{key}' is not an integer array."),
        };
    }

    /// <summary>
    /// A special token id: the stored value when it is inside the vocabulary, else the default (dropped when it is
    /// not). A stored BOS or EOS outside the vocabulary is an error, since dropping it would change every result.
    /// </summary>
    private static int? ReadId(GgufFile file, string key, int? fallback, int count)
    {
        if (fallback >= count)
        {
            fallback = null;
        }

        long? stored = file.TryGetInteger(key);
        if (stored is { } id && (id < 0 || id >= count) && key is "tokenizer.ggml.bos_token_id" or "tokenizer.ggml.eos_token_id")
        {
            throw new ExpertScopeException(string.Create(
                CultureInfo.InvariantCulture,
                $"{file.FilePath}: metadata '{key}' = {id} is outside the vocabulary of {count} tokens (0 to {count - 1})."));
        }

        return stored is >= 0 && stored < count ? (int)stored : fallback;
    }

    private readonly record struct Fragment(int TokenId, int Start, int Length);

    private readonly record struct SpecialIds(int? Bos, int? Eos, int? Unknown, int? Padding, int? EndOfTurn);
}
