using ExpertScope.Core;
using ExpertScope.Experiments.Analyses;
using ExpertScope.Experiments.Lens;
using ExpertScope.Models;
using ExpertScope.Models.Synthetic;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>
/// The trained OLMoE of the shared data (learned routing) and its control of exactly the same shape and tokenizer,
/// written once per test class: the <b>random twin</b> (<see cref="RandomTwinWriter"/>: the training recipe's
/// initialisation, N(0, 0.02) matrices, 0.02/√8 for <c>attn_output</c> and <c>ffn_down_exps</c>, norms 1; seeded), as
/// the model's README compares.
/// </summary>
/// <remarks>
/// Why not the trained model with its router rows shuffled: permuting router rows only relabels experts (every
/// routing statistic is unchanged), and permuting the entries of each row makes the router a random projection of
/// the learned hidden states, which still separates domains (measured: mean JS divergence 0.092 bits between four
/// held-out domains, above the trained router's 0.072), so it is no control for domain routing.
/// </remarks>
public sealed class TrainedModelTwins : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly Dictionary<string, IReadOnlyList<(string Name, List<RoutingRecord> Records)>> _routing = [];

    public TrainedModelTwins()
    {
        // The recipe's initialisation, as `make-model --like` writes it.
        RandomTwinWriter.Write(Trained, RandomTwin, seed: 20261206);
    }

    /// <summary>The trained model (all tensors F32).</summary>
    public static string Trained => Path.Combine(GoldenData.Shared, "models", "olmoe-tiny-trained", "model.gguf");

    /// <summary>Held-out text of the trained model, one document per blank-line-separated block.</summary>
    public static string Validation => Path.Combine(GoldenData.Shared, "models", "olmoe-tiny-trained", "validation.txt");

    public string RandomTwin => _temp.File("random-twin.gguf");

    /// <summary>Held-out lines of one domain (1-based inclusive line ranges from the model's README).</summary>
    public static IReadOnlyList<string> ValidationLines(int first, int last) =>
        [.. File.ReadLines(Validation).Skip(first - 1).Take(last - first + 1).Where(l => l.Trim().Length > 0)];

    /// <summary>
    /// Held-out line ranges of the trained model's validation.txt (its README): prose (WikiText) and three domains
    /// the issue names (code, non-English, math).
    /// </summary>
    public static IReadOnlyList<(string Name, int First, int Last)> Domains { get; } =
        [("prose", 825, 965), ("code", 270, 642), ("math", 1, 268), ("non-english", 2034, 3892)];

    /// <summary>Tokens routed per domain: small enough to keep the tests fast, large enough for the margins asserted.</summary>
    public const int TokensPerDomain = 1500;

    /// <summary>The routing of every domain's first <see cref="TokensPerDomain"/> held-out tokens (computed once per model).</summary>
    public IReadOnlyList<(string Name, List<RoutingRecord> Records)> DomainRouting(string path)
    {
        lock (_routing)
        {
            if (!_routing.TryGetValue(path, out var routing))
            {
                using var model = MoeModel.Load(path);
                routing = [.. Domains.Select(d => (d.Name, Records: Sequences(model, ValidationLines(d.First, d.Last), TokensPerDomain)
                    .SelectMany((s, i) => RoutingCollector.Run(model, s, i, null)).ToList()))];
                _routing[path] = routing;
            }

            return routing;
        }
    }

    /// <summary>Lines encoded with BOS and cut to the context, in order, until <paramref name="budget"/> tokens.</summary>
    public static List<int[]> Sequences(MoeModel model, IEnumerable<string> lines, int budget)
    {
        var sequences = new List<int[]>();
        int total = 0;
        foreach (string line in lines)
        {
            var tokens = model.Tokenizer.Encode(line).Take(Math.Min(model.Hyperparameters.ContextLength, budget - total)).ToArray();
            if (tokens.Length < 2)
            {
                continue;
            }

            sequences.Add(tokens);
            total += tokens.Length;
            if (total >= budget)
            {
                break;
            }
        }

        return sequences;
    }

    public void Dispose() => _temp.Dispose();
}
