using ExpertScope.Experiments.RoutingSources;
using ExpertScope.Formats;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models;
using ExpertScope.Tokenizers;

namespace ExpertScope.Experiments.Probes;

/// <summary>
/// The local model file and the routing source a probe uses. With the engine the GGUF is loaded as a model; with a
/// server it is read only for its tokenizer (target positions), k, N and MoE blocks, so a vocabulary-and-metadata
/// GGUF of a model too large for this machine is enough.
/// </summary>
public sealed class ProbeRoutingSource : IDisposable
{
    private readonly MoeModel? _model;
    private readonly GgufFile? _file;
    private readonly ServerRoutingSource? _server;

    private ProbeRoutingSource(IRoutingSource source, ModelInfo info, GgufTokenizer tokenizer, int contextLength, MoeModel? model, GgufFile? file, ServerRoutingSource? server)
    {
        Source = source;
        Info = info;
        Tokenizer = tokenizer;
        ContextLength = contextLength;
        _model = model;
        _file = file;
        _server = server;
    }

    /// <summary>Where routing comes from.</summary>
    public IRoutingSource Source { get; }

    /// <summary>The local GGUF's summary.</summary>
    public ModelInfo Info { get; }

    /// <summary>The tokenizer that places target words (the served model's own, from the local GGUF).</summary>
    public GgufTokenizer Tokenizer { get; }

    /// <summary>Longest prompt in tokens.</summary>
    public int ContextLength { get; }

    /// <summary>Opens the engine, or the server client, as <paramref name="settings"/> say.</summary>
    /// <param name="modelPath">The GGUF.</param>
    /// <param name="settings">The probe settings (<see cref="ProbeSettings.Server"/>, <see cref="ProbeSettings.IdsOnly"/>).</param>
    /// <param name="handler">HTTP handler for the server client (tests); null for sockets.</param>
    public static ProbeRoutingSource Open(string modelPath, ProbeSettings settings, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.Server is { } server)
        {
            var file = GgufFile.Open(modelPath);
            try
            {
                var info = ModelInfo.FromGguf(file);
                var client = server.CreateSource(file, info, handler);
                var context = info.Hyperparameters.ContextLength is { } length ? (int)Math.Min(length, int.MaxValue) : int.MaxValue;
                return new ProbeRoutingSource(client, info, GgufTokenizer.FromGguf(file), context, null, file, client);
            }
            catch
            {
                file.Dispose();
                throw;
            }
        }

        var model = MoeModel.Load(modelPath, new ModelLoadOptions { FloatArithmetic = settings.FloatArithmetic, Attention = settings.Attention });
        try
        {
            IRoutingSource engine = new EngineRoutingSource(model, settings.ThreadCount);
            return new ProbeRoutingSource(settings.IdsOnly ? new IdsOnlyRoutingSource(engine) : engine, ModelInfo.FromGguf(model.File),
                model.Tokenizer, model.Hyperparameters.ContextLength, model, null, null);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Releases the model or file and the HTTP client.</summary>
    public void Dispose()
    {
        _server?.Dispose();
        _model?.Dispose();
        _file?.Dispose();
    }
}
