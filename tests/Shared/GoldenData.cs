namespace ExpertScope.Testing;

/// <summary>Locates the oracle data in <c>../shared</c> beside the repository root.</summary>
internal static class GoldenData
{
    private static readonly Lazy<string> SharedRoot = new(FindSharedRoot);
    private static readonly Lazy<string> RepositoryRoot = new(FindRepositoryRoot);

    /// <summary>The <c>shared</c> folder that sits beside the repository.</summary>
    public static string Shared => SharedRoot.Value;

    /// <summary>The <c>shared/golden</c> folder.</summary>
    public static string Golden => Path.Combine(Shared, "golden");

    /// <summary>A path below <c>shared/golden</c>.</summary>
    public static string GoldenPath(params string[] parts) => Path.Combine([Golden, .. parts]);

    /// <summary>
    /// A path below the repository's own <c>tests/golden</c>: llama.cpp dumps made for architectures the shared set
    /// does not cover (how they were made: <c>tests/golden/README.md</c>).
    /// </summary>
    public static string RepositoryGoldenPath(params string[] parts) => Path.Combine([RepositoryRoot.Value, "tests", "golden", .. parts]);

    /// <summary>A path below <c>shared/data</c>.</summary>
    public static string DataPath(params string[] parts) => Path.Combine([Shared, "data", .. parts]);

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ExpertScope.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException("Could not find ExpertScope.slnx above " + AppContext.BaseDirectory);
    }

    private static string FindSharedRoot()
    {
        // Walk up from the test binary until a folder holds both the solution and a sibling "shared".
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ExpertScope.slnx")))
            {
                var shared = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared"));
                if (Directory.Exists(shared))
                {
                    return shared;
                }

                throw new DirectoryNotFoundException($"The golden data folder '{shared}' beside the repository is missing.");
            }
        }

        throw new DirectoryNotFoundException("Could not find ExpertScope.slnx above " + AppContext.BaseDirectory);
    }
}
