namespace ExpertScope.Experiments.Corpora;

/// <summary>A piece of a document picked by <see cref="TokenBudgetSampler"/>.</summary>
/// <param name="Document">The document it was cut from.</param>
/// <param name="Start">UTF-16 offset of the chunk in the document text.</param>
/// <param name="Text">The chunk text (a substring of the document, cut at whitespace where possible).</param>
/// <param name="TokenCount">Its length by the sampler's token-count function.</param>
public sealed record CorpusChunk(CorpusDocument Document, int Start, string Text, int TokenCount);

/// <summary>The chunks drawn for one token budget.</summary>
/// <param name="Name">The corpus or domain name the sample was drawn for.</param>
/// <param name="Chunks">The chunks, in drawing order.</param>
/// <param name="TokenBudget">The budget asked for.</param>
/// <param name="TokenCount">The sum of <see cref="CorpusChunk.TokenCount"/>; equals the budget unless the corpus ran out.</param>
public sealed record CorpusSample(string Name, IReadOnlyList<CorpusChunk> Chunks, long TokenBudget, long TokenCount)
{
    /// <summary>Whether the corpus held enough text for the whole budget.</summary>
    public bool BudgetReached => TokenCount >= TokenBudget;
}

/// <summary>
/// Draws equal token budgets from corpora: a seeded shuffle of the documents, each taken in chunks of at most
/// <c>maxChunkTokens</c> tokens until the budget is filled.
/// </summary>
/// <remarks>
/// Tokens are counted by a caller-supplied function (a model's tokenizer, so budgets are in that model's tokens;
/// whether it counts a BOS token is the caller's choice and applies to every chunk alike). Chunks are cut at
/// whitespace, found by exponential then binary search over word boundaries, so a document of n words costs
/// O(log n) counts per chunk; a single word longer than the limit is cut between characters (never inside a
/// surrogate pair). The last chunk is shortened so the sample holds exactly the budget, which keeps domains
/// comparable. The same documents, budget, limit, counter and seed always give the same sample
/// (<see cref="System.Random"/> with a seed is stable across .NET versions).
/// </remarks>
public static class TokenBudgetSampler
{
    /// <summary>Draws chunks from <paramref name="documents"/> until <paramref name="tokenBudget"/> tokens are reached or the documents run out.</summary>
    /// <param name="name">A name for the sample (a domain).</param>
    /// <param name="documents">The corpus.</param>
    /// <param name="tokenBudget">Tokens to draw, at least 1.</param>
    /// <param name="countTokens">Token count of a text.</param>
    /// <param name="maxChunkTokens">Longest chunk in tokens, at least 1 (the model's context, say).</param>
    /// <param name="seed">Seed of the document shuffle.</param>
    /// <exception cref="ArgumentOutOfRangeException">The budget or the chunk limit is below 1.</exception>
    public static CorpusSample Sample(
        string name, IReadOnlyList<CorpusDocument> documents, long tokenBudget, Func<string, int> countTokens, int maxChunkTokens, int seed)
    {
        ArgumentNullException.ThrowIfNull(documents);
        ArgumentNullException.ThrowIfNull(countTokens);
        ArgumentOutOfRangeException.ThrowIfLessThan(tokenBudget, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxChunkTokens, 1);

        var order = Enumerable.Range(0, documents.Count).ToArray();
        new Random(seed).Shuffle(order);
        var chunks = new List<CorpusChunk>();
        long total = 0;
        foreach (var index in order)
        {
            var document = documents[index];
            var position = 0;
            while (total < tokenBudget)
            {
                var limit = (int)Math.Min(maxChunkTokens, tokenBudget - total);
                var chunk = NextChunk(document, ref position, limit, countTokens);
                if (chunk is null)
                {
                    break;
                }

                chunks.Add(chunk);
                total += chunk.TokenCount;
            }

            if (total >= tokenBudget)
            {
                break;
            }
        }

        return new CorpusSample(name, chunks, tokenBudget, total);
    }

    /// <summary>
    /// Draws the same budget from every domain, each with its own seed derived from <paramref name="seed"/> and the
    /// domain name (a fixed FNV-1a hash, not <see cref="string.GetHashCode()"/>, which changes per process).
    /// </summary>
    /// <returns>One sample per domain, in the order given; check <see cref="CorpusSample.BudgetReached"/> for small corpora.</returns>
    public static IReadOnlyList<CorpusSample> SampleDomains(
        IEnumerable<KeyValuePair<string, IReadOnlyList<CorpusDocument>>> domains, long tokenBudget, Func<string, int> countTokens, int maxChunkTokens, int seed)
    {
        ArgumentNullException.ThrowIfNull(domains);
        return [.. domains.Select(domain => Sample(domain.Key, domain.Value, tokenBudget, countTokens, maxChunkTokens, DomainSeed(seed, domain.Key)))];
    }

