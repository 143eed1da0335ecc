using ExpertScope.Cli;

namespace ExpertScope.Cli.Tests.Reliability;

/// <summary>Even an unexpected exception (a bug) ends in one line that says which files the command was reading.</summary>
public sealed class LastResortHandlerTests
{
    [Fact]
    public void UnexpectedException_IsOneLineNamingTheFilesBeingRead()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var context = new CliContext(output, error) { NamedFiles = ["/data/model.gguf", "/data/prompts.txt"] };

        int code = context.Guard(() => throw new InvalidOperationException("Sequence contains no elements"));

        Assert.Equal(1, code); // a runtime failure, not a usage error
        string line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("error: internal error (InvalidOperationException) while reading /data/model.gguf, /data/prompts.txt: Sequence contains no elements", line);
    }
}
