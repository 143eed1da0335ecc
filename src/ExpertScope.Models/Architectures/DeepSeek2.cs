using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Models.Blocks;
using ExpertScope.Models.Routing;

namespace ExpertScope.Models.Architectures;

/// <summary>
/// <c>deepseek2</c>: DeepSeek-V2, V2-Lite, V3 and R1 (the V3 family is converted under the same name). Differs from
/// Mixtral: multi-head latent attention (<see cref="MultiHeadLatentAttention"/>, RoPE NORM on a separate rotary slice,
/// optional YaRN), <c>leading_dense_block_count</c> dense SwiGLU blocks first, and in every MoE block ungated shared
/// experts added to the routed ones. Routing follows the metadata: V2 style is softmax top-k with weights neither
/// renormalised nor scaled; V3 style is sigmoid gating, an <c>exp_probs_b</c> bias used only to choose, group-limited
/// selection, renormalised weights and <c>expert_weights_scale</c>.
/// </summary>
public sealed class DeepSeek2 : IArchitecture
{
    /// <inheritdoc/>
    public string Name => DeepSeek2Config.ArchitectureName;

    /// <inheritdoc/>
    public string Description => "DeepSeek-V2/V3 (latent attention, shared experts; softmax or biased sigmoid group-limited routing)";

    /// <inheritdoc/>
    public ModelDefinition Build(ModelSource source, ModelLoadOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        var hp = ModelHyperparameters.Read(source);
        var config = DeepSeek2Config.Read(source);
        StandardParts.RequireExperts(source, hp);
        try
        {
            MultiHeadLatentAttention.ValidateSettings(options.Attention, config.Attention, config.UsesFusedKeyValue);
        }
        catch (ExpertScopeException e)
        {
            throw new ExpertScopeException($"{source.FilePath}: {e.Message}", e);
        }

        var blocks = new DecoderBlock[hp.BlockCount];
        for (int layer = 0; layer < hp.BlockCount; layer++)
        {
            var attention = CreateAttention(source, config, layer, options.CachePrecision, options.Attention);
            IFeedForward feedForward;
            if (!config.IsMoeBlock(layer))
            {
                feedForward = StandardParts.SwiGlu(source, layer, config.EmbeddingLength, config.DenseFeedForwardLength);
            }
            else
            {
                var router = new RouterConfig(
                    config.ExpertCount,
                    config.ExpertUsedCount,
                    config.Gating,
                    config.NormalizeExpertWeights,
                    config.ExpertWeightsScale,
                    Math.Max(1, config.ExpertGroupCount),
                    Math.Max(1, config.ExpertGroupUsedCount));
                // The shared experts are stored fused as one FFN of width count · expert width, with no gate.
                var shared = config.SharedExpertCount > 0
                    ? new SharedExperts(
                        StandardParts.SwiGlu(source, layer, config.EmbeddingLength, config.SharedExpertCount * config.ExpertFeedForwardLength, "_shexp"),
                        null)
                    : null;
                var bias = source.OptionalVector(StandardParts.BlockTensor(layer, "exp_probs_b.bias"), config.ExpertCount);
                feedForward = StandardParts.Moe(source, layer, config.EmbeddingLength, config.ExpertFeedForwardLength, router, shared, bias);
            }

            blocks[layer] = StandardParts.Block(source, hp, layer, attention, feedForward);
        }

        var (embedding, norm, output) = StandardParts.Head(source, hp);
        return new ModelDefinition(hp, embedding, blocks, norm, output);
    }

