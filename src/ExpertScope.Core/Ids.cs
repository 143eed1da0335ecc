namespace ExpertScope.Core;

/// <summary>A block (layer) index as GGUF numbers it: <c>blk.{Value}.*</c>; dense leading blocks keep their numbers.</summary>
/// <param name="Value">The zero-based block index.</param>
public readonly record struct LayerIndex(int Value)
{
    /// <inheritdoc/>
    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>A routed expert's index within its layer (the row of <c>ffn_gate_inp</c>).</summary>
/// <param name="Value">The zero-based expert index.</param>
public readonly record struct ExpertId(int Value)
{
    /// <inheritdoc/>
    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>A vocabulary id.</summary>
/// <param name="Value">The token id.</param>
public readonly record struct TokenId(int Value)
{
    /// <inheritdoc/>
    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
