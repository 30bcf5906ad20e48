'use strict';
const test = require('node:test');
const assert = require('node:assert');
const http = require('http');
const crypto = require('crypto');
const { startEmulator, upload, makeBucket } = require('./helpers');

let emu;
test.before(async () => { emu = await startEmulator(); await makeBucket(emu, 'fbk'); });
test.after(async () => { await emu.close(); });
test.afterEach(async () => { await emu.request('DELETE', '/_emulator/faults'); });

test('health and request log (no secrets in it)', async () => {
  let r = await emu.request('GET', '/_emulator/health');
  assert.strictEqual(r.json.status, 'ok'); assert.strictEqual(r.json.port, emu.port);
  await emu.request('DELETE', '/_emulator/requests');
  await emu.request('GET', '/storage/v1/b/fbk/o?access_token=SECRET', { headers: { Authorization: 'Bearer SECRET' } });
  r = await emu.request('GET', '/_emulator/requests');
  assert.strictEqual(r.json.requests.length, 1);
  const e = r.json.requests[0];
  assert.strictEqual(e.method, 'GET'); assert.strictEqual(e.status, 200); assert.match(e.path, /^\/storage\/v1\/b\/fbk\/o/);
  assert.ok(!JSON.stringify(r.json).includes('SECRET'));
});

test('faults: count x 503 with Retry-After on matching path, then normal; GCS and Google shapes', async () => {
  let r = await emu.request('POST', '/_emulator/faults', { body: { path: '^/storage/v1/b/fbk/o$', status: 503, count: 2, retryAfter: 1 } });
  assert.strictEqual(r.status, 200); assert.strictEqual(r.json.faults[0].count, 2);
  r = await emu.request('GET', '/storage/v1/b/fbk/o');
  assert.strictEqual(r.status, 503); assert.strictEqual(r.headers['retry-after'], '1');
  assert.strictEqual(r.json.error.errors[0].reason, 'backendError');
  r = await emu.request('GET', '/storage/v1/b/fbk/o');
  assert.strictEqual(r.status, 503);
  r = await emu.request('GET', '/storage/v1/b/fbk/o');
  assert.strictEqual(r.status, 200);
  await emu.request('POST', '/_emulator/faults', { body: { rules: [{ path: '^/v1/', method: 'GET', status: 429, count: 1 }] } });
  r = await emu.request('GET', '/v1/projects/p/locations/l/datasets');
  assert.strictEqual(r.status, 429); assert.strictEqual(r.json.error.status, 'RESOURCE_EXHAUSTED');
  r = await emu.request('GET', '/v1/projects/p/locations/l/datasets');
  assert.strictEqual(r.status, 200);
  r = await emu.request('GET', '/_emulator/requests?path=' + encodeURIComponent('^/v1/'));
  assert.deepStrictEqual(r.json.requests.map((x) => x.status), [429, 200]);
  assert.ok(r.json.requests[0].fault);
  r = await emu.request('POST', '/_emulator/faults', { body: { path: 'x', bogus: 1 } });
  assert.strictEqual(r.status, 400);
});

test('faults: skip and share', async () => {
  await emu.request('POST', '/_emulator/faults', { body: { path: '/o$', status: 500, skip: 1, count: 1 } });
  const s = [];
  for (let i = 0; i < 3; i++) s.push((await emu.request('GET', '/storage/v1/b/fbk/o')).status);
  assert.deepStrictEqual(s, [200, 500, 200]);
  await emu.request('DELETE', '/_emulator/faults');
  await emu.request('POST', '/_emulator/faults', { body: { path: '/o$', status: 503, share: 0 } });
  assert.strictEqual((await emu.request('GET', '/storage/v1/b/fbk/o')).status, 200);
  await emu.request('DELETE', '/_emulator/faults');
});

