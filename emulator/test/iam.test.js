'use strict';
// Bucket IAM policies, Resource Manager project numbers, and the service-agent check that
// import/export make (buckets start without the role, like Google's).
const test = require('node:test');
const assert = require('node:assert');
const { startEmulator, makeDicom, waitOp, upload, makeBucket, grantServiceAgent } = require('./helpers');

const ST = 'projects/ip/locations/l/datasets/ds/dicomStores/st';
let emu;
test.before(async () => {
  emu = await startEmulator();
  await emu.request('POST', '/v1/projects/ip/locations/l/datasets?datasetId=ds', { body: {} });
  await emu.request('POST', '/v1/projects/ip/locations/l/datasets/ds/dicomStores?dicomStoreId=st', { body: {} });
});
test.after(() => emu.close());

test('resource manager: a stable 12-digit project number per project', async () => {
  const a = await emu.request('GET', '/resourcemanager/v1/projects/ip');
  assert.strictEqual(a.status, 200);
  assert.match(a.json.projectNumber, /^[1-9]\d{11}$/);
  assert.strictEqual(a.json.projectId, 'ip');
  assert.strictEqual(a.json.lifecycleState, 'ACTIVE');
  const b = await emu.request('GET', '/resourcemanager/v1/projects/ip');
  assert.strictEqual(b.json.projectNumber, a.json.projectNumber);
  const c = await emu.request('GET', '/resourcemanager/v1/projects/other-project');
  assert.notStrictEqual(c.json.projectNumber, a.json.projectNumber);
  const bad = await emu.request('GET', '/resourcemanager/v1/projects/Bad_Id');
  assert.strictEqual(bad.status, 403);
  assert.strictEqual(bad.json.error.status, 'PERMISSION_DENIED');
});

test('bucket policy: default legacy bindings without the service agent; etag read-modify-write', async () => {
  await makeBucket(emu, 'iam1', 'ip', { grant: false });
  const b = await emu.request('GET', '/storage/v1/b/iam1');
  const rm = await emu.request('GET', '/resourcemanager/v1/projects/ip');
  assert.strictEqual(b.json.projectNumber, rm.json.projectNumber);
  const p = await emu.request('GET', '/storage/v1/b/iam1/iam');
  assert.strictEqual(p.status, 200);
  assert.strictEqual(p.json.kind, 'storage#policy');
  assert.strictEqual(p.json.resourceId, 'projects/_/buckets/iam1');
  assert.strictEqual(p.json.etag, 'CAE=');
  assert.ok(p.json.bindings.some((x) => x.role === 'roles/storage.legacyBucketOwner' && x.members.includes('projectOwner:ip')));
  assert.ok(!JSON.stringify(p.json).includes('gcp-sa-healthcare'));
  const alias = await emu.request('GET', '/b/iam1/iam');
  assert.deepStrictEqual(alias.json, p.json);
  const stale = Object.assign({}, p.json, { etag: 'CAk=' });
  let r = await emu.request('PUT', '/storage/v1/b/iam1/iam', { body: stale });
  assert.strictEqual(r.status, 412);
  r = await emu.request('PUT', '/storage/v1/b/iam1/iam', { body: { bindings: [{ role: 'roles/storage.objectViewer', members: ['nobody'] }] } });
  assert.strictEqual(r.status, 400);
  assert.strictEqual(r.json.error.errors[0].reason, 'invalid');
  const set = await grantServiceAgent(emu, 'iam1', 'ip', 'roles/storage.objectViewer');
  assert.strictEqual(set.etag, 'CAI=');
  r = await emu.request('PUT', '/storage/v1/b/iam1/iam', { body: p.json }); // the old etag again
  assert.strictEqual(r.status, 412);
  r = await emu.request('GET', '/storage/v1/b/nobucket/iam');
  assert.strictEqual(r.status, 404);
  r = await emu.request('GET', '/storage/v1/b/iam1/iam/testPermissions?permissions=storage.buckets.getIamPolicy');
  assert.deepStrictEqual(r.json.permissions, ['storage.buckets.getIamPolicy']);
});

test('import/export fail with PERMISSION_DENIED until the service agent has the role', async () => {
  await makeBucket(emu, 'iam2', 'ip', { grant: false });
  await upload(emu, 'iam2', 'in/a.dcm', makeDicom({ sop: '1.2.3.77' }));
  let r = await emu.request('POST', `/v1/${ST}:import`, { body: { gcsSource: { uri: 'gs://iam2/in/*.dcm' } } });
  assert.strictEqual(r.status, 200);
  let op = await waitOp(emu, r.json.name);
  assert.strictEqual(op.error.code, 7);
  const rm = await emu.request('GET', '/resourcemanager/v1/projects/ip');
  assert.ok(op.error.message.includes(`service-${rm.json.projectNumber}@gcp-sa-healthcare.iam.gserviceaccount.com`), op.error.message);
  assert.ok(op.error.message.includes('gs://iam2'));

  await grantServiceAgent(emu, 'iam2', 'ip', 'roles/storage.objectViewer');
  r = await emu.request('POST', `/v1/${ST}:import`, { body: { gcsSource: { uri: 'gs://iam2/in/*.dcm' } } });
  op = await waitOp(emu, r.json.name);
  assert.ok(!op.error, JSON.stringify(op.error));

  // objectViewer is not enough to export
  r = await emu.request('POST', `/v1/${ST}:export`, { body: { gcsDestination: { uriPrefix: 'gs://iam2/out/', mimeType: 'application/dicom' } } });
  op = await waitOp(emu, r.json.name);
  assert.strictEqual(op.error.code, 7);
  assert.ok(op.error.message.includes('roles/storage.objectAdmin'));
  await grantServiceAgent(emu, 'iam2', 'ip', 'roles/storage.objectAdmin');
  r = await emu.request('POST', `/v1/${ST}:export`, { body: { gcsDestination: { uriPrefix: 'gs://iam2/out/', mimeType: 'application/dicom' } } });
  op = await waitOp(emu, r.json.name);
  assert.ok(!op.error, JSON.stringify(op.error));
});

test('--grant-service-agent: new buckets let the creating project\'s agent in', async () => {
  const e2 = await startEmulator({ grantServiceAgent: true });
  try {
    await makeBucket(e2, 'iam3', 'ip', { grant: false });
    const p = await e2.request('GET', '/storage/v1/b/iam3/iam');
    const rm = await e2.request('GET', '/resourcemanager/v1/projects/ip');
    assert.ok(p.json.bindings.some((x) => x.role === 'roles/storage.objectAdmin' &&
      x.members.includes(`serviceAccount:service-${rm.json.projectNumber}@gcp-sa-healthcare.iam.gserviceaccount.com`)));
  } finally { await e2.close(); }
});
