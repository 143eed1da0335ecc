using System.Runtime.InteropServices;
using ExpertScope.Core;
using ExpertScope.Experiments.Pruning;
using ExpertScope.Experiments.Steering;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>Copies of synthetic models with hand-edited F32 tensors, so tests know the right answer by construction.</summary>
internal static class PlantedModels
{
    /// <summary>Hidden dimension carrying the planted token's spike.</summary>
    public const int SpikeDimension = 5;

    /// <summary>Hidden dimension that every other token fills, which the planted router row penalises.</summary>
    public const int OffsetDimension = 9;

    public static readonly string[] Positive = ["zebra zone zoo", "the lazy zebra zips", "a zig zag zoo", "zoom in on the zebra", "zany zebras zigzag"];

    public static readonly string[] Negative = ["the cat sat on the mat", "a quiet morning", "she reads books", "it was a warm day"];

    /// <summary>Copies <paramref name="source"/> to <paramref name="target"/>, passing every F32 tensor's values to <paramref name="edit"/>.</summary>
    public static void Rewrite(string source, string target, Action<string, float[]> edit)
    {
        using var file = GgufFile.Open(source);
        using var writer = GgufWriter.Create(target);
        foreach (var (key, value) in file.Metadata)
        {
            writer.SetMetadata(key, value);
        }

        foreach (var tensor in file.Tensors)
        {
            writer.AddTensor(tensor.Name, tensor.Type, tensor.Dimensions.ToArray());
        }

        foreach (var tensor in file.Tensors)
        {
            if (tensor.Type == GgmlType.F32)
            {
                var values = file.GetFloat32(tensor).ToArray();
                edit(tensor.Name, values);
                writer.WriteTensorData(MemoryMarshal.AsBytes(values.AsSpan()));
            }
            else
            {
                writer.WriteTensorData(file.GetTensorData(tensor));
            }
        }

        writer.Finish();
    }

    /// <summary>A token present in every positive prompt and in no negative prompt (by the model's tokenizer).</summary>
    public static int MarkerToken(MoeModel model)
    {
        var positive = Positive.Select(p => model.Tokenizer.Encode(p).ToHashSet()).ToList();
        var negative = Negative.SelectMany(p => model.Tokenizer.Encode(p)).ToHashSet();
        return positive.Aggregate((a, b) => [.. a.Intersect(b)]).Except(negative).Order().First();
    }

    /// <summary>
    /// Writes tiny-olmoe with expert <paramref name="expert"/> of block <paramref name="layer"/> planted to fire exactly
    /// on the marker token: the marker's embedding gets a spike, every other token a constant offset, and the expert's
    /// router row reads +spike −offset (so its logit is about +55 on the marker and about −130 elsewhere).
    /// </summary>
    public static int WriteTokenExpertModel(string folder, int layer, int expert)
    {
        string plain = Path.Combine(folder, "plain.gguf");
        SyntheticModelWriter.Write(SyntheticPresets.Get("tiny-olmoe"), plain);
        int marker;
        int width;
        using (var model = MoeModel.Load(plain))
        {
            marker = MarkerToken(model);
            width = model.Hyperparameters.EmbeddingLength;
        }

        Rewrite(plain, Path.Combine(folder, "planted.gguf"), (name, values) =>
        {
            if (name == "token_embd.weight")
            {
                for (int row = 0; row < values.Length / width; row++)
                {
                    values[row * width + OffsetDimension] = 3f;
                    values[row * width + SpikeDimension] = row == marker ? 30f : 0f;
                }
            }
            else if (name == $"blk.{layer}.ffn_gate_inp.weight")
            {
                var row = values.AsSpan(expert * width, width);
                row.Clear();
                row[SpikeDimension] = 10f;
                row[OffsetDimension] = -30f;
            }
        });
        return marker;
    }
}

