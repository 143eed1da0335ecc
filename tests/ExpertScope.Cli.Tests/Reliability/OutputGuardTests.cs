using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests.Reliability;

/// <summary>
/// Verbs never replace what ExpertScope did not write: a user's file named as a trace output, the input itself, a
/// folder of results no run recorded, or a folder given where a file belongs are refused with one line naming the path,
/// and the user's bytes stay as they were; <c>--overwrite</c> lifts the refusal where replacing is meaningful.
/// </summary>
public sealed class OutputGuardTests(TinyModelFixture model) : IClassFixture<TinyModelFixture>, IDisposable
{
    private const string UserData = "{\"text\": \"The bank of the river\", \"label\": 1}\n{\"text\": \"The bank lends money\", \"label\": 0}\n";

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void TraceOverAUsersJsonl_IsRefused_AndTheFileIsUntouched()
    {
        string input = _directory.File("prompts.txt");
        File.WriteAllText(input, "The bank of the river\n");
        string userFile = _directory.File("dataset.jsonl");
        File.WriteAllText(userFile, UserData);

        var (code, _, error) = EngineVerbs.Run("trace", "--model", model.ModelPath, "--input", input, "--out", userFile);

        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, userFile, "--overwrite");
        Assert.Equal(UserData, File.ReadAllText(userFile));
        Assert.False(File.Exists(userFile + ".meta.json"));
    }

    [Fact]
    public void TraceOverAUsersFile_WithOverwrite_WritesATraceThatResumes()
    {
        string input = _directory.File("prompts.txt");
        File.WriteAllText(input, "The bank of the river\n");
        string output = _directory.File("dataset.jsonl");
        File.WriteAllText(output, UserData);

        var first = EngineVerbs.Run("trace", "--model", model.ModelPath, "--input", input, "--out", output, "--overwrite");
        var again = EngineVerbs.Run("trace", "--model", model.ModelPath, "--input", input, "--out", output);

        Assert.True(first.Code == 0, first.Error);
        Assert.DoesNotContain("\"label\"", File.ReadAllText(output), StringComparison.Ordinal);
        Assert.True(again.Code == 0, again.Error);
        Assert.Contains("1 already traced", again.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TraceWhoseOutputIsItsInput_IsRefused_EvenWithOverwrite(bool overwrite)
    {
        string path = _directory.File("same.jsonl");
        File.WriteAllText(path, UserData);
        string[] args = ["trace", "--model", model.ModelPath, "--input", path, "--out", path];

        var (code, _, error) = EngineVerbs.Run(overwrite ? [.. args, "--overwrite"] : args);

        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, path, "input");
        Assert.Equal(UserData, File.ReadAllText(path));
    }

    [Fact]
    public void TraceIntoAFolderPath_NamesTheFolder()
    {
        string input = _directory.File("prompts.txt");
        File.WriteAllText(input, "The bank of the river\n");
        string folder = Directory.CreateDirectory(_directory.File("a-folder.parquet")).FullName;

        var (code, _, error) = EngineVerbs.Run("trace", "--model", model.ModelPath, "--input", input, "--out", folder);

        // A folder where a file is needed is a usage error, found before anything runs (exit 2).
        Assert.Equal(2, code);
        EngineVerbs.AssertOneErrorLine(error, folder, "directory");
    }

    [Theory]
    [InlineData("results.json")]
    [InlineData("pairs.csv")]
    public void ProbeIntoAFolderWithUnrecordedResults_IsRefused_AndTheFilesAreUntouched(string name)
    {
        string folder = Directory.CreateDirectory(_directory.File("earlier-results")).FullName;
        string user = Path.Combine(folder, name);
        File.WriteAllText(user, "the user's numbers\n");

        var (code, _, error) = EngineVerbs.Run(
            "probe", "word-sense", "--model", model.ModelPath, "--dataset", "wic:dev", "--data-dir", _directory.Path, "--out", folder);

        Assert.Equal(1, code);
        EngineVerbs.AssertOneErrorLine(error, folder, name, "--overwrite");
        Assert.Equal("the user's numbers\n", File.ReadAllText(user));
    }

    [Fact]
    public void ProbeWithOverwrite_ClearsTheUnrecordedResults()
    {
        string folder = Directory.CreateDirectory(_directory.File("earlier-results")).FullName;
        File.WriteAllText(Path.Combine(folder, "results.json"), "{}");

        // No data set in the data folder, so the run stops after making way, on the missing data.
        var (code, _, error) = EngineVerbs.Run(
            "probe", "word-sense", "--model", model.ModelPath, "--dataset", "wic:dev", "--data-dir", _directory.Path, "--out", folder, "--overwrite");

        Assert.Equal(1, code);
        Assert.DoesNotContain("--overwrite", error, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(folder, "results.json")));
    }
}
