using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;

namespace ExpertScope.Models;

/// <summary>
/// The one validation pass over a checkpoint's hyperparameters, run when a model is built and before any array is
/// allocated from them: every integer the architectures read is taken as 64 bits and range-checked, floating-point
/// values must be finite and in range, the rotary width must suit the head size, <c>block_count</c> must match the
/// blocks present in the tensor table, and the BOS/EOS ids must lie in the vocabulary. Every failure names the file,
/// the key and the value, so a hostile or damaged file is blamed for what it is (llama.cpp's loader makes the same
/// checks, one by one, in <c>llama_model::load_hparams</c>).
/// </summary>
public static class ModelValidation
{
    /// <summary>Integer keys under the architecture prefix and the smallest value each may take.</summary>
    private static readonly (string Key, long Minimum)[] IntegerKeys =
    [
        ("embedding_length", 1),
        ("block_count", 1),
        ("context_length", 1),
        ("attention.head_count", 1),
        ("attention.head_count_kv", 1),
        ("attention.key_length", 1),
        ("attention.value_length", 1),
        ("attention.key_length_mla", 0),
        ("attention.value_length_mla", 0),
        ("attention.kv_lora_rank", 1),
        ("attention.q_lora_rank", 0),
        ("vocab_size", 1),
        ("rope.dimension_count", 2),
        ("rope.scaling.original_context_length", 0),
        ("feed_forward_length", 0),
        ("expert_count", 0),
        ("expert_used_count", 0),
        ("expert_feed_forward_length", 0),
        ("expert_shared_feed_forward_length", 0),
        ("expert_shared_count", 0),
        ("expert_group_count", 0),
        ("expert_group_used_count", 0),
        ("expert_gating_func", 0),
        ("leading_dense_block_count", 0),
    ];

    /// <summary>Special-token keys whose id must name a vocabulary entry (a wrong BOS changes every result).</summary>
    private static readonly string[] RequiredInVocabulary = ["tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"];

    /// <summary>Checks every hyperparameter of <paramref name="source"/> (overrides included).</summary>
    /// <exception cref="ExpertScopeException">A value is out of range; the message names file, key and value.</exception>
    public static void Validate(ModelSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        foreach (var (key, minimum) in IntegerKeys)
        {
            source.OptionalInt32(key, minimum);
        }

        CheckFloats(source);
        CheckShapes(source);
        CheckBlockCount(source);
        CheckSpecialTokens(source.File);
    }

    private static void CheckFloats(ModelSource source)
    {
        RequireFinite(source, "attention.layer_norm_rms_epsilon", mustBePositive: true);
        RequireFinite(source, "rope.freq_base", mustBePositive: true);
        RequireFinite(source, "rope.scaling.attn_factor", mustBePositive: true);
        RequireFinite(source, "rope.scaling.factor", mustBePositive: false, allowZero: true);

        // Everything else numeric under the prefix (expert_weights_scale, yarn_log_multiplier, ...) must be finite:
        // a NaN there turns every weight and score into NaN without any other sign.
        string prefix = source.Architecture + ".";
        foreach (var (key, value) in source.File.Metadata)
        {
            if (key.StartsWith(prefix, StringComparison.Ordinal) && value.Type is GgufValueType.Float32 or GgufValueType.Float64)
            {
                RequireFinite(source, key[prefix.Length..], mustBePositive: false);
            }
        }
    }

    private static void RequireFinite(ModelSource source, string suffix, bool mustBePositive, bool allowZero = false)
    {
        double? value = source.OptionalNumber(suffix);
        if (value is not { } v)
        {
            return;
        }

        // Read as float by the blocks, so a double beyond float's range is as bad as infinity.
        bool ok = float.IsFinite((float)v) && (!mustBePositive || v > 0) && (!allowZero || v >= 0);
        if (!ok)
        {
            string need = mustBePositive ? "a finite number > 0" : allowZero ? "a finite number >= 0" : "a finite number";
            throw Bad(source, suffix, v.ToString("R", CultureInfo.InvariantCulture), need);
        }
    }

