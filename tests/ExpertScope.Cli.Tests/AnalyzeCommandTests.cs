using System.Text.Json;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

public class AnalyzeCommandTests
{
    private const string Text = "The bank by the river bank was closed. She sat on the bank and watched the water flow past the old mill.";

    private static void AssertAllNumbersFinite(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    AssertAllNumbersFinite(property.Value);
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    AssertAllNumbersFinite(item);
                }

                break;
            case JsonValueKind.Number:
                Assert.True(double.IsFinite(element.GetDouble()));
                break;
        }
    }

    private static JsonDocument Results(string folder, params string[] files)
    {
        foreach (var file in files.Append("report.html").Append("results.json"))
        {
            Assert.True(File.Exists(Path.Combine(folder, file)), $"{file} missing in {folder}");
        }

        Assert.Contains("<svg", File.ReadAllText(Path.Combine(folder, "report.html")), StringComparison.Ordinal);
        return JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "results.json")));
    }

    [Fact]
    public void SingleExpertInEveryLayerHasTheLlamaCppPerplexityOfTopKOne()
    {
        // The oracle: llama.cpp's logits for qwen3moe with expert_used_count = 1 (qwen3moe renormalises, so k = 1 gives weight 1).
        var single = GoldenCase.Load("qwen3moe-k1");
        using var temp = new TempDirectory();
        string input = temp.File("text.txt");
        File.WriteAllText(input, single.Prompts[1].Text);
        string folder = temp.File("out");

        var (code, output, error) = EngineVerbs.Run("analyze", "single-expert", "--model", EngineVerbs.ModelPath("qwen3moe"), "--input", input, "--out", folder);

        Assert.True(code == 0, error);
        Assert.Contains("report.html", output, StringComparison.Ordinal);
        using var json = Results(folder, "cosine.csv", "perplexity.csv", "cosine_shared_on.svg", "perplexity_topm_shared_on.svg");
        AssertAllNumbersFinite(json.RootElement);
        var tokens = single.Prompts[1].Tokens;
        var logits = single.ReadFloats(1, "logits");
        int vocabulary = logits.Length / tokens.Length;
        double nll = 0;
        for (int i = 1; i < tokens.Length; i++)
        {
            var row = logits.AsSpan((i - 1) * vocabulary, vocabulary);
            double max = double.NegativeInfinity, sum = 0;
            foreach (float v in row)
            {
                max = Math.Max(max, v);
            }

            foreach (float v in row)
            {
                sum += Math.Exp(v - max);
            }

            nll -= row[tokens[i]] - max - Math.Log(sum);
        }

        double expected = Math.Exp(nll / (tokens.Length - 1));
        var perplexities = json.RootElement.GetProperty("perplexities").EnumerateArray().ToList();
        double actual = perplexities.Single(p => p.GetProperty("setting").GetString() == "single-expert-all-layers").GetProperty("perplexity").GetDouble();
        Assert.Equal(expected, actual, expected * 1e-12);
        Assert.Equal(4, perplexities.Count(p => p.GetProperty("setting").GetString() == "top-m"));
        Assert.Equal(3 * 2, json.RootElement.GetProperty("cosines").GetArrayLength());
    }

    [Fact]
    public void SingleExpertRunsWithSharedExpertsOnAndOffAndResumes()
    {
        using var temp = new TempDirectory();
        string input = temp.File("text.txt");
        File.WriteAllText(input, Text);
        string folder = temp.File("out");
        string[] args = ["analyze", "single-expert", "--model", EngineVerbs.ModelPath("qwen2moe"), "--input", input, "--out", folder, "--weight", "raw", "--max-tokens", "12"];

        var (code, _, error) = EngineVerbs.Run(args);

        Assert.True(code == 0, error);
        using var json = Results(folder, "cosine_shared_off.svg", "perplexity_layers_shared_off.svg");
        var shared = json.RootElement.GetProperty("perplexities").EnumerateArray().Select(p => p.GetProperty("shared").GetString()).Distinct().ToList();
        Assert.Equal(["on", "off"], shared);
        Assert.Equal(12, json.RootElement.GetProperty("input_tokens").GetInt32());

        (code, _, error) = EngineVerbs.Run(args);
        Assert.True(code == 0, error);
        Assert.Contains("resuming", error, StringComparison.Ordinal);
        using var again = Results(folder);
        Assert.Equal(json.RootElement.GetProperty("perplexities").GetRawText(), again.RootElement.GetProperty("perplexities").GetRawText());

        (code, _, error) = EngineVerbs.Run([.. args[..^4], "--weight", "renormalized", "--max-tokens", "12"]);
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "cannot be resumed", "weight");
    }

    [Fact]
    public void SharedExpertsOffIsAnErrorForAModelWithout()
    {
        using var temp = new TempDirectory();
        string input = temp.File("text.txt");
        File.WriteAllText(input, Text);

        var (code, _, error) = EngineVerbs.Run("analyze", "single-expert", "--model", EngineVerbs.ModelPath("olmoe"), "--input", input, "--out", temp.File("out"), "--shared", "off");

        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "--shared off", "no shared experts");
    }

    [Fact]
    public void LensWritesPerLayerReadoutsWhoseLastResidualMatchesTheFinalDistribution()
    {
        using var temp = new TempDirectory();
        string input = temp.File("text.txt");
        File.WriteAllText(input, Text);
        string folder = temp.File("out");

        var (code, _, error) = EngineVerbs.Run("analyze", "lens", "--model", EngineVerbs.ModelPath("olmoe"), "--input", input, "--out", folder, "--top-tokens", "3");

        Assert.True(code == 0, error);
        using var json = Results(folder, "readouts.csv", "summary.csv", "lens_kl.svg", "lens_entropy.svg");
        AssertAllNumbersFinite(json.RootElement);
        Assert.Equal("weighted", json.RootElement.GetProperty("expert_outputs").GetString());
        Assert.Equal("extended", json.RootElement.GetProperty("readout").GetString());
        var last = json.RootElement.GetProperty("summary").EnumerateArray()
            .Single(s => s.GetProperty("layer").GetInt32() == 2 && s.GetProperty("source").GetString() == "l_out");
        Assert.Equal(0, last.GetProperty("mean_kl_to_final_nats").GetDouble(), 12);
        Assert.Equal(1, last.GetProperty("top1_agreement").GetDouble());
        // olmoe's golden model routes to k = 4 experts: per layer l_out, ffn_moe_out and four expert ranks, each over every position.
        int tokens = json.RootElement.GetProperty("input_tokens").GetInt32();
        var summary = json.RootElement.GetProperty("summary").EnumerateArray().ToList();
        Assert.Equal(3 * (2 + 4), summary.Count);
        Assert.All(summary, s => Assert.Equal(tokens, s.GetProperty("positions").GetInt32()));
    }

    [Fact]
    public void DomainsComparesTwoCorporaWithEqualBudgetsAndRefusesToResumeWithAnotherSeed()
    {
        using var temp = new TempDirectory();
        string prose = temp.File("prose.txt"), code = temp.File("code.txt");
        File.WriteAllText(prose, string.Join("\n\n", Enumerable.Range(0, 30).Select(i => $"The river ran past the bank number {i}, and she watched the water for a while.")));
        File.WriteAllText(code, string.Join("\n\n", Enumerable.Range(0, 30).Select(i => $"def f{i}(x):\n    return x * {i} + len(str(x))")));
        string folder = temp.File("out");
        string[] args = ["analyze", "domains", "--model", EngineVerbs.ModelPath("olmoe"), "--corpus", "prose=" + prose, "--corpus", "code=" + code, "--tokens-per-domain", "150", "--out", folder];

        var (exit, _, error) = EngineVerbs.Run(args);

        Assert.True(exit == 0, error);
        using var json = Results(folder, "usage.csv", "concentration.csv", "js_divergence.csv", "specific_experts.csv", "usage_prose.svg", "usage_code.svg", "js_divergence.svg", "coverage_layer0.svg");
        AssertAllNumbersFinite(json.RootElement);
        var domains = json.RootElement.GetProperty("domains").EnumerateArray().ToList();
        Assert.All(domains, d => Assert.Equal(150, d.GetProperty("tokens").GetInt64()));
        var js = json.RootElement.GetProperty("js_divergence")[0].GetProperty("bits");
        Assert.Equal(0, js[0][0].GetDouble());
        Assert.Equal(js[0][1].GetDouble(), js[1][0].GetDouble());
        Assert.InRange(js[0][1].GetDouble(), 1e-9, 1);

        (exit, _, error) = EngineVerbs.Run([.. args, "--seed", "3"]);
        Assert.Equal(1, exit);
        EngineVerbs.AssertOneErrorLine(error, "cannot be resumed", "seed");
    }

    [Fact]
    public void PerplexityTableScoresEachDomainAndTheRedundancyCurve()
    {
        using var temp = new TempDirectory();
        string prose = temp.File("prose.txt"), code = temp.File("code.txt");
        File.WriteAllText(prose, string.Join("\n\n", Enumerable.Range(0, 10).Select(i => $"The river ran past the bank number {i}, and she watched the water.")));
        File.WriteAllText(code, string.Join("\n\n", Enumerable.Range(0, 10).Select(i => $"def f{i}(x):\n    return x * {i}")));
        string folder = temp.File("out");

        var (exit, _, error) = EngineVerbs.Run("analyze", "perplexity-table", "--model", EngineVerbs.ModelPath("olmoe"), "--corpus", "prose=" + prose, "--corpus", "code=" + code,
            "--tokens-per-domain", "40", "--context", "16", "--stride", "8", "--threads", "1", "--out", folder);

        Assert.True(exit == 0, error);
        using var json = Results(folder, "perplexity_table.csv", "redundancy.csv", "redundancy.svg");
        AssertAllNumbersFinite(json.RootElement);
        Assert.True(json.RootElement.GetProperty("random_weights").GetBoolean());
        Assert.Contains("id=\"random-weights\"", File.ReadAllText(Path.Combine(folder, "report.html")), StringComparison.Ordinal);
        var rows = json.RootElement.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(2, rows.Count(r => r.GetProperty("setting").GetString() == "single-expert-all-layers"));
        Assert.All(rows.Where(r => r.GetProperty("setting").GetString() == "all-experts"), r => Assert.Equal(0, r.GetProperty("relative_to_full").GetDouble()));

        (exit, _, error) = EngineVerbs.Run("analyze", "perplexity-table", "--model", EngineVerbs.ModelPath("olmoe"), "--corpus", "prose=" + prose, "--context", "100000", "--out", temp.File("bad"));
        Assert.Equal(1, exit);
        EngineVerbs.AssertOneErrorLine(error, "--context");
    }

    [Fact]
    public void DomainsNeedsTwoDomains()
    {
        using var temp = new TempDirectory();
        string prose = temp.File("prose.txt");
        File.WriteAllText(prose, Text);

        var (code, _, error) = EngineVerbs.Run("analyze", "domains", "--model", EngineVerbs.ModelPath("olmoe"), "--corpus", "prose=" + prose, "--out", temp.File("out"));

        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "at least two domains");
    }

    [Fact]
    public void DomainsReadsTheBuiltInDomainCatalog()
    {
        using var temp = new TempDirectory();
        string folder = temp.File("out");

        var (code, _, error) = EngineVerbs.Run(
            "analyze", "domains", "--model", EngineVerbs.ModelPath("olmoe"), "--data-dir", GoldenData.DataPath(), "--domains", "math,code", "--tokens-per-domain", "100", "--out", folder);

        Assert.True(code == 0, error);
        using var json = Results(folder, "usage_math.svg", "usage_code.svg");
        Assert.Equal(["math", "code"], json.RootElement.GetProperty("domains").EnumerateArray().Select(d => d.GetProperty("name").GetString()));
    }

    [Fact]
    public void TokenIdSplitsTheExpertEntropyIntoTokenAndContextParts()
    {
        using var temp = new TempDirectory();
        string input = temp.File("lines.txt");
        File.WriteAllLines(input, Enumerable.Range(0, 12).Select(i => $"the bank of the river {i} and the bank of the town"));
        string folder = temp.File("out");

        var (code, _, error) = EngineVerbs.Run("analyze", "token-id", "--model", EngineVerbs.ModelPath("olmoe"), "--input", input, "--min-occurrences", "5", "--out", folder);

        Assert.True(code == 0, error);
        using var json = Results(folder, "layers.csv", "token_profiles.csv", "token_id_information.svg", "token_id_consistency.svg");
        AssertAllNumbersFinite(json.RootElement);
        var layers = json.RootElement.GetProperty("layers").EnumerateArray().ToList();
        Assert.Equal(3, layers.Count);
        foreach (var layer in layers)
        {
            double h = layer.GetProperty("h_expert_bits").GetDouble(), mi = layer.GetProperty("mi_bits").GetDouble(), rest = layer.GetProperty("h_expert_given_token_bits").GetDouble();
            Assert.Equal(h, mi + rest, 9);
            Assert.InRange(layer.GetProperty("top1_consistency").GetDouble(), 0, 1);
        }
    }

    [Fact]
    public void TokenIdNeedsExactlyOneInput()
    {
        using var temp = new TempDirectory();

        var (code, _, error) = EngineVerbs.Run("analyze", "token-id", "--model", EngineVerbs.ModelPath("olmoe"), "--out", temp.File("out"));

        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "exactly one of --input and --data-dir");
    }

    [Fact]
    public void TheAnalyzeVerbListsItsFourAnalyses()
    {
        var (code, output, _) = EngineVerbs.Run("analyze", "--help");

        Assert.Equal(0, code);
        foreach (var verb in new[] { "domains", "single-expert", "lens", "token-id" })
        {
            Assert.Contains(verb, output, StringComparison.Ordinal);
        }

    }
}
