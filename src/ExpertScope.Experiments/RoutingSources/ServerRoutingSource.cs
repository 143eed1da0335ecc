using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ExpertScope.Core;

namespace ExpertScope.Experiments.RoutingSources;

/// <summary>How to reach a vLLM or SGLang server and how hard to try.</summary>
public sealed record ServerOptions
{
    /// <summary>The server's base address (<c>http://host:8000</c>); <c>/v1/completions</c> and <c>/tokenize</c> are appended.</summary>
    public required Uri BaseAddress { get; init; }

    /// <summary>The response layout.</summary>
    public required ServerKind Kind { get; init; }

    /// <summary>The <c>model</c> field of requests (the served model name), or null to leave it out.</summary>
    public string? Model { get; init; }

    /// <summary>Bearer token (read from the variable <c>--api-key-env</c> names; never written anywhere).</summary>
    public string? ApiKey { get; init; }

    /// <summary>Requests in flight at once.</summary>
    public int Concurrency { get; init; } = 8;

    /// <summary>Tries per prompt before it is reported as failed.</summary>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>Time one request may take.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(300);

    /// <summary>First retry delay; doubled on each further try (capped at a minute), or the server's <c>Retry-After</c> when longer.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Also ask the server's <c>/tokenize</c> and require its token ids to equal the local tokenizer's.</summary>
    public bool VerifyTokenIds { get; init; }

    /// <summary>Experts per token and layer (k) of the served model.</summary>
    public required int TopK { get; init; }

    /// <summary>Routed experts per layer (N): ids must lie below it.</summary>
    public required int ExpertCount { get; init; }

    /// <summary>MoE layer index ↔ GGUF block.</summary>
    public required MoeLayerMap LayerMap { get; init; }
}

/// <summary>
/// Routing from a vLLM or SGLang server: one <c>/v1/completions</c> request per prompt (the prompt's text,
/// <c>max_tokens</c> 1, greedy), at most <see cref="ServerOptions.Concurrency"/> at a time. 429, 5xx, timeouts,
/// connection failures and unreadable JSON are retried with exponential backoff; a prompt still failing, a response
/// of the wrong shape, an id ≥ N, or a token count other than the local tokenizer's is an error naming the prompt.
/// Servers return expert ids only (<see cref="RoutingDetail.IdsOnly"/>).
/// </summary>
public sealed class ServerRoutingSource : IRoutingSource, IDisposable
{
    private readonly ServerOptions _options;
    private readonly HttpClient _client;
    private long _requests;
    private long _retries;

    /// <summary>Creates the client.</summary>
    /// <param name="options">Server and retry settings.</param>
    /// <param name="handler">The HTTP handler (tests pass one that answers without a network); null: a plain socket handler.</param>
    public ServerRoutingSource(ServerOptions options, HttpMessageHandler? handler = null)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        if (options.Concurrency < 1 || options.MaxAttempts < 1)
        {
            throw new ExpertScopeException($"server concurrency and attempts must be at least 1, got {options.Concurrency} and {options.MaxAttempts}");
        }

        if (options.BaseAddress.Scheme is not ("http" or "https"))
        {
            throw new ExpertScopeException($"--server must be an http:// or https:// address, got '{options.BaseAddress}'");
        }

        _client = new HttpClient(handler ?? new SocketsHttpHandler { MaxConnectionsPerServer = options.Concurrency }, disposeHandler: true)
        {
            BaseAddress = options.BaseAddress,
            Timeout = System.Threading.Timeout.InfiniteTimeSpan, // per request, below
        };
        if (options.ApiKey is { Length: > 0 } key)
        {
            _client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
    }

    /// <inheritdoc/>
    public RoutingDetail Detail => RoutingDetail.IdsOnly;

    /// <inheritdoc/>
    public string Kind => _options.Kind == ServerKind.Vllm ? "vllm" : "sglang";

    /// <inheritdoc/>
    public MoeLayerMap LayerMap => _options.LayerMap;

    /// <inheritdoc/>
    public int BatchSize => 2 * _options.Concurrency;

    /// <summary>HTTP requests sent so far (retries included).</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Retries so far.</summary>
    public long Retries => Interlocked.Read(ref _retries);

    /// <inheritdoc/>
    public async Task<IReadOnlyList<SequenceRouting>> RouteAsync(IReadOnlyList<RoutingPrompt> prompts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        using var gate = new SemaphoreSlim(_options.Concurrency);
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var tasks = prompts.Select(async prompt =>
        {
            await gate.WaitAsync(failed.Token).ConfigureAwait(false);
            try
            {
                return await RouteOneAsync(prompt, failed.Token).ConfigureAwait(false);
            }
            catch (ExpertScopeException)
            {
                // One prompt failed for good: stop the others so the error comes back quickly.
                await failed.CancelAsync().ConfigureAwait(false);
                throw;
            }
            finally
            {
                gate.Release();
            }
        }).ToList();
        try
        {
            return await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // Report the prompt that failed, not the ones cancelled because of it.
            throw tasks.Where(task => task.IsFaulted).Select(task => task.Exception!.InnerException).OfType<ExpertScopeException>().First();
        }
    }

