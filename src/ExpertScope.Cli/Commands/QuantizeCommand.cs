using System.CommandLine;
using System.Globalization;
using ExpertScope.Models;
using ExpertScope.Models.Quantization;

namespace ExpertScope.Cli;

/// <summary><c>quantize</c>: llama-quantize's job for the types this engine quantizes (see <see cref="ModelQuantizer"/>).</summary>
public static class QuantizeCommand
{
    /// <summary>Creates the verb.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var input = new Argument<FileInfo>("IN") { Description = "The source GGUF (F32, F16 or BF16 weights; quantized ones need --allow-requantize)." };
        var output = new Argument<FileInfo>("OUT") { Description = "The GGUF to write." };
        var type = new Option<string>("--type")
        {
            Description = "A ggml type for every weight matrix (as llama-quantize --pure) or a llama.cpp K-quant mix: " + string.Join(", ", QuantizationTarget.Names) + ".",
            Required = true,
        };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace OUT even if this verb did not write it." };
        var requantize = new Option<bool>("--allow-requantize") { Description = "Convert tensors that are already quantized (precision is lost twice)." };
        var threads = new Option<int?>("--threads") { Description = "Threads (default: all processors); the bytes do not depend on it." };
        var command = new Command("quantize", "Write a quantized copy of a GGUF model (llama-quantize's job; metadata kept, streamed, no importance matrix).")
        {
            input, output, type, overwrite, requantize, threads,
        };
        command.SetAction(parse => context.Guard(() =>
        {
            var target = QuantizationTarget.Parse(parse.GetValue(type)!);
            string source = parse.GetValue(input)!.FullName;
            string path = parse.GetValue(output)!.FullName;
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var summary = ModelQuantizer.Write(source, target, path, new QuantizeOptions
            {
                Overwrite = parse.GetValue(overwrite),
                AllowRequantize = parse.GetValue(requantize),
                ThreadCount = parse.GetValue(threads),
            });

            // Reload through the full loader: the file must validate and build like any checkpoint.
            using (MoeModel.Load(path))
            {
            }

            foreach (var group in summary.Fallbacks.GroupBy(f => (f.From, f.To)))
            {
                context.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{group.Count()} tensors have rows that are not whole {group.Key.From} blocks; llama.cpp's fallback {group.Key.To} is used (e.g. {group.First().Tensor})"));
            }

            context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {path}: {summary.Target}, {summary.BytesBefore} -> {summary.BytesAfter} bytes; tensors: {string.Join(", ", summary.TensorsByType.Select(p => $"{p.Value} {p.Key}"))}"));
            return 0;
        }));
        return command;
    }
}
