using ExpertScope.Core;

namespace ExpertScope.Models.Architectures;

/// <summary>Maps <c>general.architecture</c> to the <see cref="IArchitecture"/> that builds it.</summary>
public static class ArchitectureRegistry
{
    private static readonly IArchitecture[] Known =
    [
        new Mixtral(),
        new Qwen2Moe(),
        new Qwen3Moe(),
        new Olmoe(),
        new DeepSeek2(),
    ];

    /// <summary>Every supported architecture.</summary>
    public static IReadOnlyList<IArchitecture> All => Known;

    /// <summary>The architecture called <paramref name="name"/>.</summary>
    /// <param name="name">The <c>general.architecture</c> value.</param>
    /// <param name="filePath">The checkpoint, for the error message.</param>
    /// <exception cref="ExpertScopeException">Unsupported; the message lists the supported ones.</exception>
    public static IArchitecture Resolve(string name, string filePath) =>
        Known.FirstOrDefault(a => a.Name == name)
        ?? throw new ExpertScopeException(
            $"{filePath}: architecture '{name}' is not supported (supported: {string.Join(", ", Known.Select(a => a.Name))}).");
}
