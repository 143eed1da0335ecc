using System.IO.Compression;
using System.Text;
using ExpertScope.Experiments.Data;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>
/// SWORDS records of the wrong JSON type, invalid UTF-8, substitutes whose target is missing and unknown judgements
/// are each an error naming the file, line and record, or (lenient) a counted, listed skip; never an internal error,
/// a silently vanished record or a silently lowered score.
/// </summary>
public sealed class SwordsHostileRecordsTests
{
    private const string GoodTarget = "\"t:1\": {\"context_id\": \"c:1\", \"target\": \"bank\", \"offset\": 4, \"pos\": \"NOUN\"}";

    private static byte[] Swords(string targetEntry, string substitutes = "", string labels = "") => Encoding.UTF8.GetBytes(
        "{\n\"contexts\": {\"c:1\": {\"context\": \"The bank was closed.\"}},\n\"targets\": {\n" + targetEntry + "\n},\n"
        + "\"substitutes\": {\n" + substitutes + "\n},\n\"substitute_labels\": {\n" + labels + "\n}\n}");

    private static string Write(TempDirectory folder, byte[] json)
    {
        string path = folder.File("swords.json.gz");
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        gzip.Write(json);
        return path;
    }

    [Theory]
    [InlineData("\"t:1\": {\"context_id\": \"c:1\", \"target\": \"bank\", \"offset\": \"4\", \"pos\": \"NOUN\"}", "integer offset")]
    [InlineData("\"t:1\": {\"context_id\": \"c:1\", \"target\": null, \"offset\": 4, \"pos\": \"NOUN\"}", "needs string context_id, target and pos")]
    [InlineData("\"t:1\": null", "needs string context_id")]
    [InlineData("\"t:1\": [1, 2]", "needs string context_id")]
    [InlineData("\"t:1\": {\"context_id\": 7, \"target\": \"bank\", \"offset\": 4.5, \"pos\": \"NOUN\"}", "integer offset")]
    public void WrongJsonTypes_NameTheLineAndRecord_OrAreCountedSkips(string targetEntry, string problem)
    {
        using var folder = new TempDirectory();
        string path = Write(folder, Swords(targetEntry));

        var error = Assert.Throws<DataFormatException>(() => SwordsLoader.ReadTargets(path));
        Assert.Equal(path, error.File);
        Assert.Equal(4, error.Line);
        Assert.Contains("'t:1'", error.Message, StringComparison.Ordinal);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);

        var options = LoadOptions.CreateLenient();
        Assert.Empty(SwordsLoader.ReadTargets(path, options));
        Assert.Equal(4, Assert.Single(options.Skipped.Reasons).Line);
    }

    [Fact]
    public void InvalidUtf8_IsAnErrorNamingTheLine_EvenWhenLenient()
    {
        using var folder = new TempDirectory();
        byte[] json = Swords(GoodTarget);
        int at = Array.IndexOf(json, (byte)'b'); // the 'b' of "bank" in the context, on line 2
        json[at] = 0xC3; // a lead byte without its continuation
        string path = Write(folder, json);

        foreach (var options in new[] { LoadOptions.Strict, LoadOptions.CreateLenient() })
        {
            var error = Assert.Throws<DataFormatException>(() => SwordsLoader.ReadTargets(path, options));
            Assert.Equal(2, error.Line);
            Assert.Contains("not valid UTF-8", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void UnpairedSurrogateEscape_IsAnErrorNamingTheLine_NotAnInternalError()
    {
        using var folder = new TempDirectory();
        string path = Write(folder, Swords(GoodTarget.Replace("\"bank\"", "\"\\ud800\"", StringComparison.Ordinal)));

        foreach (var options in new[] { LoadOptions.Strict, LoadOptions.CreateLenient() })
        {
            var error = Assert.Throws<DataFormatException>(() => SwordsLoader.ReadTargets(path, options));
            Assert.Equal(4, error.Line);
            Assert.Contains("not valid Unicode", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void SubstituteOfAMissingTarget_IsReported_NotDropped()
    {
        using var folder = new TempDirectory();
        string path = Write(folder, Swords(
            GoodTarget,
            "\"s:1\": {\"target_id\": \"t:1\", \"substitute\": \"shore\"},\n\"s:2\": {\"target_id\": \"t:9\", \"substitute\": \"lender\"}",
            "\"s:1\": [\"TRUE\", \"FALSE\"],\n\"s:2\": [\"TRUE\"]"));

        var error = Assert.Throws<DataFormatException>(() => SwordsLoader.ReadTargets(path));
        Assert.Equal(8, error.Line);
        Assert.Contains("'s:2'", error.Message, StringComparison.Ordinal);
        Assert.Contains("'t:9'", error.Message, StringComparison.Ordinal);

        var options = LoadOptions.CreateLenient();
        var target = Assert.Single(SwordsLoader.ReadTargets(path, options));
        Assert.Equal(["s:1"], target.Substitutes.Select(s => s.Id));
        Assert.Contains("'s:2'", Assert.Single(options.Skipped.Reasons).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownJudgement_IsReported_NotCountedAsFalse()
    {
        using var folder = new TempDirectory();
        string path = Write(folder, Swords(
            GoodTarget,
            "\"s:1\": {\"target_id\": \"t:1\", \"substitute\": \"shore\"}",
            "\"s:1\": [\"TRUE\", \"MAYBE\"]"));

        var error = Assert.Throws<DataFormatException>(() => SwordsLoader.ReadTargets(path));
        Assert.Equal(10, error.Line);
        Assert.Contains("'MAYBE'", error.Message, StringComparison.Ordinal);

        var options = LoadOptions.CreateLenient();
        var target = Assert.Single(SwordsLoader.ReadTargets(path, options));
        Assert.Empty(target.Substitutes);
        Assert.Equal(2, options.Skipped.Count); // the label entry, then its substitute (now without labels)
    }
}
