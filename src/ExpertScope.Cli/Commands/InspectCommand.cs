using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;
using ExpertScope.Core;
using ExpertScope.Formats;
using ExpertScope.Formats.Gguf;
using Spectre.Console;

namespace ExpertScope.Cli;

/// <summary><c>inspect &lt;model.gguf&gt; [--json] [--all-tensors]</c>: architecture, hyperparameters, MoE configuration,
/// tensors, parameter counts and memory of a GGUF model.</summary>
public static partial class InspectCommand
{
    /// <summary>Arrays longer than this are summarized (element type and length) rather than listed.</summary>
    internal const int MaxListedArrayItems = 64;

    private const int MaxShownTextLength = 72;

    private static readonly JsonWriterOptions JsonOptions = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Builds the verb.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var model = new Argument<string>("model") { Description = "The GGUF model file." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of tables." };
        var allTensors = new Option<bool>("--all-tensors") { Description = "List every tensor instead of grouping blocks." };
        var command = new Command("inspect", "Show a GGUF model's architecture, hyperparameters, MoE configuration, tensors, parameters and memory.")
        {
            model,
            json,
            allTensors,
        };
        command.SetAction(parse => context.Guard(() =>
        {
            using var file = GgufFile.Open(parse.GetRequiredValue(model));
            var info = ModelInfo.FromGguf(file);
            if (parse.GetValue(json))
            {
                context.Output.WriteLine(ToJson(file, info));
            }
            else
            {
                WriteTables(context.Console, context.Output, file, info, parse.GetValue(allTensors));
            }

            return 0;
        }));
        return command;
    }

