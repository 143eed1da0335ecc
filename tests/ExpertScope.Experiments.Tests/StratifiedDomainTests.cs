using ExpertScope.Experiments.Analyses;
using ExpertScope.Experiments.Corpora;
using ExpertScope.Experiments.Lens;
using ExpertScope.Experiments.Runs;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>
/// The token-stratified domain-specificity test: routing that depends only on the token id makes no expert
/// domain-specific, however different the domains' word frequencies (the unstratified test is fooled); a planted
/// domain effect within token ids is found.
/// </summary>
public sealed class StratifiedDomainTests
{
    private const int Experts = 4;

    /// <summary>Records of one domain: each token draws its id from <paramref name="idWeights"/>, then its experts.</summary>
    private static List<RoutingRecord> Domain(Random random, double[] idWeights, int tokens, Func<int, int, bool> selects)
    {
        var records = new List<RoutingRecord>();
        for (int position = 0; position < tokens; position++)
        {
            double u = random.NextDouble() * idWeights.Sum();
            int id = 0;
            while (u > idWeights[id])
            {
                u -= idWeights[id];
                id++;
            }

            int rank = 0;
            for (int e = 0; e < Experts; e++)
            {
                if (selects(id, e))
                {
                    records.Add(new RoutingRecord(0, position, id, 0, rank++, e, 0.5f));
                }
            }
        }

        return records;
    }

    // Domain "low" mostly uses ids 0-2, domain "high" mostly ids 3-5; every id occurs in both.
    private static readonly double[] LowIds = [8, 6, 4, 1, 1, 1];
    private static readonly double[] HighIds = [1, 1, 1, 4, 6, 8];

    [Fact]
    public void RoutingByTokenIdAlone_HasNoDomainSpecificExpert_ThoughTheUnstratifiedTestFindsSome()
    {
        var random = new Random(20261206);

        // Expert e is chosen with a probability set by the token id alone (the same in both domains).
        bool Selects(int id, int e) => random.NextDouble() < (id + e) % Experts * 0.25 + 0.1;
        var low = Domain(random, LowIds, 3000, Selects);
        var high = Domain(random, HighIds, 3000, Selects);

        var stratified = TokenStratifiedSpecificity.Rank([("low", low), ("high", high)], Experts);
        var unstratified = DomainSpecificity.Rank([ExpertUsage.Tally("low", low, Experts), ExpertUsage.Tally("high", high, Experts)]);

        Assert.Contains(unstratified, s => s.QValue < 0.05);
        Assert.DoesNotContain(stratified, s => s.QValue < 0.05);
        Assert.All(stratified, s => Assert.Equal(6, s.InformativeStrata));
    }

    [Fact]
    public void PlantedDomainEffectWithinTokenIds_IsFound()
    {
        var random = new Random(7);
        bool Base(int id, int e) => random.NextDouble() < (id + e) % Experts * 0.2 + 0.1;

        // Domain "low" also sends 30% more of every token id to expert 3.
        var low = Domain(random, LowIds, 2000, (id, e) => Base(id, e) || (e == 3 && random.NextDouble() < 0.3));
        var high = Domain(random, HighIds, 2000, Base);

        var ranked = TokenStratifiedSpecificity.Rank([("low", low), ("high", high)], Experts);

        var top = Assert.Single(TokenStratifiedSpecificity.TopForDomain(ranked, "low", 10));
        Assert.Equal(3, top.Expert);
        Assert.True(top.CommonOddsRatio > 1);
        Assert.Empty(TokenStratifiedSpecificity.TopForDomain(ranked, "high", 10));
    }

