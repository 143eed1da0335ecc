using ExpertScope.Core;
using System.Numerics.Tensors;
using ExpertScope.Kernels.Quant;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Blocks;

/// <summary>One routed expert: a SwiGLU FFN whose three projections are slices of the stacked expert tensors.</summary>
/// <param name="Gate">Slice of <c>ffn_gate_exps</c> <c>[ff, E]</c>.</param>
/// <param name="Up">Slice of <c>ffn_up_exps</c> <c>[ff, E]</c>.</param>
/// <param name="Down">Slice of <c>ffn_down_exps</c> <c>[E, ff]</c>.</param>
/// <param name="GateBias">This expert's row of <c>ffn_gate_exps.bias</c> <c>[ff]</c>, or null (gpt-oss has all three).</param>
/// <param name="UpBias">This expert's row of <c>ffn_up_exps.bias</c> <c>[ff]</c>, or null.</param>
/// <param name="DownBias">This expert's row of <c>ffn_down_exps.bias</c> <c>[E]</c>, or null.</param>
public sealed record ExpertWeights(
    LinearWeight Gate,
    LinearWeight Up,
    LinearWeight Down,
    float[]? GateBias = null,
    float[]? UpBias = null,
    float[]? DownBias = null);

/// <summary>
/// Shared experts that every token passes through, optionally scaled by a per-token sigmoid gate
/// (Qwen2-MoE's <c>ffn_gate_inp_shexp</c>; DeepSeek has no gate).
/// </summary>
/// <param name="Ffn">The shared experts as one SwiGLU FFN (DeepSeek stores several shared experts concatenated).</param>
/// <param name="Gate">The gate's weight vector <c>[1, E]</c>, or null for an ungated shared expert.</param>
public sealed record SharedExperts(SwiGluFfn Ffn, LinearWeight? Gate);

/// <summary>
/// A mixture-of-experts feed-forward: router (<c>ffn_gate_inp</c> then <see cref="Router"/>), the selected routed
/// experts weighted and summed in slot order (as llama.cpp's <c>build_moe_ffn</c>), plus optional shared experts.
/// With <see cref="RouterConfig.WeightExpertInput"/> (Llama 4) the weight scales each expert's input instead, and
/// <c>ffn_moe_down</c> holds the outputs of those weighted inputs.
/// Tokens are grouped by expert so each expert's weights are read once per batch.
/// </summary>
public sealed class MoeLayer : IFeedForward
{
    private readonly RoutingResult _routing = new();

    /// <summary>Creates the layer.</summary>
    /// <param name="routerWeight">Router projection <c>ffn_gate_inp</c> <c>[X, E]</c>.</param>
    /// <param name="router">The router.</param>
    /// <param name="experts">The X routed experts.</param>
    /// <param name="shared">Shared experts, or null.</param>
    /// <param name="activation">The experts' gated activation: null for SwiGLU, or gpt-oss's clamped variant.</param>
    public MoeLayer(LinearWeight routerWeight, Router router, IReadOnlyList<ExpertWeights> experts, SharedExperts? shared, ClampedSwiGlu? activation = null)
    {
        ArgumentNullException.ThrowIfNull(routerWeight);
        ArgumentNullException.ThrowIfNull(router);
        ArgumentNullException.ThrowIfNull(experts);
        RouterWeight = routerWeight;
        Router = router;
        Experts = experts;
        Shared = shared;
        Activation = activation;
    }

    /// <summary>The experts' gated activation: null for SwiGLU (silu(gate)·up), else the clamped variant.</summary>
    public ClampedSwiGlu? Activation { get; }

    /// <summary>Router projection <c>[X, E]</c>.</summary>
    public LinearWeight RouterWeight { get; }

    /// <summary>The router.</summary>
    public Router Router { get; }

    /// <summary>Routed experts.</summary>
    public IReadOnlyList<ExpertWeights> Experts { get; }

    /// <summary>Shared experts, or null.</summary>
    public SharedExperts? Shared { get; }

