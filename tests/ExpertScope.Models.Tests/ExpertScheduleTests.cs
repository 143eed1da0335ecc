using ExpertScope.Models.Blocks;

namespace ExpertScope.Models.Tests;

public sealed class ExpertScheduleTests
{
    private static List<int>?[] Assignments(params int[] counts) =>
        [.. counts.Select(c => c == 0 ? null : Enumerable.Range(0, c).ToList())];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    public void EveryExpertWithTokensIsScheduledExactlyOnce(int threads)
    {
        var random = new Random(threads);
        var counts = Enumerable.Range(0, 64).Select(_ => random.Next(3) == 0 ? 0 : random.Next(1, 120)).ToArray();
        var plan = ExpertSchedule.Plan(Assignments(counts), threads);
        var scheduled = plan.RowParallel.Concat(plan.Groups.SelectMany(g => g)).ToList();
        Assert.Equal(Enumerable.Range(0, 64).Where(e => counts[e] > 0), scheduled.Order());
        Assert.Equal(threads, plan.Groups.Count);
    }

    [Fact]
    public void AnExpertWithMoreThanAThreadsShare_SplitsItsRows()
    {
        var plan = ExpertSchedule.Plan(Assignments(10, 300, 10, 10), threads: 2);
        Assert.Equal([1], plan.RowParallel);
        Assert.Empty(ExpertSchedule.Plan(Assignments(10, 300, 10, 10), threads: 1).RowParallel);
    }

    [Fact]
    public void GroupsCarryAboutEqualTokenCounts()
    {
        var counts = Enumerable.Range(0, 64).Select(e => 20 + (e * 37 % 41)).ToArray();
        var plan = ExpertSchedule.Plan(Assignments(counts), threads: 2);
        var loads = plan.Groups.Select(g => g.Sum(e => counts[e])).ToArray();
        Assert.True(Math.Abs(loads[0] - loads[1]) <= counts.Max(), $"group loads {loads[0]} and {loads[1]}");
    }
}
