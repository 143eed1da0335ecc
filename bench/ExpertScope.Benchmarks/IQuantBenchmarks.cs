using BenchmarkDotNet.Attributes;
using ExpertScope.Core;
using ExpertScope.Kernels.Quant;

namespace ExpertScope.Benchmarks;

/// <summary>
/// An expert matrix of a quantized type times a batch of tokens at an OLMoE-1B-7B expert projection (1024 x 2048) and
/// a Qwen3-30B-A3B one (768 x 2048), one thread; each invocation converts the tokens to the activation type as the
/// engine does. <see cref="Kernel"/>: <c>product</c> is <c>MatrixProduct.Multiply</c> (the engine's per-type kernel
/// selection: the one-token or batched kernel), <c>pair-dot</c> the vectorized one-pair dot for every (row, token)
/// pair (the path without those kernels), and <c>reference</c> the scalar port of ggml's generic <c>vec_dot</c> for
/// every pair. All three give the same bits. The derived classes choose the types.
/// </summary>
public abstract class KernelComparisonBenchmark : IFlopCounter
{
    private byte[] _weights = [];
    private float[] _input = [];
    private float[] _output = [];

    /// <summary>Storage type of the matrix.</summary>
    public abstract GgmlType Type { get; set; }

    /// <summary><c>name-ROWSxCOLUMNS</c>.</summary>
    [Params("olmoe-expert-1024x2048", "qwen3-expert-768x2048")]
    public string Shape { get; set; } = "olmoe-expert-1024x2048";

    [Params(1, 64)]
    public int Tokens { get; set; }

    [Params("product", "pair-dot", "reference")]
    public string Kernel { get; set; } = "product";

    private int Rows => WeightMatrixFixture.Rows(Shape);

    private int Columns => WeightMatrixFixture.Columns(Shape);

    public double Operations => 2.0 * Rows * Columns * Tokens;

    [GlobalSetup]
    public void Setup()
    {
        // Random blocks reach every grid index, sign pattern, nibble and scale (the time does not depend on the
        // values); the float16 block scales (and the K-quants' min scales) are set finite.
        var random = new Random(42);
        var info = GgmlTypes.Get(Type);
        int blocks = Rows * Columns / info.BlockSize;
        _weights = new byte[blocks * info.TypeSize];
        random.NextBytes(_weights);
        bool hasMinScale = Type is GgmlType.Q4_K or GgmlType.Q5_K;
        for (int block = 0; block < blocks; block++)
        {
            BitConverter.TryWriteBytes(_weights.AsSpan(block * info.TypeSize), BitConverter.HalfToUInt16Bits((Half)(random.NextDouble() * 0.01)));
            if (hasMinScale)
            {
                BitConverter.TryWriteBytes(_weights.AsSpan(block * info.TypeSize + 2), BitConverter.HalfToUInt16Bits((Half)(random.NextDouble() * 0.01)));
            }
        }

        _input = WeightMatrixFixture.Activations(Tokens * Columns);
        _output = new float[Tokens * Rows];
    }

    [Benchmark]
    public void Multiply()
    {
        var packed = MatrixProduct.Pack(Type, _input, Tokens, Columns);
        if (Kernel == "product")
        {
            MatrixProduct.Multiply(Type, _weights, Rows, packed, _output, Rows);
            return;
        }

        int rowBytes = _weights.Length / Rows;
        bool reference = Kernel == "reference";
        for (int r = 0; r < Rows; r++)
        {
            var row = _weights.AsSpan(r * rowBytes, rowBytes);
            for (int t = 0; t < Tokens; t++)
            {
                _output[t * Rows + r] = reference ? VecDot.QuantizedReference(Type, row, packed.Row(t)) : VecDot.Quantized(Type, row, packed.Row(t));
            }
        }
    }
}

/// <summary>IQ2_XXS, IQ2_XS and IQ1_S experts (the 1.6–2-bit dynamic GGUFs): their AVX2 one-token and batched kernels.</summary>
[Config(typeof(BoundedConfig))]
public class TwoBitIQuantBenchmarks : KernelComparisonBenchmark
{
    [Params(GgmlType.IQ2_XXS, GgmlType.IQ2_XS, GgmlType.IQ1_S)]
    public override GgmlType Type { get; set; }
}

/// <summary>
/// Q4_K and Q8_0 experts: the Q4_K batched and one-token kernels and the Q8_0 one-token kernel, which run on AVX2
/// where AVX-VNNI is absent (Q8_0's batched kernel still needs AVX-VNNI).
/// </summary>
[Config(typeof(BoundedConfig))]
public class Avx2ExpertBenchmarks : KernelComparisonBenchmark
{
    [Params(GgmlType.Q4_K, GgmlType.Q8_0)]
    public override GgmlType Type { get; set; }
}

/// <summary>
/// Converting activation rows of 2048 floats (OLMoE-1B-7B's hidden size) to Q8_K, the activation type of every
/// K-quant and i-quant dot: the vectorized quantizer the engine uses against the scalar port of ggml's
/// <c>quantize_row_q8_K_ref</c> (same bytes). The GFLOP/s column counts one operation per value converted.
/// </summary>
[Config(typeof(BoundedConfig))]
public class Q8KQuantizeBenchmarks : IFlopCounter
{
    private const int Elements = 2048;
    private float[] _input = [];
    private byte[] _output = [];

    [Params(1, 64)]
    public int Tokens { get; set; }

    [Params("vectorized", "reference")]
    public string Kernel { get; set; } = "vectorized";

    public double Operations => (double)Elements * Tokens;

    [GlobalSetup]
    public void Setup()
    {
        _input = WeightMatrixFixture.Activations(Tokens * Elements);
        _output = new byte[Kernels.Quant.Quantize.RowBytes(GgmlType.Q8_K, Tokens * Elements)];
    }

    [Benchmark]
    public void Quantize()
    {
        if (Kernel == "vectorized")
        {
            Q8K.Quantize(_input, _output);
        }
        else
        {
            Q8K.QuantizeReference(_input, _output);
        }
    }
}
