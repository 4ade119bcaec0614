using System.Globalization;
using System.Text;
using Rubato.Common.Model;

namespace Rubato.Receivers.Tests.Support;

/// <summary>
/// A canonical, line-based text form of a <see cref="Trace"/>, used to compare translator output with hand-written
/// expectations in the corpus. Attributes are listed in order with their type.
/// </summary>
public static class TraceDump
{
    public static string Dump(Trace trace)
    {
        var sb = new StringBuilder();
        foreach (var rs in trace.ResourceSpans)
        {
            sb.Append("resource").AppendLine();
            foreach (var kv in rs.Resource.Attributes)
            {
                sb.Append("  attr ").Append(Attr(kv)).AppendLine();
            }

            foreach (var ss in rs.ScopeSpans)
            {
                sb.Append("  scope name=").Append(ss.Scope.Name).Append(" version=").Append(ss.Scope.Version).AppendLine();
                foreach (var s in ss.Spans)
                {
                    sb.Append("    span trace=").Append(s.TraceId.ToHex()).Append(" id=").Append(s.SpanId.ToHex())
                        .Append(" parent=").Append(s.ParentSpanId.IsEmpty ? "-" : s.ParentSpanId.ToHex())
                        .Append(" name=").Append(s.Name)
                        .Append(" kind=").Append(s.Kind)
                        .Append(" start=").Append(s.StartTimeUnixNano.ToString(CultureInfo.InvariantCulture))
                        .Append(" end=").Append(s.EndTimeUnixNano.ToString(CultureInfo.InvariantCulture))
                        .Append(" status=").Append(s.StatusCode);
                    if (s.StatusMessage.Length > 0)
                    {
                        sb.Append(" message=").Append(s.StatusMessage);
                    }

                    if (s.TraceState.Length > 0)
                    {
                        sb.Append(" tracestate=").Append(s.TraceState);
                    }

                    sb.AppendLine();
                    foreach (var kv in s.Attributes)
                    {
                        sb.Append("      attr ").Append(Attr(kv)).AppendLine();
                    }

                    foreach (var e in s.Events)
                    {
                        sb.Append("      event time=").Append(e.TimeUnixNano.ToString(CultureInfo.InvariantCulture)).Append(" name=").Append(e.Name);
                        if (e.DroppedAttributesCount > 0)
                        {
                            sb.Append(" dropped=").Append(e.DroppedAttributesCount.ToString(CultureInfo.InvariantCulture));
                        }

                        sb.AppendLine();
                        foreach (var kv in e.Attributes)
                        {
                            sb.Append("        attr ").Append(Attr(kv)).AppendLine();
                        }
                    }

                    foreach (var l in s.Links)
                    {
                        sb.Append("      link trace=").Append(l.TraceId.ToHex()).Append(" id=").Append(l.SpanId.ToHex()).AppendLine();
                        foreach (var kv in l.Attributes)
                        {
                            sb.Append("        attr ").Append(Attr(kv)).AppendLine();
                        }
                    }
                }
            }
        }

        return sb.ToString();
    }

    private static string Attr(KeyValue kv) => $"{kv.Key}={kv.Value.Kind.ToString().ToLowerInvariant()}:{kv.Value}";
}
