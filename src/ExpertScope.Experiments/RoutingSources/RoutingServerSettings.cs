using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Formats;
using ExpertScope.Formats.Gguf;

namespace ExpertScope.Experiments.RoutingSources;

/// <summary>
/// The <c>--server URL --server-kind vllm|sglang [--server-model NAME] [--api-key-env VAR] [--first-moe-block N]</c>
/// options of the verbs that consume routing: take it from a vLLM or SGLang server instead of the engine.
/// </summary>
public sealed record RoutingServerSettings
{
    /// <summary>The server's base address.</summary>
    public required Uri Address { get; init; }

    /// <summary>Its response layout.</summary>
    public required ServerKind Kind { get; init; }

    /// <summary>The served model name sent in requests, or null.</summary>
    public string? Model { get; init; }

    /// <summary>The environment variable holding the API key (the key itself is never stored or recorded).</summary>
    public string? ApiKeyVariable { get; init; }

    /// <summary>The first MoE block (MoE blocks contiguous from it); null: the blocks with a router in the local GGUF.</summary>
    public int? FirstMoeBlock { get; init; }

    /// <summary>Requests in flight at once.</summary>
    public int Concurrency { get; init; } = 8;

    /// <summary>Tries per prompt.</summary>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>Seconds one request may take.</summary>
    public double TimeoutSeconds { get; init; } = 300;

    /// <summary>First retry delay (doubled per try).</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Also compare the server's <c>/tokenize</c> ids with the local tokenizer's, prompt by prompt.</summary>
    public bool VerifyTokenIds { get; init; }

    /// <summary>Parses <c>--server-kind</c>.</summary>
    public static ServerKind ParseKind(string name) => name switch
    {
        "vllm" => ServerKind.Vllm,
        "sglang" => ServerKind.Sglang,
        _ => throw new ExpertScopeException($"unknown --server-kind '{name}'; use vllm or sglang"),
    };

    /// <summary>Parses <c>--server</c>.</summary>
    public static Uri ParseAddress(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw new ExpertScopeException($"--server must be an absolute http:// or https:// address, got '{url}'");

    /// <summary>The name runs and traces record for the source (<c>vllm</c> or <c>sglang</c>).</summary>
    public string SourceName => Kind == ServerKind.Vllm ? "vllm" : "sglang";

    /// <summary>
    /// The MoE layer map: contiguous from <see cref="FirstMoeBlock"/> (as many layers as the GGUF's MoE blocks, or its
    /// blocks after the first MoE block), else the blocks that hold a router tensor in <paramref name="file"/>.
    /// </summary>
    public MoeLayerMap LayerMap(GgufFile file, ModelInfo info)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(info);
        if (FirstMoeBlock is not { } first)
        {
            return MoeLayerMap.FromGguf(file);
        }

        var count = info.Moe is { MoeBlockCount: > 0 } moe ? moe.MoeBlockCount
            : info.Hyperparameters.BlockCount is { } blocks ? checked((int)blocks) - first
            : throw new ExpertScopeException($"{file.FilePath}: no block_count to count the MoE layers after --first-moe-block {first.ToString(CultureInfo.InvariantCulture)}");
        return MoeLayerMap.Contiguous(first, count);
    }

    /// <summary>Creates the client for a model whose local GGUF gives k, N and (unless given) the MoE blocks.</summary>
    /// <exception cref="ExpertScopeException">The API key variable is named but not set.</exception>
    public ServerRoutingSource CreateSource(GgufFile file, ModelInfo info, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(info);
        var moe = info.Moe ?? throw new ExpertScopeException($"{file.FilePath}: not a Mixture-of-Experts model (no expert_count)");
        string? key = null;
        if (ApiKeyVariable is { } variable)
        {
            key = Environment.GetEnvironmentVariable(variable);
            if (string.IsNullOrEmpty(key))
            {
                throw new ExpertScopeException($"--api-key-env names '{variable}', but that environment variable is not set");
            }
        }

        return new ServerRoutingSource(
            new ServerOptions
            {
                BaseAddress = Address,
                Kind = Kind,
                Model = Model,
                ApiKey = key,
                Concurrency = Concurrency,
                MaxAttempts = MaxAttempts,
                Timeout = TimeSpan.FromSeconds(TimeoutSeconds),
                RetryDelay = RetryDelay,
                VerifyTokenIds = VerifyTokenIds,
                TopK = checked((int)(moe.ExpertUsedCount ?? throw new ExpertScopeException($"{file.FilePath}: no expert_used_count (k)"))),
                ExpertCount = checked((int)moe.ExpertCount),
                LayerMap = LayerMap(file, info),
            },
            handler);
    }
}
