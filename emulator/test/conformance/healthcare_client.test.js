'use strict';
// Conformance: Google's official @googleapis/healthcare client (v1 and v1beta1) against the
// emulator. Every response is taken from the client's own parsing (GaxiosResponse.data / GaxiosError)
// and every body is checked against the discovery schema of its method (./discovery.js).
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { healthcare } = require('@googleapis/healthcare');
const { startEmulator, makeDicom, upload, makeBucket, sleep } = require('../helpers');
const { assertSchema, method } = require('./discovery');

const LOC = 'projects/p/locations/us-central1';
const DS = `${LOC}/datasets/conf`;
const ST = `${DS}/dicomStores/st`;
let emu; let v1; let beta; let tmp;

test.before(async () => {
  emu = await startEmulator({ opDelayMs: 2 });
  v1 = healthcare({ version: 'v1', rootUrl: `http://${emu.host}/` });
  beta = healthcare({ version: 'v1beta1', rootUrl: `http://${emu.host}/` });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dgconf-'));
  await makeBucket(emu, 'conf-src');
  await makeBucket(emu, 'conf-out');
  for (const [i, o] of [
    { sop: '1.2.9.1.1', study: '1.2.9.1', series: '1.2.9.1.1', rows: 8, cols: 8 },
    { sop: '1.2.9.1.2', study: '1.2.9.1', series: '1.2.9.1.1', rows: 8, cols: 8 },
    { sop: '1.2.9.2.1', study: '1.2.9.2', series: '1.2.9.2.1', rows: 8, cols: 8 },
  ].entries()) await upload(emu, 'conf-src', `in/f${i}.dcm`, makeDicom(o));
  await upload(emu, 'conf-src', 'in/multi.dcm', makeMultiFrame({ sop: '1.2.9.3.1', study: '1.2.9.3', series: '1.2.9.3.1', frames: 3, rows: 4, cols: 4 }));
});
test.after(async () => { await emu.close(); fs.rmSync(tmp, { recursive: true, force: true }); });