    [Fact]
    public void StratifiedRow_EqualsMantelHaenszelOnItsTokenStrata()
    {
        var random = new Random(3);
        bool Selects(int id, int e) => random.NextDouble() < 0.2 + 0.1 * e + (e == 1 && id < 2 ? 0.2 : 0);
        var a = Domain(random, LowIds, 400, Selects);
        var b = Domain(random, HighIds, 400, Selects);
        var row = TokenStratifiedSpecificity.Rank([("a", a), ("b", b)], Experts).Single(r => r.Domain == "a" && r.Expert == 1);

        var strata = Enumerable.Range(0, LowIds.Length).Select(id =>
        {
            double Tokens(List<RoutingRecord> records) => records.Where(r => r.TokenId == id).Select(r => r.Position).Distinct().Count();
            double Selected(List<RoutingRecord> records) => records.Count(r => r.TokenId == id && r.Expert == 1);
            return new Statistics.Stratum2x2(Selected(a), Tokens(a) - Selected(a), Selected(b), Tokens(b) - Selected(b));
        });
        var expected = Statistics.MantelHaenszel.Test(strata);
        Assert.Equal(expected.Statistic, row.ChiSquared, 12);
        Assert.Equal(expected.PValue, row.PValue, 12);
        Assert.Equal(expected.CommonOddsRatio, row.CommonOddsRatio, 12);
    }

    [Fact]
    public void ModelWhoseRoutingDependsOnlyOnTheTokenId_ShowsNoStratifiedDomainExpert()
    {
        // Zeroed attention output projections: the residual stream, and so every router's input, is a function of
        // the token id alone. The two domains use different words, so usage differs by domain through word
        // frequency only.
        using var temp = new TempDirectory();
        string path = temp.File("token-only.gguf");
        File.Copy(GoldenData.GoldenPath("models", "olmoe", "model.gguf"), path);
        List<GgufTensorInfo> outputs;
        using (var file = GgufFile.Open(path))
        {
            outputs = [.. file.Tensors.Where(t => t.Name.EndsWith(".attn_output.weight", StringComparison.Ordinal))];
        }

        Assert.NotEmpty(outputs);
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            foreach (var tensor in outputs)
            {
                stream.Position = tensor.FileOffset;
                stream.Write(new byte[tensor.ByteSize]);
            }
        }

        using var model = MoeModel.Load(path);
        using var folder = RunFolder.OpenOrCreate(temp.File("domains"), new RunManifest { Kind = "domains" });
        static IReadOnlyList<CorpusDocument> Documents(string source, string text) =>
            [.. Enumerable.Range(0, 12).Select(i => new CorpusDocument(source, i + 1, text))];
        var domains = new List<KeyValuePair<string, IReadOnlyList<CorpusDocument>>>
        {
            new("river", Documents("river", "the river and the water and the river bank and the boat on the water")),
            new("money", Documents("money", "the money and the bank and the loan and the money in the bank account")),
        };

        var result = DomainRoutingAnalysis.Run(model, folder, domains, new DomainRoutingSettings { TokensPerDomain = 150, ThreadCount = 1 }, NullProgressSink.Instance);

        Assert.Contains(result.Specificity, s => s.QValue < 0.05 && s.LogRatio > 0);
        Assert.DoesNotContain(result.StratifiedSpecificity, s => s.QValue < 0.05);
        Assert.All(result.StratifiedSpecificity, s => Assert.Equal(0, s.InformativeStrata));
        Assert.NotEmpty(result.ExcludedTokenIds);
        if (model.Tokenizer.BosId is { } bos)
        {
            Assert.Contains(bos, result.ExcludedTokenIds);
            Assert.All(result.TokenTables, t => Assert.All(t.Layers.Values, byToken => Assert.False(byToken.ContainsKey(bos))));
        }

        DomainRoutingAnalysis.WriteOutputs(result, folder.Path, "token-only", new DomainRoutingSettings { TokensPerDomain = 150 });
        Assert.Single(File.ReadAllLines(folder.PathOf("specific_experts_stratified.csv")));
        Assert.True(File.ReadAllLines(folder.PathOf("token_counts.csv")).Length > 1);
    }
}
