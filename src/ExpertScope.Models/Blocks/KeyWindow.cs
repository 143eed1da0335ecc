using ExpertScope.Core;

namespace ExpertScope.Models.Blocks;

/// <summary>How a <see cref="KeyWindow"/> limits the keys a query sees.</summary>
public enum KeyWindowKind
{
    /// <summary>
    /// The last <see cref="KeyWindow.Length"/> positions up to the query (llama.cpp's <c>LLAMA_SWA_TYPE_STANDARD</c>:
    /// key p0 is masked for query p1 when p1 − p0 ≥ n_swa). gpt-oss, Gemma 2/3, Mistral's sliding-window layers.
    /// </summary>
    Sliding,

    /// <summary>
    /// Only the query's own chunk of <see cref="KeyWindow.Length"/> positions (llama.cpp's <c>LLAMA_SWA_TYPE_CHUNKED</c>:
    /// key p0 is masked for query p1 when p0 &lt; ⌊p1 / n_swa⌋·n_swa). Llama 4's local-attention layers.
    /// </summary>
    Chunked,
}

/// <summary>
/// A limit on the keys each query attends to beyond the causal mask (llama.cpp's <c>is_masked_swa</c> in
/// <c>llama-hparams.h</c>). Both kinds leave a contiguous run of visible keys ending at the query, so the attention
/// kernels only need its first position.
/// </summary>
public sealed record KeyWindow
{
    /// <summary>Creates a window.</summary>
    /// <param name="kind">Sliding or chunked.</param>
    /// <param name="length">n_swa (GGUF <c>attention.sliding_window</c> or Llama 4's chunk size), at least 1.</param>
    /// <exception cref="ExpertScopeException">The length is below 1.</exception>
    public KeyWindow(KeyWindowKind kind, int length)
    {
        if (length < 1)
        {
            throw new ExpertScopeException($"an attention key window must span at least 1 position; {length} was given.");
        }

        Kind = kind;
        Length = length;
    }

    /// <summary>Sliding or chunked.</summary>
    public KeyWindowKind Kind { get; }

    /// <summary>n_swa: the window or chunk length in positions.</summary>
    public int Length { get; }

    /// <summary>
    /// True when the window hides key position <paramref name="keyPosition"/> from the query at
    /// <paramref name="queryPosition"/> (the causal mask aside), exactly as llama.cpp's <c>is_masked_swa</c>.
    /// </summary>
    public bool Masks(int keyPosition, int queryPosition) => Kind switch
    {
        KeyWindowKind.Sliding => queryPosition - keyPosition >= Length,
        _ => keyPosition < queryPosition / Length * Length,
    };

    /// <summary>The first key position the query at <paramref name="queryPosition"/> sees (all later ones up to it are visible).</summary>
    public int FirstVisible(int queryPosition) => Kind switch
    {
        KeyWindowKind.Sliding => Math.Max(0, queryPosition - Length + 1),
        _ => queryPosition / Length * Length,
    };

    /// <inheritdoc/>
    public override string ToString() => $"{(Kind == KeyWindowKind.Sliding ? "sliding" : "chunked")} window of {Length}";
}
