using System.Collections.Immutable;
using ExpertScope.Core;
using ExpertScope.Experiments.Evaluation;
using ExpertScope.Experiments.Lens;
using ExpertScope.Experiments.Runs;
using ExpertScope.Models;
using ExpertScope.Models.Routing;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

public class LensTests
{
    private const string Text = "The bank by the river bank was closed. She sat on the bank and watched the water.";

    private static MoeModel Load(string name, IReadOnlyDictionary<string, object>? overrides = null) =>
        MoeModel.Load(GoldenData.GoldenPath("models", name, "model.gguf"), new ModelLoadOptions { MetadataOverrides = overrides ?? new Dictionary<string, object>() });

    private static RunFolder Folder(TempDirectory temp, string kind) => RunFolder.OpenOrCreate(temp.File(kind), new RunManifest { Kind = kind });

    [Theory]
    [InlineData("olmoe")]
    [InlineData("qwen2moe")]
    [InlineData("mixtral")]
    public void TheResidualStreamAfterTheLastBlockReadThroughTheLensIsTheModelsLogits(string name)
    {
        using var model = Load(name);
        var tokens = model.Tokenizer.Encode(Text).ToArray();
        var recorder = new ActivationRecorder([HookKind.LayerOutput]);
        var logits = model.Run(tokens, new RunOptions { Observers = [recorder] });
        int last = model.Blocks.Max(b => b.Layer);

        var lens = new LensProjection(model, threadCount: 1).Project(recorder.Get(new HookSite(HookKind.LayerOutput, last)).Values, tokens.Length);

        Assert.Equal(logits.Values, lens);
    }

    [Fact]
    public void TheLensOfTheLastBlockHasNoDivergenceFromTheFinalDistribution()
    {
        using var model = Load("olmoe");
        using var temp = new TempDirectory();
        using var folder = Folder(temp, "lens");
        var tokens = model.Tokenizer.Encode(Text);

        var result = LogitLensAnalysis.Run(model, tokens, ExpertOutputScale.Unweighted, 3, folder, NullProgressSink.Instance, null);

        int last = model.Blocks.Max(b => b.Layer);
        var final = result.Summaries.Single(s => s.Layer == last && s.Source == "l_out");
        Assert.Equal(0, final.KullbackLeiblerToFinal, 12);
        Assert.Equal(1, final.TopOneAgreement);
        int k = model.Blocks[0].Moe!.Router.Config.TopK;
        Assert.Equal(model.Blocks.Count * (2 + k) * tokens.Count, result.Readouts.Count);
        Assert.All(result.Readouts, r => Assert.True(double.IsFinite(r.EntropyBits) && r.EntropyBits >= 0 && r.TopTokens.Count == 3));
    }

    [Fact]
    public void ExtendedLens_MixtureReadoutOfTheLastBlockIsTheFinalDistribution_AndBareIsNot()
    {
        // OLMoE has no shared experts, so ffn_inp + ffn_moe_out is l_out: the extended readout of the last block's
        // mixture is the model's own distribution; the bare mixture alone is something else.
        using var model = Load("olmoe");
        using var temp = new TempDirectory();
        var tokens = model.Tokenizer.Encode(Text);
        int last = model.Blocks.Max(b => b.Layer);

        LogitLensResult Lens(LensReadoutKind kind, string name)
        {
            using var folder = Folder(temp, name);
            return LogitLensAnalysis.Run(model, tokens, ExpertOutputScale.Weighted, 3, folder, NullProgressSink.Instance, 1, default, kind);
        }

        var extended = Lens(LensReadoutKind.Extended, "extended").Summaries.Single(s => s.Layer == last && s.Source == "ffn_moe_out");
        var bare = Lens(LensReadoutKind.Bare, "bare").Summaries.Single(s => s.Layer == last && s.Source == "ffn_moe_out");
        Assert.Equal(0, extended.KullbackLeiblerToFinal);
        Assert.Equal(1, extended.TopOneAgreement);
        Assert.True(bare.KullbackLeiblerToFinal > 0.01);
    }

