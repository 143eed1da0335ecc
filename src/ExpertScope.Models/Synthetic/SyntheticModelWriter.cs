using System.Buffers;
using System.Runtime.InteropServices;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Kernels.Quant;
using ExpertScope.Models.Quantization;

namespace ExpertScope.Models.Synthetic;

/// <summary>
/// Writes a <see cref="SyntheticModelSpec"/> as a GGUF file with the metadata keys and tensor names llama.cpp's
/// converters write for that architecture, a byte-level BPE vocabulary learned from <see cref="BuiltInText"/>, and
/// seeded uniform random weights. Tensors are generated and encoded row by row, so a multi-gigabyte model never
/// sits in memory.
/// </summary>
public static class SyntheticModelWriter
{
    /// <summary>Merges learned for tiny models: 256 byte tokens + 250 merges + BOS + EOS = 508 tokens, like the golden models.</summary>
    public const int TinyMergeCount = 250;

    /// <summary>Writes the model to <paramref name="path"/> and returns the tensor count.</summary>
    /// <param name="spec">What to write.</param>
    /// <param name="path">Destination (overwritten).</param>
    /// <param name="progress">Called with (bytes written, total bytes) after every tensor.</param>
    public static int Write(SyntheticModelSpec spec, string path, Action<long, long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Validate(spec);
        var vocabulary = BuildVocabulary(spec.VocabularySize);
        var tensors = TensorPlan(spec, vocabulary.Tokens.Count);
        string temporary = path + ".partial";
        using (var writer = GgufWriter.Create(temporary))
        {
            WriteMetadata(writer, spec, vocabulary);
            long total = 0;
            foreach (var tensor in tensors)
            {
                total += writer.AddTensor(tensor.Name, tensor.Type, tensor.Dimensions);
            }

            long done = 0;
            foreach (var tensor in tensors)
            {
                writer.WriteTensorData(stream => WriteTensorRows(stream, spec.Seed, tensor));
                done += GgmlTypes.Get(tensor.Type).RowBytes(tensor.Dimensions[0]) * tensor.RowCount;
                progress?.Invoke(done, total);
            }

            writer.Finish();
        }

        File.Move(temporary, path, overwrite: true);
        return tensors.Count;
    }

    /// <summary>Name, ggml dimensions and type of every tensor <see cref="Write"/> writes for <paramref name="spec"/>, without writing.</summary>
    public static IReadOnlyList<TensorTypeRules.TensorShape> TensorShapes(SyntheticModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Validate(spec);
        return [.. TensorPlan(spec, BuildVocabulary(spec.VocabularySize).Tokens.Count).Select(t => new TensorTypeRules.TensorShape(t.Name, t.Dimensions, t.Type))];
    }

    /// <summary>The vocabulary a spec gets: learned merges, padded with unused tokens when a larger size is asked for.</summary>
    public static ByteLevelBpeVocabulary BuildVocabulary(int requestedSize)
    {
        var learned = ByteLevelBpeVocabulary.Learn(BuiltInText.Corpus, TinyMergeCount);
        if (requestedSize == 0 || requestedSize == learned.Tokens.Count)
        {
            return learned;
        }

        if (requestedSize < learned.Tokens.Count)
        {
            throw new ExpertScopeException($"vocabulary size {requestedSize} is smaller than the {learned.Tokens.Count} tokens the built-in vocabulary needs");
        }

        var tokens = learned.Tokens.ToList();
        for (int i = tokens.Count; i < requestedSize; i++)
        {
            tokens.Add($"<unused_{i}>");
        }

        return learned with { Tokens = tokens };
    }