test('faults: fallThrough lets the next rule decide when skip or share let a request pass', async () => {
  await emu.request('POST', '/_emulator/faults', { body: [
    { path: '/o$', status: 503, skip: 1, count: 1, fallThrough: true },
    { path: '/o$', status: 429, share: 0, fallThrough: true },
    { path: '/o$', status: 500, count: 1 }] });
  const s = [];
  for (let i = 0; i < 3; i++) s.push((await emu.request('GET', '/storage/v1/b/fbk/o')).status);
  assert.deepStrictEqual(s, [500, 503, 200]);
  const rules = (await emu.request('GET', '/_emulator/faults')).json.faults;
  assert.deepStrictEqual(rules.map((r) => r.fired), [1, 0, 1]);
  await emu.request('DELETE', '/_emulator/faults');
});

test('faults: reset mid-body, stall, throttle', async () => {
  const data = crypto.randomBytes(100000);
  await upload(emu, 'fbk', 'big', data);
  await emu.request('POST', '/_emulator/faults', { body: { path: '/o/big$', resetAfterBytes: 1000, count: 1 } });
  const got = await new Promise((resolve) => {
    http.get({ host: '127.0.0.1', port: emu.port, path: '/storage/v1/b/fbk/o/big?alt=media', agent: false }, (res) => {
      let n = 0; res.on('data', (c) => { n += c.length; });
      res.on('error', () => resolve({ n, aborted: true }));
      res.on('close', () => resolve({ n, aborted: !res.complete }));
    }).on('error', () => resolve({ n: 0, aborted: true }));
  });
  assert.ok(got.aborted); assert.ok(got.n <= 1000);
  let r = await emu.request('GET', '/storage/v1/b/fbk/o/big?alt=media');
  assert.ok(r.body.equals(data));
  await emu.request('POST', '/_emulator/faults', { body: { path: '/o/big$', stallMs: 200, count: 1 } });
  let t0 = Date.now();
  r = await emu.request('GET', '/storage/v1/b/fbk/o/big');
  assert.ok(Date.now() - t0 >= 190); assert.strictEqual(r.status, 200);
  await emu.request('POST', '/_emulator/faults', { body: { path: '/o/big$', throttleBytesPerSec: 200000, count: 1 } });
  t0 = Date.now();
  r = await emu.request('GET', '/storage/v1/b/fbk/o/big?alt=media');
  assert.ok(r.body.equals(data)); assert.ok(Date.now() - t0 >= 400, `took ${Date.now() - t0} ms`);
  // cut an upload after N request bytes: nothing is stored
  await emu.request('POST', '/_emulator/faults', { body: { path: '^/upload/', resetRequestAfterBytes: 5000, count: 1 } });
  await emu.request('POST', '/upload/storage/v1/b/fbk/o?uploadType=media&name=cut', { body: data }).catch(() => null);
  r = await emu.request('GET', '/storage/v1/b/fbk/o/cut');
  assert.strictEqual(r.status, 404);
});

test('reset clears everything; config changes op delay', async () => {
  let r = await emu.request('POST', '/_emulator/config', { body: { opDelayMs: 7 } });
  assert.deepStrictEqual(r.json, { opDelayMs: 7, maxConcurrentOperations: 100, logDelayMs: 0, logEmptyPages: 0 });
  r = await emu.request('POST', '/_emulator/reset');
  assert.strictEqual(r.status, 200);
  r = await emu.request('GET', '/storage/v1/b/fbk');
  assert.strictEqual(r.status, 404);
  r = await emu.request('GET', '/_emulator/state');
  assert.deepStrictEqual(r.json.buckets, []);
});

test('--faults start-up option and unknown options', () => {
  const { parseArgs } = require('../src/main');
  const o = parseArgs(['--data', '/tmp/x', '--faults', '{"path":"x","status":503}', '--strict-auth', '--service-account', 'a.json', '--service-account', 'b.json', '--token-lifetime', '5', '--op-delay-ms=3']);
  assert.deepStrictEqual(o.faults, { path: 'x', status: 503 });
  assert.deepStrictEqual(o.serviceAccounts, ['a.json', 'b.json']);
  assert.strictEqual(o.strictAuth, true); assert.strictEqual(o.tokenLifetime, 5); assert.strictEqual(o.opDelayMs, 3);
  assert.throws(() => parseArgs(['--data', 'x', '--nope']), /unknown option/);
});
