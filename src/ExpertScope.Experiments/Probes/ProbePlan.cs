using ExpertScope.Experiments.Data;
using ExpertScope.Tokenizers;

namespace ExpertScope.Experiments.Probes;

/// <summary>The condition names the probes write.</summary>
public static class ProbeConditions
{
    /// <summary>Word-sense: the two occurrences share a sense.</summary>
    public const string SameSense = "same-sense";

    /// <summary>Word-sense: the two occurrences differ in sense.</summary>
    public const string DifferentSense = "different-sense";

    /// <summary>Substitution: a substitute judged similar, against the original target.</summary>
    public const string Similar = "similar";

    /// <summary>Substitution: a substitute judged dissimilar (SWORDS score 0).</summary>
    public const string Dissimilar = "dissimilar";

    /// <summary>Substitution: a same-part-of-speech word far from the target in WordNet.</summary>
    public const string WordNetDissimilar = "wordnet-dissimilar";

    /// <summary>Control: the target's own token ids in an unrelated sentence of the data set.</summary>
    public const string TokenIdentity = "token-identity";

    /// <summary>Control: a different word in an unrelated sentence.</summary>
    public const string DifferentWord = "different-word";

    /// <summary>The condition of a data-set pair.</summary>
    public static string Of(ProbeKind kind, WordPair pair)
    {
        ArgumentNullException.ThrowIfNull(pair);
        if (kind == ProbeKind.WordSense)
        {
            return pair.Label == PairLabel.Same ? SameSense : DifferentSense;
        }

        return pair.Label == PairLabel.Same ? Similar : pair.Id.StartsWith("swords-wn.", StringComparison.Ordinal) ? WordNetDissimilar : Dissimilar;
    }

    /// <summary>The comparisons a probe reports, first the main one: (higher-expected condition, lower-expected condition).</summary>
    public static IReadOnlyList<(string First, string Second)> Comparisons(ProbeKind kind) => kind == ProbeKind.WordSense
        ? [(SameSense, DifferentSense), (SameSense, TokenIdentity), (DifferentSense, TokenIdentity), (TokenIdentity, DifferentWord)]
        : [(Similar, Dissimilar), (Similar, WordNetDissimilar), (Similar, TokenIdentity), (Dissimilar, TokenIdentity), (TokenIdentity, DifferentWord)];

    /// <summary>Every condition of a probe in display order.</summary>
    public static IReadOnlyList<string> All(ProbeKind kind) => kind == ProbeKind.WordSense
        ? [SameSense, DifferentSense, TokenIdentity, DifferentWord]
        : [Similar, Dissimilar, WordNetDissimilar, TokenIdentity, DifferentWord];
}

/// <summary>Why a pair or control was left out (the <c>reason</c> of <c>dropped_pairs</c> in <c>results.json</c>).</summary>
public static class DropReasons
{
    /// <summary>The two token sequences are identical up to and including the target's last sub-token: a causal model routes both targets identically, whatever the sense.</summary>
    public const string IdenticalPrefix = "identical-prefix";

    /// <summary>No token covers the target's characters.</summary>
    public const string NoToken = "no-token";

    /// <summary>The target (or the sentence end read out) lies beyond the model's context.</summary>
    public const string BeyondContext = "beyond-context";

    /// <summary>Token-identity control: the target's token ids occur in no unrelated sentence of the data set.</summary>
    public const string NoOccurrence = "no-unrelated-occurrence";

    /// <summary>Token-identity control: the target's token ids occur in unrelated sentences only inside longer words (" play" in " players").</summary>
    public const string InsideLongerWord = "only-inside-longer-words";

    /// <summary>Token-identity control: the target shares a token with neighbouring characters, so its token ids are not the word's own.</summary>
    public const string TargetSplitsToken = "target-shares-a-token";

    /// <summary>Different-word control: no anchor of another lemma in an unrelated sentence.</summary>
    public const string NoOtherWord = "no-other-word";
}