    [Fact]
    public void LensKullbackLeibler_IsFinalGivenReadout()
    {
        using var model = Load("olmoe");
        using var temp = new TempDirectory();
        using var folder = Folder(temp, "lens");
        var tokens = model.Tokenizer.Encode(Text);
        var recorder = new ActivationRecorder([HookKind.LayerOutput]);
        var final = model.Run([.. tokens], new RunOptions { Observers = [recorder], ThreadCount = 1 }).Values;
        var readout = new LensProjection(model, 1).Project(recorder.Get(new HookSite(HookKind.LayerOutput, 0)).Values, tokens.Count);
        int vocabulary = readout.Length / tokens.Count;

        var result = LogitLensAnalysis.Run(model, tokens, ExpertOutputScale.Weighted, 3, folder, NullProgressSink.Instance, 1);

        var first = result.Readouts.Single(r => r.Layer == 0 && r.Source == "l_out" && r.Position == 2);
        var finalRow = final.AsSpan(2 * vocabulary, vocabulary);
        var readoutRow = readout.AsSpan(2 * vocabulary, vocabulary);
        Assert.Equal(Analyses.LogitLens.KullbackLeibler(finalRow, readoutRow), first.KullbackLeiblerToFinal);
        Assert.NotEqual(Analyses.LogitLens.KullbackLeibler(readoutRow, finalRow), first.KullbackLeiblerToFinal);
    }

    [Fact]
    public void WithOneExpertOfWeightOneTheExpertReadoutIsTheMixtureReadout()
    {
        // qwen3moe normalises its top-k weights, so with k = 1 the single expert's weight is 1 and ffn_moe_out is its output.
        using var model = Load("qwen3moe", new Dictionary<string, object> { ["qwen3moe.expert_used_count"] = 1L });
        using var temp = new TempDirectory();
        using var folder = Folder(temp, "lens");
        var tokens = model.Tokenizer.Encode(Text);

        var result = LogitLensAnalysis.Run(model, tokens, ExpertOutputScale.Unweighted, 5, folder, NullProgressSink.Instance, 1);

        foreach (var expert in result.Readouts.Where(r => r.Source == "expert"))
        {
            var mixture = result.Readouts.Single(r => r.Source == "ffn_moe_out" && r.Layer == expert.Layer && r.Position == expert.Position);
            Assert.Equal(mixture.TopTokens, expert.TopTokens);
            Assert.Equal(mixture.EntropyBits, expert.EntropyBits);
        }
    }

    [Fact]
    public void ALensRunResumedFromItsJournalGivesTheSameReadouts()
    {
        using var model = Load("olmoe");
        using var temp = new TempDirectory();
        var tokens = model.Tokenizer.Encode(Text);
        LogitLensResult first;
        using (var folder = Folder(temp, "lens"))
        {
            first = LogitLensAnalysis.Run(model, tokens, ExpertOutputScale.Weighted, 2, folder, NullProgressSink.Instance, null);
        }

        using var again = Folder(temp, "lens");
        Assert.Equal(model.Blocks.Count, again.FinishedUnits.Count);
        var second = LogitLensAnalysis.Run(model, tokens, ExpertOutputScale.Weighted, 2, again, NullProgressSink.Instance, null);
        Assert.Equal(first.Summaries, second.Summaries);
    }

    [Fact]
    public void WeightOne_OnANormalisingRouter_HasExactlyTheEnginesTopKOnePerplexity()
    {
        using var model = Load("qwen3moe");
        Assert.True(model.Blocks.First(b => b.Moe is not null).Moe!.Router.Config.NormalizeWeights);
        using var temp = new TempDirectory();
        using var folder = Folder(temp, "single");
        var tokens = model.Tokenizer.Encode(Text);

        var result = SingleExpertAnalysis.Run(model, tokens, new SingleExpertSettings(), folder, NullProgressSink.Instance);

        var engine = Perplexity.Evaluate(model, tokens, tokens.Count, null, new RunOptions { Interventions = [new OverrideTopK(LayerSelector.All, 1)] }, "text");
        var single = result.Perplexities.Single(p => p.Setting == "single-expert-all-layers");
        Assert.Equal(engine.Value, single.Perplexity);
        Assert.Equal(engine.NegativeLogLikelihood, single.NegativeLogLikelihood);
        Assert.Equal(engine.Value, result.Perplexities.Single(p => p.Setting == "top-m" && p.TopM == 1).Perplexity);
        var full = Perplexity.Evaluate(model, tokens, tokens.Count, null, RunOptions.Default, "text");
        Assert.Equal(full.Value, result.Perplexities.Single(p => p.Setting == "all-experts").Perplexity);
        Assert.Equal(full.Value, result.Perplexities.Single(p => p.Setting == "top-m" && p.TopM == result.TopK).Perplexity);
    }

