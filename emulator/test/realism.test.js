'use strict';
// Issue #15 (§1, §2, §5, §8): places where the emulator used to be kinder than Google.
const test = require('node:test');
const assert = require('node:assert');
const { startEmulator, makeDicom, waitOp, upload, makeBucket, grantServiceAgent, sleep } = require('./helpers');

const DS = 'projects/rp/locations/l/datasets/ds';
const ST = `${DS}/dicomStores/st`;
let emu; let agent;

test.before(async () => {
  emu = await startEmulator();
  const r = await emu.request('POST', '/v1/projects/rp/locations/l/datasets?datasetId=ds', { body: {} });
  await waitOp(emu, r.json.name);
  await emu.request('POST', `/v1/${DS}/dicomStores?dicomStoreId=st`, { body: {} });
  const rm = await emu.request('GET', '/resourcemanager/v1/projects/rp');
  agent = `serviceAccount:service-${rm.json.projectNumber}@gcp-sa-healthcare.iam.gserviceaccount.com`;
});
test.after(() => emu.close());

// A second emulator with the store ST in it.
async function makeStore(e) {
  const r = await e.request('POST', '/v1/projects/rp/locations/l/datasets?datasetId=ds', { body: {} });
  await waitOp(e, r.json.name);
  await e.request('POST', `/v1/${DS}/dicomStores?dicomStoreId=st`, { body: {} });
}

async function importUri(e, uri) {
  const r = await e.request('POST', `/v1/${ST}:import`, { body: { gcsSource: { uri } } });
  assert.strictEqual(r.status, 200, r.body.toString());
  return waitOp(e, r.json.name);
}

// On a fresh emulator: the store, a bucket with one non-DICOM file, its import (done).
async function importOneBad(e, bucket) {
  await makeStore(e);
  await makeBucket(e, bucket, 'rp');
  await upload(e, bucket, 'bad.dcm', 'not dicom');
  return importUri(e, `gs://${bucket}/*.dcm`);
}

async function addProjectBinding(e, project, role, member) {
  const pol = (await e.request('POST', `/resourcemanager/v1/projects/${project}:getIamPolicy`, { body: {} })).json;
  pol.bindings.push({ role, members: [member] });
  const r = await e.request('POST', `/resourcemanager/v1/projects/${project}:setIamPolicy`, { body: { policy: pol } });
  assert.strictEqual(r.status, 200, r.body.toString());
  return r.json;
}

test('§1 project policy: getIamPolicy/setIamPolicy with etag, 409 ABORTED on a stale one', async () => {
  const p = await emu.request('POST', '/resourcemanager/v1/projects/rp:getIamPolicy', { body: { options: { requestedPolicyVersion: 3 } } });
  assert.strictEqual(p.status, 200);
  assert.strictEqual(p.json.etag, 'CAE=');
  assert.ok(p.json.bindings.some((b) => b.role === 'roles/healthcare.serviceAgent' && b.members.includes(agent)));
  const set = await emu.request('POST', '/resourcemanager/v1/projects/rp:setIamPolicy', { body: { policy: p.json } });
  assert.strictEqual(set.status, 200);
  assert.notStrictEqual(set.json.etag, p.json.etag);
  const stale = await emu.request('POST', '/resourcemanager/v1/projects/rp:setIamPolicy', { body: { policy: p.json } });
  assert.strictEqual(stale.status, 409);
  assert.strictEqual(stale.json.error.status, 'ABORTED');
  assert.match(stale.json.error.message, /concurrent policy changes/);
  const bad = await emu.request('POST', '/resourcemanager/v1/projects/rp:setIamPolicy', { body: { policy: { bindings: [{ role: 'roles/viewer', members: ['allUsers'] }] } } });
  assert.strictEqual(bad.status, 400);
  const unknown = await emu.request('POST', '/resourcemanager/v1/projects/rp:getIamPolicy', { body: { bogus: 1 } });
  assert.strictEqual(unknown.status, 400);
  const get = await emu.request('GET', '/resourcemanager/v1/projects/rp:getIamPolicy');
  assert.strictEqual(get.status, 404);
});

