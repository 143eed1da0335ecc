using System.IO.Compression;
using System.Text.Json;
using ExpertScope.Experiments.Data.WordNet;

namespace ExpertScope.Experiments.Data;

/// <summary>A human-judged substitute of a SWORDS target.</summary>
/// <param name="Id">The substitute id (<c>s:…</c>).</param>
/// <param name="Word">The substitute (lemmatized in v1.1).</param>
/// <param name="Score">Fraction of judgements that are <c>TRUE</c> (<c>UNSURE</c> counts as not TRUE).</param>
/// <param name="JudgementCount">How many judgements there were.</param>
/// <param name="Source">File and line of the substitute entry.</param>
public sealed record SwordsSubstitute(string Id, string Word, double Score, int JudgementCount, SourceLocation Source);

/// <summary>A SWORDS target word in its context with its judged substitutes.</summary>
/// <param name="Id">The target id (<c>t:…</c>).</param>
/// <param name="Word">The target as written in the context.</param>
/// <param name="Lemma">CoInCo's lemma of the target where given, else the target in lower case.</param>
/// <param name="PartOfSpeech"><c>NOUN</c>, <c>VERB</c>, <c>ADJ</c> or <c>ADV</c>.</param>
/// <param name="Target">The context with the target's span.</param>
/// <param name="Substitutes">The substitutes, in file order.</param>
public sealed record SwordsTarget(string Id, string Word, string Lemma, string PartOfSpeech, SentenceTarget Target, IReadOnlyList<SwordsSubstitute> Substitutes)
{
    /// <summary>The SWORDS context id (<c>c:…</c>): the unit of replication of the substitution probe (null when unknown).</summary>
    public string? ContextId { get; init; }
}

/// <summary>
/// Reads SWORDS v1.1 (Lee et al., 2021): one gzip'd JSON object with <c>contexts</c>, <c>targets</c> (context id,
/// target, character offset, pos), <c>substitutes</c> (target id, substitute) and <c>substitute_labels</c>
/// (judgements <c>TRUE</c>/<c>FALSE</c>/<c>UNSURE</c>); builds substitution pairs from it.
/// </summary>
public static class SwordsLoader
{
    /// <summary>Reads the targets with their substitutes, in the file's target order.</summary>
    /// <param name="path">A <c>.json.gz</c> file (or a plain <c>.json</c> file).</param>
    /// <param name="options">Strict (default) or lenient handling of malformed entries.</param>
    /// <exception cref="DataFormatException">Strict mode: an entry is malformed or refers to a missing context/target.</exception>
    public static IReadOnlyList<SwordsTarget> ReadTargets(string path, LoadOptions? options = null)
    {
        options ??= LoadOptions.Strict;
        var bytes = ReadBytes(path);

        var contexts = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in JsonEntries.Read(bytes, path, "contexts"))
        {
            if (JsonEntries.GetString(entry.Value, "context") is { } text)
            {
                contexts[entry.Key!] = text;
            }
            else
            {
                options.Reject(path, entry.Line, $"context '{entry.Key}' has no string 'context'");
            }
        }

        var labels = new Dictionary<string, (int True, int Total)>(StringComparer.Ordinal);
        foreach (var entry in JsonEntries.Read(bytes, path, "substitute_labels"))
        {
            if (entry.Value.ValueKind != JsonValueKind.Array || entry.Value.GetArrayLength() == 0
                || entry.Value.EnumerateArray().Any(label => label.ValueKind != JsonValueKind.String))
            {
                options.Reject(path, entry.Line, $"labels of '{entry.Key}' are not a non-empty array of strings");
                continue;
            }

            // An unknown judgement would silently count as "not TRUE" and lower the substitute's score.
            if (entry.Value.EnumerateArray().Select(label => label.GetString()).FirstOrDefault(label => label is not ("TRUE" or "FALSE" or "UNSURE")) is { } unknown)
            {
                options.Reject(path, entry.Line, $"labels of '{entry.Key}' include '{unknown}', which is not TRUE, FALSE or UNSURE");
                continue;
            }

            labels[entry.Key!] = (entry.Value.EnumerateArray().Count(label => label.GetString() == "TRUE"), entry.Value.GetArrayLength());
        }

