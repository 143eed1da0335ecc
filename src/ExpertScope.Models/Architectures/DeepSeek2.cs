using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models.Blocks;

namespace ExpertScope.Models.Architectures;

/// <summary>How DeepSeek's router turns logits into probabilities (<c>deepseek2.expert_gating_func</c>).</summary>
public enum DeepSeekGating
{
    /// <summary>Softmax over all experts (1; V2, V2-Lite, and files without the key).</summary>
    Softmax = 1,

    /// <summary>Independent sigmoid per expert (2; V3, R1).</summary>
    Sigmoid = 2,
}

/// <summary>
/// The <c>deepseek2</c> architecture's hyperparameters, read from GGUF. One record covers the V2/V2-Lite style
/// (softmax routing, no selection bias) and the V3/R1 style (sigmoid routing, <c>exp_probs_b</c>, group-limited
/// selection, normalized and scaled weights); which one a file is follows from its keys alone.
/// </summary>
/// <param name="EmbeddingLength">Residual width (<c>embedding_length</c>).</param>
/// <param name="BlockCount">Blocks (<c>block_count</c>), dense leading blocks included.</param>
/// <param name="VocabularySize">Rows of <c>token_embd</c> (<c>vocab_size</c>, else the tokenizer's list).</param>
/// <param name="ContextLength">Training context (<c>context_length</c>).</param>
/// <param name="DenseFeedForwardLength">FFN width of the dense leading blocks (<c>feed_forward_length</c>).</param>
/// <param name="LeadingDenseBlockCount">Blocks before the first MoE block (<c>leading_dense_block_count</c>).</param>
/// <param name="ExpertCount">Routed experts per MoE block (<c>expert_count</c>).</param>
/// <param name="ExpertUsedCount">Experts chosen per token (<c>expert_used_count</c>).</param>
/// <param name="ExpertFeedForwardLength">FFN width of one expert (<c>expert_feed_forward_length</c>).</param>
/// <param name="SharedExpertCount">Always-on shared experts, stored fused as one FFN of width count · expert width
/// (<c>expert_shared_count</c>); DeepSeek has no gate on them (unlike Qwen2-MoE).</param>
/// <param name="ExpertWeightsScale">Multiplier of the mixing weights (<c>expert_weights_scale</c>, V3: 2.5).</param>
/// <param name="NormalizeExpertWeights">Divide the chosen weights by their sum (<c>expert_weights_norm</c>).</param>
/// <param name="Gating">Gating function (<c>expert_gating_func</c>).</param>
/// <param name="ExpertGroupCount">Expert groups for group-limited routing (<c>expert_group_count</c>; ≤ 1 = off).</param>
/// <param name="ExpertGroupUsedCount">Groups kept per token (<c>expert_group_used_count</c>).</param>
/// <param name="Attention">MLA sizes.</param>
/// <param name="Rope">Rotation of the decoupled rope slices, YaRN included.</param>
/// <param name="AttentionScale">Multiplier of q·k (llama.cpp's <c>kq_scale</c>).</param>
/// <param name="RmsEpsilon">RMS-norm ε (<c>attention.layer_norm_rms_epsilon</c>).</param>
/// <param name="UsesFusedKeyValue">True for legacy files without <c>key_length_mla</c>: a fused <c>attn_kv_b</c>.</param>
public sealed record DeepSeek2Config(
    int EmbeddingLength,
    int BlockCount,
    int VocabularySize,
    int ContextLength,
    int DenseFeedForwardLength,
    int LeadingDenseBlockCount,
    int ExpertCount,
    int ExpertUsedCount,
    int ExpertFeedForwardLength,
    int SharedExpertCount,
    float ExpertWeightsScale,
    bool NormalizeExpertWeights,
    DeepSeekGating Gating,
    int ExpertGroupCount,
    int ExpertGroupUsedCount,
    MlaShape Attention,
    RotaryEmbedding Rope,
    float AttentionScale,
    float RmsEpsilon,
    bool UsesFusedKeyValue)
{
    /// <summary>The GGUF <c>general.architecture</c> value.</summary>
    public const string ArchitectureName = "deepseek2";

    private const string Prefix = ArchitectureName + ".";

    /// <summary>True for blocks whose feed-forward part is MoE (the rest are dense leading blocks).</summary>
    public bool IsMoeBlock(int block) => block >= LeadingDenseBlockCount;

    /// <summary>Reads the configuration from <paramref name="file"/>'s <c>deepseek2.*</c> keys.</summary>
    /// <exception cref="ExpertScopeException">A required key is missing or the values contradict each other.</exception>
    public static DeepSeek2Config FromGguf(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        int Required(string key) => checked((int)file.GetInteger(Prefix + key));
        int Optional(string key, int fallback) => (int?)file.TryGetInteger(Prefix + key) ?? fallback;
        float Number(string key, float fallback) => (float?)file.TryGetNumber(Prefix + key) ?? fallback;

        var embedding = Required("embedding_length");
        var heads = Required("attention.head_count");
        var vocabulary = Optional("vocab_size", file.TryGetArray<string>("tokenizer.ggml.tokens")?.Length ?? 0);
        var ropeLength = Required("rope.dimension_count");
        var kvLora = Required("attention.kv_lora_rank");
        // llama.cpp reads q_lora_rank except for the 27/26-block "lite" layouts, which never compress the query.
        var qLora = Optional("attention.q_lora_rank", 0);

        // Current converters write key/value_length for the absorbed latent (kv_lora + rope, kv_lora) and the
        // per-head sizes as *_mla; legacy files have only the per-head sizes and a fused attn_kv_b.
        var keyMla = file.TryGetInteger(Prefix + "attention.key_length_mla");
        var valueMla = file.TryGetInteger(Prefix + "attention.value_length_mla");
        var fused = keyMla is null || valueMla is null || keyMla == 0 || valueMla == 0;
        var keyLength = fused ? Optional("attention.key_length", embedding / heads) : (int)keyMla!.Value;
        var valueLength = fused ? Optional("attention.value_length", embedding / heads) : (int)valueMla!.Value;
        if (keyLength <= ropeLength)
        {
            throw new ExpertScopeException($"{file.FilePath}: key length {keyLength} must exceed the rope width {ropeLength}.");
        }

        var shape = new MlaShape(embedding, heads, qLora, kvLora, keyLength - ropeLength, ropeLength, valueLength);

        var gatingCode = Optional("expert_gating_func", 0);
        var gating = gatingCode switch
        {
            0 or 1 => DeepSeekGating.Softmax, // 0 = unset: existing V2/V2.5 files
            2 => DeepSeekGating.Sigmoid,
            _ => throw new ExpertScopeException(
                $"{file.FilePath}: {Prefix}expert_gating_func = {gatingCode} is not supported (1 = softmax, 2 = sigmoid)."),
        };

        var context = Optional("context_length", 0);
        var (rope, attentionScale) = RopeFromGguf(file, ropeLength, shape.KeyLength, context);
        var experts = Optional("expert_count", 0);
        var groups = Optional("expert_group_count", 0);
        var groupsUsed = Optional("expert_group_used_count", 0);
        if (groups > 1 && (experts % groups != 0 || groupsUsed <= 0 || groupsUsed > groups))
        {
            throw new ExpertScopeException(
                $"{file.FilePath}: {experts} experts cannot be split into {groups} groups keeping {groupsUsed}.");
        }

        return new DeepSeek2Config(
            EmbeddingLength: embedding,
            BlockCount: Required("block_count"),
            VocabularySize: vocabulary,
            ContextLength: context,
            DenseFeedForwardLength: Optional("feed_forward_length", 0),
            LeadingDenseBlockCount: Optional("leading_dense_block_count", 0),
            ExpertCount: experts,
            ExpertUsedCount: Optional("expert_used_count", 0),
            ExpertFeedForwardLength: Optional("expert_feed_forward_length", 0),
            SharedExpertCount: Optional("expert_shared_count", 0),
            ExpertWeightsScale: Number("expert_weights_scale", 0f),
            NormalizeExpertWeights: file.TryGetBool(Prefix + "expert_weights_norm") ?? false,
            Gating: gating,
            ExpertGroupCount: groups,
            ExpertGroupUsedCount: groupsUsed,
            Attention: shape,
            Rope: rope,
            AttentionScale: attentionScale,
            RmsEpsilon: Number("attention.layer_norm_rms_epsilon", 1e-6f),
            UsesFusedKeyValue: fused);
    }

    /// <summary>
    /// The rope parameters and attention scale llama.cpp derives for <c>deepseek2</c> from the
    /// <c>rope.scaling.*</c> keys (see <see cref="DeepSeekRopeScaling"/>).
    /// </summary>
    private static (RotaryEmbedding Rope, float AttentionScale) RopeFromGguf(GgufFile file, int ropeLength, int keyLength, int context)
    {
        var type = file.TryGetString(Prefix + "rope.scaling.type") ?? "linear";
        var factor = (float?)file.TryGetNumber(Prefix + "rope.scaling.factor") ?? 0f;
        var scaling = new DeepSeekRopeScaling(
            Type: type.ToLowerInvariant() switch
            {
                "none" => RopeScalingType.None,
                "linear" => RopeScalingType.Linear,
                "yarn" => RopeScalingType.Yarn,
                _ => throw new ExpertScopeException($"{file.FilePath}: {Prefix}rope.scaling.type '{type}' is not supported (none, linear, yarn)."),
            },
            Factor: factor,
            OriginalContextLength: (int?)file.TryGetInteger(Prefix + "rope.scaling.original_context_length") ?? context,
            YarnLogMultiplier: (float?)file.TryGetNumber(Prefix + "rope.scaling.yarn_log_multiplier") ?? 0f,
            AttentionFactor: (float?)file.TryGetNumber(Prefix + "rope.scaling.attn_factor") ?? 1f);
        var frequencyBase = (float?)file.TryGetNumber(Prefix + "rope.freq_base") ?? 10000f;
        return scaling.Resolve(ropeLength, frequencyBase, keyLength);
    }
}

