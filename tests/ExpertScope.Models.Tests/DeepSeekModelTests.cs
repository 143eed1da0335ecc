using Xunit.Abstractions;

namespace ExpertScope.Models.Tests;

/// <summary>The deepseek2 architecture end to end against llama.cpp's dumps (both golden cases).</summary>
public sealed class DeepSeekModelTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("deepseek2-lite")]
    [InlineData("deepseek3")]
    public void GoldenCase_MatchesLlamaCppAtEverySite(string name)
    {
        var golden = GoldenCase.Load(name);
        float largest = GoldenParity.Check(golden, Tolerances.Float32);
        output.WriteLine($"{name}: largest logit difference {largest:E3}");
    }
}
