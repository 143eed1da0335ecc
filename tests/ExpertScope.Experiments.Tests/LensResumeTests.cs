using ExpertScope.Experiments.Lens;
using ExpertScope.Experiments.Runs;
using ExpertScope.Models;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

public class LensResumeTests
{
    /// <summary>Cancels the run after a number of finished units, as Ctrl+C would between units.</summary>
    private sealed class CancelAfter(int units, CancellationTokenSource source) : IProgressSink, IProgressTask
    {
        private int _done;

        public IProgressTask StartTask(string description, long? total, long alreadyDone = 0, string unit = "items") => this;

        public void Advance(long count = 1)
        {
            if (++_done >= units)
            {
                source.Cancel();
            }
        }

        public void Complete()
        {
        }

        public void Dispose()
        {
        }
    }

    [Fact]
    public void AnInterruptedSingleExpertRunResumesToTheResultsOfAnUninterruptedOne()
    {
        using var model = MoeModel.Load(GoldenData.GoldenPath("models", "qwen2moe", "model.gguf"));
        using var temp = new TempDirectory();
        var tokens = model.Tokenizer.Encode("The bank by the river bank was closed.");
        var settings = new SingleExpertSettings { SharedOff = true };
        var manifest = new RunManifest { Kind = "single-expert" };

        using (var fresh = RunFolder.OpenOrCreate(temp.File("fresh"), manifest))
        using (var interrupted = RunFolder.OpenOrCreate(temp.File("resumed"), manifest))
        using (var stop = new CancellationTokenSource())
        {
            var expected = SingleExpertAnalysis.Run(model, tokens, settings, fresh, NullProgressSink.Instance);
            Assert.Throws<OperationCanceledException>(() => SingleExpertAnalysis.Run(model, tokens, settings, interrupted, new CancelAfter(3, stop), stop.Token));
            Assert.Equal(3, interrupted.FinishedUnits.Count);

            using var resumed = RunFolder.OpenOrCreate(temp.File("resumed"), manifest);
            var actual = SingleExpertAnalysis.Run(model, tokens, settings, resumed, NullProgressSink.Instance);

            Assert.Equal(expected.Perplexities, actual.Perplexities);
            Assert.Equal(expected.Cosines, actual.Cosines);
        }
    }

    [Fact]
    public void AnInterruptedRoutingCollectionKeepsItsFinishedPartsAndCompletesTheRest()
    {
        using var model = MoeModel.Load(GoldenData.GoldenPath("models", "olmoe", "model.gguf"));
        using var temp = new TempDirectory();
        var sequences = Enumerable.Range(0, RoutingCollector.PartSize + 3).Select(i => model.Tokenizer.Encode($"bank {i}")).ToList();
        RoutingGroup[] groups = [new("text", sequences)];
        var manifest = new RunManifest { Kind = "routing" };
        using var stop = new CancellationTokenSource();
        using (var folder = RunFolder.OpenOrCreate(temp.File("run"), manifest))
        {
            // One progress advance per sequence: cancel during the second part, after the first was saved.
            Assert.Throws<OperationCanceledException>(() => RoutingCollector.Collect(model, folder, groups, new CancelAfter(RoutingCollector.PartSize + 1, stop), null, stop.Token));
            Assert.Equal([RoutingCollector.UnitOf("text", 0)], folder.FinishedUnits);
        }

        using var resumed = RunFolder.OpenOrCreate(temp.File("run"), manifest);
        var records = RoutingCollector.Collect(model, resumed, groups, NullProgressSink.Instance, null)[0].Records;
        using var freshFolder = RunFolder.OpenOrCreate(temp.File("fresh"), manifest);
        Assert.Equal(RoutingCollector.Collect(model, freshFolder, groups, NullProgressSink.Instance, null)[0].Records, records);
    }
}
