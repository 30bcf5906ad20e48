'use strict';
// Per-minute quotas (--quota NAME=N/min, window shortened by --quota-window-ms for tests) and the
// resetAfterHandling fault (the request runs, the answer is lost).
const test = require('node:test');
const assert = require('node:assert');
const { startEmulator, makeBucket } = require('./helpers');
const { parseArgs } = require('../src/main');
const { parseQuota, Quotas } = require('../src/quota');

test('--quota parsing: NAME=N/min, repeatable, known names only', () => {
  const o = parseArgs(['--data', '/tmp/x', '--quota', 'storage=5/min', '--quota=dicomweb-write=60/min', '--quota-window-ms', '200']);
  assert.deepStrictEqual(o.quotas, { storage: 5, 'dicomweb-write': 60 });
  assert.strictEqual(o.quotaWindowMs, 200);
  assert.throws(() => parseQuota('storage=5/s'), /NAME=N\/min/);
  assert.throws(() => parseQuota('bigtable=5/min'), /NAME=N\/min/);
  assert.throws(() => parseArgs(['--data', '/tmp/x', '--quota-window-ms', '0']), /> 0/);
});

test('quota names: healthcare, dicomweb-write, dicomweb-read, storage', () => {
  const hc = 'healthcare.googleapis.com';
  assert.strictEqual(Quotas.nameOf(hc, 'POST', '/v1/projects/p/locations/l/datasets/d/dicomStores/s/dicomWeb/studies'), 'dicomweb-write');
  assert.strictEqual(Quotas.nameOf(hc, 'GET', '/v1/projects/p/locations/l/datasets/d/dicomStores/s/dicomWeb/studies'), 'dicomweb-read');
  assert.strictEqual(Quotas.nameOf(hc, 'POST', '/v1/projects/p/locations/l/datasets/d/dicomStores/s:import'), 'healthcare');
  assert.strictEqual(Quotas.nameOf('storage.googleapis.com', 'GET', '/storage/v1/b/x/o'), 'storage');
  assert.strictEqual(Quotas.nameOf('logging.googleapis.com', 'POST', '/v2/entries:list'), null);
});

test('429 RESOURCE_EXHAUSTED without Retry-After once the window is used up; the next window admits again', async () => {
  const emu = await startEmulator({ quotas: { healthcare: 2, storage: 1 }, quotaWindowMs: 300 });
  try {
    // wait for the start of a fresh window so the three requests share one
    await new Promise((r) => setTimeout(r, 300 - (Date.now() % 300)));
    const url = '/v1/projects/p/locations/l/datasets';
    assert.strictEqual((await emu.request('GET', url)).status, 200);
    assert.strictEqual((await emu.request('GET', url)).status, 200);
    const r = await emu.request('GET', url);
    assert.strictEqual(r.status, 429);
    assert.strictEqual(r.headers['retry-after'], undefined);
    assert.strictEqual(r.json.error.code, 429);
    assert.strictEqual(r.json.error.status, 'RESOURCE_EXHAUSTED');
    assert.match(r.json.error.message, /^Quota exceeded for quota metric/);
    assert.strictEqual(r.json.error.details[0]['@type'], 'type.googleapis.com/google.rpc.ErrorInfo');
    assert.strictEqual(r.json.error.details[0].reason, 'RATE_LIMIT_EXCEEDED');
    // Cloud Storage answers in its own shape
    await emu.request('GET', '/storage/v1/b/nope/o');
    const g = await emu.request('GET', '/storage/v1/b/nope/o');
    assert.strictEqual(g.status, 429);
    assert.strictEqual(g.json.error.errors[0].reason, 'rateLimitExceeded');
    assert.strictEqual(g.json.error.status, undefined);
    assert.strictEqual(g.headers['retry-after'], undefined);
    // refused requests do not count; the next window admits again
    await new Promise((res) => setTimeout(res, 300 - (Date.now() % 300) + 5));
    assert.strictEqual((await emu.request('GET', url)).status, 200);
    const v = await emu.request('GET', '/_emulator/quotas');
    assert.strictEqual(v.json.refused, 2);
    assert.deepStrictEqual(v.json.limits, { healthcare: 2, storage: 1 });
  } finally { await emu.close(); }
});

test('admin API sets and clears quotas, and rejects nonsense', async () => {
  const emu = await startEmulator();
  try {
    let r = await emu.request('POST', '/_emulator/quotas', { body: { windowMs: 60000, limits: { 'dicomweb-read': 0 } } });
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.json.windowMs, 60000);
    r = await emu.request('GET', '/v1/projects/p/locations/l/datasets/d/dicomStores/s/dicomWeb/studies');
    assert.strictEqual(r.status, 429);
    r = await emu.request('POST', '/_emulator/quotas', { body: { limits: { 'dicomweb-read': null } } });
    assert.deepStrictEqual(r.json.limits, {});
    r = await emu.request('POST', '/_emulator/quotas', { body: { limits: { nope: 1 } } });
    assert.strictEqual(r.status, 400);
    r = await emu.request('POST', '/_emulator/quotas', { body: { windowMs: -1 } });
    assert.strictEqual(r.status, 400);
  } finally { await emu.close(); }
});

test('resetAfterHandling: the request takes effect, the connection is cut without an answer', async () => {
  const emu = await startEmulator();
  try {
    await makeBucket(emu, 'rah-bucket');
    await emu.request('POST', '/_emulator/faults', { body: { path: '/datasets$', method: 'POST', resetAfterHandling: true, count: 1 } });
    await assert.rejects(emu.request('POST', '/v1/projects/p/locations/l/datasets?datasetId=lost', { body: {} }));
    const r = await emu.request('GET', '/v1/projects/p/locations/l/datasets/lost');
    assert.strictEqual(r.status, 200);
    const bad = await emu.request('POST', '/_emulator/faults', { body: { resetAfterHandling: 1 } });
    assert.strictEqual(bad.status, 400);
  } finally { await emu.close(); }
});

test('goaway: the request is not processed, its connection is closed unanswered (HTTP/1.1)', async () => {
  const emu = await startEmulator();
  try {
    await emu.request('POST', '/_emulator/faults', { body: { path: '/datasets$', method: 'POST', goaway: true, count: 1 } });
    await assert.rejects(emu.request('POST', '/v1/projects/p/locations/l/datasets?datasetId=drained', { body: {} }));
    const r = await emu.request('GET', '/v1/projects/p/locations/l/datasets/drained');
    assert.strictEqual(r.status, 404);
    const bad = await emu.request('POST', '/_emulator/faults', { body: { goaway: 'yes' } });
    assert.strictEqual(bad.status, 400);
  } finally { await emu.close(); }
});
