using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using ExpertScope.Core;
using ExpertScope.Models;
using ExpertScope.Models.Routing;

namespace ExpertScope.Cli;

/// <summary>
/// <c>bench</c>: prefill and generation speed of a model file, peak resident memory, and the cost of capturing the
/// routing (runs with and without capture interleaved in one process, so machine load affects both alike).
/// </summary>
public static class BenchCommand
{
    private static readonly JsonWriterOptions JsonOptions = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Creates the verb.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var model = new Option<FileInfo>("--model") { Description = "GGUF model to run.", Required = true };
        var promptTokens = new Option<int>("--prompt-tokens") { Description = "Prompt length (seeded random token ids).", DefaultValueFactory = _ => 512 };
        var generatedTokens = new Option<int>("--gen-tokens") { Description = "Tokens generated greedily after the prompt.", DefaultValueFactory = _ => 32 };
        var threads = new Option<int>("--threads") { Description = "Threads (default: one per logical processor).", DefaultValueFactory = _ => Environment.ProcessorCount };
        var capture = new Option<string>("--capture")
        {
            Description = "What is recorded during the measured runs: none, router (experts, weights, scores of every layer) or full (router with probabilities plus a copy of every activation hook site).",
            DefaultValueFactory = _ => "router",
        };
        capture.AcceptOnlyFromAmong("none", "router", "full");
        var repeats = new Option<int>("--repeats") { Description = "Measured runs (the median is reported), after one warm-up run.", DefaultValueFactory = _ => 3 };
        var seed = new Option<int>("--seed") { Description = "Seed of the prompt's token ids.", DefaultValueFactory = _ => 1234 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of text." };
        var arithmetic = ArithmeticNames.CreateOption();
        var command = new Command("bench", "Measure prefill and generation speed, peak resident memory and the routing-capture overhead on a model file.")
        {
            model, promptTokens, generatedTokens, threads, capture, repeats, seed, json, arithmetic,
        };
        var attention = new AttentionSwitches();
        attention.AddTo(command);
        command.SetAction(parse => context.Guard(() =>
        {
            var settings = new BenchSettings(
                parse.GetValue(model)!.FullName,
                parse.GetValue(promptTokens),
                parse.GetValue(generatedTokens),
                parse.GetValue(threads),
                ParseCapture(parse.GetValue(capture)!),
                parse.GetValue(repeats),
                parse.GetValue(seed),
                ArithmeticNames.Parse(parse.GetValue(arithmetic)),
                attention.Parse(parse));
            var result = Run(settings, context.Error);
            context.Output.WriteLine(parse.GetValue(json) ? ToJson(settings, result) : ToText(settings, result));
            return 0;
        }));
        return command;
    }

    /// <summary>What to record during a measured run.</summary>
    internal enum CaptureMode
    {
        /// <summary>No observer.</summary>
        None,

        /// <summary>A <see cref="RoutingTrace"/> of every layer.</summary>
        Router,

        /// <summary>A <see cref="RoutingTrace"/> with probabilities plus a copy of every activation site.</summary>
        Full,
    }

    internal sealed record BenchSettings(
        string ModelPath, int PromptTokens, int GeneratedTokens, int Threads, CaptureMode Capture, int Repeats, int Seed,
        FloatArithmetic Arithmetic = FloatArithmetic.Reference,
        AttentionSettings? Attention = null);

    /// <summary>Medians over the measured runs; <c>Off</c> figures come from the runs without capture.</summary>
    internal sealed record BenchResult(
        double PrefillTokensPerSecond,
        double GenerationTokensPerSecond,
        double PrefillTokensPerSecondOff,
        double GenerationTokensPerSecondOff,
        double? CaptureOverhead,
        long? PeakResidentBytes,
        long FileBytes,
        long KeyValueCacheBytes,
        IReadOnlyList<double> PrefillSecondsOn,
        IReadOnlyList<double> PrefillSecondsOff,
        double LoadAverage,
        BenchPhases? PrefillPhases = null,
        BenchPhases? GenerationPhases = null);

    private static CaptureMode ParseCapture(string value) => value switch
    {
        "none" => CaptureMode.None,
        "router" => CaptureMode.Router,
        "full" => CaptureMode.Full,
        _ => throw new ExpertScopeException($"unknown capture mode '{value}' (none, router, full)"),
    };