    /// <inheritdoc/>
    public void Forward(ReadOnlySpan<float> input, Span<float> output, int layer, ForwardContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        int tokens = context.TokenCount;
        int width = RouterWeight.Inputs;
        int expertCount = Router.Config.ExpertCount;

        var logits = new float[tokens * expertCount];
        RouterWeight.Multiply(input, tokens, logits, context.Parallelism);

        // The routing result is per layer; a model instance runs one forward pass at a time.
        lock (_routing)
        {
            Router.Route(logits, tokens, context.Interventions, _routing);
            context.EmitRouting(layer, Router, _routing);
            RunExperts(input, output, _routing, context);
        }

        context.Emit(HookKind.ExpertOutput, layer, output, width);
        if (Shared is not null && !context.Interventions.Any(i => i is DisableSharedExperts && i.Layers.Includes(layer)))
        {
            AddShared(input, output, layer, context);
        }

        context.Emit(HookKind.FeedForwardOutput, layer, output, width);
    }

    private void RunExperts(ReadOnlySpan<float> input, Span<float> output, RoutingResult routing, ForwardContext context)
    {
        int tokens = context.TokenCount;
        int width = RouterWeight.Inputs;
        int k = routing.TopK;
        if (tokens == 1)
        {
            RunExpertsForOneToken(input, output, routing, context);
            return;
        }

        // Group (token, slot) pairs by expert; a zero weight (an ablation) skips the computation.
        var assignments = new List<int>[Experts.Count];
        for (int t = 0; t < tokens; t++)
        {
            for (int slot = 0; slot < k; slot++)
            {
                int index = t * k + slot;
                if (routing.Weights[index] != 0.0f)
                {
                    (assignments[routing.Experts[index]] ??= []).Add(index);
                }
            }
        }

        // Per-slot outputs [T, k, E], then summed in slot order as llama.cpp adds its views.
        var slotOutputs = new float[tokens * k * width];
        var unweighted = context.Wants(HookKind.ExpertDownOutputs, Router.Layer) ? new float[tokens * k * width] : null;
        unsafe
        {
            fixed (float* inputPointer = input)
            {
                nint inputAddress = (nint)inputPointer;
                var plan = ExpertSchedule.Plan(assignments, context.Parallelism.ThreadCount);

                // Experts with a large share of the tokens split their rows among the threads, one after another.
                foreach (int e in plan.RowParallel)
                {
                    RunExpert(e, assignments[e]!, (float*)inputAddress, routing, slotOutputs, unweighted, context.Parallelism);
                }

                // The others run whole, several at once: their gathering, conversions and SwiGLU run in parallel too,
                // and the threads are woken once instead of three times per expert.
                context.Parallelism.For(plan.Groups.Count, 1L << 32, (from, to) =>
                {
                    for (int g = from; g < to; g++)
                    {
                        foreach (int e in plan.Groups[g])
                        {
                            RunExpert(e, assignments[e]!, (float*)inputAddress, routing, slotOutputs, unweighted, Parallelism.Single);
                        }
                    }
                });
            }
        }

        if (unweighted is not null)
        {
            context.Emit(HookKind.ExpertDownOutputs, Router.Layer, unweighted, k * width);
        }

        context.Emit(HookKind.WeightedExpertOutputs, Router.Layer, slotOutputs, k * width);
        for (int t = 0; t < tokens; t++)
        {
            var target = output.Slice(t * width, width);
            slotOutputs.AsSpan(t * k * width, width).CopyTo(target);
            for (int slot = 1; slot < k; slot++)
            {
                TensorPrimitives.Add(target, slotOutputs.AsSpan((t * k + slot) * width, width), target);
            }
        }
    }

