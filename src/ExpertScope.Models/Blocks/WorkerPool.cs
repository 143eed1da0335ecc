using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace ExpertScope.Models.Blocks;

/// <summary>
/// Persistent worker threads that run one job at a time. A job's items are cut into a few contiguous pieces per thread
/// whose bounds depend only on (item count, thread count); the calling thread and the workers claim pieces one after
/// another until none is left, so a thread the operating system sets aside for a while (on a shared machine) holds up
/// one small piece instead of its whole share. Every item is still handled by exactly one thread with the same
/// arithmetic, whichever thread that is. Workers spin briefly after a job (generation issues many small products back to
/// back) and then sleep until the next one.
/// </summary>
public sealed class WorkerPool : IDisposable
{
    // How long an idle worker polls for the next job before sleeping: long enough to bridge the serial work between
    // two products of one token, short enough not to burn a shared core for long once the model goes quiet.
    private static readonly long SpinTicks = Stopwatch.Frequency / 5_000; // 200 µs

    private static readonly Lazy<WorkerPool> SharedPool = new(() => new WorkerPool(0));

    // Pieces per participating thread: enough that a delayed thread's last piece is a small part of the job, few enough
    // that the per-piece setup of a product (validation, scratch) stays negligible.
    private const int PiecesPerThread = 4;

    // True on a worker thread, and on a caller thread while it runs its own chunk: a nested call then runs inline
    // instead of waiting for workers that are busy with the outer job.
    [ThreadStatic]
    private static bool t_insidePool;

    private readonly object _dispatchLock = new();
    private readonly object _sleepLock = new();
    private readonly List<Thread> _workers = [];

    // The latest job, published as one immutable reference so a worker never mixes fields of two jobs.
    private Job _job = new(null, 0, 0, 0);
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
    /// Pieces a job of <paramref name="count"/> items is cut into when <paramref name="threads"/> threads take part
    /// (bounds: <see cref="ChunkBounds"/> with this many chunks).
    /// </summary>
    public static int PieceCount(int count, int threads)
    {
        int participants = Math.Min(Math.Max(1, threads), count);
        return participants <= 1 ? Math.Min(1, count) : Math.Min(count, participants * PiecesPerThread);
    }

    /// <summary>
    /// Runs <paramref name="body"/> over <see cref="PieceCount"/> contiguous pieces covering <c>[0, count)</c> on
    /// <c>min(threads, count)</c> threads (the calling thread included), each thread claiming the next unclaimed piece
    /// until none is left, and returns when all are done. Runs inline as one piece when only one thread is wanted or
    /// when called from inside a job. If another caller holds the pool, falls back to the .NET thread pool with the same
    /// pieces. An exception thrown by a piece is rethrown here (several: an <see cref="AggregateException"/>).
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
        int participants = Math.Min(Math.Max(1, threads), count);
        if (participants <= 1 || t_insidePool)
        {
            if (count > 0)
            {
                body(0, count);
            }

            return;
        }

        int pieces = PieceCount(count, threads);
        if (!Monitor.TryEnter(_dispatchLock))
        {
            RunOnThreadPool(count, participants, pieces, body);
            return;
        }

        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            EnsureWorkers(participants - 1);
            var job = new Job(body, count, participants, pieces);
            Interlocked.Exchange(ref _job, job); // full fence, paired with the sleeper count below
            if (Volatile.Read(ref _sleepers) > 0)
            {
                lock (_sleepLock)
                {
                    Monitor.PulseAll(_sleepLock);
                }
            }

            job.RunPieces();
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
            Interlocked.Exchange(ref _job, new Job(null, 0, 0, 0));
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

            if (index < seen.Participants)
            {
                seen.RunPieces();
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

    private static void RunOnThreadPool(int count, int participants, int pieces, Action<int, int> body)
    {
        try
        {
            Parallel.For(0, pieces, new ParallelOptions { MaxDegreeOfParallelism = participants }, piece =>
            {
                var (start, end) = ChunkBounds(count, pieces, piece);
                body(start, end);
            });
        }
        catch (AggregateException error) when (error.InnerExceptions.Count == 1)
        {
            ExceptionDispatchInfo.Throw(error.InnerExceptions[0]);
        }
    }

    private sealed class Job(Action<int, int>? body, int count, int participants, int pieces)
    {
        private readonly Exception?[] _errors = new Exception?[pieces];

        // The next piece to claim; pieces at or past the count are all taken.
        private int _nextPiece;

        /// <summary>Threads taking part: the caller and workers 1 .. Participants - 1.</summary>
        public readonly int Participants = participants;

        // Pieces that have not finished yet (the error array has one slot per piece).
        public int Remaining = Math.Max(0, pieces);

        /// <summary>Claims and runs pieces until none is left.</summary>
        public void RunPieces()
        {
            bool wasInside = t_insidePool;
            t_insidePool = true;
            try
            {
                int piece;
                while ((piece = Interlocked.Increment(ref _nextPiece) - 1) < _errors.Length)
                {
                    try
                    {
                        var (start, end) = ChunkBounds(count, _errors.Length, piece);
                        body!(start, end);
                    }
                    catch (Exception error)
                    {
                        _errors[piece] = error;
                    }

                    Interlocked.Decrement(ref Remaining);
                }
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
