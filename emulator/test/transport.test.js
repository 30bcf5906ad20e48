'use strict';
// The emulator as a remote Google: HTTP/2 over TLS (ALPN h2 + http/1.1) with its own CA, h2c with
// prior knowledge beside HTTP/1.1, --latency-ms, per-stream resets on HTTP/2, connection counts.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const https = require('https');
const http2 = require('http2');
const { createEmulator } = require('../src/server');

async function start(opts) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dgemu-net-'));
  const ctx = createEmulator(Object.assign({ dataDir, opDelayMs: 2 }, opts));
  await new Promise((r) => ctx.server.listen(0, '127.0.0.1', r));
  return {
    ctx, port: ctx.server.address().port, dataDir,
    async close() {
      ctx.server.closeAllConnections();
      await new Promise((r) => ctx.server.close(r));
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** One request on an HTTP/2 session: {status, headers, body}. */
function h2req(session, headers, body) {
  return new Promise((resolve, reject) => {
    const s = session.request(headers);
    const chunks = [];
    let head;
    s.on('response', (h) => { head = h; });
    s.on('data', (c) => chunks.push(c));
    s.on('end', () => resolve({ status: head && head[':status'], headers: head, body: Buffer.concat(chunks) }));
    s.on('error', reject);
    s.end(body);
  });
}

test('--tls: HTTP/2 by ALPN, certificate for 127.0.0.1 from the CA in the data dir; HTTP/1.1 too', async () => {
  const emu = await start({ tls: true });
  try {
    const ca = fs.readFileSync(path.join(emu.dataDir, 'tls-ca.pem'));
    assert.strictEqual(emu.ctx.server.caFile, path.join(emu.dataDir, 'tls-ca.pem'));
    const session = http2.connect(`https://127.0.0.1:${emu.port}`, { ca });
    const r = await h2req(session, { ':method': 'POST', ':path': '/storage/v1/b?project=proj-123', 'content-type': 'application/json' }, JSON.stringify({ name: 'tlsb' }));
    assert.strictEqual(r.status, 200);
    assert.strictEqual(session.alpnProtocol, 'h2');
    const l = await h2req(session, { ':path': '/storage/v1/b/tlsb/o' });
    assert.strictEqual(l.status, 200);
    assert.strictEqual(JSON.parse(l.body).kind, 'storage#objects');
    session.close();
    // HTTP/1.1 on the same port (ALPN http/1.1)
    const h1 = await new Promise((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: emu.port, path: '/storage/v1/b/tlsb', ca, agent: false }, (res) => {
        res.resume(); res.on('end', () => resolve({ status: res.statusCode, version: res.httpVersion }));
      }).on('error', reject);
    });
    assert.deepStrictEqual(h1, { status: 200, version: '1.1' });
    // an untrusted certificate is refused: the client must be given the CA
    await assert.rejects(new Promise((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: emu.port, path: '/_emulator/health', agent: false }, resolve).on('error', reject);
    }), /self[- ]signed|unable to (get|verify)/i);
    const log = emu.ctx.requests.filter((e) => e.path.startsWith('/storage/'));
    assert.deepStrictEqual(log.map((e) => e.http), ['2.0', '2.0', '1.1']);
    assert.ok(emu.ctx.connections.total >= 3 && emu.ctx.connections.http2 === 1, JSON.stringify(emu.ctx.connections));
  } finally { await emu.close(); }
});

test('--h2c: HTTP/2 with prior knowledge and HTTP/1.1 on one cleartext port', async () => {
  const emu = await start({ h2c: true });
  try {
    const session = http2.connect(`http://127.0.0.1:${emu.port}`);
    const [a, b] = await Promise.all([h2req(session, { ':path': '/_emulator/health' }), h2req(session, { ':path': '/storage/v1/b?project=proj-123' })]);
    assert.strictEqual(a.status, 200); assert.strictEqual(JSON.parse(a.body).status, 'ok');
    assert.strictEqual(b.status, 200);
    session.close();
    const h1 = await new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: emu.port, path: '/_emulator/health', agent: false }, (res) => {
        res.resume(); res.on('end', () => resolve(res.httpVersion));
      }).on('error', reject);
    });
    assert.strictEqual(h1, '1.1');
    assert.strictEqual(emu.ctx.connections.http2, 1);
    assert.strictEqual(emu.ctx.connections.total, 2);
  } finally { await emu.close(); }
});

test('--latency-ms holds each answer, not the admin API; status, headers and body intact', async () => {
  const emu = await start({ tls: true, latencyMs: 1500 });
  try {
    const ca = fs.readFileSync(path.join(emu.dataDir, 'tls-ca.pem'));
    const session = http2.connect(`https://127.0.0.1:${emu.port}`, { ca });
    const order = [];
    // sent first, answered last: the held answer comes after the admin call sent after it
    const slow = h2req(session, { ':path': '/storage/v1/b/nope' }).then((r) => { order.push('storage'); return r; });
    await new Promise((r) => setImmediate(r));
    const fast = h2req(session, { ':path': '/_emulator/health' }).then((r) => { order.push('admin'); return r; });
    const [s, f] = await Promise.all([slow, fast]);
    assert.deepStrictEqual(order, ['admin', 'storage']);
    assert.strictEqual(f.status, 200);
    assert.strictEqual(s.status, 404);
    assert.match(s.headers['content-type'], /^application\/json/);
    assert.strictEqual(JSON.parse(s.body).error.errors[0].reason, 'notFound');
    session.close();
  } finally { await emu.close(); }
});

test('HTTP/2: a reset fault cuts one stream (RST_STREAM), its neighbours on the connection go on', async () => {
  const emu = await start({ tls: true });
  try {
    const ca = fs.readFileSync(path.join(emu.dataDir, 'tls-ca.pem'));
    emu.ctx.faults.add({ path: '^/storage/v1/b/cut$', resetAfterBytes: 0 });
    const session = http2.connect(`https://127.0.0.1:${emu.port}`, { ca });
    const cut = h2req(session, { ':path': '/storage/v1/b/cut' });
    const ok = h2req(session, { ':path': '/_emulator/health' });
    await assert.rejects(cut, (e) => e.code === 'ERR_HTTP2_STREAM_ERROR' && /INTERNAL_ERROR/.test(e.message));
    assert.strictEqual((await ok).status, 200);
    assert.strictEqual((await h2req(session, { ':path': '/_emulator/health' })).status, 200, 'the connection survives');
    assert.strictEqual(emu.ctx.connections.http2, 1);
    session.close();
  } finally { await emu.close(); }
});
