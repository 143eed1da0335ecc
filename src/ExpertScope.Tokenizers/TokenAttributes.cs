namespace ExpertScope.Tokenizers;

/// <summary>
/// What kind of token an id is, as llama.cpp tracks it (<c>llama_token_attr</c>, same bit values). Derived from
/// <c>tokenizer.ggml.token_type</c> plus llama.cpp's by-name fixes (e.g. end-of-turn texts become control tokens).
/// </summary>
[Flags]
public enum TokenAttributes
{
    /// <summary>No attribute.</summary>
    None = 0,

    /// <summary>Token type 0 or an unknown value.</summary>
    Undefined = 1 << 0,

    /// <summary>The unknown token (type 2).</summary>
    Unknown = 1 << 1,

    /// <summary>An unused token (type 5).</summary>
    Unused = 1 << 2,

    /// <summary>An ordinary token learned from text (type 1).</summary>
    Normal = 1 << 3,

    /// <summary>A control token such as BOS or EOS (type 3): matched in text only when special parsing is on.</summary>
    Control = 1 << 4,

    /// <summary>A user-defined token (type 4): always matched in text before pre-tokenization.</summary>
    UserDefined = 1 << 5,

    /// <summary>A byte-fallback token <c>&lt;0xXX&gt;</c> (type 6).</summary>
    Byte = 1 << 6,

    /// <summary>Normalized (unused by GGUF vocabularies).</summary>
    Normalized = 1 << 7,

    /// <summary>Whitespace before the token is dropped when it is matched in text.</summary>
    LeftStrip = 1 << 8,

    /// <summary>Whitespace after the token is dropped when it is matched in text.</summary>
    RightStrip = 1 << 9,

    /// <summary>Matched only as a whole word (unused by GGUF vocabularies).</summary>
    SingleWord = 1 << 10,
}

/// <summary>The tokenization algorithm named by <c>tokenizer.ggml.model</c>.</summary>
public enum TokenizerKind
{
    /// <summary><c>gpt2</c>: byte-level BPE with ranked merges and a pre-tokenizer.</summary>
    BytePair,

    /// <summary><c>llama</c>: SentencePiece-style merging by token score, "▁" for spaces, byte fallback.</summary>
    SentencePiece,
}
