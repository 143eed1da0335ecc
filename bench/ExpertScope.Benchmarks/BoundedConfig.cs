using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace ExpertScope.Benchmarks;

/// <summary>
/// Few, bounded iterations (in process, one launch, two warm-ups, five measured iterations) so the whole suite takes minutes, with
/// allocations and a GFLOP/s column.
/// </summary>
public sealed class BoundedConfig : ManualConfig
{
    public BoundedConfig()
    {
        // In process: no per-run project generation and build, so the suite starts at once from any directory.
        AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(5).WithToolchain(InProcessEmitToolchain.Instance).WithId("bounded"));
        AddDiagnoser(MemoryDiagnoser.Default);
        AddColumn(new GflopsColumn());
    }
}

/// <summary>A benchmark that knows how many floating-point (or integer multiply-add) operations one invocation does.</summary>
public interface IFlopCounter
{
    /// <summary>Operations of one invocation (a multiply-add counts as two).</summary>
    double Operations { get; }
}

/// <summary>GFLOP/s = operations of one invocation / mean time; each benchmark instance is created with its parameters to ask.</summary>
public sealed class GflopsColumn : IColumn
{
    public string Id => nameof(GflopsColumn);

    public string ColumnName => "GFLOP/s";

    public bool AlwaysShow => true;

    public ColumnCategory Category => ColumnCategory.Custom;

    public int PriorityInCategory => 0;

    public bool IsNumeric => true;

    public UnitType UnitType => UnitType.Dimensionless;

    public string Legend => "Operations per invocation (a multiply-add counts as 2) divided by the mean time, in 1e9 per second";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        ArgumentNullException.ThrowIfNull(summary);
        ArgumentNullException.ThrowIfNull(benchmarkCase);
        var report = summary[benchmarkCase];
        if (report?.ResultStatistics is not { } statistics || Activator.CreateInstance(benchmarkCase.Descriptor.Type) is not IFlopCounter counter)
        {
            return "-";
        }

        foreach (var parameter in benchmarkCase.Parameters.Items)
        {
            benchmarkCase.Descriptor.Type.GetProperty(parameter.Name)?.SetValue(counter, parameter.Value);
        }

        double seconds = statistics.Mean * 1e-9;
        return (counter.Operations / seconds / 1e9).ToString("F2", System.Globalization.CultureInfo.InvariantCulture);
    }

    public bool IsAvailable(Summary summary) => true;

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    public override string ToString() => ColumnName;
}
