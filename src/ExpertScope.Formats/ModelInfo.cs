using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;

namespace ExpertScope.Formats;

/// <summary>How a router turns logits into expert probabilities: llama.cpp's <c>llama_expert_gating_func_type</c>, same numbers.</summary>
public enum ExpertGatingFunction
{
    /// <summary>Not set in the file; llama.cpp then picks a per-architecture default (usually softmax).</summary>
    None = 0,

    /// <summary>Softmax over all experts.</summary>
    Softmax = 1,

    /// <summary>Independent sigmoid per expert (DeepSeek-V3 style).</summary>
    Sigmoid = 2,

    /// <summary>Logits kept as scores; softmax applied to the selected experts' weights only.</summary>
    SoftmaxWeight = 3,

    /// <summary>sqrt(softplus(logit)) per expert.</summary>
    SqrtSoftplus = 4,
}

/// <summary>What a tensor is for, as far as parameter counting cares.</summary>
public enum TensorRole
{
    /// <summary>Stacked routed experts (<c>*_exps</c>): only <c>expert_used_count</c> of <c>expert_count</c> run per token.</summary>
    RoutedExperts,

    /// <summary>Shared (always-on) expert weights (<c>*_shexp</c>).</summary>
    SharedExpert,

    /// <summary>The router (<c>ffn_gate_inp</c>) and its selection bias (<c>exp_probs_b</c>).</summary>
    Router,

    /// <summary>Everything else: embeddings, attention, norms, dense feed-forward, output.</summary>
    Other,
}

/// <summary>The architecture's hyperparameters, read from <c>{arch}.*</c> keys; null where the file has no such key.</summary>
/// <param name="VocabularySize"><c>{arch}.vocab_size</c>, else the length of <c>tokenizer.ggml.tokens</c>.</param>
/// <param name="ContextLength">Training context length.</param>
/// <param name="EmbeddingLength">Width of the residual stream.</param>
/// <param name="BlockCount">Number of transformer blocks, dense leading blocks included.</param>
/// <param name="FeedForwardLength">Dense feed-forward width (the largest, when given per layer).</param>
/// <param name="HeadCount">Attention (query) heads (the largest, when given per layer).</param>
/// <param name="HeadCountKv">Key/value heads (the largest, when given per layer); defaults to <paramref name="HeadCount"/>.</param>
/// <param name="KeyLength">Key head size: <c>attention.key_length</c>, else embedding length / heads.</param>
/// <param name="ValueLength">Value head size: <c>attention.value_length</c>, else embedding length / heads.</param>
/// <param name="LayerNormRmsEpsilon"><c>attention.layer_norm_rms_epsilon</c>.</param>
/// <param name="LayerNormEpsilon"><c>attention.layer_norm_epsilon</c>.</param>
/// <param name="RopeDimensionCount"><c>rope.dimension_count</c>.</param>
/// <param name="RopeFrequencyBase"><c>rope.freq_base</c>.</param>
/// <param name="Rope">Every <c>{arch}.rope.*</c> key, named without the <c>{arch}.rope.</c> prefix, in file order.</param>
/// <param name="MultiHeadLatentAttention">True when <c>attention.key_length_mla</c> and <c>value_length_mla</c> are set
/// (DeepSeek MLA): keys hold the compressed latent plus the RoPE part, and llama.cpp keeps no separate V cache.</param>
public sealed record ModelHyperparameters(
    long? VocabularySize,
    long? ContextLength,
    long? EmbeddingLength,
    long? BlockCount,
    long? FeedForwardLength,
    long? HeadCount,
    long? HeadCountKv,
    long? KeyLength,
    long? ValueLength,
    double? LayerNormRmsEpsilon,
    double? LayerNormEpsilon,
    long? RopeDimensionCount,
    double? RopeFrequencyBase,
    IReadOnlyList<KeyValuePair<string, GgufValue>> Rope,
    bool MultiHeadLatentAttention);

