using System.CommandLine;
using ExpertScope.Core;
using ExpertScope.Models;

namespace ExpertScope.Cli;

/// <summary>
/// <c>generate</c>: continues a prompt, greedily or by seeded sampling, optionally with router interventions, and
/// prints the continuation (with <c>--json</c>: prompt and new token ids, text, and the interventions applied).
/// </summary>
public static class GenerateCommand
{
    /// <summary>Creates the verb.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var model = new ModelOptions();
        var interventions = new InterventionOptions();
        var prompt = new Option<string>("--prompt", "-p") { Description = "The text to continue (BOS is added as the vocabulary says).", Required = true };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "New tokens at most (generation also stops at the end-of-sequence token or the context's end).", DefaultValueFactory = _ => 32 };
        var temperature = new Option<float>("--temperature") { Description = "Sampling temperature; 0 (the default) is greedy: the most likely token, ties to the lower id." };
        var sampleTopK = new Option<int>("--sample-top-k") { Description = "With a temperature: sample only among the N most likely tokens (0 = all). Not to be confused with --top-k, the experts per token." };
        var seed = new Option<int>("--seed") { Description = "Seed of the sampler (sampling is reproducible for a seed).", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object: prompt and new token ids, the continuation's text, and the interventions applied." };
        var command = new Command("generate", "Continue a prompt with the model, optionally steering its routers (--disable, --force, --top-k, --keep-top-expert).");
        model.AddTo(command);
        command.Options.Add(prompt);
        command.Options.Add(maxTokens);
        command.Options.Add(temperature);
        command.Options.Add(sampleTopK);
        command.Options.Add(seed);
        command.Options.Add(json);
        interventions.AddTo(command);
        var chat = new ChatOptions();
        chat.AddTo(command);
        command.SetAction(parse => context.Guard(() =>
        {
            int max = parse.GetValue(maxTokens);
            float t = parse.GetValue(temperature);
            int sampleK = parse.GetValue(sampleTopK);
            if (max < 0)
            {
                throw new ExpertScopeException("--max-tokens must not be negative.");
            }

            if (!(t >= 0) || float.IsInfinity(t))
            {
                throw new ExpertScopeException("--temperature must be a finite number >= 0.");
            }

            if (sampleK < 0)
            {
                throw new ExpertScopeException("--sample-top-k must not be negative.");
            }

            int? threads = model.ThreadCount(parse);
            using var moe = model.Load(parse);
            var applied = interventions.Parse(parse, moe);
            var tokenizer = moe.Tokenizer;
            string text = chat.Apply(parse, chat.Resolve(parse, moe.FilePath), parse.GetValue(prompt)!);
            var promptTokens = tokenizer.Encode(text);
            if (promptTokens.Count == 0)
            {
                throw new ExpertScopeException("The prompt gives no tokens (it is empty and the vocabulary adds no BOS).");
            }

            int contextLength = moe.Hyperparameters.ContextLength;
            if (promptTokens.Count >= contextLength)
            {
                throw new ExpertScopeException($"{moe.FilePath}: the model's context ({moe.Hyperparameters.Architecture}.context_length = {contextLength} tokens) leaves no room to generate after the prompt's {promptTokens.Count} tokens.");
            }

            var stops = new List<int>();
            if (tokenizer.EosId is { } eos)
            {
                stops.Add(eos);
            }

            if (tokenizer.EndOfTurnId is { } eot)
            {
                stops.Add(eot);
            }

            var options = new GenerationOptions
            {
                MaxNewTokens = max,
                Temperature = t,
                TopK = sampleK,
                Seed = parse.GetValue(seed),
                StopTokens = stops,
                Run = new RunOptions { Interventions = applied, ThreadCount = threads },
            };
            var generated = max == 0 ? [] : moe.Generate(promptTokens.ToArray(), options);
            string continuation = Continuation(tokenizer, promptTokens, generated);
            string stopped = generated.Count > 0 && stops.Contains(generated[^1]) ? "end_of_sequence"
                : generated.Count >= max ? "max_tokens"
                : "context";
            if (parse.GetValue(json))
            {
                context.Output.Write(JsonText.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("prompt", text);
                    w.WriteStartArray("prompt_tokens");
                    foreach (int id in promptTokens)
                    {
                        w.WriteNumberValue(id);
                    }

                    w.WriteEndArray();
                    w.WriteStartArray("tokens");
                    foreach (int id in generated)
                    {
                        w.WriteNumberValue(id);
                    }

                    w.WriteEndArray();
                    w.WriteString("text", continuation);
                    w.WriteString("stopped", stopped);
                    w.WritePropertyName("interventions");
                    InterventionParser.WriteJson(w, applied);
                    w.WriteEndObject();
                }));
            }
            else
            {
                context.Output.WriteLine(continuation);
            }

            return 0;
        }));
        return command;
    }

    /// <summary>
    /// The text the new tokens add: the decoded whole minus the decoded prompt, so that space handling that looks at
    /// neighbouring tokens (SentencePiece prefix, clean-up) is the same as for the full text.
    /// </summary>
    internal static string Continuation(Tokenizers.GgufTokenizer tokenizer, IReadOnlyList<int> prompt, IReadOnlyList<int> generated)
    {
        string before = tokenizer.Decode(prompt, removeSpecial: true, unparseSpecial: false);
        string all = tokenizer.Decode([.. prompt, .. generated], removeSpecial: true, unparseSpecial: false);
        return all.StartsWith(before, StringComparison.Ordinal) ? all[before.Length..] : tokenizer.Decode(generated, removeSpecial: false, unparseSpecial: false);
    }
}
