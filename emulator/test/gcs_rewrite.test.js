'use strict';
// objects.rewrite / objects.copy and generations (issue #19): what dicomgcs.watch relies on.
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('crypto');
const { startEmulator, upload, makeBucket } = require('./helpers');

let emu;
test.before(async () => { emu = await startEmulator(); await makeBucket(emu, 'src'); await makeBucket(emu, 'dst'); });
test.after(async () => { await emu.close(); });

const enc = encodeURIComponent;
const rewritePath = (sb, sn, db, dn, q = '') => `/storage/v1/b/${sb}/o/${enc(sn)}/rewriteTo/b/${db}/o/${enc(dn)}${q}`;

test('every write is a new generation; preconditions on generation answer 412', async () => {
  const a = await upload(emu, 'src', 'gen/a.dcm', Buffer.from('one'));
  const b = await upload(emu, 'src', 'gen/a.dcm', Buffer.from('two'));
  assert.notStrictEqual(a.generation, b.generation);
  assert.ok(BigInt(b.generation) > BigInt(a.generation));
  assert.strictEqual(b.metageneration, '1');
  let r = await emu.request('DELETE', `/storage/v1/b/src/o/${enc('gen/a.dcm')}?ifGenerationMatch=${a.generation}`);
  assert.strictEqual(r.status, 412);
  assert.strictEqual(r.json.error.errors[0].reason, 'conditionNotMet');
  r = await emu.request('POST', `/upload/storage/v1/b/src/o?uploadType=media&name=${enc('gen/a.dcm')}&ifGenerationMatch=0`, { body: 'x' });
  assert.strictEqual(r.status, 412);
  r = await emu.request('GET', `/storage/v1/b/src/o/${enc('gen/a.dcm')}?ifGenerationNotMatch=${b.generation}`);
  assert.strictEqual(r.status, 412);
  r = await emu.request('DELETE', `/storage/v1/b/src/o/${enc('gen/a.dcm')}?ifGenerationMatch=${b.generation}`);
  assert.strictEqual(r.status, 204);
});

test('rewrite copies bytes, checksums and metadata server-side into a new generation, in one call when small', async () => {
  const data = crypto.randomBytes(3000);
  const s = await upload(emu, 'src', 'in/odd name #1?.dcm', data, 'application/dicom');
  const r = await emu.request('POST', rewritePath('src', 'in/odd name #1?.dcm', 'dst', 'batches/7/in/odd name #1?.dcm'));
  assert.strictEqual(r.status, 200);
  assert.strictEqual(r.json.kind, 'storage#rewriteResponse');
  assert.strictEqual(r.json.done, true);
  assert.strictEqual(r.json.totalBytesRewritten, '3000');
  assert.strictEqual(r.json.objectSize, '3000');
  assert.strictEqual(r.json.rewriteToken, undefined);
  const o = r.json.resource;
  assert.strictEqual(o.name, 'batches/7/in/odd name #1?.dcm');
  assert.strictEqual(o.bucket, 'dst');
  assert.strictEqual(o.crc32c, s.crc32c); assert.strictEqual(o.md5Hash, s.md5Hash);
  assert.strictEqual(o.contentType, 'application/dicom');
  assert.notStrictEqual(o.generation, s.generation);
  const got = await emu.request('GET', `/storage/v1/b/dst/o/${enc(o.name)}?alt=media`);
  assert.ok(got.body.equals(data));
});

