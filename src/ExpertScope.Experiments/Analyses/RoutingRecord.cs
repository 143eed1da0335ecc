using ExpertScope.Experiments.Storage;

namespace ExpertScope.Experiments.Analyses;

/// <summary>
/// One router decision, the input of every routing analysis: token <see cref="TokenId"/> at
/// (<see cref="Sequence"/>, <see cref="Position"/>) sent to <see cref="Expert"/> at <see cref="Rank"/> in
/// <see cref="Layer"/> with mixing weight <see cref="Weight"/>. A top-k layer gives k records per token.
/// </summary>
/// <param name="Sequence">0-based input sequence.</param>
/// <param name="Position">0-based position in the sequence.</param>
/// <param name="TokenId">Vocabulary id of the token.</param>
/// <param name="Layer">Block index.</param>
/// <param name="Rank">0 for the top-scored expert, then 1, 2, ….</param>
/// <param name="Expert">Expert index within the layer.</param>
/// <param name="Weight">Final mixing weight.</param>
public readonly record struct RoutingRecord(int Sequence, int Position, int TokenId, int Layer, int Rank, int Expert, float Weight)
{
    /// <summary>The record of a trace row (a row of a Parquet or JSON Lines routing trace).</summary>
    public static RoutingRecord FromTraceRow(RoutingTraceRow row) =>
        new(row.Sequence, row.Position, row.TokenId, row.Layer, row.Rank, row.Expert, row.Weight);
}
