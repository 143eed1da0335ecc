using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using ExpertScope.Core;
using ExpertScope.Experiments.RoutingSources;
using ExpertScope.Models;
using ExpertScope.Models.Routing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ExpertScope.Cli.Serving;

/// <summary>Limits and address of <c>expertscope serve</c>.</summary>
public sealed record ServeOptions
{
    /// <summary>Address to listen on (loopback unless <see cref="AllowRemote"/>).</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>Port (0: any free port, printed at start).</summary>
    public int Port { get; init; } = 8000;

    /// <summary>Allow a non-loopback <see cref="Host"/>.</summary>
    public bool AllowRemote { get; init; }

    /// <summary>The name answered in <c>model</c> fields and <c>/v1/models</c>.</summary>
    public required string ModelName { get; init; }

    /// <summary>Largest request body in bytes.</summary>
    public long MaxRequestBytes { get; init; } = 1 << 20;

    /// <summary>Longest prompt in tokens (never more than the model's context).</summary>
    public int MaxPromptTokens { get; init; } = 4096;

    /// <summary>Largest <c>max_tokens</c>.</summary>
    public int MaxNewTokens { get; init; } = 64;

    /// <summary>Forward-pass threads (null: all cores).</summary>
    public int? Threads { get; init; }
}

/// <summary>
/// An OpenAI-compatible completions server over the engine that returns routed experts as vLLM and SGLang do:
/// <c>POST /v1/completions</c> (greedy decoding; <c>prompt_routed_experts</c> <c>[prompt_len, moe_layers, k]</c> and
/// each choice's <c>routed_experts</c> <c>[gen_len, moe_layers, k]</c> as nested lists; with
/// <c>return_routed_experts: true</c>, SGLang's base64 int32 <c>[seqlen − 1, moe_layers, k]</c> in the choice's
/// <c>sgl_ext</c>), <c>POST /tokenize</c>, <c>GET /v1/models</c> and <c>GET /health</c>. The model is fixed at start and
/// no request names a file. Requests run one at a time (one engine).
/// </summary>
public static class RoutingServer
{
    /// <summary>Builds the web application (not started).</summary>
    /// <exception cref="ExpertScopeException">A non-loopback host without <see cref="ServeOptions.AllowRemote"/>, or bad limits.</exception>
    public static WebApplication Build(MoeModel model, ServeOptions options, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        var address = ParseHost(options.Host);
        if (!IPAddress.IsLoopback(address))
        {
            if (!options.AllowRemote)
            {
                throw new ExpertScopeException($"--host {options.Host} is not a loopback address; pass --allow-remote to serve other machines");
            }

            log.WriteLine($"warning: serving on {options.Host}: anyone who can reach this port can run the model (there is no authentication)");
        }

        if (options.MaxRequestBytes < 1 || options.MaxPromptTokens < 1 || options.MaxNewTokens < 1 || options.Port is < 0 or > 65535)
        {
            throw new ExpertScopeException("serve limits must be positive and the port within 0-65535");
        }

        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Logging.ClearProviders();
        builder.Services.AddRoutingCore();
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = options.MaxRequestBytes;
            kestrel.Listen(address, options.Port);
        });
        var app = builder.Build();
        var engine = new ServedModel(model, options);
        app.MapGet("/health", () => Results.Ok());
        app.MapGet("/v1/models", () => Results.Json(new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray(new JsonObject { ["id"] = options.ModelName, ["object"] = "model", ["owned_by"] = "expertscope" }),
        }));
        app.MapPost("/tokenize", (HttpContext http) => Handle(http, engine.Tokenize));
        app.MapPost("/v1/completions", (HttpContext http) => Handle(http, engine.CompleteAsync));
        return app;
    }

    /// <summary>The address the started application listens on (<c>http://127.0.0.1:PORT</c>).</summary>
    public static string ListeningAddress(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var features = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features;
        return features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.First();
    }

    private static IPAddress ParseHost(string host) =>
        host == "localhost" ? IPAddress.Loopback
        : IPAddress.TryParse(host, out var address) ? address
        : throw new ExpertScopeException($"--host must be an IP address or localhost, got '{host}'");

    private static async Task Handle(HttpContext http, Func<JsonObject, CancellationToken, Task<JsonObject>> handler)
    {
        var result = await Answer(http, handler).ConfigureAwait(false);
        await result.ExecuteAsync(http).ConfigureAwait(false);
    }

    private static async Task<IResult> Answer(HttpContext http, Func<JsonObject, CancellationToken, Task<JsonObject>> handler)
    {
        JsonObject request;
        try
        {
            request = await JsonNode.ParseAsync(http.Request.Body, cancellationToken: http.RequestAborted).ConfigureAwait(false) as JsonObject
                ?? throw new RequestException("the body must be a JSON object");
            return Results.Json(await handler(request, http.RequestAborted).ConfigureAwait(false));
        }
        catch (JsonException e)
        {
            return Error(400, "malformed JSON: " + e.Message);
        }
        catch (BadHttpRequestException e)
        {
            return Error(e.StatusCode, e.Message);
        }
        catch (RequestException e)
        {
            return Error(400, e.Message);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            // A field of the wrong JSON type (e.g. "temperature": "hot").
            return Error(400, "malformed request field: " + e.Message);
        }
        catch (ExpertScopeException e)
        {
            return Error(400, e.Message);
        }
    }

    private static IResult Error(int status, string message) => Results.Json(
        new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = "invalid_request_error", ["code"] = status } },
        statusCode: status);

    /// <summary>A request the server refuses (400).</summary>
    private sealed class RequestException(string message) : Exception(message);

    /// <summary>The engine behind the endpoints, one request at a time.</summary>
    private sealed class ServedModel(MoeModel model, ServeOptions options)
    {
        private readonly SemaphoreSlim _engine = new(1);
        private readonly MoeLayerMap _layers = MoeLayerMap.FromGguf(model.File);
        private long _requests;

        private int PromptLimit => Math.Min(options.MaxPromptTokens, model.Hyperparameters.ContextLength);

        public Task<JsonObject> Tokenize(JsonObject request, CancellationToken cancellationToken)
        {
            CheckModel(request);
            var addSpecial = request["add_special_tokens"] is not JsonValue flag || flag.GetValue<bool>();
            var tokens = model.Tokenizer.Encode(Text(request["prompt"], "prompt"), addSpecial);
            return Task.FromResult(new JsonObject
            {
                ["tokens"] = new JsonArray([.. tokens.Select(token => (JsonNode)token)]),
                ["count"] = tokens.Count,
                ["max_model_len"] = PromptLimit,
            });
        }

        public async Task<JsonObject> CompleteAsync(JsonObject request, CancellationToken cancellationToken)
        {
            CheckModel(request);
            var prompt = PromptTokens(request["prompt"]);
            var maxTokens = Integer(request["max_tokens"], "max_tokens") ?? 16;
            if (maxTokens < 1 || maxTokens > options.MaxNewTokens)
            {
                throw new RequestException($"max_tokens must be between 1 and {options.MaxNewTokens}, got {maxTokens}");
            }

            if (request["temperature"] is JsonValue temperature && temperature.GetValue<double>() != 0)
            {
                throw new RequestException("only greedy decoding is served: temperature must be 0 or absent");
            }

            if (Integer(request["n"], "n") is { } n && n != 1)
            {
                throw new RequestException("n must be 1");
            }

            if (prompt.Length + maxTokens > model.Hyperparameters.ContextLength)
            {
                throw new RequestException($"{prompt.Length} prompt tokens + max_tokens {maxTokens} exceed the context of {model.Hyperparameters.ContextLength}");
            }

            var sglang = request["return_routed_experts"] is JsonValue ask && ask.GetValue<bool>();
            await _engine.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                return Generate(prompt, maxTokens, sglang);
            }
            finally
            {
                _engine.Release();
            }
        }

        private JsonObject Generate(int[] prompt, int maxTokens, bool sglang)
        {
            var session = model.CreateSession();
            var trace = new RoutingTrace();
            var run = new RunOptions { Observers = [trace], ThreadCount = options.Threads, Logits = LogitsSelection.Last };
            var logits = session.Append(prompt, run);
            var generated = new List<int>();
            var finish = "length";
            while (true)
            {
                var next = ArgMax(logits.Row(logits.Rows - 1));
                generated.Add(next);
                var stop = model.Tokenizer.EndOfGenerationIds.Contains(next) || model.Tokenizer.EosId == next;
                if (stop)
                {
                    finish = "stop";
                }

                // Every generated token is fed once so its routing exists (vLLM reports gen_len rows).
                logits = session.Append([next], stop || generated.Count == maxTokens ? run with { Logits = LogitsSelection.None } : run);
                if (stop || generated.Count == maxTokens)
                {
                    break;
                }
            }

            var routing = SequenceRouting.FromTrace(trace, model.FilePath);
            var ids = Flatten(routing);
            var perToken = routing.Layers.Count * routing.TopK;
            var choice = new JsonObject
            {
                ["index"] = 0,
                ["text"] = model.Tokenizer.Decode(generated, removeSpecial: true, unparseSpecial: false),
                ["logprobs"] = null,
                ["finish_reason"] = finish,
            };
            var response = new JsonObject
            {
                ["id"] = "cmpl-" + Interlocked.Increment(ref _requests).ToString(CultureInfo.InvariantCulture),
                ["object"] = "text_completion",
                ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                ["model"] = options.ModelName,
                ["choices"] = new JsonArray(choice),
                ["usage"] = new JsonObject
                {
                    ["prompt_tokens"] = prompt.Length,
                    ["completion_tokens"] = generated.Count,
                    ["total_tokens"] = prompt.Length + generated.Count,
                },
            };
            if (sglang)
            {
                // SGLang: tokens [0, seqlen − 1), the last generated token never having been fed in its server.
                var seqlen = prompt.Length + generated.Count;
                choice["sgl_ext"] = new JsonObject { ["routed_experts"] = RoutedExpertsFormat.WriteBase64(ids.AsSpan(0, (seqlen - 1) * perToken)) };
            }
            else
            {
                choice["routed_experts"] = RoutedExpertsFormat.WriteNested(ids.AsSpan(prompt.Length * perToken), generated.Count, routing.Layers.Count, routing.TopK);
                response["prompt_routed_experts"] = RoutedExpertsFormat.WriteNested(ids, prompt.Length, routing.Layers.Count, routing.TopK);
            }

            return response;
        }

        private void CheckModel(JsonObject request)
        {
            if (request["model"] is JsonValue name && name.GetValueKind() == JsonValueKind.String && name.GetValue<string>() != options.ModelName)
            {
                throw new RequestException($"this server serves '{options.ModelName}', not '{name.GetValue<string>()}'");
            }
        }

        private int[] PromptTokens(JsonNode? node)
        {
            int[] tokens = node switch
            {
                JsonValue value when value.GetValueKind() == JsonValueKind.String => [.. model.Tokenizer.Encode(value.GetValue<string>())],
                JsonArray array when array.All(item => item is JsonValue v && v.GetValueKind() == JsonValueKind.Number) =>
                    [.. array.Select(item => item!.GetValue<int>())],
                _ => throw new RequestException("prompt must be one string or one list of token ids"),
            };
            if (tokens.Length == 0 || tokens.Length > PromptLimit)
            {
                throw new RequestException($"the prompt is {tokens.Length} tokens; it must be 1 to {PromptLimit}");
            }

            var vocabulary = model.Hyperparameters.VocabularySize;
            foreach (var token in tokens.Where(token => token < 0 || token >= vocabulary).Take(1))
            {
                throw new RequestException($"token id {token} is outside the vocabulary of {vocabulary}");
            }

            return tokens;
        }

        private static string Text(JsonNode? node, string field) =>
            node is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : throw new RequestException($"{field} must be a string");

        private static int? Integer(JsonNode? node, string field) => node switch
        {
            null => null,
            JsonValue value when value.TryGetValue<int>(out var number) => number,
            _ => throw new RequestException($"{field} must be an integer"),
        };

        private static int ArgMax(ReadOnlySpan<float> values)
        {
            var best = 0;
            for (var i = 1; i < values.Length; i++)
            {
                if (values[i] > values[best])
                {
                    best = i;
                }
            }

            return best;
        }

        // [token, MoE layer, rank]: the servers' layout.
        private static int[] Flatten(SequenceRouting routing)
        {
            var perToken = routing.Layers.Count * routing.TopK;
            var ids = new int[routing.PositionCount * perToken];
            for (var p = 0; p < routing.PositionCount; p++)
            {
                for (var l = 0; l < routing.Layers.Count; l++)
                {
                    routing.ExpertsAt(l, p).CopyTo(ids.AsSpan((p * perToken) + (l * routing.TopK)));
                }
            }

            return ids;
        }
    }
}