// ---- helpers ----
/** Await a client call; check status 200 and the body against the method's response schema. */
async function ok(p, schema, opts) {
  const r = await p;
  assert.strictEqual(r.status, 200);
  return assertSchema('healthcare', schema, r.data, opts);
}
/** Await a failing client call; check the GaxiosError's status and its Google error body. */
async function fails(p, httpCode, status) {
  let err = null;
  try { await p; } catch (e) { err = e; }
  assert.ok(err, `expected HTTP ${httpCode}, the call succeeded`);
  assert.strictEqual(err.status, httpCode, err.message);
  assertSchema('healthcare', 'GoogleError', err.response.data);
  assert.strictEqual(err.response.data.error.status, status);
  assert.strictEqual(err.response.data.error.code, httpCode);
  assert.strictEqual(err.message, err.response.data.error.message); // gaxios surfaces Google's message
  return err.response.data.error;
}
async function waitOp(client, name, opts) {
  for (let i = 0; i < 2000; i++) {
    const op = await ok(client.projects.locations.datasets.operations.get({ name }), 'Operation', opts);
    if (op.done) return op;
    assert.strictEqual(op.done, undefined); // proto3: absent while running
    await sleep(10);
  }
  throw new Error('operation did not finish: ' + name);
}
async function objects(bucket, prefix) {
  const r = await emu.request('GET', `/storage/v1/b/${bucket}/o?prefix=${encodeURIComponent(prefix)}`);
  return (r.json.items || []).map((i) => i.name).sort();
}
async function media(bucket, name) {
  return (await emu.request('GET', `/storage/v1/b/${bucket}/o/${encodeURIComponent(name)}?alt=media`)).body;
}
function transferSyntaxOf(buf) {
  const f = path.join(tmp, 'ts-' + Math.random().toString(36).slice(2) + '.dcm');
  fs.writeFileSync(f, buf);
  const out = execFileSync('dcmdump', ['-M', '-Un', '+P', '0002,0010', f]).toString();
  return /\[([\d.]+)\]/.exec(out)[1];
}
// explicit VR LE multi-frame, 8-bit MONOCHROME2
function makeMultiFrame(o) {
  const el = (g, e, vr, v) => {
    let b = Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'latin1');
    if (b.length % 2) b = Buffer.concat([b, Buffer.from([vr === 'UI' || vr === 'OB' ? 0 : 0x20])]);
    const long = ['OB', 'OW'].includes(vr); const h = Buffer.alloc(long ? 12 : 8);
    h.writeUInt16LE(g, 0); h.writeUInt16LE(e, 2); h.write(vr, 4, 'latin1');
    if (long) h.writeUInt32LE(b.length, 8); else h.writeUInt16LE(b.length, 6);
    return Buffer.concat([h, b]);
  };
  const us = (n) => { const b = Buffer.alloc(2); b.writeUInt16LE(n); return b; };
  const cls = '1.2.840.10008.5.1.4.1.1.7.2';
  const metaEls = Buffer.concat([el(2, 1, 'OB', Buffer.from([0, 1])), el(2, 2, 'UI', cls), el(2, 3, 'UI', o.sop), el(2, 0x10, 'UI', '1.2.840.10008.1.2.1')]);
  const gl = Buffer.alloc(4); gl.writeUInt32LE(metaEls.length);
  const px = Buffer.alloc(o.frames * o.rows * o.cols); for (let i = 0; i < px.length; i++) px[i] = (i * 7) % 256;
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), el(2, 0, 'UL', gl), metaEls,
    el(8, 0x16, 'UI', cls), el(8, 0x18, 'UI', o.sop), el(0x10, 0x10, 'PN', 'Multi^Frame'),
    el(0x20, 0x0d, 'UI', o.study), el(0x20, 0x0e, 'UI', o.series),
    el(0x28, 2, 'US', us(1)), el(0x28, 4, 'CS', 'MONOCHROME2'), el(0x28, 8, 'IS', String(o.frames)),
    el(0x28, 0x10, 'US', us(o.rows)), el(0x28, 0x11, 'US', us(o.cols)), el(0x28, 0x100, 'US', us(8)),
    el(0x28, 0x101, 'US', us(8)), el(0x28, 0x102, 'US', us(7)), el(0x28, 0x103, 'US', us(0)),
    el(0x7fe0, 0x10, 'OB', px)]);
}

// ---- tests ----
test('the client builds the URLs of the discovery document', () => {
  // guards the schema names used below
  assert.strictEqual(method('healthcare', 'healthcare.projects.locations.datasets.create').response, 'Operation');
  assert.strictEqual(method('healthcare', 'healthcare.projects.locations.datasets.dicomStores.create').response, 'DicomStore');
  assert.strictEqual(method('healthcare', 'healthcare.projects.locations.datasets.operations.list').response, 'ListOperationsResponse');
});

