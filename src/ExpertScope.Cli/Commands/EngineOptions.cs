using System.Collections.Immutable;
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ExpertScope.Core;
using ExpertScope.Experiments.Runs;
using ExpertScope.Models;
using ExpertScope.Models.Routing;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace ExpertScope.Cli;

/// <summary>The options of every verb that runs a model: <c>--model</c>, <c>--threads</c>, <c>--override-kv</c>, <c>--arithmetic</c>, <see cref="AttentionSwitches"/>.</summary>
public sealed class ModelOptions
{

    /// <summary>The GGUF checkpoint (<c>--model</c>, required).</summary>
    public Option<FileInfo> Model { get; } = new("--model", "-m") { Description = "GGUF model file.", Required = true };

    /// <summary>Threads of the forward pass (<c>--threads</c>; default one per processor).</summary>
    public Option<int?> Threads { get; } = new("--threads", "-t") { Description = "Threads of the forward pass (default: one per processor; results are identical for any count)." };

    /// <summary>Metadata overrides (<c>--override-kv KEY=TYPE:VALUE</c>, as llama.cpp).</summary>
    public Option<string[]> OverrideKv { get; } = new("--override-kv")
    {
        Description = "Override a model metadata key, as llama.cpp: KEY=TYPE:VALUE with TYPE int, float, bool or str (e.g. qwen3moe.expert_used_count=int:1). Repeatable.",
        Arity = ArgumentArity.OneOrMore,
    };

    /// <summary>How float weight matrices are multiplied (<c>--arithmetic reference|fused</c>).</summary>
    public Option<string> Arithmetic { get; } = ArithmeticNames.CreateOption();

    /// <summary>llama.cpp's cache types and flash-attention switch (<c>--cache-type-k/-v</c>, <c>--no-flash-attn</c>).</summary>
    public AttentionSwitches Attention { get; } = new();

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.Options.Add(Model);
        command.Options.Add(Threads);
        command.Options.Add(OverrideKv);
        command.Options.Add(Arithmetic);
        Attention.AddTo(command);
    }

    /// <summary>The thread count asked for, checked.</summary>
    /// <exception cref="ExpertScopeException">Not a positive number.</exception>
    public int? ThreadCount(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        int? threads = parse.GetValue(Threads);
        if (threads is < 1)
        {
            throw new ExpertScopeException($"--threads must be at least 1 (got {threads}).");
        }

        return threads;
    }

    /// <summary>The model file's full path.</summary>
    public string ModelPath(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        return parse.GetValue(Model)!.FullName;
    }

    /// <summary>Loads the model with the overrides asked for.</summary>
    /// <exception cref="ExpertScopeException">The file is missing or not a supported model, or an override is malformed.</exception>
    public MoeModel Load(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        string path = ModelPath(parse);
        if (!File.Exists(path))
        {
            throw new ExpertScopeException($"The model file '{path}' does not exist.");
        }

        return MoeModel.Load(path, new ModelLoadOptions
        {
            MetadataOverrides = ParseOverrides(parse.GetValue(OverrideKv) ?? []),
            FloatArithmetic = ArithmeticNames.Parse(parse.GetValue(Arithmetic)),
            Attention = Attention.Parse(parse),
        });
    }

    /// <summary>Parses llama.cpp-style overrides <c>KEY=TYPE:VALUE</c>.</summary>
    /// <exception cref="ExpertScopeException">A malformed override.</exception>
    public static IReadOnlyDictionary<string, object> ParseOverrides(IEnumerable<string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var result = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (string text in values)
        {
            int equals = text.IndexOf('=', StringComparison.Ordinal);
            int colon = equals < 0 ? -1 : text.IndexOf(':', equals);
            if (equals <= 0 || colon < 0)
            {
                throw new ExpertScopeException($"--override-kv '{text}': expected KEY=TYPE:VALUE, e.g. qwen3moe.expert_used_count=int:1.");
            }

            string key = text[..equals], type = text[(equals + 1)..colon], value = text[(colon + 1)..];
            object? parsed = type switch
            {
                "int" => long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out long l) ? l : null,
                "float" => double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : null,
                "bool" => value switch { "true" => true, "false" => false, _ => null },
                "str" => value,
                _ => throw new ExpertScopeException($"--override-kv '{text}': unknown type '{type}' (use int, float, bool or str)."),
            };
            result[key] = parsed ?? throw new ExpertScopeException($"--override-kv '{text}': '{value}' is not a valid {type}.");
        }

        return result;
    }
}

