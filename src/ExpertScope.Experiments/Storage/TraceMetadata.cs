using System.Globalization;
using System.Reflection;
using ExpertScope.Core;

namespace ExpertScope.Experiments.Storage;

/// <summary>
/// What a trace file records about how it was made, stored as Parquet key-value metadata (and in the
/// <c>.meta.json</c> sidecar of a JSON Lines trace) under the <c>expertscope.*</c> keys.
/// </summary>
public sealed record TraceMetadata
{
    /// <summary>Key of <see cref="ModelSha256"/>.</summary>
    public const string ModelSha256Key = "expertscope.model_sha256";

    /// <summary>Key of <see cref="Architecture"/>.</summary>
    public const string ArchitectureKey = "expertscope.architecture";

    /// <summary>Key of <see cref="ExpertCount"/>.</summary>
    public const string ExpertCountKey = "expertscope.expert_count";

    /// <summary>Key of <see cref="TopK"/>.</summary>
    public const string TopKKey = "expertscope.top_k";

    /// <summary>Key of <see cref="CommandLine"/>.</summary>
    public const string CommandLineKey = "expertscope.command_line";

    /// <summary>Key of <see cref="FloatArithmetic"/>.</summary>
    public const string FloatArithmeticKey = "expertscope.float_arithmetic";

    /// <summary>Key of <see cref="ExpertScopeVersion"/>.</summary>
    public const string VersionKey = "expertscope.version";

    /// <summary>Key of <see cref="RoutingSource"/>.</summary>
    public const string RoutingSourceKey = "expertscope.routing_source";

    /// <summary>Key of <see cref="MoeBlocks"/>.</summary>
    public const string MoeBlocksKey = "expertscope.moe_blocks";

    /// <summary>Key of <see cref="Attention"/> (written only when not llama.cpp's default).</summary>
    public const string AttentionKey = "expertscope.attention";

    /// <summary>Key of the finished sequence ids, as ranges (<c>0-41,43,45-99</c>).</summary>
    public const string FinishedSequencesKey = "expertscope.finished_sequences";

    /// <summary>Lower-case hex SHA-256 of the GGUF file (<see cref="FileHash.Sha256Async"/>).</summary>
    public required string ModelSha256 { get; init; }

    /// <summary>The GGUF <c>general.architecture</c> (e.g. <c>olmoe</c>).</summary>
    public required string Architecture { get; init; }

    /// <summary>Routed experts per MoE layer.</summary>
    public required int ExpertCount { get; init; }

    /// <summary>Experts used per token (k), which is the rows per token and layer.</summary>
    public required int TopK { get; init; }

    /// <summary>
    /// The engine's float arithmetic (<c>reference</c> or <c>fused</c>, see <c>--arithmetic</c>); traces written before
    /// the key existed read as <c>reference</c>.
    /// </summary>
    public string FloatArithmetic { get; init; } = "reference";

    /// <summary>
    /// The engine's attention switches that differ from llama.cpp's defaults (<see cref="AttentionName"/>, e.g.
    /// <c>cache_type_k=f32 flash_attn=off</c>), or <c>default</c>; traces written before the key existed read as <c>default</c>.
    /// </summary>
    public string Attention { get; init; } = DefaultAttention;

    /// <summary>
    /// Where the routing came from: <c>engine</c> (weights, scores, probabilities), or <c>vllm</c> / <c>sglang</c> /
    /// <c>engine-ids</c> (expert ids only: <c>weight</c> and <c>score</c> are NaN). Older traces read as <c>engine</c>.
    /// </summary>
    public string RoutingSource { get; init; } = "engine";

    /// <summary>
    /// The MoE blocks, in order, as ranges (<c>3-60</c>): a server's MoE layer i is block i of this list; the
    /// <c>layer</c> column always holds the block. Empty in traces written before the key existed.
    /// </summary>
    public string MoeBlocks { get; init; } = string.Empty;

    /// <summary>The command line that wrote the trace (the latest one when a run was resumed).</summary>
    public string CommandLine { get; init; } = string.Empty;

    /// <summary>The ExpertScope version that wrote the trace.</summary>
    public string ExpertScopeVersion { get; init; } = CurrentVersion;

    /// <summary>The running ExpertScope version (the assembly's informational version).</summary>
    public static string CurrentVersion { get; } =
        typeof(TraceMetadata).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(TraceMetadata).Assembly.GetName().Version?.ToString()
        ?? "unknown";

    /// <summary><see cref="Attention"/> of llama.cpp's default attention numbers.</summary>
    public const string DefaultAttention = "default";

