using ExpertScope.Experiments.Analyses;

namespace ExpertScope.Experiments.Tests;

public class AnalysesTokenRoutingTests
{
    private static int _position;

    // One occurrence of a token in layer 0 with the given top-1 and second expert.
    private static IEnumerable<RoutingRecord> Occurrence(int tokenId, int top1, int second)
    {
        var position = Interlocked.Increment(ref _position);
        return [new(0, position, tokenId, 0, 0, top1, 0.6f), new(0, position, tokenId, 0, 1, second, 0.4f)];
    }

    [Fact]
    public void ConsistencyByPosition_FindsRoutingThatDriftsFromTheTokenPatternLateInTheSequence()
    {
        // Token 7 goes to expert 2 at positions 0-9 in every sequence, to expert (sequence mod 4) at positions 10-19.
        var records = new List<RoutingRecord>();
        for (int sequence = 0; sequence < 8; sequence++)
        {
            for (int position = 0; position < 20; position++)
            {
                int expert = position < 10 ? 2 : sequence % 4;
                records.Add(new RoutingRecord(sequence, position, 7, 0, 0, expert, 1f));
            }
        }

        var rows = TokenRouting.ConsistencyByPosition(records, minimumOccurrences: 5, bucketWidth: 10);

        Assert.Equal(2, rows.Count);
        Assert.Equal((0, 10, 80L, 1.0), (rows[0].PositionStart, rows[0].PositionEnd, rows[0].Occurrences, rows[0].Top1Consistency));

        // The modal expert over all 160 occurrences is 2 (80 early + 20 late); late, only sequences 2 and 6 match it.
        Assert.Equal((10, 20, 80L), (rows[1].PositionStart, rows[1].PositionEnd, rows[1].Occurrences));
        Assert.Equal(0.25, rows[1].Top1Consistency, 12);
    }

    [Fact]
    public void ExpertDeterminedByTokenIdGivesFullConsistencyAndMutualInformation()
    {
        // Token 10 always goes to 3 (then 5), token 20 always to 1 (then 0).
        var records = Occurrence(10, 3, 5).Concat(Occurrence(10, 3, 5)).Concat(Occurrence(20, 1, 0)).Concat(Occurrence(20, 1, 0)).ToList();

        var profile = TokenRouting.Profiles(records, 2).Single(p => p.TokenId == 10);
        var row = Assert.Single(TokenRouting.Summarize(records, 2));

        Assert.Equal((3, 1.0, 1.0), (profile.ModalTop1, profile.Top1Consistency, profile.TopKOverlap));
        Assert.Equal([3, 5], profile.ModalTopK.Order());
        Assert.Equal((2, 4L), (row.TokenTypes, row.Occurrences));
        Assert.Equal(1.0, row.Top1Consistency, 12);
        // E is a function of T: H(E) = 1 bit (3 and 1 equally often), H(E | T) = 0, I = H(E).
        Assert.Equal(1.0, row.ExpertEntropy, 12);
        Assert.Equal(0.0, row.ConditionalEntropy, 12);
        Assert.Equal(row.ExpertEntropy, row.MutualInformation, 12);
        Assert.Equal(0.0, row.ContextShare, 12);
        // Miller-Madow: H(E) + (2 − 1)/(2 · 4 · ln 2); each token has one expert, no correction.
        Assert.Equal(1.1803368801111205, row.ExpertEntropyMillerMadow, 12);
        Assert.Equal(0.0, row.ConditionalEntropyMillerMadow, 12);
        Assert.Equal(1.1803368801111205, row.MutualInformationMillerMadow, 12);
    }

