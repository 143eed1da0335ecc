using System.Diagnostics;
using System.Text;
using ExpertScope.Core;
using ExpertScope.Testing;
using Xunit.Abstractions;

namespace ExpertScope.Tokenizers.Tests;

/// <summary>Tokenizers built from GGUF files the tests write: a large vocabulary, user-defined tokens, errors.</summary>
public sealed class SyntheticVocabularyTests(ITestOutputHelper output)
{
    [Fact]
    public void Load_LargeVocabulary_IsFastAndRoundTrips()
    {
        // 256 byte tokens plus 200k merges whose results are new tokens: the size of a real 200k+ vocabulary.
        var (tokens, merges) = BuildByteLevelVocabulary(mergeCount: 200_000, seed: 20231124);
        using var temp = new TempDirectory();
        string path = temp.File("large.gguf");
        new TestGguf()
            .String("tokenizer.ggml.model", "gpt2")
            .String("tokenizer.ggml.pre", "qwen2")
            .Strings("tokenizer.ggml.tokens", tokens)
            .Int32s("tokenizer.ggml.token_type", Enumerable.Repeat(1, tokens.Count).ToArray())
            .Strings("tokenizer.ggml.merges", merges)
            .Save(path);

        var stopwatch = Stopwatch.StartNew();
        var tokenizer = GgufTokenizer.Load(path);
        stopwatch.Stop();
        output.WriteLine($"loaded {tokens.Count} tokens, {merges.Count} merges in {stopwatch.ElapsedMilliseconds} ms");

        Assert.Equal(tokens.Count, tokenizer.VocabularySize);

        // Deliberately loose: catches quadratic work (minutes), not a slow machine. The benchmark holds the real number.
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(20), $"loading took {stopwatch.Elapsed}");

