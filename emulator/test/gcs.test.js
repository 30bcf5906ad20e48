'use strict';
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { startEmulator, upload, makeBucket } = require('./helpers');
const crc32c = require('../src/crc32c');

let emu;
test.before(async () => { emu = await startEmulator(); await makeBucket(emu, 'bkt'); });
test.after(async () => { await emu.close(); });

const sums = (buf) => ({ crc32c: crc32c.toBase64(crc32c.update(0, buf)), md5Hash: crypto.createHash('md5').update(buf).digest('base64') });

test('bucket insert/get/list, conflict, not found, bad name', async () => {
  let r = await emu.request('POST', '/storage/v1/b?project=p', { body: { name: 'bkt' } });
  assert.strictEqual(r.status, 409);
  assert.strictEqual(r.json.error.errors[0].reason, 'conflict');
  assert.strictEqual(r.json.error.status, undefined);
  r = await emu.request('POST', '/storage/v1/b?project=p', { body: { name: 'Bad_Name' } });
  assert.strictEqual(r.status, 400);
  r = await emu.request('GET', '/storage/v1/b/bkt');
  assert.strictEqual(r.status, 200); assert.strictEqual(r.json.name, 'bkt'); assert.strictEqual(r.json.kind, 'storage#bucket');
  r = await emu.request('GET', '/storage/v1/b?project=p');
  assert.ok(r.json.items.some((b) => b.name === 'bkt'));
  r = await emu.request('GET', '/storage/v1/b/nosuchbucket/o');
  assert.strictEqual(r.status, 404);
  assert.deepStrictEqual(r.json.error.errors[0].reason, 'notFound');
  assert.strictEqual(r.json.error.code, 404);
});

