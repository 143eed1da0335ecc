namespace ExpertScope.Experiments.Storage;

/// <summary>Argument checks shared by the trace writers.</summary>
internal static class TraceRowChecks
{
    public static void Check(int sequence, IReadOnlyList<RoutingTraceRow> rows, bool includeProbabilities, bool alreadyWritten)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(sequence);
        if (alreadyWritten)
        {
            throw new InvalidOperationException($"Sequence {sequence} was already written to this trace.");
        }

        for (var i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            if (row.Sequence != sequence)
            {
                throw new ArgumentException($"Row {i} belongs to sequence {row.Sequence}, not {sequence}.", nameof(rows));
            }

            if (row.Token is null)
            {
                throw new ArgumentException($"Row {i} has no token text.", nameof(rows));
            }

            if (!includeProbabilities && row.Probs is not null)
            {
                throw new ArgumentException(
                    $"Row {i} carries router probabilities but the trace was opened without the 'probs' column " +
                    $"({nameof(TraceWriterOptions)}.{nameof(TraceWriterOptions.IncludeProbabilities)}).", nameof(rows));
            }
        }
    }
}
