using ExpertScope.Core;
using ExpertScope.Formats.Gguf;

namespace ExpertScope.Formats.Tests.Hostile;

/// <summary>What opening one hostile file did.</summary>
internal enum ReadOutcome
{
    Opened,
    Refused,
}

/// <summary>
/// Opens a possibly hostile file and asserts the contract: either it opens and every tensor view lies inside the file,
/// or it raises <see cref="GgufFormatException"/> naming the file and an offset inside it. Nothing else, within a
/// time limit, and without allocating much more than the file's size.
/// </summary>
internal static class HostileRead
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    // Parsed headers cost a few objects per header byte (boxed scalars, strings, dictionary entries, tensor infos);
    // the worst legal case, a file of nothing but minimal tensor infos, costs about 11 bytes per byte. What must never
    // happen is an allocation driven by a count the file merely claims.
    public const long AllocationPerFileByte = 16;
    public const long AllocationConstant = 512 * 1024;

    public static ReadOutcome Check(string path, string what)
    {
        long length = new FileInfo(path).Length;
        var task = Task.Run(() => OpenAndMeasure(path, length, what));
        if (!task.Wait(Timeout))
        {
            Assert.Fail($"{what}: reading did not finish within {Timeout.TotalSeconds} s");
        }

        var (outcome, allocated) = task.Result;
        long limit = AllocationPerFileByte * length + AllocationConstant;
        Assert.True(allocated <= limit, $"{what}: allocated {allocated} bytes for a {length}-byte file (limit {limit})");
        return outcome;
    }

    /// <summary>Bytes allocated on the reading thread while <paramref name="path"/> is opened and checked.</summary>
    public static long AllocatedWhileReading(string path) =>
        Task.Run(() => OpenAndMeasure(path, new FileInfo(path).Length, path)).Result.Allocated;

    private static (ReadOutcome Outcome, long Allocated) OpenAndMeasure(string path, long length, string what)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        ReadOutcome outcome;
        try
        {
            using var file = GgufFile.Open(path);
            CheckViews(file, length, what);
            outcome = ReadOutcome.Opened;
        }
        catch (GgufFormatException e)
        {
            Assert.True(e.FilePath == path, $"{what}: exception names '{e.FilePath}'");
            Assert.True(e.Offset >= 0 && e.Offset <= length, $"{what}: offset {e.Offset} outside the {length}-byte file");
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            Assert.Contains($"byte {e.Offset}", e.Message, StringComparison.Ordinal);
            outcome = ReadOutcome.Refused;
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            Assert.Fail($"{what}: {e.GetType().Name} instead of GgufFormatException: {e.Message}");
            throw;
        }

        return (outcome, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private static void CheckViews(GgufFile file, long length, string what)
    {
        // Messages are built only on failure: this runs inside the allocation measurement.
        if (file.DataOffset % file.Alignment != 0)
        {
            Assert.Fail($"{what}: data section at {file.DataOffset} is not aligned");
        }

        foreach (var tensor in file.Tensors)
        {
            if (tensor.FileOffset < file.DataOffset || tensor.ByteSize < 0 || tensor.FileOffset + tensor.ByteSize > length
                || tensor.RowCount * tensor.RowBytes != tensor.ByteSize || tensor.ElementCount < 0)
            {
                Assert.Fail($"{what}: tensor '{tensor.Name}' at {tensor.FileOffset}, {tensor.ByteSize} bytes, is not a consistent view inside the file");
            }

            if (tensor.ByteSize <= int.MaxValue)
            {
                var data = file.GetTensorData(tensor);
                if (data.Length != tensor.ByteSize)
                {
                    Assert.Fail($"{what}: view of '{tensor.Name}' has {data.Length} bytes");
                }

                if (data.Length > 0)
                {
                    // Touch both ends of the view: any out-of-bounds view would fault here.
                    _ = data[0] ^ data[^1];
                }
            }
        }

        foreach (var (key, value) in file.Metadata)
        {
            Assert.NotNull(key);
            Assert.NotNull(value.ToString());
        }

        // The summary reads many keys a flip may have retyped: it may refuse, but only with a user-facing error.
        try
        {
            var info = ModelInfo.FromGguf(file);
            if (info.ActiveParameters > info.TotalParameters)
            {
                Assert.Fail($"{what}: more active than total parameters");
            }
        }
        catch (ExpertScopeException)
        {
        }
    }
}
