namespace ExpertScope.Experiments.Data.WordNet;

/// <summary>What happened to a substitute put in the target's place (counted per condition in <c>results.json</c>).</summary>
public static class SubstituteForm
{
    /// <summary>The target is written in its base form (or is an adverb): the substitute's lemma is used as it is.</summary>
    public const string BaseForm = "base-form";

    /// <summary>The substitute was inflected like the target (<c>banks</c> → <c>lenders</c>) and WordNet's morphology maps the form back to it.</summary>
    public const string Inflected = "inflected";

    /// <summary>
    /// The target is inflected but the substitute could not be (an irregular past of the target or substitute whose
    /// tense WordNet does not tell, a substitute not in WordNet, a form morphy does not map back): left as its lemma.
    /// </summary>
    public const string NotInflected = "not-inflected";

    /// <summary>A multi-word substitute (<c>financial institution</c>): kept as written, counted apart.</summary>
    public const string MultiWord = "multi-word";

    /// <summary>Every form, in reporting order.</summary>
    public static IReadOnlyList<string> All { get; } = [BaseForm, Inflected, NotInflected, MultiWord];
}

/// <summary>
/// Puts a lemmatized substitute (SWORDS v1.1 substitutes are lemmas) into the target's inflected form using WordNet's
/// own morphology: the target's inflection is read off with morphy (<see cref="WordNetDatabase.BaseForms"/>: the
/// exception lists, then the detachment rules), the substitute gets the regular English spelling of that inflection
/// (or its one irregular form from the exception list), and the result is kept only if morphy maps it back to the
/// substitute. A capitalised target gets a capitalised substitute.
/// </summary>
/// <param name="database">WordNet 3.0.</param>
public sealed class SubstituteInflector(WordNetDatabase database)
{
    private enum Inflection
    {
        None,
        Plural,
        ThirdPerson,
        Past,
        Progressive,
        Comparative,
        Superlative,
        Unknown,
    }

    /// <summary>The substitute as it goes into the context, and which <see cref="SubstituteForm"/> it is.</summary>
    /// <param name="substitute">The substitute lemma.</param>
    /// <param name="target">The target as written in the context (<c>banks</c>).</param>
    /// <param name="lemma">The target's lemma (<c>bank</c>).</param>
    /// <param name="partOfSpeech">The target's part of speech as the data set spells it (<c>NOUN</c>, <c>VERB</c>, …).</param>
    public (string Text, string Form) Inflect(string substitute, string target, string lemma, string partOfSpeech)
    {
        ArgumentNullException.ThrowIfNull(substitute);
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(lemma);
        if (substitute.Trim().Contains(' ', StringComparison.Ordinal) || substitute.Contains('_', StringComparison.Ordinal))
        {
            return (substitute, SubstituteForm.MultiWord);
        }

        var capitalise = target.Length > 0 && char.IsUpper(target[0]) && !target.All(char.IsUpper) && substitute.Length > 0 && char.IsLower(substitute[0]);
        string Case(string text) => capitalise ? char.ToUpperInvariant(text[0]) + text[1..] : text;
        var pos = WordNetDatabase.ParsePos(partOfSpeech);
        var surface = target.ToLowerInvariant();
        var baseForm = lemma.ToLowerInvariant();
        if (pos is { } known && baseForm == surface && database.SynsetsOf(surface, known).Count == 0 && database.BaseForms(surface, known) is [var only])
        {
            // No lemma given (the loader fell back to the surface form) and morphy finds exactly one: use it.
            baseForm = only;
        }

        var inflection = pos is { } p ? Classify(surface, baseForm, p) : Inflection.None;
        if (inflection == Inflection.None)
        {
            return (Case(substitute), SubstituteForm.BaseForm);
        }

        var word = substitute.ToLowerInvariant();
        var form = inflection == Inflection.Unknown ? null : Generate(word, inflection, pos!.Value);
        return form is null ? (Case(substitute), SubstituteForm.NotInflected) : (Case(form), SubstituteForm.Inflected);
    }

