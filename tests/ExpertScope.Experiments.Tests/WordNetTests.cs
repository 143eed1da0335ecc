using ExpertScope.Experiments.Data;
using ExpertScope.Experiments.Data.WordNet;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>Loads the installed WordNet 3.0 once for all real-data tests (Debian wordnet-base, also installed in CI).</summary>
public sealed class InstalledWordNet
{
    private readonly Lazy<WordNetDatabase> _database = new(() => WordNetDatabase.Load());

    public WordNetDatabase Database => _database.Value;
}

public class WordNetTests(InstalledWordNet wordNet) : IClassFixture<InstalledWordNet>
{
    private WordNetDatabase Database => wordNet.Database;

    [Fact]
    public void InstalledDatabaseHasTheWordNet30SynsetCounts()
    {
        // WordNet 3.0: 82,115 noun, 13,767 verb, 18,156 adjective and 3,621 adverb synsets (117,659 in all).
        Assert.Equal(82115, Database.Synsets(WordNetPos.Noun).Count());
        Assert.Equal(13767, Database.Synsets(WordNetPos.Verb).Count());
        Assert.Equal(18156, Database.Synsets(WordNetPos.Adjective).Count());
        Assert.Equal(3621, Database.Synsets(WordNetPos.Adverb).Count());
    }