test('datasets: create (LRO), get, list with paging, patch, 409, 404, 400, delete', async () => {
  const ds = v1.projects.locations.datasets;
  let op = await ok(ds.create({ parent: LOC, datasetId: 'conf', requestBody: { timeZone: 'UTC' } }), 'Operation');
  assert.match(op.name, /^projects\/p\/locations\/us-central1\/datasets\/conf\/operations\/\d+$/);
  op = await waitOp(v1, op.name);
  assert.strictEqual(op.response['@type'], 'type.googleapis.com/google.cloud.healthcare.v1.dataset.Dataset');
  assert.strictEqual(op.response.name, DS);
  await ok(ds.create({ parent: LOC, datasetId: 'conf-2', requestBody: {} }), 'Operation');
  assert.deepStrictEqual(await ok(ds.get({ name: DS }), 'Dataset'), { name: DS, timeZone: 'UTC' });
  const p1 = await ok(ds.list({ parent: LOC, pageSize: 1 }), 'ListDatasetsResponse');
  assert.strictEqual(p1.datasets.length, 1); assert.ok(p1.nextPageToken);
  const p2 = await ok(ds.list({ parent: LOC, pageSize: 1, pageToken: p1.nextPageToken }), 'ListDatasetsResponse');
  assert.notStrictEqual(p2.datasets[0].name, p1.datasets[0].name);
  assert.strictEqual((await ok(ds.patch({ name: `${LOC}/datasets/conf-2`, updateMask: 'timeZone', requestBody: { timeZone: 'Europe/Paris' } }), 'Dataset')).timeZone, 'Europe/Paris');
  await fails(ds.create({ parent: LOC, datasetId: 'conf', requestBody: {} }), 409, 'ALREADY_EXISTS');
  await fails(ds.get({ name: `${LOC}/datasets/none` }), 404, 'NOT_FOUND');
  await fails(ds.create({ parent: LOC, datasetId: 'bad id!', requestBody: {} }), 400, 'INVALID_ARGUMENT');
  await fails(ds.create({ parent: LOC, datasetId: 'x'.repeat(257), requestBody: {} }), 400, 'INVALID_ARGUMENT');
  await fails(ds.patch({ name: DS, updateMask: 'name', requestBody: {} }), 400, 'INVALID_ARGUMENT');
  assert.deepStrictEqual(await ok(ds.delete({ name: `${LOC}/datasets/conf-2` }), 'Empty'), {});
  await fails(ds.get({ name: `${LOC}/datasets/conf-2` }), 404, 'NOT_FOUND');
});

test('dicomStores: create (not an LRO), get, list with filter, patch labels, errors, delete', async () => {
  const sts = v1.projects.locations.datasets.dicomStores;
  assert.deepStrictEqual(await ok(sts.create({ parent: DS, dicomStoreId: 'st', requestBody: {} }), 'DicomStore'), { name: ST });
  const s2 = await ok(sts.create({ parent: DS, dicomStoreId: 'st2', requestBody: { labels: { env: 'test', team: '' } } }), 'DicomStore');
  assert.deepStrictEqual(s2.labels, { env: 'test', team: '' });
  assert.deepStrictEqual(await ok(sts.get({ name: ST }), 'DicomStore'), { name: ST });
  const all = await ok(sts.list({ parent: DS }), 'ListDicomStoresResponse');
  assert.deepStrictEqual(all.dicomStores.map((s) => s.name), [ST, `${DS}/dicomStores/st2`]);
  const f = await ok(sts.list({ parent: DS, filter: 'labels.env="test"' }), 'ListDicomStoresResponse');
  assert.deepStrictEqual(f.dicomStores.map((s) => s.name), [`${DS}/dicomStores/st2`]);
  const pg = await ok(sts.list({ parent: DS, pageSize: 1 }), 'ListDicomStoresResponse');
  assert.strictEqual(pg.dicomStores.length, 1); assert.ok(pg.nextPageToken);
  const p = await ok(sts.patch({ name: `${DS}/dicomStores/st2`, updateMask: 'labels', requestBody: { labels: { a: 'b' } } }), 'DicomStore');
  assert.deepStrictEqual(p.labels, { a: 'b' });
  await fails(sts.create({ parent: DS, dicomStoreId: 'st', requestBody: {} }), 409, 'ALREADY_EXISTS');
  await fails(sts.create({ parent: DS, dicomStoreId: 'st3', requestBody: { labels: { Upper: 'x' } } }), 400, 'INVALID_ARGUMENT');
  await fails(sts.create({ parent: DS, dicomStoreId: 'y'.repeat(257), requestBody: {} }), 400, 'INVALID_ARGUMENT');
  await fails(sts.get({ name: `${DS}/dicomStores/none` }), 404, 'NOT_FOUND');
  await fails(sts.list({ parent: `${LOC}/datasets/none` }), 404, 'NOT_FOUND');
  assert.deepStrictEqual(await ok(sts.delete({ name: `${DS}/dicomStores/st2` }), 'Empty'), {});
});