/// <summary>A pair or control left out of every comparison.</summary>
/// <param name="PairId">The pair's id (controls: the anchor's id with <c>#token-identity</c> or <c>#different-word</c>).</param>
/// <param name="Condition">The condition it would have had.</param>
/// <param name="Reason">One of <see cref="DropReasons"/>.</param>
/// <param name="Detail">The reason in words.</param>
public sealed record DroppedPair(string PairId, string Condition, string Reason, string Detail)
{
    /// <summary>"id: detail", as <c>dropped_pairs</c> lists it.</summary>
    public override string ToString() => $"{PairId}: {Detail}";
}

/// <summary>A word in one planned sentence: the sentence's index in <see cref="ProbePlan.Sentences"/> and the word's token indices.</summary>
/// <param name="Sentence">Index into <see cref="ProbePlan.Sentences"/>.</param>
/// <param name="Tokens">Token positions of the word, ascending.</param>
public sealed record WordOccurrence(int Sentence, IReadOnlyList<int> Tokens)
{
    /// <summary>The position the position control uses: the word's first token.</summary>
    public int Position => Tokens[0];
}

/// <summary>One comparison of two word occurrences (a data-set pair or a control).</summary>
/// <param name="PairId">The pair's id; controls append <c>#token-identity</c> or <c>#different-word</c> to their anchor's id.</param>
/// <param name="Condition">One of <see cref="ProbeConditions"/>.</param>
/// <param name="Word">The target lemma (for the different-word control, the anchor's).</param>
/// <param name="First">The anchor word.</param>
/// <param name="Second">The compared word.</param>
/// <param name="SplitsToken">Whether an alignment cut through a token.</param>
/// <param name="DataScore">The data set's graded score where it has one (SWORDS).</param>
public sealed record PlannedPair(string PairId, string Condition, string Word, WordOccurrence First, WordOccurrence Second, bool SplitsToken, double? DataScore)
{
    /// <summary>
    /// True when both words are the same token-id sequence (WiC often pairs <c>board</c> with <c>boards</c>, which
    /// tokenize differently): the pairs on which a sense effect cannot come from token identity.
    /// </summary>
    public bool SameTokenIds { get; init; }

    /// <summary>The context the pair belongs to (substitution: the SWORDS context id; controls: their anchor's); null for word-sense pairs.</summary>
    public string? ContextId { get; init; }
}

/// <summary>
/// What a probe will run: the distinct sentences (each run once), their tokens, and every pair to score,
/// controls included. Built deterministically from the data and the seed.
/// </summary>
public sealed class ProbePlan
{
    private ProbePlan(List<string> sentences, List<IReadOnlyList<int>> tokenIds, List<IReadOnlyList<string>> tokenTexts, List<PlannedPair> pairs, List<DroppedPair> dropped, int anchors)
    {
        Sentences = sentences;
        TokenIds = tokenIds;
        TokenTexts = tokenTexts;
        Pairs = pairs;
        DroppedPairs = dropped;
        Dropped = [.. dropped.Select(drop => drop.ToString())];
        Anchors = anchors;
    }

    /// <summary>Distinct sentences to run, in a fixed order (the trace's sequence numbers).</summary>
    public IReadOnlyList<string> Sentences { get; }

    /// <summary>Token ids of each sentence (BOS included where the model adds it).</summary>
    public IReadOnlyList<IReadOnlyList<int>> TokenIds { get; }

    /// <summary>Token texts of each sentence, aligned with <see cref="TokenIds"/>.</summary>
    public IReadOnlyList<IReadOnlyList<string>> TokenTexts { get; }

    /// <summary>Every pair to score: data-set pairs then controls.</summary>
    public IReadOnlyList<PlannedPair> Pairs { get; }

    /// <summary>Pairs left out, each with its reason (a target no token covers, no control occurrence found), as text.</summary>
    public IReadOnlyList<string> Dropped { get; }

    /// <summary>Pairs and controls left out, with their condition and reason.</summary>
    public IReadOnlyList<DroppedPair> DroppedPairs { get; }

    /// <summary>Distinct anchors (target occurrences) for which each control was sought.</summary>
    public int Anchors { get; }

