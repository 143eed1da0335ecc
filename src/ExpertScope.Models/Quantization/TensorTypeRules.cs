using System.Globalization;
using System.Text.RegularExpressions;
using ExpertScope.Core;

namespace ExpertScope.Models.Quantization;

/// <summary>
/// Which tensors are quantized and to what type: a port of the parts of llama.cpp's <c>src/llama-quant.cpp</c>
/// (<c>llama_model_quantize_impl</c>'s "quantize?" test and <c>llama_tensor_get_type</c>) that concern the targets
/// of <see cref="QuantizationTarget"/>.
/// </summary>
public static partial class TensorTypeRules
{
    /// <summary>One tensor as the rules see it.</summary>
    /// <param name="Name">GGUF tensor name.</param>
    /// <param name="Dimensions">ggml's <c>ne[]</c>.</param>
    /// <param name="Type">Its type in the source.</param>
    public sealed record TensorShape(string Name, long[] Dimensions, GgmlType Type);

    /// <summary>A tensor's planned type and, where the row length forced it, the type it fell back from.</summary>
    /// <param name="Type">The type to write.</param>
    /// <param name="FallbackFrom">The type the rules chose before the block-size fallback, or null.</param>
    public sealed record Choice(GgmlType Type, GgmlType? FallbackFrom);

    /// <summary>
    /// Plans every tensor. Tensors are visited in ordinal name order, as llama.cpp visits its name-sorted weight map,
    /// because the attn_v rules count tensors in that order (<c>i_attention_wv</c>).
    /// </summary>
    /// <param name="tensors">The source's tensors.</param>
    /// <param name="target">The target.</param>
    /// <param name="expertCount">The model's <c>expert_count</c> (0 for a dense model).</param>
    /// <param name="blockCount">The model's <c>block_count</c>.</param>
    /// <exception cref="ExpertScopeException">A quantizable tensor's rows cannot be stored in any type the rules allow.</exception>
    public static Dictionary<string, Choice> Plan(IEnumerable<TensorShape> tensors, QuantizationTarget target, int expertCount, int blockCount)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(target);
        var sorted = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        var state = new MixState(
            AttentionValueCount: sorted.Count(t => IsAttentionValue(t.Name)),
            HasOutput: sorted.Any(t => t.Name == "output.weight"),
            ExpertCount: expertCount,
            BlockCount: blockCount);
        var plan = new Dictionary<string, Choice>(StringComparer.Ordinal);
        foreach (var tensor in sorted)
        {
            if (!IsQuantizable(tensor))
            {
                plan[tensor.Name] = new Choice(tensor.Type, null);
                continue;
            }

            var type = target.DefaultType;
            GgmlType? fallbackFrom = null;
            if (target.Mix is { } mix)
            {
                type = MixType(mix, type, tensor, ref state);
            }

            // llama.cpp applies this fallback only in its mixes (--pure would stop on such a tensor); here a single type
            // falls back the same way, so a model whose rows are shorter than a K-quant block can still be written.
            if (GgmlTypes.Get(type).RowBytes(tensor.Dimensions[0]) < 0)
            {
                fallbackFrom = type;
                type = Fallback(type, tensor);
            }

            plan[tensor.Name] = new Choice(type, fallbackFrom);
        }

