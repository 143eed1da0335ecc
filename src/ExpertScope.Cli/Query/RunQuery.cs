using System.Data.Common;
using System.Text.Json;
using DuckDB.NET.Data;
using ExpertScope.Core;

namespace ExpertScope.Cli.Query;

/// <summary>The result of a query: column names and rows of plain values (null for SQL NULL).</summary>
/// <param name="Columns">Column names.</param>
/// <param name="Rows">Rows, one value per column.</param>
public sealed record QueryResult(IReadOnlyList<string> Columns, IReadOnlyList<object?[]> Rows);

/// <summary>
/// SQL over a run folder or a trace through embedded DuckDB. A run folder gets the views <c>trace</c>
/// (<c>trace.parquet</c>), <c>pairs</c> (<c>pairs.csv</c>) and <c>results</c> (<c>results.json</c>, one row) for the
/// files it holds; a trace file gets <c>trace</c>. The database is in memory; nothing is written.
/// </summary>
public static class RunQuery
{
    /// <summary>The views registered for <paramref name="target"/> (name → DuckDB table function).</summary>
    /// <exception cref="ExpertScopeException">The target does not exist, or a folder holds none of the files.</exception>
    public static IReadOnlyDictionary<string, string> Views(string target)
    {
        ArgumentException.ThrowIfNullOrEmpty(target);
        var views = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (File.Exists(target))
        {
            views["trace"] = target.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)
                ? $"read_json_auto({Literal(target)})"
                : $"read_parquet({Literal(target)})";
            return views;
        }

        if (!Directory.Exists(target))
        {
            throw new ExpertScopeException($"'{target}' is neither a run folder nor a trace file");
        }

        void Add(string name, string file, Func<string, string> function)
        {
            var path = Path.Combine(target, file);
            if (File.Exists(path))
            {
                views[name] = function(path);
            }
        }

        Add("trace", "trace.parquet", path => $"read_parquet({Literal(path)})");
        Add("pairs", "pairs.csv", path => $"read_csv({Literal(path)}, header = true)");
        Add("results", "results.json", path => $"read_json_auto({Literal(path)}, maximum_object_size = 268435456)");
        return views.Count > 0
            ? views
            : throw new ExpertScopeException($"{target}: holds no trace.parquet, pairs.csv or results.json to query");
    }

    /// <summary>Runs <paramref name="sql"/> with the views of <paramref name="target"/> registered.</summary>
    /// <exception cref="ExpertScopeException">The SQL fails (DuckDB's message, with the views available).</exception>
    public static QueryResult Run(string target, string sql)
    {
        ArgumentException.ThrowIfNullOrEmpty(sql);
        var views = Views(target);
        using var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        using var command = connection.CreateCommand();
        foreach (var (name, function) in views)
        {
            command.CommandText = $"CREATE VIEW {name} AS SELECT * FROM {function}";
            command.ExecuteNonQuery();
        }

        try
        {
            command.CommandText = sql;
            using var reader = command.ExecuteReader();
            var columns = Enumerable.Range(0, reader.FieldCount).Select(reader.GetName).ToList();
            var rows = new List<object?[]>();
            while (reader.Read())
            {
                var row = new object?[reader.FieldCount];
                for (var i = 0; i < row.Length; i++)
                {
                    row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
                }

                rows.Add(row);
            }

            return new QueryResult(columns, rows);
        }
        catch (DbException e)
        {
            throw new ExpertScopeException($"query failed: {e.Message.Split('\n')[0]} (views: {string.Join(", ", views.Keys)})");
        }
    }

    /// <summary>A value as text: invariant numbers (round-trip), ISO dates, nested values as JSON.</summary>
    public static string Text(object? value) => value switch
    {
        null => string.Empty,
        string s => s,
        double or float or decimal or int or long or short or byte or sbyte or uint or ulong or ushort or bool => Experiments.Reports.CsvWriter.Format(value),
        System.Numerics.BigInteger big => big.ToString(System.Globalization.CultureInfo.InvariantCulture),
        DateTime time => time.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
        _ => JsonSerializer.Serialize(value),
    };

    private static string Literal(string path) => "'" + Path.GetFullPath(path).Replace("'", "''", StringComparison.Ordinal) + "'";
}