/// <summary>Mixture-of-Experts configuration, read from <c>{arch}.expert_*</c> keys; null where the file has no such key.</summary>
/// <param name="ExpertCount">Routed experts per MoE block.</param>
/// <param name="ExpertUsedCount">Experts selected per token.</param>
/// <param name="ExpertSharedCount">Always-on shared experts.</param>
/// <param name="ExpertFeedForwardLength">Feed-forward width of one routed expert.</param>
/// <param name="ExpertSharedFeedForwardLength">Feed-forward width of the shared expert (Qwen2-MoE).</param>
/// <param name="GatingFunctionId">The raw <c>expert_gating_func</c> value.</param>
/// <param name="ExpertWeightsScale">Factor applied to the mixing weights.</param>
/// <param name="ExpertWeightsNormalized">Whether the selected weights are renormalized to sum to one.</param>
/// <param name="LeadingDenseBlockCount">Blocks before the first MoE block that use a dense feed-forward.</param>
/// <param name="ExpertGroupCount">Expert groups for group-limited routing.</param>
/// <param name="ExpertGroupUsedCount">Groups kept per token.</param>
/// <param name="MoeBlockCount">Blocks that have a router tensor (<c>blk.N.ffn_gate_inp.weight</c>), NextN blocks (<c>nextn_predict_layers</c>) not counted.</param>
public sealed record MoeConfiguration(
    long ExpertCount,
    long? ExpertUsedCount,
    long? ExpertSharedCount,
    long? ExpertFeedForwardLength,
    long? ExpertSharedFeedForwardLength,
    long? GatingFunctionId,
    double? ExpertWeightsScale,
    bool? ExpertWeightsNormalized,
    long? LeadingDenseBlockCount,
    long? ExpertGroupCount,
    long? ExpertGroupUsedCount,
    int MoeBlockCount)
{
    /// <summary>The gating function, or null when the id is one this program does not know.</summary>
    public ExpertGatingFunction? GatingFunction =>
        GatingFunctionId is >= (long)ExpertGatingFunction.None and <= (long)ExpertGatingFunction.SqrtSoftplus ? (ExpertGatingFunction)GatingFunctionId.Value : null;
}

/// <summary>One tensor with its role in parameter counting.</summary>
/// <param name="Info">The tensor as the file describes it.</param>
/// <param name="Role">What it is for.</param>
/// <param name="ActiveElements">Elements used for one token: all of them, or the routed share for stacked experts.</param>
public sealed record ModelTensor(GgufTensorInfo Info, TensorRole Role, long ActiveElements);

