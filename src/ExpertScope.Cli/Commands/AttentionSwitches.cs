using System.CommandLine;
using ExpertScope.Models;

namespace ExpertScope.Cli;

/// <summary>
/// llama.cpp's switches that change attention numbers, on every verb that runs a model: <c>--cache-type-k</c>,
/// <c>--cache-type-v</c> (<c>-ctk</c>/<c>-ctv</c>; default f16 as llama.cpp) and <c>--no-flash-attn</c>
/// (semantics in <see cref="AttentionSettings"/>).
/// </summary>
public sealed class AttentionSwitches
{
    private static readonly string TypeNames = string.Join("|", AttentionSettings.CacheTypes.Select(t => Core.GgmlTypes.Get(t).Name));

    /// <summary><c>--cache-type-k</c>.</summary>
    public Option<string> KeyType { get; } = new("--cache-type-k", "-ctk")
    {
        Description = $"Key cache type, as llama.cpp's -ctk: {TypeNames} (default f16).",
        DefaultValueFactory = _ => "f16",
    };

    /// <summary><c>--cache-type-v</c>.</summary>
    public Option<string> ValueType { get; } = new("--cache-type-v", "-ctv")
    {
        Description = $"Value cache type, as llama.cpp's -ctv: {TypeNames} (default f16; quantized types need flash attention).",
        DefaultValueFactory = _ => "f16",
    };

    /// <summary><c>--no-flash-attn</c>.</summary>
    public Option<bool> NoFlashAttention { get; } = new("--no-flash-attn", "-nofa")
    {
        Description = "Attention without flash attention, as llama.cpp -fa off (softmax, then a product with the values; an f32 cache is then really f32).",
    };

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.Options.Add(KeyType);
        command.Options.Add(ValueType);
        command.Options.Add(NoFlashAttention);
    }

    /// <summary>The settings asked for.</summary>
    /// <exception cref="Core.ExpertScopeException">An unknown cache type.</exception>
    public AttentionSettings Parse(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        return new AttentionSettings(
            AttentionSettings.ParseCacheType(parse.GetValue(KeyType) ?? "f16"),
            AttentionSettings.ParseCacheType(parse.GetValue(ValueType) ?? "f16"),
            !parse.GetValue(NoFlashAttention));
    }
}