    internal static void Validate(SyntheticModelSpec spec)
    {
        string[] supported = ["llama", "qwen2moe", "qwen3moe", "olmoe", "deepseek2", "deepseek", "ernie4_5-moe", "glm4moe", "granitemoe", "phimoe", "gpt-oss", "llama4"];
        if (!supported.Contains(spec.Architecture))
        {
            throw new ExpertScopeException($"cannot write a synthetic '{spec.Architecture}' model; supported: {string.Join(", ", supported)}");
        }

        if (spec.ExpertUsedCount < 1 || spec.ExpertUsedCount > spec.ExpertCount)
        {
            throw new ExpertScopeException($"experts per token ({spec.ExpertUsedCount}) must be between 1 and the expert count ({spec.ExpertCount})");
        }

        if (spec.Architecture == "llama4" && spec.MoeLayerStep < 1)
        {
            throw new ExpertScopeException($"a llama4 model needs a MoE layer step of at least 1 (got {spec.MoeLayerStep})");
        }

        if (spec.HeadCount % Math.Max(1, spec.KeyValueHeadCount) != 0)
        {
            throw new ExpertScopeException($"head count {spec.HeadCount} is not a multiple of the key/value head count {spec.KeyValueHeadCount}");
        }

        if (spec.Architecture == "deepseek" && spec.HeadCount * spec.HeadDimension != spec.EmbeddingLength)
        {
            // llama.cpp's deepseek loader shapes attn_q and attn_output as [E, E].
            throw new ExpertScopeException($"deepseek needs heads × head dimension ({spec.HeadCount} × {spec.HeadDimension}) equal to the embedding length {spec.EmbeddingLength}");
        }
    }

