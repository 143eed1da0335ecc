namespace ExpertScope.Cli.Tests;

/// <summary>What a newcomer reads and runs first says what it needs, shows progress, and is checked by CI.</summary>
public sealed class NewcomerDocsTests
{
    private static string Read(params string[] parts) => File.ReadAllText(Path.Combine([CliEdgeTests.RepositoryRoot(), .. parts]));

    [Fact]
    public void ReadmeNamesThePrerequisites_TheFirstRunTime_AndTheToolInstall()
    {
        string readme = Read("README.md");
        Assert.Contains(".NET 10 SDK", readme, StringComparison.Ordinal);
        Assert.Contains("about 4 minutes", readme, StringComparison.Ordinal);
        Assert.Contains("dotnet tool install --global --add-source", readme, StringComparison.Ordinal);
        Assert.Contains("usage error", readme, StringComparison.Ordinal);
        Assert.Contains("130", readme, StringComparison.Ordinal);
    }

    [Fact]
    public void LauncherShowsBuildProgress_AndQuickstartWaitsForTheAptLock()
    {
        string launcher = Read("expertscope");
        Assert.Contains("-tl:auto", launcher, StringComparison.Ordinal);
        Assert.DoesNotContain("-v quiet", launcher, StringComparison.Ordinal);
        Assert.Contains("Built in", launcher, StringComparison.Ordinal);
        foreach (string line in Read("quickstart.sh").Split('\n').Where(l => l.Contains("apt-get install", StringComparison.Ordinal)))
        {
            Assert.Contains("-o DPkg::Lock::Timeout=120", line, StringComparison.Ordinal);
            Assert.Contains("--no-install-recommends", line, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void CiInstallsTheToolAndChromium_AndCountsTheToolCheck()
    {
        string ci = Read(".ci", "run");
        Assert.Contains("dotnet pack src/ExpertScope.Cli/ExpertScope.Cli.csproj", ci, StringComparison.Ordinal);
        Assert.Contains("dotnet tool install --tool-path", ci, StringComparison.Ordinal);
        Assert.Contains("--version", ci, StringComparison.Ordinal);
        Assert.Contains("failed=$((failed + 1))", ci, StringComparison.Ordinal);
        Assert.Contains("chromium", ci, StringComparison.Ordinal);
        Assert.EndsWith("[ \"$status\" -eq 0 ] && [ \"$failed\" -eq 0 ]", ci.TrimEnd(), StringComparison.Ordinal);
        string project = Read("src", "ExpertScope.Cli", "ExpertScope.Cli.csproj");
        Assert.Contains("<PackAsTool>true</PackAsTool>", project, StringComparison.Ordinal);
        Assert.Contains("<ToolCommandName>expertscope</ToolCommandName>", project, StringComparison.Ordinal);
    }
}
