using ExpertScope.Experiments.Pruning;
using ExpertScope.Experiments.RoutingSources;
using ExpertScope.Experiments.Steering;
using ExpertScope.Models;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>
/// Behaviour-expert discovery from an ids-only routing source (what vLLM and SGLang return), on the model with a
/// planted behaviour expert: the counts, p-values and ranking equal the engine's, the planted expert is found, and the
/// mean weights are NaN (not available) rather than zeros.
/// </summary>
public sealed class SteeringIdsOnlyTests
{
    [Theory]
    [InlineData(TokenScope.AllTokens)]
    [InlineData(TokenScope.LastToken)]
    public void IdsOnlyDiscoveryHasTheEnginesCountsAndNoMeanWeights(TokenScope scope)
    {
        using var temp = new TempDirectory();
        PlantedModels.WriteTokenExpertModel(temp.Path, layer: 1, expert: 6);
        using var model = MoeModel.Load(temp.File("planted.gguf"));
        var engine = BehaviourDiscovery.Compare(
            BehaviourDiscovery.Profile(model, PlantedModels.Positive, scope, threads: 1),
            BehaviourDiscovery.Profile(model, PlantedModels.Negative, scope, threads: 1));
        var source = new IdsOnlyRoutingSource(new EngineRoutingSource(model, threads: 1, includeProbabilities: false));
        var ids = BehaviourDiscovery.Compare(
            BehaviourDiscovery.Profile(model, source, PlantedModels.Positive, scope, UnitJournal.None, "positive"),
            BehaviourDiscovery.Profile(model, source, PlantedModels.Negative, scope, UnitJournal.None, "negative"),
            weightsAvailable: false);

        Assert.Equal(
            engine.Select(r => (r.Rank, r.Layer, r.Expert, r.PositiveSelections, r.PositiveTokens, r.NegativeSelections, r.NegativeTokens, r.PValue, r.AdjustedPValue)),
            ids.Select(r => (r.Rank, r.Layer, r.Expert, r.PositiveSelections, r.PositiveTokens, r.NegativeSelections, r.NegativeTokens, r.PValue, r.AdjustedPValue)));
        Assert.All(engine, r => Assert.True(double.IsFinite(r.PositiveMeanWeight) && double.IsFinite(r.NegativeMeanWeight)));
        Assert.All(ids, r => Assert.True(double.IsNaN(r.PositiveMeanWeight) && double.IsNaN(r.NegativeMeanWeight)));
        if (scope == TokenScope.AllTokens)
        {
            var planted = Assert.Single(ids, r => r.Layer == 1 && r.Expert == 6);
            Assert.Equal("positive", planted.Direction);
            Assert.True(planted.AdjustedPValue < 0.05);
        }

        BehaviourDiscovery.WriteOutputs(temp.File("out"), ids, new Dictionary<string, string> { ["model"] = "planted" }, idsOnlySource: "vllm");
        Assert.Equal(ids.Where(r => r.Direction == "positive").Select(r => new LayerExpert(r.Layer, r.Expert)), SteeringEvaluation.ReadRanked(temp.File("out/ranked.csv")));
        Assert.Contains("gives expert ids only", File.ReadAllText(temp.File("out/report.html")), StringComparison.Ordinal);
    }
}