/// <summary>RoPE scaling kinds from <c>rope.scaling.type</c>.</summary>
public enum RopeScalingType
{
    /// <summary>No scaling; the factor is ignored.</summary>
    None,

    /// <summary>Positions divided by the factor (the default when the key is absent).</summary>
    Linear,

    /// <summary>YaRN: NTK-by-parts interpolation plus a magnitude (mscale) correction.</summary>
    Yarn,
}

/// <summary>
/// The RoPE-scaling inputs of a DeepSeek file and the arithmetic llama.cpp applies to them: YaRN's magnitude
/// factor is moved from the rotation into the attention scale, so the rotated q/k keep unit magnitude and
/// kq_scale = mscale² / sqrt(key_length_mla) with mscale = 1 + 0.1 · log_mul · ln(factor) (the DeepSeek paper's
/// <c>mscale_all_dim</c> rule; <c>yarn_log_multiplier</c> is stored as 0.1 · mscale_all_dim).
/// </summary>
/// <param name="Type">Scaling kind.</param>
/// <param name="Factor">Context extension factor s (<c>rope.scaling.factor</c>; 0 = none).</param>
/// <param name="OriginalContextLength">Context before extension (<c>rope.scaling.original_context_length</c>).</param>
/// <param name="YarnLogMultiplier">The stored <c>rope.scaling.yarn_log_multiplier</c> (0.1 · mscale_all_dim).</param>
/// <param name="AttentionFactor">Extra magnitude (<c>rope.scaling.attn_factor</c>, default 1).</param>
public sealed record DeepSeekRopeScaling(
    RopeScalingType Type,
    float Factor,
    int OriginalContextLength,
    float YarnLogMultiplier,
    float AttentionFactor)
{
    /// <summary>
    /// The rotation and the attention scale llama.cpp uses, step by step as in its context setup
    /// (<c>yarn_attn_factor</c>) and the <c>deepseek2</c> graph (<c>attn_factor_org</c>, <c>mscale</c>, <c>kq_scale</c>).
    /// </summary>
    public (RotaryEmbedding Rope, float AttentionScale) Resolve(int ropeLength, float frequencyBase, int keyLength)
    {
        var frequencyScale = Type == RopeScalingType.None || Factor == 0f ? 1f : 1f / Factor;
        var extrapolation = Type == RopeScalingType.Yarn ? 1f : 0f;
        // The converter stores 0.1 · mscale_all_dim; llama.cpp divides the 0.1 back out.
        var logMultiplier = YarnLogMultiplier / 0.1f;

        var attentionFactor = 1f;
        if (extrapolation != 0f)
        {
            var factor = 1f / frequencyScale;
            // With a log multiplier, llama.cpp takes mscale = mscale_all_dim for deepseek2 (V2 configs set both
            // equal; V3 has both 1), so get_mscale(s, mscale) / get_mscale(s, mscale_all_dim) is 1.
            attentionFactor = logMultiplier != 0f ? 1f : MagnitudeScale(factor, 1f);

            // ggml's rope multiplies by 1 + 0.1 ln(s) itself when YaRN is on; cancel it here.
            attentionFactor *= 1f / (1f + (0.1f * MathF.Log(factor)));
        }

        attentionFactor *= AttentionFactor;

        // The deepseek2 graph undoes that cancellation to get the original factor and folds the log-multiplier
        // correction into the attention scale instead of the rotation.
        var original = attentionFactor * (1f + (0.1f * MathF.Log(1f / frequencyScale)));
        var scale = original * (1f + (0.1f * logMultiplier * MathF.Log(1f / frequencyScale)));
        var attentionScale = scale * scale / MathF.Sqrt(keyLength);
        var rope = new RotaryEmbedding(
            Dimensions: ropeLength,
            FrequencyBase: frequencyBase,
            FrequencyScale: frequencyScale,
            ExtrapolationFactor: extrapolation,
            AttentionFactor: attentionFactor,
            OriginalContextLength: OriginalContextLength);
        return (rope, attentionScale);
    }

    /// <summary>YaRN's magnitude correction 0.1 · m · ln(s) + 1 (1 when s ≤ 1).</summary>
    public static float MagnitudeScale(float factor, float multiplier) =>
        factor <= 1f ? 1f : (0.1f * multiplier * MathF.Log(factor)) + 1f;

    /// <inheritdoc/>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Type} x{Factor} (orig {OriginalContextLength}, log mul {YarnLogMultiplier})");
}

