using ExpertScope.Formats.Gguf;
using ExpertScope.Testing;

namespace ExpertScope.Formats.Tests;

/// <summary><see cref="GgufWriter.WriteAtomically"/>: the target changes all at once or not at all.</summary>
public class GgufAtomicWriteTests
{
    [Fact]
    public void Success_ReplacesTheTarget_AndLeavesNoTemporary()
    {
        using var temp = new TempDirectory();
        string path = temp.File("model.gguf");
        File.WriteAllText(path, "old");

        GgufWriter.WriteAtomically(path, writer => writer.SetMetadata("general.architecture", GgufValue.Create("test")));

        using (var file = GgufFile.Open(path))
        {
            Assert.Equal("test", file.Architecture);
        }

        Assert.False(File.Exists(path + ".partial"));
    }

    [Fact]
    public void Failure_KeepsTheOldTarget_AndRemovesTheTemporary()
    {
        using var temp = new TempDirectory();
        string path = temp.File("model.gguf");
        File.WriteAllText(path, "old");

        Assert.Throws<OperationCanceledException>(() => GgufWriter.WriteAtomically(path, writer =>
        {
            writer.SetMetadata("general.architecture", GgufValue.Create("test"));
            throw new OperationCanceledException();
        }));

        Assert.Equal("old", File.ReadAllText(path));
        Assert.False(File.Exists(path + ".partial"));
    }
}
