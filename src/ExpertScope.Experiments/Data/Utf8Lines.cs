using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Unicode;

namespace ExpertScope.Experiments.Data;

/// <summary>One line of a text file: its 1-based number, its text, and what is wrong with its bytes, if anything.</summary>
/// <param name="Number">1-based line number.</param>
/// <param name="Text">The text (invalid bytes shown as U+FFFD).</param>
/// <param name="Invalid">Null when the line is valid UTF-8; else where the first invalid byte is.</param>
public readonly record struct TextLine(int Number, string Text, string? Invalid)
{
    /// <summary>True for an empty or whitespace-only line with valid bytes.</summary>
    public bool IsBlank => Invalid is null && string.IsNullOrWhiteSpace(Text);
}

/// <summary>
/// Reads text files as strict UTF-8, line by line, so that an invalid byte is reported with its line and column
/// instead of being replaced silently (a reader's default), which would change a word the experiment measures.
/// </summary>
public static class Utf8Lines
{
    private static readonly UTF8Encoding Lenient = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    /// <summary>Every line of <paramref name="path"/> (LF or CRLF endings; a leading byte-order mark is dropped).</summary>
    public static List<TextLine> Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ReadOnlySpan<byte> bytes = File.ReadAllBytes(path);
        if (bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
        {
            bytes = bytes[3..];
        }

        var lines = new List<TextLine>();
        int number = 0;
        while (bytes.Length > 0)
        {
            int end = bytes.IndexOf((byte)'\n');
            var line = end < 0 ? bytes : bytes[..end];
            bytes = end < 0 ? [] : bytes[(end + 1)..];
            if (line.EndsWith((ReadOnlySpan<byte>)[(byte)'\r']))
            {
                line = line[..^1];
            }

            number++;
            lines.Add(new TextLine(number, Lenient.GetString(line), FirstInvalid(line)));
        }

        return lines;
    }

    /// <summary>Null when <paramref name="bytes"/> are valid UTF-8; else "byte 0xNN at column C" for the first bad byte.</summary>
    public static string? FirstInvalid(ReadOnlySpan<byte> bytes)
    {
        if (Utf8.IsValid(bytes))
        {
            return null;
        }

        var chars = ArrayPool<char>.Shared.Rent(bytes.Length);
        try
        {
            Utf8.ToUtf16(bytes, chars, out int read, out _, replaceInvalidSequences: false);
            return string.Create(CultureInfo.InvariantCulture, $"byte 0x{bytes[read]:X2} at column {read + 1}");
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }
    }

    /// <summary>Checks a whole file's bytes: null when they are valid UTF-8, else the first bad line and what is wrong in it.</summary>
    public static (int Line, string Problem)? FirstInvalidLine(ReadOnlySpan<byte> bytes)
    {
        if (Utf8.IsValid(bytes))
        {
            return null;
        }

        int number = 1;
        while (true)
        {
            int end = bytes.IndexOf((byte)'\n');
            var line = end < 0 ? bytes : bytes[..end];
            if (FirstInvalid(line) is { } problem)
            {
                return (number, "not valid UTF-8: " + problem);
            }

            bytes = bytes[(end + 1)..];
            number++;
        }
    }
}
