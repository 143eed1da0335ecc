using ExpertScope.Experiments.Runs;
using ExpertScope.Experiments.Storage;
using ExpertScope.Experiments.Tracing;
using ExpertScope.Models;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

public class TraceRunnerTests
{
    [Fact]
    public async Task CancellingKeepsEveryFinishedSequenceAndLosesOnlyTheOneInFlight()
    {
        using var temp = new TempDirectory();
        string modelPath = temp.File("tiny.gguf");
        SyntheticModelWriter.Write(SyntheticPresets.Get("tiny-olmoe"), modelPath);
        using var model = MoeModel.Load(modelPath);
        var prompts = Enumerable.Range(0, 6).Select(i => new Prompt(i, i + 1, $"the river bank number {i}")).ToList();
        var sequences = TraceRunner.Tokenize(model, prompts, truncate: false, "prompts");
        var router = model.Blocks.First(b => b.Moe is not null).Moe!.Router.Config;
        var metadata = new TraceMetadata { ModelSha256 = await FileHash.Sha256Async(modelPath), Architecture = "olmoe", ExpertCount = router.ExpertCount, TopK = router.TopK };
        string path = temp.File("trace.parquet");
        using var stop = new CancellationTokenSource();

        TraceRunSummary summary;
        await using (var writer = await RoutingTraceWriter.OpenAsync(path, TraceFormat.Parquet, metadata))
        {
            // Cancel while the second sequence is the next one: it must not start, the first must be stored.
            summary = await TraceRunner.RunAsync(model, sequences, writer, new CancelOnAdvance(stop), threadCount: 1, cancellationToken: stop.Token);
        }

        Assert.True(summary.Interrupted);
        Assert.Equal(1, summary.Traced);
        Assert.Equal([0], await RoutingTraceReader.ReadFinishedSequencesAsync(path));

        await using (var writer = await RoutingTraceWriter.OpenAsync(path, TraceFormat.Parquet, metadata))
        {
            summary = await TraceRunner.RunAsync(model, sequences, writer, NullProgressSink.Instance, threadCount: 1);
        }

        Assert.False(summary.Interrupted);
        Assert.Equal((5, 1), (summary.Traced, summary.Skipped));
        Assert.Equal(Enumerable.Range(0, 6), (await RoutingTraceReader.ReadFinishedSequencesAsync(path)).Order());
        int rows = 0;
        await foreach (var row in RoutingTraceReader.ReadRowsAsync(path))
        {
            rows++;
        }

        Assert.Equal(sequences.Sum(s => s.Tokens.Count) * router.TopK * model.Blocks.Count(b => b.Moe is not null), rows);
    }

    [Fact]
    public void PromptFilesKeepLineIndicesAndReadTheNamedField()
    {
        using var temp = new TempDirectory();
        string text = temp.File("p.txt"), json = temp.File("p.JSONL");
        File.WriteAllText(text, "\uFEFFone\r\n\r\ntwo  \nthree");
        File.WriteAllText(json, "{\"t\": \"a\"}\n\n{\"t\": \"\"}\n{\"t\": \"b\", \"other\": 1}\n");

        Assert.Equal([new Prompt(0, 1, "one"), new Prompt(2, 3, "two  "), new Prompt(3, 4, "three")], PromptFile.Read(text));
        Assert.True(PromptFile.IsJsonLines(json));
        Assert.Equal([new Prompt(0, 1, "a"), new Prompt(3, 4, "b")], PromptFile.Read(json, "t"));
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
