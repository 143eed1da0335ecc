using System.CommandLine;
using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Experiments.Runs;
using ExpertScope.Experiments.Storage;
using ExpertScope.Experiments.Tracing;

namespace ExpertScope.Cli;

/// <summary>
/// <c>trace</c>: runs a model over input texts and writes every router decision (one row per sequence, position,
/// MoE layer and rank) to a Parquet or JSON Lines trace. Re-running the same command resumes an interrupted trace.
/// </summary>
/// <remarks>
/// Input: a <c>.jsonl</c> file holds one JSON object per line (text in <c>--field</c>); any other file one text per
/// line. The 0-based line index is the <c>sequence</c> id; empty lines are skipped but keep their index, so ids
/// always match line numbers minus one. A sequence longer than the model's context is an error naming the line,
/// unless <c>--truncate</c> keeps its first context-length tokens (BOS included).
/// </remarks>
public static class TraceCommand
{
    /// <summary>Creates the verb.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var model = new ModelOptions();
        var input = new Option<FileInfo>("--input", "-i")
        {
            Description = "Input texts: a .txt file (one sequence per line; the 0-based line index is the sequence id; empty lines are skipped but keep their index) or a .jsonl file (one object per line).",
            Required = true,
        };
        var output = new Option<FileInfo>("--out", "-o") { Description = "Trace file to write (or resume): .jsonl for JSON Lines, anything else (.parquet) for Parquet.", Required = true };
        var field = new Option<string?>("--field") { Description = "The text field of a .jsonl input (default: text)." };
        var probabilities = new Option<bool>("--probs") { Description = "Also store the full router distribution of each token and layer (column probs)." };
        var format = new Option<string?>("--format")
        {
            Description = "parquet or jsonl; must agree with the --out extension (.jsonl is JSON Lines, anything else Parquet), which decides by default.",
        };
        format.AcceptOnlyFromAmong("parquet", "jsonl");
        var limit = new Option<int?>("--limit") { Description = "Trace only sequences 0..N-1 (the first N input lines)." };
        var truncate = new Option<bool>("--truncate")
        {
            Description = "Cut a sequence longer than the model's context to its first context-length tokens (BOS included) instead of failing.",
        };
        var flushSeconds = new Option<double>("--flush-seconds")
        {
            Description = "Parquet only: longest time finished sequences wait before they are written as a row group (0 = after every sequence). " +
                          "A killed run loses the sequence in flight plus at most this much finished work; re-running resumes. Default 10.",
            DefaultValueFactory = _ => 10.0,
        };
        var parseSpecial = SpecialTokenText.CreateParseSpecialOption();
        var server = new RoutingServerOptions();
        var shard = new Option<string?>("--shard") { Description = "Trace only sequences i, i+n, i+2n, … (i/n); join the shards' traces with expertscope merge." };
        var overwrite = new Option<bool>(OutputGuard.OverwriteOption)
        {
            Description = "Replace an existing --out file that is not an ExpertScope trace (or start a trace over). Without it such a file is refused; the input is never replaced.",
        };
        var command = new Command("trace", "Run a model over texts and write every router decision (expert, weight, score per token, layer and rank) to a resumable Parquet or JSON Lines trace.");
        model.AddTo(command);
        command.Options.Add(input);
        command.Options.Add(output);
        command.Options.Add(field);
        command.Options.Add(probabilities);
        command.Options.Add(format);
        command.Options.Add(limit);
        command.Options.Add(truncate);
        command.Options.Add(flushSeconds);
        command.Options.Add(parseSpecial);
        var chat = new ChatOptions();
        chat.AddTo(command);
        server.AddTo(command);
        command.Options.Add(shard);
        command.Options.Add(overwrite);
        command.SetAction(parse => context.Guard(() =>
        {
            string inputPath = parse.GetValue(input)!.FullName;
            string outputPath = parse.GetValue(output)!.FullName;
            string? fieldName = parse.GetValue(field);
            bool json = PromptFile.IsJsonLines(inputPath);
            if (fieldName is not null && !json)
            {
                throw new ExpertScopeException($"--field applies only to a .jsonl input, not '{inputPath}'.");
            }

            if (parse.GetValue(limit) is < 0)
            {
                throw new ExpertScopeException("--limit must not be negative.");
            }

            double flush = parse.GetValue(flushSeconds);
            if (!(flush >= 0))
            {
                throw new ExpertScopeException("--flush-seconds must not be negative.");
            }

            // A table-like extension would hide a Parquet file behind a misleading name: refuse it and say what works.
            string extension = Path.GetExtension(outputPath).ToLowerInvariant();
            if (extension is ".csv" or ".tsv" or ".json" or ".txt" or ".xlsx")
            {
                throw new ExpertScopeException(
                    $"--out '{outputPath}': trace writes Parquet (.parquet) or JSON Lines (.jsonl), not {extension}; for CSV, convert the Parquet, e.g. in DuckDB: COPY (SELECT * FROM 'trace.parquet') TO 'trace.csv'.");
            }

            // Readers tell the format by the extension, so --format may only confirm it.
            var traceFormat = RoutingTraceWriter.FormatOf(outputPath);
            if (parse.GetValue(format) is { } named && named != (traceFormat == TraceFormat.Jsonl ? "jsonl" : "parquet"))
            {
                throw new ExpertScopeException(
                    $"--format {named} does not match --out '{outputPath}': a JSON Lines trace must end in .jsonl and a Parquet trace must not (readers tell the format by the extension).");
            }

            // Never replace the input or a file we did not write (a user's data set named by mistake).
            OutputGuard.RequireWritableFile(outputPath, inputPath, parse.GetRequiredValue(model.Model).FullName);
            OutputGuard.PrepareFile(outputPath, parse.GetValue(overwrite), path => RoutingTraceWriter.IsTraceFile(path, traceFormat),
                "routing trace", RoutingTraceWriter.SidecarSuffixes(traceFormat));

            int? threads = model.ThreadCount(parse);
            var prompts = PromptFile.Read(inputPath, fieldName ?? "text");
            if (parse.GetValue(limit) is { } n)
            {
                prompts = [.. prompts.Where(p => p.Sequence < n)];
            }

            if (parse.GetValue(shard) is { } shardText)
            {
                var part = Shard.Parse(shardText);
                prompts = [.. prompts.Where(p => part.Includes(p.Sequence))];
            }

            if (prompts.Count == 0)
            {
                context.Error.WriteLine($"warning: {inputPath} holds no text to trace (every line is empty or beyond --limit); the trace will have no rows.");
            }

            using var moe = model.Load(parse);
            var shape = InterventionParser.ShapeOf(moe);
            if (shape.MoeLayers.Count == 0)
            {
                throw new ExpertScopeException($"The model '{moe.FilePath}' has no MoE blocks, so there is no routing to trace.");
            }

            // Chat-formatted prompts carry the template's special tokens, which must be parsed (as llama.cpp's chat tools do).
            var template = chat.Resolve(parse, moe.FilePath);
            var chatPrompts = template is null ? prompts : [.. prompts.Select(p => p with { Text = chat.Apply(parse, template, p.Text) })];
            var sequences = TraceRunner.Tokenize(moe, chatPrompts, parse.GetValue(truncate), inputPath, parse.GetValue(parseSpecial) || template is not null);
            foreach (var cut in sequences.Where(s => s.IsTruncated))
            {
                context.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"warning: {inputPath}:{cut.LineNumber}: truncated from {cut.OriginalLength} to {cut.Tokens.Count} tokens (the model's context)."));
            }

            var serverSettings = server.Parse(parse);
            if (serverSettings is not null && parse.GetValue(probabilities))
            {
                throw new ExpertScopeException("--probs needs the engine: a server returns expert ids only");
            }

            var attention = model.Attention.Parse(parse);
            if (serverSettings is not null && attention.NonDefaultSettings().Count > 0)
            {
                throw new ExpertScopeException("--cache-type-k/-v and --no-flash-attn set the engine's attention; with a routing server its own settings decide (drop them or the server options).");
            }

            using var serverSource = serverSettings?.CreateSource(moe.File, Formats.ModelInfo.FromGguf(moe.File));
            var router = moe.Blocks.First(b => b.Moe is not null).Moe!.Router.Config;
            var metadata = new TraceMetadata
            {
                ModelSha256 = FileHash.Sha256Async(moe.FilePath).GetAwaiter().GetResult(),
                Architecture = moe.Hyperparameters.Architecture,
                ExpertCount = router.ExpertCount,
                TopK = router.TopK,
                FloatArithmetic = ArithmeticNames.Name(ArithmeticNames.Parse(parse.GetValue(model.Arithmetic))),
                CommandLine = CommandLineOf(parse),
                RoutingSource = serverSource?.Kind ?? "engine",
                Attention = TraceMetadata.AttentionName(attention),
                MoeBlocks = (serverSource?.LayerMap ?? new Experiments.RoutingSources.MoeLayerMap(shape.MoeLayers, moe.FilePath)).ToString(),
            };
            bool includeProbabilities = parse.GetValue(probabilities);
            var writerOptions = new TraceWriterOptions { IncludeProbabilities = includeProbabilities, MaxBufferTime = TimeSpan.FromSeconds(flush) };
            Directory.CreateDirectory(Path.GetDirectoryName(outputPath)!);
            var writer = RoutingTraceWriter.OpenAsync(outputPath, traceFormat, metadata, writerOptions).GetAwaiter().GetResult();
            TraceRunSummary summary;
            try
            {
                long recovered = writer switch
                {
                    ParquetTraceWriter p => p.RecoveredBytes,
                    JsonlTraceWriter j => j.RecoveredBytes,
                    _ => 0,
                };
                int held = sequences.Count(s => writer.Contains(s.Sequence));
                if (held > 0 || recovered > 0)
                {
                    string repaired = recovered > 0 ? string.Create(CultureInfo.InvariantCulture, $"; discarded {recovered} bytes of an interrupted write") : string.Empty;
                    context.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"resuming {outputPath}: {held} of {sequences.Count} sequences already traced{repaired}."));
                }

