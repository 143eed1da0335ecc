using System.CommandLine;

namespace ExpertScope.Cli;

/// <summary>
/// Whether special tokens written in a text (e.g. a literal "&lt;|begin_of_text|&gt;") are parsed as those tokens:
/// <c>perplexity</c> and <c>trace</c> read text as llama-perplexity does (as ordinary text) unless
/// <c>--parse-special</c>; <c>tokenize</c> parses them, as llama-tokenize does, unless <c>--no-parse-special</c>.
/// </summary>
public static class SpecialTokenText
{
    /// <summary>A new <c>--parse-special</c> option (default off).</summary>
    public static Option<bool> CreateParseSpecialOption() => new("--parse-special")
    {
        Description = "Parse special tokens written in the text (e.g. \"<|im_start|>\") as those tokens. Off by default, as llama-perplexity: such text is ordinary text.",
    };

    /// <summary>A new <c>--no-parse-special</c> option (default off: special tokens are parsed).</summary>
    public static Option<bool> CreateNoParseSpecialOption() => new("--no-parse-special")
    {
        Description = "Tokenize special tokens written in the text as ordinary text (llama-tokenize's --no-parse-special; by default they are parsed).",
    };
}