test('a large rewrite takes several calls with rewriteToken; a token for another object is refused', async () => {
  const data = crypto.randomBytes(2 * 1024 * 1024 + 5);
  await upload(emu, 'src', 'big.dcm', data);
  const q = '?maxBytesRewrittenPerCall=1048576';
  let r = await emu.request('POST', rewritePath('src', 'big.dcm', 'dst', 'big-copy.dcm', q));
  assert.strictEqual(r.json.done, false);
  assert.strictEqual(r.json.totalBytesRewritten, '1048576');
  assert.ok(r.json.rewriteToken);
  // nothing at the destination until done
  assert.strictEqual((await emu.request('GET', '/storage/v1/b/dst/o/big-copy.dcm')).status, 404);
  const token = r.json.rewriteToken;
  const bad = await emu.request('POST', rewritePath('src', 'big.dcm', 'dst', 'elsewhere.dcm', `${q}&rewriteToken=${token}`));
  assert.strictEqual(bad.status, 400);
  let calls = 1;
  while (!r.json.done) {
    r = await emu.request('POST', rewritePath('src', 'big.dcm', 'dst', 'big-copy.dcm', `${q}&rewriteToken=${enc(token)}`));
    assert.strictEqual(r.status, 200);
    calls++;
  }
  assert.strictEqual(calls, 3);
  assert.strictEqual(r.json.resource.size, String(data.length));
  const got = await emu.request('GET', '/storage/v1/b/dst/o/big-copy.dcm?alt=media');
  assert.ok(got.body.equals(data));
  const odd = await emu.request('POST', rewritePath('src', 'big.dcm', 'dst', 'x.dcm', '?maxBytesRewrittenPerCall=1000'));
  assert.strictEqual(odd.status, 400);
});

test('a source rewritten in the middle of a rewrite ends it (404), never mixing generations', async () => {
  await upload(emu, 'src', 'moving.dcm', crypto.randomBytes(2 * 1024 * 1024));
  const r = await emu.request('POST', rewritePath('src', 'moving.dcm', 'dst', 'moving.dcm'));
  assert.strictEqual(r.json.done, false);
  await upload(emu, 'src', 'moving.dcm', Buffer.from('new'));
  const r2 = await emu.request('POST', rewritePath('src', 'moving.dcm', 'dst', 'moving.dcm', `?rewriteToken=${enc(r.json.rewriteToken)}`));
  assert.strictEqual(r2.status, 404);
});

test('source and destination preconditions; sourceGeneration; missing source and bucket', async () => {
  const s = await upload(emu, 'src', 'pre.dcm', Buffer.from('abc'));
  let r = await emu.request('POST', rewritePath('src', 'pre.dcm', 'dst', 'pre.dcm', `?ifSourceGenerationMatch=${BigInt(s.generation) + 1n}`));
  assert.strictEqual(r.status, 412);
  r = await emu.request('POST', rewritePath('src', 'pre.dcm', 'dst', 'pre.dcm', `?ifSourceGenerationMatch=${s.generation}&ifGenerationMatch=0`));
  assert.strictEqual(r.status, 200);
  // the destination exists now: ifGenerationMatch=0 fails
  r = await emu.request('POST', rewritePath('src', 'pre.dcm', 'dst', 'pre.dcm', '?ifGenerationMatch=0'));
  assert.strictEqual(r.status, 412);
  r = await emu.request('POST', rewritePath('src', 'pre.dcm', 'dst', 'pre.dcm', '?sourceGeneration=1'));
  assert.strictEqual(r.status, 404);
  r = await emu.request('POST', rewritePath('src', 'nope.dcm', 'dst', 'x.dcm'));
  assert.strictEqual(r.status, 404);
  r = await emu.request('POST', rewritePath('src', 'pre.dcm', 'nosuchbucket', 'x.dcm'));
  assert.strictEqual(r.status, 404);
  r = await emu.request('GET', rewritePath('src', 'pre.dcm', 'dst', 'x.dcm'));
  assert.strictEqual(r.status, 405);
});

test('copyTo answers the new object; body metadata overrides the source', async () => {
  const s = await upload(emu, 'src', 'c.dcm', Buffer.from('copy me'), 'application/dicom');
  const r = await emu.request('POST', `/storage/v1/b/src/o/c.dcm/copyTo/b/dst/o/${enc('done/c.dcm')}?ifSourceGenerationMatch=${s.generation}`,
    { body: { contentType: 'application/octet-stream', metadata: { from: 'c' } } });
  assert.strictEqual(r.status, 200);
  assert.strictEqual(r.json.kind, 'storage#object');
  assert.strictEqual(r.json.name, 'done/c.dcm');
  assert.strictEqual(r.json.contentType, 'application/octet-stream');
  assert.deepStrictEqual(r.json.metadata, { from: 'c' });
  assert.strictEqual(r.json.crc32c, s.crc32c);
});