test('media upload, object JSON fields, metadata get, strings for int64', async () => {
  const data = Buffer.from('hello world');
  const o = await upload(emu, 'bkt', 'dir/a b+c#?.txt', data, 'text/plain');
  assert.strictEqual(o.name, 'dir/a b+c#?.txt');
  assert.strictEqual(o.size, '11');
  assert.strictEqual(typeof o.generation, 'string'); assert.match(o.generation, /^\d+$/);
  assert.strictEqual(o.metageneration, '1');
  assert.deepStrictEqual({ crc32c: o.crc32c, md5Hash: o.md5Hash }, sums(data));
  assert.strictEqual(o.contentType, 'text/plain');
  // '+' in a path is not a space; %2B is '+'
  let r = await emu.request('GET', '/storage/v1/b/bkt/o/dir%2Fa%20b%2Bc%23%3F.txt');
  assert.strictEqual(r.status, 200); assert.strictEqual(r.json.name, 'dir/a b+c#?.txt');
  r = await emu.request('GET', '/storage/v1/b/bkt/o/dir%2Fa+b%2Bc%23%3F.txt');
  assert.strictEqual(r.status, 404);
  assert.match(r.json.error.message, /No such object: bkt\/dir\/a\+b\+c#\?\.txt/);
});

test('uploads at once, past the bound on bytes waiting to be written: every object whole, with its own hashes', async () => {
  // 6 x 7 MiB in flight together, with the bound on bytes handed to the writer thread lowered to
  // one batch: requests wait for it again and again; bytes of one upload never land in another.
  const { sinkLimits, sinkStats } = require('../src/gcsstore');
  const bound = sinkLimits.inflightMax; const waits = sinkStats.waits;
  const bodies = Array.from({ length: 6 }, () => crypto.randomBytes(7 * 1024 * 1024 + 123));
  sinkLimits.inflightMax = 256 * 1024;
  let objs;
  try { objs = await Promise.all(bodies.map((b, i) => upload(emu, 'bkt', `big/${i}`, b))); } finally { sinkLimits.inflightMax = bound; }
  assert.ok(sinkStats.waits > waits + 10, `uploads waited ${sinkStats.waits - waits} times`);
  for (let i = 0; i < bodies.length; i++) {
    assert.deepStrictEqual({ crc32c: objs[i].crc32c, md5Hash: objs[i].md5Hash }, sums(bodies[i]), `big/${i}`);
    const r = await emu.request('GET', `/storage/v1/b/bkt/o/big%2F${i}?alt=media`);
    assert.strictEqual(r.status, 200);
    assert.ok(r.body.equals(bodies[i]), `big/${i}: the bytes read back differ`);
  }
});

test('download: alt=media, hashes and generation headers, Range 206, suffix range, 416', async () => {
  const data = crypto.randomBytes(5000);
  const o = await upload(emu, 'bkt', 'bin/data.bin', data);
  let r = await emu.request('GET', '/storage/v1/b/bkt/o/bin%2Fdata.bin?alt=media');
  assert.strictEqual(r.status, 200); assert.ok(r.body.equals(data));
  assert.strictEqual(r.headers['x-goog-hash'], `crc32c=${o.crc32c},md5=${o.md5Hash}`);
  assert.strictEqual(r.headers['x-goog-generation'], o.generation);
  assert.strictEqual(r.headers['x-goog-stored-content-encoding'], 'identity');
  assert.strictEqual(r.headers['x-goog-stored-content-length'], '5000');
  r = await emu.request('GET', '/storage/v1/b/bkt/o/bin%2Fdata.bin?alt=media', { headers: { Range: 'bytes=100-199' } });
  assert.strictEqual(r.status, 206); assert.ok(r.body.equals(data.subarray(100, 200)));
  assert.strictEqual(r.headers['content-range'], 'bytes 100-199/5000');
  r = await emu.request('GET', '/storage/v1/b/bkt/o/bin%2Fdata.bin?alt=media', { headers: { Range: 'bytes=-10' } });
  assert.strictEqual(r.status, 206); assert.ok(r.body.equals(data.subarray(4990)));
  r = await emu.request('GET', '/storage/v1/b/bkt/o/bin%2Fdata.bin?alt=media', { headers: { Range: 'bytes=4000-' } });
  assert.strictEqual(r.status, 206); assert.strictEqual(r.body.length, 1000);
  r = await emu.request('GET', '/storage/v1/b/bkt/o/bin%2Fdata.bin?alt=media', { headers: { Range: 'bytes=6000-' } });
  assert.strictEqual(r.status, 416);
  // aliases: Node's STORAGE_EMULATOR_HOST base (/b/…) and /download/storage/v1
  r = await emu.request('GET', '/b/bkt/o/bin%2Fdata.bin?alt=media');
  assert.ok(r.body.equals(data));
  r = await emu.request('GET', `/download/storage/v1/b/bkt/o/bin%2Fdata.bin?generation=${o.generation}&alt=media`);
  assert.ok(r.body.equals(data));
});

test('multipart upload (metadata then media), name from query, hash check', async () => {
  const data = crypto.randomBytes(70000);
  const b = 'BOUNDARY-' + crypto.randomBytes(4).toString('hex');
  const body = Buffer.concat([
    Buffer.from(`--${b}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n${JSON.stringify({ name: 'mp/x.dcm', contentType: 'application/dicom', metadata: { k: 'v' } })}\r\n--${b}\r\nContent-Type: application/dicom\r\n\r\n`),
    data, Buffer.from(`\r\n--${b}--\r\n`),
  ]);
  let r = await emu.request('POST', '/upload/storage/v1/b/bkt/o?uploadType=multipart', { body, headers: { 'Content-Type': `multipart/related; boundary=${b}` } });
  assert.strictEqual(r.status, 200, r.body.toString());
  assert.strictEqual(r.json.size, '70000'); assert.strictEqual(r.json.contentType, 'application/dicom');
  assert.deepStrictEqual(r.json.metadata, { k: 'v' });
  assert.strictEqual(r.json.crc32c, sums(data).crc32c);
  const body2 = Buffer.concat([Buffer.from(`--${b}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${b}\r\nContent-Type: text/plain\r\n\r\nabc\r\n--${b}--`)]);
  r = await emu.request('POST', '/upload/storage/v1/b/bkt/o?uploadType=multipart&name=mp%2Fq.txt', { body: body2, headers: { 'Content-Type': `multipart/related; boundary="${b}"` } });
  assert.strictEqual(r.status, 200); assert.strictEqual(r.json.name, 'mp/q.txt'); assert.strictEqual(r.json.size, '3');
  r = await emu.request('POST', '/upload/storage/v1/b/bkt/o?uploadType=media&name=h.txt', { body: 'abc', headers: { 'X-Goog-Hash': 'crc32c=AAAAAA==' } });
  assert.strictEqual(r.status, 400);
});

test('resumable upload: chunks, 308 + Range, status queries, bytes 0-*/*, final 200', async () => {
  const data = crypto.randomBytes(262144 * 2 + 1000);
  let r = await emu.request('POST', '/upload/storage/v1/b/bkt/o?uploadType=resumable&name=res%2Fbig.bin', { body: '{}', headers: { 'Content-Type': 'application/json', 'X-Upload-Content-Type': 'application/dicom' } });
  assert.strictEqual(r.status, 200);
  const loc = new URL(r.headers.location);
  assert.match(loc.search, /upload_id=/);
  const p = loc.pathname + loc.search;
  r = await emu.request('PUT', p, { body: '', headers: { 'Content-Range': 'bytes */*' } });
  assert.strictEqual(r.status, 308); assert.strictEqual(r.headers.range, undefined);
  r = await emu.request('PUT', p, { body: data.subarray(0, 262144), headers: { 'Content-Range': 'bytes 0-262143/*' } });
  assert.strictEqual(r.status, 308); assert.strictEqual(r.headers.range, 'bytes=0-262143');
  // resend an overlapping chunk: the server skips what it already has
  r = await emu.request('PUT', p, { body: data.subarray(200000, 524288), headers: { 'Content-Range': 'bytes 200000-524287/*' } });
  assert.strictEqual(r.status, 308); assert.strictEqual(r.headers.range, 'bytes=0-524287');
  r = await emu.request('PUT', p, { body: '', headers: { 'Content-Range': `bytes */${data.length}` } });
  assert.strictEqual(r.status, 308); assert.strictEqual(r.headers.range, 'bytes=0-524287');
  // a gap is refused
  r = await emu.request('PUT', p, { body: 'x', headers: { 'Content-Range': `bytes 600000-600000/${data.length}` } });
  assert.strictEqual(r.status, 400);
  const s = sums(data);
  r = await emu.request('PUT', p, { body: data.subarray(524288), headers: { 'Content-Range': `bytes 524288-${data.length - 1}/${data.length}`, 'X-Goog-Hash': `crc32c=${s.crc32c},md5=${s.md5Hash}` } });
  assert.strictEqual(r.status, 200, r.body.toString());
  assert.strictEqual(r.json.size, String(data.length)); assert.strictEqual(r.json.crc32c, s.crc32c); assert.strictEqual(r.json.md5Hash, s.md5Hash);
  assert.strictEqual(r.json.contentType, 'application/dicom');
  r = await emu.request('PUT', p, { body: '', headers: { 'Content-Range': `bytes */${data.length}` } });
  assert.strictEqual(r.status, 200); assert.strictEqual(r.json.name, 'res/big.bin');
  r = await emu.request('GET', '/storage/v1/b/bkt/o/res%2Fbig.bin?alt=media');
  assert.ok(r.body.equals(data));

  // Node's single streaming PUT with an unknown size
  r = await emu.request('POST', '/upload/storage/v1/b/bkt/o?name=res%2Fstream.bin&uploadType=resumable', { body: '{}' });
  const p2 = new URL(r.headers.location); const small = Buffer.from('streamed body');
  r = await emu.request('PUT', p2.pathname + p2.search, { body: small, headers: { 'Content-Range': 'bytes 0-*/*' } });
  assert.strictEqual(r.status, 200); assert.strictEqual(r.json.size, String(small.length));
  // cancel a session
  r = await emu.request('POST', '/upload/storage/v1/b/bkt/o?name=res%2Fc.bin&uploadType=resumable', { body: '{}' });
  const p3 = new URL(r.headers.location);
  r = await emu.request('DELETE', p3.pathname + p3.search);
  assert.strictEqual(r.status, 499);
  r = await emu.request('PUT', p3.pathname + p3.search, { body: 'x', headers: { 'Content-Range': 'bytes 0-0/1' } });
  assert.strictEqual(r.status, 404);
  // /storage/v1/upload/storage/v1 alias
  r = await emu.request('POST', '/storage/v1/upload/storage/v1/b/bkt/o?uploadType=media&name=alias.txt', { body: 'a' });
  assert.strictEqual(r.status, 200);
});

test('list: prefix, delimiter, paging, maxResults, matchGlob, items omitted when empty', async () => {
  await makeBucket(emu, 'listing');
  for (const n of ['a/1.dcm', 'a/2.dcm', 'a/sub/3.dcm', 'b/4.dcm', 'c.txt', 'a/5.txt']) await upload(emu, 'listing', n, 'x');
  let r = await emu.request('GET', '/storage/v1/b/listing/o?prefix=a%2F&delimiter=%2F');
  assert.deepStrictEqual(r.json.items.map((i) => i.name), ['a/1.dcm', 'a/2.dcm', 'a/5.txt']);
  assert.deepStrictEqual(r.json.prefixes, ['a/sub/']);
  const names = []; let token = ''; let pages = 0;
  do {
    r = await emu.request('GET', `/storage/v1/b/listing/o?maxResults=2${token ? '&pageToken=' + token : ''}`);
    names.push(...(r.json.items || []).map((i) => i.name)); token = r.json.nextPageToken; pages++;
  } while (token);
  assert.deepStrictEqual(names, ['a/1.dcm', 'a/2.dcm', 'a/5.txt', 'a/sub/3.dcm', 'b/4.dcm', 'c.txt']);
  assert.strictEqual(pages, 3);
  r = await emu.request('GET', '/storage/v1/b/listing/o?matchGlob=' + encodeURIComponent('a/**.dcm'));
  assert.deepStrictEqual(r.json.items.map((i) => i.name), ['a/1.dcm', 'a/2.dcm', 'a/sub/3.dcm']);
  r = await emu.request('GET', '/storage/v1/b/listing/o?matchGlob=' + encodeURIComponent('*.txt'));
  assert.deepStrictEqual(r.json.items.map((i) => i.name), ['c.txt']);
  r = await emu.request('GET', '/storage/v1/b/listing/o?prefix=zzz');
  assert.deepStrictEqual(r.json, { kind: 'storage#objects' });
  r = await emu.request('GET', '/b/listing/o?maxResults=5000');
  assert.strictEqual(r.json.items.length, 6);
});

test('delete object 204, preconditions 412, bucket delete 409 when not empty', async () => {
  await makeBucket(emu, 'del');
  const o = await upload(emu, 'del', 'x', 'x');
  let r = await emu.request('POST', '/upload/storage/v1/b/del/o?uploadType=media&name=x&ifGenerationMatch=0', { body: 'y' });
  assert.strictEqual(r.status, 412); assert.strictEqual(r.json.error.errors[0].reason, 'conditionNotMet');
  r = await emu.request('DELETE', '/storage/v1/b/del');
  assert.strictEqual(r.status, 409);
  r = await emu.request('DELETE', '/storage/v1/b/del/o/x?ifGenerationMatch=1');
  assert.strictEqual(r.status, 412);
  r = await emu.request('DELETE', `/storage/v1/b/del/o/x?ifGenerationMatch=${o.generation}`);
  assert.strictEqual(r.status, 204);
  r = await emu.request('DELETE', '/storage/v1/b/del/o/x');
  assert.strictEqual(r.status, 404);
  r = await emu.request('DELETE', '/storage/v1/b/del');
  assert.strictEqual(r.status, 204);
});

test('object names never escape the data dir', async () => {
  await upload(emu, 'bkt', '../../../../etc/evil', 'x');
  await upload(emu, 'bkt', '/abs/x', 'x');
  const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
  for (const f of walk(emu.dataDir)) assert.ok(!/evil|abs/.test(f), f);
  const r = await emu.request('GET', '/storage/v1/b/bkt/o/..%2F..%2F..%2F..%2Fetc%2Fevil?alt=media');
  assert.strictEqual(r.body.toString(), 'x');
  let r2 = await emu.request('POST', '/upload/storage/v1/b/bkt/o?uploadType=media&name=..', { body: 'x' });
  assert.strictEqual(r2.status, 400);
  r2 = await emu.request('GET', '/storage/v1/b/..%2Fx/o');
  assert.strictEqual(r2.status, 404);
});
