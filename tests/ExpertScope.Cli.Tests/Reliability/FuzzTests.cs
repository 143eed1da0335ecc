using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using ExpertScope.Formats.Gguf;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests.Reliability;

/// <summary>
/// Seeded fuzzing of everything a user hands the command line: the GGUF structure (truncations, byte flips, hostile
/// counts in the header), the model's values (every metadata key set to hostile numbers, wrong types or removed) and
/// the data sets (WiC, SWORDS and prompt files with blank lines, bad indices, wrong JSON types, invalid UTF-8, cut
/// files). Each case runs a verb in-process and must end with exit code 0, or exit code 1 and exactly one
/// <c>error:</c> line that names the file under test and is no internal error; within a minute and without
/// allocating more than 1 GiB.
/// </summary>
/// <remarks>
/// CI runs a few hundred cases per family (about a minute on two cores). <c>EXPERTSCOPE_FUZZ_CASES</c> sets the cases
/// per family, <c>EXPERTSCOPE_FUZZ_SEED</c> the seed (case i uses seed·1000003 + i, so a failure is replayed by its
/// seed and number), and <c>EXPERTSCOPE_FUZZ_REPORT</c> a file to which each family appends its figures as one JSON
/// line (docs/reliability.md records a longer run made that way).
/// </remarks>
public sealed class FuzzTests(TinyModelFixture model) : IClassFixture<TinyModelFixture>
{
    private const int DefaultSeed = 20261206;
    private const long AllocationLimit = 1L << 30;
    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(60);

    private static readonly GgufValue[] HostileValues =
    [
        GgufValue.Create(0u), GgufValue.Create(1u), GgufValue.Create(3u), GgufValue.Create(int.MaxValue), GgufValue.Create(1u << 31),
        GgufValue.Create(uint.MaxValue), GgufValue.Create(-1), GgufValue.Create(int.MinValue), GgufValue.Create((1UL << 32) + 4),
        GgufValue.Create(ulong.MaxValue), GgufValue.Create(-1L), GgufValue.Create(long.MinValue), GgufValue.Create(1_000_000_000u),
        GgufValue.Create(float.NaN), GgufValue.Create(float.PositiveInfinity), GgufValue.Create(float.NegativeInfinity), GgufValue.Create(0f),
        GgufValue.Create(-0f), GgufValue.Create(float.Epsilon), GgufValue.Create(float.MaxValue), GgufValue.Create(-1f), GgufValue.Create(double.NaN),
        GgufValue.Create(1e300), GgufValue.Create(true), GgufValue.Create(false), GgufValue.Create(string.Empty), GgufValue.Create("olmoe"),
        GgufValue.Create("x\u00e9\u0000y"), GgufValue.CreateArray(1u, 2u, 3u), GgufValue.CreateArray("a", "b"), GgufValue.CreateArray<float>(),
    ];

    private static readonly string[] HostileJsonValues = ["null", "\"x\"", "1.5", "-3", "[]", "{}", "\"TRUE\"", "99999999999", "true", "\"\"", "\"\\ud800\""];

    [Fact]
    public void Structure_EveryMutantEndsCleanly() => Run("structure", 240, StructureCase);

    [Fact]
    public void Values_EveryMutantEndsCleanly() => Run("values", 160, ValueCase);

    [Fact]
    public void DataSets_EveryMutantEndsCleanly() => Run("data", 120, DataCase);

    /// <summary>One case: the command line, and the path its error line must name (a file, or the folder holding them).</summary>
    private sealed record FuzzCase(string Description, string[] Arguments, string NamedPath);

