// Calls a Rubato.Grpc server with @grpc/grpc-js, messages as raw bytes (no protobuf), gzip both ways.
// Usage: node interop.js host:port ; prints one JSON object with what happened.
const grpc = require('@grpc/grpc-js');

const address = process.argv[2];
const client = new grpc.Client(address, grpc.credentials.createInsecure(), {
  'grpc.default_compression_algorithm': 2, // gzip
  'grpc.default_compression_level': 2,
});
const raw = (b) => b; // serialize / deserialize: Buffers pass through
const deadline = () => Date.now() + 15000;
const result = {};

function metadata() {
  const m = new grpc.Metadata();
  m.set('x-scope-orgid', 'node-tenant');
  return m;
}

function unary() {
  return new Promise((resolve) => {
    client.makeUnaryRequest('/rubato.interop.Echo/Unary', raw, raw, Buffer.from('hello from node '.repeat(100)),
      metadata(), { deadline: deadline() }, (err, reply) => {
        result.unary = err ? { error: err.code, details: err.details } : reply.toString('utf8');
        resolve();
      });
  });
}

function failing() {
  return new Promise((resolve) => {
    client.makeUnaryRequest('/rubato.interop.Echo/Fail', raw, raw, Buffer.from('x'), metadata(), { deadline: deadline() },
      (err) => {
        result.fail = err ? { code: err.code, details: err.details } : 'no error';
        resolve();
      });
  });
}

function streaming() {
  return new Promise((resolve) => {
    const messages = [];
    const call = client.makeServerStreamRequest('/rubato.interop.Echo/Stream', raw, raw, Buffer.from('5'), metadata(),
      { deadline: deadline() });
    call.on('data', (m) => messages.push(m.toString('utf8')));
    call.on('error', (err) => { result.stream = { error: err.code, details: err.details, messages }; resolve(); });
    call.on('status', (s) => {
      if (s.code === grpc.status.OK) { result.stream = { messages }; resolve(); }
    });
  });
}

(async () => {
  await unary();
  await failing();
  await streaming();
  client.close();
  console.log(JSON.stringify(result));
})();
