'use strict';
// Sends the canonical integration trace with the unmodified OpenTelemetry JS SDK.
// usage: node otel.js <grpc|http-json|http-proto> <url> [service-name]
//   grpc:       url = http://127.0.0.1:4317
//   http-json:  url = http://127.0.0.1:4318/v1/traces  (JSON encoding)
//   http-proto: url = http://127.0.0.1:4318/v1/traces  (binary protobuf)
// Prints {"traceId","spans":{"root","child","grandchild"},"link":{"traceId","spanId"}} on stdout after the export succeeded.
const api = require('@opentelemetry/api');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { ExportResultCode } = require('@opentelemetry/core');

const [protocol, url, serviceName = `rubato-it-otel-js-${protocol}`] = process.argv.slice(2);
if (!protocol || !url) {
  console.error('usage: node otel.js <grpc|http-json|http-proto> <url> [service-name]');
  process.exit(2);
}

function makeExporter() {
  switch (protocol) {
    case 'grpc': return new (require('@opentelemetry/exporter-trace-otlp-grpc').OTLPTraceExporter)({ url });
    case 'http-json': return new (require('@opentelemetry/exporter-trace-otlp-http').OTLPTraceExporter)({ url });
    case 'http-proto': return new (require('@opentelemetry/exporter-trace-otlp-proto').OTLPTraceExporter)({ url });
    default: console.error(`unknown protocol ${protocol}`); process.exit(2);
  }
}

// Wrap the exporter only to learn the export result; the SDK and exporter themselves are unmodified.
const inner = makeExporter();
const results = [];
const exporter = {
  export(spans, done) { inner.export(spans, r => { results.push(r); done(r); }); },
  shutdown() { return inner.shutdown(); },
  forceFlush() { return inner.forceFlush ? inner.forceFlush() : Promise.resolve(); },
};

const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({
    'service.name': serviceName,
    'deployment.environment': 'integration',
    'host.cpu.count': 2,
  }),
  spanProcessors: [new SimpleSpanProcessor(exporter)],
});
const tracer = provider.getTracer('rubato.it', '1.2.3');

const linkTraceId = '0af7651916cd43dd8448eb211c80319c';
const linkSpanId = 'b7ad6b7169203331';
const t0 = Date.now() - 1000;
const ms = n => new Date(t0 + n);

const root = tracer.startSpan('GET /checkout', {
  kind: api.SpanKind.SERVER,
  startTime: ms(0),
  attributes: {
    'str.attr': 'hello', 'int.attr': 42, 'double.attr': 3.25, 'bool.attr': true,
    'str.array': ['a', 'b'], 'int.array': [1, 2, 3], 'double.array': [1.5, 2.5], 'bool.array': [true, false],
  },
});
root.addEvent('request.received', { 'event.str': 'x', 'event.int': 7 }, ms(1));
const rootCtx = api.trace.setSpan(api.context.active(), root);

const child = tracer.startSpan('SELECT orders', {
  kind: api.SpanKind.CLIENT,
  startTime: ms(10),
  attributes: { 'db.system': 'postgresql' },
  links: [{ context: { traceId: linkTraceId, spanId: linkSpanId, traceFlags: 1 }, attributes: { 'link.reason': 'retry' } }],
}, rootCtx);
const childCtx = api.trace.setSpan(rootCtx, child);

const grandchild = tracer.startSpan('publish order', { kind: api.SpanKind.PRODUCER, startTime: ms(20) }, childCtx);
grandchild.setStatus({ code: api.SpanStatusCode.ERROR, message: 'payment declined' });
grandchild.end(ms(30));
child.end(ms(40));
root.end(ms(50));

(async () => {
  await provider.forceFlush();
  await provider.shutdown();
  const failed = results.filter(r => r.code !== ExportResultCode.SUCCESS);
  if (results.length === 0 || failed.length > 0) {
    console.error(`export failed: ${failed.map(r => String(r.error)).join('; ') || 'nothing exported'}`);
    process.exit(1);
  }
  console.log(JSON.stringify({
    traceId: root.spanContext().traceId,
    spans: { root: root.spanContext().spanId, child: child.spanContext().spanId, grandchild: grandchild.spanContext().spanId },
    link: { traceId: linkTraceId, spanId: linkSpanId },
  }));
})().catch(e => { console.error(e && e.stack || String(e)); process.exit(1); });
