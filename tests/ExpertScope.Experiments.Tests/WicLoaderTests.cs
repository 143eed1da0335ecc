using ExpertScope.Experiments.Data;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

public class WicLoaderTests
{
    private static string Folder => GoldenData.DataPath("wic");

    [Theory]
    [InlineData("train", 5428)]
    [InlineData("dev", 638)]
    [InlineData("test", 1400)]
    public void RealSplitsHaveTheDocumentedRowCounts(string split, int rows)
    {
        // train line 1557 ("call", 3-0) points at "round": a lenient load skips and lists it; the others load strictly.
        var options = split == "train" ? LoadOptions.CreateLenient() : LoadOptions.Strict;
        var pairs = WicLoader.ReadSplit(Folder, split, options).ToList();

        Assert.Equal(rows, pairs.Count + options.Skipped.Count);
        Assert.Equal(split == "train" ? [1557] : [], options.Skipped.Reasons.Select(reason => reason.Line));
        Assert.All(pairs, pair =>
        {
            Assert.True(pair.First.Span.IsValidIn(pair.First.Sentence.Length));
            Assert.DoesNotContain(' ', pair.First.SurfaceForm);
            Assert.DoesNotContain(' ', pair.Second.SurfaceForm);
        });
    }

    [Fact]
    public void TrainAndTestAreBalanced()
    {
        // SOURCE.md: train 2,714 T / 2,714 F, test 700 T / 700 F.
        Assert.Equal(2714, WicLoader.ReadSplit(Folder, "train", LoadOptions.CreateLenient()).Count(pair => pair.Label == PairLabel.Same));
        Assert.Equal(700, WicLoader.ReadSplit(Folder, "test").Count(pair => pair.Label == PairLabel.Different));
    }

    [Fact]
    public void FirstDevRowMapsTokenIndicesToCharacterSpans()
    {
        // dev line 1: "board N 2-2 Room and board . / He nailed boards across the windows ." gold F.
        var pair = WicLoader.ReadSplit(Folder, "dev").First();

        Assert.Equal("wic.dev.0", pair.Id);
        Assert.Equal("board", pair.Word);
        Assert.Equal("N", pair.PartOfSpeech);
        Assert.Equal(new TextSpan(9, 14), pair.First.Span);
        Assert.Equal("board", pair.First.SurfaceForm);
        Assert.Equal(new TextSpan(10, 16), pair.Second.Span);
        Assert.Equal("boards", pair.Second.SurfaceForm);
        Assert.Equal(PairLabel.Different, pair.Label);
        Assert.Equal(1, pair.First.Source.Line);
    }

    [Fact]
    public void IrregularFormsAreTheTokenAtTheIndex()
    {
        // The index points at the inflected token itself, even when it shares no letters with the lemma.
        var pair = WicLoader.ReadSplit(Folder, "dev").Single(p => p.Word == "buy" && (p.First.SurfaceForm == "bought" || p.Second.SurfaceForm == "bought"));
        Assert.Contains("bought", new[] { pair.First.SurfaceForm, pair.Second.SurfaceForm });
    }