    /// <summary>The MLA block of block <paramref name="layer"/>, its weights viewed in place.</summary>
    /// <param name="source">The checkpoint.</param>
    /// <param name="config">Its configuration.</param>
    /// <param name="layer">GGUF block index.</param>
    /// <param name="cachePrecision">Key/value cache precision.</param>
    /// <param name="settings">llama.cpp's cache types and flash-attention switch (null = its defaults).</param>
    /// <exception cref="ExpertScopeException">A tensor is missing or mis-shaped; the message names file and tensor.</exception>
    public static MultiHeadLatentAttention CreateAttention(ModelSource source, DeepSeek2Config config, int layer, CachePrecision cachePrecision, AttentionSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(config);
        var s = config.Attention;
        string T(string name) => StandardParts.BlockTensor(layer, name);
        int queryRows = s.HeadCount * s.KeyLength;
        bool compressedQuery = s.QueryLoraRank > 0;
        var weights = new MlaWeights
        {
            Query = compressedQuery ? null : source.Linear(T("attn_q.weight"), s.EmbeddingLength, queryRows),
            QueryA = compressedQuery ? source.Linear(T("attn_q_a.weight"), s.EmbeddingLength, s.QueryLoraRank) : null,
            QueryANorm = compressedQuery ? source.Norm(T("attn_q_a_norm.weight"), s.QueryLoraRank, config.RmsEpsilon) : null,
            QueryB = compressedQuery ? source.Linear(T("attn_q_b.weight"), s.QueryLoraRank, queryRows) : null,
            KeyValueA = source.Linear(T("attn_kv_a_mqa.weight"), s.EmbeddingLength, s.LatentRowLength),
            KeyValueANorm = source.Norm(T("attn_kv_a_norm.weight"), s.KvLoraRank, config.RmsEpsilon),
            Output = source.Linear(T("attn_output.weight"), s.HeadOutputLength, s.EmbeddingLength),
        };
        if (config.UsesFusedKeyValue)
        {
            var (keys, values) = FusedKeyValueB(source, T("attn_kv_b.weight"), s);
            weights = weights with { KeyNope = keys, Value = values };
        }
        else
        {
            // attn_k_b is {nope, kv_lora, H}: per head a [kv_lora, nope] matrix; attn_v_b is {kv_lora, value, H}.
            weights = weights with
            {
                KeyB = source.ExpertStack(T("attn_k_b.weight"), s.NopeLength, s.KvLoraRank, s.HeadCount),
                ValueB = source.ExpertStack(T("attn_v_b.weight"), s.KvLoraRank, s.ValueLength, s.HeadCount),
            };
        }

        return new MultiHeadLatentAttention(s, weights, config.Rope, config.AttentionScale, cachePrecision, settings);
    }

    // Legacy attn_kv_b {kv_lora, H·(nope+value)}: per head, nope key rows then value rows, viewed in place.
    private static (LinearWeight[] Keys, LinearWeight[] Values) FusedKeyValueB(ModelSource source, string name, MlaShape s)
    {
        var tensor = source.File.FindTensor(name)
            ?? throw new ExpertScopeException($"{source.FilePath}: tensor '{name}' is missing (legacy deepseek2 files without key_length_mla need it).");
        int rowsPerHead = s.NopeLength + s.ValueLength;
        if (tensor.Dimensions.Length != 2 || tensor.Dimension(0) != s.KvLoraRank || tensor.Dimension(1) != s.HeadCount * rowsPerHead)
        {
            throw new ExpertScopeException(
                $"{source.FilePath}: tensor '{name}' has shape {tensor.ShapeText}, expected [{s.HeadCount * rowsPerHead}, {s.KvLoraRank}].");
        }

        var keys = new LinearWeight[s.HeadCount];
        var values = new LinearWeight[s.HeadCount];
        for (int h = 0; h < s.HeadCount; h++)
        {
            long headStart = (long)h * rowsPerHead * tensor.RowBytes;
            keys[h] = new LinearWeight(source.File, tensor, s.KvLoraRank, s.NopeLength, headStart);
            values[h] = new LinearWeight(source.File, tensor, s.KvLoraRank, s.ValueLength, headStart + (s.NopeLength * tensor.RowBytes));
        }

        return (keys, values);
    }
}