    private Inflection Classify(string surface, string lemma, WordNetPos pos)
    {
        if (surface == lemma || pos == WordNetPos.Adverb)
        {
            return Inflection.None;
        }

        if (!database.BaseForms(surface, pos).Contains(lemma))
        {
            // The lemma is not what morphy finds for the surface form: the inflection cannot be read off.
            return Inflection.Unknown;
        }

        return pos switch
        {
            WordNetPos.Noun => Inflection.Plural,
            WordNetPos.Verb when surface.EndsWith("ing", StringComparison.Ordinal) => Inflection.Progressive,
            WordNetPos.Verb when surface.EndsWith('s') => Inflection.ThirdPerson,
            WordNetPos.Verb when surface.EndsWith("ed", StringComparison.Ordinal) && !database.IsIrregularForm(surface, pos) => Inflection.Past,
            WordNetPos.Adjective when surface.EndsWith("est", StringComparison.Ordinal) => Inflection.Superlative,
            WordNetPos.Adjective when surface.EndsWith("er", StringComparison.Ordinal) => Inflection.Comparative,
            // Irregular verb and adjective forms (went/gone, better) do not say which inflection they are.
            _ => Inflection.Unknown,
        };
    }

    private string? Generate(string word, Inflection inflection, WordNetPos pos)
    {
        if (database.SynsetsOf(word, pos).Count == 0)
        {
            return null;
        }

        // The substitute's irregular forms: a noun's plural is unambiguous; a verb's past is not (past or participle).
        var irregular = database.IrregularForms(word, pos);
        var matching = inflection switch
        {
            Inflection.Plural => irregular,
            Inflection.Progressive => [.. irregular.Where(form => form.EndsWith("ing", StringComparison.Ordinal))],
            Inflection.ThirdPerson => [.. irregular.Where(form => form.EndsWith('s'))],
            Inflection.Comparative => [.. irregular.Where(form => form.EndsWith("er", StringComparison.Ordinal))],
            Inflection.Superlative => [.. irregular.Where(form => form.EndsWith("est", StringComparison.Ordinal))],
            _ => irregular,
        };
        if (inflection == Inflection.Past)
        {
            // verb.exc also lists regular-looking doubled forms (stopped, stopping); any other entry is a true
            // irregular past (went, gone, ran) whose tense or participle the target's form would have to decide.
            matching = [.. irregular.Where(form => form.EndsWith("ed", StringComparison.Ordinal))];
            if (matching.Count == 0 && irregular.Any(form => !form.EndsWith("ing", StringComparison.Ordinal) && !form.EndsWith('s')))
            {
                return null;
            }
        }

        string? candidate;
        if (matching.Count == 1)
        {
            candidate = matching[0];
        }
        else if (matching.Count > 1)
        {
            return null;
        }
        else
        {
            candidate = Regular(word, inflection);
        }

        return candidate is not null && candidate != word && database.BaseForms(candidate, pos).Contains(word) ? candidate : null;
    }

    // Regular English spelling of an inflection (without consonant doubling, which morphy cannot undo either).
    private static string? Regular(string word, Inflection inflection)
    {
        var consonantY = word.Length >= 2 && word[^1] == 'y' && !IsVowel(word[^2]);
        return inflection switch
        {
            Inflection.Plural or Inflection.ThirdPerson => consonantY ? word[..^1] + "ies"
                : word.EndsWith('s') || word.EndsWith('x') || word.EndsWith('z') || word.EndsWith("ch", StringComparison.Ordinal) || word.EndsWith("sh", StringComparison.Ordinal) ? word + "es"
                : word + "s",
            Inflection.Past => consonantY ? word[..^1] + "ied" : word.EndsWith('e') ? word + "d" : word + "ed",
            Inflection.Progressive => word.EndsWith("ie", StringComparison.Ordinal) ? word[..^2] + "ying"
                : word.EndsWith('e') && !word.EndsWith("ee", StringComparison.Ordinal) && !word.EndsWith("ye", StringComparison.Ordinal) && !word.EndsWith("oe", StringComparison.Ordinal) ? word[..^1] + "ing"
                : word + "ing",
            Inflection.Comparative => consonantY ? word[..^1] + "ier" : word.EndsWith('e') ? word + "r" : word + "er",
            Inflection.Superlative => consonantY ? word[..^1] + "iest" : word.EndsWith('e') ? word + "st" : word + "est",
            _ => null,
        };
    }

    private static bool IsVowel(char c) => c is 'a' or 'e' or 'i' or 'o' or 'u';
}