    [Theory]
    [InlineData("board\tN\t2-2\tRoom and board .", "expected 5 tab-separated fields")]
    [InlineData("board\tN\t2_2\tRoom and board .\tHe nailed boards .", "is not two non-negative integers")]
    [InlineData("board\tN\t2-9\tRoom and board .\tHe nailed boards .", "token index 9 is past the end of sentence2")]
    public void MalformedDataLinesNameFileLineAndProblem(string badLine, string problem)
    {
        using var folder = new TempDirectory();
        var data = folder.File("x.data.txt");
        var gold = folder.File("x.gold.txt");
        File.WriteAllLines(data, ["board\tN\t2-2\tRoom and board .\tHe nailed boards .", badLine]);
        File.WriteAllLines(gold, ["F", "T"]);

        var error = Assert.Throws<DataFormatException>(() => WicLoader.Read(data, gold).ToList());
        Assert.Equal(data, error.File);
        Assert.Equal(2, error.Line);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
        Assert.Contains(data, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BadGoldLabelsAndShortGoldFilesAreReported()
    {
        using var folder = new TempDirectory();
        var data = folder.File("x.data.txt");
        var gold = folder.File("x.gold.txt");
        File.WriteAllLines(data, ["a\tN\t0-0\ta b\ta c", "a\tN\t0-0\ta b\ta c", "a\tN\t0-0\ta b\ta c"]);
        File.WriteAllLines(gold, ["T", "maybe"]);

        var error = Assert.Throws<DataFormatException>(() => WicLoader.Read(data, gold).ToList());
        Assert.Equal(gold, error.File);
        Assert.Equal(2, error.Line);

        var options = LoadOptions.CreateLenient();
        var pairs = WicLoader.Read(data, gold, options).ToList();
        Assert.Single(pairs);
        Assert.Equal(2, options.Skipped.Count);
        Assert.Contains("neither T nor F", options.Skipped.Reasons[0].Message, StringComparison.Ordinal);
        Assert.Contains("gold file is shorter", options.Skipped.Reasons[1].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LenientLoadingSkipsAndCountsBadLines()
    {
        using var folder = new TempDirectory();
        var data = folder.File("x.data.txt");
        var gold = folder.File("x.gold.txt");
        File.WriteAllLines(data, ["a\tN\t0-0\ta b\ta c", "broken line", "a\tV\t1-0\tb a\ta c"]);
        File.WriteAllLines(gold, ["T", "F", "F"]);

        var options = LoadOptions.CreateLenient();
        var pairs = WicLoader.Read(data, gold, options).ToList();

        Assert.Equal(["wic.x.0", "wic.x.2"], pairs.Select(pair => pair.Id));
        Assert.Equal(1, options.Skipped.Count);
        Assert.Equal(2, options.Skipped.Reasons[0].Line);
    }

    [Fact]
    public void StrictLoadOfTrain_StopsAtTheIndexThatPointsAtAnotherWord()
    {
        var error = Assert.Throws<DataFormatException>(() => WicLoader.ReadSplit(Folder, "train").ToList());

        Assert.Equal(1557, error.Line);
        Assert.Contains("'round'", error.Message, StringComparison.Ordinal);
        Assert.Contains("'call'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void IndexAtAnotherWord_IsReportedWithItsLine()
    {
        using var folder = new TempDirectory();
        var data = folder.File("x.data.txt");
        var gold = folder.File("x.gold.txt");
        File.WriteAllLines(data, ["glaze\tV\t0-0\tThey glazed the pots .\tGlaze the window ."]);
        File.WriteAllLines(gold, ["T"]);

        var error = Assert.Throws<DataFormatException>(() => WicLoader.Read(data, gold).ToList());

        Assert.Equal(1, error.Line);
        Assert.Contains("'They'", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(637)]
    public void LenientLoad_WithAPlantedBlankLine_KeepsEveryLabelOnItsLine(int insertAt)
    {
        using var folder = new TempDirectory();
        var source = Path.Combine(Folder, "dev");
        var dataLines = File.ReadAllLines(Path.Combine(source, "dev.data.txt")).ToList();
        var goldLines = File.ReadAllLines(Path.Combine(source, "dev.gold.txt"));
        dataLines.Insert(insertAt, string.Empty);
        var data = folder.File("dev.data.txt");
        var gold = folder.File("dev.gold.txt");
        File.WriteAllLines(data, dataLines);
        File.WriteAllLines(gold, goldLines);

        var options = LoadOptions.CreateLenient();
        var pairs = WicLoader.Read(data, gold, options).ToList();

        Assert.Equal(638, pairs.Count);
        Assert.All(pairs, pair =>
        {
            // Line L of the planted file is original line L, or L - 1 after the blank line.
            int original = pair.First.Source.Line - (pair.First.Source.Line > insertAt + 1 ? 2 : 1);
            Assert.Equal(goldLines[original] == "T" ? PairLabel.Same : PairLabel.Different, pair.Label);
            Assert.Equal(dataLines[pair.First.Source.Line - 1].Split('\t')[3], pair.First.Sentence);
        });
        Assert.Equal(insertAt + 1, Assert.Single(options.Skipped.Reasons).Line);
    }

    [Fact]
    public void LenientLoad_WithABlankedLine_KeepsEveryOtherLabelOnItsLine()
    {
        using var folder = new TempDirectory();
        var source = Path.Combine(Folder, "dev");
        var dataLines = File.ReadAllLines(Path.Combine(source, "dev.data.txt"));
        var goldLines = File.ReadAllLines(Path.Combine(source, "dev.gold.txt"));
        var blanked = dataLines.ToArray();
        blanked[200] = string.Empty;
        var data = folder.File("dev.data.txt");
        var gold = folder.File("dev.gold.txt");
        File.WriteAllLines(data, blanked);
        File.WriteAllLines(gold, goldLines);

        var options = LoadOptions.CreateLenient();
        var pairs = WicLoader.Read(data, gold, options).ToList();

        Assert.Equal(637, pairs.Count);
        Assert.All(pairs, pair => Assert.Equal(goldLines[pair.First.Source.Line - 1] == "T" ? PairLabel.Same : PairLabel.Different, pair.Label));
    }

    [Fact]
    public void DataAndGoldThatCannotBeAligned_StopEvenALenientLoad()
    {
        using var folder = new TempDirectory();
        var data = folder.File("x.data.txt");
        var gold = folder.File("x.gold.txt");
        File.WriteAllLines(data, ["a\tN\t0-0\ta b\ta c", string.Empty, "a\tN\t0-0\ta b\ta c", "a\tN\t0-0\ta b\ta c"]);
        File.WriteAllLines(gold, ["T", "F"]);

        var error = Assert.Throws<DataFormatException>(() => WicLoader.Read(data, gold, LoadOptions.CreateLenient()).ToList());

        Assert.Contains("cannot be matched", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void InvalidUtf8_IsReportedWithItsLine_NotReplaced()
    {
        using var folder = new TempDirectory();
        var data = folder.File("x.data.txt");
        var gold = folder.File("x.gold.txt");
        var good = "a\tN\t0-0\ta b\ta c\n"u8.ToArray();
        File.WriteAllBytes(data, [.. good, .. "a\tN\t0-0\ta b\ta "u8.ToArray(), 0xFF, (byte)'\n']);
        File.WriteAllLines(gold, ["T", "F"]);

        var error = Assert.Throws<DataFormatException>(() => WicLoader.Read(data, gold).ToList());
        Assert.Equal(2, error.Line);
        Assert.Contains("UTF-8", error.Message, StringComparison.Ordinal);

        var options = LoadOptions.CreateLenient();
        Assert.Single(WicLoader.Read(data, gold, options));
        Assert.Equal(2, Assert.Single(options.Skipped.Reasons).Line);
    }
}