/// <summary>The <c>--arithmetic</c> option: names of <see cref="FloatArithmetic"/> on the command line.</summary>
public static class ArithmeticNames
{
    /// <summary><see cref="FloatArithmetic.Reference"/>.</summary>
    public const string Reference = "reference";

    /// <summary><see cref="FloatArithmetic.Fused"/>.</summary>
    public const string Fused = "fused";

    /// <summary>A new <c>--arithmetic</c> option (default <c>reference</c>).</summary>
    public static Option<string> CreateOption()
    {
        var option = new Option<string>("--arithmetic")
        {
            Description = "How F32/F16/BF16 weight matrices are multiplied: reference (llama.cpp's portable kernels, bit for bit; default) or fused (float32 fused multiply-adds as SIMD builds do, ~3x faster on such weights, last-bit differences). Quantized weights are unaffected.",
            DefaultValueFactory = _ => Reference,
        };
        option.AcceptOnlyFromAmong(Reference, Fused);
        return option;
    }

    /// <summary>The mode a name stands for.</summary>
    /// <exception cref="ExpertScopeException">Not a known name.</exception>
    public static FloatArithmetic Parse(string? name) => name switch
    {
        null or Reference => FloatArithmetic.Reference,
        Fused => FloatArithmetic.Fused,
        _ => throw new ExpertScopeException($"--arithmetic '{name}': use reference or fused."),
    };

    /// <summary>The command-line name of <paramref name="arithmetic"/>.</summary>
    public static string Name(FloatArithmetic arithmetic) => arithmetic == FloatArithmetic.Fused ? Fused : Reference;
}

/// <summary>
/// The router interventions a verb can apply: <c>--disable L:E,…</c>, <c>--force L:E,…</c>, <c>--top-k N</c>,
/// <c>--keep-top-expert</c>. L is a GGUF block index, a range <c>2-5</c>, or <c>*</c> for every MoE block.
/// </summary>
public sealed class InterventionOptions
{
    /// <summary><c>--disable L:E,…</c>.</summary>
    public Option<string[]> Disable { get; } = new("--disable")
    {
        Description = "Never route to these experts: L:E pairs separated by commas (L a block index, a range 2-5, or * for every MoE block; E an expert index), e.g. 1:3,*:7. Repeatable.",
        Arity = ArgumentArity.OneOrMore,
    };

    /// <summary><c>--force L:E,…</c>.</summary>
    public Option<string[]> Force { get; } = new("--force")
    {
        Description = "Always route to these experts (they take the first slots; k grows if more are forced than k): L:E pairs as for --disable. Repeatable.",
        Arity = ArgumentArity.OneOrMore,
    };

    /// <summary><c>--top-k N</c>: experts per token in every MoE block.</summary>
    public Option<int?> TopK { get; } = new("--top-k")
    {
        Description = "Experts per token in every MoE block instead of the model's expert_used_count (weights renormalised as the architecture does).",
    };

    /// <summary><c>--keep-top-expert</c>.</summary>
    public Option<bool> KeepTopExpert { get; } = new("--keep-top-expert")
    {
        Description = "Route as usual, then keep only the first-ranked expert with its weight unchanged (not renormalised).",
    };

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.Options.Add(Disable);
        command.Options.Add(Force);
        command.Options.Add(TopK);
        command.Options.Add(KeepTopExpert);
    }

    /// <summary>The interventions asked for, checked against <paramref name="model"/>.</summary>
    /// <exception cref="ExpertScopeException">A malformed pair, a block that is not an MoE block, an expert or k out of range.</exception>
    public IReadOnlyList<RouterIntervention> Parse(ParseResult parse, MoeModel model)
    {
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(model);
        var shape = InterventionParser.ShapeOf(model);
        var result = new List<RouterIntervention>();
        foreach (var (layers, experts) in InterventionParser.ParsePairs("--disable", parse.GetValue(Disable) ?? [], shape))
        {
            result.Add(new DisableExperts(layers, experts));
        }

        foreach (var (layers, experts) in InterventionParser.ParsePairs("--force", parse.GetValue(Force) ?? [], shape))
        {
            result.Add(new ForceExperts(layers, experts));
        }

        if (parse.GetValue(TopK) is { } k)
        {
            if (k < 1 || k > shape.ExpertCount)
            {
                throw new ExpertScopeException($"--top-k {k}: experts per token must be between 1 and the model's {shape.ExpertCount} experts.");
            }

            result.Add(new OverrideTopK(LayerSelector.All, k));
        }

        if (parse.GetValue(KeepTopExpert))
        {
            result.Add(new KeepOnlyTopExpert(LayerSelector.All));
        }

        return result;
    }
}

