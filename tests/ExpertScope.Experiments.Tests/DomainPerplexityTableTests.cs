using ExpertScope.Experiments.Evaluation;
using ExpertScope.Experiments.Lens;
using ExpertScope.Experiments.Runs;
using ExpertScope.Models;
using ExpertScope.Models.Routing;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>The per-domain perplexity table and the redundancy curve are corpus-level strided perplexities of the named routings.</summary>
public sealed class DomainPerplexityTableTests
{
    private const string River = "The river ran past the old mill and the water was cold. Boats drifted by the bank in the morning light.";
    private const string Money = "The bank raised its rates. Loans and deposits moved as the market watched the central bank decide.";

    [Fact]
    public void RowsAreStridedPerplexitiesOfTheWholeCorpusUnderEachRouting()
    {
        using var model = MoeModel.Load(GoldenData.GoldenPath("models", "olmoe", "model.gguf"));
        using var temp = new TempDirectory();
        using var folder = RunFolder.OpenOrCreate(temp.File("table"), new RunManifest { Kind = "perplexity-table" });
        var river = model.Tokenizer.Encode(River + " " + River);
        var money = model.Tokenizer.Encode(Money + " " + Money);
        var settings = new DomainPerplexitySettings { Context = 16, Stride = 8, ThreadCount = 1 };

        var rows = DomainPerplexityTable.Run(model, [("river", river), ("money", money)], settings, folder, NullProgressSink.Instance);

        double Strided(IReadOnlyList<int> tokens, params RouterIntervention[] interventions) =>
            Perplexity.Evaluate(model, tokens, 16, 8, new RunOptions { Interventions = interventions, ThreadCount = 1 }, "test").Value;
        var riverRows = rows.Where(r => r.Domain == "river").ToList();
        Assert.True(river.Count > 16, "the corpus must span several windows");
        Assert.Equal(Strided(river), riverRows.Single(r => r.Setting == "all-experts").Perplexity);
        Assert.Equal(
            Strided(river, new KeepOnlyTopExpert(LayerSelector.All) { Weight = TopExpertWeight.One }),
            riverRows.Single(r => r.Setting == "single-expert-all-layers").Perplexity);
        Assert.Equal(
            Strided(river, new KeepOnlyTopExpert(LayerSelector.Only(1)) { Weight = TopExpertWeight.One }),
            riverRows.Single(r => r.Setting == "single-expert-one-layer" && r.Layer == 1).Perplexity);

        // The redundancy curve: r = 0 is the full model, r = 1..k mask each token's r top-ranked experts.
        int k = model.Blocks[0].Moe!.Router.Config.TopK;
        var curve = riverRows.Where(r => r.DisabledTop is not null).OrderBy(r => r.DisabledTop).ToList();
        Assert.Equal(Enumerable.Range(0, k + 1), curve.Select(r => r.DisabledTop!.Value));
        Assert.Equal(Strided(river, new DisableTopRankedExperts(LayerSelector.All, 2)), curve[2].Perplexity);
        Assert.NotEqual(curve[0].Perplexity, curve[1].Perplexity);
        Assert.Equal(0, riverRows.Single(r => r.Setting == "all-experts").RelativeToFull);

        DomainPerplexityTable.WriteOutputs(rows, folder.Path, "olmoe", settings, 16, 8);
        Assert.Equal(1 + 2 * (k + 1), File.ReadAllLines(folder.PathOf("redundancy.csv")).Length);
        Assert.Equal(1 + 2 * (2 + model.Blocks.Count), File.ReadAllLines(folder.PathOf("perplexity_table.csv")).Length);

        // Every (domain, setting) is a journal unit: a second run reads them back.
        using var again = RunFolder.OpenOrCreate(temp.File("table"), new RunManifest { Kind = "perplexity-table" });
        Assert.Equal(rows, DomainPerplexityTable.Run(model, [("river", river), ("money", money)], settings, again, NullProgressSink.Instance));
    }
}