    [Fact]
    public void IndexGivesSynsetsInSenseOrder()
    {
        // index.noun: "bank n 10 ... 09213565 08420278 ..." — first sense is the sloping land.
        var senses = Database.SynsetsOf("bank", WordNetPos.Noun);
        Assert.Equal(10, senses.Count);
        Assert.Equal(9213565, senses[0].Offset);
        Assert.Equal(8420278, senses[1].Offset);
        Assert.Equal(["depository_financial_institution", "bank", "banking_concern", "banking_company"], senses[1].Lemmas);
        Assert.Equal(["he cashed a check at the bank", "that bank holds the mortgage on my home"], senses[1].Examples);
        Assert.StartsWith("a financial institution", senses[1].Definition, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("went", WordNetPos.Verb, "go")]
    [InlineData("boxes", WordNetPos.Noun, "box")]
    [InlineData("women", WordNetPos.Noun, "woman")]
    [InlineData("banks", WordNetPos.Noun, "bank")]
    [InlineData("happier", WordNetPos.Adjective, "happy")]
    [InlineData("making", WordNetPos.Verb, "make")]
    public void BaseFormsUseExceptionsAndDetachmentRules(string word, WordNetPos pos, string lemma)
    {
        Assert.Contains(lemma, Database.BaseForms(word, pos));
    }

    [Fact]
    public void WuPalmerOfDogAndCatFollowsTheirHypernymPaths()
    {
        // dog.n.01 (02084071) root paths: entity > physical_entity > object > whole > living_thing > organism >
        // animal > chordate > vertebrate > mammal > placental > carnivore > canine > dog (14 synsets), and
        // … > animal > domestic_animal > dog (9). cat.n.01 (02121620): … > carnivore > feline > cat (14).
        // Best pair: common prefix up to carnivore = 12, so 2·12 / (14 + 14) = 24/28 = 0.857142…
        // (the other pairing gives 2·7 / (9 + 14) = 0.6087).
        var wuPalmer = new WuPalmer(Database);
        var dog = Database.GetSynset(WordNetPos.Noun, 2084071);
        var cat = Database.GetSynset(WordNetPos.Noun, 2121620);

        Assert.Equal(2, wuPalmer.RootPaths(dog).Count);
        Assert.Equal(24.0 / 28.0, wuPalmer.Similarity(dog, cat), 12);
        Assert.Equal(1.0, wuPalmer.Similarity(dog, dog), 12);
    }

    [Fact]
    public void WuPalmerIsLowForUnrelatedNounsAndZeroAcrossVerbRoots()
    {
        var wuPalmer = new WuPalmer(Database);
        Assert.True(wuPalmer.WordSimilarity("dog", "cat", WordNetPos.Noun) >= 24.0 / 28.0);
        Assert.InRange(wuPalmer.WordSimilarity("banana", "democracy", WordNetPos.Noun), 0.0, 0.3);
        // run.v.01 (travel fast on foot) and think.v.03 have unrelated verb roots.
        Assert.Equal(0.0, wuPalmer.Similarity(Database.SynsetsOf("run", WordNetPos.Verb)[0], Database.SynsetsOf("think", WordNetPos.Verb)[2]));
    }

    [Fact]
    public void ExamplePairsAreBalancedPerLemmaAndContainTheLemma()
    {
        var pairs = WordNetExamplePairs.Build(Database, [WordNetPos.Noun, WordNetPos.Verb], maxPairsPerLabel: 2, seed: 11).ToList();

        Assert.NotEmpty(pairs);
        foreach (var lemma in pairs.GroupBy(pair => pair.Id[..pair.Id.LastIndexOf('.')]))
        {
            Assert.Equal(lemma.Count(p => p.Label == PairLabel.Same), lemma.Count(p => p.Label == PairLabel.Different));
        }

        Assert.All(pairs, pair =>
        {
            var pos = WordNetDatabase.ParsePos(pair.PartOfSpeech)!.Value;
            foreach (var target in new[] { pair.First, pair.Second })
            {
                var form = target.SurfaceForm.ToLowerInvariant();
                Assert.True(form == pair.Word || Database.BaseForms(form, pos).Contains(pair.Word), $"{pair.Id}: '{form}' is not a form of '{pair.Word}'");
            }

            Assert.NotEqual(pair.First.Sentence, pair.Second.Sentence);
            Assert.Equal(pair.Label == PairLabel.Same, pair.First.Source == pair.Second.Source);
        });
        Assert.Equal(
            pairs.Select(p => p.Id + p.First.Sentence + p.Second.Sentence),
            WordNetExamplePairs.Build(Database, [WordNetPos.Noun, WordNetPos.Verb], 2, seed: 11).Select(p => p.Id + p.First.Sentence + p.Second.Sentence));
    }

    [Fact]
    public void InflectedExamplesAreFoundOnlyWhenAllowed()
    {
        // bank.n.02 has "he cashed a check at the bank"; exact matching still finds it.
        var exact = WordNetExamplePairs.ExamplesOf(Database, "bank", WordNetPos.Noun, allowInflected: false);
        Assert.Contains(exact[1], example => example.Target.Sentence == "he cashed a check at the bank" && example.Target.Span == new TextSpan(25, 29));
        var inflected = WordNetExamplePairs.ExamplesOf(Database, "go", WordNetPos.Verb, allowInflected: true).SelectMany(list => list).ToList();
        Assert.Contains(inflected, example => example.Target.SurfaceForm == "went");
        Assert.DoesNotContain(
            WordNetExamplePairs.ExamplesOf(Database, "go", WordNetPos.Verb, allowInflected: false).SelectMany(list => list),
            example => example.Target.SurfaceForm == "went");
    }

    [Fact]
    public void DissimilarPoolStaysBelowTheThresholdAndIsSeeded()
    {
        var pool = new WordNetDissimilarPool(Database);
        var words = pool.Sample("bank", WordNetPos.Noun, count: 20, seed: 3, maxSimilarity: 0.25);

        Assert.Equal(20, words.Count);
        Assert.All(words, item =>
        {
            Assert.InRange(item.Similarity, 0.0, 0.25 - 1e-12);
            Assert.Equal(item.Similarity, pool.WuPalmer.WordSimilarity("bank", item.Word, WordNetPos.Noun), 12);
            Assert.NotEmpty(Database.SynsetsOf(item.Word, WordNetPos.Noun));
        });
        Assert.Equal(words, pool.Sample("bank", WordNetPos.Noun, 20, seed: 3, maxSimilarity: 0.25));
        Assert.Equal(20, words.Select(item => item.Word).Distinct().Count());
    }

    [Theory]
    [InlineData("definition only", "definition only", new string[0])]
    [InlineData("a thing; \"one example\"; \"two\" - Shakespeare", "a thing", new[] { "one example", "two" })]
    [InlineData("utter with seeming casualness; \"drop a hint\"; drop names\"", "utter with seeming casualness", new[] { "drop a hint" })]
    [InlineData("post office; \"a notice of sale", "post office", new[] { "a notice of sale" })]
    public void GlossesSplitIntoDefinitionAndExamples(string gloss, string definition, string[] examples)
    {
        var (actualDefinition, actualExamples) = WordNetDatabase.SplitGloss(gloss);
        Assert.Equal(definition, actualDefinition);
        Assert.Equal(examples, actualExamples);
    }
}

public class SyntheticWordNetTests
{
    // A five-synset noun hierarchy: entity(100) > animal(200) > {dog(300), cat(400)}; entity > rock(500).
    private static readonly string[] Nouns =
    [
        "  1 This is a made-up test database.",
        "00000100 03 n 01 entity 0 000 | that which exists",
        "00000200 05 n 01 animal 0 001 @ 00000100 n 0000 | a living being; \"the animal ran\"",
        "00000300 05 n 01 dog 0 001 @ 00000200 n 0000 | a pet; \"the dog barked\"; \"dogs bark\"",
        "00000400 05 n 01 cat 0 001 @ 00000200 n 0000 | a pet; \"the cat slept\"",
        "00000500 17 n 02 rock 0 stone 0 001 @ 00000100 n 0000 | a hard thing; \"a rock fell\"",
    ];