/// <summary>What an intervention may name: the blocks and their MoE subset, and the experts per MoE block.</summary>
/// <param name="BlockCount">Blocks of the model.</param>
/// <param name="MoeLayers">GGUF indices of the blocks with a router, ascending.</param>
/// <param name="ExpertCount">Routed experts per MoE block.</param>
public sealed record ModelShape(int BlockCount, IReadOnlyList<int> MoeLayers, int ExpertCount);

/// <summary>Parses the <c>L:E</c> lists of <c>--disable</c> and <c>--force</c>.</summary>
public static class InterventionParser
{
    /// <summary>The blocks and experts of <paramref name="model"/>.</summary>
    public static ModelShape ShapeOf(MoeModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var moe = model.Blocks.Where(b => b.Moe is not null).Select(b => b.Layer).Order().ToArray();
        int experts = model.Blocks.Select(b => b.Moe?.Router.Config.ExpertCount ?? 0).DefaultIfEmpty(0).Max();
        return new ModelShape(model.Blocks.Count, moe, experts);
    }

    /// <summary>
    /// Parses <c>L:E</c> pairs (comma-separated, in one or more values) and groups the experts by layer selection,
    /// in order of first appearance: <c>1:3,1:5,*:0</c> gives (block 1: experts 3, 5) and (all blocks: expert 0).
    /// </summary>
    /// <param name="option">The option name, for messages.</param>
    /// <param name="values">The option's values.</param>
    /// <param name="shape">What may be named.</param>
    /// <exception cref="ExpertScopeException">A malformed pair, a block that is not an MoE block, or an expert out of range.</exception>
    public static IReadOnlyList<(LayerSelector Layers, ImmutableArray<ExpertId> Experts)> ParsePairs(string option, IEnumerable<string> values, ModelShape shape)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(shape);
        var groups = new List<(LayerSelector Layers, List<ExpertId> Experts)>();
        foreach (string value in values)
        {
            foreach (string raw in value.Split(','))
            {
                string pair = raw.Trim();
                var (layers, expert) = ParsePair(option, pair, shape);
                int index = groups.FindIndex(g => g.Layers.Equals(layers));
                if (index < 0)
                {
                    groups.Add((layers, []));
                    index = groups.Count - 1;
                }

                if (!groups[index].Experts.Contains(expert))
                {
                    groups[index].Experts.Add(expert);
                }
            }
        }

