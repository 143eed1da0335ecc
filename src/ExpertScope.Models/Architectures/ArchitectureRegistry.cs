using ExpertScope.Core;

namespace ExpertScope.Models.Architectures;

/// <summary>Maps <c>general.architecture</c> to the <see cref="IArchitecture"/> that builds it.</summary>
public static class ArchitectureRegistry
{
    private static readonly IArchitecture[] Known =
    [
        new Mixtral(),
        new Qwen2Moe(),
        new Qwen3Moe(),
        new Olmoe(),
        new DeepSeek2(),
        new DeepSeek(),
        new Ernie45Moe(),
        new Glm4Moe(),
        new GraniteMoe(),
        new PhiMoe(),
        new GptOss(),
        new Llama4(),
    ];

    /// <summary>
    /// llama.cpp architectures the engine does not run, with the supported one whose graph is closest and what differs
    /// (from llama.cpp's <c>src/models/*.cpp</c>); docs/models.md has the whole table.
    /// </summary>
    private static readonly Dictionary<string, (string Nearest, string Difference)> Relatives = new(StringComparer.Ordinal)
    {
        ["bailingmoe2"] = ("deepseek2", "Ling 2.0: sigmoid routing with groups and a selection bias as DeepSeek-V3, grouped-query attention"),
        ["dots1"] = ("deepseek2", "dots.llm1: DeepSeek-V3-style routing with shared experts, grouped-query attention with QK norm"),
        ["granitehybrid"] = ("granitemoe", "Granite 4.0-H: Mamba-2 layers between attention blocks, MoE with a shared expert"),
        ["hunyuan-moe"] = ("qwen2moe", "Hunyuan-A13B: shared expert beside softmax top-k routing"),
        ["qwen3next"] = ("qwen3moe", "Qwen3-Next: Qwen3-MoE routing with gated DeltaNet linear-attention layers and a gated shared expert"),
        ["qwen35moe"] = ("qwen3moe", "Qwen3.5 MoE: Qwen3-MoE-style routing with a gated shared expert and hybrid linear attention"),
        ["qwen3vlmoe"] = ("qwen3moe", "Qwen3-VL MoE: the Qwen3-MoE language model with multimodal RoPE sections"),
        ["dbrx"] = ("llama", "DBRX: fine-grained softmax top-4, fused QKV and LayerNorm"),
        ["arctic"] = ("llama", "Snowflake Arctic: a dense residual MLP beside Mixtral-style top-2 experts"),
        ["grok"] = ("llama", "Grok-1: Mixtral-style top-2 with soft-capped attention logits and extra norms"),
    };

    /// <summary>Every supported architecture.</summary>
    public static IReadOnlyList<IArchitecture> All => Known;

    /// <summary>True when <paramref name="name"/> is a supported <c>general.architecture</c>.</summary>
    public static bool IsSupported(string name) => Known.Any(a => a.Name == name);

    /// <summary>
    /// The supported architecture closest to <paramref name="name"/> and what differs: from a table of llama.cpp's MoE
    /// architectures, else from the tensors (a selection bias suggests deepseek2, a gated shared expert qwen2moe, shared
    /// experts deepseek2, a QK norm qwen3moe, otherwise llama).
    /// </summary>
    /// <param name="name">An unsupported <c>general.architecture</c>.</param>
    /// <param name="tensorNames">The file's tensor names.</param>
    public static (string Nearest, string Difference) Nearest(string name, IEnumerable<string> tensorNames)
    {
        ArgumentNullException.ThrowIfNull(tensorNames);
        if (Relatives.TryGetValue(name, out var known))
        {
            return known;
        }

        var names = tensorNames.ToHashSet(StringComparer.Ordinal);
        bool Has(string suffix) => names.Any(n => n.EndsWith(suffix, StringComparison.Ordinal));
        string reason = "guessed from the tensors";
        return Has("exp_probs_b.bias") ? ("deepseek2", reason + ": a routing selection bias (exp_probs_b)")
            : Has("ffn_gate_inp_shexp.weight") ? ("qwen2moe", reason + ": a gated shared expert")
            : Has("ffn_up_shexp.weight") ? ("deepseek2", reason + ": shared experts")
            : Has("attn_q_norm.weight") ? ("qwen3moe", reason + ": QK norm")
            : ("llama", reason + ": plain softmax top-k experts");
    }

    /// <summary>The architecture called <paramref name="name"/>.</summary>
    /// <param name="name">The <c>general.architecture</c> value.</param>
    /// <param name="filePath">The checkpoint, for the error message.</param>
    /// <param name="tensorNames">The file's tensor names, to name the nearest supported architecture in the error.</param>
    /// <exception cref="ExpertScopeException">Unsupported; the message names the nearest supported one and lists them all.</exception>
    public static IArchitecture Resolve(string name, string filePath, IEnumerable<string>? tensorNames = null)
    {
        var architecture = Known.FirstOrDefault(a => a.Name == name);
        if (architecture is not null)
        {
            return architecture;
        }

        var (nearest, difference) = Nearest(name, tensorNames ?? []);
        throw new ExpertScopeException(
            $"{filePath}: architecture '{name}' is not supported; the nearest supported one is {nearest} ({difference}). Supported: {string.Join(", ", Known.Select(a => a.Name))}.");
    }
}
