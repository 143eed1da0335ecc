using System.Globalization;
using System.Text;

namespace ExpertScope.Experiments.Storage;

/// <summary>Writes and reads sets of sequence ids as compact ranges: <c>0-41,43,45-99</c>.</summary>
internal static class SequenceRanges
{
    public static string Format(IEnumerable<int> ids)
    {
        var sorted = ids.Distinct().Order().ToArray();
        var text = new StringBuilder();
        for (var i = 0; i < sorted.Length;)
        {
            var j = i;
            while (j + 1 < sorted.Length && sorted[j + 1] == sorted[j] + 1)
            {
                j++;
            }

            if (text.Length > 0)
            {
                text.Append(',');
            }

            text.Append(sorted[i].ToString(CultureInfo.InvariantCulture));
            if (j > i)
            {
                text.Append('-').Append(sorted[j].ToString(CultureInfo.InvariantCulture));
            }

            i = j + 1;
        }

        return text.ToString();
    }

    public static bool TryParse(string text, out HashSet<int> ids)
    {
        ids = [];
        if (string.IsNullOrWhiteSpace(text))
        {
            return true;
        }

        foreach (var part in text.Split(','))
        {
            var dash = part.IndexOf('-', 1);
            if (dash < 0)
            {
                if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var single))
                {
                    return false;
                }

                ids.Add(single);
                continue;
            }

            if (!int.TryParse(part.AsSpan(0, dash), NumberStyles.Integer, CultureInfo.InvariantCulture, out var first)
                || !int.TryParse(part.AsSpan(dash + 1), NumberStyles.Integer, CultureInfo.InvariantCulture, out var last)
                || last < first)
            {
                return false;
            }

            for (var id = first; id <= last; id++)
            {
                ids.Add(id);
            }
        }

        return true;
    }
}
