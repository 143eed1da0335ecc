using System.CommandLine;
using ExpertScope.Cli.Serving;

namespace ExpertScope.Cli;

/// <summary>
/// <c>serve</c>: an OpenAI-compatible <c>/v1/completions</c> and <c>/tokenize</c> over the engine that return routed
/// experts in vLLM's layout (SGLang's when a request asks <c>return_routed_experts</c>). Loopback unless
/// <c>--allow-remote</c>. Runs until Ctrl+C.
/// </summary>
public static class ServeCommand
{
    /// <summary>Creates the verb.</summary>
    public static Command Create(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var model = new ModelOptions();
        var host = new Option<string>("--host") { Description = "Address to listen on (a non-loopback address needs --allow-remote).", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Port (0: any free port; the address is printed).", DefaultValueFactory = _ => 8000 };
        var allowRemote = new Option<bool>("--allow-remote") { Description = "Allow a non-loopback --host (there is no authentication)." };
        var name = new Option<string?>("--served-model-name") { Description = "Model name in responses (default: the GGUF file name)." };
        var maxBytes = new Option<long>("--max-request-bytes") { Description = "Largest request body.", DefaultValueFactory = _ => 1 << 20 };
        var maxPrompt = new Option<int>("--max-prompt-tokens") { Description = "Longest prompt (never beyond the model's context).", DefaultValueFactory = _ => 4096 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Largest max_tokens of a request.", DefaultValueFactory = _ => 64 };
        var command = new Command("serve", "Serve /v1/completions and /tokenize with routed experts in vLLM's (or SGLang's) layout, from the engine.");
        model.AddTo(command);
        foreach (var option in new Option[] { host, port, allowRemote, name, maxBytes, maxPrompt, maxTokens })
        {
            command.Options.Add(option);
        }

        command.SetAction(parse => context.Guard(() =>
        {
            using var moe = model.Load(parse);
            var options = new ServeOptions
            {
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                AllowRemote = parse.GetValue(allowRemote),
                ModelName = parse.GetValue(name) ?? Path.GetFileName(moe.FilePath),
                MaxRequestBytes = parse.GetValue(maxBytes),
                MaxPromptTokens = parse.GetValue(maxPrompt),
                MaxNewTokens = parse.GetValue(maxTokens),
                Threads = model.ThreadCount(parse),
            };
            using var stop = new StopSignal();
            var app = RoutingServer.Build(moe, options, context.Error);
            app.StartAsync(stop.Token).GetAwaiter().GetResult();
            context.Output.WriteLine($"listening on {RoutingServer.ListeningAddress(app)} (model '{options.ModelName}'); Ctrl+C stops");
            context.Output.Flush();
            try
            {
                Task.Delay(Timeout.Infinite, stop.Token).GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C or SIGTERM: a normal end.
            }

            app.StopAsync(CancellationToken.None).GetAwaiter().GetResult();
            app.DisposeAsync().AsTask().GetAwaiter().GetResult();
            return 0;
        }));
        return command;
    }
}