    /// <summary>Routes one prompt, retrying transient failures.</summary>
    public async Task<SequenceRouting> RouteOneAsync(RoutingPrompt prompt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (_options.VerifyTokenIds && prompt.Text is not null)
        {
            var serverTokens = await WithRetriesAsync(prompt, "/tokenize", TokenizeBody(prompt), ReadTokenize, cancellationToken).ConfigureAwait(false);
            if (!serverTokens.SequenceEqual(prompt.Tokens))
            {
                var at = serverTokens.Zip(prompt.Tokens).TakeWhile(pair => pair.First == pair.Second).Count();
                throw new ExpertScopeException(string.Create(CultureInfo.InvariantCulture,
                    $"{prompt.Name}: the server's /tokenize gives {serverTokens.Count} tokens, the local tokenizer {prompt.Tokens.Count}; they first differ at position {at}. Name the served model's own tokenizer (--model)."));
            }
        }

        var routed = await WithRetriesAsync(prompt, "/v1/completions", CompletionBody(prompt), body =>
            RoutedExpertsFormat.ReadCompletion(_options.Kind, body, prompt.Name, _options.LayerMap.Blocks.Count, _options.TopK, _options.ExpertCount),
            cancellationToken).ConfigureAwait(false);
        // vLLM's prompt_routed_experts covers the prompt; SGLang's covers [0, seqlen − 1), which is the prompt when one token is generated.
        if (routed.TokenCount != prompt.Tokens.Count || (routed.PromptTokens is { } count && count != prompt.Tokens.Count))
        {
            throw new ExpertScopeException(string.Create(CultureInfo.InvariantCulture,
                $"{prompt.Name}: the server routed {routed.TokenCount} prompt tokens (usage.prompt_tokens {routed.PromptTokens?.ToString(CultureInfo.InvariantCulture) ?? "absent"}), the local tokenizer gives {prompt.Tokens.Count}; positions would not line up. Name the served model's own tokenizer (--model)."));
        }

        return routed.ToSequenceRouting(_options.LayerMap, _options.ExpertCount, prompt.RoutedPositions);
    }

    /// <summary>Closes the connections.</summary>
    public void Dispose() => _client.Dispose();

    private JsonObject CompletionBody(RoutingPrompt prompt)
    {
        JsonNode promptField = prompt.Text is { } text ? JsonValue.Create(text) : new JsonArray([.. prompt.Tokens.Select(token => (JsonNode)token)]);
        var body = new JsonObject { ["prompt"] = promptField, ["max_tokens"] = 1, ["temperature"] = 0 };
        if (_options.Model is { } model)
        {
            body["model"] = model;
        }

        if (_options.Kind == ServerKind.Sglang)
        {
            body["return_routed_experts"] = true;
        }

        return body;
    }

    private JsonObject TokenizeBody(RoutingPrompt prompt)
    {
        var body = new JsonObject { ["prompt"] = prompt.Text };
        if (_options.Model is { } model)
        {
            body["model"] = model;
        }

        return body;
    }

    private static IReadOnlyList<int> ReadTokenize(string body) =>
        JsonNode.Parse(body) is JsonObject { } root && root["tokens"] is JsonArray tokens
            && tokens.All(token => token is JsonValue value && value.TryGetValue<int>(out _))
            ? [.. tokens.Select(token => token!.GetValue<int>())]
            : throw new ExpertScopeException("the server's /tokenize response has no 'tokens' list of integers");

    private async Task<T> WithRetriesAsync<T>(RoutingPrompt prompt, string path, JsonObject request, Func<string, T> read, CancellationToken cancellationToken)
    {
        var json = request.ToJsonString();
        string failure = "no attempt";
        for (var attempt = 1; ; attempt++)
        {
            TimeSpan? retryAfter = null;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.Timeout);
            Interlocked.Increment(ref _requests);
            try
            {
                using var content = new StringContent(json, Encoding.UTF8, "application/json");
                using var response = await _client.PostAsync(path, content, timeout.Token).ConfigureAwait(false);
                var body = await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    return read(body);
                }

                failure = $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}: {Shorten(body)}";
                if (response.StatusCode != HttpStatusCode.TooManyRequests && (int)response.StatusCode < 500)
                {
                    throw new ExpertScopeException($"{prompt.Name}: {path} answered {failure}");
                }

                retryAfter = response.Headers.RetryAfter?.Delta;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                failure = $"no answer within {_options.Timeout.TotalSeconds:0.#} s";
            }
            catch (HttpRequestException e)
            {
                failure = "connection failed: " + e.Message;
            }
            catch (JsonException e)
            {
                failure = "malformed JSON: " + e.Message;
            }

            if (attempt >= _options.MaxAttempts)
            {
                throw new ExpertScopeException(string.Create(CultureInfo.InvariantCulture,
                    $"{prompt.Name}: {path} on {_options.BaseAddress} failed {attempt} times; last: {failure}"));
            }

            Interlocked.Increment(ref _retries);
            var backoff = _options.RetryDelay * Math.Pow(2, attempt - 1);
            var delay = TimeSpan.FromTicks(Math.Min(TimeSpan.FromMinutes(1).Ticks, Math.Max(backoff.Ticks, retryAfter?.Ticks ?? 0)));
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
        }
    }

    private static string Shorten(string text) => text.Length <= 200 ? text : text[..200] + "…";
}