        var substitutes = new Dictionary<string, List<SwordsSubstitute>>(StringComparer.Ordinal);
        foreach (var entry in JsonEntries.Read(bytes, path, "substitutes"))
        {
            // GetString is null for a missing key or a value of another JSON type (a number, null, an array).
            var targetId = JsonEntries.GetString(entry.Value, "target_id");
            var word = JsonEntries.GetString(entry.Value, "substitute");
            if (targetId is null || string.IsNullOrWhiteSpace(word))
            {
                options.Reject(path, entry.Line, $"substitute '{entry.Key}' needs a string 'target_id' and a non-empty 'substitute'");
                continue;
            }

            if (!labels.TryGetValue(entry.Key!, out var label))
            {
                options.Reject(path, entry.Line, $"substitute '{entry.Key}' has no entry in substitute_labels");
                continue;
            }

            if (!substitutes.TryGetValue(targetId, out var list))
            {
                substitutes[targetId] = list = [];
            }

            list.Add(new SwordsSubstitute(entry.Key!, word, (double)label.True / label.Total, label.Total, new SourceLocation(path, entry.Line, entry.Key)));
        }

        var targets = new List<SwordsTarget>();
        var claimed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in JsonEntries.Read(bytes, path, "targets"))
        {
            var contextId = JsonEntries.GetString(entry.Value, "context_id");
            var word = JsonEntries.GetString(entry.Value, "target");
            var pos = JsonEntries.GetString(entry.Value, "pos");
            JsonElement offsetElement = default;
            var hasOffset = entry.Value.ValueKind == JsonValueKind.Object && entry.Value.TryGetProperty("offset", out offsetElement)
                && offsetElement.ValueKind == JsonValueKind.Number && offsetElement.TryGetInt32(out _);
            if (contextId is null || word is null || pos is null || !hasOffset)
            {
                options.Reject(path, entry.Line, $"target '{entry.Key}' needs string context_id, target and pos and an integer offset");
                continue;
            }

            var offset = offsetElement.GetInt32();
            if (!contexts.TryGetValue(contextId, out var context))
            {
                options.Reject(path, entry.Line, $"target '{entry.Key}' refers to missing context '{contextId}'");
                continue;
            }

            var span = new TextSpan(offset, offset + word.Length);
            if (!span.IsValidIn(context.Length) || !context.AsSpan(offset, word.Length).SequenceEqual(word))
            {
                options.Reject(path, entry.Line, $"target '{entry.Key}': '{word}' is not at offset {offset} of its context");
                continue;
            }

            var lemma = entry.Value.TryGetProperty("extra", out var extra) ? JsonEntries.GetString(extra, "coinco_lemma") : null;
            claimed.Add(entry.Key!);
            targets.Add(new SwordsTarget(
                entry.Key!,
                word,
                lemma ?? word.ToLowerInvariant(),
                pos,
                new SentenceTarget(context, span, new SourceLocation(path, entry.Line, entry.Key)),
                substitutes.TryGetValue(entry.Key!, out var list) ? list : [])
            {
                ContextId = contextId,
            });
        }

        // A substitute whose target is missing (or was skipped) would otherwise vanish without a word.
        foreach (var (targetId, orphans) in substitutes)
        {
            if (!claimed.Contains(targetId))
            {
                foreach (var orphan in orphans)
                {
                    options.Reject(path, orphan.Source.Line, $"substitute '{orphan.Id}' refers to target '{targetId}', which is missing or was skipped");
                }
            }
        }

        return targets;
    }

    /// <summary>
    /// Substitution pairs: the original context (first) against the context with the target replaced by a
    /// substitute (second). Substitutes scoring at least <paramref name="similarThreshold"/> give
    /// <see cref="PairLabel.Same"/> (similar); those scoring exactly 0 give <see cref="PairLabel.Different"/>
    /// (dissimilar); scores in between are left out by design. Scores are kept in <see cref="WordPair.Score"/>.
    /// </summary>
    /// <param name="targets">Targets from <see cref="ReadTargets"/>.</param>
    /// <param name="similarThreshold">Lowest score counted as similar (0.5 by default: at least half the annotators).</param>
    /// <param name="inflector">Puts each substitute into the target's inflected form (null: substitutes as written).</param>
    public static IEnumerable<WordPair> BuildPairs(IEnumerable<SwordsTarget> targets, double similarThreshold = 0.5, SubstituteInflector? inflector = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(similarThreshold);
        foreach (var target in targets)
        {
            foreach (var substitute in target.Substitutes)
            {
                PairLabel label;
                if (substitute.Score >= similarThreshold)
                {
                    label = PairLabel.Same;
                }
                else if (substitute.Score == 0)
                {
                    label = PairLabel.Different;
                }
                else
                {
                    continue;
                }

                yield return Substitution($"swords.{substitute.Id}", target, substitute.Word, label, substitute.Source, inflector) with { Score = substitute.Score };
            }
        }
    }

    /// <summary>
    /// Dissimilar substitution pairs from WordNet: for each target, up to <paramref name="perTarget"/> words of its
    /// part of speech with Wu-Palmer similarity below <paramref name="maxSimilarity"/> to its lemma, put in its place.
    /// <see cref="WordPair.Score"/> holds the Wu-Palmer similarity. Targets whose part of speech WordNet lacks are skipped.
    /// </summary>
    public static IEnumerable<WordPair> BuildWordNetDissimilarPairs(
        IEnumerable<SwordsTarget> targets, WordNetDissimilarPool pool, int perTarget, int seed, double maxSimilarity = 0.3, SubstituteInflector? inflector = null)
    {
        ArgumentNullException.ThrowIfNull(pool);
        var number = 0;
        foreach (var target in targets)
        {
            if (WordNetDatabase.ParsePos(target.PartOfSpeech) is not { } pos)
            {
                continue;
            }

            // One sub-seed per target, derived arithmetically (HashCode.Combine is randomized per process).
            var targetSeed = unchecked((seed * 1_000_003) + number++);
            foreach (var (word, similarity) in pool.Sample(target.Lemma, pos, perTarget, targetSeed, maxSimilarity))
            {
                yield return Substitution($"swords-wn.{target.Id}.{word}", target, word, PairLabel.Different, target.Target.Source, inflector) with { Score = similarity };
            }
        }
    }

    private static WordPair Substitution(string id, SwordsTarget target, string lemma, PairLabel label, SourceLocation source, SubstituteInflector? inflector)
    {
        var (substitute, form) = (lemma, (string?)null);
        if (inflector is not null)
        {
            (substitute, form) = inflector.Inflect(lemma, target.Word, target.Lemma, target.PartOfSpeech);
        }

        var original = target.Target;
        var span = original.Span;
        var replaced = string.Concat(original.Sentence.AsSpan(0, span.Start), substitute, original.Sentence.AsSpan(span.End));
        return new WordPair(
            id,
            target.Lemma,
            target.PartOfSpeech,
            original,
            new SentenceTarget(replaced, new TextSpan(span.Start, span.Start + substitute.Length), source),
            label)
        {
            Substitute = substitute,
            ContextId = target.ContextId ?? target.Id,
            SubstituteForm = form,
        };
    }

    private static byte[] ReadBytes(string path)
    {
        using var file = File.OpenRead(path);
        var isGzip = file.ReadByte() == 0x1f && file.ReadByte() == 0x8b;
        file.Position = 0;
        using Stream stream = isGzip ? new GZipStream(file, CompressionMode.Decompress) : file;
        using var memory = new MemoryStream();
        try
        {
            stream.CopyTo(memory);
        }
        catch (InvalidDataException error)
        {
            throw new DataFormatException(path, 1, "corrupt gzip stream: " + error.Message);
        }

        return memory.ToArray();
    }
}