/// <summary>Behaviour-expert discovery and steering evaluation on a model with a planted behaviour expert.</summary>
public sealed class SteeringTests
{
    [Fact]
    public void Discovery_FindsThePlantedExpert_WithExactCounts()
    {
        using var temp = new TempDirectory();
        int marker = PlantedModels.WriteTokenExpertModel(temp.Path, layer: 1, expert: 6);
        using var model = MoeModel.Load(temp.File("planted.gguf"));
        var positive = BehaviourDiscovery.Profile(model, PlantedModels.Positive, TokenScope.AllTokens, threads: 1);
        var negative = BehaviourDiscovery.Profile(model, PlantedModels.Negative, TokenScope.AllTokens, threads: 1);
        var ranked = BehaviourDiscovery.Compare(positive, negative);

        long markers = PlantedModels.Positive.Sum(p => model.Tokenizer.Encode(p).Count(t => t == marker));
        long tokens = PlantedModels.Positive.Sum(p => model.Tokenizer.Encode(p).Count);
        // Other experts also react to the marker's embedding, but only the planted one fires on the marker and nowhere else.
        var top = Assert.Single(ranked, r => r.NegativeSelections == 0 && r.PositiveSelections == markers && r.PositiveSelections > 0);
        Assert.Equal((1, 6), (top.Layer, top.Expert));
        Assert.Equal(markers, top.PositiveSelections);
        Assert.Equal(tokens, top.PositiveTokens);
        Assert.Equal(0, top.NegativeSelections);
        Assert.Equal("positive", top.Direction);
        Assert.True(top.AdjustedPValue < 0.05);
        Assert.True(top.LogOddsRatio > 2);
        Assert.Equal(Enumerable.Range(1, ranked.Count), ranked.Select(r => r.Rank));
        Assert.Equal(3 * 8, ranked.Count);

        BehaviourDiscovery.WriteOutputs(temp.File("out"), ranked, new Dictionary<string, string> { ["model"] = "planted" });
        var read = SteeringEvaluation.ReadRanked(temp.File("out/ranked.csv"));
        Assert.Equal(ranked.Where(r => r.Direction == "positive").Select(r => new LayerExpert(r.Layer, r.Expert)), read);
        Assert.Contains(new LayerExpert(1, 6), read);
        Assert.Contains("Behaviour-expert discovery", File.ReadAllText(temp.File("out/report.html")), StringComparison.Ordinal);
        Assert.Contains("\"layer\": 1", File.ReadAllText(temp.File("out/ranked.json")), StringComparison.Ordinal);
    }

    [Fact]
    public void LastTokenScope_CountsOneTokenPerPrompt()
    {
        using var temp = new TempDirectory();
        SyntheticModelWriter.Write(SyntheticPresets.Get("tiny-olmoe"), temp.File("m.gguf"));
        using var model = MoeModel.Load(temp.File("m.gguf"));
        var profile = BehaviourDiscovery.Profile(model, PlantedModels.Negative, TokenScope.LastToken, threads: 1);
        Assert.All(Enumerable.Range(0, 3), layer => Assert.Equal(PlantedModels.Negative.Length, profile.Tokens[layer]));
        Assert.Equal(PlantedModels.Negative.Length * 4, Enumerable.Range(0, 8).Sum(e => profile.Selections[0, e]));
    }

    [Fact]
    public void DisablingThePlantedExpert_HasNoSideEffectsOnNeutralText_UnlikeRandomControls()
    {
        using var temp = new TempDirectory();
        PlantedModels.WriteTokenExpertModel(temp.Path, layer: 1, expert: 6);
        using var model = MoeModel.Load(temp.File("planted.gguf"));
        var classifier = BehaviourClassifier.FromRegex("e");
        var results = SteeringEvaluation.Run(
            model, [new LayerExpert(1, 6)], PlantedModels.Positive, PlantedModels.Negative, classifier,
            new SteeringOptions { Mode = SteeringMode.Disable, Seeds = 3, MaxNewTokens = 6, Threads = 1 });

        Assert.Equal(["baseline", "steered", "control-1", "control-2", "control-3"], results.Select(r => r.Name));
        var baseline = results[0];
        var steered = results[1];

        // The planted expert never fires without the marker token, so the neutral side is untouched, bit for bit.
        Assert.Equal(baseline.NeutralPerplexity, steered.NeutralPerplexity);
        Assert.Equal(1.0, steered.ExactAgreement);
        Assert.Equal(1.0, steered.PrefixAgreement);
        Assert.Contains(results.Skip(2), c => c.NeutralPerplexity != baseline.NeutralPerplexity);
        Assert.All(results.Skip(2), c => Assert.Single(c.Experts));
        Assert.All(results.Skip(2), c => Assert.Equal(1, c.Experts[0].Layer));
        Assert.All(results.Skip(2), c => Assert.NotEqual(6, c.Experts[0].Expert));
        Assert.All(results, r => Assert.Equal(r.Replies.Count(classifier.Matches), r.Flagged));

        SteeringEvaluation.WriteOutputs(temp.File("eval"), results, PlantedModels.Positive, classifier, new Dictionary<string, string>());
        Assert.Equal(6, File.ReadAllLines(temp.File("eval/conditions.csv")).Length);
        Assert.Equal(5 * PlantedModels.Positive.Length, File.ReadAllLines(temp.File("eval/replies.jsonl")).Length);
    }

