using ExpertScope.Cli.Serving;
using ExpertScope.Models;
using ExpertScope.Testing;

namespace ExpertScope.Cli.Tests;

/// <summary><c>expertscope serve</c> on the golden OLMoE model, on a free loopback port.</summary>
internal sealed class LoopbackServer : IAsyncDisposable
{
    private readonly MoeModel _model;
    private readonly Microsoft.AspNetCore.Builder.WebApplication _app;

    private LoopbackServer(MoeModel model, Microsoft.AspNetCore.Builder.WebApplication app)
    {
        _model = model;
        _app = app;
        Address = RoutingServer.ListeningAddress(app);
        var moe = Formats.ModelInfo.FromGguf(model.File).Moe!;
        Layers = moe.MoeBlockCount;
        TopK = (int)moe.ExpertUsedCount!.Value;
        ExpertCount = (int)moe.ExpertCount;
    }

    public string Address { get; }

    public int Layers { get; }

    public int TopK { get; }

    public int ExpertCount { get; }

    public static async Task<LoopbackServer> StartAsync(long maxRequestBytes = 1 << 20)
    {
        var model = MoeModel.Load(GoldenData.GoldenPath("models", "olmoe", "model.gguf"));
        var app = RoutingServer.Build(model, new ServeOptions { Port = 0, ModelName = "golden", MaxRequestBytes = maxRequestBytes, Threads = 1 }, TextWriter.Null);
        await app.StartAsync();
        return new LoopbackServer(model, app);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _model.Dispose();
    }
}
