'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { startEmulator, makeDicom, waitOp, upload, makeBucket, sleep } = require('./helpers');

const P = '/v1/projects/p/locations/us-central1';
const DS = 'projects/p/locations/us-central1/datasets/ds';
const ST = `${DS}/dicomStores/st`;
let emu;

test.before(async () => {
  emu = await startEmulator();
  await makeBucket(emu, 'src');
  let r = await emu.request('POST', `${P}/datasets?datasetId=ds`, { body: {} });
  assert.strictEqual(r.status, 200);
  await waitOp(emu, r.json.name);
  r = await emu.request('POST', `/v1/${DS}/dicomStores?dicomStoreId=st`, { body: {} });
  assert.strictEqual(r.status, 200);
});
test.after(async () => { await emu.close(); });

test('datasets: create is an LRO with a Dataset response; get, list paging, 409, 404, bad id', async () => {
  let r = await emu.request('POST', `${P}/datasets?datasetId=d2`, { body: { timeZone: 'UTC' } });
  assert.strictEqual(r.status, 200);
  assert.match(r.json.name, /^projects\/p\/locations\/us-central1\/datasets\/d2\/operations\/\d{15,}$/);
  assert.strictEqual(r.json.done, undefined);
  const op = await waitOp(emu, r.json.name);
  assert.strictEqual(op.response['@type'], 'type.googleapis.com/google.cloud.healthcare.v1.dataset.Dataset');
  assert.strictEqual(op.response.name, 'projects/p/locations/us-central1/datasets/d2');
  assert.strictEqual(op.metadata.apiMethodName, 'google.cloud.healthcare.v1.dataset.DatasetService.CreateDataset');
  r = await emu.request('POST', `${P}/datasets?datasetId=d2`, { body: {} });
  assert.strictEqual(r.status, 409); assert.strictEqual(r.json.error.status, 'ALREADY_EXISTS');
  r = await emu.request('POST', `${P}/datasets?datasetId=${encodeURIComponent('bad/id')}`, { body: {} });
  assert.strictEqual(r.status, 400); assert.strictEqual(r.json.error.status, 'INVALID_ARGUMENT');
  r = await emu.request('POST', `${P}/datasets?datasetId=${encodeURIComponent('dé_1.x-é')}`, { body: {} });
  assert.strictEqual(r.status, 200);
  r = await emu.request('POST', `${P}/datasets`, { body: {} });
  assert.strictEqual(r.status, 400);
  r = await emu.request('GET', `${P}/datasets/d2`);
  assert.deepStrictEqual(r.json, { name: 'projects/p/locations/us-central1/datasets/d2', timeZone: 'UTC' });
  r = await emu.request('GET', `${P}/datasets/nope`);
  assert.strictEqual(r.status, 404); assert.strictEqual(r.json.error.status, 'NOT_FOUND'); assert.strictEqual(r.json.error.code, 404);
  r = await emu.request('GET', `${P}/datasets?pageSize=2`);
  assert.strictEqual(r.json.datasets.length, 2); assert.ok(r.json.nextPageToken);
  r = await emu.request('GET', `${P}/datasets?pageSize=2&pageToken=${r.json.nextPageToken}`);
  assert.strictEqual(r.json.datasets.length, 1); assert.strictEqual(r.json.nextPageToken, undefined);
  r = await emu.request('PATCH', `${P}/datasets/d2?updateMask=timeZone`, { body: { timeZone: 'Europe/Paris' } });
  assert.strictEqual(r.json.timeZone, 'Europe/Paris');
  r = await emu.request('DELETE', `${P}/datasets/d2`);
  assert.strictEqual(r.status, 200); assert.deepStrictEqual(r.json, {});
  r = await emu.request('GET', `${P}/datasets/d2`);
  assert.strictEqual(r.status, 404);
});

