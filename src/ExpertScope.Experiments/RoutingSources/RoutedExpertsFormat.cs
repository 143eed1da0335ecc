using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ExpertScope.Core;

namespace ExpertScope.Experiments.RoutingSources;

/// <summary>Which server's response layout to read or write.</summary>
public enum ServerKind
{
    /// <summary>
    /// vLLM (<c>--enable-return-routed-experts</c>): <c>prompt_routed_experts</c> <c>[prompt_len, num_moe_layers, top_k]</c>
    /// as nested JSON lists on the completion response, <c>routed_experts</c> <c>[gen_len, num_moe_layers, top_k]</c> on each choice.
    /// </summary>
    Vllm,

    /// <summary>
    /// SGLang (<c>--enable-return-routed-experts</c>, request field <c>return_routed_experts: true</c>): <c>routed_experts</c>
    /// as base64 of little-endian int32 ids flattened <c>[seqlen − 1, num_moe_layers, top_k]</c> (prompt then generated
    /// tokens; the last token is never fed back) in <c>sgl_ext</c> of each choice, and in <c>meta_info</c> on <c>/generate</c>.
    /// </summary>
    Sglang,
}

/// <summary>The routed expert ids of one prompt as a server returned them, laid out <c>[token, MoE layer, rank]</c>.</summary>
/// <param name="TokenCount">Tokens routed (the prompt's, for <see cref="ServerKind.Vllm"/> <c>prompt_routed_experts</c>).</param>
/// <param name="LayerCount">MoE layers.</param>
/// <param name="TopK">Experts per token and layer.</param>
/// <param name="Ids">The ids, <c>TokenCount × LayerCount × TopK</c>.</param>
/// <param name="PromptTokens"><c>usage.prompt_tokens</c> when the response has it.</param>
public sealed record ServerRoutedExperts(int TokenCount, int LayerCount, int TopK, int[] Ids, int? PromptTokens)
{
    /// <summary>The ids as a <see cref="SequenceRouting"/> of the first <paramref name="positions"/> tokens (ids only).</summary>
    public SequenceRouting ToSequenceRouting(MoeLayerMap map, int expertCount, int positions)
    {
        ArgumentNullException.ThrowIfNull(map);
        var experts = new int[LayerCount][];
        for (var l = 0; l < LayerCount; l++)
        {
            experts[l] = new int[positions * TopK];
            for (var p = 0; p < positions; p++)
            {
                Ids.AsSpan(((p * LayerCount) + l) * TopK, TopK).CopyTo(experts[l].AsSpan(p * TopK));
            }
        }

        return new SequenceRouting(map.Blocks, positions, TopK, expertCount, experts);
    }
}

/// <summary>
/// Reads and writes the routed-experts fields of vLLM and SGLang completion responses, as their documentation
/// describes them (vLLM: nested int lists; SGLang: base64 int32). Every read checks the shape and that each id is
/// below the expert count, and names the prompt when it is not.
/// </summary>
public static class RoutedExpertsFormat
{
    /// <summary>Reads the prompt's routing from a <c>/v1/completions</c> (or SGLang <c>/generate</c>) response body.</summary>
    /// <param name="kind">The layout.</param>
    /// <param name="body">The response body.</param>
    /// <param name="prompt">The prompt's name, for messages.</param>
    /// <param name="layerCount">MoE layers expected.</param>
    /// <param name="topK">k expected.</param>
    /// <param name="expertCount">N: every id must lie in <c>[0, N)</c>.</param>
    /// <exception cref="JsonException">The body is not JSON (a transient failure: the caller may retry).</exception>
    /// <exception cref="ExpertScopeException">The routed experts are missing, of the wrong shape, or out of range.</exception>
    public static ServerRoutedExperts ReadCompletion(ServerKind kind, string body, string prompt, int layerCount, int topK, int expertCount)
    {
        var root = JsonNode.Parse(body) as JsonObject
            ?? throw new ExpertScopeException($"{prompt}: the server's response is not a JSON object");
        int? promptTokens = root["usage"]?["prompt_tokens"] is JsonValue usage && usage.TryGetValue<int>(out var n) ? n : null;
        ServerRoutedExperts routed;
        if (kind == ServerKind.Vllm)
        {
            var field = root["prompt_routed_experts"]
                ?? throw new ExpertScopeException($"{prompt}: the response has no 'prompt_routed_experts'; start vLLM with --enable-return-routed-experts");
            routed = ReadNested(field, prompt, "prompt_routed_experts", layerCount, topK, promptTokens);
        }
        else
        {
            // /v1/completions: the first choice's sgl_ext; /generate: meta_info.
            var field = (root["choices"] as JsonArray)?.FirstOrDefault()?["sgl_ext"]?["routed_experts"] ?? root["meta_info"]?["routed_experts"]
                ?? throw new ExpertScopeException(
                    $"{prompt}: the response has no 'sgl_ext.routed_experts' (or 'meta_info.routed_experts'); start SGLang with --enable-return-routed-experts and ask return_routed_experts");
            promptTokens ??= root["meta_info"]?["prompt_tokens"] is JsonValue meta && meta.TryGetValue<int>(out var m) ? m : null;
            routed = ReadBase64(field, prompt, layerCount, topK, promptTokens);
        }

        CheckIds(routed, prompt, expertCount);
        return routed;
    }

