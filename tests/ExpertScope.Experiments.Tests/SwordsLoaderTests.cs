using System.IO.Compression;
using System.Text;
using ExpertScope.Experiments.Data;
using ExpertScope.Experiments.Data.WordNet;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

public class SwordsLoaderTests(InstalledWordNet wordNet) : IClassFixture<InstalledWordNet>
{
    private static string Dev => GoldenData.DataPath("swords", "swords-v1.1_dev.json.gz");

    private static string TestSubset => GoldenData.DataPath("swords", "swords-v1.1_test-subset.json.gz");

    [Fact]
    public void RealFilesHaveTheDocumentedCounts()
    {
        // SOURCE.md / README: dev 370 targets / 22,978 substitutes; test subset 89 / 5,369.
        var dev = SwordsLoader.ReadTargets(Dev);
        Assert.Equal(370, dev.Count);
        Assert.Equal(22978, dev.Sum(target => target.Substitutes.Count));
        var test = SwordsLoader.ReadTargets(TestSubset);
        Assert.Equal(89, test.Count);
        Assert.Equal(5369, test.Sum(target => target.Substitutes.Count));
    }

    [Fact]
    public void FirstDevTargetIsLocatedInItsContext()
    {
        // t:7f1d26… "total" at offset 105 of the Enron e-mail context, NOUN, CoInCo lemma "total".
        var target = SwordsLoader.ReadTargets(Dev)[0];

        Assert.Equal("total", target.Word);
        Assert.Equal("total", target.Lemma);
        Assert.Equal("NOUN", target.PartOfSpeech);
        Assert.Equal(new TextSpan(105, 110), target.Target.Span);
        Assert.Equal("total", target.Target.SurfaceForm);
        Assert.Equal("t:7f1d26dea59df9f9cbf34e416ff89ede8e0f9aea", target.Target.Source.Entry);
    }

    [Fact]
    public void PairsSplitByScoreAndReplaceTheTarget()
    {
        var targets = SwordsLoader.ReadTargets(Dev);
        var pairs = SwordsLoader.BuildPairs(targets, similarThreshold: 0.5).ToList();

        Assert.All(pairs, pair =>
        {
            Assert.Equal(pair.Substitute, pair.Second.SurfaceForm);
            Assert.Equal(pair.First.Span.Start, pair.Second.Span.Start);
            Assert.Equal(pair.First.Sentence[..pair.First.Span.Start], pair.Second.Sentence[..pair.Second.Span.Start]);
            Assert.Equal(pair.First.Sentence[pair.First.Span.End..], pair.Second.Sentence[pair.Second.Span.End..]);
            Assert.True(pair.Label == PairLabel.Same ? pair.Score >= 0.5 : pair.Score == 0);
        });
        var all = targets.SelectMany(t => t.Substitutes).ToList();
        Assert.Equal(all.Count(s => s.Score >= 0.5), pairs.Count(p => p.Label == PairLabel.Same));
        Assert.Equal(all.Count(s => s.Score == 0), pairs.Count(p => p.Label == PairLabel.Different));
        // A stricter threshold keeps fewer similar pairs and the same dissimilar ones.
        var strict = SwordsLoader.BuildPairs(targets, similarThreshold: 0.8).ToList();
        Assert.True(strict.Count(p => p.Label == PairLabel.Same) < pairs.Count(p => p.Label == PairLabel.Same));
    }

