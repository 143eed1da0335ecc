using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Kernels.Quant;

namespace ExpertScope.Models.Quantization;

/// <summary>
/// What <see cref="ModelQuantizer"/> makes: either one ggml type for every quantizable matrix (as
/// <c>llama-quantize --pure</c>), or one of llama.cpp's K-quant mixes (<c>q4_K_M</c>…), whose per-tensor type choice
/// follows <c>llama_tensor_get_type</c> in llama.cpp's <c>src/llama-quant.cpp</c>.
/// </summary>
/// <param name="Name">The name the user gave, in ggml's spelling (<c>q8_0</c>, <c>q4_K_M</c>).</param>
/// <param name="DefaultType">The type every quantizable matrix gets unless a mix rule or the block-size fallback says otherwise.</param>
/// <param name="FileType">The <c>general.file_type</c> (<c>llama_ftype</c>) llama-quantize writes for it.</param>
/// <param name="Mix">For a K-quant mix, which one; null for a single type.</param>
public sealed record QuantizationTarget(string Name, GgmlType DefaultType, uint FileType, KQuantMix? Mix)
{
    // llama_ftype values (include/llama.h) of the single types; a K type maps to the mix llama-quantize uses for its
    // alias (Q4_K is an alias of Q4_K_M there), because the file type has no pure-K value.
    private static readonly Dictionary<GgmlType, uint> SingleTypeFileTypes = new()
    {
        [GgmlType.F32] = 0, [GgmlType.F16] = 1, [GgmlType.Q4_0] = 2, [GgmlType.Q4_1] = 3, [GgmlType.Q8_0] = 7,
        [GgmlType.Q5_0] = 8, [GgmlType.Q5_1] = 9, [GgmlType.Q2_K] = 10, [GgmlType.Q3_K] = 12, [GgmlType.Q4_K] = 15,
        [GgmlType.Q5_K] = 17, [GgmlType.Q6_K] = 18, [GgmlType.IQ4_NL] = 25, [GgmlType.IQ4_XS] = 30, [GgmlType.BF16] = 32,
        [GgmlType.TQ1_0] = 36, [GgmlType.TQ2_0] = 37, [GgmlType.MXFP4] = 38,
    };

    private static readonly (string Name, KQuantMix Mix, GgmlType Type, uint FileType)[] Mixes =
    [
        ("q4_K_S", KQuantMix.Q4KS, GgmlType.Q4_K, 14),
        ("q4_K_M", KQuantMix.Q4KM, GgmlType.Q4_K, 15),
        ("q5_K_S", KQuantMix.Q5KS, GgmlType.Q5_K, 16),
        ("q5_K_M", KQuantMix.Q5KM, GgmlType.Q5_K, 17),
        ("q6_K", KQuantMix.Q6K, GgmlType.Q6_K, 18),
    ];

    /// <summary>Every name <see cref="Parse"/> accepts, for help texts and error messages.</summary>
    public static IReadOnlyList<string> Names { get; } =
        [.. SingleTypeFileTypes.Keys.Where(t => t == GgmlType.F32 || Quantize.IsSupported(t)).Select(t => GgmlTypes.Get(t).Name)
            .Where(n => !Mixes.Any(m => m.Name == n)), .. Mixes.Select(m => m.Name)];

    /// <summary>Reads a target name (case-insensitive): a ggml type with a quantizer here, or a K-quant mix.</summary>
    /// <exception cref="ExpertScopeException">The name is neither.</exception>
    public static QuantizationTarget Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var (mixName, mix, type, fileType) in Mixes)
        {
            if (string.Equals(mixName, name, StringComparison.OrdinalIgnoreCase))
            {
                return new QuantizationTarget(mixName, type, fileType, mix);
            }
        }

        if (GgmlTypes.TryParse(name, out var single) && SingleTypeFileTypes.TryGetValue(single, out uint file)
            && (single == GgmlType.F32 || Quantize.IsSupported(single)))
        {
            return new QuantizationTarget(GgmlTypes.Get(single).Name, single, file, Mix: null);
        }

        throw new ExpertScopeException(string.Create(CultureInfo.InvariantCulture,
            $"unknown quantization type '{name}'; choose one of {string.Join(", ", Names)}."));
    }
}

/// <summary>llama.cpp's K-quant mixes (<c>LLAMA_FTYPE_MOSTLY_Q4_K_S</c>…) that <see cref="ModelQuantizer"/> reproduces.</summary>
public enum KQuantMix
{
    /// <summary><c>Q4_K_S</c>: Q4_K; ffn_down of the first eighth of the blocks and attn_v of the first four get Q5_K.</summary>
    Q4KS,

    /// <summary><c>Q4_K_M</c>: Q4_K; ffn_down and attn_v get Q6_K in "more bits" blocks (first and last eighth, every third between).</summary>
    Q4KM,

    /// <summary><c>Q5_K_S</c>: Q5_K everywhere but the output matrix (Q6_K).</summary>
    Q5KS,

    /// <summary><c>Q5_K_M</c>: Q5_K; ffn_down and attn_v get Q6_K in "more bits" blocks.</summary>
    Q5KM,

    /// <summary>
    /// <c>Q6_K</c>: Q6_K everywhere; its only rules are the output matrix's block-size fallback (Q8_0) and the
    /// 8-expert attn_k/attn_v bump to Q8_0, so it equals <c>--pure</c> except in 8-expert models.
    /// </summary>
    Q6K,
}
