using ExpertScope.Experiments.Data;
using ExpertScope.Experiments.Data.WordNet;
using ExpertScope.Experiments.Probes;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>Substitutes put into the target's form with WordNet's morphology; multi-word substitutes counted apart; unrelated words far apart.</summary>
public sealed class SubstituteInflectorTests(InstalledWordNet wordNet) : IClassFixture<InstalledWordNet>
{
    [Theory]
    [InlineData("lender", "banks", "bank", "NOUN", "lenders", SubstituteForm.Inflected)]
    [InlineData("city", "banks", "bank", "NOUN", "cities", SubstituteForm.Inflected)]
    [InlineData("box", "banks", "bank", "NOUN", "boxes", SubstituteForm.Inflected)]
    [InlineData("child", "banks", "bank", "NOUN", "children", SubstituteForm.Inflected)]
    [InlineData("lender", "Banks", "bank", "NOUN", "Lenders", SubstituteForm.Inflected)]
    [InlineData("bank", "lenders", "lenders", "NOUN", "banks", SubstituteForm.Inflected)]   // no lemma given: morphy finds it
    [InlineData("lender", "bank", "bank", "NOUN", "lender", SubstituteForm.BaseForm)]
    [InlineData("perform", "playing", "play", "VERB", "performing", SubstituteForm.Inflected)]
    [InlineData("make", "playing", "play", "VERB", "making", SubstituteForm.Inflected)]
    [InlineData("perform", "played", "play", "VERB", "performed", SubstituteForm.Inflected)]
    [InlineData("stop", "played", "play", "VERB", "stopped", SubstituteForm.Inflected)]     // verb.exc's doubled form
    [InlineData("perform", "plays", "play", "VERB", "performs", SubstituteForm.Inflected)]
    [InlineData("go", "played", "play", "VERB", "go", SubstituteForm.NotInflected)]          // went or gone: WordNet cannot tell
    [InlineData("travel", "went", "go", "VERB", "travel", SubstituteForm.NotInflected)]      // irregular target form
    [InlineData("big", "stronger", "strong", "ADJ", "bigger", SubstituteForm.Inflected)]
    [InlineData("happy", "strongest", "strong", "ADJ", "happiest", SubstituteForm.Inflected)]
    [InlineData("xyzzy", "banks", "bank", "NOUN", "xyzzy", SubstituteForm.NotInflected)]     // not in WordNet
    [InlineData("financial institution", "banks", "bank", "NOUN", "financial institution", SubstituteForm.MultiWord)]
    public void InflectsLikeTheTargetWhereMorphyAllows(string substitute, string target, string lemma, string pos, string expected, string form)
    {
        var inflector = new SubstituteInflector(wordNet.Database);
        Assert.Equal((expected, form), inflector.Inflect(substitute, target, lemma, pos));
    }

    [Fact]
    public void SwordsPairsCarryTheInflectedFormAndCountMultiWordSubstitutes()
    {
        using var temp = new TempDirectory();
        ProbesSubstitutionContextTests.WriteSwords(Path.Combine(temp.Path, "swords", "swords-v1.1_dev.json.gz"),
            [("Two lenders raised their rates.", "lenders", ["bank", "financial institution"], ["shore"])]);
        var settings = new ProbeSettings { Kind = ProbeKind.Substitution, Dataset = "swords:dev", DataFolder = temp.Path };
        var data = ProbeData.Load(settings);
        Assert.Equal(["Two banks raised their rates.", "Two financial institution raised their rates.", "Two shores raised their rates."],
            data.Pairs.Select(pair => pair.Second.Sentence));
        Assert.Equal([SubstituteForm.Inflected, SubstituteForm.MultiWord, SubstituteForm.Inflected], data.Pairs.Select(pair => pair.SubstituteForm));
        Assert.All(data.Pairs, pair => Assert.Equal("c:0", pair.ContextId));

        var plain = ProbeData.Load(settings with { InflectSubstitutes = false });
        Assert.Equal("Two bank raised their rates.", plain.Pairs[0].Second.Sentence);
        Assert.Null(plain.Pairs[0].SubstituteForm);
        Assert.Equal("true", settings.ToDictionary()["inflect_substitutes"]);
    }

    [Fact]
    public void UnrelatedWordsShareNoSynsetAndNoNearHypernymPath()
    {
        var pool = new WordNetDissimilarPool(wordNet.Database);
        Assert.Equal(0, pool.PathDistance("bank", "depository_financial_institution", WordNetPos.Noun));
        Assert.True(pool.PathDistance("dog", "cat", WordNetPos.Noun) < WordNetDissimilarPool.MinimumPathDistance);
        var sample = pool.Sample("dog", WordNetPos.Noun, 20, seed: 4);
        Assert.Equal(20, sample.Count);
        Assert.All(sample, pick =>
        {
            Assert.True(pick.Similarity < 0.3);
            Assert.True(pool.PathDistance("dog", pick.Word, WordNetPos.Noun) >= WordNetDissimilarPool.MinimumPathDistance, pick.Word);
        });
        Assert.Equal(sample, pool.Sample("dog", WordNetPos.Noun, 20, seed: 4));
    }
}
