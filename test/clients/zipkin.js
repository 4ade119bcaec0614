'use strict';
// Sends the canonical integration trace with the unmodified zipkin-js tracer and zipkin-transport-http (JSON v2).
// usage: node zipkin.js <url e.g. http://127.0.0.1:9411/api/v2/spans> [service-name]
// Zipkin carries string tags, annotations (events without attributes), kinds SERVER/CLIENT/PRODUCER and the
// "error" tag; it has no links, typed attributes or scopes.
const { Tracer, BatchRecorder, ExplicitContext, Annotation, jsonEncoder } = require('zipkin');
const { HttpLogger } = require('zipkin-transport-http');
const fetch = require('node-fetch');

const [url, serviceName = 'rubato-it-zipkin-js'] = process.argv.slice(2);
if (!url) {
  console.error('usage: node zipkin.js <url> [service-name]');
  process.exit(2);
}

const statuses = [];
const pending = [];
// The logger's own fetch call, observed so we know the POST completed and with which status.
const observedFetch = (u, opts) => {
  const p = fetch(u, opts).then(r => { statuses.push(r.status); return r; });
  pending.push(p.catch(() => undefined));
  return p;
};
const logger = new HttpLogger({ endpoint: url, jsonEncoder: jsonEncoder.JSON_V2, fetchImplementation: observedFetch, httpInterval: 60000 });
const errors = [];
logger.on('error', e => errors.push(String(e)));
const tracer = new Tracer({ ctxImpl: new ExplicitContext(), recorder: new BatchRecorder({ logger }), localServiceName: serviceName, traceId128Bit: true });

const ids = {};
const rootId = tracer.createRootId();
tracer.letId(rootId, () => {
  tracer.recordServiceName(serviceName);
  tracer.recordRpc('GET /checkout');
  tracer.recordAnnotation(new Annotation.ServerRecv());
  tracer.recordBinary('str.attr', 'hello');
  tracer.recordBinary('http.method', 'GET');
  tracer.recordMessage('request.received');
  ids.root = rootId.spanId;

  const childId = tracer.createChildId();
  tracer.letId(childId, () => {
    tracer.recordServiceName(serviceName);
    tracer.recordRpc('SELECT orders');
    tracer.recordAnnotation(new Annotation.ClientSend());
    tracer.recordBinary('db.system', 'postgresql');
    ids.child = childId.spanId;

    const grandchildId = tracer.createChildId();
    tracer.letId(grandchildId, () => {
      tracer.recordServiceName(serviceName);
      tracer.recordRpc('publish order');
      tracer.recordAnnotation(new Annotation.ProducerStart());
      tracer.recordBinary('error', 'true');
      tracer.recordBinary('error.message', 'payment declined');
      tracer.recordAnnotation(new Annotation.ProducerStop());
      ids.grandchild = grandchildId.spanId;
    });
    tracer.recordAnnotation(new Annotation.ClientRecv());
  });
  tracer.recordAnnotation(new Annotation.ServerSend());
});

(async () => {
  logger.processQueue(observedFetch);
  await Promise.all(pending);
  if (errors.length > 0 || statuses.length === 0 || statuses.some(s => s !== 202 && s !== 200)) {
    console.error(`zipkin export failed: statuses=${JSON.stringify(statuses)} errors=${errors.join('; ')}`);
    process.exit(1);
  }
  console.log(JSON.stringify({ traceId: rootId.traceId, spans: ids }));
  process.exit(0);
})().catch(e => { console.error(e && e.stack || String(e)); process.exit(1); });