    [Fact]
    public void ContextDependentRoutingOfOneToken()
    {
        // Token 10 top-1: 3, 3, 3, 5 with sets {3,1}, {3,1}, {3,2}, {5,1}; token 20 appears once (below M = 2).
        var records = Occurrence(10, 3, 1).Concat(Occurrence(10, 3, 1)).Concat(Occurrence(10, 3, 2)).Concat(Occurrence(10, 5, 1))
            .Concat(Occurrence(20, 7, 6)).ToList();

        var profile = Assert.Single(TokenRouting.Profiles(records, 2));
        var row = Assert.Single(TokenRouting.Summarize(records, 2));

        Assert.Equal((10, 4, 3, 0.75), (profile.TokenId, profile.Occurrences, profile.ModalTop1, profile.Top1Consistency));
        // Selection counts 1:3, 3:3, 2:1, 5:1, so the modal pair is {1, 3}; overlaps 1, 1, ½, ½.
        Assert.Equal([1, 3], profile.ModalTopK);
        Assert.Equal(0.75, profile.TopKOverlap, 12);
        // One token: all uncertainty is context. H = H(¾, ¼) = 0.811278 bits, I = 0.
        Assert.Equal(0.8112781244591328, row.ExpertEntropy, 12);
        Assert.Equal(0.8112781244591328, row.ConditionalEntropy, 12);
        Assert.Equal(0.0, row.MutualInformation, 12);
        Assert.Equal(1.0, row.ContextShare, 12);
        Assert.Equal(0.0, row.MutualInformationMillerMadow, 12);
    }

    [Fact]
    public void MixedTokensSplitEntropyIntoTokenAndContextParts()
    {
        // Token 10: 3, 3, 3, 5; token 20: 1, 1. N = 6.
        var records = Occurrence(10, 3, 0).Concat(Occurrence(10, 3, 0)).Concat(Occurrence(10, 3, 0)).Concat(Occurrence(10, 5, 0))
            .Concat(Occurrence(20, 1, 0)).Concat(Occurrence(20, 1, 0)).ToList();

        var row = Assert.Single(TokenRouting.Summarize(records, 2));

        Assert.Equal(0.875, row.Top1Consistency, 12); // (¾ + 1) / 2
        Assert.Equal(5.0 / 6, row.PooledTop1Consistency, 12);
        // H(E) over 3:3, 5:1, 1:2 = 1.459148; H(E | T) = 4/6 · 0.811278 = 0.540852; I = 0.918296.
        Assert.Equal(1.4591479170272446, row.ExpertEntropy, 12);
        Assert.Equal(0.5408520829727552, row.ConditionalEntropy, 12);
        Assert.Equal(0.9182958340544893, row.MutualInformation, 12);
        // Miller-Madow: + 2/(12 ln 2) for three experts; + 1/(12 ln 2) for token 10's two.
        Assert.Equal(1.6995970905087385, row.ExpertEntropyMillerMadow, 12);
        Assert.Equal(0.6610766697135022, row.ConditionalEntropyMillerMadow, 12);
        Assert.Equal(1.0385204207952363, row.MutualInformationMillerMadow, 12);
    }

    [Fact]
    public void LayersAreSeparateAndRecordsMustAgreeOnTheToken()
    {
        RoutingRecord[] records =
        [
            new(0, 0, 10, 0, 0, 1, 1), new(0, 1, 10, 0, 0, 1, 1),
            new(0, 0, 10, 2, 0, 4, 1), new(0, 1, 10, 2, 0, 6, 1),
        ];

        var rows = TokenRouting.Summarize(records, 2);

        Assert.Equal([0, 2], rows.Select(r => r.Layer));
        Assert.Equal([1.0, 0.5], rows.Select(r => r.Top1Consistency));
        Assert.Empty(TokenRouting.Summarize(records, 3));
        Assert.Throws<ArgumentException>(() => TokenRouting.Summarize([new(0, 0, 10, 0, 0, 1, 1), new(0, 0, 11, 0, 1, 2, 1)], 1));
    }

    [Fact]
    public void PlugInEntropyOfCounts()
    {
        Assert.Equal(1.5, InformationMeasures.EntropyBits([2L, 1, 1, 0]), 12);
        Assert.Equal(0.0, InformationMeasures.EntropyBits([]), 12);
        Assert.Equal(3 / (2 * 10 * Math.Log(2)), InformationMeasures.MillerMadowCorrectionBits(4, 10), 12);
        Assert.Equal(0.0, InformationMeasures.MillerMadowCorrectionBits(1, 10), 12);
    }
}
