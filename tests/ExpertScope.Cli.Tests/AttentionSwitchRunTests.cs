using System.Text.Json;
using ExpertScope.Experiments.Pruning;
using ExpertScope.Experiments.Runs;
using ExpertScope.Models;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary>
/// <c>--cache-type-k/-v</c> and <c>--no-flash-attn</c> on probe, bench, prune, trace, analyze and super-experts: accepted, recorded only when not
/// llama.cpp's default (so older run folders resume), refused when they differ from a run folder's.
/// </summary>
public sealed class AttentionSwitchRunTests
{
    private static readonly string[] F32WithoutFlashAttention = ["--cache-type-k", "f32", "--cache-type-v", "f32", "--no-flash-attn"];

    [Fact]
    public void Probe_RecordsTheSwitches_ChangesTheScores_AndAFolderMadeWithoutThemRefusesThem()
    {
        using var temp = new TempDirectory();
        string[] Args(string folder, params string[] extra) =>
        [
            "probe", "word-sense", "--model", EngineVerbs.ModelPath("olmoe"), "--dataset", "wic:dev", "--data-dir", GoldenData.DataPath(),
            "--limit", "6", "--seed", "9", "--bootstrap", "200", "--metric", "js", "--threads", "1", "--out", temp.File(folder), .. extra,
        ];

        var (code, _, error) = EngineVerbs.Run(Args("default"));
        Assert.True(code == 0, error);
        (code, _, error) = EngineVerbs.Run(Args("f32", F32WithoutFlashAttention));
        Assert.True(code == 0, error);

        var switched = SettingsOf(temp.File("f32"));
        Assert.Equal("f32", switched.GetProperty("cache_type_k").GetString());
        Assert.Equal("f32", switched.GetProperty("cache_type_v").GetString());
        Assert.Equal("off", switched.GetProperty("flash_attn").GetString());
        var manifest = File.ReadAllText(Path.Combine(temp.File("f32"), RunFolder.ManifestFileName));
        Assert.Contains("\"flash_attn\"", manifest, StringComparison.Ordinal);
        var plain = SettingsOf(temp.File("default"));
        foreach (var key in new[] { "cache_type_k", "cache_type_v", "flash_attn" })
        {
            Assert.False(plain.TryGetProperty(key, out _), key);
        }

        // Exact f32 attention moves the router's probabilities, so the Jensen-Shannon distances of the pairs change.
        Assert.NotEqual(File.ReadAllText(Path.Combine(temp.File("default"), "pairs.csv")), File.ReadAllText(Path.Combine(temp.File("f32"), "pairs.csv")));

        (code, _, error) = EngineVerbs.Run(Args("default", F32WithoutFlashAttention));
        Assert.Equal(1, code);
        Assert.Contains("setting 'cache_type_k' was not given, now 'f32'", error, StringComparison.Ordinal);
        Assert.Contains("setting 'flash_attn' was not given, now 'off'", error, StringComparison.Ordinal);

        // The folder made without the switches still resumes without them.
        (code, _, error) = EngineVerbs.Run(Args("default"));
        Assert.True(code == 0, error);
    }

