using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using ExpertScope.Core;
using ExpertScope.Experiments.RoutingSources;

namespace ExpertScope.Experiments.Tests;

/// <summary>
/// The vLLM/SGLang routing client against canned responses (no network): the documented body layouts, retries on
/// 429/5xx/timeouts/bad JSON, and one clear error naming the prompt for everything that cannot be retried away.
/// </summary>
public sealed class RoutingServerClientTests
{
    // Fixture model: 2 MoE layers (blocks 1 and 2), k = 2, N = 8; prompt of 3 tokens.
    private static readonly RoutingPrompt Prompt = new("sentence 4 ('The bank')", "The bank", [1, 17, 42], 3);

    [Fact]
    public void VllmFixtureReadsAsNestedListsTokenLayerRank()
    {
        var routed = RoutedExpertsFormat.ReadCompletion(ServerKind.Vllm, Fixture("vllm-completion.json"), "p", 2, 2, 8);
        Assert.Equal(3, routed.TokenCount);
        Assert.Equal(3, routed.PromptTokens);
        Assert.Equal([5, 2, 1, 0, 3, 7, 6, 4, 0, 1, 2, 5], routed.Ids);
        var sequence = routed.ToSequenceRouting(new MoeLayerMap([1, 2], "test"), 8, 3);
        Assert.Equal([1, 2], sequence.Layers);
        Assert.Equal([6, 4], sequence.ExpertsAt(1, 1).ToArray());
        Assert.True(sequence.WeightsAt(0, 0).IsEmpty);
        Assert.Equal(RoutingDetail.IdsOnly, sequence.Detail);
    }

    [Fact]
    public void SglangFixturesReadAsBase64Int32FromSglExtAndMetaInfo()
    {
        foreach (var file in new[] { "sglang-completion.json", "sglang-generate.json" })
        {
            var routed = RoutedExpertsFormat.ReadCompletion(ServerKind.Sglang, Fixture(file), "p", 2, 2, 8);
            Assert.Equal(3, routed.TokenCount);
            Assert.Equal(3, routed.PromptTokens);
            Assert.Equal([5, 2, 1, 0, 3, 7, 6, 4, 0, 1, 2, 5], routed.Ids);
        }
    }

    [Fact]
    public void WrittenLayoutsReadBackToTheSameIds()
    {
        int[] ids = [5, 2, 1, 0, 3, 7, 6, 4, 0, 1, 2, 5];
        var vllm = new JsonObject { ["prompt_routed_experts"] = RoutedExpertsFormat.WriteNested(ids, 3, 2, 2) }.ToJsonString();
        Assert.Equal(ids, RoutedExpertsFormat.ReadCompletion(ServerKind.Vllm, vllm, "p", 2, 2, 8).Ids);
        var sglang = new JsonObject { ["choices"] = new JsonArray(new JsonObject { ["sgl_ext"] = new JsonObject { ["routed_experts"] = RoutedExpertsFormat.WriteBase64(ids) } }) }.ToJsonString();
        Assert.Equal(ids, RoutedExpertsFormat.ReadCompletion(ServerKind.Sglang, sglang, "p", 2, 2, 8).Ids);
        Assert.Equal("BQAAAAIAAAABAAAAAAAAAAMAAAAHAAAABgAAAAQAAAAAAAAAAQAAAAIAAAAFAAAA", RoutedExpertsFormat.WriteBase64(ids));
    }

    [Fact]
    public async Task RateLimitsAndServerErrorsAreRetriedWithBackoff()
    {
        var handler = new ScriptedHandler(
            _ => Reply(HttpStatusCode.TooManyRequests, "{\"error\":\"slow down\"}"),
            _ => Reply(HttpStatusCode.InternalServerError, "oops"),
            _ => Reply(HttpStatusCode.OK, Fixture("vllm-completion.json")));
        using var source = Client(ServerKind.Vllm, handler);
        var routing = await source.RouteOneAsync(Prompt);
        Assert.Equal([5, 2], routing.ExpertsAt(0, 0).ToArray());
        Assert.Equal(3, source.Requests);
        Assert.Equal(2, source.Retries);
        var request = JsonNode.Parse(handler.Bodies[0])!;
        Assert.Equal("The bank", request["prompt"]!.GetValue<string>());
        Assert.Equal(1, request["max_tokens"]!.GetValue<int>());
        Assert.Equal("/v1/completions", handler.Paths[0]);
    }

