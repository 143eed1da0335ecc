using ExpertScope.Core;
using ExpertScope.Models;

namespace ExpertScope.Experiments.Pruning;

/// <summary>Turns a plain-text corpus into fixed-length token sequences for profiling and perplexity.</summary>
public static class TextCorpus
{
    /// <summary>
    /// Tokenizes every non-empty line (without special tokens), joins the tokens in file order, and cuts them into
    /// sequences of <paramref name="chunkLength"/> tokens (capped by the context length, each starting with BOS when the
    /// model adds one), stopping after <paramref name="maxTokens"/> tokens.
    /// </summary>
    /// <exception cref="ExpertScopeException">The file is missing or yields fewer than two tokens.</exception>
    public static List<IReadOnlyList<int>> Chunks(MoeModel model, string path, int chunkLength = 128, int maxTokens = 8192)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!File.Exists(path))
        {
            throw new ExpertScopeException($"{path}: corpus file not found.");
        }

        var tokenizer = model.Tokenizer;
        int? bos = tokenizer.AddBos ? tokenizer.BosId : null;
        int length = Math.Max(2, Math.Min(chunkLength, model.Hyperparameters.ContextLength)) - (bos is null ? 0 : 1);
        var all = new List<int>();
        foreach (string line in File.ReadLines(path))
        {
            if (line.Trim().Length == 0)
            {
                continue;
            }

            all.AddRange(tokenizer.Encode(line, addSpecial: false));
            if (all.Count >= maxTokens)
            {
                break;
            }
        }

        if (all.Count > maxTokens)
        {
            all.RemoveRange(maxTokens, all.Count - maxTokens);
        }

        var chunks = new List<IReadOnlyList<int>>();
        for (int start = 0; start < all.Count; start += length)
        {
            var chunk = new List<int>();
            if (bos is { } b)
            {
                chunk.Add(b);
            }

            chunk.AddRange(all.Skip(start).Take(length));
            if (chunk.Count >= 2)
            {
                chunks.Add(chunk);
            }
        }

        if (chunks.Count == 0)
        {
            throw new ExpertScopeException($"{path}: the corpus has too little text.");
        }

        return chunks;
    }
}