    internal static void WriteMetadata(GgufWriter writer, SyntheticModelSpec spec, ByteLevelBpeVocabulary vocabulary)
    {
        string a = spec.Architecture;
        void U32(string key, int value) => writer.SetMetadata(key, new GgufValue(GgufValueType.UInt32, checked((uint)value)));
        void F32(string key, float value) => writer.SetMetadata(key, new GgufValue(GgufValueType.Float32, value));
        void Str(string key, string value) => writer.SetMetadata(key, new GgufValue(GgufValueType.String, value));
        void Bool(string key, bool value) => writer.SetMetadata(key, new GgufValue(GgufValueType.Bool, value));

        Str("general.architecture", a);
        Str("general.name", spec.Name);
        U32("general.alignment", GgufFile.DefaultAlignment);
        U32($"{a}.vocab_size", vocabulary.Tokens.Count);
        U32($"{a}.context_length", spec.ContextLength);
        U32($"{a}.embedding_length", spec.EmbeddingLength);
        U32($"{a}.block_count", spec.BlockCount);
        U32($"{a}.feed_forward_length", spec.FeedForwardLength);
        U32($"{a}.attention.head_count", spec.HeadCount);
        U32($"{a}.attention.head_count_kv", spec.KeyValueHeadCount);
        F32($"{a}.attention.layer_norm_rms_epsilon", 1e-6f);
        F32($"{a}.rope.freq_base", 10000f);
        U32($"{a}.expert_count", spec.ExpertCount);
        U32($"{a}.expert_used_count", spec.ExpertUsedCount);
        if (a is "qwen2moe" or "qwen3moe" or "deepseek2" or "deepseek" or "ernie4_5-moe" or "gpt-oss" or "llama4")
        {
            U32($"{a}.expert_feed_forward_length", spec.ExpertFeedForwardLength);
        }

        if (a == "gpt-oss")
        {
            U32($"{a}.attention.sliding_window", spec.SlidingWindow);
            if (spec.YarnFactor > 0)
            {
                Str($"{a}.rope.scaling.type", "yarn");
                F32($"{a}.rope.scaling.factor", spec.YarnFactor);
                U32($"{a}.rope.scaling.original_context_length", spec.ContextLength);
            }
        }

        if (a == "llama4")
        {
            U32($"{a}.interleave_moe_layer_step", spec.MoeLayerStep);
        }

        if (a is "llama" or "olmoe" or "qwen3moe" or "deepseek" or "ernie4_5-moe" or "glm4moe" or "granitemoe" or "gpt-oss" or "llama4")
        {
            U32($"{a}.attention.key_length", spec.HeadDimension);
            U32($"{a}.attention.value_length", spec.HeadDimension);
        }

        if (a == "qwen2moe")
        {
            U32($"{a}.expert_shared_feed_forward_length", spec.SharedExpertFeedForwardLength);
        }

        if (a == "deepseek2")
        {
            U32($"{a}.leading_dense_block_count", spec.LeadingDenseBlockCount);
            U32($"{a}.attention.q_lora_rank", spec.QueryLoraRank);
            U32($"{a}.attention.kv_lora_rank", spec.KeyValueLoraRank);
            U32($"{a}.attention.key_length", spec.KeyValueLoraRank + spec.QueryKeyRopeLength);
            U32($"{a}.attention.value_length", spec.KeyValueLoraRank);
            U32($"{a}.attention.key_length_mla", spec.QueryKeyNopeLength + spec.QueryKeyRopeLength);
            U32($"{a}.attention.value_length_mla", spec.ValueHeadLength);
            U32($"{a}.rope.dimension_count", spec.QueryKeyRopeLength);
            U32($"{a}.expert_shared_count", spec.SharedExpertCount);
            F32($"{a}.expert_weights_scale", spec.ExpertWeightsScale);
            Bool($"{a}.expert_weights_norm", spec.ExpertWeightsNormalized);
            U32($"{a}.expert_gating_func", spec.GatingFunction);
            if (spec.ExpertGroupCount > 0)
            {
                U32($"{a}.expert_group_count", spec.ExpertGroupCount);
                U32($"{a}.expert_group_used_count", spec.ExpertGroupUsedCount);
            }
        }

        if (a == "deepseek")
        {
            // llama.cpp's deepseek graph fixes softmax gating without renormalisation, so no keys for those.
            U32($"{a}.leading_dense_block_count", spec.LeadingDenseBlockCount);
            U32($"{a}.expert_shared_count", spec.SharedExpertCount);
            F32($"{a}.expert_weights_scale", spec.ExpertWeightsScale);
        }

        if (a == "ernie4_5-moe")
        {
            // Every block after the leading dense ones is MoE (interleave step 1), as in the released ERNIE-4.5 files.
            U32($"{a}.leading_dense_block_count", spec.LeadingDenseBlockCount);
            U32($"{a}.interleave_moe_layer_step", 1);
            U32($"{a}.expert_shared_feed_forward_length", spec.SharedExpertFeedForwardLength);
        }

        if (a == "glm4moe")
        {
            WriteGlmMetadata(writer, spec);
        }

        if (a == "granitemoe")
        {
            WriteGraniteMetadata(writer, spec);
        }

        if (a == "phimoe")
        {
            if (spec.RopeOriginalContextLength > 0)
            {
                U32($"{a}.rope.scaling.original_context_length", spec.RopeOriginalContextLength);
            }

            // Phi-3.5-MoE's LongRoPE magnitude: sqrt(1 + ln(131072 / 4096) / ln(4096)), as its converter writes it.
            F32($"{a}.rope.scaling.attn_factor", 1.1902381f);
        }

        Str("tokenizer.ggml.model", "gpt2");
        Str("tokenizer.ggml.pre", "default");
        writer.SetMetadata("tokenizer.ggml.tokens", new GgufValue(GgufValueType.Array, new GgufArray(GgufValueType.String, vocabulary.Tokens.ToArray())));
        var types = vocabulary.TokenTypes();
        for (int i = vocabulary.EosId + 1; i < types.Length; i++)
        {
            types[i] = 5; // unused padding tokens
        }

        writer.SetMetadata("tokenizer.ggml.token_type", new GgufValue(GgufValueType.Array, new GgufArray(GgufValueType.Int32, types)));
        writer.SetMetadata("tokenizer.ggml.merges", new GgufValue(GgufValueType.Array, new GgufArray(GgufValueType.String, vocabulary.Merges.ToArray())));
        U32("tokenizer.ggml.bos_token_id", vocabulary.BosId);
        U32("tokenizer.ggml.eos_token_id", vocabulary.EosId);
        Bool("tokenizer.ggml.add_bos_token", true);
        Bool("tokenizer.ggml.add_eos_token", false);
    }

