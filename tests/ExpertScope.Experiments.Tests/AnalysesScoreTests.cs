using ExpertScope.Experiments.Analyses;

namespace ExpertScope.Experiments.Tests;

public class AnalysesScoreTests
{
    private static readonly float Ln3 = MathF.Log(3);

    [Fact]
    public void CosineSimilarityOfHandPickedVectors()
    {
        Assert.Equal(1 / Math.Sqrt(2), HiddenStateSimilarity.Cosine([1f, 0], [1f, 1]), 12);
        Assert.Equal(-1.0, HiddenStateSimilarity.Cosine([1f, 2, 3], [-1f, -2, -3]), 12);
        Assert.Equal([1.0, 0.0], HiddenStateSimilarity.PerToken([1f, 1, 1, 0], [2f, 2, 0, 3], 2));
        Assert.Throws<ArgumentException>(() => HiddenStateSimilarity.Cosine([0f, 0], [1f, 1]));
        Assert.Throws<ArgumentException>(() => HiddenStateSimilarity.Cosine([1f], [1f, 1]));
    }

    [Fact]
    public void LayerMeansAverageCosinesPerLayer()
    {
        var means = new LayerMeans();
        means.AddCosine(3, [1f, 0], [1f, 0]);
        means.AddCosine(3, [1f, 0], [0f, 1]);
        means.Add(5, 0.25);

        Assert.Equal([3, 5], means.Layers);
        Assert.Equal(0.5, means.Mean(3), 12);
        Assert.Equal(2, means.Count(3));
        Assert.Equal(0.25, means.Mean(5), 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => means.Mean(4));
    }

    [Fact]
    public void PerplexityFromLogits()
    {
        // Row 0: p = (1, 3)/4, target 1 → −log ¾. Row 1: p = (½, ½), target 0 → log 2. exp(mean) = sqrt(8/3).
        float[] logits = [0, Ln3, 0, 0];

        Assert.Equal(0.28768207245178085, LanguageModelScore.NegativeLogLikelihood(logits.AsSpan(0, 2), 1), 6);
        Assert.Equal(1.632993161855452, LanguageModelScore.Perplexity(logits, [1, 0], 2), 6);
        Assert.Throws<ArgumentException>(() => LanguageModelScore.Perplexity(logits, [1], 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => LanguageModelScore.NegativeLogLikelihood(logits.AsSpan(0, 2), 2));
    }

    [Fact]
    public void LogSoftmaxIsStableForHugeLogits()
    {
        var destination = new double[3];
        LanguageModelScore.LogSoftmax([1000f, 1000f, float.NegativeInfinity], destination);

        Assert.Equal(-Math.Log(2), destination[0], 12);
        Assert.Equal(-Math.Log(2), destination[1], 12);
        Assert.True(double.IsNegativeInfinity(destination[2]));
        Assert.Equal(Math.Log(2), LanguageModelScore.NegativeLogLikelihood([-1000f, -1000f], 0), 12);
        Assert.Throws<ArgumentException>(() => LanguageModelScore.LogSumExp([float.NaN]));

        var accumulator = new PerplexityAccumulator();
        accumulator.Add([1e30f, 0f], 0);
        Assert.Equal(1.0, accumulator.Perplexity, 12);
    }

    [Fact]
    public void TopMSelectionKeepsTheHeaviestExperts()
    {
        var kept = TopMCurve.Select([4, 7, 9], [0.2f, 0.5f, 0.3f], 2, renormalize: false);
        var renormalized = TopMCurve.Select([4, 7, 9], [0.2f, 0.5f, 0.3f], 2, renormalize: true);

        Assert.Equal([7, 9], kept.Experts);
        Assert.Equal([0.5f, 0.3f], kept.Weights);
        Assert.Equal(0.625f, renormalized.Weights[0], 6); // 0.5 · 1.0 / 0.8
        Assert.Equal(0.375f, renormalized.Weights[1], 6);
        Assert.Equal([7], TopMCurve.Select([4, 7, 9], [0.2f, 0.5f, 0.3f], 1, true).Experts);
        Assert.Throws<ArgumentOutOfRangeException>(() => TopMCurve.Select([4], [1f], 2, true));
    }

    [Fact]
    public void TopMCurveAveragesPerLayerAndM()
    {
        var curve = new TopMCurve();
        curve.Add(0, 1, 0.8);
        curve.Add(0, 1, 0.6);
        curve.Add(0, 2, 0.95);
        curve.Add(1, 1, 0.5);

        Assert.Equal([new TopMPoint(0, 1, 0.7, 2), new TopMPoint(0, 2, 0.95, 1)], curve.Curve(0).Select(p => p with { Mean = Math.Round(p.Mean, 12) }));
        Assert.Equal(3, curve.Points().Count);
    }

    [Fact]
    public void LogitLensReadout()
    {
        float[] logits = [1, 3, 3, 2];

        var top = LogitLens.TopTokens(logits, 3);

        // Z = e + 2e³ + e²: p(1) = p(2) = e³/Z, p(3) = e²/Z; ties go to the lower id.
        Assert.Equal([1, 2, 3], top.Select(t => t.TokenId));
        Assert.Equal(0.3994863046503027, top[0].Probability, 12);
        Assert.Equal(0.14696279851039795, top[2].Probability, 12);
        Assert.Equal(4, LogitLens.TopTokens(logits, 10).Count);
    }

    [Fact]
    public void LogitLensEntropyAndDivergence()
    {
        float[] layer = [0, Ln3]; // p = (¼, ¾)
        float[] final = [5, 5]; // q = (½, ½)

        Assert.Equal(0.5623351446188083, LogitLens.EntropyNats(layer), 6);
        Assert.Equal(0.8112781244591328, LogitLens.EntropyBits(layer), 6);
        // ¼ ln(¼/½) + ¾ ln(¾/½).
        Assert.Equal(0.13081203594113697, LogitLens.KullbackLeibler(layer, final), 6);
        Assert.Equal(0.0, LogitLens.KullbackLeibler(final, [-7f, -7f]), 12);
        Assert.True(double.IsPositiveInfinity(LogitLens.KullbackLeibler(layer, [0f, float.NegativeInfinity])));
        Assert.Equal(0.0, LogitLens.KullbackLeibler([0f, float.NegativeInfinity], [0f, float.NegativeInfinity]), 12);
    }
}