    [Fact]
    public void Interventions_GroupExpertsByBlock()
    {
        var list = SteeringEvaluation.ParseList("2:5, 0:1,2:7");
        var disable = SteeringEvaluation.Interventions(list, SteeringMode.Disable);
        Assert.Equal(2, disable.Count);
        var second = Assert.IsType<Models.Routing.DisableExperts>(disable[1]);
        Assert.Equal([2], second.Layers.Layers.ToArray());
        Assert.Equal([new ExpertId(5), new ExpertId(7)], second.Experts.ToArray());
        Assert.IsType<Models.Routing.ForceExperts>(SteeringEvaluation.Interventions(list, SteeringMode.Force)[0]);
        Assert.Throws<ExpertScopeException>(() => SteeringEvaluation.ParseList("2-5"));
        Assert.Equal((0.5, 0.75), SteeringEvaluation.Agreement([[1, 2], [3, 4]], [[1, 2], [3, 5]]));
    }

    [Fact]
    public void RefusalClassifier_FlagsRefusalPhrases()
    {
        Assert.True(BehaviourClassifier.Refusal.Matches("I'm sorry, but I cannot help with that."));
        Assert.True(BehaviourClassifier.Refusal.Matches("As an AI language model, I must decline."));
        Assert.False(BehaviourClassifier.Refusal.Matches("Sure! Here are the steps: first, preheat the oven."));
        Assert.Same(BehaviourClassifier.Refusal, BehaviourClassifier.FromOption("refusal"));
        Assert.True(BehaviourClassifier.FromOption("^Sure").Matches("Sure thing"));
        Assert.Throws<ExpertScopeException>(() => BehaviourClassifier.FromOption("(unclosed"));
    }

    [Fact]
    public void Templates_ExpandSlotsInOrder()
    {
        var slots = PromptTemplate.ParseSlots(["time=yesterday|last week", "place=in Paris|at home"]);
        var template = PromptTemplate.Parse("What happened {time} {place}?", slots);
        Assert.False(template.HasInput);
        Assert.Equal(
            ["What happened yesterday in Paris?", "What happened yesterday at home?", "What happened last week in Paris?", "What happened last week at home?"],
            template.ExpandAll(["ignored"]));

        var withInput = PromptTemplate.Parse("{{Q}} {x} {please|now}");
        Assert.Equal(["{Q} a please", "{Q} a now", "{Q} b please", "{Q} b now"], withInput.ExpandAll(["a", "b"]));
        Assert.Throws<ExpertScopeException>(() => PromptTemplate.Parse("What {when}?"));
        Assert.Throws<ExpertScopeException>(() => PromptTemplate.Parse("open {x"));
    }

    [Fact]
    public void PromptSets_LoadJsonJsonlAndText()
    {
        using var temp = new TempDirectory();
        File.WriteAllText(temp.File("a.json"), """[{"instruction": "one", "category": "x"}, {"instruction": "two"}]""");
        File.WriteAllText(temp.File("b.jsonl"), "{\"goal\": \"three\"}\n\n{\"goal\": \"four\"}\n");
        File.WriteAllText(temp.File("c.txt"), "five\n\nsix\n");
        Assert.Equal(["one", "two"], PromptSet.Load(temp.File("a.json")));
        Assert.Equal(["three", "four"], PromptSet.Load(temp.File("b.jsonl"), "goal"));
        Assert.Equal(["five"], PromptSet.Load(temp.File("c.txt"), limit: 1));
        var error = Assert.Throws<ExpertScopeException>(() => PromptSet.Load(temp.File("b.jsonl")));
        Assert.Contains("instruction", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BehaviourData_AdvBenchLoads()
    {
        var prompts = PromptSet.Load(GoldenData.DataPath("behaviour", "advbench_instructions.json"), limit: 5);
        Assert.Equal(5, prompts.Count);
        Assert.All(prompts, p => Assert.False(string.IsNullOrWhiteSpace(p)));
    }
}
