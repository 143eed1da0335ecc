using System.Text;
using Microsoft.ML.Tokenizers;

namespace ExpertScope.Tokenizers.Tests;

/// <summary>Decoding back to text and the character spans of tokens, over every oracle string and vocabulary.</summary>
public sealed class DecodeAndOffsetTests
{
    public static TheoryData<string> Vocabularies => [.. GoldenVectors.Vocabularies];

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void Decode_RoundTripsEveryString(string vocabulary)
    {
        var tokenizer = GoldenVectors.LoadTokenizer(vocabulary);
        foreach (string text in GoldenVectors.LoadStrings())
        {
            string decoded = tokenizer.Decode(tokenizer.Encode(text, addSpecial: false, parseSpecial: false));
            if (CleansSpaces(vocabulary) && AffectedBySpaceCleaning(text))
            {
                // llama.cpp's clean_spaces drops the space in " ?", " ." etc.: only spaces may differ.
                Assert.Equal(text.Replace(" ", string.Empty, StringComparison.Ordinal), decoded.Replace(" ", string.Empty, StringComparison.Ordinal));
            }
            else
            {
                Assert.Equal(text, decoded);
            }
        }
    }

    [Fact]
    public void Encode_IsSafeFromManyThreads()
    {
        var tokenizer = GoldenVectors.LoadTokenizer("bpe-llama-bpe");
        var strings = GoldenVectors.LoadStrings();
        var expected = strings.Select(s => tokenizer.EncodeWithOffsets(s)).ToArray();
        var decoded = expected.Select(tokens => tokenizer.Decode(tokens.Select(t => t.Id))).ToArray();

        Parallel.For(0, strings.Count * 20, i =>
        {
            int k = i % strings.Count;
            Assert.Equal(expected[k], tokenizer.EncodeWithOffsets(strings[k]));
            Assert.Equal(decoded[k], tokenizer.Decode(expected[k].Select(t => t.Id)));
        });
    }

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void DecodeToBytes_ConcatenatesPieces(string vocabulary)
    {
        var tokenizer = GoldenVectors.LoadTokenizer(vocabulary);
        foreach (string text in GoldenVectors.LoadStrings())
        {
            var ids = tokenizer.Encode(text, addSpecial: false, parseSpecial: false);
            byte[] pieces = [.. ids.SelectMany(id => tokenizer.TokenToBytes(id))];
            byte[] expected = Encoding.UTF8.GetBytes(tokenizer.Kind == TokenizerKind.SentencePiece && text.Length > 0 ? " " + text : text);
            Assert.Equal(expected, pieces);
        }
    }

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void EncodeWithOffsets_AgreesWithEncodeAndCoversTheText(string vocabulary)
    {
        var tokenizer = GoldenVectors.LoadTokenizer(vocabulary);
        foreach (string text in GoldenVectors.LoadStrings())
        {
            foreach (bool addSpecial in (bool[])[false, true])
            {
                var tokens = tokenizer.EncodeWithOffsets(text, addSpecial, parseSpecial: false);
                Assert.Equal(tokenizer.Encode(text, addSpecial, parseSpecial: false), tokens.Select(t => t.Id));

                int previousStart = 0;
                foreach (var token in tokens)
                {
                    var (start, length) = token.Offset.GetOffsetAndLength(text.Length);
                    Assert.True(start >= previousStart, $"spans go backwards in '{text}'");
                    previousStart = start;
                    Assert.Equal(tokenizer.TokenToPiece(token.Id), token.Value);
                    AssertPieceMatchesSpan(tokenizer, token, text.Substring(start, length));
                }

                // Every character is covered by some token.
                var covered = new bool[text.Length];
                foreach (var token in tokens)
                {
                    var (start, length) = token.Offset.GetOffsetAndLength(text.Length);
                    Array.Fill(covered, true, start, length);
                }

                Assert.All(covered, Assert.True);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void EncodeWithOffsets_AlignsAWordToItsTokens(string vocabulary)
    {
        var tokenizer = GoldenVectors.LoadTokenizer(vocabulary);
        const string text = "the riverbank's banks";
        int wordStart = text.IndexOf("riverbank", StringComparison.Ordinal);
        int wordEnd = wordStart + "riverbank".Length;

        var tokens = tokenizer.EncodeWithOffsets(text, addSpecial: true, parseSpecial: false);
        var inWord = tokens.Where(t => t.Offset.Start.Value < wordEnd && t.Offset.End.Value > wordStart).ToList();

        Assert.NotEmpty(inWord);
        Assert.True(inWord[0].Offset.Start.Value <= wordStart && inWord[^1].Offset.End.Value >= wordEnd);

        // The word's tokens spell the word, give or take the leading space BPE attaches to a word.
        string spelled = string.Concat(inWord.Select(t => t.Value)).Trim();
        Assert.Equal("riverbank", spelled);
    }

    [Fact]
    public void Encode_ParsesSpecialTokensOnlyWhenAsked()
    {
        foreach (string vocabulary in GoldenVectors.Vocabularies)
        {
            var tokenizer = GoldenVectors.LoadTokenizer(vocabulary);
            int bos = tokenizer.FindToken("<s>")!.Value;
            int eos = tokenizer.FindToken("</s>")!.Value;
            const string text = "<s> literal special text </s>";

            var parsed = tokenizer.Encode(text, addSpecial: false, parseSpecial: true);
            Assert.Equal(bos, parsed[0]);
            Assert.Equal(eos, parsed[^1]);

            var literal = tokenizer.Encode(text, addSpecial: false, parseSpecial: false);
            Assert.DoesNotContain(bos, literal);
            Assert.DoesNotContain(eos, literal);

            // The text between the markers encodes as if it stood alone.
            var middle = tokenizer.Encode(" literal special text ", addSpecial: false, parseSpecial: false);
            if (tokenizer.Kind == TokenizerKind.BytePair)
            {
                Assert.Equal(middle, parsed.Skip(1).SkipLast(1));
            }
        }
    }

    [Fact]
    public void Metadata_IsReadFromTheFile()
    {
        var spm = GoldenVectors.LoadTokenizer("spm-llama");
        Assert.Equal(TokenizerKind.SentencePiece, spm.Kind);
        Assert.Equal(567, spm.VocabularySize);
        Assert.Equal(1, spm.BosId);
        Assert.Equal(2, spm.EosId);
        Assert.Equal(0, spm.UnknownId);
        Assert.True(spm.AddBos);
        Assert.False(spm.AddEos);
        Assert.True(spm.AddSpacePrefix);
        Assert.Equal(TokenAttributes.Byte, spm.GetAttributes(spm.FindToken("<0x0A>")!.Value));
        Assert.Equal("\n", spm.TokenToPiece(spm.FindToken("<0x0A>")!.Value));

        var bpe = GoldenVectors.LoadTokenizer("bpe-qwen2");
        Assert.Equal(TokenizerKind.BytePair, bpe.Kind);
        Assert.Equal("qwen2", bpe.PreTokenizerName);
        Assert.Equal(508, bpe.VocabularySize);
        Assert.Equal(506, bpe.BosId);
        Assert.Equal(507, bpe.EosId);
        Assert.Equal(TokenAttributes.Control, bpe.GetAttributes(506));
        Assert.Equal("<s>", bpe.TokenToPiece(506));
        Assert.Equal(" the", bpe.TokenToPiece(bpe.FindToken("Ġthe")!.Value));
        Assert.Throws<ArgumentOutOfRangeException>(() => bpe.TokenToPiece(508));
    }

    [Fact]
    public void MicrosoftTokenizerApi_GivesTheSameIdsAndText()
    {
        Tokenizer tokenizer = GoldenVectors.LoadTokenizer("bpe-llama-bpe");
        var expected = GoldenVectors.LoadCases("bpe-llama-bpe").First(c => c.AddSpecial && c.Text == "Hello world");

        Assert.Equal(expected.Ids, tokenizer.EncodeToIds("Hello world"));
        Assert.Equal(expected.Ids.Length, tokenizer.CountTokens("Hello world"));
        Assert.Equal("Hello world", tokenizer.Decode(expected.Ids));

        Span<char> small = stackalloc char[5];
        var status = tokenizer.Decode(expected.Ids, small, out int idsConsumed, out int written);
        Assert.Equal(System.Buffers.OperationStatus.DestinationTooSmall, status);
        Assert.Equal("Hello", small[..written].ToString());
        Assert.True(idsConsumed < expected.Ids.Length);
    }

    private static void AssertPieceMatchesSpan(GgufTokenizer tokenizer, EncodedToken token, string span)
    {
        var attributes = tokenizer.GetAttributes(token.Id);
        if ((attributes & TokenAttributes.Normal) == 0 || token.Value.Contains("<0x", StringComparison.Ordinal))
        {
            // BOS/EOS (empty spans) and partial characters: the span is the whole character or nothing.
            return;
        }

        // SentencePiece's added space prefix has no source character.
        Assert.True(token.Value == span || token.Value == " " + span, $"piece '{token.Value}' vs span '{span}'");
    }

    private static bool CleansSpaces(string vocabulary) =>
        vocabulary is "bpe-default" or "bpe-gpt-2" or "bpe-olmo" or "bpe-llama-bpe";

    /// <summary>Whether llama.cpp's clean_spaces could change the decoded text.</summary>
    private static bool AffectedBySpaceCleaning(string text) =>
        new[] { " ?", " !", " .", " ,", " '" }.Any(p => text.Contains(p, StringComparison.Ordinal));
}