test('strict requests through the client: unknown fields, wrong types, v1 has no filterConfig', async () => {
  const sts = v1.projects.locations.datasets.dicomStores;
  let e = await fails(sts.import({ name: ST, requestBody: { gcsSource: { uri: 'gs://conf-src/in/*.dcm', recursive: true } } }), 400, 'INVALID_ARGUMENT');
  assert.strictEqual(e.message, 'Invalid JSON payload received. Unknown name "recursive" at \'gcs_source\': Cannot find field.');
  assert.deepStrictEqual(e.details, [{ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ field: 'gcs_source', description: e.message }] }]);
  e = await fails(sts.import({ name: ST, requestBody: { gcsSource: { uri: ['gs://a/b'] } } }), 400, 'INVALID_ARGUMENT');
  assert.match(e.message, /^Invalid value at 'gcs_source.uri' \(TYPE_STRING\)/);
  e = await fails(sts.export({ name: ST, requestBody: { gcsDestination: { uriPrefix: 'gs://conf-out/x' }, filterConfig: { resourcePathsGcsUri: 'gs://conf-src/f.txt' } } }), 400, 'INVALID_ARGUMENT');
  assert.match(e.message, /Unknown name "filterConfig"/);
  e = await fails(sts.export({ name: ST, requestBody: { gcsDestination: { uriPrefix: 'gs://conf-out/x', mimeType: 'application/dicom; transfer-syntax=1.2.3' } } }), 400, 'INVALID_ARGUMENT');
  await fails(sts.export({ name: ST, requestBody: { gcsDestination: { uriPrefix: 'conf-out/x' } } }), 400, 'INVALID_ARGUMENT');
  await fails(sts.export({ name: ST, requestBody: { bigqueryDestination: { tableUri: 'bq://p.ds.t', writeDisposition: 'WRITE_SOMETIMES' } } }), 400, 'INVALID_ARGUMENT');
  await fails(sts.import({ name: ST, requestBody: { gcsSource: { uri: 'gs://conf-src/a/**/b.dcm' } } }), 400, 'INVALID_ARGUMENT');
  await fails(sts.import({ name: ST, requestBody: { blobStorageSettings: { blobStorageClass: 'COLD' }, gcsSource: { uri: 'gs://conf-src/in/*.dcm' } } }), 400, 'INVALID_ARGUMENT');
  await fails(v1.projects.locations.datasets.operations.list({ name: DS, pageSize: -1 }), 400, 'INVALID_ARGUMENT');
  await fails(v1.projects.locations.datasets.operations.list({ name: DS, filter: 'colour="red"' }), 400, 'INVALID_ARGUMENT');
});

test('import: Operation while running and when done, counters as strings, failures in error details', async () => {
  await upload(emu, 'conf-src', 'in/broken.dcm', Buffer.from('not a DICOM file'));
  const sts = v1.projects.locations.datasets.dicomStores;
  let op = await ok(sts.import({ name: ST, requestBody: { gcsSource: { uri: 'gs://conf-src/in/*.dcm' }, blobStorageSettings: { blobStorageClass: 'STANDARD' } } }), 'Operation');
  assert.strictEqual(op.metadata.apiMethodName, 'google.cloud.healthcare.v1.dicom.DicomService.ImportDicomData');
  op = await waitOp(v1, op.name);
  assert.deepStrictEqual(op.metadata.counter, { success: '4', failure: '1' });
  assert.strictEqual(op.error.code, 3);
  assert.strictEqual(op.error.details[0]['@type'], 'type.googleapis.com/google.cloud.healthcare.v1.dicom.ImportDicomDataErrorDetails');
  assert.deepStrictEqual(op.error.details[0].sampleErrors.map((s) => s.resource), ['gs://conf-src/in/broken.dcm']);
  // v1beta1: same store, the response @type carries the version
  op = await ok(beta.projects.locations.datasets.dicomStores.import({ name: ST, requestBody: { gcsSource: { uri: 'gs://conf-src/in/f0.dcm' } } }), 'Operation', { beta: true });
  op = await waitOp(beta, op.name, { beta: true });
  assert.deepStrictEqual(op.response, { '@type': 'type.googleapis.com/google.cloud.healthcare.v1beta1.dicom.ImportDicomDataResponse' });
});