    [Fact]
    public void WeightOne_OnARouterThatDoesNotNormalise_DiffersFromRaw()
    {
        // OLMoE does not renormalise its top-k weights, so k = 1 routing keeps the top expert's own probability:
        // the paper's weight-1 single expert is a different model, which only the explicit weight 1 gives.
        using var model = Load("olmoe");
        Assert.False(model.Blocks.First(b => b.Moe is not null).Moe!.Router.Config.NormalizeWeights);
        using var temp = new TempDirectory();
        var tokens = model.Tokenizer.Encode(Text);
        double Single(SingleExpertWeight weight, string name)
        {
            using var folder = Folder(temp, name);
            var result = SingleExpertAnalysis.Run(model, tokens, new SingleExpertSettings { Weight = weight }, folder, NullProgressSink.Instance);
            return result.Perplexities.Single(p => p.Setting == "single-expert-all-layers").Perplexity;
        }

        double one = Single(SingleExpertWeight.Renormalized, "one");
        double raw = Single(SingleExpertWeight.Raw, "raw");
        double mass = Single(SingleExpertWeight.Mass, "mass");
        double topKOne = Perplexity.Evaluate(model, tokens, tokens.Count, null, new RunOptions { Interventions = [new OverrideTopK(LayerSelector.All, 1)] }, "text").Value;
        double weightOne = Perplexity.Evaluate(model, tokens, tokens.Count, null, new RunOptions { Interventions = [new KeepOnlyTopExpert(LayerSelector.All) { Weight = TopExpertWeight.One }] }, "text").Value;

        Assert.NotEqual(raw, one);
        Assert.NotEqual(mass, one);
        Assert.NotEqual(mass, raw);
        Assert.Equal(weightOne, one);
        Assert.Equal(topKOne, raw);
    }

    [Theory]
    [InlineData(SingleExpertWeight.Renormalized)]
    [InlineData(SingleExpertWeight.Raw)]
    public void WithKEqualToOneTheSingleExpertIsTheMixture(SingleExpertWeight weight)
    {
        using var model = Load("qwen3moe", new Dictionary<string, object> { ["qwen3moe.expert_used_count"] = 1L });
        using var temp = new TempDirectory();
        using var folder = Folder(temp, "single");
        var tokens = model.Tokenizer.Encode(Text);

        var result = SingleExpertAnalysis.Run(model, tokens, new SingleExpertSettings { Weight = weight }, folder, NullProgressSink.Instance);

        Assert.Equal(2 * model.Blocks.Count, result.Cosines.Count);
        Assert.All(result.Cosines, c =>
        {
            Assert.Equal(1, c.MoeOutput, 12);
            Assert.Equal(1, c.FeedForwardOutput, 12);
            Assert.Equal(1, c.Residual, 12);
            Assert.Equal(tokens.Count, c.Tokens);
        });
        double full = result.Perplexities.Single(p => p.Setting == "all-experts").Perplexity;
        Assert.All(result.Perplexities, p => Assert.Equal(full, p.Perplexity));
    }

    [Fact]
    public void InterveningInOneBlockLeavesEveryEarlierBlockBitIdentical()
    {
        using var model = Load("olmoe");
        var tokens = model.Tokenizer.Encode(Text).ToArray();
        var baseline = new ActivationRecorder([HookKind.LayerOutput, HookKind.FeedForwardInput]);
        var single = new ActivationRecorder([HookKind.LayerOutput, HookKind.FeedForwardInput]);
        model.Run(tokens, new RunOptions { Observers = [baseline], Logits = LogitsSelection.None });
        model.Run(tokens, new RunOptions { Observers = [single], Logits = LogitsSelection.None, Interventions = [new OverrideTopK(LayerSelector.Only(1), 1)] });

        Assert.Equal(baseline.Get(new HookSite(HookKind.LayerOutput, 0)).Values, single.Get(new HookSite(HookKind.LayerOutput, 0)).Values);
        Assert.Equal(baseline.Get(new HookSite(HookKind.FeedForwardInput, 1)).Values, single.Get(new HookSite(HookKind.FeedForwardInput, 1)).Values);
        Assert.NotEqual(baseline.Get(new HookSite(HookKind.LayerOutput, 1)).Values, single.Get(new HookSite(HookKind.LayerOutput, 1)).Values);
    }