    [Fact]
    public async Task PersistentFailuresEndInOneErrorNamingThePrompt()
    {
        using var failing = Client(ServerKind.Vllm, new ScriptedHandler(_ => Reply(HttpStatusCode.ServiceUnavailable, "busy")));
        var error = await Assert.ThrowsAsync<ExpertScopeException>(() => failing.RouteOneAsync(Prompt));
        Assert.Contains("sentence 4 ('The bank')", error.Message, StringComparison.Ordinal);
        Assert.Contains("failed 3 times", error.Message, StringComparison.Ordinal);
        Assert.Contains("HTTP 503", error.Message, StringComparison.Ordinal);

        using var malformed = Client(ServerKind.Vllm, new ScriptedHandler(_ => Reply(HttpStatusCode.OK, "{\"choices\": [")));
        error = await Assert.ThrowsAsync<ExpertScopeException>(() => malformed.RouteOneAsync(Prompt));
        Assert.Contains("malformed JSON", error.Message, StringComparison.Ordinal);
        Assert.Equal(3, malformed.Requests);

        using var badRequest = Client(ServerKind.Vllm, new ScriptedHandler(_ => Reply(HttpStatusCode.BadRequest, "context too long")));
        error = await Assert.ThrowsAsync<ExpertScopeException>(() => badRequest.RouteOneAsync(Prompt));
        Assert.Contains("HTTP 400", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, badRequest.Requests); // a client error is not retried
    }

