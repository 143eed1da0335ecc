namespace ExpertScope.Models.Blocks;

/// <summary>
/// Static partitioning of independent rows across threads. Every output element is computed by exactly one
/// thread with the same arithmetic whatever the thread count, so results are bit-identical for any count.
/// </summary>
public readonly record struct Parallelism
{
    // Below this many multiply-adds a job runs inline: waking workers would cost more than the work.
    private const long MinimumParallelWork = 1 << 15;

    /// <summary>Creates a setting that uses up to <paramref name="threadCount"/> threads.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The count is below 1.</exception>
    public Parallelism(int threadCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threadCount, 1);
        ThreadCount = threadCount;
    }

    /// <summary>Threads to use (at least 1).</summary>
    public int ThreadCount { get; }

    /// <summary>One thread.</summary>
    public static Parallelism Single => new(1);

    /// <summary>One thread per logical processor.</summary>
    public static Parallelism Default => new(Environment.ProcessorCount);

    /// <summary>
    /// Runs <paramref name="body"/> over contiguous chunks <c>[start, end)</c> covering <c>[0, count)</c> on
    /// <see cref="WorkerPool.Shared"/>: a few chunks per thread, claimed by whichever thread is free (the calling thread
    /// takes part; a call from inside a chunk runs inline). Chunk bounds depend only on the count and the thread count.
    /// </summary>
    /// <param name="count">Number of independent rows.</param>
    /// <param name="workPerRow">Rough cost of one row (multiply-adds), used to skip threading for tiny jobs.</param>
    /// <param name="body">Receives <c>(start, end)</c>; it must write only the rows it is given.</param>
    public void For(int count, long workPerRow, Action<int, int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        int threads = Math.Max(1, ThreadCount);
        if (threads == 1 || count < 2 || (long)count * workPerRow < MinimumParallelWork)
        {
            body(0, count);
            return;
        }

        WorkerPool.Shared.Run(count, threads, body);
    }
}
