using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace ExpertScope.Models.Blocks;

/// <summary>
/// Persistent worker threads that run one statically partitioned job at a time. The calling thread takes chunk 0 and
/// worker <c>i</c> takes chunk <c>i</c>; chunk bounds depend only on (item count, chunk count), so every item is
/// handled by exactly one thread with the same arithmetic whatever the thread count. Workers spin briefly after a job
/// (generation issues many small products back to back) and then sleep until the next one.
/// </summary>
public sealed class WorkerPool : IDisposable
{
    // How long an idle worker polls for the next job before sleeping: long enough to bridge the serial work between
    // two products of one token, short enough not to burn a shared core for long once the model goes quiet.
    private static readonly long SpinTicks = Stopwatch.Frequency / 5_000; // 200 µs

    private static readonly Lazy<WorkerPool> SharedPool = new(() => new WorkerPool(0));

    // True on a worker thread, and on a caller thread while it runs its own chunk: a nested call then runs inline
    // instead of waiting for workers that are busy with the outer job.
    [ThreadStatic]
    private static bool t_insidePool;

    private readonly object _dispatchLock = new();
    private readonly object _sleepLock = new();
    private readonly List<Thread> _workers = [];

    // The latest job, published as one immutable reference so a worker never mixes fields of two jobs.
    private Job _job = new(null, 0, 0);
    private int _sleepers;
    private volatile bool _disposed;

    /// <summary>Creates a pool and starts <paramref name="workerCount"/> workers; it grows when a job asks for more.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The count is negative.</exception>
    public WorkerPool(int workerCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(workerCount);
        lock (_dispatchLock)
        {
            EnsureWorkers(workerCount);
        }
    }

    /// <summary>The process-wide pool used by <see cref="Parallelism"/>; its threads are background threads.</summary>
    public static WorkerPool Shared => SharedPool.Value;

    /// <summary>Worker threads started so far (the calling thread is not counted).</summary>
    public int WorkerCount
    {
        get
        {
            lock (_dispatchLock)
            {
                return _workers.Count;
            }
        }
    }

    /// <summary>Whether the current thread is running a chunk of some pool job.</summary>
    public static bool IsInsideJob => t_insidePool;

    /// <summary>Bounds <c>[Start, End)</c> of chunk <paramref name="index"/> when <paramref name="count"/> items are split into <paramref name="chunks"/> contiguous chunks.</summary>
    public static (int Start, int End) ChunkBounds(int count, int chunks, int index) =>
        ((int)((long)count * index / chunks), (int)((long)count * (index + 1) / chunks));

    /// <summary>
    /// Runs <paramref name="body"/> over <c>min(threads, count)</c> contiguous chunks covering <c>[0, count)</c>, the
    /// calling thread taking the first, and returns when all are done. Runs inline as one chunk when only one thread
    /// is wanted or when called from inside a job. If another caller holds the pool, falls back to the .NET thread pool
    /// with the same chunks. An exception thrown by a chunk is rethrown here (several: an <see cref="AggregateException"/>).
    /// </summary>
    /// <param name="count">Number of independent items.</param>
    /// <param name="threads">Threads to use, the caller included.</param>
    /// <param name="body">Receives <c>(start, end)</c>; it must write only the items it is given.</param>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public void Run(int count, int threads, Action<int, int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ObjectDisposedException.ThrowIf(_disposed, this);
        int chunks = Math.Min(Math.Max(1, threads), count);
        if (chunks <= 1 || t_insidePool)
        {
            if (count > 0)
            {
                body(0, count);
            }

            return;
        }

        if (!Monitor.TryEnter(_dispatchLock))
        {
            RunOnThreadPool(count, chunks, body);
            return;
        }

        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            EnsureWorkers(chunks - 1);
            var job = new Job(body, count, chunks);
            Interlocked.Exchange(ref _job, job); // full fence, paired with the sleeper count below
            if (Volatile.Read(ref _sleepers) > 0)
            {
                lock (_sleepLock)
                {
                    Monitor.PulseAll(_sleepLock);
                }
            }

