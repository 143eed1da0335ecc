using ExpertScope.Core;
using ExpertScope.Experiments.Corpora;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

public class CorporaDomainTests
{
    private static readonly DomainCorpusCatalog Catalog = new(GoldenData.DataPath());

    [Theory]
    [InlineData("math", 1319)] // SOURCE.md: 1,319 problems
    [InlineData("code", 164 + 974)] // HumanEval + MBPP rows
    [InlineData("biomedical", 1000)] // one per PMID
    [InlineData("chat", 18793)]
    [InlineData("non-english", 1541)] // 30,810 non-blank lines in blocks of 20
    [InlineData("french", 2989)] // distinct sentence1/sentence2 texts of MCL-WiC dev and test fr-fr (2 × 2 × 1,000 fields)
    public void RecordDomainsHaveTheDocumentedCounts(string domain, int documents)
    {
        Assert.Equal(documents, Catalog.Load(domain).Count);
    }

    [Fact]
    public void EveryDomainLoadsWithoutCarriageReturnsOrBlankDocuments()
    {
        foreach (var name in Catalog.Names)
        {
            var documents = Catalog.Load(name);
            Assert.NotEmpty(documents);
            Assert.All(documents, d => Assert.False(string.IsNullOrWhiteSpace(d.Text) || d.Text.Contains('\r', StringComparison.Ordinal)));
        }
    }

    [Fact]
    public void DocumentsJoinTheDomainFields()
    {
        var math = Catalog.Load("math")[0];
        Assert.StartsWith("Janet\u2019s ducks lay 16 eggs per day.", math.Text, StringComparison.Ordinal);
        Assert.EndsWith("#### 18", math.Text, StringComparison.Ordinal);
        Assert.Equal(1, math.Line);

        var pubmed = Catalog.Load("biomedical")[0];
        Assert.StartsWith("Do mitochondria play a role in remodelling lace plant leaves", pubmed.Text, StringComparison.Ordinal);
        Assert.Contains("Programmed cell death (PCD) is the regulated death", pubmed.Text, StringComparison.Ordinal);

        Assert.StartsWith("We the People of the United States, in Order to form a more perfect Union", Catalog.Load("legal")[0].Text, StringComparison.Ordinal);
        Assert.Equal("Can you recommend a chocolate cake recipe for two?", Catalog.Load("chat")[0].Text);
        Assert.Equal("On ne peut donc examiner les questions de développement sans tenir compte de cet aspect.", Catalog.Load("french")[0].Text);
        Assert.StartsWith("Primera parte del ingenioso hidalgo don Quijote de la Mancha\nCap", Catalog.Load("non-english")[0].Text, StringComparison.Ordinal);
    }

    [Fact]
    public void CatalogAcceptsTheDomainsFolderItselfAndRejectsUnknownNames()
    {
        var direct = new DomainCorpusCatalog(GoldenData.DataPath("domains"));

        Assert.Equal(Catalog.DomainsFolder, direct.DomainsFolder);
        Assert.Equal(["math", "code", "biomedical", "encyclopedic", "literature", "legal", "non-english", "chat", "french"], Catalog.Names);
        Assert.Equal("math", Catalog.Describe("MATH").Name);
        var error = Assert.Throws<ExpertScopeException>(() => Catalog.Describe("poetry"));
        Assert.Contains("non-english", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EqualWordBudgetsAreDrawnFromEveryDomain()
    {
        var domains = Catalog.Names.Select(name => KeyValuePair.Create(name, Catalog.Load(name))).ToList();

        var samples = TokenBudgetSampler.SampleDomains(domains, 3000, CorporaSamplerTests.CountWords, 200, seed: 7);

        Assert.Equal(Catalog.Names, samples.Select(s => s.Name));
        Assert.All(samples, sample =>
        {
            Assert.True(sample.BudgetReached);
            Assert.Equal(3000, sample.TokenCount);
            Assert.Equal(3000, sample.Chunks.Sum(c => CorporaSamplerTests.CountWords(c.Text)));
            Assert.All(sample.Chunks, c => Assert.InRange(c.TokenCount, 1, 200));
        });
    }
}