/// <summary>
/// The <c>deepseek2</c> hyperparameters beyond <see cref="ModelHyperparameters"/>, from the <c>deepseek2.*</c> keys.
/// Which style a file is (V2 or V3) follows from its keys alone.
/// </summary>
/// <param name="EmbeddingLength">Residual width (<c>embedding_length</c>).</param>
/// <param name="DenseFeedForwardLength">FFN width of the dense leading blocks (<c>feed_forward_length</c>).</param>
/// <param name="LeadingDenseBlockCount">Blocks before the first MoE block (<c>leading_dense_block_count</c>).</param>
/// <param name="ExpertCount">Routed experts per MoE block (<c>expert_count</c>).</param>
/// <param name="ExpertUsedCount">Experts chosen per token (<c>expert_used_count</c>).</param>
/// <param name="ExpertFeedForwardLength">FFN width of one expert (<c>expert_feed_forward_length</c>).</param>
/// <param name="SharedExpertCount">Shared experts (<c>expert_shared_count</c>), stored fused as one FFN.</param>
/// <param name="ExpertWeightsScale">Multiplier of the mixing weights (<c>expert_weights_scale</c>; V3: 2.5).</param>
/// <param name="NormalizeExpertWeights">Divide the chosen weights by their sum (<c>expert_weights_norm</c>).</param>
/// <param name="Gating">Gating (<c>expert_gating_func</c>: 1 softmax, 2 sigmoid; absent = softmax, as for V2 files).</param>
/// <param name="ExpertGroupCount">Expert groups for group-limited routing (<c>expert_group_count</c>; ≤ 1 = off).</param>
/// <param name="ExpertGroupUsedCount">Groups kept per token (<c>expert_group_used_count</c>).</param>
/// <param name="Attention">MLA sizes.</param>
/// <param name="Rope">Rotation of the decoupled rope slices (NORM), YaRN included.</param>
/// <param name="AttentionScale">Multiplier of q·k (llama.cpp's <c>kq_scale</c>).</param>
/// <param name="RmsEpsilon">RMS-norm ε (<c>attention.layer_norm_rms_epsilon</c>).</param>
/// <param name="UsesFusedKeyValue">True for legacy files without <c>key_length_mla</c>: a fused <c>attn_kv_b</c>.</param>
public sealed record DeepSeek2Config(
    int EmbeddingLength,
    int DenseFeedForwardLength,
    int LeadingDenseBlockCount,
    int ExpertCount,
    int ExpertUsedCount,
    int ExpertFeedForwardLength,
    int SharedExpertCount,
    float ExpertWeightsScale,
    bool NormalizeExpertWeights,
    GatingFunction Gating,
    int ExpertGroupCount,
    int ExpertGroupUsedCount,
    MlaShape Attention,
    Rope Rope,
    float AttentionScale,
    float RmsEpsilon,
    bool UsesFusedKeyValue)
{
    /// <summary>The GGUF <c>general.architecture</c> value.</summary>
    public const string ArchitectureName = "deepseek2";

    /// <summary>True for blocks whose feed-forward part is MoE (the others are dense leading blocks).</summary>
    public bool IsMoeBlock(int block) => block >= LeadingDenseBlockCount;

    /// <summary>Reads the configuration (overrides included).</summary>
    /// <exception cref="ExpertScopeException">A required key is missing or values contradict each other.</exception>
    public static DeepSeek2Config Read(ModelSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        int Optional(string key, int fallback) => source.OptionalInt32(key) ?? fallback;

        int embedding = source.Integer("embedding_length");
        int heads = source.Integer("attention.head_count");
        int ropeLength = source.Integer("rope.dimension_count");
        int kvLora = source.Integer("attention.kv_lora_rank");
        // llama.cpp reads q_lora_rank except for the 26/27-block "lite" layouts, which never compress the query.
        int qLora = Optional("attention.q_lora_rank", 0);

        // Current converters write key/value_length for the absorbed latent (kv_lora + rope, kv_lora) and the
        // per-head sizes as *_mla; legacy files have only the per-head sizes and a fused attn_kv_b.
        int? keyMla = source.OptionalInt32("attention.key_length_mla");
        int? valueMla = source.OptionalInt32("attention.value_length_mla");
        bool fused = keyMla is null or 0 || valueMla is null or 0;
        int keyLength = fused ? Optional("attention.key_length", embedding / heads) : keyMla!.Value;
        int valueLength = fused ? Optional("attention.value_length", embedding / heads) : valueMla!.Value;
        if (keyLength <= ropeLength)
        {
            throw new ExpertScopeException($"{source.FilePath}: key length {keyLength} must exceed the rope width {ropeLength}.");
        }

        var shape = new MlaShape(embedding, heads, qLora, kvLora, keyLength - ropeLength, ropeLength, valueLength);

        int gatingCode = Optional("expert_gating_func", 0);
        var gating = gatingCode switch
        {
            0 or 1 => GatingFunction.Softmax, // 0 = unset: existing V2/V2.5 files
            2 => GatingFunction.Sigmoid,
            _ => throw new ExpertScopeException(
                $"{source.FilePath}: {source.Architecture}.expert_gating_func = {gatingCode} is not supported (1 = softmax, 2 = sigmoid)."),
        };

        int context = Optional("context_length", 0);
        var scaling = new DeepSeekRopeScaling(
            ParseScalingType(source),
            (float)(source.OptionalNumber("rope.scaling.factor") ?? 0),
            Optional("rope.scaling.original_context_length", context),
            (float)(source.OptionalNumber("rope.scaling.yarn_log_multiplier") ?? 0),
            (float)(source.OptionalNumber("rope.scaling.attn_factor") ?? 1));
        var (rope, attentionScale) = scaling.Resolve(ropeLength, (float)(source.OptionalNumber("rope.freq_base") ?? 10000.0), shape.KeyLength);

        int experts = Optional("expert_count", 0);
        int groups = Optional("expert_group_count", 0);
        int groupsUsed = Optional("expert_group_used_count", 0);
        if (groups > 1 && (experts % groups != 0 || groupsUsed <= 0 || groupsUsed > groups))
        {
            throw new ExpertScopeException($"{source.FilePath}: {experts} experts cannot be split into {groups} groups keeping {groupsUsed}.");
        }

        return new DeepSeek2Config(
            EmbeddingLength: embedding,
            DenseFeedForwardLength: Optional("feed_forward_length", 0),
            LeadingDenseBlockCount: Optional("leading_dense_block_count", 0),
            ExpertCount: experts,
            ExpertUsedCount: Optional("expert_used_count", 0),
            ExpertFeedForwardLength: Optional("expert_feed_forward_length", 0),
            SharedExpertCount: Optional("expert_shared_count", 0),
            ExpertWeightsScale: (float)(source.OptionalNumber("expert_weights_scale") ?? 0),
            NormalizeExpertWeights: source.OptionalBool("expert_weights_norm") ?? false,
            Gating: gating,
            ExpertGroupCount: groups,
            ExpertGroupUsedCount: groupsUsed,
            Attention: shape,
            Rope: rope,
            AttentionScale: attentionScale,
            RmsEpsilon: source.Number("attention.layer_norm_rms_epsilon"),
            UsesFusedKeyValue: fused);
    }

    private static RopeScalingType ParseScalingType(ModelSource source)
    {
        string type = source.OptionalString("rope.scaling.type") ?? "linear";
        return type.ToUpperInvariant() switch
        {
            "NONE" => RopeScalingType.None,
            "LINEAR" => RopeScalingType.Linear,
            "YARN" => RopeScalingType.Yarn,
            _ => throw new ExpertScopeException(
                $"{source.FilePath}: {source.Architecture}.rope.scaling.type '{type}' is not supported (none, linear, yarn)."),
        };
    }
}

