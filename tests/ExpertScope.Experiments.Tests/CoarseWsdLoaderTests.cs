using ExpertScope.Experiments.Data;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

public class CoarseWsdLoaderTests
{
    private static string Root => GoldenData.DataPath("coarsewsd20");

    [Fact]
    public void RealDataHasTwentyWordsAndTheDocumentedSentenceCounts()
    {
        Assert.Equal(20, CoarseWsdLoader.Words(Root).Count);
        // SOURCE.md: 23,370 train and 10,196 test sentences.
        Assert.Equal(23370, CoarseWsdLoader.ReadAll(Root, "train").Count());
        Assert.Equal(10196, CoarseWsdLoader.ReadAll(Root, "test").Count());
    }

    [Fact]
    public void OutOfDomainSentencesGetTheirClassNumbers()
    {
        var sentences = CoarseWsdLoader.ReadOutOfDomain(Root).ToList();

        // SOURCE.md: 339 out-of-domain sentences. Line 1: "club club_club 5 Could an employee 's garden club take over ...".
        Assert.Equal(339, sentences.Count);
        Assert.Equal("club", sentences[0].Target.SurfaceForm);
        Assert.Equal("club_club", sentences[0].SenseLabel);
        Assert.Equal("club_club", CoarseWsdLoader.ReadClassesMap(Path.Combine(Root, "club", "classes_map.txt"))[sentences[0].SenseClass]);
        // 48 bank sentences: 34 bank_bank and 14 bank_bank_(geography).
        Assert.Equal(14, sentences.Count(s => s.SenseLabel == "bank_bank_(geography)"));
    }

    [Fact]
    public void FirstBankSentenceHasSpanClassAndLabel()
    {
        // bank/train line 1: "9 \t during the year 1990 , ronnie leibowitz robbed 21 bank branches ..." gold 0 = bank_bank.
        // Tokens 0..8 with their separating spaces: "during the year 1990 , ronnie leibowitz robbed 21 " is 6+1+3+1+4+1+4+1+1+1+6+1+9+1+6+1+2+1 = 50 characters.
        var sentence = CoarseWsdLoader.ReadWord(Path.Combine(Root, "bank"), "train").First();

        Assert.Equal("cwsd.bank.train.0", sentence.Id);
        Assert.Equal("bank", sentence.Target.SurfaceForm);
        Assert.Equal(new TextSpan(50, 54), sentence.Target.Span);
        Assert.Equal(0, sentence.SenseClass);
        Assert.Equal("bank_bank", sentence.SenseLabel);
        Assert.Equal(1, sentence.Target.Source.Line);
    }

    [Fact]
    public void PairsAreBalancedDistinctAndLabelledBySense()
    {
        var sentences = CoarseWsdLoader.ReadAll(Root, "test").ToList();
        var senseOf = sentences.ToDictionary(s => s.Target.Source, s => s.SenseClass);
        var pairs = CoarseWsdLoader.BuildPairs(sentences, pairsPerLabel: 50, seed: 20250214).ToList();

        foreach (var word in pairs.GroupBy(pair => pair.Word))
        {
            Assert.Equal(word.Count(p => p.Label == PairLabel.Same), word.Count(p => p.Label == PairLabel.Different));
            var keys = word.Select(p => string.CompareOrdinal(p.First.Source.ToString(), p.Second.Source.ToString()) < 0
                ? (p.First.Source, p.Second.Source) : (p.Second.Source, p.First.Source)).ToList();
            Assert.Equal(keys.Count, keys.Distinct().Count());
        }

        Assert.All(pairs, pair =>
        {
            Assert.NotSame(pair.First, pair.Second);
            var same = senseOf[pair.First.Source] == senseOf[pair.Second.Source];
            Assert.Equal(same ? PairLabel.Same : PairLabel.Different, pair.Label);
        });
        Assert.Equal(20, pairs.Select(p => p.Word).Distinct().Count());
    }

