using System.CommandLine;
using System.Globalization;
using System.Text;
using ExpertScope.Core;
using ExpertScope.Experiments.Evaluation;
using ExpertScope.Models;

namespace ExpertScope.Cli;

/// <summary>
/// <c>perplexity</c>: the perplexity of a text file under a model, optionally with router interventions. The text is
/// the whole file (UTF-8, verbatim: a trailing newline is part of it), tokenized with BOS as the vocabulary says.
/// Every token after the first is scored given its prefix; texts longer than the window are scored in windows
/// (<see cref="Perplexity"/> documents the rule).
/// </summary>
public static class PerplexityCommand
{
    /// <summary>Creates the verb.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var model = new ModelOptions();
        var interventions = new InterventionOptions();
        var input = new Option<FileInfo>("--input", "-i") { Description = "Text file to score (the whole file, verbatim, as one text).", Required = true };
        var window = new Option<int?>("--context", "-c") { Description = "Window length in tokens (default and maximum: the model's context length)." };
        var stride = new Option<int?>("--stride", "-s")
        {
            Description = "Step between windows, for a text longer than the window: window w covers tokens [w*S, w*S+N) and scores only the tokens no " +
                          "earlier window scored, so each has at least N-S tokens of left context (as Hugging Face's strided perplexity). " +
                          "Without it a text longer than the window is an error.",
        };
        var json = new Option<bool>("--json") { Description = "Print one JSON object: perplexity, tokens scored, and details." };
        var parseSpecial = SpecialTokenText.CreateParseSpecialOption();
        var command = new Command("perplexity", "Perplexity of a text under the model (every token after BOS given its prefix), optionally with router interventions.");
        model.AddTo(command);
        command.Options.Add(input);
        command.Options.Add(window);
        command.Options.Add(stride);
        command.Options.Add(json);
        command.Options.Add(parseSpecial);
        interventions.AddTo(command);
        command.SetAction(parse => context.Guard(() =>
        {
            string path = parse.GetValue(input)!.FullName;
            if (!File.Exists(path))
            {
                throw new ExpertScopeException($"The input file '{path}' does not exist.");
            }

            int? threads = model.ThreadCount(parse);
            using var moe = model.Load(parse);
            var applied = interventions.Parse(parse, moe);
            string text = File.ReadAllText(path, new UTF8Encoding(false));
            var tokens = moe.Tokenizer.Encode(text, parseSpecial: parse.GetValue(parseSpecial));
            int windowLength = parse.GetValue(window) ?? moe.Hyperparameters.ContextLength;
            var result = Perplexity.Evaluate(
                moe, tokens, windowLength, parse.GetValue(stride), new RunOptions { Interventions = applied, ThreadCount = threads }, path);
            if (parse.GetValue(json))
            {
                context.Output.Write(JsonText.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteNumber("perplexity", result.Value);
                    w.WriteNumber("tokens", result.ScoredTokens);
                    w.WriteNumber("negative_log_likelihood", result.NegativeLogLikelihood);
                    w.WriteNumber("text_tokens", result.TotalTokens);
                    w.WriteNumber("context", windowLength);
                    if (parse.GetValue(stride) is { } s)
                    {
                        w.WriteNumber("stride", s);
                    }
                    else
                    {
                        w.WriteNull("stride");
                    }

                    w.WriteNumber("windows", result.Windows);
                    w.WritePropertyName("interventions");
                    InterventionParser.WriteJson(w, applied);
                    w.WriteEndObject();
                }));
            }
            else
            {
                context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"perplexity {result.Value:0.0000} over {result.ScoredTokens} tokens ({result.TotalTokens} in the text, {result.Windows} window{(result.Windows == 1 ? "" : "s")})"));
            }

            return 0;
        }));
        return command;
    }
}
