using System.Text.Json;
using ExpertScope.Testing;

namespace ExpertScope.Tokenizers.Tests;

/// <summary>The oracle cases in shared/golden/tokenizers: what llama.cpp's llama_tokenize returned.</summary>
internal static class GoldenVectors
{
    public static string Folder => GoldenData.GoldenPath("tokenizers");

    /// <summary>Every vocabulary (file stem) that has a case file.</summary>
    public static IEnumerable<string> Vocabularies =>
        Directory.GetFiles(Folder, "*.json").Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal)!;

    public static GgufTokenizer LoadTokenizer(string vocabulary)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, vocabulary + ".json")));
        string model = document.RootElement.GetProperty("model").GetString()!;
        return GgufTokenizer.Load(Path.Combine(Folder, model));
    }

    public static IReadOnlyList<Case> LoadCases(string vocabulary)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, vocabulary + ".json")));
        return document.RootElement.GetProperty("cases").EnumerateArray()
            .Select(c => new Case(
                c.GetProperty("text").GetString()!,
                c.GetProperty("add_special").GetBoolean(),
                c.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray()))
            .ToList();
    }

    /// <summary>The raw strings of strings.txt (separated by lines "=====").</summary>
    public static IReadOnlyList<string> LoadStrings()
    {
        string text = File.ReadAllText(Path.Combine(Folder, "strings.txt"));
        return text.Split("\n=====\n");
    }

    public sealed record Case(string Text, bool AddSpecial, int[] Ids);
}
