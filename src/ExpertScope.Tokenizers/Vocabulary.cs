namespace ExpertScope.Tokenizers;

/// <summary>The token table: texts, scores, attributes and the text-to-id index.</summary>
internal sealed class Vocabulary
{
    private readonly Dictionary<string, int> _idsByText;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _idsBySpan;

    public Vocabulary(string[] texts, float[]? scores, TokenAttributes[] attributes)
    {
        Texts = texts;
        Scores = scores;
        Attributes = attributes;
        _idsByText = new Dictionary<string, int>(texts.Length, StringComparer.Ordinal);
        for (int id = 0; id < texts.Length; id++)
        {
            // llama.cpp's token_to_id map: a later duplicate wins.
            _idsByText[texts[id]] = id;
        }

        _idsBySpan = _idsByText.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public string[] Texts { get; }

    public float[]? Scores { get; }

    public TokenAttributes[] Attributes { get; }

    public int Count => Texts.Length;

    public float Score(int id) => Scores is null ? 0f : Scores[id];

    /// <summary>The id whose text is exactly <paramref name="text"/>, or -1.</summary>
    public int Find(string text) => _idsByText.TryGetValue(text, out int id) ? id : -1;

    /// <summary>The id whose text equals the span, or -1 (no allocation).</summary>
    public int Find(ReadOnlySpan<char> text) => _idsBySpan.TryGetValue(text, out int id) ? id : -1;
}
