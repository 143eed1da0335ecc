using System.Text;

namespace ExpertScope.Tokenizers;

/// <summary>One turn of a conversation.</summary>
/// <param name="Role"><c>system</c>, <c>user</c> or <c>assistant</c>.</param>
/// <param name="Content">The text.</param>
public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// llama.cpp's built-in chat templates (<c>src/llama-chat.cpp</c>: <c>llm_chat_detect_template</c> and
/// <c>llm_chat_apply_template</c>, as vendored in mybigday/llama.rn at commit 638383c6): a GGUF's
/// <c>tokenizer.chat_template</c> (Jinja text) is recognised by the same substring tests, in the same order, and a
/// conversation is formatted by the same fixed rules, not by a Jinja interpreter. Formatting is ported for the
/// families ExpertScope's models use: ChatML (Qwen, OLMoE-Instruct), Llama 2 / Mistral, Llama 3 and 4, DeepSeek
/// (coder, V2, V3/R1), gpt-oss, Phi 3 and 4, Granite, GLM. The formatted text is tokenized with special tokens parsed
/// and the model's BOS added, as llama.cpp's chat tools do.
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>The template names llama.cpp accepts, in its table order (<c>LLM_CHAT_TEMPLATES</c>).</summary>
    public static IReadOnlyList<string> LlamaCppNames { get; } =
    [
        "chatml", "llama2", "llama2-sys", "llama2-sys-bos", "llama2-sys-strip", "mistral-v1", "mistral-v3", "mistral-v3-tekken",
        "mistral-v7", "mistral-v7-tekken", "phi3", "phi4", "falcon3", "zephyr", "monarch", "gemma", "orion", "openchat", "vicuna",
        "vicuna-orca", "deepseek", "deepseek2", "deepseek3", "deepseek-ocr", "command-r", "llama3", "chatglm3", "chatglm4", "glmedge",
        "minicpm", "exaone3", "exaone4", "exaone-moe", "rwkv-world", "granite", "granite-4.0", "granite-4.1", "gigachat", "megrez",
        "yandex", "bailing", "bailing-think", "bailing2", "llama4", "smolvlm", "hunyuan-moe", "gpt-oss", "hunyuan-dense",
        "hunyuan-vl", "kimi-k2", "seed_oss", "grok-2", "pangu-embedded", "solar-open",
    ];

    /// <summary>The names whose formatting is ported here.</summary>
    public static IReadOnlyList<string> Formatted { get; } =
    [
        "chatml", "llama2", "llama2-sys", "llama2-sys-bos", "llama2-sys-strip", "mistral-v1", "mistral-v3", "mistral-v3-tekken",
        "mistral-v7", "mistral-v7-tekken", "phi3", "phi4", "deepseek", "deepseek2", "deepseek3", "llama3", "llama4", "chatglm4",
        "glmedge", "granite", "granite-4.0", "granite-4.1", "gpt-oss",
    ];

    private ChatTemplate(string name) => Name = name;

    /// <summary>llama.cpp's name of the template (<c>chatml</c>, <c>llama3</c>, ...).</summary>
    public string Name { get; }

    /// <summary>A built-in template by llama.cpp's name (its <c>--chat-template NAME</c>).</summary>
    /// <exception cref="ArgumentException">Not a name whose formatting is ported.</exception>
    public static ChatTemplate FromName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return Formatted.Contains(name)
            ? new ChatTemplate(name)
            : throw new ArgumentException(
                $"chat template '{name}' is not one ExpertScope formats (it formats {string.Join(", ", Formatted)}).", nameof(name));
    }

    /// <summary>
    /// llama.cpp's <c>llm_chat_detect_template</c>: a template text that is itself a name, else the first of its
    /// substring tests that matches; null when none does.
    /// </summary>
    public static string? DetectName(string template)
    {
        ArgumentNullException.ThrowIfNull(template);
        if (LlamaCppNames.Contains(template))
        {
            return template;
        }

        bool Has(string s) => template.Contains(s, StringComparison.Ordinal);
        if (Has("<|im_start|>"))
        {
            return Has("<|im_sep|>") ? "phi4" : Has("<end_of_utterance>") ? "smolvlm" : "chatml";
        }

        if (template.StartsWith("mistral", StringComparison.Ordinal) || Has("[INST]"))
        {
            if (Has("[SYSTEM_PROMPT]"))
            {
                return "mistral-v7";
            }

            if (Has("' [INST] ' + system_message") || Has("[AVAILABLE_TOOLS]"))
            {
                return Has(" [INST]") ? "mistral-v1" : Has("\"[INST]\"") ? "mistral-v3-tekken" : "mistral-v3";
            }

            return Has("content.strip()") ? "llama2-sys-strip"
                : Has("bos_token + '[INST]") ? "llama2-sys-bos"
                : Has("<<SYS>>") ? "llama2-sys"
                : "llama2";
        }

        (Func<bool> Test, string Name)[] chain =
        [
            (() => Has("<|assistant|>") && Has("<|end|>"), "phi3"),
            (() => Has("[gMASK]<sop>"), "chatglm4"),
            (() => Has("<|assistant|>") && Has("<|user|>"), Has("<|tool_declare|>") ? "exaone-moe" : Has("</s>") ? "falcon3" : "glmedge"),
            (() => Has("<|{{ item['role'] }}|>") && Has("<|begin_of_image|>"), "glmedge"),
            (() => Has("<|user|>") && Has("<|endoftext|>"), "zephyr"),
            (() => Has("bos_token + message['role']"), "monarch"),
            (() => Has("<start_of_turn>"), "gemma"),
            (() => Has("'\\n\\nAssistant: ' + eos_token"), "orion"),
            (() => Has("GPT4 Correct "), "openchat"),
            (() => Has("USER: ") && Has("ASSISTANT: "), Has("SYSTEM: ") ? "vicuna-orca" : "vicuna"),
            (() => Has("### Instruction:") && Has("<|EOT|>"), "deepseek"),
            (() => Has("<|START_OF_TURN_TOKEN|>") && Has("<|USER_TOKEN|>"), "command-r"),
            (() => Has("<|start_header_id|>") && Has("<|end_header_id|>"), "llama3"),
            (() => Has("[gMASK]sop"), "chatglm3"),
            (() => Has("<用户>"), "minicpm"),
            (() => Has("'Assistant: ' + message['content'] + eos_token"), "deepseek2"),
            (() => Has("<｜Assistant｜>") && Has("<｜User｜>") && Has("<｜end▁of▁sentence｜>"), "deepseek3"),
            (() => Has("[|system|]") && Has("[|assistant|]") && Has("[|endofturn|]"), Has("[|tool|]") ? "exaone4" : "exaone3"),
            (() => Has("rwkv-world") || Has("{{- 'User: ' + message['content']|trim + '\\n\\n' -}}"), "rwkv-world"),
            (() => Has("<|start_of_role|>"), Has("<tool_call>") || Has("<tools>") ? (Has("g4_default_system_message") ? "granite-4.0" : "granite-4.1") : "granite"),
            (() => Has("message['role'] + additional_special_tokens[0] + message['content'] + additional_special_tokens[1]"), "gigachat"),
            (() => Has("<|role_start|>"), "megrez"),
            (() => Has(" Ассистент:"), "yandex"),
            (() => Has("<role>ASSISTANT</role>") && Has("'HUMAN'"), "bailing"),
            (() => Has("<role>ASSISTANT</role>") && Has("\"HUMAN\"") && Has("<think>"), "bailing-think"),
            (() => Has("<role>ASSISTANT</role>") && Has("<role>HUMAN</role>") && Has("<|role_end|>"), "bailing2"),
            (() => Has("<|header_start|>") && Has("<|header_end|>"), "llama4"),
            (() => Has("<|endofuserprompt|>"), "dots1"),
            (() => Has("<|extra_0|>") && Has("<|extra_4|>"), "hunyuan-moe"),
            (() => Has("<|start|>") && Has("<|channel|>"), "gpt-oss"),
            (() => Has("<｜hy_Assistant｜>") && Has("<｜hy_begin▁of▁sentence｜>"), "hunyuan-vl"),
            (() => Has("<｜hy_Assistant｜>") && Has("<｜hy_place▁holder▁no▁3｜>"), "hunyuan-dense"),
            (() => Has("<|im_assistant|>assistant<|im_middle|>"), "kimi-k2"),
            (() => Has("<seed:bos>"), "seed_oss"),
            (() => Has("'Assistant: '  + message['content'] + '<|separator|>"), "grok-2"),
            (() => Has("[unused9]系统：[unused10]"), "pangu-embedded"),
            (() => Has("<|begin|>") && Has("<|end|>") && Has("<|content|>"), "solar-open"),
        ];
        foreach (var (test, name) in chain)
        {
            if (test())
            {
                return name;
            }
        }

        return null;
    }

    /// <summary>The template a GGUF's <c>tokenizer.chat_template</c> text stands for.</summary>
    /// <param name="template">The template text.</param>
    /// <param name="source">The model file, named in errors.</param>
    /// <exception cref="Core.ExpertScopeException">Not recognised, or recognised as a template whose formatting is not ported.</exception>
    public static ChatTemplate Detect(string template, string source)
    {
        ArgumentNullException.ThrowIfNull(template);
        string? name = DetectName(template);
        if (name is null)
        {
            string head = template.Length > 60 ? template[..60] + "…" : template;
            throw new Core.ExpertScopeException(
                $"{source}: the chat template is not one llama.cpp recognises (it begins \"{head.ReplaceLineEndings(" ")}\"); name one with --chat-template ({string.Join(", ", Formatted)}) or use --no-chat for raw text.");
        }

        if (!Formatted.Contains(name))
        {
            throw new Core.ExpertScopeException(
                $"{source}: the chat template is llama.cpp's '{name}', which ExpertScope does not format; name another with --chat-template or use --no-chat for raw text.");
        }

        return new ChatTemplate(name);
    }

    /// <summary>
    /// llama.cpp's <c>llm_chat_apply_template</c>: the conversation as the model saw it in training, ending with the
    /// assistant's turn opened when <paramref name="addAssistant"/> (and the template has such a prefix).
    /// </summary>
    public string Format(IReadOnlyList<ChatMessage> chat, bool addAssistant = true)
    {
        ArgumentNullException.ThrowIfNull(chat);
        var s = new StringBuilder();
        switch (Name)
        {
            case "chatml":
                foreach (var m in chat)
                {
                    s.Append("<|im_start|>").Append(m.Role).Append('\n').Append(m.Content).Append("<|im_end|>\n");
                }

                Add("<|im_start|>assistant\n");
                break;
            case "mistral-v7" or "mistral-v7-tekken":
            {
                string space = Name == "mistral-v7" ? " " : string.Empty;
                foreach (var m in chat)
                {
                    s.Append(m.Role switch
                    {
                        "system" => $"[SYSTEM_PROMPT]{space}{m.Content}[/SYSTEM_PROMPT]",
                        "user" => $"[INST]{space}{m.Content}[/INST]",
                        _ => $"{space}{m.Content}</s>",
                    });
                }

                break;
            }

            case "mistral-v1" or "mistral-v3" or "mistral-v3-tekken":
            {
                string leading = Name == "mistral-v1" ? " " : string.Empty;
                string trailing = Name == "mistral-v3-tekken" ? string.Empty : " ";
                bool inside = false;
                foreach (var m in chat)
                {
                    if (!inside)
                    {
                        s.Append(leading).Append("[INST]").Append(trailing);
                        inside = true;
                    }

                    if (m.Role == "system")
                    {
                        s.Append(m.Content).Append("\n\n");
                    }
                    else if (m.Role == "user")
                    {
                        s.Append(m.Content).Append(leading).Append("[/INST]");
                    }
                    else
                    {
                        s.Append(trailing).Append(Name == "mistral-v3" ? Trim(m.Content) : m.Content).Append("</s>");
                        inside = false;
                    }
                }

                break;
            }

            case "llama2" or "llama2-sys" or "llama2-sys-bos" or "llama2-sys-strip":
            {
                bool inside = true;
                s.Append("[INST] ");
                foreach (var m in chat)
                {
                    string content = Name == "llama2-sys-strip" ? Trim(m.Content) : m.Content;
                    if (!inside)
                    {
                        inside = true;
                        s.Append(Name == "llama2-sys-bos" ? "<s>[INST] " : "[INST] ");
                    }

                    if (m.Role == "system")
                    {
                        s.Append(Name == "llama2" ? content + "\n" : $"<<SYS>>\n{content}\n<</SYS>>\n\n");
                    }
                    else if (m.Role == "user")
                    {
                        s.Append(content).Append(" [/INST]");
                    }
                    else
                    {
                        s.Append(content).Append("</s>");
                        inside = false;
                    }
                }

                break;
            }

            case "phi3":
                foreach (var m in chat)
                {
                    s.Append("<|").Append(m.Role).Append("|>\n").Append(m.Content).Append("<|end|>\n");
                }

                Add("<|assistant|>\n");
                break;
            case "phi4":
                foreach (var m in chat)
                {
                    s.Append("<|im_start|>").Append(m.Role).Append("<|im_sep|>").Append(m.Content).Append("<|im_end|>");
                }

                Add("<|im_start|>assistant<|im_sep|>");
                break;
            case "deepseek":
                foreach (var m in chat)
                {
                    s.Append(m.Role switch
                    {
                        "system" => m.Content,
                        "user" => $"### Instruction:\n{m.Content}\n",
                        "assistant" => $"### Response:\n{m.Content}\n<|EOT|>\n",
                        _ => string.Empty,
                    });
                }

                Add("### Response:\n");
                break;
            case "deepseek2":
                foreach (var m in chat)
                {
                    s.Append(m.Role switch
                    {
                        "system" => m.Content + "\n\n",
                        "user" => $"User: {m.Content}\n\n",
                        "assistant" => $"Assistant: {m.Content}<｜end▁of▁sentence｜>",
                        _ => string.Empty,
                    });
                }

                Add("Assistant:");
                break;
            case "deepseek3":
                foreach (var m in chat)
                {
                    s.Append(m.Role switch
                    {
                        "system" => m.Content + "\n\n",
                        "user" => "<｜User｜>" + m.Content,
                        "assistant" => $"<｜Assistant｜>{m.Content}<｜end▁of▁sentence｜>",
                        _ => string.Empty,
                    });
                }

                Add("<｜Assistant｜>");
                break;
            case "llama3":
                foreach (var m in chat)
                {
                    s.Append("<|start_header_id|>").Append(m.Role).Append("<|end_header_id|>\n\n").Append(Trim(m.Content)).Append("<|eot_id|>");
                }

                Add("<|start_header_id|>assistant<|end_header_id|>\n\n");
                break;
            case "llama4":
                foreach (var m in chat)
                {
                    s.Append("<|header_start|>").Append(m.Role).Append("<|header_end|>\n\n").Append(Trim(m.Content)).Append("<|eot|>");
                }

                Add("<|header_start|>assistant<|header_end|>\n\n");
                break;
            case "chatglm4":
                s.Append("[gMASK]<sop>");
                foreach (var m in chat)
                {
                    s.Append("<|").Append(m.Role).Append("|>\n").Append(m.Content);
                }

                Add("<|assistant|>\n");
                break;
            case "glmedge":
                foreach (var m in chat)
                {
                    s.Append("<|").Append(m.Role).Append("|>\n").Append(m.Content);
                }

                Add("<|assistant|>");
                break;
            case "granite" or "granite-4.0" or "granite-4.1":
                foreach (var m in chat)
                {
                    if (Name == "granite")
                    {
                        s.Append("<|start_of_role|>").Append(m.Role).Append("<|end_of_role|>");
                        if (m.Role == "assistant_tool_call")
                        {
                            s.Append("<|tool_call|>");
                        }
                    }
                    else
                    {
                        s.Append(m.Role == "assistant_tool_call" ? "<|start_of_role|>assistant<|end_of_role|><|tool_call|>" : $"<|start_of_role|>{m.Role}<|end_of_role|>");
                    }

                    s.Append(m.Content).Append("<|end_of_text|>\n");
                }

                Add("<|start_of_role|>assistant<|end_of_role|>");
                break;
            case "gpt-oss":
                foreach (var m in chat)
                {
                    s.Append("<|start|>").Append(m.Role).Append("<|message|>").Append(m.Content).Append(m.Role == "assistant" ? "<|return|>" : "<|end|>");
                }

                Add("<|start|>assistant");
                break;
            default:
                throw new InvalidOperationException($"no formatting for '{Name}'.");
        }

        return s.ToString();

        void Add(string prefix)
        {
            if (addAssistant)
            {
                s.Append(prefix);
            }
        }
    }

    /// <summary>A prompt as one user turn, after an optional system turn.</summary>
    public string FormatPrompt(string prompt, string? system = null)
    {
        var chat = new List<ChatMessage>();
        if (!string.IsNullOrEmpty(system))
        {
            chat.Add(new ChatMessage("system", system));
        }

        chat.Add(new ChatMessage("user", prompt));
        return Format(chat);
    }

    /// <summary>llama-chat.cpp's <c>trim</c>: drops ASCII whitespace (C <c>isspace</c>) at both ends.</summary>
    private static string Trim(string text) => text.Trim(' ', '\t', '\n', '\v', '\f', '\r');
}
