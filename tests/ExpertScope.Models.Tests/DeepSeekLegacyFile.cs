using System.Text;
using ExpertScope.Core;
using ExpertScope.Formats.Gguf;

namespace ExpertScope.Models.Tests;

/// <summary>
/// Rewrites a current deepseek2 GGUF as older converters wrote it: one fused <c>attn_kv_b</c> per block instead of
/// the split <c>attn_k_b</c>/<c>attn_v_b</c>, and per-head key/value lengths without the <c>*_mla</c> keys.
/// A minimal GGUF v3 writer (metadata copied as stored, float32 tensors only) is enough for that.
/// </summary>
internal static class DeepSeekLegacyFile
{
    public static void Write(GgufFile source, string path)
    {
        var heads = (int)source.GetInteger("deepseek2.attention.head_count");
        var kvLora = (int)source.GetInteger("deepseek2.attention.kv_lora_rank");
        var keyMla = (int)source.GetInteger("deepseek2.attention.key_length_mla");
        var valueMla = (int)source.GetInteger("deepseek2.attention.value_length_mla");
        var rope = (int)source.GetInteger("deepseek2.rope.dimension_count");
        var nope = keyMla - rope;

        var metadata = new List<(string Key, GgufValue Value)>();
        foreach (var (key, value) in source.Metadata)
        {
            switch (key)
            {
                case "deepseek2.attention.key_length_mla" or "deepseek2.attention.value_length_mla":
                    continue;
                case "deepseek2.attention.key_length":
                    metadata.Add((key, new GgufValue(GgufValueType.UInt32, (uint)keyMla)));
                    break;
                case "deepseek2.attention.value_length":
                    metadata.Add((key, new GgufValue(GgufValueType.UInt32, (uint)valueMla)));
                    break;
                default:
                    metadata.Add((key, value));
                    break;
            }
        }

        var tensors = new List<(string Name, long[] Dimensions, float[] Data)>();
        foreach (var tensor in source.Tensors)
        {
            if (tensor.Type != GgmlType.F32)
            {
                throw new InvalidOperationException($"{tensor.Name}: only float32 tensors are rewritten.");
            }

            if (tensor.Name.EndsWith(".attn_v_b.weight", StringComparison.Ordinal))
            {
                continue;
            }

            if (!tensor.Name.EndsWith(".attn_k_b.weight", StringComparison.Ordinal))
            {
                tensors.Add((tensor.Name, tensor.Dimensions, source.GetFloat32(tensor).ToArray()));
                continue;
            }

            // attn_k_b is [H, kv_lora, nope] and attn_v_b [H, value, kv_lora] (row-major); attn_kv_b is
            // [H·(nope+value), kv_lora] with each head's key rows (k_b transposed) followed by its value rows.
            var block = tensor.Name[..tensor.Name.IndexOf(".attn_k_b", StringComparison.Ordinal)];
            var keyB = source.GetFloat32(tensor);
            var valueB = source.GetFloat32(source.GetTensor(block + ".attn_v_b.weight"));
            var rowsPerHead = nope + valueMla;
            var fused = new float[heads * rowsPerHead * kvLora];
            for (var h = 0; h < heads; h++)
            {
                for (var r = 0; r < kvLora; r++)
                {
                    for (var i = 0; i < nope; i++)
                    {
                        fused[((h * rowsPerHead) + i) * kvLora + r] = keyB[((h * kvLora) + r) * nope + i];
                    }

                    for (var j = 0; j < valueMla; j++)
                    {
                        fused[((h * rowsPerHead) + nope + j) * kvLora + r] = valueB[((h * valueMla) + j) * kvLora + r];
                    }
                }
            }

            tensors.Add((block + ".attn_kv_b.weight", [kvLora, heads * rowsPerHead], fused));
        }

        Write(path, metadata, tensors, source.Alignment);
    }

    private static void Write(string path, List<(string Key, GgufValue Value)> metadata, List<(string Name, long[] Dimensions, float[] Data)> tensors, int alignment)
    {
        using var stream = File.Create(path);
        using var writer = new BinaryWriter(stream, Encoding.UTF8);
        writer.Write(GgufFile.Magic);
        writer.Write(3u);
        writer.Write((ulong)tensors.Count);
        writer.Write((ulong)metadata.Count);
        foreach (var (key, value) in metadata)
        {
            WriteString(writer, key);
            writer.Write((uint)value.Type);
            WriteValue(writer, value.Type, value.Value);
        }

        long offset = 0;
        foreach (var (name, dimensions, data) in tensors)
        {
            WriteString(writer, name);
            writer.Write((uint)dimensions.Length);
            foreach (var d in dimensions)
            {
                writer.Write((ulong)d);
            }

            writer.Write((uint)GgmlType.F32);
            writer.Write((ulong)offset);
            offset = Align(offset + (data.Length * sizeof(float)), alignment);
        }

        Pad(writer, alignment);
        foreach (var (_, _, data) in tensors)
        {
            foreach (var v in data)
            {
                writer.Write(v);
            }

            Pad(writer, alignment);
        }
    }

    private static void WriteValue(BinaryWriter writer, GgufValueType type, object value)
    {
        switch (type)
        {
            case GgufValueType.UInt8: writer.Write((byte)value); break;
            case GgufValueType.Int8: writer.Write((sbyte)value); break;
            case GgufValueType.UInt16: writer.Write((ushort)value); break;
            case GgufValueType.Int16: writer.Write((short)value); break;
            case GgufValueType.UInt32: writer.Write((uint)value); break;
            case GgufValueType.Int32: writer.Write((int)value); break;
            case GgufValueType.Float32: writer.Write((float)value); break;
            case GgufValueType.Bool: writer.Write((bool)value); break;
            case GgufValueType.String: WriteString(writer, (string)value); break;
            case GgufValueType.UInt64: writer.Write((ulong)value); break;
            case GgufValueType.Int64: writer.Write((long)value); break;
            case GgufValueType.Float64: writer.Write((double)value); break;
            case GgufValueType.Array:
                var array = (GgufArray)value;
                writer.Write((uint)array.ElementType);
                writer.Write((ulong)array.Count);
                foreach (var item in array.Items)
                {
                    WriteValue(writer, array.ElementType, item!);
                }

                break;
            default:
                throw new InvalidOperationException($"GGUF value type {type} is not written.");
        }
    }

    private static void WriteString(BinaryWriter writer, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        writer.Write((ulong)bytes.Length);
        writer.Write(bytes);
    }

    private static long Align(long value, int alignment) => (value + alignment - 1) / alignment * alignment;

    private static void Pad(BinaryWriter writer, int alignment)
    {
        while (writer.BaseStream.Position % alignment != 0)
        {
            writer.Write((byte)0);
        }
    }
}