    /// <summary>One expert's SwiGLU over the tokens routed to it (<paramref name="rows"/> are (token, slot) indices), weighted into its slots.</summary>
    private unsafe void RunExpert(int e, List<int> rows, float* inputPointer, RoutingResult routing, float[] slotOutputs, float[]? unweighted, Parallelism parallelism)
    {
        int width = RouterWeight.Inputs;
        int k = routing.TopK;
        var input = new ReadOnlySpan<float>(inputPointer, (rows[^1] / k + 1) * width);
        var expert = Experts[e];
        int n = rows.Count;
        int ff = expert.Gate.Outputs;
        var gathered = new float[n * width];
        bool weightInput = Router.Config.WeightExpertInput;
        for (int i = 0; i < n; i++)
        {
            var row = gathered.AsSpan(i * width, width);
            input.Slice(rows[i] / k * width, width).CopyTo(row);
            if (weightInput)
            {
                TensorPrimitives.Multiply(row, routing.Weights[rows[i]], row);
            }
        }

        var gate = new float[n * ff];
        var up = new float[n * ff];
        if (n > 1 && expert.Gate.TakesPackedActivations && expert.Up.Type == expert.Gate.Type)
        {
            // Gate and up read the same tokens: convert them once.
            var packed = expert.Gate.Pack(gathered, n);
            expert.Gate.Multiply(packed, gate, parallelism);
            expert.Up.Multiply(packed, up, parallelism);
        }
        else
        {
            expert.Gate.Multiply(gathered, n, gate, parallelism);
            expert.Up.Multiply(gathered, n, up, parallelism);
        }

        Activate(expert, gate, up, ff);
        var down = new float[n * width];
        expert.Down.Multiply(gate, n, down, parallelism);
        AddBias(down, expert.DownBias);
        for (int i = 0; i < n; i++)
        {
            float weight = routing.Weights[rows[i]];
            var source = down.AsSpan(i * width, width);
            var target = slotOutputs.AsSpan(rows[i] * width, width);
            if (unweighted is not null)
            {
                source.CopyTo(unweighted.AsSpan(rows[i] * width, width));
            }

            if (weightInput)
            {
                source.CopyTo(target);
            }
            else
            {
                TensorPrimitives.Multiply(source, weight, target);
            }
        }
    }

    /// <summary>
    /// Generation: one token through its k experts with two parallel jobs instead of 3k (all gate and up projections,
    /// then all down projections, their rows split among the threads as one list), and the token's activations
    /// converted once for every expert that reads them. Each output is the same dot as in the batched path, so the bits
    /// do not change; what goes away is waking the threads 3k times for small matrices.
    /// </summary>
    private unsafe void RunExpertsForOneToken(ReadOnlySpan<float> input, Span<float> output, RoutingResult routing, ForwardContext context)
    {
        int width = RouterWeight.Inputs;
        int k = routing.TopK;
        var active = new List<int>(k);
        for (int slot = 0; slot < k; slot++)
        {
            if (routing.Weights[slot] != 0.0f)
            {
                active.Add(slot);
            }
        }

        var inputArray = input[..width].ToArray();
        var inputs = new Dictionary<(GgmlType Type, bool Packed), PreparedInput>();
        PreparedInput Prepare(LinearWeight weight, float[] values, bool shared)
        {
            if (!shared)
            {
                return PreparedInput.For(weight, values);
            }

            var key = (weight.Type, weight.TakesPackedActivations);
            if (!inputs.TryGetValue(key, out var prepared))
            {
                prepared = PreparedInput.For(weight, values);
                inputs[key] = prepared;
            }

            return prepared;
        }

        bool weightInput = Router.Config.WeightExpertInput;
        var gates = new float[active.Count][];
        var ups = new float[active.Count][];
        var products = new List<RowProduct>(2 * active.Count);
        for (int i = 0; i < active.Count; i++)
        {
            var expert = Experts[routing.Experts[active[i]]];
            gates[i] = new float[expert.Gate.Outputs];
            ups[i] = new float[expert.Up.Outputs];

            // Weighted inputs differ per slot, so they are converted for each expert on their own.
            var expertInput = inputArray;
            if (weightInput)
            {
                expertInput = new float[width];
                TensorPrimitives.Multiply(inputArray, routing.Weights[active[i]], expertInput);
            }

            products.Add(new RowProduct(expert.Gate, Prepare(expert.Gate, expertInput, shared: !weightInput), gates[i]));
            products.Add(new RowProduct(expert.Up, Prepare(expert.Up, expertInput, shared: !weightInput), ups[i]));
        }

        RowProduct.RunAll(products, context.Parallelism);

        var downs = new float[active.Count][];
        products.Clear();
        for (int i = 0; i < active.Count; i++)
        {
            var expert = Experts[routing.Experts[active[i]]];
            Activate(expert, gates[i], ups[i], gates[i].Length);
            downs[i] = new float[width];
            products.Add(new RowProduct(expert.Down, Prepare(expert.Down, gates[i], shared: false), downs[i]));
        }

        RowProduct.RunAll(products, context.Parallelism);
        for (int i = 0; i < active.Count; i++)
        {
            AddBias(downs[i], Experts[routing.Experts[active[i]]].DownBias);
        }

        var slotOutputs = new float[k * width];
        var unweighted = context.Wants(HookKind.ExpertDownOutputs, Router.Layer) ? new float[k * width] : null;
        for (int i = 0; i < active.Count; i++)
        {
            int slot = active[i];
            if (unweighted is not null)
            {
                downs[i].CopyTo(unweighted.AsSpan(slot * width));
            }

            if (weightInput)
            {
                downs[i].CopyTo(slotOutputs.AsSpan(slot * width, width));
            }
            else
            {
                TensorPrimitives.Multiply(downs[i], routing.Weights[slot], slotOutputs.AsSpan(slot * width, width));
            }
        }

        if (unweighted is not null)
        {
            context.Emit(HookKind.ExpertDownOutputs, Router.Layer, unweighted, k * width);
        }

        context.Emit(HookKind.WeightedExpertOutputs, Router.Layer, slotOutputs, k * width);
        var target = output[..width];
        slotOutputs.AsSpan(0, width).CopyTo(target);
        for (int slot = 1; slot < k; slot++)
        {
            TensorPrimitives.Add(target, slotOutputs.AsSpan(slot * width, width), target);
        }
    }

