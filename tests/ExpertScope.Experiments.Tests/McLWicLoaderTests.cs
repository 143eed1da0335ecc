using System.IO.Compression;
using ExpertScope.Experiments.Data;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

public class McLWicLoaderTests
{
    private static string Folder => GoldenData.DataPath("mcl-wic");

    [Fact]
    public void RealDataHasFourteenFilesOfAThousandBalancedPairs()
    {
        var pairs = McLWicLoader.ReadFolder(Folder).ToList();

        Assert.Equal(14000, pairs.Count);
        Assert.Equal(7000, pairs.Count(pair => pair.Label == PairLabel.Same));
        Assert.All(pairs, pair =>
        {
            Assert.All(pair.First.Parts, part => Assert.True(part.IsValidIn(pair.First.Sentence.Length)));
            Assert.All(pair.Second.Parts, part => Assert.True(part.IsValidIn(pair.Second.Sentence.Length)));
        });
        var languages = pairs.GroupBy(pair => $"{pair.First.Language}-{pair.Second.Language}").ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(2000, languages["en-en"]);
        Assert.Equal(1000, languages["en-zh"]);
        Assert.Equal(2000, languages["zh-zh"]);
    }

    [Fact]
    public void FirstEnglishDevPairHasOffsetsGoldAndLine()
    {
        // dev.en-en.0: "superiors" at [78, 87) and [41, 50), gold F; the object starts on line 2 of the file.
        var pair = McLWicLoader.ReadFile(Path.Combine(Folder, "dev", "dev.en-en.data"), Path.Combine(Folder, "dev", "dev.en-en.gold")).First();

        Assert.Equal("dev.en-en.0", pair.Id);
        Assert.Equal("superior", pair.Word);
        Assert.Equal("NOUN", pair.PartOfSpeech);
        Assert.Equal("superiors", pair.First.SurfaceForm);
        Assert.Equal(new TextSpan(41, 50), pair.Second.Span);
        Assert.Equal(PairLabel.Different, pair.Label);
        Assert.Equal(2, pair.First.Source.Line);
    }

    [Fact]
    public void CrossLingualRangesKeepDiscontinuousParts()
    {
        // test.en-ar has 8 pairs whose Arabic target has two ranges (e.g. "0-5,57-64").
        var pairs = McLWicLoader.ReadFile(Path.Combine(Folder, "test", "test.en-ar.data"), Path.Combine(Folder, "test", "test.en-ar.gold")).ToList();
        var split = pairs.Where(pair => pair.Second.Parts.Count > 1).ToList();

        Assert.Equal(8, split.Count);
        Assert.All(split, pair =>
        {
            Assert.Equal(pair.Second.Parts[0].Start, pair.Second.Span.Start);
            Assert.Equal(pair.Second.Parts[^1].End, pair.Second.Span.End);
            Assert.Equal("ar", pair.Second.Language);
        });
    }

    [Fact]
    public void ZipArchivesAreReadLikeFolders()
    {
        using var folder = new TempDirectory();
        var dataZip = folder.File("data.zip");
        var goldZip = folder.File("gold.zip");
        using (var archive = ZipFile.Open(dataZip, ZipArchiveMode.Create))
        {
            archive.CreateEntryFromFile(Path.Combine(Folder, "dev", "dev.fr-fr.data"), "MCL-WiC/dev/multilingual/dev.fr-fr.data");
        }

        using (var archive = ZipFile.Open(goldZip, ZipArchiveMode.Create))
        {
            archive.CreateEntryFromFile(Path.Combine(Folder, "dev", "dev.fr-fr.gold"), "dev/dev.fr-fr.gold");
        }

        var fromZip = McLWicLoader.ReadArchive(dataZip, goldZip).ToList();
        var fromFile = McLWicLoader.ReadFile(Path.Combine(Folder, "dev", "dev.fr-fr.data"), Path.Combine(Folder, "dev", "dev.fr-fr.gold")).ToList();

        Assert.Equal(1000, fromZip.Count);
        Assert.Equal(fromFile.Select(p => (p.Id, p.First.Span, p.Second.Span, p.Label)), fromZip.Select(p => (p.Id, p.First.Span, p.Second.Span, p.Label)));
        Assert.Equal(dataZip + "!MCL-WiC/dev/multilingual/dev.fr-fr.data", fromZip[0].First.Source.File);
    }

