'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { startEmulator, makeDicom, waitOp, upload, makeBucket } = require('./helpers');

const DS = 'projects/lp/locations/l/datasets/ds';
const ST = `${DS}/dicomStores/st`;
let emu; let opName;

test.before(async () => {
  emu = await startEmulator();
  await makeBucket(emu, 'lbk', 'lp');
  let r = await emu.request('POST', '/v1/projects/lp/locations/l/datasets?datasetId=ds', { body: {} });
  await waitOp(emu, r.json.name);
  await emu.request('POST', `/v1/${DS}/dicomStores?dicomStoreId=st`, { body: {} });
  for (let i = 0; i < 7; i++) await upload(emu, 'lbk', `bad/${i}.dcm`, `garbage ${i}`);
  await upload(emu, 'lbk', 'bad/good.dcm', makeDicom());
  r = await emu.request('POST', `/v1/${ST}:import`, { body: { gcsSource: { uri: 'gs://lbk/bad/*.dcm' } } });
  opName = r.json.name;
  await waitOp(emu, opName);
});
test.after(async () => { await emu.close(); });

test('entries:list: one ERROR entry per failed file, shape per api.md §4', async () => {
  const filter = `resource.type="healthcare_dicom_store" AND operation.id="${opName}" AND jsonPayload.@type="type.googleapis.com/google.cloud.healthcare.logging.ImportDicomLogEntry"`;
  const r = await emu.request('POST', '/v2/entries:list', { body: { resourceNames: ['projects/lp'], filter, pageSize: 1000 } });
  assert.strictEqual(r.status, 200);
  assert.strictEqual(r.json.entries.length, 7);
  const e = r.json.entries[0];
  assert.strictEqual(e.logName, 'projects/lp/logs/healthcare.googleapis.com%2Fimport_dicom');
  assert.strictEqual(e.severity, 'ERROR');
  assert.strictEqual(e.resource.type, 'healthcare_dicom_store');
  assert.deepStrictEqual(e.resource.labels, { project_id: 'lp', location: 'l', dataset_id: 'ds', dicom_store_id: 'st' });
  assert.strictEqual(e.operation.id, opName);
  assert.match(e.jsonPayload.source, /^gs:\/\/lbk\/bad\/\d\.dcm$/);
  assert.strictEqual(e.jsonPayload.error.code, 3);
  assert.ok(e.timestamp && e.insertId);
});

test('entries:list: paging (default 50, pageSize), orderBy desc, filters, errors', async () => {
  let r = await emu.request('POST', '/v2/entries:list', { body: { resourceNames: ['projects/lp'], pageSize: 3 } });
  assert.strictEqual(r.json.entries.length, 3); assert.ok(r.json.nextPageToken);
  const seen = [...r.json.entries];
  while (r.json.nextPageToken) {
    r = await emu.request('POST', '/v2/entries:list', { body: { resourceNames: ['projects/lp'], pageSize: 3, pageToken: r.json.nextPageToken } });
    seen.push(...(r.json.entries || []));
  }
  assert.strictEqual(seen.length, 7);
  const asc = seen.map((e) => e.timestamp);
  assert.deepStrictEqual(asc, [...asc].sort());
  r = await emu.request('POST', '/v2/entries:list', { body: { resourceNames: ['projects/lp'], orderBy: 'timestamp desc' } });
  assert.deepStrictEqual(r.json.entries.map((e) => e.insertId), seen.map((e) => e.insertId).reverse());
  r = await emu.request('POST', '/v2/entries:list', { body: { resourceNames: ['projects/lp'], filter: 'severity=ERROR AND logName="projects/lp/logs/healthcare.googleapis.com%2Fexport_dicom"' } });
  assert.deepStrictEqual(r.json, {});
  r = await emu.request('POST', '/v2/entries:list', { body: { resourceNames: ['projects/lp'], filter: 'severity>=WARNING' } });
  assert.strictEqual(r.json.entries.length, 7);
  r = await emu.request('POST', '/v2/entries:list', { body: { resourceNames: ['projects/other'] } });
  assert.deepStrictEqual(r.json, {});
  r = await emu.request('POST', '/v2/entries:list', { body: { filter: 'x' } });
  assert.strictEqual(r.status, 400); assert.strictEqual(r.json.error.status, 'INVALID_ARGUMENT');
  r = await emu.request('POST', '/v2/entries:list', { body: { resourceNames: ['projects/lp'], orderBy: 'severity' } });
  assert.strictEqual(r.status, 400);
  r = await emu.request('POST', '/v2/entries:list', { body: { resourceNames: ['projects/lp'], bogus: 1 } });
  assert.strictEqual(r.status, 400);
});