    private static string Write(TempDirectory folder, string[] nouns, string[]? nounIndex = null)
    {
        File.WriteAllLines(folder.File("data.noun"), nouns);
        File.WriteAllLines(folder.File("index.noun"), nounIndex ??
        [
            "animal n 1 1 @ 1 0 00000200  ",
            "cat n 1 1 @ 1 0 00000400  ",
            "dog n 1 1 @ 1 1 00000300  ",
            "entity n 1 0 1 0 00000100  ",
            "rock n 1 1 @ 1 0 00000500  ",
            "stone n 1 1 @ 1 0 00000500  ",
        ]);
        File.WriteAllLines(folder.File("noun.exc"), ["geese goose"]);
        foreach (var name in new[] { "verb", "adj", "adv" })
        {
            File.WriteAllText(folder.File("data." + name), "");
            File.WriteAllText(folder.File("index." + name), "");
            File.WriteAllText(folder.File(name + ".exc"), "");
        }

        return folder.Path;
    }

    [Fact]
    public void WuPalmerMatchesHandComputedPaths()
    {
        using var folder = new TempDirectory();
        var database = WordNetDatabase.Load(Write(folder, Nouns));
        var wuPalmer = new WuPalmer(database);

        // dog = [entity, animal, dog], cat = [entity, animal, cat]: shared 2 → 2·2 / (3 + 3) = 0.6667.
        Assert.Equal(4.0 / 6.0, wuPalmer.WordSimilarity("dog", "cat", WordNetPos.Noun), 12);
        // dog vs rock = [entity, rock]: shared 1 → 2·1 / (3 + 2) = 0.4.
        Assert.Equal(0.4, wuPalmer.WordSimilarity("dog", "rock", WordNetPos.Noun), 12);
        // animal vs dog: shared 2 → 4 / (2 + 3) = 0.8; entity vs anything: 2 / (1 + depth).
        Assert.Equal(0.8, wuPalmer.WordSimilarity("animal", "dog", WordNetPos.Noun), 12);
        Assert.Equal(2.0 / 3.0, wuPalmer.WordSimilarity("entity", "rock", WordNetPos.Noun), 12);
        Assert.Equal(0.0, wuPalmer.WordSimilarity("dog", "unicorn", WordNetPos.Noun));

        var pool = new WordNetDissimilarPool(database, minTaggedSenses: 0, minPathDistance: 0);
        Assert.Equal(["rock", "stone"], pool.Sample("dog", WordNetPos.Noun, 10, seed: 1, maxSimilarity: 0.5).Select(item => item.Word).Order());
        // rock is 3 hypernym edges from dog (dog → animal → entity ← rock): too close for the default unrelatedness.
        Assert.Equal(3, pool.PathDistance("dog", "rock", WordNetPos.Noun));
        Assert.DoesNotContain("rock", new WordNetDissimilarPool(database, minTaggedSenses: 0).Sample("dog", WordNetPos.Noun, 10, seed: 1, maxSimilarity: 0.5).Select(item => item.Word));
    }