            job.RunChunk(0);
            var wait = new SpinWait();
            while (Volatile.Read(ref job.Remaining) != 0)
            {
                wait.SpinOnce(sleep1Threshold: -1);
            }

            job.ThrowErrors();
        }
        finally
        {
            Monitor.Exit(_dispatchLock);
        }
    }

    /// <summary>Stops and joins the workers. Jobs already running finish first.</summary>
    public void Dispose()
    {
        if (ReferenceEquals(this, SharedPool.IsValueCreated ? SharedPool.Value : null))
        {
            throw new InvalidOperationException("The shared worker pool cannot be disposed.");
        }

        Thread[] workers;
        lock (_dispatchLock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            workers = [.. _workers];
            Interlocked.Exchange(ref _job, new Job(null, 0, 0));
            lock (_sleepLock)
            {
                Monitor.PulseAll(_sleepLock);
            }
        }

        foreach (var worker in workers)
        {
            worker.Join();
        }
    }

    private void EnsureWorkers(int count)
    {
        while (_workers.Count < count)
        {
            int index = _workers.Count + 1;
            var seen = Volatile.Read(ref _job);
            var thread = new Thread(() => WorkerLoop(index, seen))
            {
                IsBackground = true,
                Name = $"ExpertScope worker {index}",
            };
            thread.Start();
            _workers.Add(thread);
        }
    }

    private void WorkerLoop(int index, Job seen)
    {
        t_insidePool = true;
        while (true)
        {
            seen = WaitForJob(seen);
            if (_disposed)
            {
                return;
            }

            if (index < seen.Chunks)
            {
                seen.RunChunk(index);
                Interlocked.Decrement(ref seen.Remaining);
            }
        }
    }

    private Job WaitForJob(Job seen)
    {
        long deadline = Stopwatch.GetTimestamp() + SpinTicks;
        var spinner = new SpinWait();
        Job current;
        while ((current = Volatile.Read(ref _job)) == seen)
        {
            if (Stopwatch.GetTimestamp() < deadline)
            {
                // SpinWait yields the core now and then: on a busy machine the caller may need this very core.
                spinner.SpinOnce(sleep1Threshold: -1);
                continue;
            }

            lock (_sleepLock)
            {
                // Announce the sleep before the last look at the generation; the dispatcher bumps the generation
                // before looking at the sleeper count, so one of the two always sees the other.
                Interlocked.Increment(ref _sleepers);
                if (Volatile.Read(ref _job) == seen)
                {
                    Monitor.Wait(_sleepLock);
                }

                Interlocked.Decrement(ref _sleepers);
            }

            deadline = Stopwatch.GetTimestamp() + SpinTicks;
            spinner.Reset();
        }

        return current;
    }

    private static void RunOnThreadPool(int count, int chunks, Action<int, int> body)
    {
        try
        {
            Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = chunks }, chunk =>
            {
                var (start, end) = ChunkBounds(count, chunks, chunk);
                body(start, end);
            });
        }
        catch (AggregateException error) when (error.InnerExceptions.Count == 1)
        {
            ExceptionDispatchInfo.Throw(error.InnerExceptions[0]);
        }
    }

    private sealed class Job(Action<int, int>? body, int count, int chunks)
    {
        private readonly Exception?[] _errors = new Exception?[chunks];

        public readonly int Chunks = chunks;

        // Chunks other than the caller's that have not finished yet.
        public int Remaining = Math.Max(0, chunks - 1);

        public void RunChunk(int index)
        {
            bool wasInside = t_insidePool;
            t_insidePool = true;
            try
            {
                var (start, end) = ChunkBounds(count, Chunks, index);
                body!(start, end);
            }
            catch (Exception error)
            {
                _errors[index] = error;
            }
            finally
            {
                t_insidePool = wasInside;
            }
        }

        public void ThrowErrors()
        {
            var errors = _errors.OfType<Exception>().ToList();
            if (errors.Count == 1)
            {
                ExceptionDispatchInfo.Throw(errors[0]);
            }

            if (errors.Count > 1)
            {
                throw new AggregateException(errors);
            }
        }
    }
}