    /// <summary>How <see cref="Attention"/> names <paramref name="settings"/>: its non-default switches, or <c>default</c>.</summary>
    public static string AttentionName(Models.AttentionSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var changed = settings.NonDefaultSettings();
        return changed.Count == 0 ? DefaultAttention : string.Join(" ", changed.Select(p => p.Key + "=" + p.Value));
    }

    /// <summary>The metadata as key-value pairs (<see cref="Attention"/> only when not the default, as older traces lack it).</summary>
    public Dictionary<string, string> ToKeyValues()
    {
        var values = AllKeyValues();
        if (Attention != DefaultAttention)
        {
            values[AttentionKey] = Attention;
        }

        return values;
    }

    private Dictionary<string, string> AllKeyValues() => new(StringComparer.Ordinal)
    {
        [ModelSha256Key] = ModelSha256,
        [ArchitectureKey] = Architecture,
        [ExpertCountKey] = ExpertCount.ToString(CultureInfo.InvariantCulture),
        [TopKKey] = TopK.ToString(CultureInfo.InvariantCulture),
        [FloatArithmeticKey] = FloatArithmetic,
        [RoutingSourceKey] = RoutingSource,
        [MoeBlocksKey] = MoeBlocks,
        [CommandLineKey] = CommandLine,
        [VersionKey] = ExpertScopeVersion,
    };

    /// <summary>Reads the metadata from key-value pairs.</summary>
    /// <param name="values">The pairs.</param>
    /// <param name="source">The file they came from, named in errors.</param>
    /// <exception cref="ExpertScopeException">A required key is missing or malformed.</exception>
    public static TraceMetadata FromKeyValues(IReadOnlyDictionary<string, string> values, string source)
    {
        ArgumentNullException.ThrowIfNull(values);
        string Required(string key) => values.TryGetValue(key, out var v)
            ? v
            : throw new ExpertScopeException($"The trace '{source}' lacks the metadata key '{key}'; it was not written by ExpertScope.");
        int RequiredInt(string key) => int.TryParse(Required(key), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n)
            ? n
            : throw new ExpertScopeException($"The trace '{source}' has a malformed '{key}': '{values[key]}'.");
        return new TraceMetadata
        {
            ModelSha256 = Required(ModelSha256Key),
            Architecture = Required(ArchitectureKey),
            ExpertCount = RequiredInt(ExpertCountKey),
            TopK = RequiredInt(TopKKey),
            FloatArithmetic = values.GetValueOrDefault(FloatArithmeticKey, "reference"),
            Attention = values.GetValueOrDefault(AttentionKey, DefaultAttention),
            RoutingSource = values.GetValueOrDefault(RoutingSourceKey, "engine"),
            MoeBlocks = values.GetValueOrDefault(MoeBlocksKey, string.Empty),
            CommandLine = values.GetValueOrDefault(CommandLineKey, string.Empty),
            ExpertScopeVersion = values.GetValueOrDefault(VersionKey, "unknown"),
        };
    }

    /// <summary>
    /// Lists, in words, how <paramref name="other"/> differs in what decides the trace's contents (model hash,
    /// architecture, expert count, k, float arithmetic, attention settings, routing source); empty when a writer may append <paramref name="other"/>'s rows to this trace.
    /// </summary>
    public IReadOnlyList<string> DifferencesFrom(TraceMetadata other)
    {
        ArgumentNullException.ThrowIfNull(other);
        var differences = new List<string>();
        if (!string.Equals(ModelSha256, other.ModelSha256, StringComparison.OrdinalIgnoreCase))
        {
            differences.Add($"model SHA-256 was {ModelSha256}, now {other.ModelSha256}");
        }

        if (!string.Equals(Architecture, other.Architecture, StringComparison.Ordinal))
        {
            differences.Add($"architecture was '{Architecture}', now '{other.Architecture}'");
        }

        if (ExpertCount != other.ExpertCount)
        {
            differences.Add($"expert count was {ExpertCount}, now {other.ExpertCount}");
        }

        if (TopK != other.TopK)
        {
            differences.Add($"k was {TopK}, now {other.TopK}");
        }

        if (!string.Equals(FloatArithmetic, other.FloatArithmetic, StringComparison.Ordinal))
        {
            differences.Add($"float arithmetic was '{FloatArithmetic}', now '{other.FloatArithmetic}'");
        }

        if (!string.Equals(Attention, other.Attention, StringComparison.Ordinal))
        {
            differences.Add($"attention settings were '{Attention}', now '{other.Attention}'");
        }

        if (!string.Equals(RoutingSource, other.RoutingSource, StringComparison.Ordinal))
        {
            differences.Add($"routing source was '{RoutingSource}', now '{other.RoutingSource}'");
        }

        return differences;
    }
}
