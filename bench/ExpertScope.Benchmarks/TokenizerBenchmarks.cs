using BenchmarkDotNet.Attributes;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models.Synthetic;
using ExpertScope.Tokenizers;

namespace ExpertScope.Benchmarks;

/// <summary>
/// Loading a real-sized byte-level BPE vocabulary (256k tokens, 250k merges, as the largest MoE vocabularies) from a
/// GGUF file: opening and validating the file, then building the tokenizer. The foundation issue asks for "well under a
/// second"; this measures it.
/// </summary>
[Config(typeof(BoundedConfig))]
public class TokenizerBenchmarks : IDisposable
{
    private string _path = string.Empty;

    [Params(256_000)]
    public int VocabularySize { get; set; }

    [GlobalSetup]
    public void WriteVocabulary()
    {
        _path = Path.Combine(Path.GetTempPath(), $"expertscope-bench-vocab-{VocabularySize}.gguf");
        // The 256 byte symbols, then merges of two earlier (mostly short) tokens, each adding one token.
        var random = new Random(20261124);
        var tokens = ByteLevelBpeVocabulary.ByteSymbols().Select(c => c.ToString()).ToList();
        var known = new HashSet<string>(tokens, StringComparer.Ordinal);
        var merges = new List<string>(VocabularySize);
        while (tokens.Count < VocabularySize - 2)
        {
            string left = tokens[random.Next(Math.Min(tokens.Count, 256 + (merges.Count / 4)))];
            string right = tokens[random.Next(Math.Min(tokens.Count, 256 + (merges.Count / 4)))];
            string merged = left + right;
            if (merged.Length <= 16 && known.Add(merged))
            {
                tokens.Add(merged);
                merges.Add(left + " " + right);
            }
        }

        tokens.Add("<s>");
        tokens.Add("</s>");
        using var writer = GgufWriter.Create(_path);
        writer.SetMetadata("general.architecture", GgufValue.Create("llama"));
        writer.SetMetadata("tokenizer.ggml.model", GgufValue.Create("gpt2"));
        writer.SetMetadata("tokenizer.ggml.pre", GgufValue.Create("llama-bpe"));
        writer.SetMetadata("tokenizer.ggml.tokens", GgufValue.CreateArray(tokens.ToArray()));
        writer.SetMetadata("tokenizer.ggml.token_type", GgufValue.CreateArray(tokens.Select((_, i) => i >= tokens.Count - 2 ? 3 : 1).ToArray()));
        writer.SetMetadata("tokenizer.ggml.merges", GgufValue.CreateArray(merges.ToArray()));
        writer.SetMetadata("tokenizer.ggml.bos_token_id", GgufValue.Create((uint)(tokens.Count - 2)));
        writer.SetMetadata("tokenizer.ggml.eos_token_id", GgufValue.Create((uint)(tokens.Count - 1)));
        writer.Finish();
    }

    [Benchmark]
    public int OpenAndBuild()
    {
        using var file = GgufFile.Open(_path);
        return GgufTokenizer.FromGguf(file).VocabularySize;
    }

    [GlobalCleanup]
    public void Dispose()
    {
        File.Delete(_path);
        GC.SuppressFinalize(this);
    }
}
