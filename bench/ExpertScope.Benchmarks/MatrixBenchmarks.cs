using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Kernels.Quant;
using ExpertScope.Models;
using ExpertScope.Models.Blocks;

namespace ExpertScope.Benchmarks;

/// <summary>
/// One weight matrix times a batch of tokens through the engine's own path (<c>LinearWeight.Multiply</c>, weights
/// memory-mapped from a GGUF file), at real shapes; one thread. The derived classes choose the parameters.
/// </summary>
public abstract class WeightMatrixBenchmark : IFlopCounter, IDisposable
{
    private GgufFile? _file;
    private LinearWeight? _weight;
    private float[] _input = [];
    private float[] _output = [];
    private string _path = "";

    /// <summary>Storage type of the matrix.</summary>
    public abstract GgmlType Type { get; set; }

    /// <summary><c>name-ROWSxCOLUMNS</c>.</summary>
    public abstract string Shape { get; set; }

    /// <summary>Tokens multiplied at once.</summary>
    public abstract int Tokens { get; set; }

    /// <summary>Float arithmetic of the product.</summary>
    public virtual FloatArithmetic Arithmetic { get; set; } = FloatArithmetic.Reference;

    private int Rows => WeightMatrixFixture.Rows(Shape);

    private int Columns => WeightMatrixFixture.Columns(Shape);

    public double Operations => 2.0 * Rows * Columns * Tokens;

    [GlobalSetup]
    public void Setup()
    {
        (_file, _weight, _path) = WeightMatrixFixture.Create(Type, Rows, Columns, Arithmetic);
        _input = WeightMatrixFixture.Activations(Tokens * Columns);
        _output = new float[Tokens * Rows];
    }

    [Benchmark]
    public void Multiply() => _weight!.Multiply(_input, Tokens, _output, Parallelism.Single);

    [GlobalCleanup]
    public void Dispose()
    {
        WeightMatrixFixture.Delete(_file, _path);
        _file = null;
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// Every stored type at an OLMoE-1B-7B expert projection (1024 x 2048), a Qwen3-30B-A3B expert projection (768 x 2048)
/// and a 2048 x 2048 attention projection; one token (generation) or 64 (what one expert gets in a 512-token prefill).
/// </summary>
[Config(typeof(BoundedConfig))]
public class MatrixBenchmarks : WeightMatrixBenchmark
{
    [Params(GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K)]
    public override GgmlType Type { get; set; }

    [Params("olmoe-expert-1024x2048", "qwen3-expert-768x2048", "attention-2048x2048")]
    public override string Shape { get; set; } = "olmoe-expert-1024x2048";

    [Params(1, 64)]
    public override int Tokens { get; set; }
}

/// <summary>
/// The K-quants of a Q4_K_M / Q5_K_M file at the shapes where llama.cpp's quantize puts Q6_K: an OLMoE-1B-7B expert
/// down projection (2048 x 1024), a Qwen3-30B-A3B one (2048 x 768) and a 2048 x 2048 attention output projection; one
/// token (generation), 64 (one expert's share of a 512-token prefill) and 512 (a dense projection in that prefill).
/// </summary>
[Config(typeof(BoundedConfig))]
public class KQuantMixBenchmarks : WeightMatrixBenchmark
{
    [Params(GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K)]
    public override GgmlType Type { get; set; }

    [Params("olmoe-down-2048x1024", "qwen3-down-2048x768", "attention-output-2048x2048")]
    public override string Shape { get; set; } = "olmoe-down-2048x1024";

    [Params(1, 64, 512)]
    public override int Tokens { get; set; }
}

/// <summary>
/// The float weight types under both <see cref="FloatArithmetic"/> modes: what <c>--arithmetic fused</c> buys over
/// llama.cpp's portable (reference) arithmetic.
/// </summary>
[Config(typeof(BoundedConfig))]
public class FloatArithmeticBenchmarks : WeightMatrixBenchmark
{
    [Params(GgmlType.F32, GgmlType.F16)]
    public override GgmlType Type { get; set; }

    [Params(FloatArithmetic.Reference, FloatArithmetic.Fused)]
    public override FloatArithmetic Arithmetic { get; set; }

    [Params("olmoe-expert-1024x2048", "attention-2048x2048")]
    public override string Shape { get; set; } = "attention-2048x2048";

    [Params(1, 64)]
    public override int Tokens { get; set; }
}

/// <summary>A seeded random weight matrix written to a temporary GGUF file and viewed as the engine views it.</summary>
internal static class WeightMatrixFixture
{
    public static int Rows(string shape) => int.Parse(shape.Split('-')[^1].Split('x')[0], System.Globalization.CultureInfo.InvariantCulture);

    public static int Columns(string shape) => int.Parse(shape.Split('-')[^1].Split('x')[1], System.Globalization.CultureInfo.InvariantCulture);

    public static (GgufFile File, LinearWeight Weight, string Path) Create(GgmlType type, int rows, int columns, FloatArithmetic arithmetic)
    {
        var random = new Random(42);
        string path = Path.Combine(Path.GetTempPath(), $"expertscope-bench-{Environment.ProcessId}-{type}-{rows}x{columns}-{arithmetic}.gguf");
        var values = new float[(long)rows * columns];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (float)(random.NextDouble() - 0.5) * 0.1f;
        }

        int rowBytes = checked((int)GgmlTypes.Get(type).RowBytes(columns));
        var data = new byte[(long)rowBytes * rows];
        for (int r = 0; r < rows; r++)
        {
            var row = values.AsSpan(r * columns, columns);
            var target = data.AsSpan(r * rowBytes, rowBytes);
            if (type == GgmlType.F32)
            {
                MemoryMarshal.AsBytes(row).CopyTo(target);
            }
            else
            {
                Quantize.Row(type, row, target);
            }
        }

        using (var writer = GgufWriter.Create(path))
        {
            writer.AddTensor("weight", type, [columns, rows]);
            writer.WriteTensorData(data);
            writer.Finish();
        }

        var file = GgufFile.Open(path);
        return (file, new LinearWeight(file, file.Tensors[0], columns, rows, 0, arithmetic), path);
    }

    public static float[] Activations(int count)
    {
        var random = new Random(7);
        var input = new float[count];
        for (int i = 0; i < input.Length; i++)
        {
            input[i] = (float)(random.NextDouble() * 2 - 1);
        }

        return input;
    }

    public static void Delete(GgufFile? file, string path)
    {
        file?.Dispose();
        if (File.Exists(path))
        {
            File.Delete(path);
        }
    }
}
