using ExpertScope.Core;

namespace ExpertScope.Tokenizers.PreTokenization;

/// <summary>
/// Splits text into the words BPE merges stay inside, chosen by <c>tokenizer.ggml.pre</c> the way llama.cpp's
/// <c>llm_tokenizer_bpe</c> chooses its list of patterns. Each pattern refines the pieces of the previous one.
/// </summary>
/// <remarks>
/// Microsoft.ML.Tokenizers has regex pre-tokenizers, but llama.cpp does not run these patterns as written: GPT-2,
/// Llama 3, Qwen2, Qwen3.5, Kimi K2 and Gemma 4 go through hand-written scanners, and the rest through std::regex
/// over a category-collapsed text. Reproducing llama.cpp's ids exactly needs those exact semantics, so the splitting
/// is our own.
/// </remarks>
internal sealed class LlamaPreTokenizer
{
    // DeepSeek LLM's letter class without its seven ranges above U+FFFF; those code points are handed to the regex
    // as 'µ', a member of the class that no other DeepSeek LLM pattern matches (see RegexSplitRule).
    private const string DeepSeekLetters =
        "A-Za-z\\u00B5\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u01BA\\u01BC-\\u01BF\\u01C4-\\u0293\\u0295-\\u02AF\\u0370-\\u0373" +
        "\\u0376\\u0377\\u037B-\\u037D\\u037F\\u0386\\u0388-\\u038A\\u038C\\u038E-\\u03A1\\u03A3-\\u03F5\\u03F7-\\u0481" +
        "\\u048A-\\u052F\\u0531-\\u0556\\u10A0-\\u10C5\\u13A0-\\u13F5\\u13F8-\\u13FD\\u1C90-\\u1CBA\\u1CBD-\\u1CBF" +
        "\\u1D00-\\u1D2B\\u1D6B-\\u1D77\\u1D79-\\u1D9A\\u1E00-\\u1F15\\u1F18-\\u1F1D\\u1F20-\\u1F45\\u1F48-\\u1F4D" +
        "\\u1F50-\\u1F57\\u1F59\\u1F5B\\u1F5D\\u1F5F-\\u1F7D\\u1F80-\\u1FB4\\u1FB6-\\u1FBC\\u1FBE\\u1FC2-\\u1FC4" +
        "\\u1FC6-\\u1FCC\\u1FD0-\\u1FD3\\u1FD6-\\u1FDB\\u1FE0-\\u1FEC\\u1FF2-\\u1FF4\\u1FF6-\\u1FFC\\u2102\\u2107" +
        "\\u210A-\\u2113\\u2115\\u2119-\\u211D\\u2124\\u2126\\u2128\\u212A-\\u212D\\u212F-\\u2134\\u2139\\u213C-\\u213F" +
        "\\u2145-\\u2149\\u214E\\u2183\\u2184\\u2C00-\\u2C7B\\u2C7E-\\u2CE4\\u2CEB-\\u2CEE\\u2CF2\\u2CF3\\uA640-\\uA66D" +
        "\\uA680-\\uA69B\\uA722-\\uA76F\\uA771-\\uA787\\uA78B-\\uA78E\\uAB70-\\uABBF\\uFB00-\\uFB06\\uFB13-\\uFB17" +
        "\\uFF21-\\uFF3A\\uFF41-\\uFF5A";

    private static readonly (int First, int Last)[] DeepSeekSupplementaryLetters =
    [
        (0x10400, 0x1044F), (0x104B0, 0x104D3), (0x104D8, 0x104FB), (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2),
        (0x118A0, 0x118DF), (0x1E900, 0x1E943),
    ];

    private readonly SplitRule[] _rules;

    private LlamaPreTokenizer(string name, SplitRule[] rules, bool ignoreMerges, bool cleanSpaces, bool addBos, bool sentencePieceStyle = false)
    {
        Name = name;
        _rules = rules;
        IgnoreMerges = ignoreMerges;
        CleanSpaces = cleanSpaces;
        AddBos = addBos;
        SentencePieceStyle = sentencePieceStyle;
    }

    /// <summary>The <c>tokenizer.ggml.pre</c> value this was built for.</summary>
    public string Name { get; }

    /// <summary>A word that is itself a token is emitted whole, without merging (llama.cpp's <c>ignore_merges</c>).</summary>
    public bool IgnoreMerges { get; }

    /// <summary>Decoding removes the space before ? ! . , and some contractions (llama.cpp's <c>clean_spaces</c>).</summary>
    public bool CleanSpaces { get; }

    /// <summary>The add-BOS default before <c>tokenizer.ggml.add_bos_token</c> is read.</summary>
    public bool AddBos { get; }

    /// <summary>
    /// SentencePiece-style BPE (Gemma 4): spaces become "▁" before splitting (llama.cpp's <c>escape_whitespaces</c>),
    /// words stay raw UTF-8 instead of GPT-2 byte characters, and unknown bytes use <c>&lt;0xXX&gt;</c> tokens.
    /// </summary>
    public bool SentencePieceStyle { get; }