test('dicomStores: create (not an LRO), get, list, labels, 409, 404, patch, delete', async () => {
  let r = await emu.request('POST', `/v1/${DS}/dicomStores?dicomStoreId=s2`, { body: { labels: { env: 'test' } } });
  assert.deepStrictEqual(r.json, { name: `${DS}/dicomStores/s2`, labels: { env: 'test' } });
  r = await emu.request('POST', `/v1/${DS}/dicomStores?dicomStoreId=s2`, { body: {} });
  assert.strictEqual(r.status, 409);
  r = await emu.request('POST', `/v1/${DS}/dicomStores?dicomStoreId=s3`, { body: { labels: { Bad: 'x' } } });
  assert.strictEqual(r.status, 400);
  r = await emu.request('GET', `/v1/${DS}/dicomStores`);
  assert.deepStrictEqual(r.json.dicomStores.map((s) => s.name), [ST, `${DS}/dicomStores/s2`]);
  r = await emu.request('GET', `/v1/${DS}/dicomStores?filter=${encodeURIComponent('labels.env="test"')}`);
  assert.deepStrictEqual(r.json.dicomStores.map((s) => s.name), [`${DS}/dicomStores/s2`]);
  r = await emu.request('PATCH', `/v1/${DS}/dicomStores/s2?updateMask=labels`, { body: { labels: { a: 'b' } } });
  assert.deepStrictEqual(r.json.labels, { a: 'b' });
  r = await emu.request('GET', `/v1/${DS}/dicomStores/nope`);
  assert.strictEqual(r.status, 404);
  r = await emu.request('GET', `/v1/projects/p/locations/us-central1/datasets/nods/dicomStores`);
  assert.strictEqual(r.status, 404);
  r = await emu.request('DELETE', `/v1/${DS}/dicomStores/s2`);
  assert.deepStrictEqual(r.json, {});
  r = await emu.request('GET', `/v1beta1/${ST}`);
  assert.strictEqual(r.json.name, ST);
});

test('strict request validation: unknown fields (nested), wrong types, bad JSON, bad uris', async () => {
  let r = await emu.request('POST', `/v1/${ST}:import`, { body: { gcsSource: { uri: 'gs://src/x', foo: 1 } } });
  assert.strictEqual(r.status, 400);
  assert.strictEqual(r.json.error.message, 'Invalid JSON payload received. Unknown name "foo" at \'gcs_source\': Cannot find field.');
  assert.strictEqual(r.json.error.details[0]['@type'], 'type.googleapis.com/google.rpc.BadRequest');
  assert.deepStrictEqual(r.json.error.details[0].fieldViolations, [{ field: 'gcs_source', description: r.json.error.message }]);
  r = await emu.request('POST', `/v1/${ST}:import`, { body: { foo: 1 } });
  assert.strictEqual(r.json.error.message, 'Invalid JSON payload received. Unknown name "foo": Cannot find field.');
  r = await emu.request('POST', `/v1/${ST}:import`, { body: { gcsSource: { uri: 123 } } });
  assert.strictEqual(r.status, 400); assert.match(r.json.error.message, /Invalid value at 'gcs_source.uri' \(TYPE_STRING\), 123/);
  r = await emu.request('POST', `/v1/${ST}:import`, { body: '{"gcsSource":' });
  assert.strictEqual(r.status, 400); assert.match(r.json.error.message, /^Invalid JSON payload received/);
  r = await emu.request('POST', `/v1/${ST}:import`, { body: {} });
  assert.strictEqual(r.status, 400);
  for (const uri of ['gs://src/dir/**/x.dcm', 'gs://src/a*/**.dcm', 'gs://src/', 's3://src/a', 'gs://Src/a']) {
    r = await emu.request('POST', `/v1/${ST}:import`, { body: { gcsSource: { uri } } });
    assert.strictEqual(r.status, 400, uri); assert.strictEqual(r.json.error.status, 'INVALID_ARGUMENT');
    assert.ok(r.json.error.message.includes(uri), r.json.error.message);
  }
  r = await emu.request('POST', `/v1/${DS}/dicomStores/nope:import`, { body: { gcsSource: { uri: 'gs://src/a' } } });
  assert.strictEqual(r.status, 404);
  r = await emu.request('POST', `/v1/${ST}:export`, { body: { gcsDestination: { uriPrefix: 'gs://src/o', mimeType: 'text/html' } } });
  assert.strictEqual(r.status, 400);
  r = await emu.request('POST', `/v1/${ST}:export`, { body: { gcsDestination: { uriPrefix: 'gs://src/o' }, filterConfig: {} } });
  assert.strictEqual(r.status, 400); // v1 has no filterConfig
  r = await emu.request('GET', '/v1/nothing/here');
  assert.strictEqual(r.status, 404); assert.strictEqual(r.json.error.status, 'NOT_FOUND');
});