    [Fact]
    public void ScoresAreTheFractionOfTrueJudgements()
    {
        // Synthetic file: two judgements TRUE of three (UNSURE is not TRUE) → 2/3; all FALSE → 0.
        using var folder = new TempDirectory();
        var path = WriteGzip(folder.File("s.json.gz"), """
            {
              "contexts": {"c:1": {"context": "The bank was closed.", "extra": {}}},
              "targets": {"t:1": {"context_id": "c:1", "target": "bank", "offset": 4, "pos": "NOUN", "extra": {}}},
              "substitutes": {
                "s:1": {"target_id": "t:1", "substitute": "lender", "extra": {}},
                "s:2": {"target_id": "t:1", "substitute": "shore", "extra": {}}
              },
              "substitutes_lemmatized": true,
              "substitute_labels": {"s:1": ["TRUE", "UNSURE", "TRUE"], "s:2": ["FALSE", "FALSE", "FALSE"]}
            }
            """);

        var target = Assert.Single(SwordsLoader.ReadTargets(path));
        Assert.Equal(2.0 / 3.0, target.Substitutes[0].Score, 12);
        Assert.Equal(3, target.Substitutes[0].JudgementCount);
        Assert.Equal(0.0, target.Substitutes[1].Score);
        // Lines: 1 "{", 2 contexts, 3 targets, 4 "substitutes": {, 5 "s:1".
        Assert.Equal(5, target.Substitutes[0].Source.Line);

        var pairs = SwordsLoader.BuildPairs([target]).ToList();
        Assert.Equal(["The lender was closed.", "The shore was closed."], pairs.Select(p => p.Second.Sentence));
        Assert.Equal([PairLabel.Same, PairLabel.Different], pairs.Select(p => p.Label));
    }

    [Theory]
    [InlineData("\"t:1\": {\"context_id\": \"c:1\", \"target\": \"bank\", \"offset\": 5, \"pos\": \"NOUN\"}", "is not at offset 5")]
    [InlineData("\"t:1\": {\"context_id\": \"c:9\", \"target\": \"bank\", \"offset\": 4, \"pos\": \"NOUN\"}", "missing context 'c:9'")]
    [InlineData("\"t:1\": {\"context_id\": \"c:1\", \"target\": \"bank\", \"pos\": \"NOUN\"}", "integer offset")]
    public void MalformedTargetsNameTheLine(string targetEntry, string problem)
    {
        using var folder = new TempDirectory();
        var path = WriteGzip(folder.File("s.json.gz"),
            "{\n\"contexts\": {\"c:1\": {\"context\": \"The bank was closed.\"}},\n\"targets\": {\n" + targetEntry + "\n},\n"
            + "\"substitutes\": {}, \"substitute_labels\": {}\n}");

        var error = Assert.Throws<DataFormatException>(() => SwordsLoader.ReadTargets(path));
        Assert.Equal(4, error.Line);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);

        var options = LoadOptions.CreateLenient();
        Assert.Empty(SwordsLoader.ReadTargets(path, options));
        Assert.Equal(1, options.Skipped.Count);
    }

    [Fact]
    public void WordNetSuppliesDissimilarSubstitutesOfTheSamePartOfSpeech()
    {
        var targets = SwordsLoader.ReadTargets(TestSubset).Take(10).ToList();
        var pool = new WordNetDissimilarPool(wordNet.Database);
        var pairs = SwordsLoader.BuildWordNetDissimilarPairs(targets, pool, perTarget: 3, seed: 5, maxSimilarity: 0.3).ToList();

        Assert.Equal(30, pairs.Count);
        // The same seed draws the same words (sub-seeds per target are arithmetic, not process-randomized hashes).
        Assert.Equal(pairs.Select(p => p.Substitute), SwordsLoader.BuildWordNetDissimilarPairs(targets, new WordNetDissimilarPool(wordNet.Database), 3, 5, 0.3).Select(p => p.Substitute));
        Assert.All(pairs, pair =>
        {
            Assert.Equal(PairLabel.Different, pair.Label);
            Assert.InRange(pair.Score!.Value, 0.0, 0.3 - 1e-12);
            var pos = WordNetDatabase.ParsePos(pair.PartOfSpeech)!.Value;
            Assert.NotEmpty(wordNet.Database.SynsetsOf(pair.Substitute!, pos));
            Assert.Equal(pair.Substitute, pair.Second.SurfaceForm);
        });
    }

    private static string WriteGzip(string path, string json)
    {
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        gzip.Write(Encoding.UTF8.GetBytes(json));
        return path;
    }
}
