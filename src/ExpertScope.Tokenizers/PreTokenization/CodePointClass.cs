using System.Globalization;

namespace ExpertScope.Tokenizers.PreTokenization;

/// <summary>
/// The character classes llama.cpp's pre-tokenizers test (its <c>unicode_cpt_flags</c>): \p{L}, \p{N}, \p{P},
/// \p{S}, \p{M} and its own whitespace set. Categories come from .NET's Unicode tables; llama.cpp generates its
/// table from Python's, so code points assigned in a newer Unicode version than one side knows may differ.
/// </summary>
internal static class CodePointClass
{
    /// <summary>Stand-in for "beyond the end of the piece" (llama.cpp's OUT_OF_RANGE, whose flags are all zero).</summary>
    public const int OutOfRange = -1;

    public static bool IsLetter(int codePoint) => codePoint >= 0 && Category(codePoint) is
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
        or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter;

    public static bool IsNumber(int codePoint) => codePoint >= 0 && Category(codePoint) is
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;

    public static bool IsMark(int codePoint) => codePoint >= 0 && Category(codePoint) is
        UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark;

    public static bool IsPunctuation(int codePoint) => codePoint >= 0 && Category(codePoint) is
        UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
        or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
        or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;

    public static bool IsSymbol(int codePoint) => codePoint >= 0 && Category(codePoint) is
        UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol
        or UnicodeCategory.OtherSymbol;

    /// <summary>
    /// llama.cpp's whitespace set: \t..\r, space, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029,
    /// U+202F, U+205F, U+3000. That is exactly what <see cref="char.IsWhiteSpace(char)"/> accepts (all BMP).
    /// </summary>
    public static bool IsWhitespace(int codePoint) => codePoint is >= 0 and <= 0xFFFF && char.IsWhiteSpace((char)codePoint);

    /// <summary>
    /// True for every code point inside the piece. llama.cpp tests <c>flags.as_uint() != 0</c>, which holds for any
    /// code point (unassigned ones carry the UNDEFINED flag) and fails only past the piece's end.
    /// </summary>
    public static bool Exists(int codePoint) => codePoint >= 0;

    /// <summary>Lower-cases only where that yields ASCII, which is all the contraction rules compare against.</summary>
    public static int ToLowerForContraction(int codePoint) =>
        codePoint is >= 'A' and <= 'Z' ? codePoint + 32 : codePoint;

    /// <summary>
    /// The one-character stand-in llama.cpp uses when it runs a regex with \p{..} classes over a "collapsed" text:
    /// ASCII stays itself, non-ASCII whitespace becomes \v, other code points become a marker per category
    /// (U+00D1 number, U+00D2 letter, U+00D3 punctuation, U+00D4 mark, U+00D5 symbol, U+00D0 anything else).
    /// </summary>
    public static char Collapse(int codePoint)
    {
        if (codePoint < 128)
        {
            return (char)codePoint;
        }

        if (IsWhitespace(codePoint))
        {
            return '\v';
        }

        return Category(codePoint) switch
        {
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => '\u00D1',
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => '\u00D2',
            UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
                or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
                or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation => '\u00D3',
            UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark => '\u00D4',
            UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol
                or UnicodeCategory.OtherSymbol => '\u00D5',
            _ => '\u00D0',
        };
    }

    private static UnicodeCategory Category(int codePoint) => CharUnicodeInfo.GetUnicodeCategory(codePoint);
}