test('export mime types: names, extensions, transcoding and rendering (dcmtk)', async () => {
  const sts = v1.projects.locations.datasets.dicomStores;
  const single = ['1.2.9.1/1.2.9.1.1/1.2.9.1.1', '1.2.9.1/1.2.9.1.1/1.2.9.1.2', '1.2.9.2/1.2.9.2.1/1.2.9.2.1'];
  const multi = '1.2.9.3/1.2.9.3.1/1.2.9.3.1';
  const cases = [
    ['application/dicom', 'as', (n) => n + '.dcm', null, '1.2.840.10008.1.2.1'],
    ['application/dicom; transfer-syntax=*', 'star', (n) => n + '.dcm', null, '1.2.840.10008.1.2.1'],
    ['application/dicom; transfer-syntax=1.2.840.10008.1.2.1', 'le', (n) => n + '.dcm', null, '1.2.840.10008.1.2.1'],
    ['application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50', 'jb', (n) => n + '.dcm', null, '1.2.840.10008.1.2.4.50'],
    ['application/dicom; transfer-syntax=1.2.840.10008.1.2.4.70', 'jl', (n) => n + '.dcm', null, '1.2.840.10008.1.2.4.70'],
    ['application/dicom; transfer-syntax=1.2.840.10008.1.2.4.57', 'j14', (n) => n + '.dcm', null, '1.2.840.10008.1.2.4.57'],
    ['application/octet-stream; transfer-syntax=*', 'raw', (n) => n, [1, 2, 3].map((f) => `/${f}`)],
    ['application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1', 'rawle', (n) => n, [1, 2, 3].map((f) => `/${f}`)],
    ['image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50', 'jpg', (n) => n + '.jpg', [1, 2, 3].map((f) => `/${f}.jpg`)],
    ['image/png', 'png', (n) => n + '.png', [1, 2, 3].map((f) => `/${f}.png`)],
  ];
  for (const [mimeType, dir, name, frames, ts] of cases) {
    let op = await ok(sts.export({ name: ST, requestBody: { gcsDestination: { uriPrefix: `gs://conf-out/${dir}`, mimeType } } }), 'Operation');
    op = await waitOp(v1, op.name);
    assert.deepStrictEqual(op.metadata.counter, { success: '4' }, `${mimeType}: ${JSON.stringify(op)}`);
    assert.strictEqual(op.response['@type'], 'type.googleapis.com/google.cloud.healthcare.v1.dicom.ExportDicomDataResponse');
    const want = single.map((n) => `${dir}/${name(n)}`).concat(frames ? frames.map((f) => `${dir}/${multi}${f}`) : [`${dir}/${name(multi)}`]).sort();
    assert.deepStrictEqual(await objects('conf-out', `${dir}/`), want, mimeType);
    const first = await media('conf-out', `${dir}/${name(single[0])}`);
    if (ts) {
      assert.strictEqual(transferSyntaxOf(first), ts, mimeType);
      if (ts !== '1.2.840.10008.1.2.1') assert.strictEqual(transferSyntaxOf(await media('conf-out', `${dir}/${name(multi)}`)), ts);
    } else if (mimeType.startsWith('image/png')) {
      assert.deepStrictEqual([...first.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    } else if (mimeType.startsWith('image/jpeg')) {
      assert.deepStrictEqual([...first.subarray(0, 3)], [0xff, 0xd8, 0xff]);
    } else {
      assert.strictEqual(first.length, 64); // 8x8 8-bit pixels
      const f2 = await media('conf-out', `${dir}/${multi}/2`);
      assert.strictEqual(f2.length, 16); assert.strictEqual(f2[0], (16 * 7) % 256); // frame 2 of 4x4
    }
  }
});

test('export v1beta1 filterConfig: exactly the listed resources; unknown and malformed paths are failures', async () => {
  await upload(emu, 'conf-src', 'filters/list.txt', [
    '/studies/1.2.9.1/series/1.2.9.1.1/instances/1.2.9.1.2', '/studies/1.2.9.2', '/studies/1.2.9.9', '', 'not/a/path',
    '/studies/1.2.9.1/series/1.2.9.1.1/instances/1.2.9.1.2', // twice: exported once
  ].join('\r\n'), 'text/plain');
  let op = await ok(beta.projects.locations.datasets.dicomStores.export({ name: ST, requestBody: {
    gcsDestination: { uriPrefix: 'gs://conf-out/subset/', mimeType: 'application/dicom' },
    filterConfig: { resourcePathsGcsUri: 'gs://conf-src/filters/list.txt' },
  } }), 'Operation', { beta: true });
  op = await waitOp(beta, op.name, { beta: true });
  assert.deepStrictEqual(op.metadata.counter, { success: '2', failure: '2' });
  assert.strictEqual(op.error.code, 3);
  assert.deepStrictEqual(await objects('conf-out', 'subset/'), ['subset/1.2.9.1/1.2.9.1.1/1.2.9.1.2.dcm', 'subset/1.2.9.2/1.2.9.2.1/1.2.9.2.1.dcm']);
  const r = await emu.request('POST', '/v2/entries:list', { body: { resourceNames: ['projects/p'], filter: `operation.id="${op.name}"` } });
  assertSchema('logging', 'ListLogEntriesResponse', r.json);
  assert.deepStrictEqual(r.json.entries.map((e) => e.jsonPayload.resourceName).sort(), [`${ST}/dicomWeb/studies/1.2.9.9`, `${ST}/dicomWeb/not/a/path`].sort());
  assert.deepStrictEqual(r.json.entries.map((e) => e.jsonPayload.error.code).sort(), [3, 5]);
  // a missing filter file ends the operation with NOT_FOUND
  op = await ok(beta.projects.locations.datasets.dicomStores.export({ name: ST, requestBody: {
    gcsDestination: { uriPrefix: 'gs://conf-out/none/' }, filterConfig: { resourcePathsGcsUri: 'gs://conf-src/filters/nope.txt' } } }), 'Operation', { beta: true });
  assert.strictEqual((await waitOp(beta, op.name, { beta: true })).error.code, 5);
});

test('export to BigQuery: rows in DATA/bigquery/{project}/{dataset}/{table}.jsonl, write dispositions', async () => {
  const sts = v1.projects.locations.datasets.dicomStores;
  const file = path.join(emu.dataDir, 'bigquery', 'p', 'bqds', 'instances.jsonl');
  const rows = () => fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const bqExport = async (bq) => waitOp(v1, (await ok(sts.export({ name: ST, requestBody: { bigqueryDestination: bq } }), 'Operation')).name);
  let op = await bqExport({ tableUri: 'bq://p.bqds.instances' });
  assert.deepStrictEqual(op.metadata.counter, { success: '4' }, JSON.stringify(op));
  let got = rows();
  assert.strictEqual(got.length, 4);
  const r0 = got.find((r) => r.SOPInstanceUID === '1.2.9.1.1');
  assert.strictEqual(r0.StudyInstanceUID, '1.2.9.1'); assert.strictEqual(r0.SeriesInstanceUID, '1.2.9.1.1');
  assert.strictEqual(r0.PatientName, 'Test^Patient'); assert.strictEqual(r0.Rows, 8);
  assert.strictEqual(r0.PixelData, undefined); assert.strictEqual(r0.TransferSyntaxUID, undefined);
  op = await bqExport({ tableUri: 'bq://p.bqds.instances', writeDisposition: 'WRITE_EMPTY' });
  assert.strictEqual(op.error.code, 9); assert.match(op.error.message, /not empty/);
  op = await bqExport({ tableUri: 'bq://p.bqds.instances', force: false });
  assert.strictEqual(op.error.code, 9);
  await bqExport({ tableUri: 'bq://p.bqds.instances', writeDisposition: 'WRITE_APPEND' });
  assert.strictEqual(rows().length, 8);
  await bqExport({ tableUri: 'bq://p.bqds.instances', writeDisposition: 'WRITE_TRUNCATE' });
  assert.strictEqual(rows().length, 4);
  await bqExport({ tableUri: 'bq://p.bqds.instances', force: true });
  assert.strictEqual(rows().length, 4);
  await fails(sts.export({ name: ST, requestBody: { bigqueryDestination: { tableUri: 'bq://other-project.bqds.t' } } }), 400, 'INVALID_ARGUMENT');
  await fails(sts.export({ name: ST, requestBody: { bigqueryDestination: { tableUri: 'bq://p.bq-ds.t' } } }), 400, 'INVALID_ARGUMENT');
  await fails(sts.export({ name: ST, requestBody: { bigqueryDestination: { tableUri: 'p.bqds.t' } } }), 400, 'INVALID_ARGUMENT');
  await fails(sts.export({ name: ST, requestBody: { bigqueryDestination: { tableUri: 'bq://p.bqds.t' }, gcsDestination: { uriPrefix: 'gs://conf-out/x' } } }), 400, 'INVALID_ARGUMENT');
});

test('operations: list with filter and paging, cancel stops between files and sets cancelRequested', async () => {
  const ops = v1.projects.locations.datasets.operations;
  for (let i = 0; i < 20; i++) await upload(emu, 'conf-src', `slow/f${i}.dcm`, makeDicom({ sop: `1.2.9.50.${i}`, study: '1.2.9.50', series: '1.2.9.50.1' }));
  emu.ctx.opts.opDelayMs = 40;
  let op = await ok(v1.projects.locations.datasets.dicomStores.import({ name: ST, requestBody: { gcsSource: { uri: 'gs://conf-src/slow/*.dcm' } } }), 'Operation');
  await sleep(150);
  const running = await ok(ops.list({ name: DS, filter: 'done=false' }), 'ListOperationsResponse');
  assert.deepStrictEqual(running.operations.map((o) => o.name), [op.name]);
  assert.deepStrictEqual(await ok(ops.cancel({ name: op.name, requestBody: {} }), 'Empty'), {});
  emu.ctx.opts.opDelayMs = 2;
  op = await waitOp(v1, op.name);
  assert.strictEqual(op.metadata.cancelRequested, true);
  assert.strictEqual(op.error.code, 1);
  assert.ok(Number(op.metadata.counter.success || 0) < 20);
  assert.deepStrictEqual(await ok(ops.cancel({ name: op.name, requestBody: {} }), 'Empty'), {}); // done: a no-op
  await fails(ops.cancel({ name: `${DS}/operations/123`, requestBody: {} }), 404, 'NOT_FOUND');
  await fails(ops.get({ name: `${DS}/operations/123` }), 404, 'NOT_FOUND');
  // filters
  const done = await ok(ops.list({ name: DS, filter: 'done=true' }), 'ListOperationsResponse');
  assert.ok(done.operations.every((o) => o.done));
  const exp = await ok(ops.list({ name: DS, filter: 'metadata.apiMethodName="google.cloud.healthcare.v1.dicom.DicomService.ExportDicomData"' }), 'ListOperationsResponse');
  assert.ok(exp.operations.length >= 10 && exp.operations.every((o) => /ExportDicomData$/.test(o.metadata.apiMethodName)));
  const both = await ok(ops.list({ name: DS, filter: 'metadata.api_method_name="ImportDicomData" AND done = true' }), 'ListOperationsResponse');
  assert.ok(both.operations.length >= 2 && both.operations.every((o) => /ImportDicomData$/.test(o.metadata.apiMethodName)));
  // paging visits each operation once
  const seen = []; let pageToken;
  do {
    const page = await ok(ops.list({ name: DS, pageSize: 4, pageToken }), 'ListOperationsResponse');
    seen.push(...page.operations.map((o) => o.name)); pageToken = page.nextPageToken;
  } while (pageToken);
  assert.strictEqual(new Set(seen).size, seen.length);
  assert.strictEqual(seen.length, emu.ctx.ops.toState().filter((o) => o.dataset === DS).length);
});

test('concurrent operations per project are capped: 429 RESOURCE_EXHAUSTED, start option and admin knob', async () => {
  const { parseArgs } = require('../../src/main');
  assert.strictEqual(parseArgs(['--data', '/tmp/x', '--max-concurrent-operations', '3']).maxConcurrentOperations, 3);
  let r = await emu.request('POST', '/_emulator/config', { body: { maxConcurrentOperations: 2, opDelayMs: 50 } });
  assert.strictEqual(r.json.maxConcurrentOperations, 2);
  const sts = v1.projects.locations.datasets.dicomStores;
  const a = await ok(sts.import({ name: ST, requestBody: { gcsSource: { uri: 'gs://conf-src/slow/*.dcm' } } }), 'Operation');
  const b = await ok(sts.export({ name: ST, requestBody: { gcsDestination: { uriPrefix: 'gs://conf-out/cap/' } } }), 'Operation');
  const e = await fails(sts.import({ name: ST, requestBody: { gcsSource: { uri: 'gs://conf-src/slow/*.dcm' } } }), 429, 'RESOURCE_EXHAUSTED');
  assert.strictEqual(e.details[0]['@type'], 'type.googleapis.com/google.rpc.ErrorInfo');
  assert.strictEqual(e.details[0].reason, 'RATE_LIMIT_EXCEEDED');
  // another project is not affected
  const other = healthcare({ version: 'v1', rootUrl: `http://${emu.host}/` }).projects.locations.datasets;
  await ok(other.create({ parent: 'projects/q/locations/us-central1', datasetId: 'd', requestBody: {} }), 'Operation');
  for (const op of [a, b]) await ok(v1.projects.locations.datasets.operations.cancel({ name: op.name, requestBody: {} }), 'Empty');
  await emu.request('POST', '/_emulator/config', { body: { opDelayMs: 2 } });
  await waitOp(v1, a.name); await waitOp(v1, b.name);
  const c = await ok(sts.import({ name: ST, requestBody: { gcsSource: { uri: 'gs://conf-src/in/f0.dcm' } } }), 'Operation');
  await waitOp(v1, c.name);
  await emu.request('POST', '/_emulator/config', { body: { maxConcurrentOperations: 100 } });
});

test('resource names and query parameters are checked like Google\'s front end', async () => {
  const ds = v1.projects.locations.datasets;
  await fails(ds.get({ name: `${LOC}/datasets/bad id` }), 400, 'INVALID_ARGUMENT');
  await fails(ds.dicomStores.get({ name: `${DS}/dicomStores/${'z'.repeat(257)}` }), 400, 'INVALID_ARGUMENT');
  await fails(ds.operations.get({ name: `${DS}/operations/not-a-number` }), 404, 'NOT_FOUND');
  // an undeclared query parameter (the client passes unknown params through to the query)
  const e = await fails(ds.list({ parent: LOC, colour: 'red' }), 400, 'INVALID_ARGUMENT');
  assert.strictEqual(e.message, 'Invalid JSON payload received. Unknown name "colour": Cannot bind query parameter. Field \'colour\' could not be found in request message.');
  // standard parameters and snake_case names are accepted
  const r = await ok(ds.list({ parent: LOC, prettyPrint: false, fields: 'datasets', page_size: 1 }), 'ListDatasetsResponse');
  assert.strictEqual(r.datasets.length, 1);
});
