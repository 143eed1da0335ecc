using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using ExpertScope.Tokenizers;
using Spectre.Console;

namespace ExpertScope.Cli;

/// <summary><c>tokenize</c>: the token ids and pieces a model's own tokenizer gives a text (llama.cpp's ids).</summary>
public static class TokenizeCommand
{
    private static readonly JsonSerializerOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Creates the verb.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var model = new Option<FileInfo>("--model", "-m") { Description = "GGUF file whose tokenizer to use", Required = true };
        var text = new Option<string>("--text", "-t") { Description = "Text to tokenize", Required = true };
        var noSpecial = new Option<bool>("--no-special") { Description = "Leave out the BOS/EOS tokens the model adds" };
        var json = new Option<bool>("--json") { Description = "Print {\"ids\": [...], \"pieces\": [...]} instead of a table" };
        var noParseSpecial = SpecialTokenText.CreateNoParseSpecialOption();

        var command = new Command("tokenize", "Show the token ids and pieces of a text, as llama.cpp tokenizes it")
        {
            model,
            text,
            noSpecial,
            json,
            noParseSpecial,
        };
        command.SetAction(parse => context.Guard(() => Run(
            context,
            parse.GetValue(model)!,
            parse.GetValue(text) ?? string.Empty,
            addSpecial: !parse.GetValue(noSpecial),
            parseSpecial: !parse.GetValue(noParseSpecial),
            asJson: parse.GetValue(json))));
        return command;
    }

    private static int Run(CliContext context, FileInfo model, string text, bool addSpecial, bool parseSpecial, bool asJson)
    {
        var tokenizer = GgufTokenizer.Load(model.FullName);
        var tokens = tokenizer.EncodeWithOffsets(text, addSpecial, parseSpecial);
        if (asJson)
        {
            string ids = string.Join(", ", tokens.Select(t => t.Id.ToString(CultureInfo.InvariantCulture)));
            string pieces = string.Join(", ", tokens.Select(t => JsonSerializer.Serialize(t.Value, JsonOptions)));
            context.Output.WriteLine($"{{\"ids\": [{ids}], \"pieces\": [{pieces}]}}");
            return 0;
        }

        var table = new Table().AddColumns("#", "id", "piece", "chars");
        for (int i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            table.AddRow(
                new Text(i.ToString(CultureInfo.InvariantCulture)),
                new Text(token.Id.ToString(CultureInfo.InvariantCulture)),
                new Text(Visible(token.Value)),
                new Text($"{token.Offset.Start.Value}..{token.Offset.End.Value}"));
        }

        context.Console.Write(table);
        context.Output.WriteLine($"{tokens.Count} tokens ({Path.GetFileName(model.FullName)}, {Describe(tokenizer)})");
        return 0;
    }

    /// <summary>The piece with whitespace and control characters made visible, so a table row shows what the token holds.</summary>
    private static string Visible(string piece)
    {
        var result = new StringBuilder(piece.Length + 2).Append('\'');
        foreach (char c in piece)
        {
            result.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                < ' ' => $"\\x{(int)c:X2}",
                _ => c.ToString(),
            });
        }

        return result.Append('\'').ToString();
    }

    private static string Describe(GgufTokenizer tokenizer) => tokenizer.Kind == TokenizerKind.BytePair
        ? $"BPE, pre-tokenizer {tokenizer.PreTokenizerName}, {tokenizer.VocabularySize} tokens"
        : $"SentencePiece, {tokenizer.VocabularySize} tokens";
}
