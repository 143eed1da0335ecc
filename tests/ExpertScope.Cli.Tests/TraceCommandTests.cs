using ExpertScope.Experiments.Storage;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

public class TraceCommandTests
{
    public static TheoryData<string> GoldenCases() => EngineVerbs.GoldenCases();

    [Theory]
    [MemberData(nameof(GoldenCases))]
    public async Task TokensAndExpertsEqualLlamaCpp(string name)
    {
        var golden = GoldenCase.Load(name);
        using var temp = new TempDirectory();
        string input = temp.File("prompts.txt");
        File.WriteAllLines(input, golden.Prompts.Select(p => p.Text));
        string output = temp.File("trace.parquet");

        var (code, stdout, error) = EngineVerbs.Run(["trace", "--model", golden.ModelPath, "--input", input, "--out", output, .. golden.OverrideArgs]);

        Assert.True(code == 0, error);
        Assert.Contains("wrote " + output, stdout, StringComparison.Ordinal);
        var rows = await ReadAsync(output);
        for (int p = 0; p < golden.Prompts.Count; p++)
        {
            var tokens = golden.Prompts[p].Tokens;
            var sequenceRows = rows.Where(r => r.Sequence == p).ToList();
            Assert.Equal(tokens, sequenceRows.Where(r => r.Rank == 0).GroupBy(r => r.Position).OrderBy(g => g.Key).Select(g => g.First().TokenId));
            Assert.Equal(Enumerable.Range(0, tokens.Length), sequenceRows.Select(r => r.Position).Distinct().Order());

            // Dense blocks have no topk dump and no rows; every routed block matches llama.cpp's choice, weight and score.
            var moeLayers = Enumerable.Range(0, 16).Where(l => golden.HasTensor(p, $"ffn_moe_topk-{l}")).ToList();
            Assert.Equal(moeLayers, sequenceRows.Select(r => r.Layer).Distinct().Order());
            foreach (int layer in moeLayers)
            {
                var topk = golden.ReadInts(p, $"ffn_moe_topk-{layer}");
                int k = topk.Length / tokens.Length;
                string weightName = new[] { "ffn_moe_weights_scaled", "ffn_moe_weights_norm", "ffn_moe_weights" }.First(n => golden.HasTensor(p, $"{n}-{layer}"));
                var weights = golden.ReadFloats(p, $"{weightName}-{layer}");
                var scores = golden.ReadFloats(p, golden.HasTensor(p, $"ffn_moe_probs_biased-{layer}") ? $"ffn_moe_probs_biased-{layer}" : $"ffn_moe_probs-{layer}");
                int experts = scores.Length / tokens.Length;
                var layerRows = sequenceRows.Where(r => r.Layer == layer).OrderBy(r => r.Position).ThenBy(r => r.Rank).ToList();
                Assert.Equal(tokens.Length * k, layerRows.Count);
                for (int i = 0; i < layerRows.Count; i++)
                {
                    var row = layerRows[i];
                    Assert.Equal(i % k, row.Rank);
                    Assert.Equal(topk[i], row.Expert);
                    Assert.Equal(weights[i], row.Weight);
                    Assert.Equal(scores[(i / k * experts) + topk[i]], row.Score);
                }
            }
        }

        var metadata = await RoutingTraceReader.ReadMetadataAsync(output);
        Assert.Equal(await FileHash.Sha256Async(golden.ModelPath), metadata.ModelSha256);
        using (var file = Formats.Gguf.GgufFile.Open(golden.ModelPath))
        {
            Assert.Equal(file.TryGetString("general.architecture"), metadata.Architecture);
        }

        Assert.Equal(rows.Max(r => r.Rank) + 1, metadata.TopK);
        Assert.StartsWith("expertscope trace --model ", metadata.CommandLine, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TokenTextIsThePieceAndProbsAreTheRouterDistribution()
    {
        var golden = GoldenCase.Load("olmoe");
        using var temp = new TempDirectory();
        string input = temp.File("prompts.txt");
        File.WriteAllText(input, golden.Prompts[0].Text + "\n");
        string output = temp.File("trace.parquet");

        var (code, _, error) = EngineVerbs.Run("trace", "--model", golden.ModelPath, "--input", input, "--out", output, "--probs");

        Assert.True(code == 0, error);
        var rows = await ReadAsync(output);
        var probabilities = golden.ReadFloats(0, "ffn_moe_probs-1");
        int experts = probabilities.Length / golden.Prompts[0].Tokens.Length;
        foreach (var row in rows.Where(r => r.Layer == 1))
        {
            Assert.Equal(probabilities.AsSpan(row.Position * experts, experts).ToArray(), row.Probs);
            Assert.Equal(row.Score, row.Probs![row.Expert]);
        }

        using var model = Models.MoeModel.Load(golden.ModelPath);
        Assert.All(rows, r => Assert.Equal(model.Tokenizer.TokenToPiece(r.TokenId), r.Token));
        Assert.Contains(rows, r => r.Token.StartsWith(' '));
    }

    [Fact]
    public async Task EmptyLinesKeepTheirIndexAndLimitCountsLines()
    {
        using var temp = new TempDirectory();
        string input = temp.File("prompts.txt");
        File.WriteAllText(input, "first line\r\n\n   \nfourth line\nfifth line\n");
        string output = temp.File("trace.jsonl");

        var (code, _, error) = EngineVerbs.Run("trace", "--model", EngineVerbs.ModelPath("mixtral"), "--input", input, "--out", output, "--limit", "4");

        Assert.True(code == 0, error);
        var rows = await ReadAsync(output);
        Assert.Equal([0, 3], rows.Select(r => r.Sequence).Distinct().Order());
        Assert.Equal([0, 3], (await RoutingTraceReader.ReadFinishedSequencesAsync(output)).Order());
    }

    [Theory]
    [InlineData("trace.parquet")]
    [InlineData("trace.jsonl")]
    public async Task ReRunningResumesWithoutRepeatingSequences(string fileName)
    {
        var golden = GoldenCase.Load("qwen2moe");
        using var temp = new TempDirectory();
        string input = temp.File("prompts.txt");
        File.WriteAllLines(input, golden.Prompts.Select(p => p.Text));
        string output = temp.File(fileName), fresh = temp.File("fresh" + Path.GetExtension(fileName));
        string[] args = ["trace", "--model", golden.ModelPath, "--input", input, "--out", output];

        var first = EngineVerbs.Run([.. args, "--limit", "2"]);
        Assert.True(first.Code == 0, first.Error);
        Assert.Equal([0, 1], (await RoutingTraceReader.ReadFinishedSequencesAsync(output)).Order());

        var second = EngineVerbs.Run(args);
        Assert.True(second.Code == 0, second.Error);
        Assert.Contains("2 of 5 sequences already traced", second.Error, StringComparison.Ordinal);
        Assert.Contains("wrote " + output + ": 3 sequences", second.Output, StringComparison.Ordinal);

        var third = EngineVerbs.Run(args);
        Assert.Contains(": 0 sequences", third.Output, StringComparison.Ordinal);

        Assert.Equal(0, EngineVerbs.Run("trace", "--model", golden.ModelPath, "--input", input, "--out", fresh).Code);
        Assert.Equal(Sorted(await ReadAsync(fresh)), Sorted(await ReadAsync(output)));
    }

    [Fact]
    public async Task AParquetTraceKilledDuringAnAppendIsRepairedAndCompleted()
    {
        var golden = GoldenCase.Load("olmoe");
        using var temp = new TempDirectory();
        string input = temp.File("prompts.txt");
        File.WriteAllLines(input, golden.Prompts.Select(p => p.Text));
        string output = temp.File("trace.parquet"), fresh = temp.File("fresh.parquet");
        string[] args = ["trace", "--model", golden.ModelPath, "--input", input, "--out", output];
        Assert.Equal(0, EngineVerbs.Run([.. args, "--limit", "2"]).Code);
        byte[] commitAfterTwo = File.ReadAllBytes(output + ParquetTraceWriter.CommitExtension);
        long lengthAfterTwo = new FileInfo(output).Length;
        Assert.Equal(0, EngineVerbs.Run([.. args, "--limit", "4"]).Code);

        // What a kill in the middle of the second run's append leaves: the old footer overwritten by part of the
        // new row group, no new footer, and the commit record of the first run.
        byte[] appended = File.ReadAllBytes(output);
        File.WriteAllBytes(output, appended[..(int)(lengthAfterTwo + ((appended.Length - lengthAfterTwo) / 2))]);
        File.WriteAllBytes(output + ParquetTraceWriter.CommitExtension, commitAfterTwo);
        await Assert.ThrowsAnyAsync<Core.ExpertScopeException>(() => RoutingTraceReader.ReadFinishedSequencesAsync(output));

        var resumed = EngineVerbs.Run(args);

        Assert.True(resumed.Code == 0, resumed.Error);
        Assert.Contains("2 of 5 sequences already traced; discarded", resumed.Error, StringComparison.Ordinal);
        Assert.Equal(0, EngineVerbs.Run("trace", "--model", golden.ModelPath, "--input", input, "--out", fresh).Code);
        Assert.Equal(Sorted(await ReadAsync(fresh)), Sorted(await ReadAsync(output)));
    }

    [Fact]
    public async Task AJsonlTraceWithAHalfWrittenSequenceIsCutBackAndCompleted()
    {
        var golden = GoldenCase.Load("olmoe");
        using var temp = new TempDirectory();
        string input = temp.File("prompts.txt");
        File.WriteAllLines(input, golden.Prompts.Select(p => p.Text));
        string output = temp.File("trace.jsonl"), fresh = temp.File("fresh.jsonl");
        string[] args = ["trace", "--model", golden.ModelPath, "--input", input, "--out", output, "--probs"];
        Assert.Equal(0, EngineVerbs.Run([.. args, "--limit", "3"]).Code);
        File.AppendAllText(output, "{\"sequence\":3,\"position\":0,\"token_id\":506,\"token\":\"<s>\",\"layer\":0,\"ra");

        var resumed = EngineVerbs.Run(args);

        Assert.True(resumed.Code == 0, resumed.Error);
        Assert.Contains("3 of 5 sequences already traced; discarded", resumed.Error, StringComparison.Ordinal);
        Assert.Equal(0, EngineVerbs.Run("trace", "--model", golden.ModelPath, "--input", input, "--out", fresh, "--probs").Code);
        Assert.Equal(Flatten(Sorted(await ReadAsync(fresh))), Flatten(Sorted(await ReadAsync(output))));
    }

    [Fact]
    public async Task JsonlInputAndOutputAreTheParquetTwin()
    {
        var golden = GoldenCase.Load("deepseek3");
        using var temp = new TempDirectory();
        string text = temp.File("prompts.txt"), json = temp.File("prompts.jsonl");
        File.WriteAllLines(text, golden.Prompts.Select(p => p.Text));
        File.WriteAllLines(json, golden.Prompts.Select((p, i) => System.Text.Json.JsonSerializer.Serialize(new { id = i, body = p.Text })));
        string parquet = temp.File("trace.parquet"), jsonl = temp.File("trace.jsonl"), forced = temp.File("trace.out");

        Assert.Equal(0, EngineVerbs.Run("trace", "--model", golden.ModelPath, "--input", text, "--out", parquet, "--probs").Code);
        var (code, _, error) = EngineVerbs.Run("trace", "--model", golden.ModelPath, "--input", json, "--field", "body", "--out", jsonl, "--probs", "--threads", "1");
        Assert.True(code == 0, error);
        (code, _, error) = EngineVerbs.Run("trace", "--model", golden.ModelPath, "--input", json, "--field", "body", "--out", forced, "--format", "jsonl");
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "--format jsonl does not match", forced);

        var expected = Sorted(await ReadAsync(parquet));
        Assert.NotEmpty(expected);
        Assert.Equal(Flatten(expected), Flatten(Sorted(await ReadAsync(jsonl))));
    }

    [Fact]
    public void MalformedJsonlLinesAndMissingFieldsNameFileAndLine()
    {
        using var temp = new TempDirectory();
        string input = temp.File("prompts.jsonl");
        string model = EngineVerbs.ModelPath("olmoe");

        File.WriteAllLines(input, ["{\"text\": \"fine\"}", "", "{\"text\": oops}"]);
        var (code, stdout, error) = EngineVerbs.Run("trace", "--model", model, "--input", input, "--out", temp.File("a.parquet"));
        Assert.Equal(1, code);
        Assert.Equal(string.Empty, stdout);
        EngineVerbs.AssertOneErrorLine(error, input + ":3", "not valid JSON");

        File.WriteAllLines(input, ["{\"text\": \"fine\"}", "{\"body\": \"no text\"}"]);
        (code, _, error) = EngineVerbs.Run("trace", "--model", model, "--input", input, "--out", temp.File("b.parquet"));
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, input + ":2", "no field 'text'");

        File.WriteAllLines(input, ["[1, 2]"]);
        (code, _, error) = EngineVerbs.Run("trace", "--model", model, "--input", input, "--out", temp.File("c.parquet"));
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, input + ":1", "expected a JSON object");

