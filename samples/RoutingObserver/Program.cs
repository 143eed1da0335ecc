// Load a Mixture-of-Experts GGUF, run a prompt with routing observers, and read a routing trace.
//   dotnet run --project samples/RoutingObserver -- model.gguf ["prompt"] [trace.parquet]
using ExpertScope.Experiments.Storage;
using ExpertScope.Models;
using ExpertScope.Models.Routing;

namespace RoutingObserver;

/// <summary>The example's entry point.</summary>
public static class Program
{
    /// <summary>Runs the example; returns the exit code.</summary>
    public static async Task<int> Main(string[] args)
    {
        if (args.Length is < 1 or > 3)
        {
            Console.Error.WriteLine("usage: RoutingObserver model.gguf [\"prompt\"] [trace.parquet]");
            return 2;
        }

        await RunAsync(args[0], args.Length > 1 ? args[1] : "The bank by the river was closed.", args.Length > 2 ? args[2] : null, Console.Out);
        return 0;
    }

    /// <summary>The example itself, writing to <paramref name="output"/>.</summary>
    public static async Task RunAsync(string modelPath, string prompt, string? tracePath, TextWriter output)
    {
        // 1. Load: the weights stay memory-mapped; the tokenizer comes from the GGUF's metadata.
        using var model = MoeModel.Load(modelPath);
        int[] tokens = [.. model.Tokenizer.Encode(prompt)];

        // 2. Run with two observers: the ready-made RoutingTrace, and our own observer counting selections per expert.
        var trace = new RoutingTrace();
        var counter = new ExpertCounter();
        model.Run(tokens, new RunOptions { Observers = [trace, counter], Logits = LogitsSelection.None });

        int firstLayer = trace.Layers.Min();
        output.WriteLine($"{tokens.Length} tokens, MoE layers {string.Join(",", trace.Layers.Order())}");
        for (int position = 0; position < trace.PositionCount; position++)
        {
            output.WriteLine($"  position {position}: layer {firstLayer} experts [{string.Join(", ", trace.ExpertsAt(firstLayer, position).ToArray())}]"
                + $" weights [{string.Join(", ", trace.WeightsAt(firstLayer, position).ToArray().Select(w => w.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)))}]");
        }

        var (busiest, count) = counter.Busiest();
        output.WriteLine($"most selected: layer {busiest.Layer} expert {busiest.Expert} ({count} of {tokens.Length} tokens)");

        // 3. Read a trace file written by `expertscope trace` (Parquet or JSON Lines): metadata, then one row per decision.
        if (tracePath is not null)
        {
            var metadata = await RoutingTraceReader.ReadMetadataAsync(tracePath);
            long rows = 0;
            var sequences = new HashSet<int>();
            await foreach (var row in RoutingTraceReader.ReadRowsAsync(tracePath))
            {
                rows++;
                sequences.Add(row.Sequence);
            }

            output.WriteLine($"trace {Path.GetFileName(tracePath)}: {metadata.Architecture}, {metadata.ExpertCount} experts, top-{metadata.TopK}; {sequences.Count} sequences, {rows} rows");
        }
    }

    /// <summary>An observer of our own: asks only for the routing decision (ask, then receive) and counts selections.</summary>
    private sealed class ExpertCounter : IRouterObserver
    {
        private readonly Dictionary<(int Layer, int Expert), int> _counts = [];

        public bool Wants(HookSite site) => site.Kind == HookKind.Router;

        public void Observe(HookSite site, in RouterView view)
        {
            // The spans are valid only during this call: copy what you keep.
            foreach (int expert in view.SelectedExperts)
            {
                _counts[(site.Layer, expert)] = _counts.GetValueOrDefault((site.Layer, expert)) + 1;
            }
        }

        public ((int Layer, int Expert) Key, int Count) Busiest()
        {
            var best = _counts.OrderByDescending(p => p.Value).ThenBy(p => p.Key).First();
            return (best.Key, best.Value);
        }
    }
}
