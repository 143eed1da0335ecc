using System.Text;
using System.Text.RegularExpressions;

namespace ExpertScope.Tokenizers.PreTokenization;

/// <summary>
/// A pre-tokenizer pattern that llama.cpp runs through <c>std::regex</c> (ECMAScript) rather than a hand-written
/// scanner. Matches and the gaps between them both become pieces, as in llama.cpp's <c>unicode_regex_split_stl</c>.
/// </summary>
/// <remarks>
/// llama.cpp cannot give std::regex Unicode classes, so when a pattern uses <c>\p{..}</c> it rewrites the text to
/// one character per code point (<see cref="CodePointClass.Collapse"/>) and each <c>\p{X}</c> to "the category
/// marker plus the ASCII members llama.cpp lists for X". We do the same rewrite and run .NET's regex in ECMAScript
/// mode (ASCII-only <c>\s</c>), so quirks carry over: e.g. '~' belongs to neither \p{P} nor \p{S} there.
/// Patterns without \p{..} run over the code points with non-ASCII whitespace turned into \v, as llama.cpp's
/// std::wregex path does.
/// </remarks>
internal sealed class RegexSplitRule : SplitRule
{
    // The ASCII members llama.cpp gives each category when collapsing (k_ucat_map), after the category marker.
    private static readonly (string Name, string Members)[] Categories =
    [
        ("\\p{N}", "\\u00D10-9"),
        ("\\p{L}", "\\u00D2A-Za-z"),
        ("\\p{P}", "\\u00D3!-#%-*,-/:;?@\\[-\\]_{}"),
        ("\\p{M}", "\\u00D4"),
        ("\\p{S}", "\\u00D5$+<->^`|"),
        ("\\p{Lu}", "\\u00D2A-Za-z"),
        ("\\p{Ll}", "\\u00D2A-Za-z"),
        ("\\p{Lt}", "\\u00D2A-Za-z"),
        ("\\p{Lm}", "\\u00D2A-Za-z"),
        ("\\p{Lo}", "\\u00D2A-Za-z"),
    ];

    private readonly Regex _regex;
    private readonly bool _collapsed;
    private readonly Func<int, char> _supplementary;

    /// <param name="pattern">The pattern exactly as llama.cpp lists it (ECMAScript syntax, \p{..} allowed).</param>
    /// <param name="supplementary">
    /// For the wregex path: the character that stands for a code point above U+FFFF (.NET matches UTF-16 units, and
    /// llama.cpp's wide strings hold whole code points). It must be a BMP character the pattern treats the same way.
    /// </param>
    public RegexSplitRule(string pattern, Func<int, char>? supplementary = null)
    {
        _collapsed = Categories.Any(c => pattern.Contains(c.Name, StringComparison.Ordinal));
        string translated = _collapsed ? Collapse(pattern) : pattern;
        _regex = new Regex(translated, RegexOptions.ECMAScript | RegexOptions.CultureInvariant);
        _supplementary = supplementary ?? (_ => '\uFFFF');
    }

    protected override void SplitPiece(ReadOnlySpan<int> codePoints, int start, int end, List<int> output)
    {
        var text = new StringBuilder(end - start);
        for (int i = start; i < end; i++)
        {
            int cp = codePoints[i];
            text.Append(_collapsed ? CodePointClass.Collapse(cp)
                : cp > 0x7F && CodePointClass.IsWhitespace(cp) ? '\v'
                : cp > 0xFFFF ? _supplementary(cp)
                : (char)cp);
        }

        // One character per code point, so match positions are code point offsets within the piece.
        int consumed = 0;
        for (var match = _regex.Match(text.ToString()); match.Success; match = match.NextMatch())
        {
            if (match.Index > consumed)
            {
                output.Add(match.Index - consumed);
            }

            if (match.Length > 0)
            {
                output.Add(match.Length);
            }

            consumed = match.Index + match.Length;
        }

        if (consumed < end - start)
        {
            output.Add(end - start - consumed);
        }
    }

    /// <summary>Rewrites each \p{X} to its collapsed class, adding brackets only outside a class (llama.cpp's rule).</summary>
    private static string Collapse(string pattern)
    {
        var result = new StringBuilder(pattern.Length * 2);
        bool insideClass = false;
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            if (c == '[' && (i == 0 || pattern[i - 1] != '\\'))
            {
                insideClass = true;
                result.Append(c);
                continue;
            }

            if (insideClass && c == ']' && pattern[i - 1] != '\\')
            {
                insideClass = false;
                result.Append(c);
                continue;
            }

            if (c == '\\' && i + 3 < pattern.Length && pattern[i + 1] == 'p' && pattern[i + 2] == '{')
            {
                int close = pattern.IndexOf('}', i + 3);
                if (close >= 0)
                {
                    string name = pattern[i..(close + 1)];
                    var category = Categories.FirstOrDefault(x => x.Name == name);
                    if (category.Name is not null)
                    {
                        result.Append(insideClass ? category.Members : "[" + category.Members + "]");
                        i = close;
                        continue;
                    }
                }
            }

            result.Append(c);
        }

        return result.ToString();
    }
}