/// <summary>
/// DeepSeek's router math for one token, stage by stage as llama.cpp's <c>build_moe_ffn</c> names them:
/// gating → selection scores (probs + <c>exp_probs_b</c>, used only to choose) → group-limited mask → top-k →
/// weights gathered from the unbiased probs → optional normalization → optional scale.
/// </summary>
internal static class DeepSeekRouting
{
    /// <summary>The smallest sum llama.cpp divides by when normalizing (the smallest normal F16).</summary>
    public const float MinimumWeightSum = 6.103515625e-5f;

    /// <summary>Softmax or sigmoid of <paramref name="logits"/> into <paramref name="probabilities"/>.</summary>
    public static void Gate(DeepSeekGating gating, ReadOnlySpan<float> logits, Span<float> probabilities)
    {
        if (gating == DeepSeekGating.Sigmoid)
        {
            for (var i = 0; i < logits.Length; i++)
            {
                probabilities[i] = 1f / (1f + MathF.Exp(-logits[i]));
            }

            return;
        }

        logits.CopyTo(probabilities);
        GgmlMath.Softmax(probabilities[..logits.Length]);
    }

    /// <summary>
    /// Keeps the <paramref name="groupsUsed"/> groups with the largest score (sum of each group's two best
    /// selection scores) and sets the others' scores to −∞ in place; writes the kept groups, best first.
    /// </summary>
    public static void MaskGroups(Span<float> scores, int groupCount, int groupsUsed, Span<int> keptGroups)
    {
        var perGroup = scores.Length / groupCount;
        Span<float> groupScores = stackalloc float[groupCount];
        for (var g = 0; g < groupCount; g++)
        {
            var group = scores.Slice(g * perGroup, perGroup);
            var first = float.NegativeInfinity;
            var second = float.NegativeInfinity;
            foreach (var v in group)
            {
                if (v > first)
                {
                    second = first;
                    first = v;
                }
                else if (v > second)
                {
                    second = v;
                }
            }

            groupScores[g] = perGroup == 1 ? first : first + second;
        }

        TopK(groupScores, keptGroups[..groupsUsed]);
        for (var g = 0; g < groupCount; g++)
        {
            if (!keptGroups[..groupsUsed].Contains(g))
            {
                scores.Slice(g * perGroup, perGroup).Fill(float.NegativeInfinity);
            }
        }
    }