    [Fact]
    public void DisablingSharedExpertsLeavesTheRoutedMixtureAsTheFeedForwardOutput()
    {
        using var model = Load("qwen2moe");
        Assert.All(model.Blocks, b => Assert.NotNull(b.Moe?.Shared));
        var tokens = model.Tokenizer.Encode(Text).ToArray();
        HookKind[] kinds = [HookKind.ExpertOutput, HookKind.FeedForwardOutput, HookKind.SharedExpertOutput];
        var on = new ActivationRecorder(kinds, routing: true);
        var off = new ActivationRecorder(kinds, routing: true);
        model.Run(tokens, new RunOptions { Observers = [on], Logits = LogitsSelection.None });
        model.Run(tokens, new RunOptions { Observers = [off], Logits = LogitsSelection.None, Interventions = [new DisableSharedExperts(LayerSelector.Only(1))] });

        // Block 0 is untouched; block 1 routes the same tokens the same way but adds no shared expert.
        Assert.Equal(on.Get(new HookSite(HookKind.FeedForwardOutput, 0)).Values, off.Get(new HookSite(HookKind.FeedForwardOutput, 0)).Values);
        Assert.True(off.Has(new HookSite(HookKind.SharedExpertOutput, 0)));
        Assert.False(off.Has(new HookSite(HookKind.SharedExpertOutput, 1)));
        Assert.Equal(on.Routes[1].Experts, off.Routes[1].Experts);
        Assert.Equal(on.Routes[1].Weights, off.Routes[1].Weights);
        Assert.Equal(off.Get(new HookSite(HookKind.ExpertOutput, 1)).Values, off.Get(new HookSite(HookKind.FeedForwardOutput, 1)).Values);
        Assert.NotEqual(on.Get(new HookSite(HookKind.ExpertOutput, 1)).Values, on.Get(new HookSite(HookKind.FeedForwardOutput, 1)).Values);
    }

    [Fact]
    public void SingleExpertWithSharedExpertsOffNeedsAModelThatHasThem()
    {
        using var model = Load("olmoe");
        using var temp = new TempDirectory();
        using var folder = Folder(temp, "single");
        var tokens = model.Tokenizer.Encode(Text);

        Assert.Throws<ExpertScopeException>(() => SingleExpertAnalysis.Run(
            model, tokens, new SingleExpertSettings { SharedOn = false, SharedOff = true }, folder, NullProgressSink.Instance));
    }

    [Fact]
    public void RoutingIsCollectedOncePerTokenLayerAndRankAndReadBackExactlyOnResume()
    {
        using var model = Load("olmoe");
        using var temp = new TempDirectory();
        var sequences = new[] { "The bank was closed.", "She sat on the bank.", "Water." }.Select(t => model.Tokenizer.Encode(t)).ToArray();
        var groups = new[] { new RoutingGroup("a", sequences[..2]), new RoutingGroup("b/c", sequences[2..]) };
        int k = model.Blocks[0].Moe!.Router.Config.TopK;

        IReadOnlyList<(string Name, IReadOnlyList<Analyses.RoutingRecord> Records)> first;
        using (var folder = Folder(temp, "routing"))
        {
            first = RoutingCollector.Collect(model, folder, groups, NullProgressSink.Instance, null);
        }

        Assert.Equal((sequences[0].Count + sequences[1].Count) * model.Blocks.Count * k, first[0].Records.Count);
        Assert.Equal(sequences[2].Count * model.Blocks.Count * k, first[1].Records.Count);
        var trace = new RoutingTrace();
        model.Run([.. sequences[2]], new RunOptions { Observers = [trace], Logits = LogitsSelection.None });
        foreach (var record in first[1].Records)
        {
            Assert.Equal(trace.ExpertsAt(record.Layer, record.Position)[record.Rank], record.Expert);
            Assert.Equal(trace.WeightsAt(record.Layer, record.Position)[record.Rank], record.Weight);
            Assert.Equal(sequences[2][record.Position], record.TokenId);
        }

        using var again = Folder(temp, "routing");
        Assert.Equal(2, again.FinishedUnits.Count);
        var second = RoutingCollector.Collect(model, again, groups, NullProgressSink.Instance, null);
        Assert.Equal(first[0].Records, second[0].Records);
        Assert.Equal(first[1].Records, second[1].Records);
    }
}
