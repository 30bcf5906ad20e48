'use strict';
// Conformance: Google's official @google-cloud/storage client, bucket and metadata calls
// (uploads, resumable sessions, listing and downloads are in ../gcs_official.test.js). Responses are
// taken as the client parsed them (apiResponse / metadata) and checked against the discovery schema.
const test = require('node:test');
const assert = require('node:assert');
const { Storage } = require('@google-cloud/storage');
const { startEmulator, upload } = require('../helpers');
const { assertSchema } = require('./discovery');

let emu; let storage; let viaEnv;

test.before(async () => {
  emu = await startEmulator();
  storage = new Storage({ apiEndpoint: `http://${emu.host}`, projectId: 'p' });
  // the other documented way: STORAGE_EMULATOR_HOST (read when the client is constructed)
  process.env.STORAGE_EMULATOR_HOST = `http://${emu.host}`;
  viaEnv = new Storage({ projectId: 'p' });
  delete process.env.STORAGE_EMULATOR_HOST;
});
test.after(async () => { await emu.close(); });

async function gcsFails(p, code, reason) {
  let err = null;
  try { await p; } catch (e) { err = e; }
  assert.ok(err, `expected ${code}`);
  assert.strictEqual(err.code, code, err.message);
  const body = JSON.parse(err.response.body);
  assertSchema('storage', 'GcsError', body);
  assert.strictEqual(body.error.errors[0].reason, reason);
  return err;
}

test('buckets: create, exists, getMetadata, getBuckets, conflict, bad name, not found, delete', async () => {
  const [b, created] = await storage.createBucket('conf-bkt', { labels: { team: 'imaging' } });
  assertSchema('storage', 'Bucket', created);
  assert.strictEqual(created.name, 'conf-bkt'); assert.deepStrictEqual(created.labels, { team: 'imaging' });
  assert.deepStrictEqual(await b.exists(), [true]);
  const [meta] = await b.getMetadata();
  assertSchema('storage', 'Bucket', meta);
  assert.strictEqual(meta.metageneration, '1'); assert.strictEqual(meta.projectNumber, created.projectNumber);
  await viaEnv.createBucket('conf-env');
  const [buckets, , raw] = await storage.getBuckets();
  assertSchema('storage', 'Buckets', raw);
  assert.deepStrictEqual(buckets.map((x) => x.name), ['conf-bkt', 'conf-env']);
  await gcsFails(storage.createBucket('conf-bkt'), 409, 'conflict');
  await gcsFails(storage.createBucket('Bad_Name'), 400, 'invalid');
  await gcsFails(storage.bucket('no-such-bucket').getMetadata(), 404, 'notFound');
  assert.deepStrictEqual(await storage.bucket('no-such-bucket').exists(), [false]);
  await upload(emu, 'conf-env', 'x', 'x');
  await gcsFails(viaEnv.bucket('conf-env').delete(), 409, 'conflict');
  await viaEnv.bucket('conf-env').file('x').delete();
  await viaEnv.bucket('conf-env').delete();
  assert.deepStrictEqual(await viaEnv.bucket('conf-env').exists(), [false]);
});

test('bucket metadata: setMetadata (labels merge and removal), setStorageClass, preconditions', async () => {
  const b = storage.bucket('conf-bkt');
  let [m] = await b.setMetadata({ labels: { env: 'test' } });
  assertSchema('storage', 'Bucket', m);
  assert.deepStrictEqual(m.labels, { team: 'imaging', env: 'test' });
  assert.strictEqual(m.metageneration, '2');
  [m] = await b.setMetadata({ labels: { team: null } });
  assert.deepStrictEqual(m.labels, { env: 'test' });
  await b.setStorageClass('nearline');
  [m] = await b.getMetadata();
  assert.strictEqual(m.storageClass, 'NEARLINE'); assert.strictEqual(m.metageneration, '4');
  await gcsFails(b.setMetadata({ labels: { a: 'b' } }, { ifMetagenerationMatch: 1 }), 412, 'conditionNotMet');
  await gcsFails(b.setMetadata({ colour: 'red' }), 400, 'invalid');
});

test('object metadata: getMetadata, exists, setMetadata, preconditions, delete', async () => {
  await upload(emu, 'conf-bkt', 'dir/a b+c.dcm', Buffer.from('DICM-ish bytes'), 'application/dicom');
  const f = storage.bucket('conf-bkt').file('dir/a b+c.dcm');
  assert.deepStrictEqual(await f.exists(), [true]);
  let [m] = await f.getMetadata();
  assertSchema('storage', 'Object', m);
  assert.strictEqual(m.name, 'dir/a b+c.dcm'); assert.strictEqual(m.size, '14'); assert.strictEqual(m.contentType, 'application/dicom');
  assert.ok(m.crc32c && m.md5Hash);
  [m] = await f.setMetadata({ contentType: 'application/dicom; transfer-syntax=*', cacheControl: 'no-cache', metadata: { patient: 'anon', study: '1.2.3' } });
  assertSchema('storage', 'Object', m);
  assert.strictEqual(m.metageneration, '2');
  assert.deepStrictEqual(m.metadata, { patient: 'anon', study: '1.2.3' });
  [m] = await f.setMetadata({ metadata: { patient: null } });
  assert.deepStrictEqual(m.metadata, { study: '1.2.3' });
  [m] = await f.getMetadata();
  assert.strictEqual(m.cacheControl, 'no-cache'); assert.strictEqual(m.contentType, 'application/dicom; transfer-syntax=*');
  await gcsFails(f.setMetadata({ cacheControl: 'x' }, { ifMetagenerationMatch: 1 }), 412, 'conditionNotMet');
  await gcsFails(f.getMetadata({ ifGenerationMatch: '1' }), 412, 'conditionNotMet');
  await gcsFails(storage.bucket('conf-bkt').file('nope').getMetadata(), 404, 'notFound');
  await f.delete();
  assert.deepStrictEqual(await f.exists(), [false]);
  await gcsFails(f.delete(), 404, 'notFound');
});