    /// <summary>Indices of the <c>selected.Length</c> largest values, in descending order (ties: lower index first).</summary>
    public static void TopK(ReadOnlySpan<float> values, Span<int> selected)
    {
        for (var k = 0; k < selected.Length; k++)
        {
            var best = -1;
            for (var i = 0; i < values.Length; i++)
            {
                if (selected[..k].Contains(i))
                {
                    continue;
                }

                if (best < 0 || values[i] > values[best])
                {
                    best = i;
                }
            }

            selected[k] = best;
        }
    }

    /// <summary>Divides <paramref name="weights"/> by their sum (accumulated in double, clamped below).</summary>
    public static float Normalize(Span<float> weights)
    {
        double total = 0;
        foreach (var w in weights)
        {
            total += w;
        }

        var sum = MathF.Max((float)total, MinimumWeightSum);
        for (var i = 0; i < weights.Length; i++)
        {
            weights[i] /= sum;
        }

        return sum;
    }
}

/// <summary>Builds <c>deepseek2</c> blocks from a GGUF file.</summary>
public static class DeepSeek2
{
    /// <summary>The MLA block of block <paramref name="block"/>, its weights viewed in place.</summary>
    /// <exception cref="ExpertScopeException">A tensor is missing or mis-shaped; the message names file and tensor.</exception>
    /// <param name="file">The checkpoint.</param>
    /// <param name="config">Its configuration.</param>
    /// <param name="block">GGUF block index.</param>
    /// <param name="fusedKeyValueB">Overrides the key/value decompression with a legacy fused <c>attn_kv_b</c>
    /// (for tests and converted checkpoints); null reads what the file has.</param>
    public static MultiHeadLatentAttention CreateAttention(GgufFile file, DeepSeek2Config config, int block, MatrixRows? fusedKeyValueB = null)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(config);
        var s = config.Attention;
        var prefix = string.Create(CultureInfo.InvariantCulture, $"blk.{block}.");
        MatrixRows Matrix(string name, long rows, long columns)
        {
            var tensor = Tensor(file, prefix + name + ".weight");
            if (tensor.RowLength != columns || tensor.RowCount != rows)
            {
                throw new ExpertScopeException(
                    $"{file.FilePath}: tensor '{tensor.Name}' has shape {tensor.ShapeText}, expected [{rows}, {columns}].");
            }

            return new GgufFloat32Rows(file, tensor);
        }