test('import: counters as strings, pending while running, failures with sampleErrors, duplicates ignored', async () => {
  await upload(emu, 'src', 'imp/a1.dcm', makeDicom({ sop: '1.2.3.100.1' }));
  await upload(emu, 'src', 'imp/a2.dcm', makeDicom({ sop: '1.2.3.100.2' }));
  await upload(emu, 'src', 'imp/sub/a3.dcm', makeDicom({ sop: '1.2.3.100.3', series: '1.2.3.5' }));
  await upload(emu, 'src', 'imp/sub/dup.dcm', makeDicom({ sop: '1.2.3.100.1' }));
  await upload(emu, 'src', 'imp/bad.dcm', Buffer.from('not dicom at all'));
  await upload(emu, 'src', 'imp/nouid.dcm', makeDicom({ sop: '1.2.3.100.9', omit: ['study'] }));
  await upload(emu, 'src', 'imp/empty.dcm', Buffer.alloc(0));
  await upload(emu, 'src', 'imp/skip.txt', 'x');
  emu.ctx.opts.opDelayMs = 30;
  let r = await emu.request('POST', `/v1/${ST}:import`, { body: { gcsSource: { uri: 'gs://src/imp/**.dcm' } } });
  assert.strictEqual(r.status, 200);
  assert.strictEqual(r.json.done, undefined);
  assert.strictEqual(r.json.metadata['@type'], 'type.googleapis.com/google.cloud.healthcare.v1.OperationMetadata');
  assert.strictEqual(r.json.metadata.apiMethodName, 'google.cloud.healthcare.v1.dicom.DicomService.ImportDicomData');
  const name = r.json.name;
  await sleep(100);
  r = await emu.request('GET', `/v1/${name}`);
  assert.strictEqual(r.json.done, undefined);
  assert.strictEqual(typeof r.json.metadata.counter.pending, 'string');
  emu.ctx.opts.opDelayMs = 2;
  const op = await waitOp(emu, name);
  assert.deepStrictEqual(op.metadata.counter, { success: '4', failure: '3' });
  assert.ok(op.metadata.endTime && op.metadata.createTime && op.metadata.logsUrl);
  assert.strictEqual(op.response, undefined);
  assert.strictEqual(op.error.code, 3);
  const se = op.error.details[0].sampleErrors;
  assert.deepStrictEqual(se.map((s) => s.resource).sort(), ['gs://src/imp/bad.dcm', 'gs://src/imp/empty.dcm', 'gs://src/imp/nouid.dcm']);
  assert.ok(se.every((s) => typeof s.error.code === 'number' && s.error.message));
  assert.strictEqual(emu.ctx.hc.stores.get(ST).instances.size, 3);
  // the logsUrl answers with the failures
  const lu = new URL(op.metadata.logsUrl);
  r = await emu.request('GET', lu.pathname + lu.search);
  assert.strictEqual(r.json.entries.length, 3);
});

test('import: all good -> response; zero matches and missing bucket -> error; single file; v1beta1', async () => {
  await upload(emu, 'src', 'ok/Example1.dcm', makeDicom({ sop: '1.2.3.200.1' }));
  await upload(emu, 'src', 'ok/Example22.dcm', makeDicom({ sop: '1.2.3.200.2' }));
  let r = await emu.request('POST', `/v1/${ST}:import`, { body: { gcsSource: { uri: 'gs://src/ok/Example?.dcm' }, blobStorageSettings: { blobStorageClass: 'STANDARD' } } });
  let op = await waitOp(emu, r.json.name);
  assert.deepStrictEqual(op.response, { '@type': 'type.googleapis.com/google.cloud.healthcare.v1.dicom.ImportDicomDataResponse' });
  assert.deepStrictEqual(op.metadata.counter, { success: '1' });
  r = await emu.request('POST', `/v1beta1/${ST}:import`, { body: { gcsSource: { uri: 'gs://src/ok/Example22.dcm' } } });
  op = await waitOp(emu, r.json.name);
  assert.strictEqual(op.response['@type'], 'type.googleapis.com/google.cloud.healthcare.v1beta1.dicom.ImportDicomDataResponse');
  r = await emu.request('POST', `/v1/${ST}:import`, { body: { gcsSource: { uri: 'gs://src/none/*.dcm' } } });
  op = await waitOp(emu, r.json.name);
  assert.strictEqual(op.error.code, 5);
  r = await emu.request('POST', `/v1/${ST}:import`, { body: { gcsSource: { uri: 'gs://nobucket/a.dcm' } } });
  op = await waitOp(emu, r.json.name);
  assert.strictEqual(op.error.code, 5); assert.match(op.error.message, /nobucket/);
});