    /// <summary>The summary as one JSON object.</summary>
    internal static string ToJson(GgufFile file, ModelInfo info)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, JsonOptions))
        {
            w.WriteStartObject();
            w.WriteString("file", file.FilePath);
            w.WriteNumber("file_bytes", file.Length);
            w.WriteNumber("gguf_version", file.Version);
            w.WriteNumber("alignment", file.Alignment);
            w.WriteString("architecture", info.Architecture);
            w.WriteString("name", info.Name);

            var h = info.Hyperparameters;
            w.WriteStartObject("hyperparameters");
            Number(w, "vocab_size", h.VocabularySize);
            Number(w, "context_length", h.ContextLength);
            Number(w, "embedding_length", h.EmbeddingLength);
            Number(w, "block_count", h.BlockCount);
            Number(w, "feed_forward_length", h.FeedForwardLength);
            Number(w, "head_count", h.HeadCount);
            Number(w, "head_count_kv", h.HeadCountKv);
            Number(w, "key_length", h.KeyLength);
            Number(w, "value_length", h.ValueLength);
            Number(w, "layer_norm_rms_epsilon", h.LayerNormRmsEpsilon);
            Number(w, "layer_norm_epsilon", h.LayerNormEpsilon);
            w.WriteBoolean("multi_head_latent_attention", h.MultiHeadLatentAttention);
            w.WriteStartObject("rope");
            foreach (var (key, value) in h.Rope)
            {
                w.WritePropertyName(key);
                Value(w, value);
            }

            w.WriteEndObject();
            w.WriteEndObject();

            if (info.Moe is { } moe)
            {
                w.WriteStartObject("moe");
                w.WriteNumber("expert_count", moe.ExpertCount);
                Number(w, "expert_used_count", moe.ExpertUsedCount);
                Number(w, "expert_shared_count", moe.ExpertSharedCount);
                Number(w, "expert_feed_forward_length", moe.ExpertFeedForwardLength);
                Number(w, "expert_shared_feed_forward_length", moe.ExpertSharedFeedForwardLength);
                Number(w, "expert_gating_func", moe.GatingFunctionId);
                w.WriteString("gating_function", GatingName(moe));
                Number(w, "expert_weights_scale", moe.ExpertWeightsScale);
                if (moe.ExpertWeightsNormalized is { } norm)
                {
                    w.WriteBoolean("expert_weights_norm", norm);
                }
                else
                {
                    w.WriteNull("expert_weights_norm");
                }

                Number(w, "leading_dense_block_count", moe.LeadingDenseBlockCount);
                Number(w, "expert_group_count", moe.ExpertGroupCount);
                Number(w, "expert_group_used_count", moe.ExpertGroupUsedCount);
                w.WriteNumber("moe_block_count", moe.MoeBlockCount);
                w.WriteEndObject();
            }
            else
            {
                w.WriteNull("moe");
            }

            w.WriteStartArray("tensors");
            foreach (var tensor in info.Tensors)
            {
                var t = tensor.Info;
                w.WriteStartObject();
                w.WriteString("name", t.Name);
                w.WriteString("type", GgmlTypes.Get(t.Type).Name);
                w.WriteStartArray("shape");
                foreach (long d in t.Dimensions.Reverse())
                {
                    w.WriteNumberValue(d);
                }

                w.WriteEndArray();
                w.WriteStartArray("ne");
                foreach (long d in t.Dimensions)
                {
                    w.WriteNumberValue(d);
                }

                w.WriteEndArray();
                w.WriteNumber("parameters", t.ElementCount);
                w.WriteNumber("active_parameters", tensor.ActiveElements);
                w.WriteNumber("bytes", t.ByteSize);
                w.WriteNumber("offset", t.FileOffset);
                w.WriteString("role", RoleName(tensor.Role));
                w.WriteEndObject();
            }

            w.WriteEndArray();

            w.WriteStartObject("parameters");
            w.WriteNumber("total", info.TotalParameters);
            w.WriteNumber("active", info.ActiveParameters);
            w.WriteEndObject();

            InspectSupport.WriteJson(w, file, info);

            w.WriteNumber("memory_bytes", info.MemoryBytes);
            w.WriteStartObject("memory");
            w.WriteNumber("tensor_bytes", info.TensorBytes);
            Number(w, "kv_cache_bytes", info.KvCacheBytes);
            w.WriteString("kv_cache", "float32 keys and values (keys only under MLA) for context_length positions in every block");
            w.WriteEndObject();

            w.WriteStartObject("metadata");
            foreach (var (key, value) in file.Metadata)
            {
                w.WritePropertyName(key);
                Value(w, value);
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteTables(IAnsiConsole console, TextWriter output, GgufFile file, ModelInfo info, bool allTensors)
    {
        var sections = new List<Section>();
        var overview = new Section("Model", "key", "value");
        overview.Add("file", file.FilePath);
        overview.Add("architecture", info.Architecture);
        overview.Add("name", info.Name ?? "-");
        overview.Add("GGUF version", file.Version.ToString(CultureInfo.InvariantCulture));
        overview.Add("file size", Bytes(file.Length));
        overview.Add("tensors", file.Tensors.Count.ToString("N0", CultureInfo.InvariantCulture));
        overview.Add("metadata keys", file.Metadata.Count.ToString("N0", CultureInfo.InvariantCulture));
        overview.Add("parameters (total)", Count(info.TotalParameters));
        overview.Add("parameters (active per token)", info.TotalParameters == 0
            ? Count(info.ActiveParameters)
            : string.Create(CultureInfo.InvariantCulture, $"{Count(info.ActiveParameters)} ({100.0 * info.ActiveParameters / info.TotalParameters:F1} %)"));
        overview.Add("tensor data", Bytes(info.TensorBytes));
        overview.Add("KV cache (f32, full context)", info.KvCacheBytes is { } kv ? Bytes(kv) : "unknown");
        overview.Add("memory needed", Bytes(info.MemoryBytes));
        sections.Add(overview);

        var h = info.Hyperparameters;
        var hyper = new Section("Hyperparameters", "key", "value");
        hyper.Add("vocab_size", Format(h.VocabularySize));
        hyper.Add("context_length", Format(h.ContextLength));
        hyper.Add("embedding_length", Format(h.EmbeddingLength));
        hyper.Add("block_count", Format(h.BlockCount));
        hyper.Add("feed_forward_length", Format(h.FeedForwardLength));
        hyper.Add("attention.head_count", Format(h.HeadCount));
        hyper.Add("attention.head_count_kv", Format(h.HeadCountKv));
        hyper.Add("attention.key_length", Format(h.KeyLength));
        hyper.Add("attention.value_length", Format(h.ValueLength));
        hyper.Add("attention.layer_norm_rms_epsilon", Format(h.LayerNormRmsEpsilon));
        hyper.Add("attention.layer_norm_epsilon", Format(h.LayerNormEpsilon));
        hyper.Add("multi-head latent attention", h.MultiHeadLatentAttention ? "yes (no separate V cache)" : "no");
        foreach (var (key, value) in h.Rope)
        {
            hyper.Add("rope." + key, Shown(value));
        }

        sections.Add(hyper);

        if (info.Moe is { } moe)
        {
            var table = new Section("Mixture of experts", "key", "value");
            table.Add("expert_count", Format(moe.ExpertCount));
            table.Add("expert_used_count", Format(moe.ExpertUsedCount));
            table.Add("expert_shared_count", Format(moe.ExpertSharedCount));
            table.Add("expert_feed_forward_length", Format(moe.ExpertFeedForwardLength));
            table.Add("expert_shared_feed_forward_length", Format(moe.ExpertSharedFeedForwardLength));
            table.Add("expert_gating_func", moe.GatingFunctionId is { } id ? $"{id} ({GatingName(moe)})" : "not set (architecture default)");
            table.Add("expert_weights_scale", Format(moe.ExpertWeightsScale));
            table.Add("expert_weights_norm", moe.ExpertWeightsNormalized is { } norm ? (norm ? "true" : "false") : "-");
            table.Add("leading_dense_block_count", Format(moe.LeadingDenseBlockCount));
            table.Add("expert_group_count", Format(moe.ExpertGroupCount));
            table.Add("expert_group_used_count", Format(moe.ExpertGroupUsedCount));
            table.Add("blocks with a router", Format(moe.MoeBlockCount));
            sections.Add(table);
        }
        else
        {
            sections.Add(new Section("Mixture of experts: none (dense model, no expert_count)"));
        }

        sections.Add(allTensors ? EveryTensor(info) : GroupedTensors(info));
        sections.Add(InspectSupport.TensorTypes(info));
        sections.Add(InspectSupport.Support(file, info));
        sections.Add(MetadataSection(file));

        // A terminal gets tables sized to it; a pipe or file gets plain aligned columns that never wrap.
        bool terminal = console.Profile.Capabilities.Ansi || console.Profile.Capabilities.Interactive;
        foreach (var section in sections)
        {
            if (terminal)
            {
                section.Render(console);
            }
            else
            {
                section.WritePlain(output);
            }
        }
    }

    private static Section EveryTensor(ModelInfo info)
    {
        var section = new Section("Tensors", "name", "type", "shape", "role", "parameters", "bytes");
        foreach (var t in info.Tensors)
        {
            section.Add(Cut(t.Info.Name), GgmlTypes.Get(t.Info.Type).Name, t.Info.ShapeText, RoleName(t.Role), Count(t.Info.ElementCount), Bytes(t.Info.ByteSize));
        }

        return section;
    }

    /// <summary>One row per tensor name pattern (block number replaced by N), type and shape; the blocks it occurs in.</summary>
    private static Section GroupedTensors(ModelInfo info)
    {
        var section = new Section("Tensors (blocks grouped; --all-tensors lists each)", "name", "blocks", "type", "shape", "role", "parameters", "bytes");
        var groups = info.Tensors
            .Select(t => (Tensor: t, Match: BlockName().Match(t.Info.Name)))
            .GroupBy(x => (
                Name: Cut(x.Match.Success ? $"blk.N.{x.Match.Groups[2].Value}" : x.Tensor.Info.Name),
                x.Tensor.Info.Type,
                Shape: x.Tensor.Info.ShapeText));
        foreach (var group in groups)
        {
            // A block number too long for int is simply not listed as a range.
            var blocks = group.Where(x => x.Match.Success)
                .Select(x => int.TryParse(x.Match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int b) ? b : -1)
                .Where(b => b >= 0)
                .ToList();
            section.Add(
                group.Key.Name,
                Ranges(blocks),
                GgmlTypes.Get(group.Key.Type).Name,
                group.Key.Shape,
                RoleName(group.First().Tensor.Role),
                Count(group.Sum(x => x.Tensor.Info.ElementCount)),
                Bytes(group.Sum(x => x.Tensor.Info.ByteSize)));
        }

        return section;
    }

    private static Section MetadataSection(GgufFile file)
    {
        var section = new Section("Metadata", "key", "type", "value");
        foreach (var (key, value) in file.Metadata)
        {
            string type = value.AsArray is { } a ? $"array of {a.ElementType}" : value.Type.ToString();
            section.Add(Cut(key), type, Shown(value));
        }

        return section;
    }

    private static string Format(long? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "-";

    private static string Format(double? value) => value switch
    {
        null => "-",

        // Stored as float32 (most GGUF floats): its shortest float form, 1E-06 rather than 9.999999974752427E-07.
        { } v when (double)(float)v == v => ((float)v).ToString("R", CultureInfo.InvariantCulture),
        { } v => v.ToString("R", CultureInfo.InvariantCulture),
    };

    /// <summary>A titled table: rendered by Spectre on a terminal, as plain aligned columns otherwise.</summary>
    internal sealed class Section(string title, params string[] columns)
    {
        private readonly List<string[]> _rows = [];

        public void Add(params string[] cells) => _rows.Add(cells);

        public void Render(IAnsiConsole console)
        {
            if (columns.Length == 0)
            {
                console.Write(new Text(title + Environment.NewLine));
                return;
            }

            var table = new Table { Title = new TableTitle(Markup.Escape(title)) };
            foreach (string column in columns)
            {
                table.AddColumn(new TableColumn(Markup.Escape(column)));
            }

            foreach (var row in _rows)
            {
                // Plain Text renderables: file contents are never interpreted as Spectre markup.
                table.AddRow(row.Select(cell => (Spectre.Console.Rendering.IRenderable)new Text(cell)));
            }

            console.Write(table);
        }

        public void WritePlain(TextWriter output)
        {
            output.WriteLine(title);
            if (columns.Length > 0)
            {
                bool keyValue = columns.Length == 2;
                var lines = keyValue ? _rows : [columns, .. _rows];
                int[] widths = new int[columns.Length];
                foreach (var line in lines)
                {
                    for (int i = 0; i < line.Length - 1; i++)
                    {
                        widths[i] = Math.Max(widths[i], line[i].Length);
                    }
                }

                foreach (var line in lines)
                {
                    var text = new StringBuilder("  ");
                    for (int i = 0; i < line.Length; i++)
                    {
                        text.Append(i < line.Length - 1 ? line[i].PadRight(widths[i] + 2) : line[i]);
                    }

                    output.WriteLine(text.ToString().TrimEnd());
                }
            }

            output.WriteLine();
        }
    }

    /// <summary>A value for a table cell: arrays as their length and first items, long strings cut.</summary>
    private static string Shown(GgufValue value)
    {
        if (value.AsArray is { } array)
        {
            var first = array.Items.Cast<object>().Take(3).Select(item => item is GgufArray nested ? nested.ToString() : Scalar(item));
            string more = array.Count > 3 ? ", …" : string.Empty;
            return Cut($"{array.Count} × {array.ElementType}: [{string.Join(", ", first)}{more}]");
        }

        return Cut(value.Type == GgufValueType.String ? (string)value.Value : value.ToString());
    }

    private static string Scalar(object item) => item switch
    {
        string s => s,
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => item.ToString() ?? string.Empty,
    };

    private static string Cut(string text)
    {
        // Control characters would garble a terminal; show them escaped.
        var clean = new StringBuilder(Math.Min(text.Length, MaxShownTextLength + 1));
        foreach (char c in text)
        {
            if (clean.Length > MaxShownTextLength)
            {
                return clean.Append('…').ToString();
            }

            clean.Append(char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString());
        }

        return clean.ToString();
    }

    private static string Ranges(List<int> values)
    {
        values.Sort();
        var parts = new List<string>();
        for (int i = 0; i < values.Count;)
        {
            int j = i;
            while (j + 1 < values.Count && values[j + 1] == values[j] + 1)
            {
                j++;
            }

            parts.Add(i == j ? values[i].ToString(CultureInfo.InvariantCulture) : $"{values[i]}-{values[j]}");
            i = j + 1;
        }

        return string.Join(",", parts);
    }

    internal static string Count(long value) => value switch
    {
        >= 1_000_000_000 => $"{value.ToString("N0", CultureInfo.InvariantCulture)} ({value / 1e9:F2} B)",
        >= 1_000_000 => $"{value.ToString("N0", CultureInfo.InvariantCulture)} ({value / 1e6:F2} M)",
        _ => value.ToString("N0", CultureInfo.InvariantCulture),
    };

    internal static string Bytes(long value) => value switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{value / (double)(1L << 30):F2} GiB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{value / (double)(1L << 20):F2} MiB"),
        >= 1L << 10 => string.Create(CultureInfo.InvariantCulture, $"{value / 1024.0:F1} KiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{value} B"),
    };

    private static string GatingName(MoeConfiguration moe) => moe.GatingFunction switch
    {
        ExpertGatingFunction.Softmax => "softmax",
        ExpertGatingFunction.Sigmoid => "sigmoid",
        ExpertGatingFunction.SoftmaxWeight => "softmax_weight",
        ExpertGatingFunction.SqrtSoftplus => "sqrt_softplus",
        ExpertGatingFunction.None => "none",
        null when moe.GatingFunctionId is null => "default",
        _ => "unknown",
    };

    private static string RoleName(TensorRole role) => role switch
    {
        TensorRole.RoutedExperts => "routed_experts",
        TensorRole.SharedExpert => "shared_expert",
        TensorRole.Router => "router",
        _ => "other",
    };

    private static void Number(Utf8JsonWriter w, string name, long? value)
    {
        if (value is { } v)
        {
            w.WriteNumber(name, v);
        }
        else
        {
            w.WriteNull(name);
        }
    }

    private static void Number(Utf8JsonWriter w, string name, double? value)
    {
        w.WritePropertyName(name);
        if (value is { } v)
        {
            Float(w, v);
        }
        else
        {
            w.WriteNullValue();
        }
    }

    /// <summary>JSON has no NaN or infinities; a file may hold them, so they are written as strings.</summary>
    private static void Float(Utf8JsonWriter w, double value)
    {
        if (double.IsFinite(value) && (double)(float)value == value)
        {
            // Stored as float32 (most GGUF floats): print its shortest float form, 1E-06 rather than 9.99999997E-07.
            w.WriteNumberValue((float)value);
        }
        else if (double.IsFinite(value))
        {
            w.WriteNumberValue(value);
        }
        else
        {
            w.WriteStringValue(value.ToString(CultureInfo.InvariantCulture));
        }
    }

    private static void Value(Utf8JsonWriter w, GgufValue value)
    {
        if (value.AsArray is { } array)
        {
            Array(w, array);
        }
        else
        {
            Item(w, value.Value);
        }
    }

    /// <summary>Short arrays as JSON arrays; long ones (a vocabulary) as their element type and length.</summary>
    private static void Array(Utf8JsonWriter w, GgufArray array)
    {
        if (array.Count > MaxListedArrayItems)
        {
            w.WriteStartObject();
            w.WriteString("element_type", array.ElementType.ToString());
            w.WriteNumber("length", array.Count);
            w.WriteEndObject();
            return;
        }

        w.WriteStartArray();
        foreach (object item in array.Items)
        {
            if (item is GgufArray nested)
            {
                Array(w, nested);
            }
            else
            {
                Item(w, item);
            }
        }

        w.WriteEndArray();
    }

    private static void Item(Utf8JsonWriter w, object item)
    {
        switch (item)
        {
            case string s: w.WriteStringValue(s); break;
            case bool b: w.WriteBooleanValue(b); break;
            case float f when float.IsFinite(f): w.WriteNumberValue(f); break;
            case float f: Float(w, f); break;
            case double d: Float(w, d); break;
            case ulong u: w.WriteNumberValue(u); break;
            case long l: w.WriteNumberValue(l); break;
            default: w.WriteNumberValue(Convert.ToInt64(item, CultureInfo.InvariantCulture)); break;
        }
    }

    [GeneratedRegex(@"^blk\.(\d+)\.(.+)$", RegexOptions.CultureInvariant)]
    private static partial Regex BlockName();
}