    /// <summary>Gemma 4: a word made only of newlines that is itself a token is kept whole.</summary>
    public bool KeepsNewlineTokens => Name is "gemma4" or "granite-embed-multi-311m";

    /// <summary>
    /// The pre-tokenizer for a <c>tokenizer.ggml.pre</c> value (null or empty means "default", as in llama.cpp),
    /// with the flags llama.cpp ties to that name.
    /// </summary>
    /// <exception cref="ExpertScopeException">The name is not one we implement.</exception>
    public static LlamaPreTokenizer Create(string? name, string source)
    {
        name = string.IsNullOrEmpty(name) ? "default" : name;
        switch (name)
        {
            case "default":
                return new(name, DefaultRules(), ignoreMerges: false, cleanSpaces: true, addBos: false);
            case "llama3" or "llama-v3" or "llama-bpe" or "falcon3" or "falcon-h1" or "pixtral" or "midm-2.0" or "lfm2" or "jina-v5-nano":
                return new(name, [new Llama3SplitRule(maxDigits: 3)], ignoreMerges: true, cleanSpaces: true, addBos: true);
            case "dbrx" or "smaug-bpe" or "glm4" or "chatglm-bpe":
                return new(name, [new Llama3SplitRule(maxDigits: 3)], ignoreMerges: false, cleanSpaces: true, addBos: false);
            case "qwen2" or "deepseek-r1-qwen" or "kormo" or "f2llmv2" or "hunyuan" or "grok-2":
                return new(name, [new Llama3SplitRule(maxDigits: 1)], ignoreMerges: false, cleanSpaces: false, addBos: false);
            case "qwen35":
                return new(name, [new Llama3SplitRule(maxDigits: 1, marksJoinLetters: true)], ignoreMerges: false, cleanSpaces: false, addBos: false);
            case "gpt-4o" or "llama4" or "kanana2" or "talkie" or "minimax-m2":
                return new(name,
                [
                    new RegexSplitRule(
                        "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?" +
                        "|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?" +
                        "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
                ], ignoreMerges: false, cleanSpaces: false, addBos: false);
            case "gemma4" or "granite-embed-multi-311m":
                return new(name, [new NewlineSplitRule()], ignoreMerges: false, cleanSpaces: true, addBos: true, sentencePieceStyle: true);
            case "sarvam-moe":
                return new(name, [new NewlineSplitRule()], ignoreMerges: false, cleanSpaces: false, addBos: false, sentencePieceStyle: true);
            case "kimi-k2":
                return new(name, [new KimiK2SplitRule()], ignoreMerges: false, cleanSpaces: false, addBos: false);
            case "bailingmoe" or "bailingmoe2" or "llada-moe":
                return new(name,
                [
                    new RegexSplitRule("'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"),
                ], ignoreMerges: false, cleanSpaces: false, addBos: false);
            case "exaone-moe":
                return new(name,
                [
                    new RegexSplitRule("(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"),
                ], ignoreMerges: false, cleanSpaces: true, addBos: false);
            case "seed-coder":
                return new(name,
                [
                    new RegexSplitRule("(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
                ], ignoreMerges: false, cleanSpaces: false, addBos: false);
            case "tekken":
                return new(name,
                [
                    new RegexSplitRule("[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
                ], ignoreMerges: true, cleanSpaces: false, addBos: true);
            case "minicpm5":
                return new(name,
                [
                    new RegexSplitRule("\\p{N}{1,3}"),
                    new RegexSplitRule("(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
                ], ignoreMerges: true, cleanSpaces: true, addBos: false);
            case "jais-2":
                return new(name,
                [
                    new RegexSplitRule("(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}"),
                ], ignoreMerges: false, cleanSpaces: true, addBos: false);
            case "bloom" or "gpt3-finnish":
                return new(name,
                [
                    new RegexSplitRule(" ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+"),
                ], ignoreMerges: false, cleanSpaces: true, addBos: false);
            case "poro-chat":
                return new(name,
                [
                    new RegexSplitRule(" ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+"),
                ], ignoreMerges: false, cleanSpaces: false, addBos: false);
            case "viking":
                return new(name,
                [
                    new RegexSplitRule(" ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+"),
                    new RegexSplitRule("\\p{N}"),
                ], ignoreMerges: false, cleanSpaces: false, addBos: false);
            case "chameleon":
                return new(name,
                [
                    new RegexSplitRule("<sentinel:[0-9]+>"),
                    new RegexSplitRule("(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z"),
                    new RegexSplitRule("([\\t\\n]|    |  )"),
                    new RegexSplitRule("\\p{N}"),
                    new RegexSplitRule("[\\p{P}!-/:-@\\[-`{-~]"),
                    new RegexSplitRule("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"),
                ], ignoreMerges: false, cleanSpaces: false, addBos: true);
            case "youtu":
                return new(name,
                [
                    new RegexSplitRule("[\uAC00-\uD7A3\u3131-\u318E]+|[\uFF01\u2026\u201C\u201D\u2018\u2019\u2014\uFF1A\uFF1B\uFF0C\u3001-\u303F\uFE30-\uFE4F]+|[\u3105-\u312F]+|[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+"),
                    new RegexSplitRule("[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
                ], ignoreMerges: true, cleanSpaces: false, addBos: false);
            case "solar-open":
                return new(name, [new Llama3SplitRule(maxDigits: 1)], ignoreMerges: false, cleanSpaces: false, addBos: false);
            case "stablelm2":
                return new(name, [new Llama3SplitRule(maxDigits: 1)], ignoreMerges: false, cleanSpaces: true, addBos: false);
            case "gpt-2" or "phi-2" or "jina-es" or "jina-de" or "gigachat" or "jina-v2-es" or "jina-v2-de" or "a.x-4.0"
                or "mellum" or "modern-bert" or "jina-v1-en" or "jina-v2-code" or "roberta-bpe" or "exaone4" or "mpt" or "olmo" or "jais":
                return new(name, [new Gpt2SplitRule()], ignoreMerges: false, cleanSpaces: true, addBos: false);
            case "trillion" or "granite-docling":
                return new(name, [new Gpt2SplitRule()], ignoreMerges: false, cleanSpaces: false, addBos: false);
            case "starcoder" or "refact" or "codeshell" or "exaone" or "minerva-7b":
                return new(name, [new RegexSplitRule("\\p{N}"), new Gpt2SplitRule()], ignoreMerges: false, cleanSpaces: true, addBos: false);
            case "command-r" or "smollm":
                return new(name, [new RegexSplitRule("\\p{N}"), new Gpt2SplitRule()], ignoreMerges: false, cleanSpaces: false, addBos: false);
            case "falcon":
                return new(name,
                [
                    new RegexSplitRule("[\\p{P}\\$\\+<=>\\^~\\|`]+"),
                    new Gpt2SplitRule(),
                    new RegexSplitRule("[0-9][0-9][0-9]"),
                ], ignoreMerges: false, cleanSpaces: true, addBos: false);
            case "deepseek-llm":
                return new(name,
                [
                    new RegexSplitRule("[\r\n]"),
                    new RegexSplitRule("\\s?[" + DeepSeekLetters + "]+", DeepSeekSupplementary),
                    new RegexSplitRule("\\s?[!-/:-~\\uFF01-\\uFF0F\\uFF1A-\\uFF5E\\u2018-\\u201F\\u3000-\\u3002]+"),
                    new RegexSplitRule("\\s+$"),
                    new RegexSplitRule("[\\u4E00-\\u9FA5\\u0800-\\u4E00\\uAC00-\\uD7FF]+"),
                    new RegexSplitRule("\\p{N}+"),
                ], ignoreMerges: false, cleanSpaces: false, addBos: false);
            case "deepseek-coder":
                return new(name,
                [
                    new RegexSplitRule("[\r\n]"),
                    new RegexSplitRule("\\s?\\p{L}+"),
                    new RegexSplitRule("\\s?\\p{P}+"),
                    new RegexSplitRule("[\\u4E00-\\u9FA5\\u0800-\\u4E00\\uAC00-\\uD7FF]+"),
                    new RegexSplitRule("\\p{N}"),
                ], ignoreMerges: false, cleanSpaces: false, addBos: false);
            case "deepseek-v3" or "hunyuan-dense" or "joyai-llm":
                return new(name,
                [
                    new RegexSplitRule("\\p{N}{1,3}"),
                    new RegexSplitRule("[\\u4E00-\\u9FA5\\u3040-\\u309F\\u30A0-\\u30FF]+"),
                    new RegexSplitRule(
                        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"),
                ], ignoreMerges: false, cleanSpaces: false, addBos: false);
            default:
                throw new ExpertScopeException($"{source}: unsupported pre-tokenizer '{name}' (tokenizer.ggml.pre).");
        }
    }

    private static SplitRule[] DefaultRules() =>
    [
        new RegexSplitRule("[\\p{P}\\$\\+<=>\\^~\\|]+"),
        new Gpt2SplitRule(),
        new RegexSplitRule("\\p{N}+"),
        new RegexSplitRule("[0-9][0-9][0-9]"),
    ];

    /// <summary>Splits <paramref name="codePoints"/> into consecutive pieces; returns their lengths in code points.</summary>
    public List<int> Split(ReadOnlySpan<int> codePoints)
    {
        var pieces = new List<int> { codePoints.Length };
        if (codePoints.IsEmpty)
        {
            return [];
        }

        var next = new List<int>();
        foreach (var rule in _rules)
        {
            next.Clear();
            rule.Split(codePoints, pieces, next);
            (pieces, next) = (next, pieces);
        }

        return pieces;
    }

    private static char DeepSeekSupplementary(int codePoint) =>
        DeepSeekSupplementaryLetters.Any(r => codePoint >= r.First && codePoint <= r.Last) ? '\u00B5' : '\uFFFF';
}