    /// <summary>For each sentence, the positions whose routing is needed, ascending.</summary>
    public IReadOnlyList<int[]> NeededPositions()
    {
        var needed = Sentences.Select(_ => new SortedSet<int>()).ToList();
        foreach (var pair in Pairs)
        {
            needed[pair.First.Sentence].UnionWith(pair.First.Tokens);
            needed[pair.Second.Sentence].UnionWith(pair.Second.Tokens);
        }

        return [.. needed.Select(set => set.ToArray())];
    }

    /// <summary>Plans a probe.</summary>
    /// <param name="kind">The probe.</param>
    /// <param name="data">Pairs and the sentence pool.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="seed">Seed of the control sampling.</param>
    /// <param name="contextLength">
    /// The model's context: a word whose last token lies at or beyond it cannot be routed and its pair is dropped.
    /// Sentences are run only up to their last needed token (the model is causal, so later tokens cannot change it).
    /// </param>
    /// <param name="readout">Which token stands for each word: its own sub-tokens or its sentence's last token.</param>
    /// <param name="keepIdenticalPrefixes">Keep pairs whose token sequences agree up to the target's end (dropped by default).</param>
    public static ProbePlan Build(
        ProbeKind kind, ProbeDataSet data, GgufTokenizer tokenizer, int seed, int contextLength = int.MaxValue,
        ProbeReadout readout = ProbeReadout.Target, bool keepIdenticalPrefixes = false)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(tokenizer);
        var sentences = new List<string>();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var ids = new List<IReadOnlyList<int>>();
        var texts = new List<IReadOnlyList<string>>();
        var encoded = new Dictionary<string, (IReadOnlyList<int> Ids, IReadOnlyList<string> Texts, IReadOnlyList<TokenSpan> Spans)>(StringComparer.Ordinal);

        (IReadOnlyList<int> Ids, IReadOnlyList<string> Texts, IReadOnlyList<TokenSpan> Spans) Encode(string sentence)
        {
            if (!encoded.TryGetValue(sentence, out var result))
            {
                // Data text is plain text: control-token spellings inside it are not special.
                var tokens = tokenizer.EncodeWithOffsets(sentence, addSpecial: true, parseSpecial: false);
                result = (tokens.Select(t => t.Id).ToArray(), tokens.Select(t => t.Value).ToArray(),
                    tokens.Select(t => new TokenSpan(t.Offset.Start.GetOffset(sentence.Length), t.Offset.End.GetOffset(sentence.Length))).ToArray());
                encoded[sentence] = result;
            }

            return result;
        }

        int Add(string sentence)
        {
            if (!index.TryGetValue(sentence, out var number))
            {
                var (tokenIds, tokenTexts, _) = Encode(sentence);
                number = sentences.Count;
                index[sentence] = number;
                sentences.Add(sentence);
                ids.Add(tokenIds);
                texts.Add(tokenTexts);
            }

            return number;
        }

        // A causal model routes the token at position p from tokens 0..p alone: two targets whose sentences agree up to
        // the target's last sub-token are routed identically, whatever the senses.
        bool IdenticalPrefix(string first, int firstEnd, string second, int secondEnd) =>
            !keepIdenticalPrefixes && firstEnd == secondEnd
            && Encode(first).Ids.Take(firstEnd + 1).SequenceEqual(Encode(second).Ids.Take(secondEnd + 1));

        // The read-out token must be routed: with the sentence-end readout that is the sentence's last token.
        bool Routable(string sentence, int targetEnd) =>
            (readout == ProbeReadout.SentenceEnd ? Encode(sentence).Ids.Count - 1 : targetEnd) < contextLength;

