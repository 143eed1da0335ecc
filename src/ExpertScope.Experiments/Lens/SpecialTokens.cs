using ExpertScope.Models;
using ExpertScope.Tokenizers;

namespace ExpertScope.Experiments.Lens;

/// <summary>The token ids routing statistics leave out by default.</summary>
public static class SpecialTokens
{
    /// <summary>
    /// BOS, EOS and every control token of the vocabulary (chat markers such as <c>&lt;|im_start|&gt;</c>): they are not
    /// text of any domain, and BOS alone, one per sequence and routed by position rather than meaning, would otherwise
    /// be counted as a token of every domain.
    /// </summary>
    public static IReadOnlySet<int> Ids(MoeModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var tokenizer = model.Tokenizer;
        var ids = new HashSet<int>();
        for (int id = 0; id < tokenizer.VocabularySize; id++)
        {
            if ((tokenizer.GetAttributes(id) & TokenAttributes.Control) != 0)
            {
                ids.Add(id);
            }
        }

        if (tokenizer.BosId is { } bos)
        {
            ids.Add(bos);
        }

        if (tokenizer.EosId is { } eos)
        {
            ids.Add(eos);
        }

        return ids;
    }
}