test('§1 a project-level grant lets the service agent import; a legacy reader pair does too; neither alone', async () => {
  await makeBucket(emu, 'rp-proj', 'rp', { grant: false });
  await upload(emu, 'rp-proj', 'in/a.dcm', makeDicom({ sop: '1.2.9.1' }));
  let op = await importUri(emu, 'gs://rp-proj/in/*.dcm');
  assert.strictEqual(op.error.code, 7);
  assert.ok(op.error.message.includes(agent.slice('serviceAccount:'.length)), op.error.message);
  // legacyBucketReader alone lists but cannot read objects
  await grantServiceAgent(emu, 'rp-proj', 'rp', 'roles/storage.legacyBucketReader');
  op = await importUri(emu, 'gs://rp-proj/in/*.dcm');
  assert.strictEqual(op.error.code, 7);
  assert.match(op.error.message, /storage\.objects\.get/);
  await grantServiceAgent(emu, 'rp-proj', 'rp', 'roles/storage.legacyObjectReader');
  op = await importUri(emu, 'gs://rp-proj/in/*.dcm');
  assert.ok(!op.error, JSON.stringify(op.error));

  await makeBucket(emu, 'rp-proj2', 'rp', { grant: false });
  await upload(emu, 'rp-proj2', 'in/b.dcm', makeDicom({ sop: '1.2.9.2' }));
  await addProjectBinding(emu, 'rp', 'roles/storage.objectViewer', agent);
  op = await importUri(emu, 'gs://rp-proj2/in/*.dcm');
  assert.ok(!op.error, JSON.stringify(op.error));
  // objectViewer on the project is not enough to export
  let r = await emu.request('POST', `/v1/${ST}:export`, { body: { gcsDestination: { uriPrefix: 'gs://rp-proj2/out/' } } });
  op = await waitOp(emu, r.json.name);
  assert.strictEqual(op.error.code, 7);
  await addProjectBinding(emu, 'rp', 'roles/storage.objectAdmin', agent);
  r = await emu.request('POST', `/v1/${ST}:export`, { body: { gcsDestination: { uriPrefix: 'gs://rp-proj2/out/' } } });
  op = await waitOp(emu, r.json.name);
  assert.ok(!op.error, JSON.stringify(op.error));
});

test('§1 roles/editor on the project reaches the bucket through its projectEditor: legacy binding', async () => {
  const e = await startEmulator();
  try {
    await makeStore(e);
    await makeBucket(e, 'rp-ed', 'rp', { grant: false });
    await upload(e, 'rp-ed', 'a.dcm', makeDicom({ sop: '1.2.9.3' }));
    await addProjectBinding(e, 'rp', 'roles/editor', agent);
    const op = await importUri(e, 'gs://rp-ed/*.dcm');
    assert.ok(!op.error, JSON.stringify(op.error));
  } finally { await e.close(); }
});

test('§2 import: same SOP Instance UID with other bytes fails that file (logged, counted); same bytes succeed', async () => {
  await makeBucket(emu, 'rp-dup', 'rp');
  const a = makeDicom({ sop: '1.2.9.50' });
  const b = Buffer.from(a.toString('latin1').replace('Test^Patient', 'Test^Patienu'), 'latin1'); // same UIDs, other bytes
  await upload(emu, 'rp-dup', 'first/a.dcm', a);
  let op = await importUri(emu, 'gs://rp-dup/first/*.dcm');
  assert.ok(!op.error);
  await upload(emu, 'rp-dup', 'again/same.dcm', a);
  await upload(emu, 'rp-dup', 'again/other.dcm', b);
  op = await importUri(emu, 'gs://rp-dup/again/*.dcm');
  assert.strictEqual(op.metadata.counter.success, '1');
  assert.strictEqual(op.metadata.counter.failure, '1');
  const sample = op.error.details[0].sampleErrors[0];
  assert.strictEqual(sample.resource, 'gs://rp-dup/again/other.dcm');
  assert.strictEqual(sample.error.code, 6);
  assert.match(sample.error.message, /already exists .* but the DICOM files differ/);
  const logs = await emu.request('POST', '/v2/entries:list', { body: { resourceNames: ['projects/rp'], filter: `operation.id="${op.name}"` } });
  assert.strictEqual(logs.json.entries.length, 1);
  assert.strictEqual(logs.json.entries[0].jsonPayload.source, 'gs://rp-dup/again/other.dcm');
  // the stored instance is still the first one
  const got = await emu.request('GET', `/v1/${ST}/dicomWeb/studies/1.2.3/series/1.2.3.4/instances/1.2.9.50`, { headers: { Accept: 'application/dicom; transfer-syntax=*' } });
  assert.ok(got.body.equals(a));
});

