namespace ExpertScope.Experiments.Storage;

/// <summary>
/// One router decision: expert <see cref="Expert"/> chosen at rank <see cref="Rank"/> for one token in one layer.
/// A token in a layer with top-k routing gives k rows. Field names match the trace columns (see
/// <c>docs/trace-schema.md</c> and <see cref="TraceSchema"/>).
/// </summary>
/// <param name="Sequence">0-based input line the token belongs to (column <c>sequence</c>).</param>
/// <param name="Position">0-based position in the sequence, BOS included (column <c>position</c>).</param>
/// <param name="TokenId">Vocabulary id of the token (column <c>token_id</c>).</param>
/// <param name="Token">The token's text as the vocabulary spells it (column <c>token</c>).</param>
/// <param name="Layer">GGUF block index <c>blk.{Layer}</c> (column <c>layer</c>).</param>
/// <param name="Rank">0 for the expert with the highest selection score, then 1, 2, … (column <c>rank</c>).</param>
/// <param name="Expert">Expert index within the layer (column <c>expert</c>).</param>
/// <param name="Weight">Final mixing weight, after any normalisation and scaling (column <c>weight</c>).</param>
/// <param name="Score">Selection score the expert was ranked by, selection bias included (column <c>score</c>).</param>
/// <param name="Probs">
/// The full router distribution over all experts of the layer (column <c>probs</c>), or null when the trace
/// does not keep it. Rows of one token and layer may share one array.
/// </param>
public readonly record struct RoutingTraceRow(
    int Sequence,
    int Position,
    int TokenId,
    string Token,
    int Layer,
    int Rank,
    int Expert,
    float Weight,
    float Score,
    float[]? Probs = null);
