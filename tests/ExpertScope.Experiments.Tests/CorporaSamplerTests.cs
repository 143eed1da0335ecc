using ExpertScope.Experiments.Corpora;

namespace ExpertScope.Experiments.Tests;

public class CorporaSamplerTests
{
    internal static int CountWords(string text) => text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;

    private static CorpusDocument Doc(string text, int line = 1) => new("corpus.txt", line, text);

    [Fact]
    public void ChunksCutAtWhitespaceWithinTheLimit()
    {
        var chunks = TokenBudgetSampler.Chunk(Doc("one two\nthree   four five"), CountWords, 2);

        Assert.Equal(["one two", "three   four", "five"], chunks.Select(c => c.Text));
        Assert.Equal([0, 8, 21], chunks.Select(c => c.Start));
        Assert.Equal([2, 2, 1], chunks.Select(c => c.TokenCount));
    }

    [Fact]
    public void AWordLongerThanTheLimitIsCutBetweenCharacters()
    {
        var chunks = TokenBudgetSampler.Chunk(Doc("abcdefghij xy"), text => text.Length, 3);

        Assert.Equal(["abc", "def", "ghi", "j", "xy"], chunks.Select(c => c.Text));
    }

    [Fact]
    public void SurrogatePairsAreNotSplit()
    {
        // U+1F600 is two UTF-16 units; a limit of 3 units must not end a chunk between them.
        var chunks = TokenBudgetSampler.Chunk(Doc("ab\U0001F600cd"), text => text.Length, 3);

        Assert.Equal("ab\U0001F600cd", string.Concat(chunks.Select(c => c.Text)));
        Assert.All(chunks, c => Assert.False(char.IsHighSurrogate(c.Text[^1])));
    }

    [Fact]
    public void LongDocumentsNeedFewTokenCounts()
    {
        var text = string.Join(' ', Enumerable.Range(0, 20_000).Select(i => "w" + i));
        var calls = 0;

        var chunks = TokenBudgetSampler.Chunk(Doc(text), t => { calls++; return CountWords(t); }, 500);

        Assert.Equal(40, chunks.Count);
        Assert.All(chunks, c => Assert.Equal(500, c.TokenCount));
        Assert.InRange(calls, 40, 40 * 25); // exponential + binary search: about 2 log2(500) counts per chunk
    }

    [Fact]
    public void SamplesAreSeededExactAndDeterministic()
    {
        var documents = Enumerable.Range(0, 50).Select(i => Doc(string.Join(' ', Enumerable.Repeat($"d{i}", 7 + (i % 5))), i + 1)).ToList();

        var first = TokenBudgetSampler.Sample("x", documents, 100, CountWords, 4, seed: 1);
        var again = TokenBudgetSampler.Sample("x", documents, 100, CountWords, 4, seed: 1);
        var other = TokenBudgetSampler.Sample("x", documents, 100, CountWords, 4, seed: 2);

        Assert.Equal(100, first.TokenCount);
        Assert.True(first.BudgetReached);
        Assert.Equal(100, first.Chunks.Sum(c => CountWords(c.Text)));
        Assert.All(first.Chunks, c => Assert.InRange(c.TokenCount, 1, 4));
        Assert.All(first.Chunks, c => Assert.Equal(c.Text, c.Document.Text.Substring(c.Start, c.Text.Length)));
        Assert.Equal(first.Chunks.Select(c => (c.Document.Line, c.Start, c.Text)), again.Chunks.Select(c => (c.Document.Line, c.Start, c.Text)));
        Assert.NotEqual(first.Chunks.Select(c => c.Document.Line), other.Chunks.Select(c => c.Document.Line));
    }

    [Fact]
    public void ASmallCorpusReportsTheShortfall()
    {
        var sample = TokenBudgetSampler.Sample("small", [Doc("a b c"), Doc("d e")], 10, CountWords, 2, seed: 3);

        Assert.False(sample.BudgetReached);
        Assert.Equal(5, sample.TokenCount);
        Assert.Equal(3, sample.Chunks.Count);
    }

    [Fact]
    public void DomainSeedsDependOnNameAndSeedOnly()
    {
        Assert.Equal(TokenBudgetSampler.DomainSeed(5, "math"), TokenBudgetSampler.DomainSeed(5, "math"));
        Assert.NotEqual(TokenBudgetSampler.DomainSeed(5, "math"), TokenBudgetSampler.DomainSeed(5, "code"));
        Assert.NotEqual(TokenBudgetSampler.DomainSeed(5, "math"), TokenBudgetSampler.DomainSeed(6, "math"));
        Assert.Throws<ArgumentOutOfRangeException>(() => TokenBudgetSampler.Sample("x", [Doc("a")], 0, CountWords, 2, 0));
    }
}
