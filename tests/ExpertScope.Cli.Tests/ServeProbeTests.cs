using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using ExpertScope.Cli;
using ExpertScope.Cli.Serving;
using ExpertScope.Core;
using ExpertScope.Experiments.Probes;
using ExpertScope.Experiments.RoutingSources;
using ExpertScope.Experiments.Runs;
using ExpertScope.Models;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary>
/// Routing through <c>expertscope serve</c> over loopback HTTP equals routing in-process: the word-sense probe's
/// <c>pairs.csv</c> is the same bytes for the engine (ids only), the vLLM layout and the SGLang layout, an
/// interrupted server-backed run resumes to the same result, and the server refuses what it must.
/// </summary>
public sealed class ServeProbeTests
{
    private static readonly string ModelPath = GoldenData.GoldenPath("models", "olmoe", "model.gguf");

    [Fact]
    public async Task WordSensePairsAreIdenticalInProcessAndThroughBothServerLayouts()
    {
        using var temp = new TempDirectory();
        await using var server = await LoopbackServer.StartAsync();
        string[] common = ["probe", "word-sense", "--model", ModelPath, "--dataset", "wic:dev", "--data-dir", GoldenData.DataPath(),
            "--limit", "6", "--seed", "9", "--bootstrap", "200"];
        var engine = Run([.. common, "--ids-only", "--out", temp.File("engine")]);
        Assert.True(engine.Code == 0, engine.Error);
        var vllm = Run([.. common, "--server", server.Address, "--server-kind", "vllm", "--server-model", "golden", "--server-tokenize", "--out", temp.File("vllm")]);
        Assert.True(vllm.Code == 0, vllm.Error);
        var sglang = Run([.. common, "--server", server.Address, "--server-kind", "sglang", "--out", temp.File("sglang")]);
        Assert.True(sglang.Code == 0, sglang.Error);

        Assert.Contains("routing source 'vllm' gives expert ids only", vllm.Output, StringComparison.Ordinal);
        Assert.Contains("requests", vllm.Error, StringComparison.Ordinal);
        var expected = File.ReadAllBytes(Path.Combine(temp.File("engine"), "pairs.csv"));
        Assert.Equal(expected, File.ReadAllBytes(Path.Combine(temp.File("vllm"), "pairs.csv")));
        Assert.Equal(expected, File.ReadAllBytes(Path.Combine(temp.File("sglang"), "pairs.csv")));

        // The id metrics equal the full engine run's; weighted and js are not available from ids and say so (NaN), never estimated.
        var full = Run([.. common, "--out", temp.File("full")]);
        Assert.True(full.Code == 0, full.Error);
        var idsRows = Csv(temp.File("vllm"));
        var fullRows = Csv(temp.File("full"));
        Assert.Equal(fullRows.Count, idsRows.Count);
        var header = idsRows[0];
        int[] idColumns = [.. new[] { "overlap", "jaccard", "kappa" }.Select(name => Array.IndexOf(header, name))];
        int[] weightColumns = [.. new[] { "weighted", "js" }.Select(name => Array.IndexOf(header, name))];
        for (var row = 1; row < idsRows.Count; row++)
        {
            Assert.All(idColumns, column => Assert.Equal(fullRows[row][column], idsRows[row][column]));
            Assert.All(weightColumns, column => Assert.Equal("NaN", idsRows[row][column]));
        }
    }

    [Fact]
    public async Task TraceThroughTheServerHasTheEnginesExpertsAndRecordsSourceAndBlocks()
    {
        using var temp = new TempDirectory();
        await using var server = await LoopbackServer.StartAsync();
        File.WriteAllLines(temp.File("prompts.txt"), ["The river bank was steep.", "", "She went to the bank to deposit money."]);
        var engine = Run("trace", "--model", ModelPath, "--input", temp.File("prompts.txt"), "--out", temp.File("engine.parquet"));
        Assert.True(engine.Code == 0, engine.Error);
        var served = Run("trace", "--model", ModelPath, "--input", temp.File("prompts.txt"), "--out", temp.File("server.parquet"),
            "--server", server.Address, "--server-kind", "sglang", "--server-concurrency", "2");
        Assert.True(served.Code == 0, served.Error);

        var expected = await Rows(temp.File("engine.parquet"));
        var actual = await Rows(temp.File("server.parquet"));
        Assert.Equal(expected.Select(r => (r.Sequence, r.Position, r.TokenId, r.Layer, r.Rank, r.Expert)), actual.Select(r => (r.Sequence, r.Position, r.TokenId, r.Layer, r.Rank, r.Expert)));
        Assert.All(actual, row => Assert.True(float.IsNaN(row.Weight) && float.IsNaN(row.Score)));
        var metadata = await Experiments.Storage.RoutingTraceReader.ReadMetadataAsync(temp.File("server.parquet"));
        Assert.Equal("sglang", metadata.RoutingSource);
        Assert.Equal(string.Join(',', expected.Select(r => r.Layer).Distinct().Order()) is var blocks && blocks.Contains(',', StringComparison.Ordinal)
            ? $"{expected.Min(r => r.Layer)}-{expected.Max(r => r.Layer)}" : blocks, metadata.MoeBlocks);
        Assert.Equal("engine", (await Experiments.Storage.RoutingTraceReader.ReadMetadataAsync(temp.File("engine.parquet"))).RoutingSource);

        var probs = Run("trace", "--model", ModelPath, "--input", temp.File("prompts.txt"), "--out", temp.File("p.parquet"), "--probs", "--server", server.Address, "--server-kind", "vllm");
        Assert.Equal(1, probs.Code);
        Assert.Contains("--probs needs the engine", probs.Error, StringComparison.Ordinal);
    }