test('§5 logs are written after the operation is done, --log-delay-ms later', async () => {
  const e = await startEmulator({ logDelayMs: 60000 });
  try {
    const op = await importOneBad(e, 'rp-late');
    assert.strictEqual(op.metadata.counter.failure, '1');
    const logs = await e.request('POST', '/v2/entries:list', { body: { resourceNames: ['projects/rp'], filter: `operation.id="${op.name}"` } });
    assert.deepStrictEqual(logs.json, {});
  } finally { await e.close(); }
  const f = await startEmulator({ logDelayMs: 50 });
  try {
    const op = await importOneBad(f, 'rp-late');
    let entries = [];
    for (let i = 0; i < 500 && !entries.length; i++) {
      await sleep(10);
      entries = (await f.request('POST', '/v2/entries:list', { body: { resourceNames: ['projects/rp'], filter: `operation.id="${op.name}"` } })).json.entries || [];
    }
    assert.strictEqual(entries.length, 1);
    const cfg = await f.request('GET', '/_emulator/config');
    assert.strictEqual(cfg.json.logDelayMs, 50);
  } finally { await f.close(); }
  const d = await startEmulator({ logDelayMs: undefined, logEmptyPages: undefined });
  try {
    const cfg = await d.request('GET', '/_emulator/config');
    assert.strictEqual(cfg.json.logDelayMs, 1500);
    assert.strictEqual(cfg.json.logEmptyPages, 1);
  } finally { await d.close(); }
});

test('§8 entries:list: pageSize over 1000 or negative → 400; an empty first page carries a token', async () => {
  for (const pageSize of [1001, -1]) {
    const r = await emu.request('POST', '/v2/entries:list', { body: { resourceNames: ['projects/rp'], pageSize } });
    assert.strictEqual(r.status, 400, String(pageSize));
    assert.strictEqual(r.json.error.status, 'INVALID_ARGUMENT');
  }
  assert.strictEqual((await emu.request('POST', '/v2/entries:list', { body: { resourceNames: ['projects/rp'], pageSize: 1000 } })).status, 200);
  const e = await startEmulator({ logEmptyPages: 2 });
  try {
    await importOneBad(e, 'rp-pg');
    const body = { resourceNames: ['projects/rp'] };
    let page = await e.request('POST', '/v2/entries:list', { body });
    const seen = [];
    let empties = 0;
    for (;;) {
      if (!page.json.entries) empties++;
      seen.push(...(page.json.entries || []));
      if (!page.json.nextPageToken) break;
      page = await e.request('POST', '/v2/entries:list', { body: Object.assign({ pageToken: page.json.nextPageToken }, body) });
    }
    assert.strictEqual(empties, 2);
    assert.strictEqual(seen.length, 1);
    // nothing to find: no token at all
    const none = await e.request('POST', '/v2/entries:list', { body: { resourceNames: ['projects/none'] } });
    assert.deepStrictEqual(none.json, {});
  } finally { await e.close(); }
});

test('§8 resumable upload keeps only whole 256 KiB units of a chunk; the 308 Range shows it', async () => {
  await makeBucket(emu, 'rp-up', 'rp');
  const Q = 256 * 1024;
  const data = Buffer.alloc(3 * Q + 100);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 251;
  const start = await emu.request('POST', '/upload/storage/v1/b/rp-up/o?uploadType=resumable&name=big.bin', { body: {} });
  const loc = new URL(start.headers.location);
  const path = loc.pathname + loc.search;
  // 1.5 units sent: one kept
  let r = await emu.request('PUT', path, { body: data.subarray(0, Q + Q / 2), headers: { 'Content-Range': `bytes 0-${Q + Q / 2 - 1}/*` } });
  assert.strictEqual(r.status, 308);
  assert.strictEqual(r.headers.range, `bytes=0-${Q - 1}`);
  // less than a unit: nothing more kept, Range unchanged
  r = await emu.request('PUT', path, { body: data.subarray(Q, Q + 1000), headers: { 'Content-Range': `bytes ${Q}-${Q + 999}/*` } });
  assert.strictEqual(r.status, 308);
  assert.strictEqual(r.headers.range, `bytes=0-${Q - 1}`);
  r = await emu.request('PUT', path, { body: '', headers: { 'Content-Range': 'bytes */*' } });
  assert.strictEqual(r.headers.range, `bytes=0-${Q - 1}`);
  // the final chunk is kept whole
  r = await emu.request('PUT', path, { body: data.subarray(Q), headers: { 'Content-Range': `bytes ${Q}-${data.length - 1}/${data.length}` } });
  assert.strictEqual(r.status, 200, r.body.toString());
  assert.strictEqual(r.json.size, String(data.length));
  const got = await emu.request('GET', '/storage/v1/b/rp-up/o/big.bin?alt=media');
  assert.ok(got.body.equals(data));
});

test('start options --log-delay-ms and --log-empty-pages', () => {
  const { parseArgs } = require('../src/main');
  const o = parseArgs(['--data', '/tmp/x', '--log-delay-ms', '300', '--log-empty-pages=0']);
  assert.strictEqual(o.logDelayMs, 300);
  assert.strictEqual(o.logEmptyPages, 0);
  assert.throws(() => parseArgs(['--data', 'x', '--log-delay-ms', '-1']), /non-negative integer/);
});
