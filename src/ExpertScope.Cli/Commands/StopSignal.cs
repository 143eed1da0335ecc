using System.Runtime.InteropServices;

namespace ExpertScope.Cli;

/// <summary>
/// Turns Ctrl+C and SIGTERM into a cancellation token for the lifetime of a long verb, so it can stop at the next unit
/// boundary with its finished work saved. The first Ctrl+C is caught; a second one ends the process as usual.
/// </summary>
internal sealed class StopSignal : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly PosixSignalRegistration? _terminate;

    public StopSignal()
    {
        System.Console.CancelKeyPress += OnCancelKey;
        _terminate = OperatingSystem.IsWindows() ? null : PosixSignalRegistration.Create(PosixSignal.SIGTERM, signal =>
        {
            signal.Cancel = true;
            _stop.Cancel();
        });
    }

    /// <summary>Cancelled on the first Ctrl+C or SIGTERM.</summary>
    public CancellationToken Token => _stop.Token;

    /// <summary>True once a stop was asked for.</summary>
    public bool IsStopRequested => _stop.IsCancellationRequested;

    public void Dispose()
    {
        System.Console.CancelKeyPress -= OnCancelKey;
        _terminate?.Dispose();
        _stop.Dispose();
    }

    private void OnCancelKey(object? sender, ConsoleCancelEventArgs e)
    {
        e.Cancel = !_stop.IsCancellationRequested;
        _stop.Cancel();
    }
}
