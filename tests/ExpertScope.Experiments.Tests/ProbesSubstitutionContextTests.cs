using System.IO.Compression;
using System.Text;
using System.Text.Json;
using ExpertScope.Experiments.Probes;
using ExpertScope.Testing;

namespace ExpertScope.Experiments.Tests;

/// <summary>
/// The substitution probe end to end on a SWORDS-format file with a few contexts and many substitutes each, on a
/// random-weight model: pairs.csv carries the context, and the per-context test equals R's on that file.
/// </summary>
public sealed class ProbesSubstitutionContextTests
{
    private static readonly (string Context, string Target, string[] Similar, string[] Dissimilar)[] Contexts =
    [
        ("The bank raised its interest rates again.", "bank", ["lender", "institution", "firm", "company", "banker", "group"], ["shore", "edge", "slope", "side"]),
        ("She will play the piano at the concert.", "play", ["perform", "render", "present", "execute", "do", "give"], ["toy", "gamble", "bet", "trifle"]),
        ("He took a long walk through the quiet park.", "walk", ["stroll", "hike", "ramble", "wander", "saunter", "trek"], ["path", "gait", "sphere", "field"]),
        ("The light in the kitchen was too bright.", "light", ["lamp", "glow", "lighting", "bulb", "beam", "illumination"], ["feather", "match", "flame", "window"]),
        ("They need a strong leader for the team.", "strong", ["powerful", "firm", "forceful", "able", "tough", "capable"], ["pungent", "potent", "heavy", "stiff"]),
    ];