    [Fact]
    public void ExamplePairsFromSyntheticDatabase()
    {
        using var folder = new TempDirectory();
        var database = WordNetDatabase.Load(Write(folder, Nouns));

        // Only "dog" has one synset with two examples, but it has a single synset, so there is no different pair.
        Assert.Empty(WordNetExamplePairs.Build(database, [WordNetPos.Noun], 5, seed: 1));
        var dogs = WordNetExamplePairs.ExamplesOf(database, "dog", WordNetPos.Noun);
        Assert.Equal(["dog", "dogs"], dogs[0].Select(example => example.Target.SurfaceForm));
    }

    [Theory]
    [InlineData("0000x100 03 n 01 entity 0 000 | bad offset", "8-digit offset")]
    [InlineData("00000100 03 n 05 entity 0 000 | too few words", "word count")]
    [InlineData("00000100 03 n 01 entity 0 002 @ 00000200 n 0000 | too few pointers", "pointer count")]
    [InlineData("00000100 03 n 01 entity 0 001 @ 0000020x n 0000 | bad pointer", "is not a synset offset")]
    public void MalformedDataLinesAreReportedWithFileAndLine(string badLine, string problem)
    {
        using var folder = new TempDirectory();
        var path = Write(folder, [.. Nouns, badLine]);

        var error = Assert.Throws<DataFormatException>(() => WordNetDatabase.Load(path));
        Assert.EndsWith("data.noun", error.File, StringComparison.Ordinal);
        Assert.Equal(Nouns.Length + 1, error.Line);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);

        var options = LoadOptions.CreateLenient();
        var database = WordNetDatabase.Load(path, options);
        Assert.Equal(1, options.Skipped.Count);
        Assert.Equal(5, database.Synsets(WordNetPos.Noun).Count());
    }

    [Fact]
    public void DanglingPointersAreReported()
    {
        using var folder = new TempDirectory();
        var path = Write(folder, [.. Nouns, "00000600 05 n 01 wolf 0 001 @ 00000999 n 0000 | a wild dog"]);

        var error = Assert.Throws<DataFormatException>(() => WordNetDatabase.Load(path));
        Assert.Equal(Nouns.Length + 1, error.Line);
        Assert.Contains("hypernym pointer to 00000999", error.Message, StringComparison.Ordinal);

        var indexError = Assert.Throws<DataFormatException>(() => WordNetDatabase.Load(Write(folder, Nouns, ["wolf n 1 0 1 0 00000600  "])));
        Assert.EndsWith("index.noun", indexError.File, StringComparison.Ordinal);
        Assert.Contains("00000600 of 'wolf' is not in the data file", indexError.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MalformedIndexLinesAreReported()
    {
        using var folder = new TempDirectory();
        var path = Write(folder, Nouns, ["dog n 2 1 @ 1 1 00000300  "]);

        var error = Assert.Throws<DataFormatException>(() => WordNetDatabase.Load(path));
        Assert.EndsWith("index.noun", error.File, StringComparison.Ordinal);
        Assert.Equal(1, error.Line);
    }
}
