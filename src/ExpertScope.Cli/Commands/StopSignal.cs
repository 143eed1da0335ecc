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
        TestHook.Value?.Invoke(this);
        System.Console.CancelKeyPress += OnCancelKey;
        _terminate = OperatingSystem.IsWindows() ? null : PosixSignalRegistration.Create(PosixSignal.SIGTERM, signal =>
        {
            signal.Cancel = true;
            _stop.Cancel();
        });
    }

    /// <summary>
    /// Tests only: called with every new stop signal of the current async flow, so an in-process test can ask for a
    /// stop exactly as Ctrl+C does without signalling the whole test host.
    /// </summary>
    internal static AsyncLocal<Action<StopSignal>?> TestHook { get; } = new();

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

    /// <summary>Asks for a stop, as the first Ctrl+C does.</summary>
    public void Request() => _stop.Cancel();

    private void OnCancelKey(object? sender, ConsoleCancelEventArgs e)
    {
        e.Cancel = !_stop.IsCancellationRequested;
        _stop.Cancel();
    }
}
