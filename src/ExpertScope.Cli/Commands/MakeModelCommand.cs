using System.CommandLine;
using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Models.Quantization;
using ExpertScope.Models.Synthetic;

namespace ExpertScope.Cli;

/// <summary><c>make-model</c>: writes a seeded random-weight GGUF with a real architecture's shapes.</summary>
public static class MakeModelCommand
{
    /// <summary>Creates the verb.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var preset = new Option<string>("--preset")
        {
            Description = "Model shape: " + string.Join("; ", SyntheticPresets.All.Select(p => $"{p.Name} ({p.Description})")),
        };
        var like = new Option<FileInfo?>("--like") { Description = "Instead of a preset: the random-weight twin of this GGUF (same metadata, tokenizer, shapes and types; weights initialised as before training; --type does not apply), the baseline for 'is this structure or chance?'." };
        var output = new Option<FileInfo>("--out") { Description = "GGUF file to write.", Required = true };
        var type = new Option<string>("--type")
        {
            Description = "Storage type of the routed expert tensors (f32, f16, q8_0, q4_K; other tensors stay f32), or a llama.cpp mix (q4_K_M, q5_K_M, q6_K…: every matrix typed as llama-quantize types it for that file type).",
            DefaultValueFactory = _ => "f32",
        };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the random weights.", DefaultValueFactory = _ => 20261124UL };
        var overwrite = new Option<bool>("--overwrite") { Description = "With a mix --type: replace an existing --out that neither make-model nor quantize wrote." };
        var command = new Command("make-model", "Write a seeded random-weight GGUF model with a real architecture's shapes (for tests, demos and benchmarks; random weights carry no meaning).")
        {
            preset, like, output, type, seed, overwrite,
        };
        command.SetAction(parse => context.Guard(() =>
        {
            if ((parse.GetValue(preset) is null) == (parse.GetValue(like) is null))
            {
                throw new ExpertScopeException("give exactly one of --preset and --like.");
            }

            if (parse.GetValue(like) is { } original)
            {
                string twin = parse.GetValue(output)!.FullName;
                Directory.CreateDirectory(Path.GetDirectoryName(twin)!);
                int count = RandomTwinWriter.Write(original.FullName, twin, parse.GetValue(seed));
                context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {twin}: random-weight twin of {original.Name}, {count} tensors, {new FileInfo(twin).Length} bytes"));
                return 0;
            }

            string typeName = parse.GetValue(type)!;
            var mix = MixOrNull(typeName);
            GgmlType expertType = GgmlType.F32;
            if (mix is null && !GgmlTypes.TryParse(typeName, out expertType))
            {
                throw new ExpertScopeException($"unknown tensor type '{typeName}'");
            }

            var spec = SyntheticPresets.Get(parse.GetValue(preset)!) with { ExpertTensorType = expertType, Seed = parse.GetValue(seed) };
            string path = parse.GetValue(output)!.FullName;
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            long lastReported = 0;
            void Report(long done, long total)
            {
                // Report about every 5% so large presets show progress without flooding the terminal.
                if (done - lastReported >= total / 20 || done == total)
                {
                    lastReported = done;
                    context.Error.Write(string.Create(CultureInfo.InvariantCulture, $"\rwriting {path}: {100.0 * done / total:F0}% of {total / 1e9:F1} GB"));
                }
            }

            if (mix is not null)
            {
                // Ctrl+C or SIGTERM stops between batches of rows; the writer removes its temporary, so no partial --out remains.
                using var stop = new StopSignal();
                SyntheticMixSummary summary;
                try
                {
                    summary = SyntheticMixWriter.Write(spec, mix, path, new SyntheticMixOptions { Overwrite = parse.GetValue(overwrite), Cancellation = stop.Token }, Report);
                }
                catch (OperationCanceledException) when (stop.IsStopRequested)
                {
                    context.Error.WriteLine();
                    context.Error.WriteLine($"interrupted: {path} was not written.");
                    return 130;
                }

                context.Error.WriteLine();
                string types = string.Join(", ", summary.TensorsByType.Select(t => $"{t.Value} {t.Key}"));
                context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {path}: {spec.Architecture} as {mix.Name} ({types}), {summary.TensorsByType.Values.Sum()} tensors, {summary.Bytes} bytes"));
                return 0;
            }

            int tensors = SyntheticModelWriter.Write(spec, path, Report);
            context.Error.WriteLine();
            context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {path}: {spec.Architecture}, {tensors} tensors, {new FileInfo(path).Length} bytes"));
            return 0;
        }));
        return command;
    }

    // A K-quant mix name (q4_K_M, q6_K…) as the quantize verb reads it; null for a plain tensor type such as q4_K.
    private static QuantizationTarget? MixOrNull(string typeName)
    {
        try
        {
            var target = QuantizationTarget.Parse(typeName);
            return target.Mix is null ? null : target;
        }
        catch (ExpertScopeException)
        {
            return null;
        }
    }
}