    /// <summary>Loads the model, warms up, then runs the measured repeats (capture on and off interleaved).</summary>
    internal static BenchResult Run(BenchSettings settings, TextWriter log)
    {
        if (settings.PromptTokens < 1 || settings.GeneratedTokens < 0 || settings.Repeats < 1 || settings.Threads < 1)
        {
            throw new ExpertScopeException("bench needs --prompt-tokens >= 1, --gen-tokens >= 0, --repeats >= 1 and --threads >= 1");
        }

        using var model = MoeModel.Load(settings.ModelPath, new ModelLoadOptions { FloatArithmetic = settings.Arithmetic, Attention = settings.Attention ?? AttentionSettings.Default });
        var hp = model.Hyperparameters;
        if (settings.PromptTokens + settings.GeneratedTokens > hp.ContextLength)
        {
            throw new ExpertScopeException(
                $"{settings.ModelPath}: {settings.PromptTokens} + {settings.GeneratedTokens} tokens exceed the context length {hp.ContextLength}");
        }

        var random = new Random(settings.Seed);
        var prompt = new int[settings.PromptTokens];
        for (int i = 0; i < prompt.Length; i++)
        {
            prompt[i] = random.Next(hp.VocabularySize);
        }

        bool compare = settings.Capture != CaptureMode.None;

        // Warm-up: JIT compilation and the first touch of every memory-mapped page are not measured.
        Measure(model, prompt, settings, capture: false);
        if (compare)
        {
            Measure(model, prompt, settings, capture: true);
        }

        var on = new List<(double Prefill, double Generation)>();
        var off = new List<(double Prefill, double Generation)>();
        for (int r = 0; r < settings.Repeats; r++)
        {
            // Alternate which run goes first so a slow drift of the machine's load hits both alike.
            bool onFirst = compare && r % 2 == 1;
            if (onFirst)
            {
                on.Add(Measure(model, prompt, settings, capture: true));
            }

            off.Add(Measure(model, prompt, settings, capture: false));
            if (compare && !onFirst)
            {
                on.Add(Measure(model, prompt, settings, capture: true));
            }

            var c = CultureInfo.InvariantCulture;
            string onPrefill = compare ? string.Create(c, $", on {on[^1].Prefill:F3} s") : "";
            string onGeneration = compare ? string.Create(c, $", on {on[^1].Generation:F3} s") : "";
            log.WriteLine(string.Create(c, $"run {r + 1}/{settings.Repeats}: prefill off {off[^1].Prefill:F3} s{onPrefill}; generation off {off[^1].Generation:F3} s{onGeneration}"));
        }

        // One more run with the phase timer only, so the measured runs above carry no observer they did not ask for.
        var (prefillPhases, generationPhases) = MeasurePhases(model, prompt, settings);
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"phase run: prefill {prefillPhases.Total:F3} s, generation {generationPhases.Total:F3} s"));

        var measured = compare ? on : off;
        double? overhead = compare
            ? Median(Enumerable.Range(0, on.Count).Select(i => on[i].Prefill / off[i].Prefill))
            : null;
        // The engine keeps keys and values as float32 (rounded to float16 values when the cache precision is Float16).
        long cacheBytes = model.Blocks.Count * 2L * (settings.PromptTokens + settings.GeneratedTokens) * hp.KvHeadCount * hp.HeadDimension * sizeof(float);
        // Other cache types (--cache-type-k/-v, --no-flash-attn) also keep every key row in its type's bytes.
        var attention = settings.Attention ?? AttentionSettings.Default;
        if (!attention.IsLlamaDefault)
        {
            cacheBytes += model.Blocks.Count * (long)(settings.PromptTokens + settings.GeneratedTokens)
                * GgmlTypes.Get(attention.EffectiveKeyType).RowBytes(hp.KvHeadCount * hp.HeadDimension);
        }
        return new BenchResult(
            settings.PromptTokens / Median(measured.Select(m => m.Prefill)),
            settings.GeneratedTokens == 0 ? 0 : settings.GeneratedTokens / Median(measured.Select(m => m.Generation)),
            settings.PromptTokens / Median(off.Select(m => m.Prefill)),
            settings.GeneratedTokens == 0 ? 0 : settings.GeneratedTokens / Median(off.Select(m => m.Generation)),
            overhead,
            PeakResidentBytes(),
            new FileInfo(settings.ModelPath).Length,
            cacheBytes,
            [.. on.Select(m => m.Prefill)],
            [.. off.Select(m => m.Prefill)],
            LoadAverage(),
            prefillPhases,
            generationPhases);
    }

    /// <summary>One prefill and generation like <see cref="Measure"/> with only a <see cref="BenchPhaseTimer"/> observing.</summary>
    private static (BenchPhases Prefill, BenchPhases Generation) MeasurePhases(MoeModel model, int[] prompt, BenchSettings settings)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var timer = new BenchPhaseTimer();
        var options = new RunOptions { Observers = [timer], ThreadCount = settings.Threads, Logits = LogitsSelection.Last };
        var session = model.CreateSession();
        long start = Stopwatch.GetTimestamp();
        var logits = session.Append(prompt, options);
        var prefill = timer.Take(Stopwatch.GetElapsedTime(start).TotalSeconds);
        start = Stopwatch.GetTimestamp();
        for (int i = 0; i < settings.GeneratedTokens; i++)
        {
            logits = session.Append([ArgMax(logits.Row(logits.Rows - 1))], options);
        }

        return (prefill, timer.Take(Stopwatch.GetElapsedTime(start).TotalSeconds));
    }

    /// <summary>One prefill of the prompt, then greedy generation; returns both durations in seconds.</summary>
    private static (double Prefill, double Generation) Measure(MoeModel model, int[] prompt, BenchSettings settings, bool capture)
    {
        // Every run starts from a collected heap, so one run's garbage (a full capture is hundreds of megabytes) is not
        // paid for by the next one.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        IReadOnlyList<IRouterObserver> observers = !capture ? [] : settings.Capture switch
        {
            CaptureMode.Router => [new RoutingTrace()],
            CaptureMode.Full => [new RoutingTrace(includeProbabilities: true), new ActivationRecorder()],
            _ => [],
        };
        var options = new RunOptions { Observers = observers, ThreadCount = settings.Threads, Logits = LogitsSelection.Last };
        var session = model.CreateSession();
        long start = Stopwatch.GetTimestamp();
        var logits = session.Append(prompt, options);
        double prefill = Stopwatch.GetElapsedTime(start).TotalSeconds;
        start = Stopwatch.GetTimestamp();
        for (int i = 0; i < settings.GeneratedTokens; i++)
        {
            int next = ArgMax(logits.Row(logits.Rows - 1));
            logits = session.Append([next], options);
        }

        double generation = Stopwatch.GetElapsedTime(start).TotalSeconds;
        GC.KeepAlive(observers);
        return (prefill, generation);
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>
    /// Peak resident set size of this process (Linux <c>VmHWM</c> in <c>/proc/self/status</c>): it counts the
    /// memory-mapped weight pages that were touched as well as the heap. Null where that file does not exist.
    /// </summary>
    internal static long? PeakResidentBytes()
    {
        const string StatusPath = "/proc/self/status";
        if (!File.Exists(StatusPath))
        {
            return null;
        }

        foreach (string line in File.ReadLines(StatusPath))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                var parts = line["VmHWM:".Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(parts[0], CultureInfo.InvariantCulture) * 1024;
            }
        }

        return null;
    }

    /// <summary>The one-minute load average (Linux <c>/proc/loadavg</c>), or NaN where unavailable.</summary>
    private static double LoadAverage()
    {
        const string LoadPath = "/proc/loadavg";
        return File.Exists(LoadPath)
            ? double.Parse(File.ReadAllText(LoadPath).Split(' ')[0], CultureInfo.InvariantCulture)
            : double.NaN;
    }

    private static string ToText(BenchSettings settings, BenchResult r)
    {
        var text = new System.Text.StringBuilder();
        var c = CultureInfo.InvariantCulture;
        text.AppendLine(c, $"model: {settings.ModelPath} ({r.FileBytes} bytes)");
        text.AppendLine(c, $"threads: {settings.Threads}, prompt: {settings.PromptTokens} tokens, generated: {settings.GeneratedTokens} tokens, capture: {settings.Capture.ToString().ToLowerInvariant()}, repeats: {settings.Repeats}, arithmetic: {ArithmeticNames.Name(settings.Arithmetic)}, attention: {settings.Attention ?? AttentionSettings.Default}");
        text.AppendLine(c, $"prefill: {r.PrefillTokensPerSecond:F2} tokens/s (capture off: {r.PrefillTokensPerSecondOff:F2})");
        text.AppendLine(c, $"generation: {r.GenerationTokensPerSecond:F2} tokens/s (capture off: {r.GenerationTokensPerSecondOff:F2})");
        if (r.CaptureOverhead is { } overhead)
        {
            text.AppendLine(c, $"capture overhead: x{overhead:F4} prefill time (capture on / off, median of interleaved pairs)");
        }

        foreach (var (phase, name) in new[] { (r.PrefillPhases, "prefill"), (r.GenerationPhases, "generation") })
        {
            if (phase is not null)
            {
                text.AppendLine(c, $"{name} phases (one extra run): attention {phase.Attention:F3} s, router {phase.Router:F3} s, experts {phase.Experts:F3} s, other {phase.Other:F3} s of {phase.Total:F3} s");
            }
        }

        text.AppendLine(c, $"peak resident memory: {(r.PeakResidentBytes is { } peak ? peak.ToString(c) + " bytes" : "unknown")} (file {r.FileBytes} + KV cache {r.KeyValueCacheBytes})");
        text.Append(c, $"load average (1 min) at the end: {r.LoadAverage:F2}");
        return text.ToString();
    }

    internal static string ToJson(BenchSettings settings, BenchResult r)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, JsonOptions))
        {
            w.WriteStartObject();
            w.WriteNumber("prefill_tokens_per_s", r.PrefillTokensPerSecond);
            w.WriteNumber("generation_tokens_per_s", r.GenerationTokensPerSecond);
            if (r.PeakResidentBytes is { } peak)
            {
                w.WriteNumber("peak_rss_bytes", peak);
            }
            else
            {
                w.WriteNull("peak_rss_bytes");
            }

            if (r.CaptureOverhead is { } overhead)
            {
                w.WriteNumber("capture_overhead", overhead);
            }
            else
            {
                w.WriteNull("capture_overhead");
            }

            w.WriteString("capture", settings.Capture.ToString().ToLowerInvariant());
            w.WriteString("arithmetic", ArithmeticNames.Name(settings.Arithmetic));
            var attention = settings.Attention ?? AttentionSettings.Default;
            w.WriteString("cache_type_k", GgmlTypes.Get(attention.KeyType).Name);
            w.WriteString("cache_type_v", GgmlTypes.Get(attention.ValueType).Name);
            w.WriteBoolean("flash_attn", attention.FlashAttention);
            w.WriteNumber("prefill_tokens_per_s_capture_off", r.PrefillTokensPerSecondOff);
            w.WriteNumber("generation_tokens_per_s_capture_off", r.GenerationTokensPerSecondOff);
            w.WriteNumber("prompt_tokens", settings.PromptTokens);
            w.WriteNumber("gen_tokens", settings.GeneratedTokens);
            w.WriteNumber("threads", settings.Threads);
            w.WriteNumber("repeats", settings.Repeats);
            w.WriteNumber("file_bytes", r.FileBytes);
            w.WriteNumber("kv_cache_bytes", r.KeyValueCacheBytes);
            w.WriteStartArray("prefill_seconds_capture_on");
            foreach (double s in r.PrefillSecondsOn)
            {
                w.WriteNumberValue(s);
            }

            w.WriteEndArray();
            w.WriteStartArray("prefill_seconds_capture_off");
            foreach (double s in r.PrefillSecondsOff)
            {
                w.WriteNumberValue(s);
            }

            w.WriteEndArray();
            WritePhases(w, "prefill_phase_seconds", r.PrefillPhases);
            WritePhases(w, "generation_phase_seconds", r.GenerationPhases);
            if (double.IsFinite(r.LoadAverage))
            {
                w.WriteNumber("load_average_1min", r.LoadAverage);
            }

            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WritePhases(Utf8JsonWriter w, string name, BenchPhases? phases)
    {
        if (phases is null)
        {
            return;
        }

        w.WriteStartObject(name);
        w.WriteNumber("attention", phases.Attention);
        w.WriteNumber("router", phases.Router);
        w.WriteNumber("experts", phases.Experts);
        w.WriteNumber("other", phases.Other);
        w.WriteNumber("total", phases.Total);
        w.WriteEndObject();
    }

    /// <summary>The <c>full</c> capture: keeps a copy of every activation hook site of the run.</summary>
    private sealed class ActivationRecorder : IRouterObserver
    {
        private readonly List<(HookSite Site, float[] Values)> _records = [];

        public bool Wants(HookSite site) => site.Kind != HookKind.Router;

        public void Observe(HookSite site, in ActivationView view) => _records.Add((site, view.Values.ToArray()));
    }
}
