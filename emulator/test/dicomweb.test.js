'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { startEmulator, makeDicom, waitOp, upload, makeBucket } = require('./helpers');

const P = '/v1/projects/p/locations/us-central1';
const DS = 'projects/p/locations/us-central1/datasets/dw';
const ST = `${DS}/dicomStores/st`;
const W = `/v1/${ST}/dicomWeb`;
let emu;

test.before(async () => {
  emu = await startEmulator({ grantServiceAgent: true }); // import/export need the service agent on the bucket
  let r = await emu.request('POST', `${P}/datasets?datasetId=dw`, { body: {} });
  await waitOp(emu, r.json.name);
  r = await emu.request('POST', `/v1/${DS}/dicomStores?dicomStoreId=st`, { body: {} });
  assert.strictEqual(r.status, 200);
});
test.after(async () => { await emu.close(); });

function multipart(parts, boundary = 'b0undary') {
  const chunks = [];
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), p, Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), ct: `multipart/related; type="application/dicom"; boundary=${boundary}` };
}

const JSONH = { Accept: 'application/dicom+json' };

function splitMultipart(res) {
  const b = /boundary=([^;]+)/.exec(res.headers['content-type'])[1];
  const s = res.body.toString('latin1');
  const out = [];
  for (const chunk of s.split(`--${b}`).slice(1)) {
    if (chunk.startsWith('--')) break;
    const i = chunk.indexOf('\r\n\r\n');
    out.push(Buffer.from(chunk.slice(i + 4, chunk.length - 2), 'latin1'));
  }
  return out;
}

test('STOW single-part: 200 with ReferencedSOPSequence; identical resend 409 already exists; other bytes 409', async () => {
  const d = makeDicom({ study: '1.2.10', series: '1.2.10.1', sop: '1.2.10.1.1', rows: 4, cols: 4 });
  let r = await emu.request('POST', `${W}/studies`, { body: d, headers: Object.assign({ 'Content-Type': 'application/dicom' }, JSONH) });
  assert.strictEqual(r.status, 200, r.body.toString());
  assert.match(r.headers['content-type'], /application\/dicom\+json/);
  assert.strictEqual(r.json['00081199'].Value[0]['00081155'].Value[0], '1.2.10.1.1');
  assert.match(r.json['00081190'].Value[0], /studies\/1\.2\.10$/);
  r = await emu.request('POST', `${W}/studies`, { body: d, headers: Object.assign({ 'Content-Type': 'application/dicom' }, JSONH) });
  assert.strictEqual(r.status, 409);
  assert.match(r.json['00081198'].Value[0]['00090097'].Value[0], /already exists in the DICOM store$/);
  const d2 = makeDicom({ study: '1.2.10', series: '1.2.10.1', sop: '1.2.10.1.1', rows: 4, cols: 6 });
  r = await emu.request('POST', `${W}/studies`, { body: d2, headers: Object.assign({ 'Content-Type': 'application/dicom' }, JSONH) });
  assert.strictEqual(r.status, 409);
  const f = r.json['00081198'].Value[0];
  assert.strictEqual(f['00081197'].Value[0], 272);
  assert.match(f['00090097'].Value[0], /already exists/);
  // default answer is XML
  r = await emu.request('POST', `${W}/studies`, { body: d, headers: { 'Content-Type': 'application/dicom' } });
  assert.match(r.headers['content-type'], /xml/);
  assert.match(r.body.toString(), /<NativeDicomModel/);
});

test('STOW multipart: stores good parts, fails non-DICOM ones (202), 409 when all fail, 415 for other types', async () => {
  const a = makeDicom({ study: '1.2.20', series: '1.2.20.1', sop: '1.2.20.1.1' });
  const b = makeDicom({ study: '1.2.20', series: '1.2.20.1', sop: '1.2.20.1.2' });
  let m = multipart([a, Buffer.from('not dicom at all'), b]);
  let r = await emu.request('POST', `${W}/studies`, { body: m.body, headers: Object.assign({ 'Content-Type': m.ct }, JSONH) });
  assert.strictEqual(r.status, 202, r.body.toString());
  assert.strictEqual(r.json['00081199'].Value.length, 2);
  assert.strictEqual(r.json['00081198'].Value.length, 1);
  assert.match(r.json['00081198'].Value[0]['00090097'].Value[0], /DICM/);
  m = multipart([Buffer.from('nope')]);
  r = await emu.request('POST', `${W}/studies`, { body: m.body, headers: Object.assign({ 'Content-Type': m.ct }, JSONH) });
  assert.strictEqual(r.status, 409);
  r = await emu.request('POST', `${W}/studies`, { body: 'x', headers: { 'Content-Type': 'text/plain' } });
  assert.strictEqual(r.status, 415);
  // study in the URL must match
  m = multipart([makeDicom({ study: '1.2.21', series: '1.2.21.1', sop: '1.2.21.1.1' })]);
  r = await emu.request('POST', `${W}/studies/1.2.99`, { body: m.body, headers: Object.assign({ 'Content-Type': m.ct }, JSONH) });
  assert.strictEqual(r.status, 409);
  // truncated multipart body → 400
  r = await emu.request('POST', `${W}/studies`, { body: m.body.subarray(0, m.body.length - 20), headers: { 'Content-Type': m.ct } });
  assert.strictEqual(r.status, 400);
});

