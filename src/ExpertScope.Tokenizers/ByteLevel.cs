namespace ExpertScope.Tokenizers;

/// <summary>
/// GPT-2's reversible byte-to-character table: printable Latin-1 bytes map to themselves, the other 68 bytes to
/// U+0100 upwards in byte order, so every byte string becomes a printable string of the same length.
/// </summary>
internal static class ByteLevel
{
    private static readonly char[] ByteToCharTable = BuildTable();
    private static readonly Dictionary<char, byte> CharToByteTable = BuildReverse();

    /// <summary>The character standing for <paramref name="value"/>.</summary>
    public static char ToChar(byte value) => ByteToCharTable[value];

    /// <summary>The byte a character stands for, or false when it is not one of the 256 stand-ins.</summary>
    public static bool TryGetByte(char c, out byte value) => CharToByteTable.TryGetValue(c, out value);

    private static char[] BuildTable()
    {
        var table = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= 0x21 and <= 0x7E or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[b] = printable ? (char)b : (char)next++;
        }

        return table;
    }

    private static Dictionary<char, byte> BuildReverse()
    {
        var map = new Dictionary<char, byte>(256);
        for (int b = 0; b < 256; b++)
        {
            map[ByteToCharTable[b]] = (byte)b;
        }

        return map;
    }
}