    /// <summary>
    /// The gated activation of <paramref name="gate"/> and <paramref name="up"/> rows (<paramref name="ff"/> wide) into
    /// <paramref name="gate"/>, after the experts' biases (llama.cpp's <c>add_id</c>: up biased, then gate).
    /// </summary>
    private void Activate(ExpertWeights expert, float[] gate, float[] up, int ff)
    {
        AddBias(up, expert.UpBias);
        AddBias(gate, expert.GateBias);
        if (Activation is null)
        {
            GgmlMath.SwiGlu(gate, up, ff);
        }
        else
        {
            Activation.Apply(gate, up);
        }
    }

    /// <summary>Adds a bias to every row of <paramref name="rows"/> (rows as long as the bias).</summary>
    private static void AddBias(float[] rows, float[]? bias)
    {
        if (bias is null)
        {
            return;
        }

        for (int row = 0; row + bias.Length <= rows.Length; row += bias.Length)
        {
            TensorPrimitives.Add(rows.AsSpan(row, bias.Length), bias, rows.AsSpan(row, bias.Length));
        }
    }

    /// <summary>One token's activations made ready for a weight: packed for quantized weights, else float rows.</summary>
    private sealed class PreparedInput
    {
        private PreparedInput(PackedActivations? packed, float[]? floats)
        {
            Packed = packed;
            Floats = floats;
        }

        public PackedActivations? Packed { get; }

        public float[]? Floats { get; }

        public static PreparedInput For(LinearWeight weight, float[] values) =>
            weight.TakesPackedActivations
                ? new PreparedInput(weight.Pack(values, 1), null)
                : new PreparedInput(null, weight.PrepareFloats(values, 1).ToArray());
    }

