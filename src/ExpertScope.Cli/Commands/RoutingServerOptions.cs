using System.CommandLine;
using ExpertScope.Core;
using ExpertScope.Experiments.RoutingSources;

namespace ExpertScope.Cli;

/// <summary>
/// The options of the verbs that consume routing, for taking it from a vLLM or SGLang server instead of the engine:
/// <c>--server URL --server-kind vllm|sglang [--server-model NAME] [--api-key-env VAR] [--first-moe-block N]</c>
/// plus concurrency, timeout, retries and <c>--server-tokenize</c>. With a server, <c>--model</c> is read only for its
/// tokenizer, k, N and MoE blocks.
/// </summary>
public sealed class RoutingServerOptions
{
    /// <summary><c>--server URL</c>.</summary>
    public Option<string?> Server { get; } = new("--server") { Description = "Take routing from a vLLM or SGLang server at this address (expert ids only); --model then supplies the tokenizer, k, N and MoE blocks." };

    /// <summary><c>--server-kind</c>.</summary>
    public Option<string?> Kind { get; } = new("--server-kind") { Description = "vllm or sglang (the response layout)." };

    /// <summary><c>--server-model</c>.</summary>
    public Option<string?> Model { get; } = new("--server-model") { Description = "The served model name sent in requests." };

    /// <summary><c>--api-key-env</c>.</summary>
    public Option<string?> ApiKeyEnv { get; } = new("--api-key-env") { Description = "Environment variable holding the server's API key (sent as a bearer token, never recorded)." };

    /// <summary><c>--first-moe-block</c>.</summary>
    public Option<int?> FirstMoeBlock { get; } = new("--first-moe-block") { Description = "Block index of the server's MoE layer 0 (e.g. 3 for DeepSeek-V3/R1); default: the blocks with a router in --model." };

    /// <summary><c>--server-concurrency</c>.</summary>
    public Option<int> Concurrency { get; } = new("--server-concurrency") { Description = "Requests in flight at once.", DefaultValueFactory = _ => 8 };

    /// <summary><c>--server-timeout</c>.</summary>
    public Option<double> Timeout { get; } = new("--server-timeout") { Description = "Seconds one request may take.", DefaultValueFactory = _ => 300 };

    /// <summary><c>--server-attempts</c>.</summary>
    public Option<int> Attempts { get; } = new("--server-attempts") { Description = "Tries per prompt (429, 5xx, timeouts, bad JSON are retried with backoff).", DefaultValueFactory = _ => 5 };

    /// <summary><c>--server-tokenize</c>.</summary>
    public Option<bool> VerifyTokenIds { get; } = new("--server-tokenize") { Description = "Also compare the server's /tokenize ids with the local tokenizer's for every prompt." };

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        foreach (var option in new Option[] { Server, Kind, Model, ApiKeyEnv, FirstMoeBlock, Concurrency, Timeout, Attempts, VerifyTokenIds })
        {
            command.Options.Add(option);
        }
    }

    /// <summary>The server settings, or null when <c>--server</c> is absent.</summary>
    /// <exception cref="ExpertScopeException">A server option without <c>--server</c>, a missing kind, or a bad value.</exception>
    public RoutingServerSettings? Parse(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var url = parse.GetValue(Server);
        if (url is null)
        {
            if (parse.GetValue(Kind) is not null || parse.GetValue(Model) is not null || parse.GetValue(ApiKeyEnv) is not null || parse.GetValue(FirstMoeBlock) is not null)
            {
                throw new ExpertScopeException("--server-kind, --server-model, --api-key-env and --first-moe-block need --server URL");
            }

            return null;
        }

        var kind = parse.GetValue(Kind) ?? throw new ExpertScopeException("--server needs --server-kind vllm|sglang");
        var timeout = parse.GetValue(Timeout);
        if (!(timeout > 0))
        {
            throw new ExpertScopeException($"--server-timeout must be positive, got {timeout}");
        }

        return new RoutingServerSettings
        {
            Address = RoutingServerSettings.ParseAddress(url),
            Kind = RoutingServerSettings.ParseKind(kind),
            Model = parse.GetValue(Model),
            ApiKeyVariable = parse.GetValue(ApiKeyEnv),
            FirstMoeBlock = parse.GetValue(FirstMoeBlock),
            Concurrency = parse.GetValue(Concurrency),
            TimeoutSeconds = timeout,
            MaxAttempts = parse.GetValue(Attempts),
            VerifyTokenIds = parse.GetValue(VerifyTokenIds),
        };
    }
}
