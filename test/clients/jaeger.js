'use strict';
// Sends the canonical integration trace with the unmodified jaeger-client (OpenTracing API).
// usage: node jaeger.js http <collector url e.g. http://127.0.0.1:14268/api/traces> [service-name]
//        node jaeger.js udp <agent host> <agent port> [service-name]     (Thrift binary emitBatch over UDP)
// jaeger-client encodes numbers as DOUBLE tags, booleans as BOOL, objects as JSON strings; logs become events and
// FOLLOWS_FROM references to another trace become links.
const { initTracer } = require('jaeger-client');
const opentracing = require('opentracing');

const mode = process.argv[2];
let reporter, serviceName;
if (mode === 'http') {
  reporter = { collectorEndpoint: process.argv[3] };
  serviceName = process.argv[4] || 'rubato-it-jaeger-http';
} else if (mode === 'udp') {
  reporter = { agentHost: process.argv[3], agentPort: Number(process.argv[4]) };
  serviceName = process.argv[5] || 'rubato-it-jaeger-udp';
} else {
  console.error('usage: node jaeger.js http <url> | udp <host> <port> [service-name]');
  process.exit(2);
}

const errors = [];
const logger = { info: () => {}, error: m => errors.push(String(m)) };
reporter.flushIntervalMs = 60000;
const tracer = initTracer({
  serviceName,
  sampler: { type: 'const', param: 1 },
  reporter,
}, { logger, traceId128bit: true, tags: { 'deployment.environment': 'integration', 'host.cpu.count': 2 } });

const t0 = Date.now() - 1000;
const linkCtx = tracer.startSpan('linked elsewhere').context();
const root = tracer.startSpan('GET /checkout', { startTime: t0, tags: {
  'span.kind': 'server', 'str.attr': 'hello', 'double.attr': 3.25, 'bool.attr': true,
} });
root.log({ event: 'request.received', 'event.str': 'x' }, t0 + 1);
const child = tracer.startSpan('SELECT orders', {
  startTime: t0 + 10,
  references: [opentracing.childOf(root.context()), opentracing.followsFrom(linkCtx)],
  tags: { 'span.kind': 'client', 'db.system': 'postgresql' },
});
const grandchild = tracer.startSpan('publish order', { childOf: child.context(), startTime: t0 + 20, tags: { 'span.kind': 'producer' } });
grandchild.setTag('error', true);
grandchild.log({ event: 'error', message: 'payment declined' }, t0 + 25);
grandchild.finish(t0 + 30);
child.finish(t0 + 40);
root.finish(t0 + 50);

const hex = b => b.toString('hex');
tracer.close(() => {
  if (errors.length > 0) {
    console.error(`jaeger export failed: ${errors.join('; ')}`);
    process.exit(1);
  }
  console.log(JSON.stringify({
    traceId: root.context().traceIdStr,
    spans: { root: root.context().spanIdStr, child: child.context().spanIdStr, grandchild: grandchild.context().spanIdStr },
    link: { traceId: linkCtx.traceIdStr, spanId: hex(linkCtx.spanId) },
  }));
  process.exit(0);
});
