using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Kernels.Quant;
using ExpertScope.Models.Blocks;

namespace ExpertScope.Benchmarks;

/// <summary>
/// One weight matrix times a batch of tokens through the engine's own path (<c>LinearWeight.Multiply</c>, weights
/// memory-mapped from a GGUF file), at real shapes: an OLMoE-1B-7B expert projection (1024 x 2048), a Qwen3-30B-A3B
/// expert projection (768 x 2048) and a 2048 x 2048 attention projection; one token (generation) or a batch (the
/// tokens one expert gets in a 512-token prefill, or the whole prefill for attention). One thread.
/// </summary>
[Config(typeof(BoundedConfig))]
public class MatrixBenchmarks : IFlopCounter, IDisposable
{
    private GgufFile? _file;
    private LinearWeight? _weight;
    private float[] _input = [];
    private float[] _output = [];
    private string _path = "";

    [Params(GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_K)]
    public GgmlType Type { get; set; }

    [Params("olmoe-expert-1024x2048", "qwen3-expert-768x2048", "attention-2048x2048")]
    public string Shape { get; set; } = "olmoe-expert-1024x2048";

    [Params(1, 64)]
    public int Tokens { get; set; }

    private int Rows => int.Parse(Shape.Split('-')[^1].Split('x')[0], System.Globalization.CultureInfo.InvariantCulture);

    private int Columns => int.Parse(Shape.Split('-')[^1].Split('x')[1], System.Globalization.CultureInfo.InvariantCulture);

    public double Operations => 2.0 * Rows * Columns * Tokens;

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        _path = Path.Combine(Path.GetTempPath(), $"expertscope-bench-{Environment.ProcessId}-{Type}-{Shape}.gguf");
        var values = new float[(long)Rows * Columns];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (float)(random.NextDouble() - 0.5) * 0.1f;
        }

        int rowBytes = checked((int)GgmlTypes.Get(Type).RowBytes(Columns));
        var data = new byte[(long)rowBytes * Rows];
        for (int r = 0; r < Rows; r++)
        {
            var row = values.AsSpan(r * Columns, Columns);
            var target = data.AsSpan(r * rowBytes, rowBytes);
            if (Type == GgmlType.F32)
            {
                MemoryMarshal.AsBytes(row).CopyTo(target);
            }
            else
            {
                Quantize.Row(Type, row, target);
            }
        }

        using (var writer = GgufWriter.Create(_path))
        {
            writer.AddTensor("weight", Type, [Columns, Rows]);
            writer.WriteTensorData(data);
            writer.Finish();
        }

        _file = GgufFile.Open(_path);
        _weight = new LinearWeight(_file, _file.Tensors[0], Columns, Rows, 0);
        _input = new float[Tokens * Columns];
        for (int i = 0; i < _input.Length; i++)
        {
            _input[i] = (float)(random.NextDouble() * 2 - 1);
        }

        _output = new float[Tokens * Rows];
    }

    [Benchmark]
    public void Multiply() => _weight!.Multiply(_input, Tokens, _output, Parallelism.Single);

    [GlobalCleanup]
    public void Dispose()
    {
        _file?.Dispose();
        _file = null;
        if (File.Exists(_path))
        {
            File.Delete(_path);
        }

        GC.SuppressFinalize(this);
    }
}
