using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;

namespace ExpertScope.Models.Tests;

/// <summary>
/// Checks every architecture's golden case shares: thread-count invariance of every site, the routing and the logits,
/// the tokenizer's ids, and that the committed model is what the synthetic writer writes.
/// </summary>
internal static class ArchitectureTestRuns
{
    /// <summary>Runs each prompt with one and two threads; every emitted site and the logits must be bit-identical.</summary>
    public static void AssertThreadCountInvariant(GoldenCase golden)
    {
        using var model = MoeModel.Load(golden.ModelPath, golden.LoadOptions);
        foreach (var prompt in golden.Prompts)
        {
            var one = new RecordingObserver();
            var two = new RecordingObserver();
            var logitsOne = model.Run(prompt.Tokens, new RunOptions { Observers = [one], ThreadCount = 1 });
            var logitsTwo = model.Run(prompt.Tokens, new RunOptions { Observers = [two], ThreadCount = 2 });
            Assert.Equal(logitsOne.Values, logitsTwo.Values);
            Assert.Equal(one.Order, two.Order);
            foreach (var (site, values) in one.Activations)
            {
                Assert.True(values.AsSpan().SequenceEqual(two.Activations[site]), $"{golden.Name} '{prompt.Text}': site {site} differs between 1 and 2 threads.");
            }

            foreach (var (layer, routing) in one.Routing)
            {
                Assert.Equal(routing.Experts, two.Routing[layer].Experts);
                Assert.Equal(routing.Weights, two.Routing[layer].Weights);
            }
        }
    }

    /// <summary>The model's own tokenizer must turn every prompt's text into the token ids llama.cpp used.</summary>
    public static void AssertTokenizerGivesCaseIds(GoldenCase golden)
    {
        using var model = MoeModel.Load(golden.ModelPath, golden.LoadOptions);
        Assert.All(golden.Prompts, p => Assert.Equal(p.Tokens, model.Tokenizer.Encode(p.Text).ToArray()));
    }

    /// <summary>Writes <paramref name="spec"/> with the synthetic writer; its bytes must be those of the repository case's model.gguf.</summary>
    public static void AssertWriterReproducesCaseModel(SyntheticModelSpec spec, string caseName)
    {
        using var temp = new TempDirectory();
        SyntheticModelWriter.Write(spec, temp.File("model.gguf"));
        Assert.Equal(File.ReadAllBytes(GoldenData.RepositoryGoldenPath(caseName, "model.gguf")), File.ReadAllBytes(temp.File("model.gguf")));
    }
}
