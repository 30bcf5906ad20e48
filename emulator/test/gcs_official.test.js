'use strict';
// The emulator's Cloud Storage speaks the real protocol: Google's own Node client
// (@google-cloud/storage) uploads (multipart and resumable, streamed and chunked with
// X-Goog-Hash on the final chunk), lists with prefix/matchGlob/paging, and downloads
// (whole, ranged) with its checksum validation on.
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { startEmulator } = require('./helpers');

let Storage;
try { ({ Storage } = require('@google-cloud/storage')); } catch (_) { Storage = null; }

let emu; let storage; let bucket;
const skip = Storage ? false : '@google-cloud/storage is not installed (npm ci --prefix emulator)';

test.before(async () => {
  if (!Storage) return;
  emu = await startEmulator();
  storage = new Storage({ apiEndpoint: `http://${emu.host}`, projectId: 'p', useAuthWithCustomEndpoint: false,
    retryOptions: { maxRetries: 1 } });
  [bucket] = await storage.createBucket('official');
});
test.after(() => emu && emu.close());

const rand = (n) => crypto.randomBytes(n);

test('save (multipart), metadata, download, validation', { skip }, async () => {
  const data = rand(10000);
  await bucket.file('dir/a b+c.bin').save(data, { resumable: false, validation: 'crc32c' });
  const [meta] = await bucket.file('dir/a b+c.bin').getMetadata();
  assert.strictEqual(meta.name, 'dir/a b+c.bin');
  assert.strictEqual(meta.size, '10000');
  assert.strictEqual(meta.md5Hash, crypto.createHash('md5').update(data).digest('base64'));
  const [back] = await bucket.file('dir/a b+c.bin').download({ validation: true });
  assert.ok(back.equals(data));
});

test('resumable upload: one streamed PUT, and 256 KiB chunks with X-Goog-Hash', { skip }, async () => {
  const data = rand(3 * 262144 + 1234);
  await bucket.file('big/streamed.bin').save(data, { resumable: true, validation: 'md5' });
  const [m1] = await bucket.file('big/streamed.bin').getMetadata();
  assert.strictEqual(m1.size, String(data.length));
  await bucket.file('big/chunked.bin').save(data, { resumable: true, chunkSize: 262144, validation: 'crc32c' });
  const [back] = await bucket.file('big/chunked.bin').download({ validation: true });
  assert.ok(back.equals(data));
  const reqs = emu.ctx.requests.filter((r) => r.method === 'PUT' && r.path.startsWith('/upload/'));
  assert.ok(reqs.length >= 4, `expected several chunk PUTs, saw ${reqs.length}`);
  assert.ok(reqs.some((r) => r.status === 308));
});

test('resumable upload from a file (createWriteStream / upload)', { skip }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dg-official-'));
  try {
    const p = path.join(dir, 'f.bin');
    const data = rand(600000);
    fs.writeFileSync(p, data);
    await bucket.upload(p, { destination: 'up/f.bin', resumable: true });
    const dest = path.join(dir, 'g.bin');
    await bucket.file('up/f.bin').download({ destination: dest });
    assert.ok(fs.readFileSync(dest).equals(data));
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('list: prefix, delimiter, matchGlob, paging', { skip }, async () => {
  for (let i = 0; i < 7; i++) await bucket.file(`list/${i}.dcm`).save(Buffer.from(String(i)), { resumable: false });
  await bucket.file('list/sub/x.dcm').save(Buffer.from('x'), { resumable: false });
  await bucket.file('list/notes.txt').save(Buffer.from('n'), { resumable: false });
  let [files] = await bucket.getFiles({ prefix: 'list/' });
  assert.strictEqual(files.length, 9);
  [files] = await bucket.getFiles({ prefix: 'list/', matchGlob: 'list/**.dcm' });
  assert.strictEqual(files.length, 8);
  const [, , resp] = await bucket.getFiles({ prefix: 'list/', delimiter: '/', autoPaginate: false });
  assert.deepStrictEqual(resp.prefixes, ['list/sub/']);
  let q = { prefix: 'list/', maxResults: 4, autoPaginate: false }; let seen = 0; let pages = 0;
  while (q) {
    const [page, next] = await bucket.getFiles(q);
    assert.ok(page.length <= 4);
    seen += page.length; pages++; q = next;
  }
  assert.strictEqual(seen, 9);
  assert.strictEqual(pages, 3);
});

test('ranged download and delete', { skip }, async () => {
  const data = rand(100000);
  await bucket.file('r.bin').save(data, { resumable: false });
  const [part] = await bucket.file('r.bin').download({ start: 1000, end: 1999 });
  assert.ok(part.equals(data.subarray(1000, 2000)));
  await bucket.file('r.bin').delete();
  const [exists] = await bucket.file('r.bin').exists();
  assert.strictEqual(exists, false);
});

test('bucket IAM policy through the official client', { skip }, async () => {
  const [policy] = await bucket.iam.getPolicy();
  assert.ok(policy.etag);
  policy.bindings.push({ role: 'roles/storage.objectViewer', members: ['serviceAccount:x@y.iam.gserviceaccount.com'] });
  const [after] = await bucket.iam.setPolicy(policy);
  assert.ok(after.bindings.some((b) => b.role === 'roles/storage.objectViewer'));
});
