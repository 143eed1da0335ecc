namespace ExpertScope.Statistics;

/// <summary>The alternative hypothesis of a test, named as R's <c>alternative</c> argument.</summary>
public enum Alternative
{
    /// <summary>The effect may go either way (R's <c>"two.sided"</c>).</summary>
    TwoSided,

    /// <summary>The first sample (or the statistic) is smaller than under the null (R's <c>"less"</c>).</summary>
    Less,

    /// <summary>The first sample (or the statistic) is larger than under the null (R's <c>"greater"</c>).</summary>
    Greater,
}