    /// <summary>One token times one weight matrix, as a slice of a job that splits the rows of several matrices.</summary>
    private sealed record RowProduct(LinearWeight Weight, PreparedInput Input, float[] Output)
    {
        /// <summary>Runs every product in one parallel job over the concatenated output rows.</summary>
        public static unsafe void RunAll(List<RowProduct> products, Parallelism parallelism)
        {
            var firstRow = new int[products.Count + 1];
            long work = 0;
            for (int i = 0; i < products.Count; i++)
            {
                firstRow[i + 1] = firstRow[i] + products[i].Weight.Outputs;
                work = Math.Max(work, products[i].Weight.Inputs);
            }

            parallelism.For(firstRow[^1], work, (start, end) =>
            {
                for (int i = 0; i < products.Count; i++)
                {
                    int from = Math.Max(start, firstRow[i]);
                    int to = Math.Min(end, firstRow[i + 1]);
                    if (from >= to)
                    {
                        continue;
                    }

                    var product = products[i];
                    fixed (float* input = product.Input.Floats)
                    fixed (float* output = product.Output)
                    {
                        product.Weight.MultiplyRows(input, product.Input.Packed, 1, output, from - firstRow[i], to - firstRow[i]);
                    }
                }
            });
        }
    }

    private void AddShared(ReadOnlySpan<float> input, Span<float> output, int layer, ForwardContext context)
    {
        int tokens = context.TokenCount;
        int width = RouterWeight.Inputs;
        var shared = new float[tokens * width];
        Shared!.Ffn.Compute(input, tokens, shared, context.Parallelism);
        context.Emit(HookKind.SharedExpert, layer, shared, width);
        if (Shared.Gate is { } gateWeight)
        {
            var gateInput = new float[tokens];
            gateWeight.Multiply(input, tokens, gateInput, context.Parallelism);
            context.Emit(HookKind.SharedExpertGateInput, layer, gateInput, 1);
            var gate = new float[tokens];
            for (int t = 0; t < tokens; t++)
            {
                // llama.cpp forms the sigmoid as silu(x) / x.
                float x = gateInput[t];
                gate[t] = GgmlMath.Silu(x) / x;
                if (float.IsNaN(gate[t]))
                {
                    gate[t] = 0.5f;
                }
            }

            context.Emit(HookKind.SharedExpertGate, layer, gate, 1);
            for (int t = 0; t < tokens; t++)
            {
                var row = shared.AsSpan(t * width, width);
                for (int j = 0; j < width; j++)
                {
                    row[j] *= gate[t];
                }
            }

            context.Emit(HookKind.SharedExpertOutput, layer, shared, width);
        }

        for (int i = 0; i < tokens * width; i++)
        {
            output[i] += shared[i];
        }
    }
}

/// <summary>
/// How a batch's experts are spread over the threads: experts holding more than a thread's share of the routed tokens
/// split their rows among all threads; the rest are dealt, whole and in index order, into one group per thread of
/// about equal token counts. Which thread runs an expert never changes its arithmetic, so results do not depend on it.
/// </summary>
internal sealed record ExpertSchedule(IReadOnlyList<int> RowParallel, IReadOnlyList<IReadOnlyList<int>> Groups)
{
    /// <summary>Plans the experts that have tokens (<paramref name="assignments"/>[e] is null for the others).</summary>
    public static ExpertSchedule Plan(IReadOnlyList<List<int>?> assignments, int threads)
    {
        threads = Math.Max(1, threads);
        long total = 0;
        foreach (var rows in assignments)
        {
            total += rows?.Count ?? 0;
        }

        var rowParallel = new List<int>();
        var whole = new List<int>();
        long wholeTotal = 0;
        for (int e = 0; e < assignments.Count; e++)
        {
            if (assignments[e] is not { Count: > 0 } rows)
            {
                continue;
            }

            if (threads > 1 && (long)rows.Count * threads > total)
            {
                rowParallel.Add(e);
            }
            else
            {
                whole.Add(e);
                wholeTotal += rows.Count;
            }
        }

        var groups = new List<int>[threads];
        for (int g = 0; g < threads; g++)
        {
            groups[g] = [];
        }

        // Each expert goes to the group in which the middle of its token range falls.
        long before = 0;
        foreach (int e in whole)
        {
            long count = assignments[e]!.Count;
            long middle = 2 * before + count;
            int group = (int)Math.Min(threads - 1, middle * threads / Math.Max(1, 2 * wholeTotal));
            groups[group].Add(e);
            before += count;
        }

        return new ExpertSchedule(rowParallel, groups);
    }
}