test('operations: list with paging, filter, cancel ends with code 1 and cancelRequested', async () => {
  for (let i = 0; i < 30; i++) await upload(emu, 'src', `many/f${i}.dcm`, makeDicom({ sop: `1.2.3.300.${i}` }));
  emu.ctx.opts.opDelayMs = 50;
  let r = await emu.request('POST', `/v1/${ST}:import`, { body: { gcsSource: { uri: 'gs://src/many/*.dcm' } } });
  const name = r.json.name;
  await sleep(120);
  r = await emu.request('POST', `/v1/${name}:cancel`, { body: {} });
  assert.strictEqual(r.status, 200); assert.deepStrictEqual(r.json, {});
  emu.ctx.opts.opDelayMs = 2;
  const op = await waitOp(emu, name);
  assert.strictEqual(op.error.code, 1);
  assert.strictEqual(op.metadata.cancelRequested, true);
  assert.ok(Number(op.metadata.counter.success) < 30);
  r = await emu.request('GET', `/v1/${DS}/operations?pageSize=3`);
  assert.strictEqual(r.json.operations.length, 3); assert.ok(r.json.nextPageToken);
  const all = []; let tok = '';
  do {
    r = await emu.request('GET', `/v1/${DS}/operations?pageSize=3${tok ? '&pageToken=' + tok : ''}`);
    all.push(...r.json.operations); tok = r.json.nextPageToken;
  } while (tok);
  assert.ok(all.some((o) => o.name === name));
  r = await emu.request('GET', `/v1/${DS}/operations?filter=${encodeURIComponent('done=false')}`);
  assert.strictEqual(r.json.operations, undefined);
  r = await emu.request('GET', `/v1/${DS}/operations/123`);
  assert.strictEqual(r.status, 404);
});

test('export: layout {prefix}/{study}/{series}/{instance}.dcm, bytes identical, missing bucket', async () => {
  await makeBucket(emu, 'dst');
  let r = await emu.request('POST', `/v1/${ST}:export`, { body: { gcsDestination: { uriPrefix: 'gs://dst/out', mimeType: 'application/dicom' } } });
  assert.strictEqual(r.status, 200);
  let op = await waitOp(emu, r.json.name);
  assert.strictEqual(op.response['@type'], 'type.googleapis.com/google.cloud.healthcare.v1.dicom.ExportDicomDataResponse');
  const n = emu.ctx.hc.stores.get(ST).instances.size;
  assert.deepStrictEqual(op.metadata.counter, { success: String(n) });
  r = await emu.request('GET', '/storage/v1/b/dst/o?prefix=out%2F');
  assert.strictEqual(r.json.items.length, n);
  assert.ok(r.json.items.some((i) => i.name === 'out/1.2.3/1.2.3.4/1.2.3.100.1.dcm'));
  assert.ok(r.json.items.some((i) => i.name === 'out/1.2.3/1.2.3.5/1.2.3.100.3.dcm'));
  r = await emu.request('GET', '/storage/v1/b/dst/o/out%2F1.2.3%2F1.2.3.4%2F1.2.3.100.2.dcm?alt=media');
  assert.ok(r.body.equals(makeDicom({ sop: '1.2.3.100.2' })));
  r = await emu.request('POST', `/v1/${ST}:export`, { body: { gcsDestination: { uriPrefix: 'gs://dst', mimeType: 'application/dicom; transfer-syntax=*' } } });
  op = await waitOp(emu, r.json.name);
  assert.ok(op.response);
  r = await emu.request('GET', '/storage/v1/b/dst/o/1.2.3%2F1.2.3.4%2F1.2.3.100.2.dcm');
  assert.strictEqual(r.status, 200);
  r = await emu.request('POST', `/v1/${ST}:export`, { body: { gcsDestination: { uriPrefix: 'gs://nobucket/x' } } });
  op = await waitOp(emu, r.json.name);
  assert.strictEqual(op.error.code, 5);
});