test('WADO-RS: multipart study/series/instance, single-part instance, metadata, 404s', async () => {
  const files = [1, 2, 3].map((i) => makeDicom({ study: '1.2.30', series: '1.2.30.' + (i < 3 ? 1 : 2), sop: '1.2.30.9.' + i, rows: 2, cols: 2 }));
  const m = multipart(files);
  let r = await emu.request('POST', `${W}/studies`, { body: m.body, headers: { 'Content-Type': m.ct } });
  assert.strictEqual(r.status, 200);
  const acc = { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' };
  r = await emu.request('GET', `${W}/studies/1.2.30`, { headers: acc });
  assert.strictEqual(r.status, 200);
  assert.match(r.headers['content-type'], /^multipart\/related; type="application\/dicom"/);
  const parts = splitMultipart(r);
  assert.strictEqual(parts.length, 3);
  assert.deepStrictEqual(parts.map((p) => p.length).sort(), files.map((f) => f.length).sort());
  r = await emu.request('GET', `${W}/studies/1.2.30/series/1.2.30.1`, { headers: acc });
  assert.strictEqual(splitMultipart(r).length, 2);
  r = await emu.request('GET', `${W}/studies/1.2.30/series/1.2.30.2/instances/1.2.30.9.3`, { headers: { Accept: 'application/dicom; transfer-syntax=*' } });
  assert.strictEqual(r.status, 200);
  assert.ok(r.body.equals(files[2]));
  r = await emu.request('GET', `${W}/studies/1.2.30/metadata`);
  assert.strictEqual(r.status, 200);
  assert.strictEqual(r.json.length, 3);
  assert.strictEqual(r.json[0]['00100010'].Value[0].Alphabetic, 'Test^Patient');
  assert.strictEqual(r.json[0]['7FE00010'], undefined);
  r = await emu.request('GET', `${W}/studies/9.9.9`, { headers: acc });
  assert.strictEqual(r.status, 404);
  // an instance is found by its UID only under its own study and series
  r = await emu.request('GET', `${W}/studies/1.2.30/series/1.2.30.2/instances/1.2.30.9.3/metadata`);
  assert.strictEqual(r.status, 200);
  assert.strictEqual(r.json[0]['00080018'].Value[0], '1.2.30.9.3');
  r = await emu.request('GET', `${W}/studies/1.2.30/series/1.2.30.1/instances/1.2.30.9.3/metadata`);
  assert.strictEqual(r.status, 404);
  r = await emu.request('GET', `${W}/studies/9.9.9/series/1.2.30.2/instances/1.2.30.9.3`, { headers: acc });
  assert.strictEqual(r.status, 404);
  r = await emu.request('GET', `${W}/studies/../x`, { headers: acc });
  assert.ok(r.status >= 400);
  r = await emu.request('GET', `${W}/studies/1.2.30/series/1.2.30.2/instances/1.2.30.9.3/frames/1`);
  assert.strictEqual(r.status, 200);
  assert.strictEqual(splitMultipart(r)[0].length, 4);
});

test('QIDO-RS: filters, includefield, limit/offset with a Warning when more', async () => {
  let r = await emu.request('GET', `${W}/studies?StudyInstanceUID=1.2.30`, { headers: JSONH });
  assert.strictEqual(r.status, 200);
  assert.strictEqual(r.json.length, 1);
  assert.strictEqual(r.json[0]['00201208'].Value[0], 3);
  r = await emu.request('GET', `${W}/studies?PatientName=test*`);
  assert.ok(r.json.length >= 3);
  r = await emu.request('GET', `${W}/studies?PatientName=nobody*`);
  assert.deepStrictEqual(r.json, []);
  r = await emu.request('GET', `${W}/studies/1.2.30/series`);
  assert.strictEqual(r.json.length, 2);
  r = await emu.request('GET', `${W}/studies/1.2.30/instances?limit=2`);
  assert.strictEqual(r.json.length, 2);
  assert.match(r.headers.warning, /additional results/);
  r = await emu.request('GET', `${W}/studies/1.2.30/instances?limit=2&offset=2&includefield=PatientName`);
  assert.strictEqual(r.json.length, 1);
  assert.strictEqual(r.headers.warning, undefined);
  assert.ok(r.json[0]['00100010']);
  r = await emu.request('GET', `${W}/instances?SOPInstanceUID=1.2.30.9.1,1.2.30.9.2`);
  assert.strictEqual(r.json.length, 2);
  r = await emu.request('GET', `${W}/studies?Bogus=1`);
  assert.strictEqual(r.status, 400);
});

test('deletes: instance → {}, series/study → Operation; then 404', async () => {
  let r = await emu.request('DELETE', `${W}/studies/1.2.30/series/1.2.30.2/instances/1.2.30.9.3`);
  assert.strictEqual(r.status, 200);
  assert.deepStrictEqual(r.json, {});
  r = await emu.request('DELETE', `${W}/studies/1.2.30`);
  assert.strictEqual(r.status, 200);
  assert.match(r.json.name, /operations\/\d+$/);
  const op = await waitOp(emu, r.json.name);
  assert.ok(op.response);
  r = await emu.request('GET', `${W}/studies/1.2.30/metadata`);
  assert.strictEqual(r.status, 404);
  r = await emu.request('DELETE', `${W}/studies/1.2.30`);
  assert.strictEqual(r.status, 404);
});

test('an instance deleted and stored again with other bytes: metadata and duplicate checks see the new bytes', async () => {
  // Same store and SOP Instance UID: the new bytes land in the same file as the old ones, so a
  // cache keyed by the file name alone would answer with the deleted instance.
  const inst = `${W}/studies/1.2.50/series/1.2.50.1/instances/1.2.50.1.1`;
  const post = (d) => emu.request('POST', `${W}/studies`, { body: d, headers: Object.assign({ 'Content-Type': 'application/dicom' }, JSONH) });
  const rows = async () => { const r = await emu.request('GET', `${inst}/metadata`, { headers: JSONH }); assert.strictEqual(r.status, 200); return r.json[0]['00280010'].Value[0]; };
  const first = makeDicom({ study: '1.2.50', series: '1.2.50.1', sop: '1.2.50.1.1', rows: 4, cols: 4 });
  const second = makeDicom({ study: '1.2.50', series: '1.2.50.1', sop: '1.2.50.1.1', rows: 6, cols: 4 });
  assert.strictEqual((await post(first)).status, 200);
  assert.strictEqual(await rows(), 4);
  assert.strictEqual((await emu.request('DELETE', inst)).status, 200);
  assert.strictEqual((await post(second)).status, 200);
  assert.strictEqual(await rows(), 6);
  let r = await post(second);
  assert.match(r.json['00081198'].Value[0]['00090097'].Value[0], /already exists in the DICOM store$/);
  r = await post(first);
  assert.match(r.json['00081198'].Value[0]['00090097'].Value[0], /with different content$/);
  r = await emu.request('GET', inst, { headers: { Accept: 'application/dicom; transfer-syntax=*' } });
  assert.strictEqual(r.status, 200);
  assert.ok(r.body.equals(second), 'the stored bytes are the second instance\'s');
});

test('STOW reads a header past the bytes it keeps in memory from the file, single part and multipart', async () => {
  // The emulator keeps a part's first 64 KiB to read its header from; an element of 100 KiB
  // before the Study UID (with and without pixel data after it) must send it back to the file.
  const inst = (sop) => `${W}/studies/1.2.60/series/1.2.60.1/instances/${sop}`;
  const cases = [
    { sop: '1.2.60.1.1', rows: 8, cols: 8, bigElement: 100 * 1024 },
    { sop: '1.2.60.1.2', bigElement: 100 * 1024 },                 // no pixel data at all
    { sop: '1.2.60.1.3', rows: 400, cols: 400 },                   // header in memory, pixel data past it
    { sop: '1.2.60.1.4', rows: 4, cols: 4 },                       // all of it in memory
    // every UID in memory, but not Number of Frames: only the file knows there are 3
    { sop: '1.2.60.1.5', rows: 4, cols: 4, frames: 3, bigElementLater: 100 * 1024 },
    // the same with the 64 KiB ending exactly where an element ends: the head parses cleanly
    { sop: '1.2.60.1.7', rows: 4, cols: 4, frames: 3, bigElementLater: 'to 64 KiB' },
  ];
  for (const c of cases) {
    if (c.bigElementLater === 'to 64 KiB') {
      const probe = makeDicom(Object.assign({ study: '1.2.60', series: '1.2.60.1' }, c, { bigElementLater: 2 }));
      const at = probe.indexOf(Buffer.from([0x21, 0x00, 0x01, 0x10, 0x4f, 0x42]));   // (0021,1001) OB
      c.bigElementLater = 64 * 1024 - (at + 12);
    }
    const d = makeDicom(Object.assign({ study: '1.2.60', series: '1.2.60.1' }, c));
    let r;
    if (c.sop.endsWith('2') || c.sop.endsWith('4')) {
      const mp = multipart([d]);
      r = await emu.request('POST', `${W}/studies`, { body: mp.body, headers: Object.assign({ 'Content-Type': mp.ct }, JSONH) });
    } else {
      r = await emu.request('POST', `${W}/studies`, { body: d, headers: Object.assign({ 'Content-Type': 'application/dicom' }, JSONH) });
    }
    assert.strictEqual(r.status, 200, `${c.sop}: ${r.body}`);
    r = await emu.request('GET', `${inst(c.sop)}/metadata`, { headers: JSONH });
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.json[0]['0020000D'].Value[0], '1.2.60');
    if (c.rows) assert.strictEqual(r.json[0]['00280010'].Value[0], c.rows);
    r = await emu.request('GET', inst(c.sop), { headers: { Accept: 'application/dicom; transfer-syntax=*' } });
    assert.ok(r.body.equals(d), `${c.sop}: the bytes stored are the bytes sent`);
    if (c.frames) {
      r = await emu.request('GET', `${inst(c.sop)}/frames/${c.frames}`, { headers: { Accept: 'multipart/related; type="application/octet-stream"' } });
      assert.strictEqual(r.status, 200, `${c.sop}: frame ${c.frames}: ${r.body}`);
    }
  }
});