/// <summary>RoPE scaling kinds (<c>rope.scaling.type</c>).</summary>
public enum RopeScalingType
{
    /// <summary>No scaling; the factor is ignored.</summary>
    None,

    /// <summary>Positions divided by the factor (llama.cpp's default when the key is absent).</summary>
    Linear,

    /// <summary>YaRN: NTK-by-parts interpolation plus a magnitude (mscale) correction.</summary>
    Yarn,
}

/// <summary>
/// The RoPE-scaling inputs of a DeepSeek file and the arithmetic llama.cpp applies to them for <c>deepseek2</c>.
/// YaRN's magnitude factor is moved from the rotation into the attention scale, so that the rotated q/k keep unit
/// magnitude and kq_scale = mscale² / sqrt(key_length_mla) with mscale = 1 + 0.1 · mscale_all_dim · ln(factor)
/// (DeepSeek's <c>mscale_all_dim</c> rule; <c>yarn_log_multiplier</c> is stored as 0.1 · mscale_all_dim).
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
    /// <summary>ggml's YaRN ramp boundaries in rotations; llama.cpp does not read them for deepseek2.</summary>
    public const float BetaFast = 32f;

    /// <inheritdoc cref="BetaFast"/>
    public const float BetaSlow = 1f;

    /// <summary>
    /// The rotation (RoPE NORM over <paramref name="ropeLength"/> values) and the attention scale llama.cpp uses,
    /// step by step as its context setup (<c>yarn_attn_factor</c>) and the deepseek2 graph (<c>attn_factor_org</c>,
    /// <c>mscale</c>, <c>kq_scale</c>) compute them.
    /// </summary>
    public (Rope Rope, float AttentionScale) Resolve(int ropeLength, float frequencyBase, int keyLength)
    {
        float frequencyScale = Type == RopeScalingType.None || Factor == 0f ? 1f : 1f / Factor;
        float extrapolation = Type == RopeScalingType.Yarn ? 1f : 0f;
        // The converter stores 0.1 · mscale_all_dim; llama.cpp divides the 0.1 back out.
        float logMultiplier = YarnLogMultiplier / 0.1f;

        float attentionFactor = 1f;
        if (extrapolation != 0f)
        {
            float factor = 1f / frequencyScale;
            // With a log multiplier, llama.cpp takes mscale = mscale_all_dim for deepseek2 (V2 configs set both
            // equal; V3 has both 1), so get_mscale(s, mscale) / get_mscale(s, mscale_all_dim) is 1.
            attentionFactor = logMultiplier != 0f ? 1f : MagnitudeScale(factor, 1f);
            // ggml's rope multiplies by 1 + 0.1 ln(s) itself when YaRN is on; cancel it here.
            attentionFactor *= 1f / (1f + (0.1f * MathF.Log(factor)));
        }

        attentionFactor *= AttentionFactor;

        // The graph undoes that cancellation to recover the original factor and folds the log-multiplier correction
        // into the attention scale instead of the rotation (whatever the scaling type, as llama.cpp does).
        float original = attentionFactor * (1f + (0.1f * MathF.Log(1f / frequencyScale)));
        float scale = original * (1f + (0.1f * logMultiplier * MathF.Log(1f / frequencyScale)));
        float attentionScale = scale * scale / MathF.Sqrt(keyLength);
        var scaling = frequencyScale == 1f && extrapolation == 0f && attentionFactor == 1f
            ? null
            : new RopeScaling(frequencyScale, extrapolation, attentionFactor, BetaFast, BetaSlow, OriginalContextLength);
        return (new Rope(ropeLength, frequencyBase, RopeStyle.Normal, scaling), attentionScale);
    }

    /// <summary>YaRN's magnitude correction 0.1 · m · ln(s) + 1 (1 when s ≤ 1).</summary>
    public static float MagnitudeScale(float factor, float multiplier) =>
        factor <= 1f ? 1f : (0.1f * multiplier * MathF.Log(factor)) + 1f;

    /// <inheritdoc/>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Type} x{Factor} (original context {OriginalContextLength}, log multiplier {YarnLogMultiplier})");
}
