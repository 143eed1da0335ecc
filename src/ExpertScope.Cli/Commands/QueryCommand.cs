using System.CommandLine;
using System.Text;
using System.Text.Json;
using ExpertScope.Cli.Query;
using ExpertScope.Core;
using ExpertScope.Experiments.Reports;

namespace ExpertScope.Cli;

/// <summary>
/// <c>query RUN_DIR|TRACE.parquet "SELECT …"</c>: SQL through embedded DuckDB with the views <c>trace</c>, <c>pairs</c>
/// and <c>results</c>; output as a table, CSV or JSON.
/// </summary>
public static class QueryCommand
{
    /// <summary>Creates the verb.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var target = new Argument<string>("run") { Description = "A run folder (views trace, pairs, results) or a trace file (view trace)." };
        var sql = new Argument<string>("sql") { Description = "The SQL, e.g. \"SELECT layer, avg(kappa) FROM pairs GROUP BY layer\"." };
        var format = new Option<string>("--format") { Description = "table, csv or json.", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "csv", "json");
        var command = new Command("query", "SQL over a run folder or a trace (embedded DuckDB; views trace, pairs, results).") { target, sql, format };
        command.SetAction(parse => context.Guard(() =>
        {
            var result = RunQuery.Run(parse.GetValue(target)!, parse.GetValue(sql)!);
            switch (parse.GetValue(format))
            {
                case "csv":
                    using (var csv = new CsvWriter(context.Output, leaveOpen: true))
                    {
                        csv.WriteRow(result.Columns);
                        foreach (var row in result.Rows)
                        {
                            csv.WriteRow(row.Select(RunQuery.Text));
                        }
                    }

                    break;
                case "json":
                    context.Output.WriteLine(Json(result));
                    break;
                default:
                    WriteTable(context, result);
                    break;
            }

            return 0;
        }));
        return command;
    }

    private static string Json(QueryResult result)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartArray();
            foreach (var row in result.Rows)
            {
                json.WriteStartObject();
                for (var i = 0; i < row.Length; i++)
                {
                    json.WritePropertyName(result.Columns[i]);
                    switch (row[i])
                    {
                        case null:
                            json.WriteNullValue();
                            break;
                        case double d when !double.IsFinite(d):
                            json.WriteStringValue(RunQuery.Text(d)); // JSON has no NaN or infinity
                            break;
                        case float f when !float.IsFinite(f):
                            json.WriteStringValue(RunQuery.Text(f));
                            break;
                        case System.Numerics.BigInteger big:
                            json.WriteRawValue(RunQuery.Text(big));
                            break;
                        default:
                            JsonSerializer.Serialize(json, row[i]);
                            break;
                    }
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteTable(CliContext context, QueryResult result)
    {
        var cells = result.Rows.Select(row => row.Select(RunQuery.Text).ToArray()).ToList();
        var widths = result.Columns.Select((name, i) => cells.Select(row => row[i].Length).Append(name.Length).Max()).ToArray();
        context.Output.WriteLine(string.Join("  ", result.Columns.Select((name, i) => name.PadRight(widths[i]))).TrimEnd());
        context.Output.WriteLine(string.Join("  ", widths.Select(width => new string('-', width))));
        foreach (var row in cells)
        {
            context.Output.WriteLine(string.Join("  ", row.Select((cell, i) => cell.PadRight(widths[i]))).TrimEnd());
        }

        context.Output.WriteLine($"({result.Rows.Count} rows)");
    }
}
