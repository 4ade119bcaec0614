using Rubato.Common.Configuration;
using Rubato.Server.Configuration;
using Xunit;

namespace Rubato.Server.Tests;

public sealed class ConfigLoaderTests
{
    [Fact]
    public void Parse_Empty_GivesTempoDefaults()
    {
        var c = ConfigLoader.Parse(string.Empty, expandEnv: false, []);

        Assert.Equal(3200, c.Server.HttpListenPort);
        Assert.Equal(9095, c.Server.GrpcListenPort);
        Assert.Equal("all", c.Target);
        Assert.False(c.MultitenancyEnabled);
        Assert.Equal("local", c.Storage.Trace.Backend);
    }

    [Fact]
    public void Parse_UnknownNestedKey_ErrorNamesPathAndLine()
    {
        const string yaml = "server:\n  http_listen_port: 1234\n  htp_listen_address: x\n";

        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, false, []));

        Assert.Contains("unknown configuration key 'server.htp_listen_address'", e.Message);
        Assert.Contains("line 3", e.Message);
    }

    [Fact]
    public void Parse_UnknownTopLevelKey_IsError()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("no_such_section: 1\n", false, []));

        Assert.Contains("'no_such_section'", e.Message);
    }

    [Fact]
    public void Parse_UnknownReceiverKey_IsErrorWithReceiversPath()
    {
        const string yaml = "distributor:\n  receivers:\n    otlp:\n      protocols:\n        grcp:\n";

        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, false, []));

        Assert.Contains("distributor.receivers.otlp.protocols.grcp", e.Message);
    }

    [Fact]
    public void Parse_TempoSectionNotUsedYet_IsWarningNotError()
    {
        var warnings = new List<string>();

        ConfigLoader.Parse("compactor:\n  compaction:\n    block_retention: 48h\n", false, warnings);

        Assert.Contains(warnings, w => w.StartsWith("compactor:", StringComparison.Ordinal));
    }

    [Fact]
    public void Parse_CompleteBlockTimeoutBeyondCompactedRetention_Warns()
    {
        var validation = new ConfigValidation();

        ConfigLoader.Parse("ingester:\n  complete_block_timeout: 2h\n", false, []).Validate(string.Empty, validation);

        Assert.Contains(validation.Warnings, w => w.StartsWith("ingester.complete_block_timeout:", StringComparison.Ordinal) && w.Contains("compacted_block_retention", StringComparison.Ordinal));
    }

    [Fact]
    public void Parse_DefaultTimeouts_NoCompleteBlockTimeoutWarning()
    {
        var validation = new ConfigValidation();

        ConfigLoader.Parse("ingester:\n  complete_block_timeout: 15m\n", false, []).Validate(string.Empty, validation);

        Assert.DoesNotContain(validation.Warnings, w => w.StartsWith("ingester.complete_block_timeout", StringComparison.Ordinal));
    }

    [Fact]
    public void Parse_GoDurations_Bind()
    {
        var c = ConfigLoader.Parse("server:\n  graceful_shutdown_timeout: 1m30s\nstorage:\n  trace:\n    blocklist_poll: 250ms\n", false, []);

        Assert.Equal(TimeSpan.FromSeconds(90), c.Server.GracefulShutdownTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(250), c.Storage.Trace.BlocklistPoll);
    }

    [Fact]
    public void Parse_BadDuration_ErrorNamesValue()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("server:\n  graceful_shutdown_timeout: soon\n", false, []));

        Assert.Contains("'soon' is not a duration", e.Message);
    }

    [Fact]
    public void Parse_ExpandEnv_SubstitutesVariablesAndDefaults()
    {
        Environment.SetEnvironmentVariable("RUBATO_TEST_PORT", "4242");
        const string yaml = "server:\n  http_listen_port: ${RUBATO_TEST_PORT}\n  grpc_listen_port: ${RUBATO_TEST_UNSET_VAR:-5151}\n";

        var c = ConfigLoader.Parse(yaml, expandEnv: true, []);

        Assert.Equal(4242, c.Server.HttpListenPort);
        Assert.Equal(5151, c.Server.GrpcListenPort);
    }

    [Fact]
    public void Parse_ExpandEnvOff_LeavesTextAlone()
    {
        Assert.Throws<ConfigException>(() => ConfigLoader.Parse("server:\n  http_listen_port: ${RUBATO_TEST_PORT}\n", expandEnv: false, []));
    }

    [Fact]
    public void Parse_InvalidYaml_ErrorHasLine()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("server:\n  a: [1, 2\n", false, []));

        Assert.Contains("not valid YAML", e.Message);
    }

    [Fact]
    public void Parse_EmbeddedDefaults_AreValid()
    {
        var c = ConfigLoader.Parse(RubatoConfig.EmbeddedDefaultYaml, false, []);
        var v = new ConfigValidation();

        c.Validate(string.Empty, v);

        Assert.Empty(v.Errors);
        Assert.Equal("./data/wal", c.Storage.Trace.Wal.Path);
    }

    [Fact]
    public void Validate_BadValues_ReportErrorsByKey()
    {
        var c = ConfigLoader.Parse("server:\n  http_listen_port: 70000\n  log_level: loud\nstorage:\n  trace:\n    backend: tape\n", false, []);
        var v = new ConfigValidation();

        c.Validate(string.Empty, v);

        Assert.Contains(v.Errors, e => e.StartsWith("server.http_listen_port", StringComparison.Ordinal));
        Assert.Contains(v.Errors, e => e.StartsWith("server.log_level", StringComparison.Ordinal));
        Assert.Contains(v.Errors, e => e.StartsWith("storage.trace.backend", StringComparison.Ordinal));
    }

    [Fact]
    public void ToYaml_RoundTrips()
    {
        var c = ConfigLoader.Parse("server:\n  http_listen_port: 1111\nmultitenancy_enabled: true\n", false, []);

        var again = ConfigLoader.Parse(ConfigLoader.ToYaml(c), false, []);

        Assert.Equal(1111, again.Server.HttpListenPort);
        Assert.True(again.MultitenancyEnabled);
    }

    [Theory]
    [InlineData("0", 0)]
    [InlineData("10s", 10_000)]
    [InlineData("1h30m", 5_400_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("250ms", 250)]
    [InlineData("2d", 172_800_000)]
    public void GoDuration_TryParse_Valid(string text, long millis)
    {
        Assert.True(GoDuration.TryParse(text, out var t));
        Assert.Equal(millis, (long)t.TotalMilliseconds);
    }

    [Theory]
    [InlineData("")]
    [InlineData("10")]
    [InlineData("5 minutes")]
    [InlineData("s")]
    public void GoDuration_TryParse_Invalid(string text) => Assert.False(GoDuration.TryParse(text, out _));

    [Theory]
    [InlineData(new[] { "-config.file=a.yaml", "-target=all" }, "a.yaml", "all")]
    [InlineData(new[] { "--config.file", "b.yaml" }, "b.yaml", null)]
    [InlineData(new[] { "-target", "querier", "-config.expand-env" }, null, "querier")]
    public void CommandLine_Parse_TempoStyleFlags(string[] args, string? file, string? target)
    {
        var cl = CommandLine.Parse(args);

        Assert.Equal(file, cl.ConfigFile);
        Assert.Equal(target, cl.Target);
    }

    [Fact]
    public void CommandLine_UnknownFlag_Errors()
    {
        var e = Assert.Throws<ConfigException>(() => CommandLine.Parse(["-config.fil=x"]));

        Assert.Contains("-config.fil", e.Message);
    }
}