    [Fact]
    public void CodePointOffsetsAreConvertedToUtf16()
    {
        // "𝄞 bank": U+1D11E is one code point but two UTF-16 units, so code points [2, 6) are UTF-16 [3, 7).
        using var folder = new TempDirectory();
        var data = folder.File("dev.en-en.data");
        var gold = folder.File("dev.en-en.gold");
        File.WriteAllText(data, """[{"id": "dev.en-en.0", "lemma": "bank", "pos": "NOUN", "sentence1": "𝄞 bank", "sentence2": "a bank", "start1": "2", "end1": "6", "start2": "2", "end2": "6"}]""");
        File.WriteAllText(gold, """[{"id": "dev.en-en.0", "tag": "T"}]""");

        var pair = McLWicLoader.ReadFile(data, gold).Single();

        Assert.Equal(new TextSpan(3, 7), pair.First.Span);
        Assert.Equal("bank", pair.First.SurfaceForm);
        Assert.Equal(PairLabel.Same, pair.Label);
    }

    [Theory]
    [InlineData("""{"id": "dev.en-en.1", "lemma": "b", "pos": "NOUN", "sentence1": "a b", "start1": "2", "end1": "3", "sentence2": "b", "start2": "0", "end2": "1"}""", "dev.en-en.gold", "no gold tag for id 'dev.en-en.1'")]
    [InlineData("""{"id": "dev.en-en.0", "lemma": "b", "pos": "NOUN", "sentence1": "a b", "start1": "2", "end1": "9", "sentence2": "b", "start2": "0", "end2": "1"}""", "dev.en-en.data", "does not fit sentence1")]
    [InlineData("""{"id": "dev.en-en.0", "lemma": "b", "pos": "NOUN", "sentence1": "a b", "start1": "two", "end1": "3", "sentence2": "b", "start2": "0", "end2": "1"}""", "dev.en-en.data", "are not non-negative integers")]
    [InlineData("""{"id": "dev.en-en.0", "lemma": "b", "sentence1": "a b", "start1": "2", "end1": "3", "sentence2": "b", "start2": "0", "end2": "1"}""", "dev.en-en.data", "needs string fields")]
    [InlineData("""{"id": "dev.0", "lemma": "b", "pos": "NOUN", "sentence1": "a b", "start1": "2", "end1": "3", "sentence2": "b", "start2": "0", "end2": "1"}""", "dev.en-en.data", "does not name a language pair")]
    public void MalformedRecordsNameFileLineAndProblem(string record, string badFile, string problem)
    {
        using var folder = new TempDirectory();
        var data = folder.File("dev.en-en.data");
        var gold = folder.File("dev.en-en.gold");
        const string good = """{"id": "dev.en-en.9", "lemma": "b", "pos": "NOUN", "sentence1": "b", "start1": "0", "end1": "1", "sentence2": "b", "start2": "0", "end2": "1"}""";
        // The bad record sits on line 3.
        File.WriteAllText(data, "[\n" + good + ",\n" + record + "\n]\n");
        File.WriteAllText(gold, """[{"id": "dev.en-en.9", "tag": "T"}, {"id": "dev.en-en.0", "tag": "F"}]""");

        var error = Assert.Throws<DataFormatException>(() => McLWicLoader.ReadFile(data, gold).ToList());
        Assert.EndsWith(badFile, error.File, StringComparison.Ordinal);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
        if (badFile.EndsWith(".data", StringComparison.Ordinal))
        {
            Assert.Equal(3, error.Line);
        }

        var options = LoadOptions.CreateLenient();
        Assert.Single(McLWicLoader.ReadFile(data, gold, options));
        Assert.Equal(1, options.Skipped.Count);
    }

    [Fact]
    public void InvalidJsonIsADataFormatError()
    {
        using var folder = new TempDirectory();
        var data = folder.File("dev.en-en.data");
        var gold = folder.File("dev.en-en.gold");
        File.WriteAllText(data, "[\n{\"id\": \n");
        File.WriteAllText(gold, "[]");

        var error = Assert.Throws<DataFormatException>(() => McLWicLoader.ReadFile(data, gold).ToList());
        Assert.Contains("invalid JSON", error.Message, StringComparison.Ordinal);
    }
}