/// <summary>
/// A summary of a GGUF model: architecture, hyperparameters, MoE configuration, tensors, parameter counts and memory.
/// </summary>
/// <param name="FilePath">The file summarized.</param>
/// <param name="Architecture"><c>general.architecture</c>.</param>
/// <param name="Name"><c>general.name</c>, or null.</param>
/// <param name="Hyperparameters">Architecture hyperparameters.</param>
/// <param name="Moe">MoE configuration, or null for a dense model (no or zero <c>expert_count</c>).</param>
/// <param name="Tensors">Every tensor in file order.</param>
/// <param name="TotalParameters">Elements in all tensors.</param>
/// <param name="ActiveParameters">Elements used per token: routed expert tensors count <c>expert_used_count / expert_count</c> of
/// their size, NextN blocks (never run) nothing, everything else (shared experts, attention, embeddings, output) in full.</param>
/// <param name="TensorBytes">Bytes of tensor data in the file.</param>
/// <param name="KvCacheBytes">A float32 KV cache holding <c>context_length</c> positions in every block, sized as llama.cpp
/// sizes it (KV heads × (key + value length) per position; keys only under MLA), or null when the hyperparameters needed
/// are missing.</param>
public sealed record ModelInfo(
    string FilePath,
    string Architecture,
    string? Name,
    ModelHyperparameters Hyperparameters,
    MoeConfiguration? Moe,
    IReadOnlyList<ModelTensor> Tensors,
    long TotalParameters,
    long ActiveParameters,
    long TensorBytes,
    long? KvCacheBytes)
{
    /// <summary>Memory needed to run at full context: tensor bytes plus the KV cache.</summary>
    public long MemoryBytes => TensorBytes + (KvCacheBytes ?? 0);

    /// <summary>Summarizes an opened GGUF file.</summary>
    /// <exception cref="ExpertScopeException">A key this summary reads holds the wrong type or an impossible value
    /// (the message names the file and the key), or <c>general.architecture</c> is missing.</exception>
    public static ModelInfo FromGguf(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        string arch = file.GetString("general.architecture");
        var keys = new KeyReader(file, arch);

        long? blockCount = keys.Count("block_count");
        long? embedding = keys.Count("embedding_length");
        long[]? headsPerLayer = keys.PerLayer("attention.head_count", blockCount);
        long[]? kvHeadsPerLayer = keys.PerLayer("attention.head_count_kv", blockCount) ?? headsPerLayer;
        long? heads = headsPerLayer?.DefaultIfEmpty().Max();
        long? derivedHeadSize = embedding is { } e && heads is > 0 ? e / heads.Value : null;
        long? keyLength = keys.Count("attention.key_length") ?? derivedHeadSize;
        long? valueLength = keys.Count("attention.value_length") ?? derivedHeadSize;

        string ropePrefix = arch + ".rope.";
        var rope = file.Metadata.Where(kv => kv.Key.StartsWith(ropePrefix, StringComparison.Ordinal))
            .Select(kv => new KeyValuePair<string, GgufValue>(kv.Key[ropePrefix.Length..], kv.Value))
            .ToList();

        var hyperparameters = new ModelHyperparameters(
            keys.Count("vocab_size") ?? file.TryGet("tokenizer.ggml.tokens")?.AsArray?.Count,
            keys.Count("context_length"),
            embedding,
            blockCount,
            keys.PerLayer("feed_forward_length", blockCount)?.DefaultIfEmpty().Max(),
            heads,
            kvHeadsPerLayer?.DefaultIfEmpty().Max(),
            keyLength,
            valueLength,
            keys.Number("attention.layer_norm_rms_epsilon"),
            keys.Number("attention.layer_norm_epsilon"),
            keys.Count("rope.dimension_count"),
            keys.Number("rope.freq_base"),
            rope,
            keys.Count("attention.key_length_mla") is > 0 && keys.Count("attention.value_length_mla") is > 0);

        // GLM-style NextN (multi-token prediction) blocks close the file; llama.cpp loads them but never runs them.
        long firstNextNBlock = (blockCount ?? 0) - (keys.Count("nextn_predict_layers") ?? 0);
        bool InNextNBlock(string name) => blockCount is not null && BlockIndex(name) is { } block && block >= firstNextNBlock;
        var moe = ReadMoe(file, keys, InNextNBlock);
        var tensors = new List<ModelTensor>(file.Tensors.Count);
        long total = 0, active = 0, bytes = 0;
        foreach (var tensor in file.Tensors)
        {
            var role = RoleOf(tensor.Name);
            long elements = tensor.ElementCount;
            long activeElements = InNextNBlock(tensor.Name) ? 0
                : role == TensorRole.RoutedExperts && moe is { ExpertUsedCount: { } used } && used < moe.ExpertCount
                ? RoutedShare(elements, used, moe.ExpertCount)
                : elements;
            tensors.Add(new ModelTensor(tensor, role, activeElements));
            total = Add(file, total, elements, "parameter count");
            active = Add(file, active, activeElements, "parameter count");
            bytes = Add(file, bytes, tensor.ByteSize, "tensor bytes");
        }

        // With MLA llama.cpp caches only the latent keys; values are read back out of them.
        long? kvCache = KvCache(file, hyperparameters.ContextLength, kvHeadsPerLayer, keyLength, hyperparameters.MultiHeadLatentAttention ? 0 : valueLength);
        return new ModelInfo(file.FilePath, arch, file.TryGetString("general.name"), hyperparameters, moe, tensors, total, active, bytes, kvCache);
    }

    /// <summary>Classifies a tensor by its GGUF name (<c>blk.3.ffn_up_exps.weight</c>).</summary>
    public static TensorRole RoleOf(string tensorName)
    {
        ArgumentNullException.ThrowIfNull(tensorName);
        string[] parts = tensorName.Split('.');
        string stem = parts.Length >= 3 && parts[0] == "blk" ? parts[2] : parts[0];
        if (stem.EndsWith("_exps", StringComparison.Ordinal))
        {
            return TensorRole.RoutedExperts;
        }

        if (stem.EndsWith("_shexp", StringComparison.Ordinal) || stem == "ffn_gate_inp_shexp")
        {
            return TensorRole.SharedExpert;
        }

        return stem is "ffn_gate_inp" or "exp_probs_b" ? TensorRole.Router : TensorRole.Other;
    }

    /// <summary>The block index of <c>blk.N.*</c>, or null for other tensors.</summary>
    private static long? BlockIndex(string tensorName)
    {
        string[] parts = tensorName.Split('.', 3);
        return parts.Length >= 2 && parts[0] == "blk" && long.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long block) ? block : null;
    }

    private static MoeConfiguration? ReadMoe(GgufFile file, KeyReader keys, Func<string, bool> inNextNBlock)
    {
        long? expertCount = keys.Count("expert_count");
        if (expertCount is null or 0)
        {
            return null;
        }

        int routers = file.Tensors.Count(t => t.Name.StartsWith("blk.", StringComparison.Ordinal) && t.Name.EndsWith(".ffn_gate_inp.weight", StringComparison.Ordinal) && !inNextNBlock(t.Name));
        return new MoeConfiguration(
            expertCount.Value,
            keys.Count("expert_used_count"),
            keys.Count("expert_shared_count"),
            keys.Count("expert_feed_forward_length"),
            keys.Count("expert_shared_feed_forward_length"),
            keys.Count("expert_gating_func"),
            keys.Number("expert_weights_scale"),
            keys.Bool("expert_weights_norm"),
            keys.Count("leading_dense_block_count"),
            keys.Count("expert_group_count"),
            keys.Count("expert_group_used_count"),
            routers);
    }

    private static long RoutedShare(long elements, long used, long count) =>
        elements % count == 0
            ? elements / count * used
            : (long)Math.Round((double)elements * used / count);

    /// <summary>Sum over blocks of positions × KV heads × (key + value head size) × 4 bytes.</summary>
    private static long? KvCache(GgufFile file, long? context, long[]? kvHeadsPerLayer, long? keyLength, long? valueLength)
    {
        if (context is null || kvHeadsPerLayer is null || keyLength is null || valueLength is null)
        {
            return null;
        }

        try
        {
            long perPosition = 0;
            foreach (long kvHeads in kvHeadsPerLayer)
            {
                perPosition = checked(perPosition + (kvHeads * (keyLength.Value + valueLength.Value)));
            }

            return checked(perPosition * context.Value * sizeof(float));
        }
        catch (OverflowException)
        {
            throw new ExpertScopeException($"{file.FilePath}: the KV cache size implied by the metadata overflows 64 bits.");
        }
    }

    private static long Add(GgufFile file, long sum, long value, string what)
    {
        try
        {
            return checked(sum + value);
        }
        catch (OverflowException)
        {
            throw new ExpertScopeException($"{file.FilePath}: the {what} overflows 64 bits.");
        }
    }

    /// <summary>Reads <c>{arch}.{key}</c> values with the checks a summary needs.</summary>
    private readonly struct KeyReader(GgufFile file, string arch)
    {
        private const long MaxCount = 1L << 40;

        public long? Count(string key)
        {
            string full = $"{arch}.{key}";
            long? value = file.TryGetInteger(full);
            return value is null ? null : CheckCount(full, value.Value);
        }

        public double? Number(string key) => file.TryGetNumber($"{arch}.{key}");

        public bool? Bool(string key) => file.TryGetBool($"{arch}.{key}");

        /// <summary>A value that may be given once or per block (an integer array), as per-block values.</summary>
        public long[]? PerLayer(string key, long? blockCount)
        {
            string full = $"{arch}.{key}";
            var value = file.TryGet(full);
            if (value is null)
            {
                return null;
            }

            if (value.AsArray is { } array)
            {
                if (array.ElementType is GgufValueType.String or GgufValueType.Array or GgufValueType.Float32 or GgufValueType.Float64)
                {
                    throw new ExpertScopeException($"{file.FilePath}: metadata '{full}' is an array of {array.ElementType}, expected integers.");
                }

                var result = new long[array.Count];
                for (int i = 0; i < result.Length; i++)
                {
                    object item = array.Items.GetValue(i)!;

                    // A uint64 beyond long's range is as implausible as any other huge size; let CheckCount say so.
                    long raw = item is ulong u ? (long)Math.Min(u, long.MaxValue) : new GgufValue(array.ElementType, item).ToInt64();
                    result[i] = CheckCount(full, raw);
                }

                return result;
            }

            long single = CheckCount(full, file.GetInteger(full));
            long layers = Math.Clamp(blockCount ?? 1, 0, 1 << 16);
            return Enumerable.Repeat(single, (int)layers).ToArray();
        }

        private long CheckCount(string key, long value) =>
            value is < 0 or > MaxCount
                ? throw new ExpertScopeException(string.Create(CultureInfo.InvariantCulture, $"{file.FilePath}: metadata '{key}' is {value}, which is not a plausible size."))
                : value;
    }
}