    private void Run(string family, int ciCases, Func<Random, string, FuzzCase> create)
    {
        int cases = int.TryParse(Environment.GetEnvironmentVariable("EXPERTSCOPE_FUZZ_CASES"), out int n) && n > 0 ? n : ciCases;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("EXPERTSCOPE_FUZZ_SEED"), out int s) ? s : DefaultSeed;
        using var temp = new TempDirectory();
        var failures = new List<string>();
        int succeeded = 0, refused = 0;
        double slowest = 0;
        long mostAllocated = 0;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < cases; i++)
        {
            int caseSeed = unchecked((seed * 1_000_003) + i);
            string folder = Directory.CreateDirectory(Path.Combine(temp.Path, i.ToString(CultureInfo.InvariantCulture))).FullName;
            var fuzz = create(new Random(caseSeed), folder);
            long allocatedBefore = GC.GetTotalAllocatedBytes();
            var started = Stopwatch.StartNew();
            var run = Task.Run(() => EngineVerbs.Run(fuzz.Arguments));
            string? violation;
            if (!run.Wait(CaseTimeout))
            {
                violation = "did not finish within a minute";
            }
            else
            {
                var (code, _, error) = run.Result;
                violation = Violation(code, error, fuzz.NamedPath);
                succeeded += code == 0 ? 1 : 0;
                refused += code == 1 ? 1 : 0;
            }

            long allocated = GC.GetTotalAllocatedBytes() - allocatedBefore;
            mostAllocated = Math.Max(mostAllocated, allocated);
            slowest = Math.Max(slowest, started.Elapsed.TotalMilliseconds);
            if (violation is null && allocated > AllocationLimit)
            {
                violation = $"allocated {allocated >> 20} MiB";
            }

            if (violation is not null)
            {
                failures.Add($"{family} case {i} (seed {seed}): {fuzz.Description}: {violation}");
            }

            Directory.Delete(folder, recursive: true);
        }

        Report(family, seed, cases, succeeded, refused, failures.Count, clock.Elapsed.TotalSeconds, slowest, mostAllocated);
        Assert.True(failures.Count == 0, $"{failures.Count} of {cases} cases broke the contract:\n" + string.Join('\n', failures.Take(20)));
    }

    /// <summary>Null when the run kept the contract, else what it broke.</summary>
    private static string? Violation(int code, string error, string namedPath)
    {
        if (code == 0)
        {
            return null;
        }

        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var errors = lines.Where(line => line.StartsWith("error:", StringComparison.Ordinal)).ToList();
        if (code != 1)
        {
            return $"exit code {code}: {error.Trim()}";
        }

        if (errors.Count != 1)
        {
            return $"{errors.Count} error lines: {error.Trim()}";
        }

        if (errors[0].Contains("internal error", StringComparison.Ordinal))
        {
            return errors[0];
        }

        return errors[0].Contains(namedPath, StringComparison.Ordinal) ? null : $"the error does not name '{namedPath}': {errors[0]}";
    }

    private static void Report(string family, int seed, int cases, int succeeded, int refused, int failures, double seconds, double slowestMs, long mostAllocated)
    {
        if (Environment.GetEnvironmentVariable("EXPERTSCOPE_FUZZ_REPORT") is not { Length: > 0 } path)
        {
            return;
        }

        File.AppendAllText(path, string.Create(CultureInfo.InvariantCulture,
            $"{{\"family\":\"{family}\",\"seed\":{seed},\"cases\":{cases},\"exit0\":{succeeded},\"exit1\":{refused},\"failures\":{failures},\"seconds\":{seconds:F1},\"slowest_ms\":{slowestMs:F0},\"most_allocated_mib\":{mostAllocated >> 20}}}\n"));
    }

    // ---- structure: the GGUF container ---------------------------------------------------------------------

    private FuzzCase StructureCase(Random random, string folder)
    {
        byte[] original = File.ReadAllBytes(model.ModelPath);
        int header = HeaderLength(model.ModelPath);
        byte[] bytes;
        string description;
        switch (random.Next(5))
        {
            case 0:
            {
                int cut = random.Next(header + 64);
                bytes = original[..cut];
                description = $"truncated at byte {cut}";
                break;
            }

            case 1:
            case 2:
            {
                bytes = (byte[])original.Clone();
                int flips = 1 + random.Next(4);
                var at = new List<int>();
                for (int f = 0; f < flips; f++)
                {
                    int offset = random.Next(header);
                    bytes[offset] = random.Next(2) == 0 ? (byte)(bytes[offset] ^ (1 << random.Next(8))) : (byte)random.Next(256);
                    at.Add(offset);
                }

                description = $"header bytes changed at {string.Join(",", at)}";
                break;
            }

            case 3:
            {
                bytes = (byte[])original.Clone();
                int offset = random.Next(header - 8);
                ulong[] hostile = [0, 1, uint.MaxValue, 1UL << 31, (1UL << 32) + 4, long.MaxValue, ulong.MaxValue, 1UL << 40];
                ulong value = hostile[random.Next(hostile.Length)];
                BitConverter.GetBytes(value).AsSpan(0, random.Next(2) == 0 ? 4 : 8).CopyTo(bytes.AsSpan(offset));
                description = $"hostile integer {value} written at {offset}";
                break;
            }

            default:
            {
                bytes = (byte[])original.Clone();
                int offset = header + random.Next(bytes.Length - header);
                bytes[offset] ^= 0xFF;
                description = $"tensor data byte {offset} inverted";
                break;
            }
        }

        string path = Path.Combine(folder, "model.gguf");
        File.WriteAllBytes(path, bytes);
        string[] arguments = random.Next(3) == 0
            ? ["generate", "--model", path, "--prompt", "The bank", "--max-tokens", "1", "--threads", "1"]
            : ["inspect", path];
        return new FuzzCase(description, arguments, path);
    }

    private static int HeaderLength(string path)
    {
        using var file = GgufFile.Open(path);
        return (int)file.DataOffset;
    }

    // ---- values: well-formed files with hostile metadata --------------------------------------------------

    private FuzzCase ValueCase(Random random, string folder)
    {
        string[] keys;
        using (var file = GgufFile.Open(model.ModelPath))
        {
            keys = [.. file.Metadata.Keys.Where(k => k != "general.alignment").Order(StringComparer.Ordinal)];
        }

        var changes = new Dictionary<string, GgufValue?>();
        int count = 1 + random.Next(3);
        for (int c = 0; c < count; c++)
        {
            string key = keys[random.Next(keys.Length)];
            changes[key] = random.Next(8) == 0 ? null : HostileValues[random.Next(HostileValues.Length)];
        }

        (string, string)? extraTensor = random.Next(10) == 0 ? ("blk.0.attn_norm.weight", $"blk.{random.Next(3, 1000)}.attn_norm.weight") : null;
        string path = Path.Combine(folder, "model.gguf");
        GgufRewrite.Write(model.ModelPath, path, changes, extraTensor);
        string description = string.Join("; ", changes.Select(c => $"{c.Key} = {(c.Value is null ? "(removed)" : c.Value.Type + " " + c.Value)}"))
            + (extraTensor is { } t ? $"; extra tensor {t.Item2}" : string.Empty);
        string[] arguments = random.Next(4) == 0
            ? ["tokenize", "--model", path, "--text", "The bank of the river"]
            : ["generate", "--model", path, "--prompt", "The bank", "--max-tokens", "1", "--threads", "1"];
        return new FuzzCase(description, arguments, path);
    }

    // ---- data sets: WiC, SWORDS, prompt files -----------------------------------------------------------

    private FuzzCase DataCase(Random random, string folder) => random.Next(4) switch
    {
        0 or 1 => WicCase(random, folder),
        2 => SwordsCase(random, folder),
        _ => PromptCase(random, folder),
    };

    private FuzzCase WicCase(Random random, string folder)
    {
        var data = File.ReadLines(GoldenData.DataPath("wic", "dev", "dev.data.txt")).Take(4).ToList();
        var gold = File.ReadLines(GoldenData.DataPath("wic", "dev", "dev.gold.txt")).Take(4).ToList();
        var steps = new List<string>();
        for (int m = 1 + random.Next(3); m > 0; m--)
        {
            var lines = random.Next(3) == 0 ? gold : data;
            string which = ReferenceEquals(lines, gold) ? "gold" : "data";
            int at = random.Next(lines.Count + 1);
            switch (random.Next(6))
            {
                case 0:
                    lines.Insert(at, random.Next(2) == 0 ? string.Empty : "  ");
                    steps.Add($"blank {which} line at {at}");
                    break;
                case 1 when lines.Count > 0:
                    lines.RemoveAt(Math.Min(at, lines.Count - 1));
                    steps.Add($"{which} line {at} removed");
                    break;
                case 2 when data.Count > 0:
                {
                    int line = random.Next(data.Count);
                    var fields = data[line].Split('\t');
                    string[] indices = ["0-0", "99-1", "-1-0", "a-b", "1", "0-0-0", "2147483648-0", "1-1", "3-3"];
                    if (fields.Length > 2)
                    {
                        fields[2] = indices[random.Next(indices.Length)];
                    }

                    data[line] = string.Join('\t', fields.Take(random.Next(8) == 0 ? 4 : fields.Length));
                    steps.Add($"data line {line} index/fields changed");
                    break;
                }

                case 3 when gold.Count > 0:
                {
                    string[] labels = ["T", "F", string.Empty, "t", "TRUE", "F F", "\u00e9"];
                    int line = random.Next(gold.Count);
                    gold[line] = labels[random.Next(labels.Length)];
                    steps.Add($"gold line {line} = '{gold[line]}'");
                    break;
                }

                default:
                    steps.Add("bytes mutated");
                    break;
            }
        }

        string root = Path.Combine(folder, "data");
        string dev = Directory.CreateDirectory(Path.Combine(root, "wic", "dev")).FullName;
        File.WriteAllBytes(Path.Combine(dev, "dev.data.txt"), MutateBytes(random, Encoding.UTF8.GetBytes(string.Join('\n', data) + "\n"), steps));
        File.WriteAllBytes(Path.Combine(dev, "dev.gold.txt"), Encoding.UTF8.GetBytes(string.Join('\n', gold) + "\n"));
        string[] arguments = ["probe", "word-sense", "--model", model.ModelPath, "--dataset", "wic:dev", "--data-dir", root,
            "--out", Path.Combine(folder, "out"), "--bootstrap", "100", "--threads", "1"];
        return new FuzzCase("WiC: " + string.Join("; ", steps), random.Next(2) == 0 ? [.. arguments, "--lenient"] : arguments, root);
    }

    private FuzzCase SwordsCase(Random random, string folder)
    {
        string json = """
            {
            "contexts": {"c:1": {"context": "The bank was closed early."}, "c:2": {"context": "She sat on the river bank."}},
            "targets": {
            "t:1": {"context_id": "c:1", "target": "bank", "offset": 4, "pos": "NOUN", "extra": {"coinco_lemma": "bank"}},
            "t:2": {"context_id": "c:2", "target": "bank", "offset": 21, "pos": "NOUN"}
            },
            "substitutes": {
            "s:1": {"target_id": "t:1", "substitute": "lender"},
            "s:2": {"target_id": "t:1", "substitute": "tree"},
            "s:3": {"target_id": "t:2", "substitute": "shore"},
            "s:4": {"target_id": "t:2", "substitute": "cloud"}
            },
            "substitute_labels": {
            "s:1": ["TRUE", "TRUE", "FALSE"], "s:2": ["FALSE", "FALSE"], "s:3": ["TRUE", "UNSURE"], "s:4": ["FALSE"]
            }
            }
            """;
        var steps = new List<string>();
        var values = new Regex(@"(?<=: )(""[^""]*""|-?\d+|\[[^\[\]]*\])");
        var members = new Regex(@"""[a-z_]+"": (""[^""]*""|-?\d+|\[[^\[\]]*\]),? ?");
        for (int m = 1 + random.Next(3); m > 0; m--)
        {
            if (random.Next(2) == 0)
            {
                var matches = values.Matches(json);
                var target = matches[random.Next(matches.Count)];
                string replacement = HostileJsonValues[random.Next(HostileJsonValues.Length)];
                json = string.Concat(json.AsSpan(0, target.Index), replacement, json.AsSpan(target.Index + target.Length));
                steps.Add($"{target.Value} -> {replacement}");
            }
            else
            {
                var matches = members.Matches(json);
                var target = matches[random.Next(matches.Count)];
                json = json.Remove(target.Index, target.Length);
                steps.Add($"removed {target.Value.Trim()}");
            }
        }

        byte[] bytes = MutateBytes(random, Encoding.UTF8.GetBytes(json), steps);
        using var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(bytes);
        }

        byte[] file = compressed.ToArray();
        if (random.Next(10) == 0)
        {
            file = file[..random.Next(file.Length)];
            steps.Add("gzip cut");
        }

        string root = Path.Combine(folder, "data");
        string swords = Directory.CreateDirectory(Path.Combine(root, "swords")).FullName;
        File.WriteAllBytes(Path.Combine(swords, "swords-v1.1_dev.json.gz"), file);
        string[] arguments = ["probe", "substitution", "--model", model.ModelPath, "--dataset", "swords:dev", "--data-dir", root,
            "--out", Path.Combine(folder, "out"), "--bootstrap", "100", "--threads", "1"];
        return new FuzzCase("SWORDS: " + string.Join("; ", steps), random.Next(2) == 0 ? [.. arguments, "--lenient"] : arguments, root);
    }

    private FuzzCase PromptCase(Random random, string folder)
    {
        bool json = random.Next(2) == 0;
        string[] texts = ["The bank of the river", "She went to the bank", string.Empty, "Money, money, money"];
        var lines = texts.Select(t => json ? $"{{\"text\": \"{t}\", \"id\": 1}}" : t).ToList();
        var steps = new List<string>();
        if (json && random.Next(2) == 0)
        {
            int line = random.Next(lines.Count);
            lines[line] = $"{{\"text\": {HostileJsonValues[random.Next(HostileJsonValues.Length)]}}}";
            steps.Add($"line {line} = {lines[line]}");
        }

        if (random.Next(6) == 0)
        {
            lines.Add(string.Join(' ', Enumerable.Repeat("bank", 5000)));
            steps.Add("a line longer than the context");
        }

        string input = Path.Combine(folder, json ? "prompts.jsonl" : "prompts.txt");
        File.WriteAllBytes(input, MutateBytes(random, Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n"), steps));
        string[] arguments = ["trace", "--model", model.ModelPath, "--input", input, "--out", Path.Combine(folder, "trace.jsonl"), "--threads", "1"];
        return new FuzzCase("prompts: " + string.Join("; ", steps), arguments, input);
    }

    /// <summary>With some probability: a byte replaced (invalid UTF-8, tab, newline, digit...), or the bytes cut.</summary>
    private static byte[] MutateBytes(Random random, byte[] bytes, List<string> steps)
    {
        if (bytes.Length == 0 || random.Next(3) != 0)
        {
            return bytes;
        }

        byte[] hostile = [0xFF, 0xC3, 0xE2, 0x80, (byte)'\t', (byte)'\n', (byte)'\r', (byte)'-', (byte)'9', 0x00, (byte)'"', (byte)'{'];
        var result = (byte[])bytes.Clone();
        int at = random.Next(result.Length);
        if (random.Next(4) == 0)
        {
            steps.Add($"cut at byte {at}");
            return result[..at];
        }

        result[at] = hostile[random.Next(hostile.Length)];
        steps.Add($"byte {at} = 0x{result[at]:X2}");
        return result;
    }
}
