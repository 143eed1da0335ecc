using System.Text;

namespace ExpertScope.Models.Synthetic;

/// <summary>
/// A small GPT-2-style byte-level BPE vocabulary learned from text: the 256 byte symbols, then one token per
/// learned merge, then BOS and EOS. Synthetic models carry it so that every verb that needs a tokenizer works
/// on a model the project writes itself.
/// </summary>
/// <param name="Tokens">Token strings in id order, in GPT-2's byte-to-unicode alphabet.</param>
/// <param name="Merges">Merge rules <c>"left right"</c> in priority order.</param>
/// <param name="BosId">Id of <c>&lt;s&gt;</c>.</param>
/// <param name="EosId">Id of <c>&lt;/s&gt;</c>.</param>
public sealed record ByteLevelBpeVocabulary(IReadOnlyList<string> Tokens, IReadOnlyList<string> Merges, int BosId, int EosId)
{
    /// <summary>GGUF <c>tokenizer.ggml.token_type</c> values: 1 normal, 3 control.</summary>
    public int[] TokenTypes() => Enumerable.Range(0, Tokens.Count).Select(i => i == BosId || i == EosId ? 3 : 1).ToArray();

    /// <summary>
    /// Learns <paramref name="mergeCount"/> merges from <paramref name="text"/>. Words are split at spaces with
    /// the space kept at the front of the next word (GPT-2 style). Ties between equally frequent pairs are
    /// broken by the pair's ordinal string order, so the result depends only on the inputs.
    /// </summary>
    public static ByteLevelBpeVocabulary Learn(string text, int mergeCount)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentOutOfRangeException.ThrowIfNegative(mergeCount);
        var byteSymbols = ByteSymbols();
        var wordCounts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var word in SplitWords(text))
        {
            string mapped = string.Concat(Encoding.UTF8.GetBytes(word).Select(b => byteSymbols[b]));
            wordCounts[mapped] = wordCounts.GetValueOrDefault(mapped) + 1;
        }

        // Each distinct word as its current list of symbols.
        var words = wordCounts.Select(kv => (Symbols: kv.Key.Select(c => c.ToString()).ToList(), Count: kv.Value)).ToList();
        var tokens = new List<string>(byteSymbols.Select(c => c.ToString()));
        var known = new HashSet<string>(tokens, StringComparer.Ordinal);
        var merges = new List<string>(mergeCount);
        while (merges.Count < mergeCount)
        {
            var pairCounts = new Dictionary<(string Left, string Right), int>();
            foreach (var (symbols, count) in words)
            {
                for (int i = 0; i + 1 < symbols.Count; i++)
                {
                    var pair = (symbols[i], symbols[i + 1]);
                    pairCounts[pair] = pairCounts.GetValueOrDefault(pair) + count;
                }
            }

            if (pairCounts.Count == 0)
            {
                break;
            }

            var best = pairCounts
                .OrderByDescending(kv => kv.Value)
                .ThenBy(kv => kv.Key.Left + " " + kv.Key.Right, StringComparer.Ordinal)
                .First().Key;
            string merged = best.Left + best.Right;
            merges.Add(best.Left + " " + best.Right);
            if (known.Add(merged))
            {
                tokens.Add(merged);
            }

            foreach (var (symbols, _) in words)
            {
                for (int i = 0; i + 1 < symbols.Count; i++)
                {
                    if (symbols[i] == best.Left && symbols[i + 1] == best.Right)
                    {
                        symbols[i] = merged;
                        symbols.RemoveAt(i + 1);
                    }
                }
            }
        }

        int bos = tokens.Count;
        tokens.Add("<s>");
        tokens.Add("</s>");
        return new ByteLevelBpeVocabulary(tokens, merges, bos, bos + 1);
    }

    private static IEnumerable<string> SplitWords(string text)
    {
        var current = new StringBuilder();
        foreach (char c in text)
        {
            if (char.IsWhiteSpace(c) && current.Length > 0 && !char.IsWhiteSpace(current[^1]))
            {
                yield return current.ToString();
                current.Clear();
            }

            current.Append(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
        }

        if (current.Length > 0)
        {
            yield return current.ToString();
        }
    }

    /// <summary>GPT-2's reversible byte-to-unicode map: printable bytes map to themselves, the rest to 256+.</summary>
    public static char[] ByteSymbols()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)next++;
        }

        return map;
    }
}
