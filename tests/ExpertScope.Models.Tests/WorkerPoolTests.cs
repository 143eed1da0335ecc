using ExpertScope.Models.Blocks;

namespace ExpertScope.Models.Tests;

public sealed class WorkerPoolTests
{
    [Fact]
    public void ChunksCoverEveryItemExactlyOnce()
    {
        using var pool = new WorkerPool(0);
        foreach (int count in new[] { 0, 1, 2, 3, 7, 8, 64, 100, 1001, 4096 })
        {
            foreach (int threads in new[] { 1, 2, 3, 4, 5, 8, 13 })
            {
                var hits = new int[count];
                var chunks = new List<(int Start, int End)>();
                pool.Run(count, threads, (start, end) =>
                {
                    lock (chunks)
                    {
                        chunks.Add((start, end));
                    }

                    for (int i = start; i < end; i++)
                    {
                        Interlocked.Increment(ref hits[i]);
                    }
                });

                Assert.All(hits, hit => Assert.Equal(1, hit));
                int expectedChunks = WorkerPool.PieceCount(count, threads);
                Assert.Equal(count == 0 ? 0 : threads == 1 || count == 1 ? 1 : Math.Min(count, 4 * Math.Min(threads, count)), expectedChunks);
                Assert.Equal(expectedChunks, chunks.Count);
                for (int chunk = 0; chunk < expectedChunks; chunk++)
                {
                    Assert.Contains(WorkerPool.ChunkBounds(count, expectedChunks, chunk), chunks);
                }
            }
        }
    }

    [Fact]
    public void ChunkBoundsDependOnlyOnCountAndChunks()
    {
        for (int count = 1; count < 300; count += 7)
        {
            for (int chunks = 1; chunks <= Math.Min(count, 17); chunks++)
            {
                int next = 0;
                for (int chunk = 0; chunk < chunks; chunk++)
                {
                    var (start, end) = WorkerPool.ChunkBounds(count, chunks, chunk);
                    Assert.Equal(next, start);
                    Assert.True(end > start, $"chunk {chunk} of {chunks} over {count} is empty");
                    next = end;
                }

                Assert.Equal(count, next);
            }
        }
    }

    [Fact]
    public void WorkerExceptionReachesCaller()
    {
        using var pool = new WorkerPool(3);
        var error = Assert.Throws<InvalidOperationException>(() => pool.Run(4, 4, (start, _) =>
        {
            if (start == 3)
            {
                throw new InvalidOperationException("chunk 3 failed");
            }
        }));
        Assert.Equal("chunk 3 failed", error.Message);

        // Several failing chunks come back together; the pool stays usable afterwards.
        var all = Assert.Throws<AggregateException>(() => pool.Run(4, 4, (start, _) => throw new ArgumentException($"{start}")));
        Assert.Equal(["0", "1", "2", "3"], all.InnerExceptions.Select(e => e.Message).Order());
        int done = 0;
        pool.Run(4, 4, (start, end) => Interlocked.Add(ref done, end - start));
        Assert.Equal(4, done);
    }

    [Fact]
    public void NestedCallsRunInline()
    {
        using var pool = new WorkerPool(0);
        var outer = new int[8];
        var innerThreads = new int[8];
        pool.Run(8, 4, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                Assert.True(WorkerPool.IsInsideJob);
                int thread = Environment.CurrentManagedThreadId;
                int innerChunks = 0;
                pool.Run(10, 4, (innerStart, innerEnd) =>
                {
                    innerChunks++;
                    Assert.Equal((0, 10), (innerStart, innerEnd));
                    Assert.Equal(thread, Environment.CurrentManagedThreadId);
                });
                innerThreads[i] = innerChunks;
                outer[i]++;
            }
        });

        Assert.All(outer, hit => Assert.Equal(1, hit));
        Assert.All(innerThreads, chunks => Assert.Equal(1, chunks));
        Assert.False(WorkerPool.IsInsideJob);
    }

    [Fact]
    public async Task DisposeStopsWorkersAndRejectsLaterJobs()
    {
        var pool = new WorkerPool(2);
        int done = 0;
        pool.Run(6, 3, (start, end) => Interlocked.Add(ref done, end - start));
        Assert.Equal(6, done);
        Assert.Equal(2, pool.WorkerCount);

        await Task.Run(pool.Dispose).WaitAsync(TimeSpan.FromSeconds(30));
        pool.Dispose(); // a second dispose does nothing
        Assert.Throws<ObjectDisposedException>(() => pool.Run(6, 3, (_, _) => { }));
        Assert.Throws<InvalidOperationException>(WorkerPool.Shared.Dispose);
    }

    [Fact]
    public async Task ConcurrentCallersEachGetEveryItem()
    {
        using var pool = new WorkerPool(2);
        var tasks = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (int round = 0; round < 200; round++)
            {
                var hits = new int[37];
                pool.Run(hits.Length, 3, (start, end) =>
                {
                    for (int i = start; i < end; i++)
                    {
                        hits[i]++;
                    }
                });
                Assert.All(hits, hit => Assert.Equal(1, hit));
            }
        })).ToArray();
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60));
    }

    [Fact]
    public void AThreadHeldUpKeepsOnlyItsOwnPiece()
    {
        // A worker that stalls in its piece (as when the OS sets it aside) leaves every other piece to the caller.
        using var pool = new WorkerPool(1);
        int caller = Environment.CurrentManagedThreadId;
        int pieces = WorkerPool.PieceCount(64, 2);
        int byCaller = 0;
        int byWorker = 0;
        pool.Run(64, 2, (start, end) =>
        {
            if (Environment.CurrentManagedThreadId == caller)
            {
                Interlocked.Increment(ref byCaller);
                return;
            }

            SpinWait.SpinUntil(() => Volatile.Read(ref byCaller) == pieces - 1, TimeSpan.FromSeconds(10));
            Interlocked.Increment(ref byWorker);
        });

        Assert.Equal(pieces, byCaller + byWorker);
        Assert.True(byWorker <= 1, $"the stalled worker ran {byWorker} pieces");
    }

    [Fact]
    public void ParallelismGivesSameBitsForAnyThreadCount()
    {
        var data = Enumerable.Range(0, 5000).Select(i => MathF.Sin(i * 0.37f)).ToArray();
        float[] Run(int threads)
        {
            var output = new float[257];
            new Parallelism(threads).For(output.Length, 1 << 12, (start, end) =>
            {
                for (int o = start; o < end; o++)
                {
                    float sum = 0;
                    for (int i = o; i < data.Length; i += 3)
                    {
                        sum += data[i] * (o + 1);
                    }

                    output[o] = sum;
                }
            });
            return output;
        }

        var single = Run(1);
        foreach (int threads in new[] { 2, 3, 4, 7, 16 })
        {
            Assert.Equal(single, Run(threads));
        }
    }
}