    private static async Task<List<Experiments.Storage.RoutingTraceRow>> Rows(string path)
    {
        var rows = new List<Experiments.Storage.RoutingTraceRow>();
        await foreach (var row in Experiments.Storage.RoutingTraceReader.ReadRowsAsync(path))
        {
            rows.Add(row);
        }

        return rows;
    }

    [Fact]
    public async Task TokenIdAnalysisThroughTheServerEqualsTheEngine()
    {
        using var temp = new TempDirectory();
        await using var server = await LoopbackServer.StartAsync();
        File.WriteAllLines(temp.File("in.txt"), Enumerable.Range(0, 6).Select(i => $"the bank and the river and the bank {i}"));
        string[] common = ["analyze", "token-id", "--model", ModelPath, "--input", temp.File("in.txt"), "--min-occurrences", "3"];
        var engine = Run([.. common, "--out", temp.File("engine")]);
        Assert.True(engine.Code == 0, engine.Error);
        var served = Run([.. common, "--server", server.Address, "--server-kind", "vllm", "--out", temp.File("server")]);
        Assert.True(served.Code == 0, served.Error);
        foreach (var file in new[] { "layers.csv", "token_profiles.csv" })
        {
            Assert.Equal(File.ReadAllText(Path.Combine(temp.File("engine"), file)), File.ReadAllText(Path.Combine(temp.File("server"), file)));
        }
    }