test('an instance stored again after a delete gets a file of its own: the deleted one\'s removal cannot take it', () => {
  // The removal of a deleted instance's file is asynchronous; when it shared the new record's
  // name it could land after the new bytes and leave a record without a file (seen in CI).
  const fs = require('fs'); const os = require('os'); const path = require('path');
  const { Instances } = require('../src/instances');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inst-'));
  try {
    const inst = new Instances(dir);
    const store = { name: 'projects/p/locations/l/datasets/d/dicomStores/s', instances: new Map() };
    const info = { studyUid: '1.2', seriesUid: '1.2.1', sopUid: '1.2.1.1', sopClassUid: '1.2.840.10008.5.1.4.1.1.7', size: 3 };
    const src = (text) => { const f = path.join(dir, text); fs.writeFileSync(f, text); return f; };
    assert.strictEqual(inst.add(store, info, src('old'), { move: true }), 'added');
    const deleted = store.instances.get(info.sopUid);
    store.instances.delete(info.sopUid);
    assert.strictEqual(inst.add(store, info, src('new'), { move: true }), 'added');
    const again = store.instances.get(info.sopUid);
    assert.notStrictEqual(again.file, deleted.file);
    fs.rmSync(deleted.file, { force: true });   // the late removal of the deleted record's file
    assert.strictEqual(fs.readFileSync(again.file, 'utf8'), 'new');
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('shared storage: imported instances are retrievable; stored ones are exported', async () => {
  await makeBucket(emu, 'dwb');
  await upload(emu, 'dwb', 'in/a.dcm', makeDicom({ study: '1.2.40', series: '1.2.40.1', sop: '1.2.40.1.1' }));
  let r = await emu.request('POST', `/v1/${ST}:import`, { body: { gcsSource: { uri: 'gs://dwb/in/**' } } });
  const op = await waitOp(emu, r.json.name);
  assert.ok(op.response, JSON.stringify(op));
  r = await emu.request('GET', `${W}/studies/1.2.40/series/1.2.40.1/instances/1.2.40.1.1`, { headers: { Accept: 'application/dicom; transfer-syntax=*' } });
  assert.strictEqual(r.status, 200);
  r = await emu.request('POST', `/v1/${ST}:export`, { body: { gcsDestination: { uriPrefix: 'gs://dwb/out/' } } });
  await waitOp(emu, r.json.name);
  r = await emu.request('GET', '/storage/v1/b/dwb/o?prefix=out/');
  const names = r.json.items.map((o) => o.name);
  assert.ok(names.includes('out/1.2.10/1.2.10.1/1.2.10.1.1.dcm'), names.join(' '));
  assert.ok(names.includes('out/1.2.40/1.2.40.1/1.2.40.1.1.dcm'));
});