                // Ctrl+C or SIGTERM: finish the sequence in flight, write what finished, exit 130. A second Ctrl+C kills.
                using var stop = new StopSignal();
                summary = ProgressDisplay.Run(context, sink => serverSource is null
                    ? TraceRunner.RunAsync(moe, sequences, writer, sink, includeProbabilities, threads, stop.Token).GetAwaiter().GetResult()
                    : TraceRunner.RunAsync(serverSource, sequences, prompts.ToDictionary(p => p.Sequence, p => p.Text), moe.Tokenizer.TokenToPiece,
                        writer, sink, 4 * serverSettings!.Concurrency, stop.Token).GetAwaiter().GetResult());
            }
            finally
            {
                writer.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }

            if (summary.Interrupted)
            {
                context.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"interrupted: {summary.Traced} sequences written to {outputPath}; re-run the same command to resume."));
                return 130;
            }

            double seconds = summary.Elapsed.TotalSeconds;
            string rate = seconds > 0 && summary.Tokens > 0 ? string.Create(CultureInfo.InvariantCulture, $", {summary.Tokens / seconds:0.0} tokens/s") : string.Empty;
            string skipped = summary.Skipped > 0 ? string.Create(CultureInfo.InvariantCulture, $"; {summary.Skipped} already traced") : string.Empty;
            context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {outputPath}: {summary.Traced} sequences ({summary.Tokens} tokens, {summary.Rows} rows) in {seconds:0.0} s{rate}{skipped}"));
            return 0;
        }));
        return command;
    }

    /// <summary>The command line as typed (arguments with spaces quoted), for the trace's metadata.</summary>
    internal static string CommandLineOf(ParseResult parse)
    {
        var parts = new List<string> { "expertscope" };
        foreach (var token in parse.Tokens)
        {
            string value = token.Value;
            parts.Add(value.Length == 0 || value.Any(c => char.IsWhiteSpace(c) || c is '"' or '\'')
                ? "\"" + value.Replace("\"", "\\\"", StringComparison.Ordinal) + "\""
                : value);
        }

        return string.Join(' ', parts);
    }
}