        var pairs = new List<PlannedPair>();
        var dropped = new List<DroppedPair>();
        // Anchors: distinct first occurrences (a SWORDS context has many substitutes but is one anchor).
        var anchors = new List<(WordPair Pair, WordOccurrence Occurrence, bool Splits)>();
        var anchorKeys = new HashSet<(string, int, int)>();
        foreach (var pair in data.Pairs)
        {
            var condition = ProbeConditions.Of(kind, pair);
            // Sentences join the plan only with a pair that uses them, so every planned sentence has a probed token.
            var a = TokenAlignment.Align(pair.First.Sentence, pair.First.Parts, Encode(pair.First.Sentence).Spans);
            var b = TokenAlignment.Align(pair.Second.Sentence, pair.Second.Parts, Encode(pair.Second.Sentence).Spans);
            if (a.IsEmpty || b.IsEmpty)
            {
                dropped.Add(new(pair.Id, condition, DropReasons.NoToken, $"no token covers the target '{(a.IsEmpty ? pair.First : pair.Second).SurfaceForm}'"));
                continue;
            }

            if (!Routable(pair.First.Sentence, a.Indices[^1]) || !Routable(pair.Second.Sentence, b.Indices[^1]))
            {
                dropped.Add(new(pair.Id, condition, DropReasons.BeyondContext, $"the target lies beyond the model's context of {contextLength} tokens"));
                continue;
            }

            if (IdenticalPrefix(pair.First.Sentence, a.Indices[^1], pair.Second.Sentence, b.Indices[^1]))
            {
                dropped.Add(new(pair.Id, condition, DropReasons.IdenticalPrefix,
                    "the two sentences are the same tokens up to and including the target, so a causal model routes both targets identically"));
                continue;
            }

            var first = Add(pair.First.Sentence);
            var second = Add(pair.Second.Sentence);
            var occurrence = new WordOccurrence(first, a.Indices);
            pairs.Add(new PlannedPair(pair.Id, condition, pair.Word, occurrence, new WordOccurrence(second, b.Indices),
                a.SplitsToken || b.SplitsToken, pair.Score) { SameTokenIds = SameIds(ids, occurrence, new WordOccurrence(second, b.Indices)), ContextId = pair.ContextId });
            if (anchorKeys.Add((pair.First.Sentence, pair.First.Span.Start, pair.First.Span.End)))
            {
                anchors.Add((pair, occurrence, a.SplitsToken || !AtWordBoundary(pair.First.Sentence, Encode(pair.First.Sentence).Spans, a.Indices[0], a.Indices[^1])));
            }
        }

