using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using ExpertScope.Experiments.Runs;
using ExpertScope.Experiments.Storage;

namespace ExpertScope.Experiments.Pruning;

/// <summary>
/// The finished work units of a resumable steering / pruning run and the result text stored with each. A unit found
/// here is not computed again: its stored result is used instead, so an interrupted and resumed run gives exactly what
/// an uninterrupted one gives. Without a <see cref="RunFolder"/> (<see cref="None"/>) every unit is computed and nothing is kept.
/// </summary>
public sealed class UnitJournal
{
    private readonly RunFolder? _folder;
    private readonly Dictionary<string, string?> _results = new(StringComparer.Ordinal);

    /// <summary>Reads the units already finished in <paramref name="folder"/> (null: keep nothing).</summary>
    public UnitJournal(RunFolder? folder)
    {
        _folder = folder;
        if (folder is not null)
        {
            foreach (var record in folder.Journal.Records)
            {
                _results[record.Unit] = record.Data;
            }
        }
    }

    /// <summary>A journal that keeps nothing (every unit is computed).</summary>
    public static UnitJournal None { get; } = new(null);

    /// <summary>True if <paramref name="unit"/> was finished by an earlier attempt (or earlier in this one; never for <see cref="None"/>).</summary>
    public bool IsFinished(string unit) => _results.ContainsKey(unit);

    /// <summary>How many of <paramref name="units"/> are finished.</summary>
    public int CountFinished(IEnumerable<string> units) => units.Count(IsFinished);

    /// <summary>
    /// The result of <paramref name="unit"/>: the stored one if it is finished, else <paramref name="compute"/>'s, which is
    /// recorded (flushed to the disk) before it is returned.
    /// </summary>
    /// <param name="unit">The unit's id.</param>
    /// <param name="compute">Does the work; its text must hold everything later steps need.</param>
    /// <param name="cancellationToken">Checked before unfinished work starts.</param>
    public string GetOrCompute(string unit, Func<string> compute, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(unit);
        ArgumentNullException.ThrowIfNull(compute);
        if (_results.TryGetValue(unit, out var stored) && stored is not null)
        {
            return stored;
        }

        cancellationToken.ThrowIfCancellationRequested();
        var result = compute();
        if (_folder is not null)
        {
            _folder.MarkFinished(unit, result);
            _results[unit] = result;
        }

        return result;
    }

    /// <summary>
    /// The manifest of a steering / pruning run: <paramref name="settings"/> (every setting that decides the results) and
    /// the model file's SHA-256, so a re-run with anything changed is refused instead of mixing results.
    /// </summary>
    /// <exception cref="Core.ExpertScopeException">The model file does not exist.</exception>
    public static RunManifest Manifest(string kind, string modelPath, IReadOnlyDictionary<string, string> settings, long? seed = null, string? commandLine = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(kind);
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        ArgumentNullException.ThrowIfNull(settings);
        if (!File.Exists(modelPath))
        {
            throw new Core.ExpertScopeException($"model file '{modelPath}' does not exist");
        }

        return new RunManifest
        {
            Kind = kind,
            Settings = settings,
            Seed = seed,
            ModelSha256 = FileHash.Sha256Async(modelPath).GetAwaiter().GetResult(),
            CommandLine = commandLine,
            ExpertScopeVersion = TraceMetadata.CurrentVersion,
        };
    }

    /// <summary>SHA-256 (lower-case hex) of a list of texts, to name a prompt set or corpus in a manifest by its content.</summary>
    public static string HashOf(IEnumerable<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (string text in texts)
        {
            var bytes = Encoding.UTF8.GetBytes(text);
            hash.AppendData(BitConverter.GetBytes(bytes.Length));
            hash.AppendData(bytes);
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>SHA-256 (lower-case hex) of token sequences.</summary>
    public static string HashOf(IEnumerable<IReadOnlyList<int>> sequences)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        return HashOf(sequences.Select(s => string.Join(' ', s.Select(t => t.ToString(CultureInfo.InvariantCulture)))));
    }

    /// <summary>Stores a perplexity result exactly (round-trip formatting).</summary>
    public static string Format(PerplexityResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return string.Create(CultureInfo.InvariantCulture, $"{result.NegativeLogLikelihood:R} {result.PredictedTokens}");
    }

    /// <summary>Reads back what <see cref="Format(PerplexityResult)"/> stored.</summary>
    public static PerplexityResult ParsePerplexity(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split(' ');
        return new PerplexityResult(double.Parse(parts[0], CultureInfo.InvariantCulture), long.Parse(parts[1], CultureInfo.InvariantCulture));
    }

    /// <summary>Stores token ids as text.</summary>
    public static string FormatTokens(IEnumerable<int> tokens) =>
        string.Join(' ', tokens.Select(t => t.ToString(CultureInfo.InvariantCulture)));

    /// <summary>Reads back what <see cref="FormatTokens"/> stored.</summary>
    public static List<int> ParseTokens(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return [.. text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(t => int.Parse(t, CultureInfo.InvariantCulture))];
    }
}
