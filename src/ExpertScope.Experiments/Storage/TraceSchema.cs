using Parquet.Schema;

namespace ExpertScope.Experiments.Storage;

/// <summary>Column names and the Parquet schema of routing traces (documented in <c>docs/trace-schema.md</c>).</summary>
public static class TraceSchema
{
    /// <summary>Column <c>sequence</c> (int32): 0-based input line.</summary>
    public const string Sequence = "sequence";

    /// <summary>Column <c>position</c> (int32): 0-based position, BOS included.</summary>
    public const string Position = "position";

    /// <summary>Column <c>token_id</c> (int32): vocabulary id.</summary>
    public const string TokenId = "token_id";

    /// <summary>Column <c>token</c> (UTF-8 string): the token's text.</summary>
    public const string Token = "token";

    /// <summary>Column <c>layer</c> (int32): GGUF block index.</summary>
    public const string Layer = "layer";

    /// <summary>Column <c>rank</c> (int32): 0 = highest selection score.</summary>
    public const string Rank = "rank";

    /// <summary>Column <c>expert</c> (int32): expert index.</summary>
    public const string Expert = "expert";

    /// <summary>Column <c>weight</c> (float32): final mixing weight.</summary>
    public const string Weight = "weight";

    /// <summary>Column <c>score</c> (float32): selection score.</summary>
    public const string Score = "score";

    /// <summary>Optional column <c>probs</c> (list of float32): the full router distribution.</summary>
    public const string Probs = "probs";

    /// <summary>The column names in file order, <c>probs</c> last.</summary>
    public static IReadOnlyList<string> ColumnNames { get; } =
        [Sequence, Position, TokenId, Token, Layer, Rank, Expert, Weight, Score, Probs];

    /// <summary>Builds the Parquet schema: all columns required (no nulls), <c>probs</c> only when asked for.</summary>
    public static ParquetSchema Create(bool includeProbabilities)
    {
        var fields = new List<Field>
        {
            new DataField<int>(Sequence),
            new DataField<int>(Position),
            new DataField<int>(TokenId),
            new DataField<string>(Token, false),
            new DataField<int>(Layer),
            new DataField<int>(Rank),
            new DataField<int>(Expert),
            new DataField<float>(Weight),
            new DataField<float>(Score),
        };
        if (includeProbabilities)
        {
            fields.Add(new ListField(Probs, new DataField<float>(ListField.ElementName)));
        }

        return new ParquetSchema(fields);
    }
}