test('export with dcmtk: PNG rendering and explicit VR little endian transcoding (dump2dcm input)', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dgemu-dcm-'));
  try {
    // a file made by dcmtk itself, no pixel data: import must accept it
    fs.writeFileSync(path.join(tmp, 'a.dump'), [
      '(0002,0010) UI =LittleEndianImplicit', '(0008,0016) UI =SecondaryCaptureImageStorage',
      '(0008,0018) UI [1.2.3.900.1]', '(0020,000d) UI [1.2.3.900]', '(0020,000e) UI [1.2.3.900.2]', '',
    ].join('\n'));
    execFileSync('dump2dcm', ['--write-file', path.join(tmp, 'a.dump'), path.join(tmp, 'a.dcm')]);
    const S2 = `${DS}/dicomStores/render`;
    await emu.request('POST', `/v1/${DS}/dicomStores?dicomStoreId=render`, { body: {} });
    await upload(emu, 'src', 'render/a.dcm', fs.readFileSync(path.join(tmp, 'a.dcm')));
    await upload(emu, 'src', 'render/img.dcm', makeDicom({ sop: '1.2.3.901.1', study: '1.2.3.901', series: '1.2.3.901.2', rows: 16, cols: 16 }));
    let r = await emu.request('POST', `/v1/${S2}:import`, { body: { gcsSource: { uri: 'gs://src/render/*' } } });
    let op = await waitOp(emu, r.json.name);
    assert.deepStrictEqual(op.metadata.counter, { success: '2' }, JSON.stringify(op));
    await makeBucket(emu, 'rend');
    r = await emu.request('POST', `/v1/${S2}:export`, { body: { gcsDestination: { uriPrefix: 'gs://rend/png/', mimeType: 'image/png' } } });
    op = await waitOp(emu, r.json.name);
    // the instance without pixel data cannot be rendered: one failure, logged
    assert.deepStrictEqual(op.metadata.counter, { success: '1', failure: '1' }, JSON.stringify(op));
    r = await emu.request('GET', '/storage/v1/b/rend/o/png%2F1.2.3.901%2F1.2.3.901.2%2F1.2.3.901.1.png?alt=media');
    assert.strictEqual(r.status, 200); assert.strictEqual(r.body.subarray(1, 4).toString(), 'PNG');
    assert.strictEqual(r.headers['content-type'], 'image/png');
    r = await emu.request('POST', `/v1/${S2}:export`, { body: { gcsDestination: { uriPrefix: 'gs://rend/le', mimeType: 'application/dicom; transfer-syntax=1.2.840.10008.1.2.1' } } });
    op = await waitOp(emu, r.json.name);
    assert.deepStrictEqual(op.metadata.counter, { success: '2' }, JSON.stringify(op));
    r = await emu.request('GET', '/storage/v1/b/rend/o/le%2F1.2.3.900%2F1.2.3.900.2%2F1.2.3.900.1.dcm?alt=media');
    fs.writeFileSync(path.join(tmp, 'le.dcm'), r.body);
    const dump = execFileSync('dcmdump', ['-M', path.join(tmp, 'le.dcm')]).toString();
    assert.match(dump, /\(0002,0010\) UI =LittleEndianExplicit/);
    r = await emu.request('POST', `/v1/${S2}:export`, { body: { gcsDestination: { uriPrefix: 'gs://rend/raw', mimeType: 'application/octet-stream; transfer-syntax=*' } } });
    op = await waitOp(emu, r.json.name);
    r = await emu.request('GET', '/storage/v1/b/rend/o/raw%2F1.2.3.901%2F1.2.3.901.2%2F1.2.3.901.1?alt=media');
    assert.strictEqual(r.body.length, 256); assert.strictEqual(r.body[255], 255);
  } finally { fs.rmSync(tmp, { recursive: true, force: true }); }
});

test('state survives a restart on the same data dir', async () => {
  emu.ctx.flush();
  const { createEmulator } = require('../src/server');
  const again = createEmulator({ dataDir: emu.dataDir });
  assert.ok(again.hc.stores.get(ST).instances.size >= 3);
  assert.ok(again.gcs.getObject('src', 'imp/a1.dcm'));
  assert.ok(again.ops.ops.size > 0);
});
