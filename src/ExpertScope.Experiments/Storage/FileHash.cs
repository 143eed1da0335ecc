using System.Security.Cryptography;

namespace ExpertScope.Experiments.Storage;

/// <summary>Content hashes of (possibly very large) files, read in a stream so memory use stays flat.</summary>
public static class FileHash
{
    /// <summary>The SHA-256 of a file's bytes as 64 lower-case hex digits.</summary>
    /// <param name="path">The file (a GGUF can be tens of gigabytes; it is read once, sequentially).</param>
    /// <param name="cancellationToken">Stops the hashing.</param>
    public static async Task<string> Sha256Async(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        await using var stream = new FileStream(
            path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 20, FileOptions.SequentialScan | FileOptions.Asynchronous);
        var hash = await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false);
        return Convert.ToHexStringLower(hash);
    }
}