    [Fact]
    public void PairSamplingIsDeterministicPerSeed()
    {
        var sentences = CoarseWsdLoader.ReadWord(Path.Combine(Root, "crane"), "test").ToList();
        string Describe(WordPair p) => $"{p.First.Source.Line}-{p.Second.Source.Line}-{p.Label}";

        var once = CoarseWsdLoader.BuildPairs(sentences, 30, seed: 7).Select(Describe).ToList();
        var again = CoarseWsdLoader.BuildPairs(sentences, 30, seed: 7).Select(Describe).ToList();
        var other = CoarseWsdLoader.BuildPairs(sentences, 30, seed: 8).Select(Describe).ToList();

        Assert.Equal(once, again);
        Assert.NotEqual(once, other);
    }

    [Fact]
    public void AskingForMorePairsThanExistReturnsEveryPairOnce()
    {
        // Class 0 has sentences a, b, c; class 1 has d. Same pairs: ab, ac, bc (3); different: ad, bd, cd (3).
        var sentences = new[] { ("a", 0), ("b", 0), ("c", 0), ("d", 1) }
            .Select((s, row) => new SenseSentence($"cwsd.w.t.{row}", "w", new SentenceTarget(s.Item1, new TextSpan(0, 1), new SourceLocation("f", row + 1)), s.Item2, $"w{s.Item2}"))
            .ToList();

        var pairs = CoarseWsdLoader.BuildPairs(sentences, pairsPerLabel: 100, seed: 1).ToList();

        Assert.Equal(3, pairs.Count(p => p.Label == PairLabel.Same));
        Assert.Equal(3, pairs.Count(p => p.Label == PairLabel.Different));
        Assert.Equal(
            ["a+b", "a+c", "b+c"],
            pairs.Where(p => p.Label == PairLabel.Same).Select(p => string.Join('+', new[] { p.First.Sentence, p.Second.Sentence }.Order())).Order());
    }

    [Theory]
    [InlineData("no tab here", 2, "found no tab")]
    [InlineData("x\tthe bank", 2, "is not a non-negative integer")]
    [InlineData("7\tthe bank", 2, "past the end of the sentence")]
    public void MalformedDataLinesAreReported(string badLine, int line, string problem)
    {
        using var folder = new TempDirectory();
        var word = Directory.CreateDirectory(Path.Combine(folder.Path, "bank")).FullName;
        File.WriteAllText(Path.Combine(word, "classes_map.txt"), """{"0": "bank_bank", "1": "bank_bank_(geography)"}""");
        File.WriteAllLines(Path.Combine(word, "test.data.txt"), ["1\tthe bank", badLine, "0\tbank"]);
        File.WriteAllLines(Path.Combine(word, "test.gold.txt"), ["0", "1", "1"]);

        var error = Assert.Throws<DataFormatException>(() => CoarseWsdLoader.ReadWord(word, "test").ToList());
        Assert.Equal(line, error.Line);
        Assert.EndsWith("test.data.txt", error.File, StringComparison.Ordinal);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);

        var options = LoadOptions.CreateLenient();
        Assert.Equal(2, CoarseWsdLoader.ReadWord(word, "test", options).Count());
        Assert.Equal(1, options.Skipped.Count);
    }

    [Fact]
    public void UnknownGoldClassIsReported()
    {
        using var folder = new TempDirectory();
        var word = Directory.CreateDirectory(Path.Combine(folder.Path, "bank")).FullName;
        File.WriteAllText(Path.Combine(word, "classes_map.txt"), """{"0": "bank_bank"}""");
        File.WriteAllLines(Path.Combine(word, "test.data.txt"), ["1\tthe bank"]);
        File.WriteAllLines(Path.Combine(word, "test.gold.txt"), ["3"]);

        var error = Assert.Throws<DataFormatException>(() => CoarseWsdLoader.ReadWord(word, "test").ToList());
        Assert.EndsWith("test.gold.txt", error.File, StringComparison.Ordinal);
        Assert.Contains("'3' is not one of the classes", error.Message, StringComparison.Ordinal);
    }
}