        return plan;
    }

    /// <summary>
    /// llama.cpp's test: weight matrices of two or more dimensions, except norms, the router (<c>ffn_gate_inp</c>),
    /// position embeddings and token types, and the small state-space, RWKV and T5 matrices it lists.
    /// </summary>
    public static bool IsQuantizable(TensorShape tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        string name = tensor.Name;
        int rank = tensor.Dimensions.Length;
        while (rank > 1 && tensor.Dimensions[rank - 1] == 1)
        {
            rank--;
        }

        return name.EndsWith("weight", StringComparison.Ordinal)
            && rank >= 2
            && !name.Contains("_norm.weight", StringComparison.Ordinal)
            && !name.Contains("ffn_gate_inp.weight", StringComparison.Ordinal)
            && !name.Contains("altup", StringComparison.Ordinal)
            && !name.Contains("laurel", StringComparison.Ordinal)
            && !name.Contains("per_layer_model_proj", StringComparison.Ordinal)
            && name != "position_embd.weight"
            && name != "token_types.weight"
            && !name.Contains("ssm_conv1d.weight", StringComparison.Ordinal)
            && !name.Contains("shortconv.conv.weight", StringComparison.Ordinal)
            && !name.Contains("time_mix_", StringComparison.Ordinal)
            && !name.Contains("attn_rel_b.weight", StringComparison.Ordinal);
    }

    /// <summary>llama.cpp's <c>use_more_bits</c>: the first and last eighth of the layers and every third layer between.</summary>
    public static bool UseMoreBits(int layer, int layerCount) =>
        layer < layerCount / 8 || layer >= 7 * layerCount / 8 || (layer - layerCount / 8) % 3 == 2;

    private static bool IsAttentionValue(string name) =>
        name.Contains("attn_v.weight", StringComparison.Ordinal) || name.Contains("attn_qkv.weight", StringComparison.Ordinal)
        || name.Contains("attn_kv_b.weight", StringComparison.Ordinal);

    // The branches of llama_tensor_get_type that fire for Q4_K_S/M, Q5_K_S/M and Q6_K (no importance matrix, no overrides).
    private static GgmlType MixType(KQuantMix mix, GgmlType type, TensorShape tensor, ref MixState state)
    {
        string name = tensor.Name;
        bool mediumMix = mix is KQuantMix.Q4KM or KQuantMix.Q5KM;
        if (name == "output.weight" || (!state.HasOutput && name == "token_embd.weight"))
        {
            return tensor.Dimensions[0] % GgmlTypes.Get(type).BlockSize != 0 ? GgmlType.Q8_0
                : type != GgmlType.Q8_0 ? GgmlType.Q6_K
                : type;
        }

        if (name == "token_embd.weight")
        {
            return type;
        }

        if (name.Contains("attn_v.weight", StringComparison.Ordinal))
        {
            if (mediumMix && UseMoreBits(state.AttentionValueIndex, state.AttentionValueCount))
            {
                type = GgmlType.Q6_K;
            }
            else if (mix == KQuantMix.Q4KS && state.AttentionValueIndex < 4)
            {
                type = GgmlType.Q5_K;
            }

            // "for the 8-expert model, bumping this to Q8_0 trades just ~128MB"
            if (state.ExpertCount == 8)
            {
                type = GgmlType.Q8_0;
            }

            state.AttentionValueIndex++;
            return type;
        }

        if (name.Contains("attn_k.weight", StringComparison.Ordinal))
        {
            return state.ExpertCount == 8 ? GgmlType.Q8_0 : type;
        }

        if (name.Contains("ffn_down", StringComparison.Ordinal))
        {
            int layer = LayerOf(name, state);
            if (mediumMix && UseMoreBits(layer, state.BlockCount))
            {
                type = GgmlType.Q6_K;
            }
            else if (mix == KQuantMix.Q4KS && layer < state.BlockCount / 8)
            {
                type = GgmlType.Q5_K;
            }

            state.FeedForwardDownIndex++;
            return type;
        }

        if (name.Contains("attn_output.weight", StringComparison.Ordinal))
        {
            return state.ExpertCount == 8 && mix is KQuantMix.Q4KS or KQuantMix.Q4KM ? GgmlType.Q5_K : type;
        }

        if (name.Contains("attn_qkv.weight", StringComparison.Ordinal))
        {
            return mix == KQuantMix.Q4KM ? GgmlType.Q5_K : mix == KQuantMix.Q5KM ? GgmlType.Q6_K : type;
        }

        return type;
    }

    // llama.cpp reads the block from the name in MoE models (experts are not consecutive in old Mixtral files) and
    // counts ffn_down tensors otherwise.
    private static int LayerOf(string name, MixState state)
    {
        if (state.ExpertCount <= 1)
        {
            return state.FeedForwardDownIndex;
        }

        var match = BlockName().Match(name);
        int layer = match.Success ? int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : -1;
        return layer >= 0 && layer < state.BlockCount
            ? layer
            : throw new ExpertScopeException($"tensor {name}: cannot tell its block (0..{state.BlockCount - 1}) from the name.");
    }

    // llama_tensor_get_type's convert_incompatible_tensor: a row that is not whole blocks of the chosen type.
    private static GgmlType Fallback(GgmlType type, TensorShape tensor)
    {
        var fallback = type switch
        {
            GgmlType.TQ1_0 or GgmlType.TQ2_0 => GgmlType.Q4_0,
            GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.IQ4_XS => GgmlType.IQ4_NL,
            GgmlType.Q4_K => GgmlType.Q5_0,
            GgmlType.Q5_K => GgmlType.Q5_1,
            GgmlType.Q6_K => GgmlType.Q8_0,
            _ => throw new ExpertScopeException(string.Create(CultureInfo.InvariantCulture,
                $"tensor {tensor.Name}: rows of {tensor.Dimensions[0]} elements are not whole {GgmlTypes.Get(type).Name} blocks of {GgmlTypes.Get(type).BlockSize}, and llama.cpp has no fallback for {GgmlTypes.Get(type).Name}.")),
        };
        return GgmlTypes.Get(fallback).RowBytes(tensor.Dimensions[0]) < 0 ? GgmlType.F16 : fallback;
    }

    [GeneratedRegex(@"^blk\.(\d+)\.")]
    private static partial Regex BlockName();

    private record struct MixState(int AttentionValueCount, bool HasOutput, int ExpertCount, int BlockCount)
    {
        public int AttentionValueIndex { get; set; }

        public int FeedForwardDownIndex { get; set; }
    }
}