        float[] Vector(string name, int length)
        {
            var tensor = Tensor(file, prefix + name + ".weight");
            if (tensor.ElementCount != length)
            {
                throw new ExpertScopeException($"{file.FilePath}: tensor '{tensor.Name}' has shape {tensor.ShapeText}, expected [{length}].");
            }

            return file.GetFloat32(tensor).ToArray();
        }

        var queryRows = s.HeadCount * s.KeyLength;
        var compressed = s.QueryLoraRank > 0;
        var fused = fusedKeyValueB is not null || config.UsesFusedKeyValue;
        var weights = new MlaWeights
        {
            Query = compressed ? null : Matrix("attn_q", queryRows, s.EmbeddingLength),
            QueryA = compressed ? Matrix("attn_q_a", s.QueryLoraRank, s.EmbeddingLength) : null,
            QueryANorm = compressed ? Vector("attn_q_a_norm", s.QueryLoraRank) : null,
            QueryB = compressed ? Matrix("attn_q_b", queryRows, s.QueryLoraRank) : null,
            KeyValueA = Matrix("attn_kv_a_mqa", s.LatentRowLength, s.EmbeddingLength),
            KeyValueANorm = Vector("attn_kv_a_norm", s.KvLoraRank),
            KeyB = fused ? null : Matrix("attn_k_b", s.HeadCount * s.KvLoraRank, s.NopeLength),
            ValueB = fused ? null : Matrix("attn_v_b", s.HeadCount * s.ValueLength, s.KvLoraRank),
            KeyValueB = fusedKeyValueB ?? (fused ? Matrix("attn_kv_b", s.HeadCount * (s.NopeLength + s.ValueLength), s.KvLoraRank) : null),
            Output = Matrix("attn_output", s.EmbeddingLength, s.HeadOutputLength),
        };
        return new MultiHeadLatentAttention(s, weights, config.Rope, config.AttentionScale, config.RmsEpsilon);
    }

    private static GgufTensorInfo Tensor(GgufFile file, string name) =>
        file.FindTensor(name) ?? throw new ExpertScopeException($"{file.FilePath}: tensor '{name}' is missing.");
}