    private static void WriteGlmMetadata(GgufWriter writer, SyntheticModelSpec spec)
    {
        const string a = "glm4moe";
        void U32(string key, int value) => writer.SetMetadata($"{a}.{key}", new GgufValue(GgufValueType.UInt32, checked((uint)value)));
        U32("expert_feed_forward_length", spec.ExpertFeedForwardLength);
        U32("leading_dense_block_count", spec.LeadingDenseBlockCount);
        U32("expert_shared_count", spec.SharedExpertCount);
        U32("expert_gating_func", spec.GatingFunction);
        U32("nextn_predict_layers", spec.NextNBlockCount);
        writer.SetMetadata($"{a}.expert_weights_scale", new GgufValue(GgufValueType.Float32, spec.ExpertWeightsScale));
        writer.SetMetadata($"{a}.expert_weights_norm", new GgufValue(GgufValueType.Bool, spec.ExpertWeightsNormalized));
        if (spec.RopeDimensionCount > 0)
        {
            U32("rope.dimension_count", spec.RopeDimensionCount);
        }

        if (spec.ExpertGroupCount > 0)
        {
            U32("expert_group_count", spec.ExpertGroupCount);
            U32("expert_group_used_count", spec.ExpertGroupUsedCount);
        }
    }

    private static void WriteGraniteMetadata(GgufWriter writer, SyntheticModelSpec spec)
    {
        const string a = "granitemoe";
        void F32(string key, float value) => writer.SetMetadata($"{a}.{key}", new GgufValue(GgufValueType.Float32, value));
        F32("logit_scale", spec.LogitScale);
        foreach (var (key, value) in new[] { ("embedding_scale", spec.EmbeddingScale), ("attention.scale", spec.AttentionScale), ("residual_scale", spec.ResidualScale) })
        {
            if (value != 0f)
            {
                F32(key, value);
            }
        }

        if (spec.SharedExpertFeedForwardLength > 0)
        {
            writer.SetMetadata($"{a}.expert_shared_feed_forward_length", new GgufValue(GgufValueType.UInt32, checked((uint)spec.SharedExpertFeedForwardLength)));
        }
    }

    /// <summary>One tensor to generate: name, type, ggml <c>ne</c>, and the uniform range of its values.</summary>
    internal sealed record PlannedTensor(string Name, GgmlType Type, long[] Dimensions, float Center, float HalfWidth)
    {
        public long RowCount => Dimensions.Skip(1).Aggregate(1L, (product, d) => product * d);
    }