    [Fact]
    public async Task PerContextTestOnRandomWeightsEqualsRFromPairsCsv()
    {
        using var temp = new TempDirectory();
        WriteSwords(Path.Combine(temp.Path, "data", "swords", "swords-v1.1_dev.json.gz"));
        var settings = new ProbeSettings
        {
            Kind = ProbeKind.Substitution, Dataset = "swords:dev", DataFolder = Path.Combine(temp.Path, "data"), Seed = 1, BootstrapResamples = 200,
        };
        var folder = Path.Combine(temp.Path, "out");
        var outcome = await ProbeExperiment.RunAsync(GoldenData.GoldenPath("models", "olmoe", "model.gguf"), settings, folder);
        Assert.True(outcome.Model.HasRandomWeights);

        // pairs.csv: every data-set pair and control names its context.
        var lines = File.ReadAllLines(Path.Combine(folder, ProbeOutputs.PairsFileName));
        var header = lines[0].Split(',');
        var contextColumn = Array.IndexOf(header, "context_id");
        Assert.True(contextColumn >= 0);
        Assert.Equal(["c:0", "c:1", "c:2", "c:3", "c:4"], lines.Skip(1).Select(line => line.Split(',')[contextColumn]).Distinct().Order());

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, ProbeOutputs.ResultsFileName)));
        var root = json.RootElement;
        Assert.StartsWith("secondary", root.GetProperty("comparisons")[0].GetProperty("role").GetString(), StringComparison.Ordinal);
        // Every target is in its base form: substitutes go in as their lemma, and are counted so.
        Assert.Equal(30, root.GetProperty("substitute_forms").GetProperty("similar").GetProperty("base_form").GetInt32());
        Assert.Equal(0, root.GetProperty("substitute_forms").GetProperty("dissimilar").GetProperty("multi_word").GetInt32());
        var main = root.GetProperty("context_paired_comparisons")[0];
        Assert.Equal("similar", main.GetProperty("first").GetString());
        Assert.Equal("dissimilar", main.GetProperty("second").GetString());
        var layerMean = main.GetProperty("layer_mean");
        Assert.Equal(5, layerMean.GetProperty("n_contexts").GetInt32());
        Assert.Equal(30, layerMean.GetProperty("n_pairs_first").GetInt32());

        // R, once, on this pairs.csv (see the probes README; recomputed after sub-token i is compared with sub-token i):
        //   d <- read.csv("pairs.csv"); d <- d[d$condition %in% c("similar", "dissimilar"), ]
        //   p <- aggregate(kappa ~ pair_id + context_id + condition, d, mean)      # each pair's layer mean
        //   m <- aggregate(kappa ~ context_id + condition, p, mean)                # each context's mean
        //   w <- reshape(m, idvar = "context_id", timevar = "condition", direction = "wide")
        //   wilcox.test(w$kappa.similar, w$kappa.dissimilar, paired = TRUE)
        //   and per layer L the same on d[d$layer == L, ] without the first aggregate.
        Assert.Equal(7, layerMean.GetProperty("v").GetDouble(), 9);
        Assert.Equal(1, layerMean.GetProperty("p_signed_rank").GetDouble(), 1e-12);
        Assert.Equal(-0.015740740740740746, layerMean.GetProperty("difference").GetDouble(), 1e-12);
        (double V, double P, double Difference)[] perLayer = [(5, 0.625, -0.032777777777777781), (8, 1, 0.010694444444444446), (8, 1, -0.025138888888888888)];
        var byLayer = main.GetProperty("by_layer");
        Assert.Equal(perLayer.Length, byLayer.GetArrayLength());
        for (var layer = 0; layer < perLayer.Length; layer++)
        {
            Assert.Equal(perLayer[layer].V, byLayer[layer].GetProperty("v").GetDouble(), 9);
            Assert.Equal(perLayer[layer].P, byLayer[layer].GetProperty("p_signed_rank").GetDouble(), 1e-12);
            Assert.Equal(perLayer[layer].Difference, byLayer[layer].GetProperty("difference").GetDouble(), 1e-12);
            Assert.True(byLayer[layer].GetProperty("exact").GetBoolean());
        }

        // Random weights: nothing is found.
        Assert.False(main.GetProperty("found").GetBoolean());
        Assert.Contains(outcome.Summary, line => line.Contains("per context (the unit of replication: 5 contexts", StringComparison.Ordinal));
        Assert.Contains(outcome.Summary, line => line.Contains("Fewer than 20 contexts", StringComparison.Ordinal));
    }

    /// <summary>Writes a SWORDS v1.1-format file: contexts c:N, targets t:N, substitutes judged by three annotators.</summary>
    internal static void WriteSwords(string path, IEnumerable<(string Context, string Target, string[] Similar, string[] Dissimilar)>? contexts = null)
    {
        var items = (contexts ?? Contexts).ToArray();
        var json = new StringBuilder("{\n\"contexts\": {\n");
        json.AppendJoin(",\n", items.Select((item, i) => $"\"c:{i}\": {{\"context\": {JsonSerializer.Serialize(item.Context)}}}"));
        json.Append("\n},\n\"targets\": {\n");
        json.AppendJoin(",\n", items.Select((item, i) =>
            $"\"t:{i}\": {{\"context_id\": \"c:{i}\", \"target\": \"{item.Target}\", \"offset\": {item.Context.IndexOf(" " + item.Target, StringComparison.Ordinal) + 1}, \"pos\": \"NOUN\"}}"));
        json.Append("\n},\n\"substitutes\": {\n");
        var substitutes = items.SelectMany((item, i) => item.Similar.Select(word => (i, word, true)).Concat(item.Dissimilar.Select(word => (i, word, false)))).ToArray();
        json.AppendJoin(",\n", substitutes.Select((s, n) => $"\"s:{n}\": {{\"target_id\": \"t:{s.i}\", \"substitute\": \"{s.word}\"}}"));
        json.Append("\n},\n\"substitute_labels\": {\n");
        json.AppendJoin(",\n", substitutes.Select((s, n) => $"\"s:{n}\": " + (s.Item3 ? "[\"TRUE\", \"TRUE\", \"FALSE\"]" : "[\"FALSE\", \"FALSE\", \"FALSE\"]")));
        json.Append("\n}\n}\n");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        gzip.Write(Encoding.UTF8.GetBytes(json.ToString()));
    }
}
