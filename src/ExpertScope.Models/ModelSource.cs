using System.Globalization;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Models.Blocks;

namespace ExpertScope.Models;

/// <summary>
/// An opened GGUF checkpoint as the architectures read it: metadata (with load-time overrides, like llama.cpp's
/// <c>--override-kv</c>) under the architecture's key prefix, and tensors checked for presence and shape, with
/// errors naming the file, the tensor and expected vs actual shape.
/// </summary>
public sealed class ModelSource
{
    private readonly IReadOnlyDictionary<string, object> _overrides;

    /// <summary>Wraps an opened file.</summary>
    /// <param name="file">The GGUF file (owned by the caller).</param>
    /// <param name="overrides">Metadata overrides by full key (values: integer, floating point, bool or string).</param>
    /// <param name="arithmetic">How float weight matrices are multiplied.</param>
    public ModelSource(GgufFile file, IReadOnlyDictionary<string, object>? overrides = null, FloatArithmetic arithmetic = FloatArithmetic.Reference)
    {
        ArgumentNullException.ThrowIfNull(file);
        File = file;
        Arithmetic = arithmetic;
        _overrides = overrides ?? new Dictionary<string, object>();
        Architecture = file.Architecture ?? throw new ExpertScopeException($"{file.FilePath}: metadata 'general.architecture' is missing.");
    }

    /// <summary>The file.</summary>
    public GgufFile File { get; }

    /// <summary>How the float weight matrices read from this source are multiplied.</summary>
    public FloatArithmetic Arithmetic { get; }

    /// <summary><c>general.architecture</c>, the prefix of architecture keys.</summary>
    public string Architecture { get; }

    /// <summary>The file's path.</summary>
    public string FilePath => File.FilePath;

    /// <summary>An optional integer <c>{arch}.{suffix}</c>.</summary>
    public long? OptionalInteger(string suffix)
    {
        string key = Architecture + "." + suffix;
        return _overrides.TryGetValue(key, out var value)
            ? Convert.ToInt64(value, CultureInfo.InvariantCulture)
            : File.TryGetInteger(key);
    }

    /// <summary>A required integer <c>{arch}.{suffix}</c>, read as 64 bits and checked to lie in 1..2^31-1.</summary>
    /// <exception cref="ExpertScopeException">Missing or out of range; the message names file, key and value.</exception>
    public int Integer(string suffix) => OptionalInt32(suffix, 1) ?? throw Missing(suffix);

    /// <summary>
    /// An optional integer <c>{arch}.{suffix}</c>, read as 64 bits and checked to lie in
    /// <paramref name="minimum"/>..2^31-1, so that no value is ever cut to 32 bits silently.
    /// </summary>
    /// <exception cref="ExpertScopeException">Out of range; the message names file, key and value.</exception>
    public int? OptionalInt32(string suffix, long minimum = 0)
    {
        long? value = OptionalInteger(suffix);
        if (value is { } v && (v < minimum || v > int.MaxValue))
        {
            throw new ExpertScopeException(string.Create(
                CultureInfo.InvariantCulture,
                $"{FilePath}: metadata '{Architecture}.{suffix}' = {v} is out of range (it must lie in {minimum}..{int.MaxValue})."));
        }

        return (int?)value;
    }

    /// <summary>An optional number <c>{arch}.{suffix}</c>.</summary>
    public double? OptionalNumber(string suffix)
    {
        string key = Architecture + "." + suffix;
        return _overrides.TryGetValue(key, out var value)
            ? Convert.ToDouble(value, CultureInfo.InvariantCulture)
            : File.TryGetNumber(key);
    }

    /// <summary>A required number <c>{arch}.{suffix}</c>.</summary>
    public float Number(string suffix) => (float)(OptionalNumber(suffix) ?? throw Missing(suffix));

    /// <summary>An optional bool <c>{arch}.{suffix}</c>.</summary>
    public bool? OptionalBool(string suffix)
    {
        string key = Architecture + "." + suffix;
        return _overrides.TryGetValue(key, out var value)
            ? Convert.ToBoolean(value, CultureInfo.InvariantCulture)
            : File.TryGetBool(key);
    }

