using ExpertScope.Core;
using ExpertScope.Formats.Gguf;
using ExpertScope.Testing;

namespace ExpertScope.Formats.Tests;

public class GgufAccessorTests
{
    [Fact]
    public void TypedAccessorsReportWrongTypesAsUserErrors()
    {
        using var temp = new TempDirectory();
        string path = temp.File("typed.gguf");
        using (var writer = GgufWriter.Create(path))
        {
            writer.SetMetadata("general.architecture", GgufValue.Create("test"));
            writer.SetMetadata("big", GgufValue.Create(ulong.MaxValue));
            writer.SetMetadata("flag", GgufValue.Create(true));
            writer.SetMetadata("count", GgufValue.Create((ushort)7));
            writer.SetMetadata("ratio", GgufValue.Create(0.25f));
            writer.SetMetadata("list", GgufValue.CreateArray(1, 2, 3));
            writer.Finish();
        }

        using var file = GgufFile.Open(path);
        Assert.Throws<ExpertScopeException>(() => file.TryGetInteger("big"));
        Assert.Equal(ulong.MaxValue, file.TryGetNumber("big"));
        Assert.True(file.TryGetBool("big"));
        Assert.True(file.TryGetBool("flag"));
        Assert.Equal(1, file.TryGetInteger("flag"));
        Assert.Equal(7, file.GetInteger("count"));
        Assert.Equal(0.25, file.TryGetNumber("ratio"));
        Assert.Throws<ExpertScopeException>(() => file.TryGetInteger("ratio"));
        Assert.Throws<ExpertScopeException>(() => file.TryGetBool("general.architecture"));
        Assert.Throws<ExpertScopeException>(() => file.TryGetNumber("list"));
        Assert.Equal([1, 2, 3], file.TryGetArray<int>("list")!);
        Assert.Throws<ExpertScopeException>(() => file.TryGetArray<float>("list"));
        Assert.Null(file.TryGetInteger("absent"));
        Assert.Contains(path, Assert.Throws<ExpertScopeException>(() => file.GetInteger("absent")).Message, StringComparison.Ordinal);
    }
}