    [Fact]
    public void Probe_WithARoutingServer_RefusesTheEngineSwitches()
    {
        using var temp = new TempDirectory();
        var (code, _, error) = EngineVerbs.Run("probe", "word-sense", "--model", EngineVerbs.ModelPath("olmoe"), "--dataset", "wic:dev",
            "--data-dir", GoldenData.DataPath(), "--server", "http://127.0.0.1:9", "--server-kind", "vllm", "--no-flash-attn", "--out", temp.File("o"));
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "routing server");
    }

    [Fact]
    public void Bench_ReportsTheAttentionSettings()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp);
        string[] common = ["bench", "--model", model, "--prompt-tokens", "8", "--gen-tokens", "1", "--repeats", "1", "--capture", "none", "--threads", "1", "--json"];

        var (code, output, error) = EngineVerbs.Run([.. common, "-ctk", "bf16", "--no-flash-attn"]);
        Assert.True(code == 0, error);
        long switchedCacheBytes;
        using (var json = JsonDocument.Parse(output))
        {
            Assert.Equal("bf16", json.RootElement.GetProperty("cache_type_k").GetString());
            Assert.Equal("f16", json.RootElement.GetProperty("cache_type_v").GetString());
            Assert.False(json.RootElement.GetProperty("flash_attn").GetBoolean());
            switchedCacheBytes = json.RootElement.GetProperty("kv_cache_bytes").GetInt64();
        }

        (code, output, error) = EngineVerbs.Run(common);
        Assert.True(code == 0, error);
        using (var json = JsonDocument.Parse(output))
        {
            Assert.Equal("f16", json.RootElement.GetProperty("cache_type_k").GetString());
            Assert.True(json.RootElement.GetProperty("flash_attn").GetBoolean());

            // Float keys and values (8 bytes a pair of elements) plus the keys' bf16 bytes (2 an element): 5/4 of the default.
            long defaultCacheBytes = json.RootElement.GetProperty("kv_cache_bytes").GetInt64();
            Assert.Equal(defaultCacheBytes * 5 / 4, switchedCacheBytes);
        }

        (code, _, error) = EngineVerbs.Run([.. common, "--cache-type-v", "q8_0", "--no-flash-attn"]);
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "requires flash attention");
    }

    [Fact]
    public void Prune_ScoresAndVerifiesWithTheSwitches_AndAScoringPassMadeWithoutThemRefusesThem()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp);
        string[] Args(string target, params string[] extra) =>
        [
            "prune", "--model", model, "--keep-per-layer", "5", "--corpus", temp.File("neutral.txt"), "--chunk", "4", "--threads", "1",
            "--out", temp.File(target), .. extra,
        ];

        var (code, output, error) = EngineVerbs.Run(Args("f32.gguf", [.. F32WithoutFlashAttention, "--verify"]));
        Assert.True(code == 0, error);
        Assert.Contains("verified", output, StringComparison.Ordinal);

        // An interrupted scoring pass made with the defaults: the switches are a changed setting.
        using (var loaded = MoeModel.Load(model))
        {
            var texts = TextCorpus.Chunks(loaded, temp.File("neutral.txt"), 4, 8192);
            var manifest = UnitJournal.Manifest("prune-scoring", model, PruneSelection.ScoringSettings(PruneScore.Frequency, texts));
            RunFolder.OpenOrCreate(temp.File("interrupted.gguf.run"), manifest).Dispose();
        }

        (code, _, error) = EngineVerbs.Run(Args("interrupted.gguf", "--no-flash-attn"));
        Assert.NotEqual(0, code);
        Assert.Contains("setting 'flash_attn' was not given, now 'off'", error, StringComparison.Ordinal);
        Assert.False(File.Exists(temp.File("interrupted.gguf")));

        (code, _, error) = EngineVerbs.Run(Args("interrupted.gguf"));
        Assert.True(code == 0, error);
        Assert.True(File.Exists(temp.File("interrupted.gguf")));
    }

    [Fact]
    public void Trace_RecordsTheSwitches_AndAppendsOnlyUnderTheSameOnes()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp);
        string[] Args(string trace, params string[] extra) =>
            ["trace", "--model", model, "--input", temp.File("neutral.txt"), "--threads", "1", "--out", temp.File(trace), .. extra];

        var (code, _, error) = EngineVerbs.Run(Args("plain.parquet"));
        Assert.True(code == 0, error);
        (code, _, error) = EngineVerbs.Run(Args("plain.parquet", "--no-flash-attn"));
        Assert.NotEqual(0, code);
        Assert.Contains("attention settings were 'default', now 'flash_attn=off'", error, StringComparison.Ordinal);

        (code, _, error) = EngineVerbs.Run(Args("f32.jsonl", F32WithoutFlashAttention));
        Assert.True(code == 0, error);
        (code, _, error) = EngineVerbs.Run(Args("f32.jsonl", F32WithoutFlashAttention));
        Assert.True(code == 0, error);
        (code, _, error) = EngineVerbs.Run(Args("f32.jsonl"));
        Assert.NotEqual(0, code);
        Assert.Contains("attention settings were 'cache_type_k=f32 cache_type_v=f32 flash_attn=off', now 'default'", error, StringComparison.Ordinal);
    }

    [Fact]
    public void AnalyzeAndSuperExperts_RecordTheSwitchesInTheirRunFolders()
    {
        using var temp = new TempDirectory();
        string model = VerbRunner.TinyModel(temp);
        string[] Lens(params string[] extra) =>
            ["analyze", "lens", "--model", model, "--input", temp.File("neutral.txt"), "--top-tokens", "2", "--out", temp.File("lens"), .. extra];

        var (code, _, error) = EngineVerbs.Run(Lens(F32WithoutFlashAttention));
        Assert.True(code == 0, error);
        Assert.Contains("\"cache_type_k\"", File.ReadAllText(Path.Combine(temp.File("lens"), RunFolder.ManifestFileName)), StringComparison.Ordinal);
        (code, _, error) = EngineVerbs.Run(Lens());
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, "cannot be resumed", "setting 'flash_attn' was 'off', now not given");

        string[] Super(params string[] extra) =>
        [
            "super-experts", "--model", model, "--corpus", temp.File("neutral.txt"), "--seeds", "1", "--chunk", "4", "--threads", "1",
            "--out", temp.File("super"), .. extra,
        ];
        (code, _, error) = EngineVerbs.Run(Super("-ctk", "bf16"));
        Assert.True(code == 0, error);
        (code, _, error) = EngineVerbs.Run(Super());
        Assert.NotEqual(0, code);
        Assert.Contains("setting 'cache_type_k' was 'bf16', now not given", error, StringComparison.Ordinal);
    }

    [Fact]
    public void LatentAttention_RunsF32Caches_AndRefusesAQuantizedKeyCacheWithoutFlashAttentionInOneLine()
    {
        using var temp = new TempDirectory();
        string input = temp.File("text.txt");
        File.WriteAllText(input, "The river flows to the sea.");
        string model = EngineVerbs.ModelPath("deepseek2-lite");

        // Flash attention casts an f32 cache to f16: llama.cpp's default numbers, which MLA reproduces.
        var (code, _, error) = EngineVerbs.Run("perplexity", "--model", model, "--input", input, "-ctk", "f32", "-ctv", "f32");
        Assert.True(code == 0, error);

        // Without flash attention the f32 cache is really f32 (matched against llama.cpp in F32CacheReferenceTests).
        (code, _, error) = EngineVerbs.Run("perplexity", "--model", model, "--input", input, "-ctk", "f32", "-ctv", "f32", "--no-flash-attn");
        Assert.True(code == 0, error);

        // MLA's values are a transposed view of the key cache, which ggml cannot make of a quantized type.
        (code, _, error) = EngineVerbs.Run("perplexity", "--model", model, "--input", input, "-ctk", "q8_0", "--no-flash-attn");
        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, model, "latent attention", "--no-flash-attn", "--cache-type-k");
    }

    private static JsonElement SettingsOf(string folder)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "results.json")));
        return json.RootElement.GetProperty("settings").Clone();
    }
}
