using ExpertScope.Experiments.Corpora;
using ExpertScope.Experiments.Lens;
using ExpertScope.Experiments.Runs;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>
/// Routing analyses on a model whose routers are zeroed: every logit is 0, the gate is uniform, and top-k ties go to
/// the lower index, so every token of every layer goes to experts 0..k-1 with equal weights. The expected numbers
/// follow by hand.
/// </summary>
public sealed class LensRoutingTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly MoeModel _model;

    public LensRoutingTests()
    {
        string path = _temp.File("flat-router.gguf");
        File.Copy(GoldenData.GoldenPath("models", "olmoe", "model.gguf"), path);
        List<GgufTensorInfo> routers;
        using (var file = GgufFile.Open(path))
        {
            routers = [.. file.Tensors.Where(t => t.Name.EndsWith(".ffn_gate_inp.weight", StringComparison.Ordinal))];
        }

        Assert.NotEmpty(routers);
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            foreach (var router in routers)
            {
                // All-zero bytes are zero weights in every GGML type (a zero scale for quantized blocks).
                stream.Position = router.FileOffset;
                stream.Write(new byte[router.ByteSize]);
            }
        }

        _model = MoeModel.Load(path);
    }

    public void Dispose()
    {
        _model.Dispose();
        _temp.Dispose();
    }

    private static IReadOnlyList<CorpusDocument> Documents(string source, Func<int, string> text) =>
        [.. Enumerable.Range(0, 10).Select(i => new CorpusDocument(source, i + 1, text(i)))];

    [Fact]
    public void EveryDomainUsesExactlyTheFirstKExpertsEqually()
    {
        using var folder = RunFolder.OpenOrCreate(_temp.File("domains"), new RunManifest { Kind = "domains" });
        var domains = new List<KeyValuePair<string, IReadOnlyList<CorpusDocument>>>
        {
            new("prose", Documents("prose", i => $"The river ran past bank number {i}, and she watched the water.")),
            new("code", Documents("code", i => $"def f{i}(x):\n    return x * {i}")),
        };
        int k = _model.Blocks[0].Moe!.Router.Config.TopK;

        var result = DomainRoutingAnalysis.Run(_model, folder, domains, new DomainRoutingSettings { TokensPerDomain = 60 }, NullProgressSink.Instance);

        Assert.Equal(4, k);
        foreach (var table in result.Tables)
        {
            foreach (int layer in table.Layers)
            {
                var shares = table.Shares(layer, Analyses.UsageMeasure.Count);
                Assert.Equal([0.25, 0.25, 0.25, 0.25, 0, 0, 0, 0], shares);
                Assert.All(table.Counts(layer).Take(k), c => Assert.Equal(table.Tokens(layer), c));
            }
        }

        Assert.All(result.Summaries.Where(s => s.Measure != Analyses.UsageMeasure.TopOne), s => Assert.Equal((2, 4, 4, 2.0), (s.ExpertsFor50, s.ExpertsFor80, s.ExpertsFor90, s.EntropyBits)));

        // On top-1 selections every token names expert 0, so one expert covers everything: k selections hide that.
        Assert.All(result.Summaries.Where(s => s.Measure == Analyses.UsageMeasure.TopOne), s => Assert.Equal((1, 1, 1, 0.0), (s.ExpertsFor50, s.ExpertsFor80, s.ExpertsFor90, s.EntropyBits)));
        Assert.All(result.Divergences, m => Assert.Equal(0, m.Bits[0, 1], 12));
        Assert.DoesNotContain(result.Specificity, s => s.QValue < 0.05);

        DomainRoutingAnalysis.WriteOutputs(result, folder.Path, "flat-router", new DomainRoutingSettings { TokensPerDomain = 60 });
        Assert.True(File.Exists(folder.PathOf("report.html")));
        Assert.Single(File.ReadAllLines(folder.PathOf("specific_experts.csv")));
    }

    [Fact]
    public void TheTokenIdDecidesNothingWhenEveryTokenGoesToTheSameExpert()
    {
        using var folder = RunFolder.OpenOrCreate(_temp.File("token-id"), new RunManifest { Kind = "token-id" });
        var sequences = Enumerable.Range(0, 6).Select(i => _model.Tokenizer.Encode($"the bank of the river {i}")).ToList();

        var result = TokenIdAnalysis.Run(_model, folder, [new RoutingGroup("input", sequences)], 3, NullProgressSink.Instance, null);

        Assert.Equal(_model.Blocks.Count, result.Layers.Count);
        Assert.All(result.Layers, l =>
        {
            Assert.Equal(1, l.Top1Consistency);
            Assert.Equal(1, l.TopKOverlap);
            Assert.Equal(0, l.ExpertEntropy);
            Assert.Equal(0, l.MutualInformation);
        });
        Assert.All(result.Profiles, p =>
        {
            Assert.Equal(0, p.ModalTop1);
            Assert.Equal([0, 1, 2, 3], p.ModalTopK);
        });
        Assert.All(result.ByPosition, p => Assert.Equal(1, p.Top1Consistency));

        // BOS (one per sequence, six occurrences here) is left out by default and counted on request.
        if (_model.Tokenizer.AddBos && _model.Tokenizer.BosId is { } bos)
        {
            Assert.Contains(bos, result.ExcludedTokenIds);
            Assert.DoesNotContain(result.Profiles, p => p.TokenId == bos);
            using var withSpecial = RunFolder.OpenOrCreate(_temp.File("token-id-special"), new RunManifest { Kind = "token-id" });
            var counted = TokenIdAnalysis.Run(_model, withSpecial, [new RoutingGroup("input", sequences)], 3, NullProgressSink.Instance, null, includeSpecialTokens: true);
            Assert.Contains(counted.Profiles, p => p.TokenId == bos);
            Assert.Empty(counted.ExcludedTokenIds);
        }
    }
}