public sealed class ConfigYamlRoundTripTests
{
    [Fact]
    public void ToYaml_Receivers_RoundTripEnabledAndDisabled()
    {
        const string yaml = "distributor:\n  receivers:\n    otlp:\n      protocols:\n        grpc:\n          endpoint: 127.0.0.1:1234\n    zipkin:\n";
        var c = ConfigLoader.Parse(yaml, false, []);

        var text = ConfigLoader.ToYaml(c);
        var again = ConfigLoader.Parse(text, false, []);

        Assert.Contains("receivers:", text);
        Assert.Equal("127.0.0.1:1234", again.Receivers.Otlp!.Protocols!.Grpc!.Endpoint);
        Assert.NotNull(again.Receivers.Zipkin);
        Assert.Null(again.Receivers.Jaeger);
        Assert.Null(again.Receivers.Otlp.Protocols.Http);
    }

    private static string SourceDirectory([System.Runtime.CompilerServices.CallerFilePath] string path = "") =>
        Path.GetDirectoryName(path)!;

    [Fact]
    public void ConfigurationDoc_MentionsEveryDefaultKey()
    {
        // docs/configuration.md must stay current: every key of the default config appears in it.
        string root = SourceDirectory();
        while (!File.Exists(Path.Combine(root, "Rubato.slnx")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("repository root not found");
        }

        string doc = File.ReadAllText(Path.Combine(root, "docs", "configuration.md"));
        var keys = ConfigLoader.ToYaml(ConfigLoader.Parse(RubatoConfig.EmbeddedDefaultYaml, false, []))
            .Split('\n')
            .Select(l => l.Trim())
            .Where(l => l.Contains(':'))
            .Select(l => l[..l.IndexOf(':')].TrimStart('-', ' '))
            .Where(k => k.Length > 0)
            .Distinct();

        var missing = keys.Where(k => !doc.Contains(k + ":", StringComparison.Ordinal) && !doc.Contains("`" + k + "`", StringComparison.Ordinal) && !doc.Contains("." + k + "`", StringComparison.Ordinal) && !doc.Contains("." + k + ".", StringComparison.Ordinal)).ToList();

        Assert.True(missing.Count == 0, "docs/configuration.md does not mention: " + string.Join(", ", missing));
    }

    [Fact]
    public void ToYaml_Secrets_AreMasked()
    {
        const string yaml = "storage:\n  trace:\n    backend: s3\n    s3:\n      bucket: b\n      endpoint: 127.0.0.1:9000\n      access_key: AK\n      secret_key: very-secret\n";
        var c = ConfigLoader.Parse(yaml, false, []);

        var text = ConfigLoader.ToYaml(c);

        Assert.DoesNotContain("very-secret", text);
        Assert.Contains("secret_key: '********'", text);
        Assert.Contains("access_key: AK", text);
    }

    [Fact]
    public void Validate_S3WithoutBucket_ErrorNamesKey()
    {
        var c = ConfigLoader.Parse("storage:\n  trace:\n    backend: s3\n", false, []);
        var v = new ConfigValidation();

        c.Validate(string.Empty, v);

        Assert.Contains(v.Errors, e => e.Contains("storage.trace.s3.bucket", StringComparison.Ordinal));
    }
}