    private static void CheckShapes(ModelSource source)
    {
        int embedding = source.OptionalInt32("embedding_length", 1) ?? 0;
        int heads = source.OptionalInt32("attention.head_count", 1) ?? 0;
        if (embedding == 0 || heads == 0)
        {
            return; // the architecture reports the missing key
        }

        int kvHeads = source.OptionalInt32("attention.head_count_kv", 1) ?? heads;
        if (kvHeads > heads || heads % kvHeads != 0)
        {
            throw Bad(source, "attention.head_count_kv", Text(kvHeads), $"a divisor of attention.head_count ({Text(heads)})");
        }

        long? mla = source.OptionalInt32("attention.key_length_mla", 0);
        int headSize = mla is > 0 ? (int)mla.Value : source.OptionalInt32("attention.key_length", 1) ?? embedding / heads;
        if (headSize < 1)
        {
            throw Bad(source, "attention.head_count", Text(heads), $"at most embedding_length ({Text(embedding)}) when attention.key_length is absent");
        }

        foreach (var (key, count) in new[] { ("attention.head_count", heads), ("attention.head_count_kv", kvHeads) })
        {
            if ((long)count * headSize > int.MaxValue)
            {
                throw Bad(source, key, Text(count), $"small enough that heads x head size ({Text(headSize)}) fits in 32 bits");
            }
        }

        if (source.OptionalInt32("rope.dimension_count", 2) is { } rope && (rope % 2 != 0 || rope > headSize))
        {
            throw Bad(source, "rope.dimension_count", Text(rope), $"even and at most the head size ({Text(headSize)})");
        }

        int experts = source.OptionalInt32("expert_count", 0) ?? 0;
        if (experts > 0 && source.OptionalInt32("expert_used_count", 0) is { } used && used > experts)
        {
            throw Bad(source, "expert_used_count", Text(used), $"at most expert_count ({Text(experts)})");
        }

        long vocabulary = source.File.FindTensor("token_embd.weight")?.Dimension(1) ?? 0;
        if (vocabulary > int.MaxValue)
        {
            throw new ExpertScopeException($"{source.FilePath}: tensor 'token_embd.weight' has {Text(vocabulary)} rows, more than a vocabulary can hold.");
        }
    }

    /// <summary>
    /// <c>block_count</c> must cover every block in the tensor table (smaller would silently ignore trained blocks) and
    /// may not exceed the tensor count (larger would allocate, then fail on, blocks that cannot exist).
    /// </summary>
    private static void CheckBlockCount(ModelSource source)
    {
        if (source.OptionalInt32("block_count", 1) is not { } blocks)
        {
            return;
        }

        long highest = -1;
        string? highestName = null;
        foreach (var tensor in source.File.Tensors)
        {
            if (BlockIndex(tensor.Name) is { } index && index > highest)
            {
                highest = index;
                highestName = tensor.Name;
            }
        }

        if (highest >= blocks)
        {
            throw Bad(source, "block_count", Text(blocks), $"at least {Text(highest + 1)}: the file holds tensor '{highestName}'");
        }

        long leading = source.OptionalInt32("leading_dense_block_count", 0) ?? 0;
        if (leading > blocks)
        {
            throw Bad(source, "leading_dense_block_count", Text(leading), $"at most block_count ({Text(blocks)})");
        }

        // Every block needs tensors, so more blocks than tensors cannot be right; fewer missing blocks are left to the
        // architecture, which names the first missing tensor.
        if (blocks > source.File.Tensors.Count)
        {
            throw Bad(source, "block_count", Text(blocks), $"at most the number of tensors ({Text(source.File.Tensors.Count)}); the tensor table holds {Text(highest + 1)} blocks");
        }
    }

    private static long? BlockIndex(string tensorName)
    {
        if (!tensorName.StartsWith("blk.", StringComparison.Ordinal))
        {
            return null;
        }

        int end = tensorName.IndexOf('.', 4);
        return end > 4 && long.TryParse(tensorName.AsSpan(4, end - 4), NumberStyles.None, CultureInfo.InvariantCulture, out long index) ? index : null;
    }

    private static void CheckSpecialTokens(GgufFile file)
    {
        if (file.TryGet("tokenizer.ggml.tokens")?.AsArray is not { } tokens)
        {
            return;
        }

        foreach (string key in RequiredInVocabulary)
        {
            if (file.TryGetInteger(key) is { } id && (id < 0 || id >= tokens.Count))
            {
                throw new ExpertScopeException(
                    $"{file.FilePath}: metadata '{key}' = {Text(id)} is outside the vocabulary of {Text(tokens.Count)} tokens (0 to {Text(tokens.Count - 1L)}).");
            }
        }
    }

    private static ExpertScopeException Bad(ModelSource source, string suffix, string value, string need) =>
        new($"{source.FilePath}: metadata '{source.Architecture}.{suffix}' = {value} is invalid: it must be {need}.");

    private static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);
}
