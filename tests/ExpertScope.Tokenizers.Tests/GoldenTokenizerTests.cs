using Xunit.Abstractions;

namespace ExpertScope.Tokenizers.Tests;

/// <summary>Every case of every vocabulary in the oracle data must give llama.cpp's ids exactly.</summary>
public sealed class GoldenTokenizerTests(ITestOutputHelper output)
{
    public static TheoryData<string> Vocabularies => [.. GoldenVectors.Vocabularies];

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void Encode_MatchesLlamaCpp(string vocabulary)
    {
        var tokenizer = GoldenVectors.LoadTokenizer(vocabulary);
        var cases = GoldenVectors.LoadCases(vocabulary);
        var failures = new List<string>();
        foreach (var c in cases)
        {
            // The oracle ran llama_tokenize with parse_special = false ("<s>" in the text stays literal).
            var ids = tokenizer.Encode(c.Text, c.AddSpecial, parseSpecial: false);
            if (!ids.SequenceEqual(c.Ids))
            {
                failures.Add($"{Escape(c.Text)} add_special={c.AddSpecial}: expected [{string.Join(", ", c.Ids)}], got [{string.Join(", ", ids)}]");
            }
        }

        output.WriteLine($"{vocabulary}: {cases.Count - failures.Count}/{cases.Count} cases match");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.NotEmpty(cases);
    }

    [Fact]
    public void Encode_MatchesEveryOracleCase()
    {
        int total = 0, matched = 0;
        foreach (string vocabulary in GoldenVectors.Vocabularies)
        {
            var tokenizer = GoldenVectors.LoadTokenizer(vocabulary);
            foreach (var c in GoldenVectors.LoadCases(vocabulary))
            {
                total++;
                matched += tokenizer.Encode(c.Text, c.AddSpecial, parseSpecial: false).SequenceEqual(c.Ids) ? 1 : 0;
            }
        }

        output.WriteLine($"{matched}/{total} oracle cases match");
        Assert.True(total >= 8 * 2 * 29, $"expected the full oracle set, found {total} cases");
        Assert.Equal(total, matched);
    }

    [Fact]
    public void OracleCases_CoverEveryString()
    {
        var strings = GoldenVectors.LoadStrings();
        foreach (string vocabulary in GoldenVectors.Vocabularies)
        {
            var texts = GoldenVectors.LoadCases(vocabulary).Select(c => c.Text).ToHashSet(StringComparer.Ordinal);
            Assert.All(strings, s => Assert.Contains(s, texts));
        }
    }

    private static string Escape(string text) => text.Replace("\n", "\\n", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal);
}