    /// <summary>An optional string <c>{arch}.{suffix}</c>.</summary>
    public string? OptionalString(string suffix)
    {
        string key = Architecture + "." + suffix;
        return _overrides.TryGetValue(key, out var value) ? Convert.ToString(value, CultureInfo.InvariantCulture) : File.TryGetString(key);
    }

    /// <summary>True if the file has a tensor called <paramref name="name"/>.</summary>
    public bool HasTensor(string name) => File.FindTensor(name) is not null;

    /// <summary>A linear weight <c>[outputs, inputs]</c> (GGUF <c>ne = {inputs, outputs}</c>).</summary>
    /// <exception cref="ExpertScopeException">Missing or mis-shaped.</exception>
    public LinearWeight Linear(string name, int inputs, int outputs)
    {
        var tensor = Require(name);
        CheckShape(tensor, [inputs, outputs]);
        return new LinearWeight(File, tensor, inputs, outputs, 0, Arithmetic);
    }

    /// <summary>A linear weight, or null when the tensor is absent (shape-checked when present).</summary>
    public LinearWeight? OptionalLinear(string name, int inputs, int outputs) =>
        HasTensor(name) ? Linear(name, inputs, outputs) : null;

    /// <summary>A float32 vector of <paramref name="length"/> values (norm weights, biases), copied.</summary>
    /// <exception cref="ExpertScopeException">Missing or mis-shaped.</exception>
    public float[] Vector(string name, int length)
    {
        var tensor = Require(name);
        CheckShape(tensor, [length]);
        var values = new float[length];
        WeightRows.Decode(tensor.Type, File.GetTensorData(tensor), values);
        return values;
    }

    /// <summary>A vector, or null when absent.</summary>
    public float[]? OptionalVector(string name, int length) => HasTensor(name) ? Vector(name, length) : null;

    /// <summary>The rows of a float matrix <c>ne = {length, count}</c> (per-expert biases), copied.</summary>
    /// <exception cref="ExpertScopeException">Missing or mis-shaped.</exception>
    public float[][] VectorStack(string name, int length, int count)
    {
        var tensor = Require(name);
        CheckShape(tensor, [length, count]);
        var values = new float[length * count];
        WeightRows.Decode(tensor.Type, File.GetTensorData(tensor), values);
        return [.. Enumerable.Range(0, count).Select(i => values.AsSpan(i * length, length).ToArray())];
    }

    /// <summary>Per-expert views of a stacked expert tensor <c>ne = {inputs, outputs, experts}</c>.</summary>
    /// <exception cref="ExpertScopeException">Missing or mis-shaped.</exception>
    public LinearWeight[] ExpertStack(string name, int inputs, int outputs, int experts)
    {
        var tensor = Require(name);
        CheckShape(tensor, [inputs, outputs, experts]);
        long expertBytes = tensor.RowBytes * outputs;
        var result = new LinearWeight[experts];
        for (int e = 0; e < experts; e++)
        {
            result[e] = new LinearWeight(File, tensor, inputs, outputs, e * expertBytes, Arithmetic);
        }

        return result;
    }

    /// <summary>An RMS norm from a weight vector.</summary>
    public RmsNorm Norm(string name, int length, float epsilon) => new(Vector(name, length), epsilon);

    private GgufTensorInfo Require(string name) =>
        File.FindTensor(name) ?? throw new ExpertScopeException($"{FilePath}: tensor '{name}' is missing (architecture '{Architecture}').");

    private void CheckShape(GgufTensorInfo tensor, long[] expected)
    {
        bool matches = tensor.Dimensions.Length <= expected.Length &&
            expected.Select((d, i) => tensor.Dimension(i) == d).All(x => x);
        if (!matches)
        {
            string want = "[" + string.Join(", ", expected.Reverse()) + "]";
            throw new ExpertScopeException($"{FilePath}: tensor '{tensor.Name}' has shape {tensor.ShapeText}, expected {want}.");
        }
    }

    private ExpertScopeException Missing(string suffix) =>
        new($"{FilePath}: required metadata '{Architecture}.{suffix}' is missing.");
}