        string text = "The quick brown fox, 12345 jumps! Ünïcödé 日本語 😀\n\tdone";
        var ids = tokenizer.Encode(text, addSpecial: false);
        Assert.Equal(text, tokenizer.Decode(ids));
    }

    [Fact]
    public void Encode_MergesFollowRankOrder()
    {
        // "a b" ranks before "b c": in "abc" the first merge wins even though "bc" is also a token.
        var tokens = ByteTokens();
        tokens.AddRange(["ab", "bc", "abc"]);
        using var temp = new TempDirectory();
        string path = temp.File("ranks.gguf");
        new TestGguf()
            .String("tokenizer.ggml.model", "gpt2")
            .String("tokenizer.ggml.pre", "gpt-2")
            .Strings("tokenizer.ggml.tokens", tokens)
            .Strings("tokenizer.ggml.merges", ["a b", "b c", "ab c"])
            .Save(path);

        var tokenizer = GgufTokenizer.Load(path);
        Assert.Equal([tokenizer.FindToken("abc")!.Value], tokenizer.Encode("abc", addSpecial: false));
        Assert.Equal([tokenizer.FindToken("bc")!.Value], tokenizer.Encode("bc", addSpecial: false));
        Assert.Equal(
            [tokenizer.FindToken("ab")!.Value, tokenizer.FindToken("Ġ")!.Value, tokenizer.FindToken("bc")!.Value],
            tokenizer.Encode("ab bc", addSpecial: false));
    }

    [Fact]
    public void Encode_UserDefinedTokensMatchEvenWithoutSpecialParsing()
    {
        var tokens = ByteTokens();
        tokens.AddRange(["<tool>", "<|bos|>"]);
        var types = Enumerable.Repeat(1, tokens.Count).ToArray();
        types[^2] = 4;
        types[^1] = 3;
        using var temp = new TempDirectory();
        string path = temp.File("user.gguf");
        new TestGguf()
            .String("tokenizer.ggml.model", "gpt2")
            .String("tokenizer.ggml.pre", "llama-bpe")
            .Strings("tokenizer.ggml.tokens", tokens)
            .Int32s("tokenizer.ggml.token_type", types)
            .Strings("tokenizer.ggml.merges", [])
            .UInt32("tokenizer.ggml.bos_token_id", (uint)(tokens.Count - 1))
            .Save(path);

        var tokenizer = GgufTokenizer.Load(path);
        int tool = tokens.Count - 2, bos = tokens.Count - 1;
        Assert.True(tokenizer.AddBos, "llama-bpe adds BOS by default");
        Assert.Equal(bos, tokenizer.BosId);
        Assert.Equal(TokenAttributes.UserDefined, tokenizer.GetAttributes(tool));

        var withoutParsing = tokenizer.Encode("a<tool>b<|bos|>", addSpecial: true, parseSpecial: false);
        Assert.Equal(bos, withoutParsing[0]);
        Assert.Equal(1, withoutParsing.Count(id => id == tool));
        Assert.Equal(1, withoutParsing.Count(id => id == bos));

        var withParsing = tokenizer.Encode("a<tool>b<|bos|>", addSpecial: false, parseSpecial: true);
        Assert.Equal([tokenizer.FindToken("a")!.Value, tool, tokenizer.FindToken("b")!.Value, bos], withParsing);

        // Control tokens are left out of decoded text unless asked for; user-defined ones always show.
        Assert.Equal("a<tool>b", tokenizer.Decode(withParsing));
        Assert.Equal("a<tool>b<|bos|>", tokenizer.Decode(withParsing, removeSpecial: false, unparseSpecial: true));
    }

    [Fact]
    public void EndMarkers_BecomeControlTokensThatEndGeneration()
    {
        // Stored as normal tokens, as some converters do; llama.cpp turns them into control tokens by their text.
        var tokens = ByteTokens();
        tokens.AddRange(["<|im_end|>", "<|fim_pad|>"]);
        using var temp = new TempDirectory();
        string path = temp.File("eog.gguf");
        new TestGguf()
            .String("tokenizer.ggml.model", "gpt2")
            .String("tokenizer.ggml.pre", "qwen2")
            .Strings("tokenizer.ggml.tokens", tokens)
            .Int32s("tokenizer.ggml.token_type", Enumerable.Repeat(1, tokens.Count).ToArray())
            .Strings("tokenizer.ggml.merges", [])
            .UInt32("tokenizer.ggml.eos_token_id", (uint)'!' - 0x21)
            .Save(path);

        var tokenizer = GgufTokenizer.Load(path);
        int imEnd = tokens.Count - 2, fimPad = tokens.Count - 1;
        Assert.Equal(TokenAttributes.Normal | TokenAttributes.Control, tokenizer.GetAttributes(imEnd));
        Assert.Equal([tokenizer.EosId!.Value, imEnd, fimPad], tokenizer.EndOfGenerationIds.Order());
        Assert.DoesNotContain(imEnd, tokenizer.Encode("a<|im_end|>", addSpecial: false, parseSpecial: false));
        Assert.Equal([tokenizer.FindToken("a")!.Value, imEnd], tokenizer.Encode("a<|im_end|>", addSpecial: false, parseSpecial: true));
    }

    [Fact]
    public void Load_UnknownPreTokenizer_NamesFileAndValue()
    {
        using var temp = new TempDirectory();
        string path = temp.File("bad.gguf");
        new TestGguf()
            .String("tokenizer.ggml.model", "gpt2")
            .String("tokenizer.ggml.pre", "no-such-pre")
            .Strings("tokenizer.ggml.tokens", ByteTokens())
            .Strings("tokenizer.ggml.merges", [])
            .Save(path);

        var error = Assert.Throws<ExpertScopeException>(() => GgufTokenizer.Load(path));
        Assert.Contains("bad.gguf", error.Message, StringComparison.Ordinal);
        Assert.Contains("no-such-pre", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MissingVocabulary_NamesFile()
    {
        using var temp = new TempDirectory();
        string path = temp.File("novocab.gguf");
        new TestGguf().String("general.architecture", "llama").Save(path);

        var error = Assert.Throws<ExpertScopeException>(() => GgufTokenizer.Load(path));
        Assert.Contains("novocab.gguf", error.Message, StringComparison.Ordinal);
        Assert.Contains("tokenizer.ggml.model", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SentencePiece_PrefersHigherScores()
    {
        // "▁ab" can form from "▁a"+"b" (score -1) or "▁"+"ab" (score -5 for "ab" first): the higher score merges first.
        string[] tokens = ["<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "ab", "▁ab"];
        float[] scores = [0, 0, 0, -10, -10, -10, -1, -5, -2];
        int[] types = [2, 3, 3, 1, 1, 1, 1, 1, 1];
        using var temp = new TempDirectory();
        string path = temp.File("spm.gguf");
        new TestGguf()
            .String("tokenizer.ggml.model", "llama")
            .Strings("tokenizer.ggml.tokens", tokens)
            .Float32s("tokenizer.ggml.scores", scores)
            .Int32s("tokenizer.ggml.token_type", types)
            .Save(path);

        var tokenizer = GgufTokenizer.Load(path);
        Assert.Equal(TokenizerKind.SentencePiece, tokenizer.Kind);
        Assert.Equal([1, 8], tokenizer.Encode("ab"));
        Assert.Equal("ab", tokenizer.Decode([8]));

        // No byte-fallback tokens and no token for 'c': llama.cpp cannot encode it either.
        Assert.Throws<ExpertScopeException>(() => tokenizer.Encode("c"));
    }

    private static List<string> ByteTokens()
    {
        var tokens = new List<string>(256);
        for (int b = 0; b < 256; b++)
        {
            tokens.Add(ByteLevel.ToChar((byte)b).ToString());
        }

        return tokens;
    }

    private static (List<string> Tokens, List<string> Merges) BuildByteLevelVocabulary(int mergeCount, int seed)
    {
        var random = new Random(seed);
        var tokens = ByteTokens();
        var known = new HashSet<string>(tokens, StringComparer.Ordinal);
        var merges = new List<string>(mergeCount);
        while (merges.Count < mergeCount)
        {
            // Favour short tokens so merges stay realistic (most merge two short pieces).
            string left = tokens[random.Next(Math.Min(tokens.Count, 256 + (merges.Count / 4)))];
            string right = tokens[random.Next(Math.Min(tokens.Count, 256 + (merges.Count / 4)))];
            string merged = left + right;
            if (merged.Length <= 16 && known.Add(merged))
            {
                tokens.Add(merged);
                merges.Add(left + " " + right);
            }
        }

        return (tokens, merges);
    }
}
