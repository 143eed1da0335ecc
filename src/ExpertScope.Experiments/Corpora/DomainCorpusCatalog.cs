using ExpertScope.Core;
using ExpertScope.Experiments.Data;

namespace ExpertScope.Experiments.Corpora;

/// <summary>One file of a built-in domain and how to read it.</summary>
/// <param name="RelativePath">Path below the domains folder, with <c>/</c> separators (e.g. <c>math/gsm8k_test.jsonl</c>).</param>
/// <param name="Fields">JSON fields joined into a document; ignored for plain text.</param>
/// <param name="Split">How plain text is split; ignored for JSON.</param>
public sealed record DomainSource(string RelativePath, IReadOnlyList<string> Fields, TextSplit Split = TextSplit.Paragraphs)
{
    /// <summary>
    /// The file is a JSON array whatever its extension, and each of <see cref="Fields"/> is a document of its own
    /// (a sentence pair gives two); a text seen before in the domain is not read again.
    /// </summary>
    public bool EachFieldADocument { get; init; }
}

/// <summary>A built-in text domain: a name, what the text is, and the files it is read from.</summary>
/// <param name="Name">Short name used on the command line (<c>math</c>, <c>non-english</c>, …).</param>
/// <param name="Description">What the documents are, in a line.</param>
/// <param name="Sources">The files, read in this order.</param>
public sealed record DomainDescription(string Name, string Description, IReadOnlyList<DomainSource> Sources);

/// <summary>
/// The built-in domain corpora of the evaluation data (<c>data/domains/&lt;name&gt;/</c>, each folder described by
/// its <c>SOURCE.md</c>), read from a folder the caller names, so nothing here depends on where the data lives.
/// </summary>
/// <remarks>
/// Documents per domain: <b>math</b> GSM8K test problems (question + worked answer); <b>code</b> HumanEval
/// (prompt + canonical solution) then MBPP (task text + reference code); <b>biomedical</b> PubMedQA PQA-L
/// (question + abstract contexts + conclusion, one per PMID); <b>encyclopedic</b> WikiText-2 test paragraphs
/// (one per line: the file separates them with blank lines); <b>literature</b> tiny-shakespeare speeches
/// (blank-line paragraphs); <b>legal</b> the US Constitution (blank-line paragraphs; a small corpus);
/// <b>non-english</b> Don Quijote (Spanish, CRLF, hard-wrapped without blank lines, so blocks of 20 lines);
/// <b>chat</b> Alpaca instructions (user turns only); <b>french</b> the distinct French sentences of MCL-WiC (dev and
/// test fr-fr, read from the <c>mcl-wic</c> folder beside <c>domains/</c>), the French domain of MoE Lens (arXiv
/// 2603.05806), which compares English, French and GSM8K.
/// </remarks>
public sealed class DomainCorpusCatalog
{
    private readonly Dictionary<string, DomainDescription> _byName;