    internal static List<PlannedTensor> TensorPlan(SyntheticModelSpec spec, int vocabularySize)
    {
        int e = spec.EmbeddingLength;
        var plan = new List<PlannedTensor>();
        var dense = spec.DenseTensorType;
        var experts = spec.ExpertTensorType;

        // Uniform(-a, a) with a = sqrt(3 / fanIn) keeps each output's variance near its input's.
        PlannedTensor Matrix(string name, GgmlType type, long fanIn, params long[] rest) =>
            new(name, type, [fanIn, .. rest], 0f, MathF.Sqrt(3f / fanIn));
        PlannedTensor Norm(string name, long length) => new(name, GgmlType.F32, [length], 1f, 0.1f);

        bool biased = spec.Architecture == "phimoe";
        PlannedTensor Bias(string name, float halfWidth, params long[] dimensions) => new(name, GgmlType.F32, dimensions, 0f, halfWidth);
        void AddNorm(string name)
        {
            plan.Add(Norm(name + ".weight", e));
            if (biased)
            {
                plan.Add(Bias(name + ".bias", 0.1f, e));
            }
        }

        plan.Add(Matrix("token_embd.weight", dense, e, vocabularySize) with { HalfWidth = 1f });
        AddNorm("output_norm");
        plan.Add(Matrix("output.weight", dense, e, vocabularySize));
        if (biased)
        {
            plan.Add(Bias("output.bias", 0.1f, vocabularySize) with { HalfWidth = 0.5f });

            // LongRoPE divisors per rotated pair: short ones near 1, long ones up to 7 (Phi-3.5's reach about 60).
            plan.Add(new PlannedTensor("rope_factors_short.weight", GgmlType.F32, [spec.HeadDimension / 2], 1.1f, 0.1f));
            plan.Add(new PlannedTensor("rope_factors_long.weight", GgmlType.F32, [spec.HeadDimension / 2], 4f, 3f));
        }

        if (spec.HasRopeFrequencyFactors)
        {
            plan.Add(new PlannedTensor("rope_freqs.weight", GgmlType.F32, [spec.HeadDimension / 2], 2f, 1f));
        }

        for (int block = 0; block < spec.BlockCount; block++)
        {
            string p = $"blk.{block}.";
            AddNorm(p + "attn_norm");
            if (spec.Architecture == "deepseek2")
            {
                int headLength = spec.QueryKeyNopeLength + spec.QueryKeyRopeLength;
                if (spec.QueryLoraRank > 0)
                {
                    plan.Add(Matrix(p + "attn_q_a.weight", dense, e, spec.QueryLoraRank));
                    plan.Add(Norm(p + "attn_q_a_norm.weight", spec.QueryLoraRank));
                    plan.Add(Matrix(p + "attn_q_b.weight", dense, spec.QueryLoraRank, spec.HeadCount * headLength));
                }
                else
                {
                    plan.Add(Matrix(p + "attn_q.weight", dense, e, spec.HeadCount * headLength));
                }

                plan.Add(Matrix(p + "attn_kv_a_mqa.weight", dense, e, spec.KeyValueLoraRank + spec.QueryKeyRopeLength));
                plan.Add(Norm(p + "attn_kv_a_norm.weight", spec.KeyValueLoraRank));
                plan.Add(Matrix(p + "attn_k_b.weight", GgmlType.F32, spec.QueryKeyNopeLength, spec.KeyValueLoraRank, spec.HeadCount));
                plan.Add(Matrix(p + "attn_v_b.weight", GgmlType.F32, spec.KeyValueLoraRank, spec.ValueHeadLength, spec.HeadCount));
                plan.Add(Matrix(p + "attn_output.weight", dense, spec.HeadCount * spec.ValueHeadLength, e));
            }
            else
            {
                int q = spec.HeadCount * spec.HeadDimension;
                int kv = spec.KeyValueHeadCount * spec.HeadDimension;
                plan.Add(Matrix(p + "attn_q.weight", dense, e, q));
                plan.Add(Matrix(p + "attn_k.weight", dense, e, kv));
                plan.Add(Matrix(p + "attn_v.weight", dense, e, kv));
                plan.Add(Matrix(p + "attn_output.weight", dense, q, e));
                if (biased)
                {
                    plan.Add(Bias(p + "attn_q.bias", 0.1f, q));
                    plan.Add(Bias(p + "attn_k.bias", 0.1f, kv));
                    plan.Add(Bias(p + "attn_v.bias", 0.1f, kv));
                    plan.Add(Bias(p + "attn_output.bias", 0.1f, e));
                }

                if (spec.Architecture == "glm4moe")
                {
                    // GLM-4.5 converts q/k/v with biases and (the 355B model) per-head QK norms.
                    plan.Add(Bias(p + "attn_q.bias", 0.1f, q));
                    plan.Add(Bias(p + "attn_k.bias", 0.1f, kv));
                    plan.Add(Bias(p + "attn_v.bias", 0.1f, kv));
                    plan.Add(Norm(p + "attn_q_norm.weight", spec.HeadDimension));
                    plan.Add(Norm(p + "attn_k_norm.weight", spec.HeadDimension));
                }
                else if (spec.Architecture == "olmoe")
                {
                    plan.Add(Norm(p + "attn_q_norm.weight", q));
                    plan.Add(Norm(p + "attn_k_norm.weight", kv));
                }
                else if (spec.Architecture == "qwen3moe")
                {
                    plan.Add(Norm(p + "attn_q_norm.weight", spec.HeadDimension));
                    plan.Add(Norm(p + "attn_k_norm.weight", spec.HeadDimension));
                }
                else if (spec.Architecture == "gpt-oss")
                {
                    plan.Add(Bias(p + "attn_q.bias", 0.2f, q));
                    plan.Add(Bias(p + "attn_k.bias", 0.2f, kv));
                    plan.Add(Bias(p + "attn_v.bias", 0.2f, kv));
                    plan.Add(Bias(p + "attn_output.bias", 0.2f, e));

                    // Sinks from -1 to 2: some heads give the sink more weight than their keys, some less.
                    plan.Add(new PlannedTensor(p + "attn_sinks.weight", GgmlType.F32, [spec.HeadCount], 0.5f, 1.5f));
                }
            }

            // GLM and gpt-oss store the norm before the feed-forward part as post_attention_norm.
            if (spec.Architecture is "glm4moe" or "gpt-oss")
            {
                plan.Add(Norm(p + "post_attention_norm.weight", e));
            }
            else
            {
                AddNorm(p + "ffn_norm");
            }

            if (spec.Architecture == "glm4moe" && block >= spec.BlockCount - spec.NextNBlockCount)
            {
                // A NextN block: llama.cpp loads (and never runs) these beside the block's ordinary tensors.
                plan.Add(Matrix(p + "nextn.eh_proj.weight", dense, 2 * e, e));
                plan.Add(Norm(p + "nextn.enorm.weight", e));
                plan.Add(Norm(p + "nextn.hnorm.weight", e));
                plan.Add(Norm(p + "nextn.shared_head_norm.weight", e));
            }

            if (!spec.IsMoeBlock(block))
            {
                plan.Add(Matrix(p + "ffn_gate.weight", dense, e, spec.FeedForwardLength));
                plan.Add(Matrix(p + "ffn_up.weight", dense, e, spec.FeedForwardLength));
                plan.Add(Matrix(p + "ffn_down.weight", dense, spec.FeedForwardLength, e));
                continue;
            }

            int ff = spec.ExpertFeedForwardLength;
            // A wider router range makes the random routing decisive rather than near-uniform.
            plan.Add(Matrix(p + "ffn_gate_inp.weight", GgmlType.F32, e, spec.ExpertCount) with { HalfWidth = spec.RouterLogitScale * MathF.Sqrt(3f / e) });
            if (spec.HasSelectionBias)
            {
                plan.Add(new PlannedTensor(p + "exp_probs_b.bias", GgmlType.F32, [spec.ExpertCount], 0f, 0.05f));
            }

            if (spec.Architecture == "gpt-oss")
            {
                // Gate and up four times wider than unit variance, so the clamped SwiGLU's limit of 7 is reached.
                float wide = 4f * MathF.Sqrt(3f / e);
                plan.Add(Bias(p + "ffn_gate_inp.bias", 0.2f, spec.ExpertCount) with { HalfWidth = 0.5f });
                plan.Add(Matrix(p + "ffn_gate_exps.weight", experts, e, ff, spec.ExpertCount) with { HalfWidth = wide });
                plan.Add(Matrix(p + "ffn_up_exps.weight", experts, e, ff, spec.ExpertCount) with { HalfWidth = wide });
                plan.Add(Matrix(p + "ffn_down_exps.weight", experts, ff, e, spec.ExpertCount));
                plan.Add(Bias(p + "ffn_gate_exps.bias", 0.2f, ff, spec.ExpertCount));
                plan.Add(Bias(p + "ffn_up_exps.bias", 0.2f, ff, spec.ExpertCount));
                plan.Add(Bias(p + "ffn_down_exps.bias", 0.2f, e, spec.ExpertCount));
                continue;
            }

            plan.Add(Matrix(p + "ffn_gate_exps.weight", experts, e, ff, spec.ExpertCount));
            plan.Add(Matrix(p + "ffn_up_exps.weight", experts, e, ff, spec.ExpertCount));
            plan.Add(Matrix(p + "ffn_down_exps.weight", experts, ff, e, spec.ExpertCount));
            if (spec.Architecture == "qwen2moe")
            {
                int shared = spec.SharedExpertFeedForwardLength;
                plan.Add(Matrix(p + "ffn_gate_inp_shexp.weight", GgmlType.F32, e));
                plan.Add(Matrix(p + "ffn_gate_shexp.weight", dense, e, shared));
                plan.Add(Matrix(p + "ffn_up_shexp.weight", dense, e, shared));
                plan.Add(Matrix(p + "ffn_down_shexp.weight", dense, shared, e));
            }
            else if (spec.Architecture == "llama4")
            {
                // One ungated shared expert as wide as a routed one.
                plan.Add(Matrix(p + "ffn_gate_shexp.weight", dense, e, ff));
                plan.Add(Matrix(p + "ffn_up_shexp.weight", dense, e, ff));
                plan.Add(Matrix(p + "ffn_down_shexp.weight", dense, ff, e));
            }
            else if (spec.Architecture is "granitemoe" or "ernie4_5-moe" && spec.SharedExpertFeedForwardLength > 0)
            {
                int shared = spec.SharedExpertFeedForwardLength;
                plan.Add(Matrix(p + "ffn_gate_shexp.weight", dense, e, shared));
                plan.Add(Matrix(p + "ffn_up_shexp.weight", dense, e, shared));
                plan.Add(Matrix(p + "ffn_down_shexp.weight", dense, shared, e));
            }
            else if (spec.Architecture is "deepseek2" or "deepseek" or "glm4moe" && spec.SharedExpertCount > 0)
            {
                int shared = spec.SharedExpertCount * ff;
                plan.Add(Matrix(p + "ffn_gate_shexp.weight", dense, e, shared));
                plan.Add(Matrix(p + "ffn_up_shexp.weight", dense, e, shared));
                plan.Add(Matrix(p + "ffn_down_shexp.weight", dense, shared, e));
            }
        }

        return plan;
    }