        // Sentences that share a context with an anchor are not "unrelated" to it.
        var related = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var pair in data.Pairs)
        {
            if (!related.TryGetValue(pair.First.Sentence, out var set))
            {
                related[pair.First.Sentence] = set = new HashSet<string>(StringComparer.Ordinal) { pair.First.Sentence };
            }

            set.Add(pair.Second.Sentence);
        }

        // Where each token id occurs in the pool: the token-identity control's search index.
        var occurrences = new Dictionary<int, List<(string Sentence, int Position)>>();
        foreach (var sentence in data.Pool)
        {
            var tokenIds = Encode(sentence).Ids;
            for (var position = 0; position < tokenIds.Count; position++)
            {
                if (!occurrences.TryGetValue(tokenIds[position], out var list))
                {
                    occurrences[tokenIds[position]] = list = [];
                }

                list.Add((sentence, position));
            }
        }

        var random = new Random(seed);
        var controls = new List<PlannedPair>();
        foreach (var (pair, occurrence, splits) in anchors)
        {
            var controlId = $"{pair.Id}#{ProbeConditions.TokenIdentity}";
            var anchorIds = occurrence.Tokens.Select(position => ids[occurrence.Sentence][position]).ToArray();
            var anchorEnd = occurrence.Tokens[^1];
            var exclude = related[pair.First.Sentence];
            var candidates = new List<(string Sentence, int Position)>();
            var insideWords = 0;
            if (!splits && occurrences.TryGetValue(anchorIds[0], out var starts))
            {
                foreach (var (sentence, position) in starts)
                {
                    var (sentenceIds, _, spans) = Encode(sentence);
                    var end = position + anchorIds.Length - 1;
                    if (exclude.Contains(sentence) || end >= sentenceIds.Count || !Routable(sentence, end)
                        || !anchorIds.AsSpan().SequenceEqual(sentenceIds.Skip(position).Take(anchorIds.Length).ToArray())
                        || IdenticalPrefix(pair.First.Sentence, anchorEnd, sentence, end))
                    {
                        continue;
                    }

                    // " play" must not match the first piece of " players": the match must be a whole word.
                    if (!AtWordBoundary(sentence, spans, position, end))
                    {
                        insideWords++;
                        continue;
                    }

                    candidates.Add((sentence, position));
                }
            }

            if (splits)
            {
                dropped.Add(new(controlId, ProbeConditions.TokenIdentity, DropReasons.TargetSplitsToken,
                    $"the target '{pair.First.SurfaceForm}' shares a token with neighbouring characters, so its token ids are not the word's own"));
            }
            else if (candidates.Count == 0)
            {
                dropped.Add(insideWords > 0
                    ? new(controlId, ProbeConditions.TokenIdentity, DropReasons.InsideLongerWord,
                        $"the target's token ids occur in unrelated sentences only inside longer words ({insideWords} such matches)")
                    : new(controlId, ProbeConditions.TokenIdentity, DropReasons.NoOccurrence, "the target's token ids occur in no unrelated sentence of the data set"));
            }
            else
            {
                var (sentence, position) = candidates[random.Next(candidates.Count)];
                var other = new WordOccurrence(Add(sentence), [.. Enumerable.Range(position, anchorIds.Length)]);
                controls.Add(new PlannedPair(controlId, ProbeConditions.TokenIdentity, pair.Word, occurrence, other, false, null) { SameTokenIds = true, ContextId = pair.ContextId });
            }

            // A different word from an unrelated sentence: another anchor with another lemma and context.
            var others = anchors.Where(a => !string.Equals(a.Pair.Word, pair.Word, StringComparison.OrdinalIgnoreCase)
                                            && !exclude.Contains(a.Pair.First.Sentence)).ToList();
            if (others.Count == 0)
            {
                dropped.Add(new($"{pair.Id}#{ProbeConditions.DifferentWord}", ProbeConditions.DifferentWord, DropReasons.NoOtherWord, "no other word in an unrelated sentence"));
            }
            else
            {
                var pick = others[random.Next(others.Count)];
                controls.Add(new PlannedPair($"{pair.Id}#{ProbeConditions.DifferentWord}", ProbeConditions.DifferentWord, pair.Word, occurrence, pick.Occurrence, false, null)
                {
                    SameTokenIds = SameIds(ids, occurrence, pick.Occurrence),
                    ContextId = pair.ContextId,
                });
            }
        }

        pairs.AddRange(controls);
        if (readout == ProbeReadout.SentenceEnd)
        {
            // Pairs and controls were chosen on the targets (token identity included); only the read-out token moves.
            WordOccurrence End(WordOccurrence word) => new(word.Sentence, [ids[word.Sentence].Count - 1]);
            pairs = [.. pairs.Select(pair => pair with { First = End(pair.First), Second = End(pair.Second) })];
        }

        return new ProbePlan(sentences, ids, texts, pairs, dropped, anchors.Count);
    }

    /// <summary>
    /// Whether tokens <paramref name="first"/>..<paramref name="last"/> hold a whole word: no letter or digit
    /// touches their content (offsets without surrounding whitespace or SentencePiece ▁) on either side.
    /// </summary>
    private static bool AtWordBoundary(string sentence, IReadOnlyList<TokenSpan> spans, int first, int last)
    {
        var start = spans[first].Start;
        var end = spans[last].End;
        while (start < end && (char.IsWhiteSpace(sentence[start]) || sentence[start] == '\u2581'))
        {
            start++;
        }

        while (end > start && (char.IsWhiteSpace(sentence[end - 1]) || sentence[end - 1] == '\u2581'))
        {
            end--;
        }

        return (start == 0 || !char.IsLetterOrDigit(sentence[start - 1])) && (end >= sentence.Length || !char.IsLetterOrDigit(sentence[end]));
    }

    private static bool SameIds(List<IReadOnlyList<int>> ids, WordOccurrence first, WordOccurrence second) =>
        first.Tokens.Select(position => ids[first.Sentence][position]).SequenceEqual(second.Tokens.Select(position => ids[second.Sentence][position]));
}