    /// <summary>Creates a catalog over the domain folders.</summary>
    /// <param name="dataFolder">
    /// The evaluation data folder holding <c>domains/</c>, or the <c>domains</c> folder itself (the one holding
    /// <c>math/</c>, <c>code/</c>, …).
    /// </param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    public DomainCorpusCatalog(string dataFolder)
    {
        if (!Directory.Exists(dataFolder))
        {
            throw new DirectoryNotFoundException($"The data folder '{dataFolder}' does not exist.");
        }

        var nested = Path.Combine(dataFolder, "domains");
        DomainsFolder = Directory.Exists(nested) ? nested : dataFolder;
        _byName = BuiltIn.ToDictionary(domain => domain.Name, StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>The built-in domains, in a fixed order.</summary>
    public static IReadOnlyList<DomainDescription> BuiltIn { get; } =
    [
        new("math", "GSM8K test: grade-school math word problems with worked answers",
            [new("math/gsm8k_test.jsonl", ["question", "answer"])]),
        new("code", "HumanEval and MBPP: Python problems with reference solutions",
            [new("code/humaneval.jsonl", ["prompt", "canonical_solution"]), new("code/mbpp.jsonl", ["text", "code"])]),
        new("biomedical", "PubMedQA PQA-L: a question, PubMed abstract sections and the conclusion",
            [new("biomedical/pubmedqa_ori_pqal.json", ["QUESTION", "CONTEXTS", "LONG_ANSWER"])]),
        new("encyclopedic", "WikiText-2 test: tokenized Wikipedia article paragraphs",
            [new("encyclopedic/wikitext2_test.txt", [], TextSplit.Paragraphs)]),
        new("literature", "tiny-shakespeare: play dialogue",
            [new("literature/tinyshakespeare.txt", [], TextSplit.Paragraphs)]),
        new("legal", "The Constitution of the United States (small: about 4,600 words)",
            [new("legal/us_constitution.txt", [], TextSplit.Paragraphs)]),
        new("non-english", "Don Quijote de la Mancha (Spanish prose), blocks of 20 lines",
            [new("non-english/don_quijote_es.txt", [], TextSplit.LineBlocks)]),
        new("chat", "Alpaca instructions without input: user requests only",
            [new("chat/alpaca_instructions_harmless_train.json", ["instruction"])]),
        new("french", "MCL-WiC fr-fr (dev and test): distinct French sentences (Europarl, Wikipedia and other sources)",
            [
                new("../mcl-wic/dev/dev.fr-fr.data", ["sentence1", "sentence2"]) { EachFieldADocument = true },
                new("../mcl-wic/test/test.fr-fr.data", ["sentence1", "sentence2"]) { EachFieldADocument = true },
            ]),
    ];

    /// <summary>The folder holding one sub-folder per domain.</summary>
    public string DomainsFolder { get; }

    /// <summary>The names of the built-in domains, in catalog order.</summary>
    public IReadOnlyList<string> Names => [.. BuiltIn.Select(domain => domain.Name)];

    /// <summary>The description of a domain (names compare case-insensitively).</summary>
    /// <exception cref="ExpertScopeException">No such domain; the message lists the known ones.</exception>
    public DomainDescription Describe(string name) =>
        _byName.TryGetValue(name, out var domain)
            ? domain
            : throw new ExpertScopeException($"Unknown domain '{name}'; known domains: {string.Join(", ", Names)}.");

    /// <summary>The full paths of a domain's files.</summary>
    /// <exception cref="ExpertScopeException">No such domain.</exception>
    public IReadOnlyList<string> FilesOf(string name) =>
        [.. Describe(name).Sources.Select(source => Path.Combine(DomainsFolder, source.RelativePath.Replace('/', Path.DirectorySeparatorChar)))];

    /// <summary>Reads all documents of a domain, its files in catalog order.</summary>
    /// <param name="name">A domain name from <see cref="Names"/>.</param>
    /// <param name="load">Strict (default) or lenient handling of malformed records.</param>
    /// <exception cref="ExpertScopeException">No such domain, a file is missing, or (strict) a record is malformed.</exception>
    public IReadOnlyList<CorpusDocument> Load(string name, LoadOptions? load = null)
    {
        var domain = Describe(name);
        var documents = new List<CorpusDocument>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var source in domain.Sources)
        {
            var file = Path.Combine(DomainsFolder, source.RelativePath.Replace('/', Path.DirectorySeparatorChar));
            if (!File.Exists(file))
            {
                throw new ExpertScopeException($"{file}: the file of domain '{domain.Name}' is missing.");
            }

            if (source.EachFieldADocument)
            {
                foreach (string field in source.Fields)
                {
                    var read = CorpusReader.ReadJson(file, new CorpusReadOptions { Fields = [field], Load = load ?? LoadOptions.Strict });
                    documents.AddRange(read.Where(d => seen.Add(d.Text)));
                }

                continue;
            }

            documents.AddRange(CorpusReader.ReadFile(file, new CorpusReadOptions
            {
                Fields = source.Fields,
                Split = source.Split,
                Load = load ?? LoadOptions.Strict,
            }));
        }

        return documents;
    }
}