    private static void WriteTensorRows(Stream destination, ulong seed, PlannedTensor tensor)
    {
        int rowLength = checked((int)tensor.Dimensions[0]);
        var info = GgmlTypes.Get(tensor.Type);
        int rowBytes = checked((int)info.RowBytes(rowLength));
        var random = new SplitMix64(seed ^ Fnv1a(tensor.Name));
        float[] row = ArrayPool<float>.Shared.Rent(rowLength);
        byte[] encoded = ArrayPool<byte>.Shared.Rent(rowBytes);
        try
        {
            for (long r = 0; r < tensor.RowCount; r++)
            {
                for (int i = 0; i < rowLength; i++)
                {
                    row[i] = tensor.Center + tensor.HalfWidth * (2f * random.NextFloat() - 1f);
                }

                RowEncoding.Encode(tensor.Type, row.AsSpan(0, rowLength), encoded.AsSpan(0, rowBytes));
                destination.Write(encoded, 0, rowBytes);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(row);
            ArrayPool<byte>.Shared.Return(encoded);
        }
    }

    internal static ulong Fnv1a(string text)
    {
        ulong hash = 14695981039346656037UL;
        foreach (char c in text)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        return hash;
    }

    /// <summary>Steele, Lea and Flood's SplitMix64: fast, seedable, and the same on every platform.</summary>
    internal struct SplitMix64(ulong state)
    {
        private const ulong Gamma = 0x9E3779B97F4A7C15UL;
        private ulong _state = state;

        /// <summary>The generator <paramref name="count"/> draws ahead (the state advances by a constant per draw), so rows can be generated in parallel.</summary>
        public readonly SplitMix64 Skip(long count) => new(_state + unchecked((ulong)count * Gamma));

        public float NextFloat()
        {
            ulong z = _state += Gamma;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            return (z >> 40) * (1f / (1 << 24)); // 24 random bits -> [0, 1)
        }
    }
}

/// <summary>Encodes float rows into a tensor type's storage with the Kernels quantizers (bit-exact with ggml's).</summary>
internal static class RowEncoding
{
    public static void Encode(GgmlType type, ReadOnlySpan<float> row, Span<byte> destination)
    {
        if (type == GgmlType.F32)
        {
            MemoryMarshal.AsBytes(row).CopyTo(destination);
            return;
        }

        if (!Quantize.IsSupported(type))
        {
            throw new ExpertScopeException($"synthetic models cannot be written with {GgmlTypes.Get(type).Name} tensors: no quantizer for that type");
        }

        Quantize.Row(type, row, destination);
    }
}
