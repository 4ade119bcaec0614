using Rubato.Common.Contracts;
using Rubato.Common.Otlp;

namespace Rubato.RemoteWrite;

/// <summary>
/// Hand-written protobuf of Prometheus remote write 1.0 (<c>prometheus.WriteRequest</c>, prompb/remote.proto and
/// types.proto). A request body is the concatenation of <c>WriteRequest.timeseries</c> fields, which is why WAL
/// records store exactly those bytes: a batch is built by concatenating records, without decoding them.
/// </summary>
internal static class PromWire
{
    /// <summary>WriteRequest.timeseries (repeated TimeSeries); field 2 is reserved, 3 is metadata.</summary>
    public const int WriteRequestTimeseries = 1;

    /// <summary>TimeSeries.labels (repeated Label).</summary>
    public const int TimeSeriesLabels = 1;

    /// <summary>TimeSeries.samples (repeated Sample).</summary>
    public const int TimeSeriesSamples = 2;

    public const int LabelName = 1;
    public const int LabelValue = 2;

    /// <summary>Sample.value (double).</summary>
    public const int SampleValue = 1;

    /// <summary>Sample.timestamp (int64, milliseconds).</summary>
    public const int SampleTimestamp = 2;

    /// <summary>
    /// Appends one <c>WriteRequest.timeseries</c> field holding one sample. <paramref name="external"/> (sorted by
    /// name) is merged into the sorted series labels; a label the series already has wins, as with Prometheus'
    /// external labels. Allocation-free: strings are UTF-8 encoded straight into the pooled writer.
    /// </summary>
    public static void WriteTimeSeries(ProtoWriter w, ReadOnlySpan<SeriesLabel> labels, ReadOnlySpan<SeriesLabel> external, long timestampMs, double value)
    {
        int ts = w.BeginMessage(WriteRequestTimeseries);
        int i = 0;
        int e = 0;
        while (i < labels.Length || e < external.Length)
        {
            int cmp = i == labels.Length ? 1 : e == external.Length ? -1 : string.CompareOrdinal(labels[i].Name, external[e].Name);
            if (cmp <= 0)
            {
                WriteLabel(w, labels[i++]);
                if (cmp == 0)
                {
                    e++;
                }
            }
            else
            {
                WriteLabel(w, external[e++]);
            }
        }

        int sample = w.BeginMessage(TimeSeriesSamples);
        w.WriteFixed64Field(SampleValue, BitConverter.DoubleToUInt64Bits(value));
        w.WriteVarintField(SampleTimestamp, unchecked((ulong)timestampMs));
        w.EndMessage(sample);
        w.EndMessage(ts);
    }

    private static void WriteLabel(ProtoWriter w, SeriesLabel label)
    {
        int token = w.BeginMessage(TimeSeriesLabels);
        w.WriteStringField(LabelName, label.Name);
        w.WriteStringField(LabelValue, label.Value);
        w.EndMessage(token);
    }

    /// <summary>
    /// Finds the byte ranges of the top-level <c>WriteRequest.timeseries</c> fields of a body (used to split a
    /// rejected batch). Throws <see cref="OtlpFormatException"/> on malformed input.
    /// </summary>
    public static void SplitTimeSeries(ReadOnlySpan<byte> body, List<Range> items)
    {
        var r = new ProtoReader(body);
        while (!r.IsAtEnd)
        {
            int start = r.Position;
            if (!r.TryReadTag(out int field, out var wire))
            {
                break;
            }

            if (field == WriteRequestTimeseries && wire == WireType.LengthDelimited)
            {
                r.ReadLengthDelimitedRange(out _);
                items.Add(new Range(start, r.Position));
            }
            else
            {
                r.SkipField(field, wire);
            }
        }
    }

    /// <summary>Decodes a (decompressed) WriteRequest: every series with its labels and samples, in wire order.</summary>
    public static List<DecodedSeries> DecodeWriteRequest(ReadOnlySpan<byte> body)
    {
        var result = new List<DecodedSeries>();
        var r = new ProtoReader(body);
        while (r.TryReadTag(out int field, out var wire))
        {
            if (field == WriteRequestTimeseries)
            {
                r.Expect(wire, WireType.LengthDelimited, "WriteRequest.timeseries");
                result.Add(DecodeTimeSeries(r.ReadSubMessage()));
            }
            else
            {
                r.SkipField(field, wire);
            }
        }

        return result;
    }

    private static DecodedSeries DecodeTimeSeries(ProtoReader r)
    {
        var labels = new List<SeriesLabel>();
        var samples = new List<DecodedSample>();
        while (r.TryReadTag(out int field, out var wire))
        {
            if (field == TimeSeriesLabels)
            {
                r.Expect(wire, WireType.LengthDelimited, "TimeSeries.labels");
                var lr = r.ReadSubMessage();
                string name = string.Empty;
                string value = string.Empty;
                while (lr.TryReadTag(out int lf, out var lw))
                {
                    if (lf == LabelName)
                    {
                        lr.Expect(lw, WireType.LengthDelimited, "Label.name");
                        name = lr.ReadString();
                    }
                    else if (lf == LabelValue)
                    {
                        lr.Expect(lw, WireType.LengthDelimited, "Label.value");
                        value = lr.ReadString();
                    }
                    else
                    {
                        lr.SkipField(lf, lw);
                    }
                }

                labels.Add(new SeriesLabel(name, value));
            }
            else if (field == TimeSeriesSamples)
            {
                r.Expect(wire, WireType.LengthDelimited, "TimeSeries.samples");
                var sr = r.ReadSubMessage();
                double v = 0;
                long t = 0;
                while (sr.TryReadTag(out int sf, out var sw))
                {
                    if (sf == SampleValue)
                    {
                        sr.Expect(sw, WireType.Fixed64, "Sample.value");
                        v = sr.ReadDouble();
                    }
                    else if (sf == SampleTimestamp)
                    {
                        sr.Expect(sw, WireType.Varint, "Sample.timestamp");
                        t = unchecked((long)sr.ReadVarint());
                    }
                    else
                    {
                        sr.SkipField(sf, sw);
                    }
                }

                samples.Add(new DecodedSample(t, v));
            }
            else
            {
                r.SkipField(field, wire);
            }
        }

        return new DecodedSeries([.. labels], samples);
    }

    /// <summary>Sorts external labels by name and rejects duplicates and reserved names.</summary>
    public static SeriesLabel[] NormalizeExternalLabels(IReadOnlyDictionary<string, string>? external)
    {
        if (external is null || external.Count == 0)
        {
            return [];
        }

        var arr = external.Select(kv => new SeriesLabel(kv.Key, kv.Value)).ToArray();
        Array.Sort(arr, static (a, b) => string.CompareOrdinal(a.Name, b.Name));
        foreach (var l in arr)
        {
            if (l.Name.Length == 0 || l.Name == "__name__")
            {
                throw new ArgumentException($"external label name '{l.Name}' is not allowed", nameof(external));
            }
        }

        return arr;
    }
}

internal readonly record struct DecodedSample(long TimestampMs, double Value);

internal sealed record DecodedSeries(SeriesLabel[] Labels, List<DecodedSample> Samples);
