using System.Text;
using ExpertScope.Core;
using ExpertScope.Experiments.Corpora;
using ExpertScope.Experiments.Data;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

public class CorporaReaderTests
{
    [Fact]
    public void ParagraphsAreSeparatedByBlankLinesAndKeepTheirFirstLine()
    {
        using var temp = new TempDirectory();
        var file = temp.File("text.txt");
        File.WriteAllText(file, "\uFEFFfirst line\r\nsecond line\r\n\r\n   \r\nthird\r\n\r\n");

        var documents = CorpusReader.ReadFile(file);

        Assert.Equal(2, documents.Count);
        Assert.Equal(new CorpusDocument(file, 1, "first line\nsecond line"), documents[0]);
        Assert.Equal(new CorpusDocument(file, 5, "third"), documents[1]);
    }

    [Fact]
    public void LinesAndLineBlocksSkipBlankLines()
    {
        using var temp = new TempDirectory();
        var file = temp.File("text.txt");
        File.WriteAllText(file, "a\nb\n\nc\nd\ne\n");

        var lines = CorpusReader.ReadText(file, new CorpusReadOptions { Split = TextSplit.Lines });
        var blocks = CorpusReader.ReadText(file, new CorpusReadOptions { Split = TextSplit.LineBlocks, LinesPerBlock = 2 });
        var whole = CorpusReader.ReadText(file, new CorpusReadOptions { Split = TextSplit.WholeFile });

        Assert.Equal(["a", "b", "c", "d", "e"], lines.Select(d => d.Text));
        Assert.Equal([1, 2, 4, 5, 6], lines.Select(d => d.Line));
        Assert.Equal(["a\nb", "c\nd", "e"], blocks.Select(d => d.Text));
        Assert.Equal([1, 4, 6], blocks.Select(d => d.Line));
        Assert.Equal("a\nb\n\nc\nd\ne", Assert.Single(whole).Text);
    }

    [Fact]
    public void JsonLinesJoinsNestedAndArrayFields()
    {
        using var temp = new TempDirectory();
        var file = temp.File("data.jsonl");
        File.WriteAllLines(file,
        [
            """{"meta": {"title": "T1"}, "parts": ["p", "q"], "n": 3}""",
            "",
            """{"meta": {"title": "T2"}, "parts": ["r"], "n": 4.5}""",
        ]);

        var documents = CorpusReader.ReadJsonLines(file, new CorpusReadOptions { Fields = ["meta.title", "parts", "n"], FieldSeparator = " | " });

        Assert.Equal(["T1 | p\nq | 3", "T2 | r | 4.5"], documents.Select(d => d.Text));
        Assert.Equal([1, 3], documents.Select(d => d.Line));
    }

    [Fact]
    public void ArrayIndexStepsSelectElements()
    {
        using var document = System.Text.Json.JsonDocument.Parse("""{"messages": [{"content": "hi"}, {"content": "there"}]}""");

        Assert.Equal("there", CorpusReader.SelectText(document.RootElement, "messages.1.content"));
        Assert.Null(CorpusReader.SelectText(document.RootElement, "messages.2.content"));
        Assert.Null(CorpusReader.SelectText(document.RootElement, "messages"));
    }

    [Fact]
    public void MalformedJsonLinesNameFileAndLineOrAreSkippedWhenLenient()
    {
        using var temp = new TempDirectory();
        var file = temp.File("bad.jsonl");
        File.WriteAllLines(file, ["""{"text": "ok"}""", """{"text": oops}""", """{"other": "x"}""", """{"text": "fine"}"""]);

        var error = Assert.Throws<DataFormatException>(() => CorpusReader.ReadFile(file));
        Assert.IsAssignableFrom<ExpertScopeException>(error);
        Assert.Equal(file, error.File);
        Assert.Equal(2, error.Line);
        Assert.Contains(file, error.Message, StringComparison.Ordinal);

        var lenient = LoadOptions.CreateLenient();
        var documents = CorpusReader.ReadFile(file, new CorpusReadOptions { Load = lenient });
        Assert.Equal(["ok", "fine"], documents.Select(d => d.Text));
        Assert.Equal(2, lenient.Skipped.Count);
        Assert.Equal([2, 3], lenient.Skipped.Reasons.Select(r => r.Line));
        Assert.Contains("'text'", lenient.Skipped.Reasons[1].Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void JsonArraysAndKeyedObjectsGiveOneDocumentPerRecordWithItsLine()
    {
        using var temp = new TempDirectory();
        var array = temp.File("array.json");
        File.WriteAllText(array, "[\n  {\"instruction\": \"Say hi\"},\n  {\"instruction\": \"Say bye\"}\n]\n");
        var keyed = temp.File("keyed.json");
        File.WriteAllText(keyed, "{\n \"101\": {\"Q\": \"q1\"},\n \"102\": {\"R\": \"r\"}\n}\n");

        var documents = CorpusReader.ReadFile(array, new CorpusReadOptions { Fields = ["instruction"] });
        Assert.Equal(["Say hi", "Say bye"], documents.Select(d => d.Text));
        Assert.Equal([2, 3], documents.Select(d => d.Line));

        var error = Assert.Throws<DataFormatException>(() => CorpusReader.ReadFile(keyed, new CorpusReadOptions { Fields = ["Q"] }));
        Assert.Equal(3, error.Line);
        Assert.Contains("'102'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void InvalidUtf8NamesItsLine()
    {
        using var temp = new TempDirectory();
        var file = temp.File("latin1.txt");
        File.WriteAllBytes(file, [.. Encoding.UTF8.GetBytes("good\nalso good\n"), 0x63, 0xE9, 0x0A, .. Encoding.UTF8.GetBytes("after\n")]);

        var error = Assert.Throws<DataFormatException>(() => CorpusReader.ReadFile(file));
        Assert.Equal(3, error.Line);

        var lenient = LoadOptions.CreateLenient();
        var documents = CorpusReader.ReadFile(file, new CorpusReadOptions { Split = TextSplit.Lines, Load = lenient });
        Assert.Equal(["good", "also good", "after"], documents.Select(d => d.Text));
        Assert.Equal(1, lenient.Skipped.Count);
    }

    [Fact]
    public void FoldersReadCorpusFilesRecursivelyInPathOrder()
    {
        using var temp = new TempDirectory();
        Directory.CreateDirectory(temp.File("sub"));
        File.WriteAllText(temp.File("b.txt"), "from b");
        File.WriteAllText(temp.File("a.jsonl"), """{"text": "from a"}""");
        File.WriteAllText(Path.Combine(temp.Path, "sub", "c.json"), """[{"text": "from c"}]""");
        File.WriteAllText(temp.File("ignored.csv"), "x,y");

        var documents = CorpusReader.Read(temp.Path);

        Assert.Equal(["from a", "from b", "from c"], documents.Select(d => d.Text));
        Assert.Throws<FileNotFoundException>(() => CorpusReader.Read(temp.File("missing")));
    }
}
