using System.CommandLine;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Tokenizers;

namespace ExpertScope.Cli;

/// <summary>
/// <c>--chat</c>, <c>--system</c>, <c>--chat-template</c>, <c>--no-chat</c> (generate, trace, steer): each prompt becomes one
/// user turn of the model's chat template (<c>tokenizer.chat_template</c>, recognised as llama.cpp does; see
/// <see cref="ChatTemplate"/>), with the assistant's turn opened, so instruct and reasoning models are measured in the
/// format they were trained on. Whatever the model writes (a reasoning model's think tags included) is kept.
/// </summary>
public sealed class ChatOptions
{
    /// <summary><c>--chat</c>.</summary>
    public Option<bool> Chat { get; } = new("--chat")
    {
        Description = "Wrap each prompt in the model's chat template (tokenizer.chat_template, detected as llama.cpp does) as a user turn and open the assistant's turn.",
    };

    /// <summary><c>--system</c>.</summary>
    public Option<string?> System { get; } = new("--system") { Description = "A system message before each prompt (with --chat)." };

    /// <summary><c>--chat-template</c>.</summary>
    public Option<string?> Template { get; } = new("--chat-template")
    {
        Description = "Use this llama.cpp built-in template instead of the detected one (e.g. chatml, llama3, deepseek3, gpt-oss); implies --chat.",
    };

    /// <summary><c>--no-chat</c>.</summary>
    public Option<bool> NoChat { get; } = new("--no-chat") { Description = "Raw text: no chat template, whatever else is given." };

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.Options.Add(Chat);
        command.Options.Add(System);
        command.Options.Add(Template);
        command.Options.Add(NoChat);
    }

    /// <summary>The template to apply, or null for raw text.</summary>
    /// <exception cref="ExpertScopeException">--system without a template, an unknown or unformatted template.</exception>
    public ChatTemplate? Resolve(ParseResult parse, string modelPath)
    {
        ArgumentNullException.ThrowIfNull(parse);
        string? named = parse.GetValue(Template);
        bool wanted = (parse.GetValue(Chat) || named is not null) && !parse.GetValue(NoChat);
        if (!wanted)
        {
            if (parse.GetValue(System) is not null && !parse.GetValue(NoChat))
            {
                throw new ExpertScopeException("--system needs --chat (or --chat-template).");
            }

            return null;
        }

        if (named is not null)
        {
            try
            {
                return ChatTemplate.FromName(named);
            }
            catch (ArgumentException error)
            {
                throw new ExpertScopeException("--chat-template: " + error.Message);
            }
        }

        using var file = GgufFile.Open(modelPath);
        string template = file.TryGetString("tokenizer.chat_template")
            ?? throw new ExpertScopeException($"{modelPath}: the model has no tokenizer.chat_template; name one with --chat-template or use --no-chat.");
        return ChatTemplate.Detect(template, modelPath);
    }

    /// <summary><paramref name="prompt"/> as a chat turn under <paramref name="template"/>, or unchanged when it is null.</summary>
    public string Apply(ParseResult parse, ChatTemplate? template, string prompt)
    {
        ArgumentNullException.ThrowIfNull(parse);
        return template is null ? prompt : template.FormatPrompt(prompt, parse.GetValue(System));
    }

    /// <summary>A run-settings line for a journal manifest, or null when no template is applied.</summary>
    public string? Describe(ParseResult parse, ChatTemplate? template)
    {
        ArgumentNullException.ThrowIfNull(parse);
        return template is null ? null : $"{template.Name}; system: {parse.GetValue(System) ?? "(none)"}";
    }
}