        File.WriteAllLines(input, ["{\"text\": 42}"]);
        (code, _, error) = EngineVerbs.Run("trace", "--model", model, "--input", input, "--out", temp.File("d.parquet"));
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, input + ":1", "not a string");
    }

    [Fact]
    public async Task ASequenceLongerThanTheContextFailsUnlessTruncated()
    {
        using var temp = new TempDirectory();
        string input = temp.File("prompts.txt");
        string longLine = string.Join(' ', Enumerable.Repeat("the river bank", 60));
        File.WriteAllLines(input, ["short one", longLine]);
        string model = EngineVerbs.ModelPath("qwen3moe"), output = temp.File("trace.parquet");

        var (code, _, error) = EngineVerbs.Run("trace", "--model", model, "--input", input, "--out", output);
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, input + ":2", "longer than the model's context of 128 tokens", "--truncate");
        Assert.False(File.Exists(output));

        (code, _, error) = EngineVerbs.Run("trace", "--model", model, "--input", input, "--out", output, "--truncate");
        Assert.True(code == 0, error);
        Assert.Contains("warning: " + input + ":2: truncated from ", error, StringComparison.Ordinal);
        var rows = await ReadAsync(output);
        Assert.Equal(127, rows.Where(r => r.Sequence == 1).Max(r => r.Position));
    }

    [Fact]
    public void ResumingWithAnotherModelOrProbsSettingIsRefused()
    {
        using var temp = new TempDirectory();
        string input = temp.File("prompts.txt");
        File.WriteAllLines(input, ["The bank by the river."]);
        string output = temp.File("trace.parquet");
        Assert.Equal(0, EngineVerbs.Run("trace", "--model", EngineVerbs.ModelPath("olmoe"), "--input", input, "--out", output).Code);

        var (code, _, error) = EngineVerbs.Run("trace", "--model", EngineVerbs.ModelPath("olmoe-q8_0"), "--input", input, "--out", output);
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, output, "model SHA-256 was");

        (code, _, error) = EngineVerbs.Run("trace", "--model", EngineVerbs.ModelPath("olmoe"), "--input", input, "--out", output, "--probs");
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, output, "probs");
    }

    [Fact]
    public void BadArgumentsAreOneErrorLine()
    {
        using var temp = new TempDirectory();
        string text = temp.File("prompts.txt");
        File.WriteAllLines(text, ["hello"]);
        string model = EngineVerbs.ModelPath("olmoe");

        var (code, _, error) = EngineVerbs.Run("trace", "--model", model, "--input", text, "--field", "body", "--out", temp.File("t.parquet"));
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "--field applies only to a .jsonl input");

        (code, _, error) = EngineVerbs.Run("trace", "--model", model, "--input", temp.File("absent.txt"), "--out", temp.File("t.parquet"));
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, temp.File("absent.txt"), "does not exist");

        (code, _, error) = EngineVerbs.Run("trace", "--model", temp.File("absent.gguf"), "--input", text, "--out", temp.File("t.parquet"));
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, temp.File("absent.gguf"), "does not exist");

        (code, _, error) = EngineVerbs.Run("trace", "--model", model, "--input", text, "--out", temp.File("t.parquet"), "--override-kv", "olmoe.expert_used_count=1");
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "--override-kv", "KEY=TYPE:VALUE");

        (code, _, error) = EngineVerbs.Run("trace", "--model", model, "--input", text, "--out", temp.File("t.parquet"), "--threads", "0");
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "--threads");
    }

    private static async Task<List<RoutingTraceRow>> ReadAsync(string path)
    {
        var rows = new List<RoutingTraceRow>();
        await foreach (var row in RoutingTraceReader.ReadRowsAsync(path))
        {
            rows.Add(row);
        }

        return rows;
    }

    private static List<RoutingTraceRow> Sorted(IEnumerable<RoutingTraceRow> rows) =>
        [.. rows.OrderBy(r => r.Sequence).ThenBy(r => r.Position).ThenBy(r => r.Layer).ThenBy(r => r.Rank)];

    /// <summary>Rows as comparable text (records compare float arrays by reference).</summary>
    private static List<string> Flatten(IEnumerable<RoutingTraceRow> rows) =>
        [.. rows.Select(r => (r with { Probs = null }).ToString() + "|" + (r.Probs is null ? "-" : string.Join(",", r.Probs.Select(p => p.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))))];
}