    /// <summary>The seed used for one domain: FNV-1a of the UTF-16 name mixed with the base seed.</summary>
    public static int DomainSeed(int seed, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var hash = 2166136261u ^ (uint)seed;
        foreach (var character in name)
        {
            hash = (hash ^ character) * 16777619u;
        }

        return (int)(hash & int.MaxValue);
    }

    /// <summary>
    /// Splits a text into consecutive chunks of at most <paramref name="maxChunkTokens"/> tokens, cut at whitespace
    /// where possible; leading whitespace of each chunk is skipped.
    /// </summary>
    public static IReadOnlyList<CorpusChunk> Chunk(CorpusDocument document, Func<string, int> countTokens, int maxChunkTokens)
    {
        ArgumentNullException.ThrowIfNull(document);
        ArgumentNullException.ThrowIfNull(countTokens);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxChunkTokens, 1);
        var chunks = new List<CorpusChunk>();
        var position = 0;
        while (NextChunk(document, ref position, maxChunkTokens, countTokens) is { } chunk)
        {
            chunks.Add(chunk);
        }

        return chunks;
    }

    // The longest text from `position` (after whitespace) that ends at a word end and fits in `limit` tokens.
    private static CorpusChunk? NextChunk(CorpusDocument document, ref int position, int limit, Func<string, int> countTokens)
    {
        var text = document.Text;
        while (position < text.Length && char.IsWhiteSpace(text[position]))
        {
            position++;
        }

        if (position >= text.Length)
        {
            return null;
        }

        var start = position;
        var ends = new WordEnds(text, start);
        int Count(int end) => countTokens(text[start..end]);

        // Exponential search for the first word count that no longer fits, then binary search below it; word ends
        // are found lazily so a long document is scanned only as far as its chunk reaches.
        var fits = 0;
        var fitsCount = 0;
        var step = 1;
        var tooLong = -1;
        while (ends.Reach(fits + 1) > fits)
        {
            var probe = ends.Reach(fits + step);
            var tokens = Count(ends[probe - 1]);
            if (tokens > limit)
            {
                tooLong = probe;
                break;
            }

            fits = probe;
            fitsCount = tokens;
            step *= 2;
        }

        if (tooLong > 0)
        {
            var (low, high) = (fits, tooLong);
            while (high - low > 1)
            {
                var middle = (low + high) / 2;
                var tokens = Count(ends[middle - 1]);
                if (tokens <= limit)
                {
                    (low, fits, fitsCount) = (middle, middle, tokens);
                }
                else
                {
                    high = middle;
                }
            }
        }

        int end;
        if (fits > 0)
        {
            end = ends[fits - 1];
        }
        else
        {
            // The first word alone is too long: cut it between characters.
            (end, fitsCount) = LongestCharacterPrefix(text, start, ends[0], limit, countTokens);
        }

        position = end;
        return new CorpusChunk(document, start, text[start..end], fitsCount);
    }

    // Binary search over the cut points inside one word that do not split a surrogate pair; the first cut point is
    // taken even when it alone exceeds the limit, so every call makes progress.
    private static (int End, int Tokens) LongestCharacterPrefix(string text, int start, int wordEnd, int limit, Func<string, int> countTokens)
    {
        var cuts = new List<int>();
        for (var end = start + 1; end <= wordEnd; end++)
        {
            if (end == wordEnd || !char.IsHighSurrogate(text[end - 1]) || !char.IsLowSurrogate(text[end]))
            {
                cuts.Add(end);
            }
        }

        var best = (End: cuts[0], Tokens: countTokens(text[start..cuts[0]]));
        var (low, high) = (1, cuts.Count - 1);
        while (low <= high)
        {
            var middle = (low + high) / 2;
            var tokens = countTokens(text[start..cuts[middle]]);
            if (tokens <= limit)
            {
                best = (cuts[middle], tokens);
                low = middle + 1;
            }
            else
            {
                high = middle - 1;
            }
        }

        return best;
    }

    // The ends (exclusive offsets) of the words from a start offset, found on demand.
    private sealed class WordEnds(string text, int start)
    {
        private readonly List<int> _ends = [];
        private int _scan = start;

        public int this[int index] => _ends[index];

        // Finds up to `count` word ends and returns how many there are (fewer at the end of the text).
        public int Reach(int count)
        {
            while (_ends.Count < count && _scan < text.Length)
            {
                if (!char.IsWhiteSpace(text[_scan]) && (_scan + 1 == text.Length || char.IsWhiteSpace(text[_scan + 1])))
                {
                    _ends.Add(_scan + 1);
                }

                _scan++;
            }

            return Math.Min(count, _ends.Count);
        }
    }
}
