using FsCheck;
using FsCheck.Fluent;
using Rubato.Common.Otlp;
using Rubato.Grpc;
using Rubato.TraceQL.Engine;
using Xunit;

namespace Rubato.QueryFrontend.Tests;

public sealed class RequestParsingTests
{
    private const string KeyChars = "abcdefghijklmnopqrstuvwxyz0123456789._-";

    [Fact]
    public void LegacyTags_RandomPairs_LogfmtRoundTripsAndTraceQLParses()
    {
        var pairs = Arb.From(Gen.Choose(0, int.MaxValue).Select(seed =>
        {
            var rnd = new Random(seed);
            int n = rnd.Next(1, 4);
            var list = new List<(string, string)>();
            for (int i = 0; i < n; i++)
            {
                string key = (char)('a' + rnd.Next(26)) + new string(Enumerable.Range(0, rnd.Next(0, 8)).Select(_ => KeyChars[rnd.Next(KeyChars.Length)]).ToArray());
                string value = new(Enumerable.Range(0, rnd.Next(0, 10)).Select(_ => (char)rnd.Next(32, 127)).ToArray());
                list.Add((key, value));
            }

            return list;
        }));
        Prop.ForAll(pairs, list =>
        {
            string text = string.Join(" ", list.Select(p => p.Item1 + "=\"" + p.Item2.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\""));
            var parsed = SearchRequestParser.ParseLogfmt(text);
            if (!parsed.SequenceEqual(list))
            {
                return Prop.Label(false, "logfmt: " + text);
            }

            string q = SearchRequestParser.LegacyToTraceQL(text, null, null);
            try
            {
                SearchRequestParser.ParseTraceQL(q);
                return Prop.Label(true, q);
            }
            catch (SearchRequestException e)
            {
                return Prop.Label(false, q + "\n" + e.Message);
            }
        }).QuickCheckThrowOnFailure();
    }

    [Theory]
    [InlineData("spss=0", "invalid spss")]
    [InlineData("spss=101", "invalid spss: must be at most 100")]
    [InlineData("limit=x", "invalid limit")]
    [InlineData("start=10", "start and end must be given together")]
    [InlineData("start=20&end=10", "http parameter start must be before end. received start=20 end=10")]
    [InlineData("tags=novalue", "invalid tags")]
    [InlineData("tags=a%3Db&minDuration=zz", "invalid minDuration")]
    public void ParseSearch_BadParameter_NamesIt(string query, string expected)
    {
        var values = query.Split('&').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => Uri.UnescapeDataString(p[1]));
        var e = Assert.Throws<SearchRequestException>(() => SearchRequestParser.ParseSearch(k => values.GetValueOrDefault(k), new SearchFrontendConfig()));
        Assert.Equal(400, e.StatusCode);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void ParseSearch_Defaults_LimitAndSpssFromConfig()
    {
        var q = SearchRequestParser.ParseSearch(_ => null, new SearchFrontendConfig { DefaultResultLimit = 7, MaxResultLimit = 10 });
        Assert.Equal("{}", q.Query);
        Assert.Equal(7, q.Limit);
        Assert.Equal(3, q.SpansPerSpanSet);
        var big = SearchRequestParser.ParseSearch(k => k == "limit" ? "1000" : null, new SearchFrontendConfig { DefaultResultLimit = 7, MaxResultLimit = 10 });
        Assert.Equal(10, big.Limit);
    }

    [Fact]
    public async Task GrpcSearch_FinalResultOverPacketSize_SplitIntoPackets()
    {
        var traces = Enumerable.Range(1, 40).Select(i => TestData.MakeTrace((ulong)i, "svc", "op-" + new string('x', 60), TestData.T0 + i, 1_000_000, "k", Common.Model.AnyValue.String(new string('v', 40)))).ToList();
        var config = new QueryFrontendConfig();
        config.Search.MaxStreamingPacketBytes = 1024;
        await using var host = await FrontendHost.StartAsync([TestData.Source(traces)], config);
        using var client = new GrpcClient(host.Address);
        using var w = new ProtoWriter();
        w.WriteVarintField(4, 40);
        w.WriteStringField(8, "{ .k != nil }");
        var seen = new HashSet<string>();
        int messages = 0;
        await foreach (var m in client.ServerStreamingAsync(StreamingQuerier.ServiceName, "Search", w.ToArray()))
        {
            messages++;
            Assert.True(m.Length <= 1024, $"packet of {m.Length} bytes");
            foreach (var t in StreamingProto.DecodeSearchResponse(m.Span).Traces)
            {
                seen.Add(SearchResultJson.TraceIdHex(t.TraceId));
            }
        }

        Assert.True(messages > 1);
        Assert.Equal(40, seen.Count);
    }

    [Fact]
    public async Task GrpcTagsV2AndTagValuesV2_MatchHttp()
    {
        await using var host = await FrontendHost.StartAsync([TestData.Source(TestData.Small())]);
        using var client = new GrpcClient(host.Address);
        using var tagsReq = new ProtoWriter();
        tagsReq.WriteStringField(1, "resource");
        var scopes = new List<(string, List<string>)>();
        await foreach (var m in client.ServerStreamingAsync(StreamingQuerier.ServiceName, "SearchTagsV2", tagsReq.ToArray()))
        {
            var r = new ProtoReader(m.Span);
            while (r.TryReadTag(out int f, out var wt))
            {
                if (f != 1)
                {
                    r.SkipField(f, wt);
                    continue;
                }

                var s = r.ReadSubMessage();
                string name = string.Empty;
                var tags = new List<string>();
                while (s.TryReadTag(out int sf, out _))
                {
                    if (sf == 1)
                    {
                        name = s.ReadString();
                    }
                    else
                    {
                        tags.Add(s.ReadString());
                    }
                }

                scopes.Add((name, tags));
            }
        }

        var scope = Assert.Single(scopes);
        Assert.Equal("resource", scope.Item1);
        Assert.Equal(["service.name"], scope.Item2);

        using var valuesReq = new ProtoWriter();
        valuesReq.WriteStringField(1, "resource.service.name");
        valuesReq.WriteStringField(2, "{ span.http.method = \"POST\" }");
        var values = new List<(string Type, string Value)>();
        await foreach (var m in client.ServerStreamingAsync(StreamingQuerier.ServiceName, "SearchTagValuesV2", valuesReq.ToArray()))
        {
            var r = new ProtoReader(m.Span);
            while (r.TryReadTag(out int f, out var wt))
            {
                if (f != 1)
                {
                    r.SkipField(f, wt);
                    continue;
                }

                var s = r.ReadSubMessage();
                string type = string.Empty, value = string.Empty;
                while (s.TryReadTag(out int sf, out _))
                {
                    if (sf == 1)
                    {
                        type = s.ReadString();
                    }
                    else
                    {
                        value = s.ReadString();
                    }
                }

                values.Add((type, value));
            }
        }

        Assert.Equal([("string", "frontend")], values);
    }
}
