using System.Globalization;

namespace ExpertScope.Tokenizers.PreTokenization;

/// <summary>
/// The character classes llama.cpp's pre-tokenizers test (its <c>unicode_cpt_flags</c>): \p{L}, \p{N}, \p{P},
/// \p{S}, \p{M} and its own whitespace set. Categories come from .NET's Unicode tables (Unicode 16.0 in .NET 10);
/// llama.cpp's table is Unicode 15.1, so the code points Unicode 16.0 added are treated as unassigned here too.
/// </summary>
internal static class CodePointClass
{
    // The 5,185 code points Unicode 16.0 assigned (unassigned in 15.1), as inclusive ranges. Derived by comparing
    // .NET 10's categories with ICU 72's (Unicode 15.0) plus the 627 characters of Unicode 15.1; no other code point
    // differs in class between the two.
    private static readonly (int First, int Last)[] AddedInUnicode16 =
    [
        (0x00897, 0x00897), (0x01B4E, 0x01B4F), (0x01B7F, 0x01B7F), (0x01C89, 0x01C8A), (0x02427, 0x02429),
        (0x031E4, 0x031E5), (0x0A7CB, 0x0A7CD), (0x0A7DA, 0x0A7DC), (0x105C0, 0x105F3), (0x10D40, 0x10D65),
        (0x10D69, 0x10D85), (0x10D8E, 0x10D8F), (0x10EC2, 0x10EC4), (0x10EFC, 0x10EFC), (0x11380, 0x11389),
        (0x1138B, 0x1138B), (0x1138E, 0x1138E), (0x11390, 0x113B5), (0x113B7, 0x113C0), (0x113C2, 0x113C2),
        (0x113C5, 0x113C5), (0x113C7, 0x113CA), (0x113CC, 0x113D5), (0x113D7, 0x113D8), (0x113E1, 0x113E2),
        (0x116D0, 0x116E3), (0x11BC0, 0x11BE1), (0x11BF0, 0x11BF9), (0x11F5A, 0x11F5A), (0x13460, 0x143FA),
        (0x16100, 0x16139), (0x16D40, 0x16D79), (0x18CFF, 0x18CFF), (0x1CC00, 0x1CCF9), (0x1CD00, 0x1CEB3),
        (0x1E5D0, 0x1E5FA), (0x1E5FF, 0x1E5FF), (0x1F8B2, 0x1F8BB), (0x1F8C0, 0x1F8C1), (0x1FA89, 0x1FA89),
        (0x1FA8F, 0x1FA8F), (0x1FABE, 0x1FABE), (0x1FAC6, 0x1FAC6), (0x1FADC, 0x1FADC), (0x1FADF, 0x1FADF),
        (0x1FAE9, 0x1FAE9), (0x1FBCB, 0x1FBEF),
    ];

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

    /// <summary>The general category as of Unicode 15.1 (llama.cpp's tables).</summary>
    private static UnicodeCategory Category(int codePoint) =>
        codePoint >= 0x897 && IsAddedInUnicode16(codePoint) ? UnicodeCategory.OtherNotAssigned : CharUnicodeInfo.GetUnicodeCategory(codePoint);

    private static bool IsAddedInUnicode16(int codePoint)
    {
        int low = 0, high = AddedInUnicode16.Length - 1;
        while (low <= high)
        {
            int middle = (low + high) >>> 1;
            var (first, last) = AddedInUnicode16[middle];
            if (codePoint < first)
            {
                high = middle - 1;
            }
            else if (codePoint > last)
            {
                low = middle + 1;
            }
            else
            {
                return true;
            }
        }

        return false;
    }
}