    [Fact]
    public async Task TimeoutsAreRetriedThenReported()
    {
        var handler = new ScriptedHandler(
            async cancel => { await Task.Delay(TimeSpan.FromSeconds(10), cancel); return Reply(HttpStatusCode.OK, "{}"); },
            _ => Task.FromResult(Reply(HttpStatusCode.OK, Fixture("vllm-completion.json"))));
        using var source = Client(ServerKind.Vllm, handler, timeout: TimeSpan.FromMilliseconds(100));
        var routing = await source.RouteOneAsync(Prompt);
        Assert.Equal([5, 2], routing.ExpertsAt(0, 0).ToArray());
        Assert.Equal(1, source.Retries);

        using var hanging = Client(ServerKind.Vllm, new ScriptedHandler(
            async cancel => { await Task.Delay(TimeSpan.FromSeconds(10), cancel); return Reply(HttpStatusCode.OK, "{}"); }), timeout: TimeSpan.FromMilliseconds(50));
        var error = await Assert.ThrowsAsync<ExpertScopeException>(() => hanging.RouteOneAsync(Prompt));
        Assert.Contains("no answer within", error.Message, StringComparison.Ordinal);
        Assert.Contains("sentence 4", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"prompt_routed_experts\": [[[5,2],[1,0]], [[3,7]], [[0,1],[2,5]]]}", "should list 2 MoE layers")]
    [InlineData("{\"prompt_routed_experts\": [[[5,2,1],[1,0]]]}", "should list 2 experts")]
    [InlineData("{\"prompt_routed_experts\": [[[5,2],[1,8]], [[3,7],[6,4]], [[0,1],[2,5]]]}", "expert id 8 at token 0, MoE layer 1 is outside [0, 8)")]
    [InlineData("{\"prompt_routed_experts\": [[[5,2],[1,0]], [[3,7],[6,4]]]}", "the server routed 2 prompt tokens")]
    [InlineData("{\"choices\": [{\"text\": \"x\"}]}", "no 'prompt_routed_experts'")]
    [InlineData("{\"prompt_routed_experts\": [[[5,2],[1,0]], [[3,7],[6,4]], [[0,1],[2,5]]], \"usage\": {\"prompt_tokens\": 4}}", "usage.prompt_tokens 4")]
    public async Task WrongShapesIdsAndTokenCountsAreErrorsNamingThePrompt(string body, string expected)
    {
        using var source = Client(ServerKind.Vllm, new ScriptedHandler(_ => Reply(HttpStatusCode.OK, body)));
        var error = await Assert.ThrowsAsync<ExpertScopeException>(() => source.RouteOneAsync(Prompt));
        Assert.Contains("sentence 4 ('The bank')", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Equal(1, source.Requests); // deterministic: not retried
    }

    [Fact]
    public async Task SglangBytesNotAWholeNumberOfTokensAreAnError()
    {
        var body = new JsonObject { ["choices"] = new JsonArray(new JsonObject { ["sgl_ext"] = new JsonObject { ["routed_experts"] = RoutedExpertsFormat.WriteBase64([1, 2, 3]) } }) };
        using var source = Client(ServerKind.Sglang, new ScriptedHandler(_ => Reply(HttpStatusCode.OK, body.ToJsonString())));
        var error = await Assert.ThrowsAsync<ExpertScopeException>(() => source.RouteOneAsync(Prompt));
        Assert.Contains("not a whole number of tokens", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ServerTokenizerDisagreeingWithTheLocalOneIsAnError()
    {
        var handler = new ScriptedHandler(_ => Reply(HttpStatusCode.OK, "{\"tokens\": [1, 17, 43], \"count\": 3}"));
        using var source = Client(ServerKind.Vllm, handler, verify: true);
        var error = await Assert.ThrowsAsync<ExpertScopeException>(() => source.RouteOneAsync(Prompt));
        Assert.Contains("sentence 4", error.Message, StringComparison.Ordinal);
        Assert.Contains("first differ at position 2", error.Message, StringComparison.Ordinal);
        Assert.Equal("/tokenize", handler.Paths[0]);
    }

    [Fact]
    public async Task ConcurrencyIsBoundedAndResultsKeepPromptOrder()
    {
        var inFlight = 0;
        var most = 0;
        var handler = new ScriptedHandler(async cancel =>
        {
            var now = Interlocked.Increment(ref inFlight);
            InterlockedMax(ref most, now);
            await Task.Delay(20, cancel);
            Interlocked.Decrement(ref inFlight);
            return Reply(HttpStatusCode.OK, Fixture("vllm-completion.json"));
        });
        using var source = Client(ServerKind.Vllm, handler, concurrency: 3);
        var prompts = Enumerable.Range(0, 12).Select(i => Prompt with { Name = $"p{i}", RoutedPositions = 1 + (i % 3) }).ToList();
        var results = await source.RouteAsync(prompts);
        Assert.Equal(prompts.Select(p => p.RoutedPositions), results.Select(r => r.PositionCount));
        Assert.InRange(most, 1, 3);
    }

    [Fact]
    public void MissingApiKeyVariableAndBadAddressesAreErrors()
    {
        Assert.Throws<ExpertScopeException>(() => RoutingServerSettings.ParseAddress("ftp://host"));
        Assert.Throws<ExpertScopeException>(() => RoutingServerSettings.ParseKind("tgi"));
        Assert.Throws<ExpertScopeException>(() => new MoeLayerMap([3, 3], "test"));
        Assert.Equal("3-5,7", new MoeLayerMap([3, 4, 5, 7], "test").ToString());
        var map = MoeLayerMap.Contiguous(3, 58);
        var error = Assert.Throws<ExpertScopeException>(() => map.CheckLayerCount(61, "sentence 1"));
        Assert.Contains("sentence 1", error.Message, StringComparison.Ordinal);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }

    private static ServerRoutingSource Client(ServerKind kind, HttpMessageHandler handler, TimeSpan? timeout = null, bool verify = false, int concurrency = 2) =>
        new(new ServerOptions
        {
            BaseAddress = new Uri("http://127.0.0.1:9/"),
            Kind = kind,
            MaxAttempts = 3,
            RetryDelay = TimeSpan.FromMilliseconds(1),
            Timeout = timeout ?? TimeSpan.FromSeconds(5),
            Concurrency = concurrency,
            VerifyTokenIds = verify,
            TopK = 2,
            ExpertCount = 8,
            LayerMap = new MoeLayerMap([1, 2], "test"),
        }, handler);

    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", name));

    private static HttpResponseMessage Reply(HttpStatusCode status, string body) =>
        new(status) { Content = new StringContent(body, Encoding.UTF8, "application/json") };

    /// <summary>Answers the n-th request with the n-th step (the last step repeats), recording paths and bodies.</summary>
    private sealed class ScriptedHandler : HttpMessageHandler
    {
        private readonly Func<CancellationToken, Task<HttpResponseMessage>>[] _steps;
        private int _next = -1;

        public ScriptedHandler(params Func<CancellationToken, HttpResponseMessage>[] steps)
        {
            _steps = [.. steps.Select(step => (Func<CancellationToken, Task<HttpResponseMessage>>)(cancel => Task.FromResult(step(cancel))))];
        }

        public ScriptedHandler(params Func<CancellationToken, Task<HttpResponseMessage>>[] steps)
        {
            _steps = steps;
        }

        public List<string> Paths { get; } = [];

        public List<string> Bodies { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            lock (Paths)
            {
                Paths.Add(request.RequestUri!.AbsolutePath);
            }

            var body = await request.Content!.ReadAsStringAsync(cancellationToken);
            lock (Bodies)
            {
                Bodies.Add(body);
            }

            var step = Math.Min(Interlocked.Increment(ref _next), _steps.Length - 1);
            return await _steps[step](cancellationToken);
        }
    }
}
