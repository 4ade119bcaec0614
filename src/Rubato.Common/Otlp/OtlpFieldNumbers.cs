namespace Rubato.Common.Otlp;

/// <summary>
/// Protobuf field numbers of the OTLP trace messages (opentelemetry-proto: collector/trace/v1/trace_service.proto,
/// trace/v1/trace.proto, common/v1/common.proto, resource/v1/resource.proto). Tempo's <c>tempopb.Trace</c>
/// (<c>batches</c>/<c>resourceSpans</c> = 1) shares field 1 with <c>TracesData</c> and <c>ExportTraceServiceRequest</c>.
/// </summary>
public static class OtlpFieldNumbers
{
    /// <summary>ExportTraceServiceRequest / TracesData / tempopb.Trace.</summary>
    public static class TracesData
    {
        public const int ResourceSpans = 1;
    }

    public static class ExportTraceServiceResponse
    {
        public const int PartialSuccess = 1;
    }

    public static class ExportTracePartialSuccess
    {
        public const int RejectedSpans = 1; // int64
        public const int ErrorMessage = 2;
    }

    public static class ResourceSpans
    {
        public const int Resource = 1;
        public const int ScopeSpans = 2;
        public const int SchemaUrl = 3;
    }

    public static class ScopeSpans
    {
        public const int Scope = 1;
        public const int Spans = 2;
        public const int SchemaUrl = 3;
    }

    public static class Span
    {
        public const int TraceId = 1; // bytes
        public const int SpanId = 2; // bytes
        public const int TraceState = 3; // string
        public const int ParentSpanId = 4; // bytes
        public const int Name = 5; // string
        public const int Kind = 6; // enum (varint)
        public const int StartTimeUnixNano = 7; // fixed64
        public const int EndTimeUnixNano = 8; // fixed64
        public const int Attributes = 9; // repeated KeyValue
        public const int DroppedAttributesCount = 10; // uint32
        public const int Events = 11; // repeated Event
        public const int DroppedEventsCount = 12; // uint32
        public const int Links = 13; // repeated Link
        public const int DroppedLinksCount = 14; // uint32
        public const int Status = 15; // Status
        public const int Flags = 16; // fixed32
    }

    /// <summary>Field 1 is reserved (the removed deprecated_code).</summary>
    public static class Status
    {
        public const int Message = 2;
        public const int Code = 3; // enum
    }

    public static class Event
    {
        public const int TimeUnixNano = 1; // fixed64
        public const int Name = 2;
        public const int Attributes = 3;
        public const int DroppedAttributesCount = 4;
    }

    public static class Link
    {
        public const int TraceId = 1;
        public const int SpanId = 2;
        public const int TraceState = 3;
        public const int Attributes = 4;
        public const int DroppedAttributesCount = 5;
        public const int Flags = 6; // fixed32
    }

    public static class KeyValue
    {
        public const int Key = 1;
        public const int Value = 2;
    }

    /// <summary>A oneof: exactly one field is present (none for an empty value).</summary>
    public static class AnyValue
    {
        public const int StringValue = 1;
        public const int BoolValue = 2;
        public const int IntValue = 3; // int64 varint
        public const int DoubleValue = 4; // fixed64
        public const int ArrayValue = 5;
        public const int KvlistValue = 6;
        public const int BytesValue = 7;
    }

    public static class ArrayValue
    {
        public const int Values = 1;
    }

    public static class KeyValueList
    {
        public const int Values = 1;
    }

    public static class InstrumentationScope
    {
        public const int Name = 1;
        public const int Version = 2;
        public const int Attributes = 3;
        public const int DroppedAttributesCount = 4;
    }

    public static class Resource
    {
        public const int Attributes = 1;
        public const int DroppedAttributesCount = 2;
    }
}