    /// <summary>vLLM's nested lists <c>[tokens][layers][k]</c>.</summary>
    public static JsonArray WriteNested(ReadOnlySpan<int> ids, int tokenCount, int layerCount, int topK)
    {
        var tokens = new JsonArray();
        for (var t = 0; t < tokenCount; t++)
        {
            var layers = new JsonArray();
            for (var l = 0; l < layerCount; l++)
            {
                var ranks = new JsonArray();
                foreach (var id in ids.Slice(((t * layerCount) + l) * topK, topK))
                {
                    ranks.Add(id);
                }

                layers.Add(ranks);
            }

            tokens.Add(layers);
        }

        return tokens;
    }

    /// <summary>SGLang's base64 of little-endian int32 ids, flattened <c>[tokens, layers, k]</c>.</summary>
    public static string WriteBase64(ReadOnlySpan<int> ids)
    {
        var bytes = new byte[ids.Length * sizeof(int)];
        for (var i = 0; i < ids.Length; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(i * sizeof(int)), ids[i]);
        }

        return Convert.ToBase64String(bytes);
    }

    private static ServerRoutedExperts ReadNested(JsonNode field, string prompt, string name, int layerCount, int topK, int? promptTokens)
    {
        if (field is not JsonArray tokens)
        {
            throw new ExpertScopeException($"{prompt}: '{name}' is not a list [tokens][MoE layers][top-k]");
        }

        var ids = new int[tokens.Count * layerCount * topK];
        for (var t = 0; t < tokens.Count; t++)
        {
            if (tokens[t] is not JsonArray layers || layers.Count != layerCount)
            {
                throw new ExpertScopeException(
                    $"{prompt}: '{name}'[{t}] should list {layerCount} MoE layers, got {Describe(tokens[t])}");
            }

            for (var l = 0; l < layerCount; l++)
            {
                if (layers[l] is not JsonArray ranks || ranks.Count != topK)
                {
                    throw new ExpertScopeException($"{prompt}: '{name}'[{t}][{l}] should list {topK} experts, got {Describe(layers[l])}");
                }

                for (var r = 0; r < topK; r++)
                {
                    ids[(((t * layerCount) + l) * topK) + r] = ranks[r] is JsonValue value && value.TryGetValue<int>(out var id)
                        ? id
                        : throw new ExpertScopeException($"{prompt}: '{name}'[{t}][{l}][{r}] is not an integer expert id");
                }
            }
        }

        return new ServerRoutedExperts(tokens.Count, layerCount, topK, ids, promptTokens);
    }

    private static ServerRoutedExperts ReadBase64(JsonNode field, string prompt, int layerCount, int topK, int? promptTokens)
    {
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(field.GetValue<string>());
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException)
        {
            throw new ExpertScopeException($"{prompt}: 'routed_experts' is not a base64 string ({e.Message})");
        }

        var perToken = layerCount * topK * sizeof(int);
        if (bytes.Length % perToken != 0)
        {
            throw new ExpertScopeException(
                $"{prompt}: 'routed_experts' holds {bytes.Length} bytes, not a whole number of tokens of {layerCount} MoE layers × top-{topK} int32 ids");
        }

        var ids = new int[bytes.Length / sizeof(int)];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(i * sizeof(int)));
        }

        return new ServerRoutedExperts(bytes.Length / perToken, layerCount, topK, ids, promptTokens);
    }

    private static void CheckIds(ServerRoutedExperts routed, string prompt, int expertCount)
    {
        var ids = routed.Ids;
        for (var i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)expertCount)
            {
                var token = i / (routed.LayerCount * routed.TopK);
                var layer = i / routed.TopK % routed.LayerCount;
                throw new ExpertScopeException(string.Create(CultureInfo.InvariantCulture,
                    $"{prompt}: expert id {ids[i]} at token {token}, MoE layer {layer} is outside [0, {expertCount}); is it the same model?"));
            }
        }
    }

    private static string Describe(JsonNode? node) => node switch
    {
        JsonArray array => $"a list of {array.Count}",
        null => "null",
        _ => node.GetValueKind().ToString().ToLowerInvariant(),
    };
}