    [Fact]
    public async Task InterruptedServerRunResumesToTheSameResult()
    {
        using var temp = new TempDirectory();
        await using var server = await LoopbackServer.StartAsync();
        var settings = new ProbeSettings
        {
            Kind = ProbeKind.WordSense,
            Dataset = "wic:dev",
            DataFolder = GoldenData.DataPath(),
            Limit = 6,
            Seed = 3,
            BootstrapResamples = 200,
            CheckpointEvery = 2,
            Server = new RoutingServerSettings { Address = new Uri(server.Address), Kind = ServerKind.Vllm, Concurrency = 2 },
        };
        await ProbeExperiment.RunAsync(ModelPath, settings, temp.File("whole"));

        using var stop = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            ProbeExperiment.RunAsync(ModelPath, settings, temp.File("resumed"), new CancelOnAdvance(stop), cancellationToken: stop.Token));
        var journaled = WorkJournal.ReadRecords(Path.Combine(temp.File("resumed"), RunFolder.JournalFileName)).Count;
        var outcome = await ProbeExperiment.RunAsync(ModelPath, settings, temp.File("resumed"));
        Assert.InRange(journaled, 1, outcome.Plan.Sentences.Count - 1);
        Assert.Equal(journaled, outcome.Routing.SentencesResumed);
        Assert.Equal(File.ReadAllBytes(Path.Combine(temp.File("whole"), "pairs.csv")), File.ReadAllBytes(Path.Combine(temp.File("resumed"), "pairs.csv")));
    }

    [Fact]
    public async Task IdsOnlyRefusesWeightMetricsAndAMismatchedTokenizerNamesThePrompt()
    {
        using var temp = new TempDirectory();
        await using var server = await LoopbackServer.StartAsync();
        var (code, _, error) = Run("probe", "word-sense", "--model", ModelPath, "--dataset", "wic:dev", "--data-dir", GoldenData.DataPath(), "--limit", "4",
            "--metric", "js", "--server", server.Address, "--server-kind", "vllm", "--out", temp.File("js"));
        Assert.Equal(1, code);
        Assert.Contains("--metric js needs router weights", error, StringComparison.Ordinal);

        // A local tokenizer that leaves out the BOS the served model adds: the positions would be off by one.
        using var model = MoeModel.Load(ModelPath);
        const string text = "The river bank is steep.";
        var withoutBos = model.Tokenizer.Encode(text, addSpecial: false);
        var prompt = new RoutingPrompt("sentence 7 ('The river bank is steep.')", text, withoutBos, withoutBos.Count);
        foreach (var verify in new[] { false, true })
        {
            using var client = new RoutingServerSettings { Address = new Uri(server.Address), Kind = ServerKind.Vllm, VerifyTokenIds = verify }
                .CreateSource(model.File, Formats.ModelInfo.FromGguf(model.File));
            var mismatch = await Assert.ThrowsAsync<ExpertScopeException>(() => client.RouteOneAsync(prompt));
            Assert.StartsWith("sentence 7 ('The river bank is steep.'): the server", mismatch.Message, StringComparison.Ordinal);
            Assert.Contains(verify ? "first differ at position 0" : $"the local tokenizer gives {withoutBos.Count}", mismatch.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ServerAnswersBothLayoutsAndRefusesBadRequests()
    {
        await using var server = await LoopbackServer.StartAsync(maxRequestBytes: 4096);
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        var vllm = await Post(http, "/v1/completions", "{\"prompt\": \"The river bank\", \"max_tokens\": 2, \"temperature\": 0}");
        Assert.Equal(HttpStatusCode.OK, vllm.Status);
        var promptTokens = vllm.Body["usage"]!["prompt_tokens"]!.GetValue<int>();
        var layers = server.Layers;
        var prompt = (JsonArray)vllm.Body["prompt_routed_experts"]!;
        Assert.Equal(promptTokens, prompt.Count);
        Assert.Equal(layers, ((JsonArray)prompt[0]!).Count);
        var generated = vllm.Body["usage"]!["completion_tokens"]!.GetValue<int>();
        Assert.Equal(generated, ((JsonArray)vllm.Body["choices"]![0]!["routed_experts"]!).Count);

        var sglang = await Post(http, "/v1/completions", "{\"prompt\": \"The river bank\", \"max_tokens\": 1, \"return_routed_experts\": true}");
        var ids = RoutedExpertsFormat.ReadCompletion(ServerKind.Sglang, sglang.Body.ToJsonString(), "p", layers, server.TopK, server.ExpertCount);
        Assert.Equal(promptTokens, ids.TokenCount);
        var fromVllm = RoutedExpertsFormat.ReadCompletion(ServerKind.Vllm, vllm.Body.ToJsonString(), "p", layers, server.TopK, server.ExpertCount);
        Assert.Equal(fromVllm.Ids, ids.Ids);

        var tokenize = await Post(http, "/tokenize", "{\"prompt\": \"The river bank\"}");
        Assert.Equal(promptTokens, tokenize.Body["count"]!.GetValue<int>());

        Assert.Equal(HttpStatusCode.BadRequest, (await Post(http, "/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 1000}")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await Post(http, "/v1/completions", "{\"prompt\": [1, 99999999], \"max_tokens\": 1}")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await Post(http, "/v1/completions", "{\"prompt\": \"x\", \"temperature\": 0.7}")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await Post(http, "/v1/completions", "{\"prompt\": \"x\", \"temperature\": \"hot\"}")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await Post(http, "/v1/completions", "{\"prompt\": [\"a\", \"b\"]}")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await Post(http, "/v1/completions", "{\"prompt\": ")).Status);
        var large = await Post(http, "/v1/completions", "{\"prompt\": \"" + new string('a', 8000) + "\"}");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, large.Status);
        Assert.Contains("error", large.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void NonLoopbackHostNeedsAllowRemote()
    {
        using var model = MoeModel.Load(ModelPath);
        var error = Assert.Throws<ExpertScopeException>(() => RoutingServer.Build(model, new ServeOptions { Host = "0.0.0.0", Port = 0, ModelName = "m" }, TextWriter.Null));
        Assert.Contains("--allow-remote", error.Message, StringComparison.Ordinal);
        using var log = new StringWriter();
        using var app = (IDisposable)RoutingServer.Build(model, new ServeOptions { Host = "0.0.0.0", Port = 0, ModelName = "m", AllowRemote = true }, log);
        Assert.Contains("warning", log.ToString(), StringComparison.Ordinal);
    }

    private static async Task<(HttpStatusCode Status, JsonObject Body, string Text)> Post(HttpClient http, string path, string json)
    {
        using var response = await http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        JsonObject body;
        try
        {
            body = JsonNode.Parse(text) as JsonObject ?? [];
        }
        catch (System.Text.Json.JsonException)
        {
            body = [];
        }

        return (response.StatusCode, body, text);
    }

    private static List<string[]> Csv(string folder) =>
        [.. File.ReadAllLines(Path.Combine(folder, "pairs.csv")).Select(line => line.Split(','))];

    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = CliApp.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private sealed class CancelOnAdvance(CancellationTokenSource stop) : IProgressSink
    {
        public IProgressTask StartTask(string description, long? total, long alreadyDone = 0, string unit = "items") => new Task(stop);

        private sealed class Task(CancellationTokenSource stop) : IProgressTask
        {
            public void Advance(long count = 1) => stop.Cancel();

            public void Complete()
            {
            }

            public void Dispose()
            {
            }
        }
    }
}
