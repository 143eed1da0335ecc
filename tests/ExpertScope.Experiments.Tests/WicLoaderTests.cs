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
        var pairs = WicLoader.ReadSplit(Folder, split).ToList();

        Assert.Equal(rows, pairs.Count);
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
        Assert.Equal(2714, WicLoader.ReadSplit(Folder, "train").Count(pair => pair.Label == PairLabel.Same));
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
}
