using System.Diagnostics;
using System.Globalization;

namespace ExpertScope.Experiments.Runs;

/// <summary>
/// Where a long run reports its progress. The CLI plugs in a Spectre.Console progress display; library code
/// and tests use <see cref="TextProgressSink"/> or <see cref="NullProgressSink"/>.
/// </summary>
public interface IProgressSink
{
    /// <summary>Starts a task with a description and, when known, the number of items it will count.</summary>
    /// <param name="description">What is being done (<c>tracing</c>).</param>
    /// <param name="total">Items in all, or null when unknown.</param>
    /// <param name="alreadyDone">Items finished by an earlier attempt of a resumed run (not counted in the rate).</param>
    /// <param name="unit">What an item is, plural (<c>sequences</c>).</param>
    /// <returns>The task to advance; dispose it (or call <see cref="IProgressTask.Complete"/>) when done.</returns>
    IProgressTask StartTask(string description, long? total, long alreadyDone = 0, string unit = "items");
}

/// <summary>One task of an <see cref="IProgressSink"/>.</summary>
public interface IProgressTask : IDisposable
{
    /// <summary>Counts <paramref name="count"/> more finished items.</summary>
    void Advance(long count = 1);

    /// <summary>Marks the task finished (disposing does the same).</summary>
    void Complete();
}

/// <summary>A sink that shows nothing.</summary>
public sealed class NullProgressSink : IProgressSink
{
    /// <summary>The one instance.</summary>
    public static NullProgressSink Instance { get; } = new();

    private NullProgressSink()
    {
    }

    /// <inheritdoc/>
    public IProgressTask StartTask(string description, long? total, long alreadyDone = 0, string unit = "items") => NullTask.Instance;

    private sealed class NullTask : IProgressTask
    {
        public static NullTask Instance { get; } = new();

        public void Advance(long count = 1)
        {
        }

        public void Complete()
        {
        }

        public void Dispose()
        {
        }
    }
}

/// <summary>
/// Prints plain progress lines to a <see cref="TextWriter"/>, at most one per <see cref="MinimumInterval"/>
/// plus a final line, e.g. <c>tracing: 120/1000 sequences (12.0%), 3.40 sequences/s, about 4m 19s left</c>.
/// The rate counts only items finished by this attempt, so a resumed run reports its real speed.
/// </summary>
public sealed class TextProgressSink : IProgressSink
{
    private readonly TextWriter _writer;
    private readonly TimeProvider _time;

    /// <summary>Creates the sink.</summary>
    /// <param name="writer">Where lines go (usually standard error).</param>
    /// <param name="minimumInterval">Least time between two progress lines of a task; default 2 seconds.</param>
    /// <param name="timeProvider">The clock; <see cref="TimeProvider.System"/> by default (tests pass their own).</param>
    public TextProgressSink(TextWriter writer, TimeSpan? minimumInterval = null, TimeProvider? timeProvider = null)
    {
        _writer = writer ?? throw new ArgumentNullException(nameof(writer));
        _time = timeProvider ?? TimeProvider.System;
        MinimumInterval = minimumInterval ?? TimeSpan.FromSeconds(2);
    }

    /// <summary>Least time between two progress lines of one task.</summary>
    public TimeSpan MinimumInterval { get; }

    /// <inheritdoc/>
    public IProgressTask StartTask(string description, long? total, long alreadyDone = 0, string unit = "items")
    {
        ArgumentNullException.ThrowIfNull(description);
        return new TextTask(this, description, total, alreadyDone, unit);
    }

    /// <summary>Formats a duration the way progress lines show it (<c>45s</c>, <c>4m 19s</c>, <c>2h 05m</c>).</summary>
    public static string FormatDuration(TimeSpan duration)
    {
        var seconds = (long)Math.Round(Math.Max(0, duration.TotalSeconds));
        return seconds switch
        {
            < 60 => string.Create(CultureInfo.InvariantCulture, $"{seconds}s"),
            < 3600 => string.Create(CultureInfo.InvariantCulture, $"{seconds / 60}m {seconds % 60:00}s"),
            _ => string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600}h {seconds / 60 % 60:00}m"),
        };
    }

    private sealed class TextTask : IProgressTask
    {
        private readonly TextProgressSink _sink;
        private readonly string _description;
        private readonly long? _total;
        private readonly long _alreadyDone;
        private readonly string _unit;
        private readonly long _started;
        private long _done;
        private long _lastPrinted;
        private bool _completed;

        public TextTask(TextProgressSink sink, string description, long? total, long alreadyDone, string unit)
        {
            _sink = sink;
            _description = description;
            _total = total;
            _alreadyDone = alreadyDone;
            _unit = unit;
            _started = sink._time.GetTimestamp();
            _lastPrinted = _started;
            _done = alreadyDone;
            if (alreadyDone > 0)
            {
                Print(_started, suffix: " (resumed)");
            }
        }

        public void Advance(long count = 1)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(count);
            _done += count;
            var now = _sink._time.GetTimestamp();
            if (_sink._time.GetElapsedTime(_lastPrinted, now) >= _sink.MinimumInterval)
            {
                Print(now, suffix: string.Empty);
            }
        }

        public void Complete()
        {
            if (_completed)
            {
                return;
            }

            _completed = true;
            var now = _sink._time.GetTimestamp();
            Print(now, suffix: ", done in " + FormatDuration(_sink._time.GetElapsedTime(_started, now)));
        }

        public void Dispose() => Complete();

        private void Print(long now, string suffix)
        {
            _lastPrinted = now;
            var elapsed = _sink._time.GetElapsedTime(_started, now);
            var line = new System.Text.StringBuilder();
            line.Append(CultureInfo.InvariantCulture, $"{_description}: {_done}");
            if (_total is { } total)
            {
                line.Append(CultureInfo.InvariantCulture, $"/{total} {_unit}");
                if (total > 0)
                {
                    line.Append(CultureInfo.InvariantCulture, $" ({100.0 * _done / total:0.0}%)");
                }
            }
            else
            {
                line.Append(' ').Append(_unit);
            }

            var fresh = _done - _alreadyDone;
            if (elapsed > TimeSpan.Zero && fresh > 0)
            {
                var rate = fresh / elapsed.TotalSeconds;
                line.Append(CultureInfo.InvariantCulture, $", {rate:0.00} {_unit}/s");
                if (_total is { } t && t > _done && !_completed)
                {
                    line.Append(", about ").Append(FormatDuration(TimeSpan.FromSeconds((t - _done) / rate))).Append(" left");
                }
            }

            line.Append(suffix);
            Debug.Assert(!line.ToString().Contains('\n', StringComparison.Ordinal), "progress lines are single lines");
            _sink._writer.WriteLine(line.ToString());
            _sink._writer.Flush();
        }
    }
}