        return [.. groups.Select(g => (g.Layers, g.Experts.ToImmutableArray()))];
    }

    private static (LayerSelector Layers, ExpertId Expert) ParsePair(string option, string pair, ModelShape shape)
    {
        string moeList = shape.MoeLayers.Count == 0 ? "none" : string.Join(",", shape.MoeLayers);
        int colon = pair.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            throw new ExpertScopeException($"{option} '{pair}': expected L:E (block:expert), e.g. 1:3, 0-2:3 or *:3.");
        }

        string layerText = pair[..colon].Trim(), expertText = pair[(colon + 1)..].Trim();
        if (!int.TryParse(expertText, NumberStyles.None, CultureInfo.InvariantCulture, out int expert))
        {
            throw new ExpertScopeException($"{option} '{pair}': expert '{expertText}' is not a non-negative integer.");
        }

        if (expert >= shape.ExpertCount)
        {
            throw new ExpertScopeException($"{option} '{pair}': expert {expert} does not exist (the model has experts 0-{shape.ExpertCount - 1}).");
        }

        LayerSelector layers;
        if (layerText == "*")
        {
            layers = LayerSelector.All;
        }
        else
        {
            int dash = layerText.IndexOf('-', StringComparison.Ordinal);
            string firstText = dash < 0 ? layerText : layerText[..dash], lastText = dash < 0 ? layerText : layerText[(dash + 1)..];
            if (!int.TryParse(firstText, NumberStyles.None, CultureInfo.InvariantCulture, out int first)
                || !int.TryParse(lastText, NumberStyles.None, CultureInfo.InvariantCulture, out int last))
            {
                throw new ExpertScopeException($"{option} '{pair}': block '{layerText}' is not a block index, a range like 2-5, or *.");
            }

            if (last < first)
            {
                throw new ExpertScopeException($"{option} '{pair}': the range {layerText} is empty (write first-last, first <= last).");
            }

            var blocks = Enumerable.Range(first, last - first + 1).ToArray();
            foreach (int block in blocks)
            {
                if (!shape.MoeLayers.Contains(block))
                {
                    throw new ExpertScopeException(
                        $"{option} '{pair}': block {block} has no router (the model has {shape.BlockCount} blocks; MoE blocks: {moeList}).");
                }
            }

            layers = LayerSelector.Only(blocks);
        }

        return (layers, new ExpertId(expert));
    }

    /// <summary>Writes <paramref name="interventions"/> as a JSON array (kind, layers, and what each changes).</summary>
    public static void WriteJson(Utf8JsonWriter writer, IEnumerable<RouterIntervention> interventions)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(interventions);
        writer.WriteStartArray();
        foreach (var intervention in interventions)
        {
            writer.WriteStartObject();
            void Layers()
            {
                writer.WritePropertyName("layers");
                if (intervention.Layers.Layers.IsEmpty)
                {
                    writer.WriteStringValue("all");
                }
                else
                {
                    writer.WriteStartArray();
                    foreach (int layer in intervention.Layers.Layers)
                    {
                        writer.WriteNumberValue(layer);
                    }

                    writer.WriteEndArray();
                }
            }

            void Experts(string kind, ImmutableArray<ExpertId> experts)
            {
                writer.WriteString("kind", kind);
                Layers();
                writer.WriteStartArray("experts");
                foreach (var expert in experts)
                {
                    writer.WriteNumberValue(expert.Value);
                }

                writer.WriteEndArray();
            }

            switch (intervention)
            {
                case DisableExperts disable: Experts("disable", disable.Experts); break;
                case ForceExperts force: Experts("force", force.Experts); break;
                case OverrideTopK topK: writer.WriteString("kind", "top_k"); Layers(); writer.WriteNumber("top_k", topK.TopK); break;
                case KeepOnlyTopExpert keep:
                    writer.WriteString("kind", "keep_top_expert"); Layers();
                    if (keep.Weight != TopExpertWeight.Own)
                    {
                        writer.WriteString("weight", keep.Weight.ToString().ToLowerInvariant());
                    }

                    break;
                case ScaleExpert scale:
                    writer.WriteString("kind", "scale"); Layers(); writer.WriteNumber("expert", scale.Expert.Value); writer.WriteNumber("factor", scale.Factor); break;
                default: writer.WriteString("kind", intervention.GetType().Name); Layers(); break;
            }

            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }
}

/// <summary>Writes one indented JSON document, ending in a newline.</summary>
internal static class JsonText
{
    public static string Write(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            write(writer);
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }
}

/// <summary>Shows progress: a Spectre.Console progress bar on an interactive terminal, plain lines on stderr otherwise.</summary>
internal static class ProgressDisplay
{
    public static T Run<T>(CliContext context, Func<IProgressSink, T> body)
    {
        if (!context.Console.Profile.Capabilities.Interactive)
        {
            return body(new TextProgressSink(context.Error));
        }

        var units = new Dictionary<int, string>();
        return context.Console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RateColumn(units), new RemainingTimeColumn())
            .Start(progress => body(new SpectreSink(progress, units)));
    }

    private sealed class SpectreSink(ProgressContext progress, Dictionary<int, string> units) : IProgressSink
    {
        public IProgressTask StartTask(string description, long? total, long alreadyDone = 0, string unit = "items")
        {
            var task = progress.AddTask(Markup.Escape(description), new ProgressTaskSettings { MaxValue = Math.Max(1, total ?? 1) });
            task.IsIndeterminate = total is null;
            units[task.Id] = unit;
            task.Value = alreadyDone;
            return new SpectreTask(task);
        }
    }

    private sealed class SpectreTask(ProgressTask task) : IProgressTask
    {
        public void Advance(long count = 1) => task.Increment(count);

        public void Complete()
        {
            task.Value = task.MaxValue;
            task.StopTask();
        }

        public void Dispose() => Complete();
    }

    /// <summary>Items per second, in the task's unit (<c>812 tokens/s</c>).</summary>
    private sealed class RateColumn(Dictionary<int, string> units) : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime)
        {
            string unit = units.GetValueOrDefault(task.Id, "items");
            return new Text(task.Speed is { } speed ? string.Create(CultureInfo.InvariantCulture, $"{speed:0.0} {unit}/s") : $"- {unit}/s");
        }
    }
}
