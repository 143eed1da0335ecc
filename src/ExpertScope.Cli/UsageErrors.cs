using System.CommandLine;
using System.CommandLine.Parsing;

namespace ExpertScope.Cli;

/// <summary>
/// Command-line mistakes found before a verb runs: parse errors in plain words (never a .NET type name) and paths of
/// the wrong kind (a folder given as a file, a file given as a folder). Each is one line on stderr; the exit code is
/// <see cref="ExitCode"/>.
/// </summary>
internal static class UsageErrors
{
    /// <summary>Exit code of a usage error (the command line itself is wrong); runtime errors exit 1.</summary>
    public const int ExitCode = 2;

    /// <summary>Writes the usage errors of <paramref name="parse"/>, if any, and returns whether there were any.</summary>
    public static bool Report(ParseResult parse, TextWriter error)
    {
        var lines = parse.Errors.Select(e => Describe(e, parse)).Concat(WrongKindOfPath(parse)).Distinct().ToList();
        string help = HelpHint(parse);
        foreach (string line in lines)
        {
            error.WriteLine("error: " + line.TrimEnd('.') + help);
        }

        return lines.Count > 0;
    }

    private static string HelpHint(ParseResult parse)
    {
        var names = new List<string>();
        for (SymbolResult? result = parse.CommandResult; result is CommandResult command; result = command.Parent)
        {
            names.Insert(0, command.Command.Name);
        }

        names[0] = "expertscope";
        return $"; see '{string.Join(' ', names)} --help'.";
    }

    private static string Describe(ParseError error, ParseResult parse)
    {
        // A value that does not convert: name the option and what it expects, in words.
        var option = error.SymbolResult switch
        {
            OptionResult o => o.Option,
            ArgumentResult { Parent: OptionResult o } => o.Option,
            _ => null,
        };
        if (option is not null && error.Message.Contains("expected type", StringComparison.Ordinal))
        {
            var tokens = (error.SymbolResult as OptionResult)?.Tokens ?? ((ArgumentResult)error.SymbolResult!).Tokens;
            string given = tokens.Count > 0 ? $" (got '{tokens[^1].Value}')" : string.Empty;
            return $"{option.Name} expects {Expected(option.ValueType)}{given}.";
        }

        // Other messages of System.CommandLine are plain English; make sure no type name slips through.
        return error.Message.Replace("System.", string.Empty, StringComparison.Ordinal);
    }

    private static string Expected(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type.IsArray)
        {
            type = type.GetElementType()!;
        }

        return type switch
        {
            _ when type == typeof(int) || type == typeof(long) || type == typeof(short) => "a whole number",
            _ when type == typeof(uint) || type == typeof(ulong) => "a non-negative whole number",
            _ when type == typeof(double) || type == typeof(float) || type == typeof(decimal) => "a number (e.g. 0.5)",
            _ when type == typeof(bool) => "true or false",
            _ when type == typeof(FileInfo) => "a file path",
            _ when type == typeof(DirectoryInfo) => "a folder path",
            _ => "a different value",
        };
    }

    /// <summary>A file option naming a folder, or a folder option naming a file: say so before anything runs.</summary>
    private static IEnumerable<string> WrongKindOfPath(ParseResult parse)
    {
        for (SymbolResult? result = parse.CommandResult; result is CommandResult command; result = command.Parent)
        {
            foreach (var option in command.Children.OfType<OptionResult>().Where(o => !o.Implicit))
            {
                var type = Nullable.GetUnderlyingType(option.Option.ValueType) ?? option.Option.ValueType;
                foreach (var token in option.Tokens)
                {
                    string path = token.Value;
                    if (type == typeof(FileInfo) && Directory.Exists(path))
                    {
                        yield return $"{option.Option.Name} '{path}' is a directory; it needs a file.";
                    }
                    else if (type == typeof(DirectoryInfo) && File.Exists(path))
                    {
                        yield return $"{option.Option.Name} '{path}' is a file; it needs a folder.";
                    }
                }
            }
        }
    }
}
