'use strict';
// Conformance: google-auth-library (service-account JWT grant, metadata server, ADC) against an
// emulator started the documented way: node src/main.js --strict-auth --service-account KEY.json.
// The tokens it obtains are then used by @googleapis/healthcare and @google-cloud/storage.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { spawn } = require('child_process');
const { JWT, Compute, GoogleAuth } = require('google-auth-library');
const { healthcare } = require('@googleapis/healthcare');
const { Storage } = require('@google-cloud/storage');
const { request, sleep } = require('../helpers');
const { assertSchema } = require('./discovery');

const CLOUD = 'https://www.googleapis.com/auth/cloud-platform';
const EMAIL = 'conformance@test-project.iam.gserviceaccount.com';
let dir; let child; let port; let host; let key;

function makeKey(email) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    type: 'service_account', project_id: 'test-project', private_key_id: crypto.randomBytes(20).toString('hex'),
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }), client_email: email,
    client_id: '1234567890', token_uri: 'https://oauth2.googleapis.com/token',
  };
}

/** Send Google's token endpoint to the emulator (the JWT keeps aud = Google's URL), via the client's own gaxios. */
function viaEmulator(client) {
  const gaxios = client.transporter.interceptors ? client.transporter : client.transporter.instance; // v10 : v9
  gaxios.interceptors.request.add({ resolved: async (o) => {
    if (/^https:\/\/(oauth2\.googleapis\.com\/token|www\.googleapis\.com\/oauth2\/v4\/token)/.test(String(o.url))) o.url = new URL(`http://${host}/token`); // gaxios 7 redacts errors through url.searchParams
    return o;
  } });
  return client;
}

test.before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dgconf-auth-'));
  key = makeKey(EMAIL);
  fs.writeFileSync(path.join(dir, 'key.json'), JSON.stringify(key), { mode: 0o600 });
  child = spawn(process.execPath, [path.join(__dirname, '..', '..', 'src', 'main.js'), '--data', path.join(dir, 'data'),
    '--port-file', path.join(dir, 'port'), '--strict-auth', '--service-account', path.join(dir, 'key.json'), '--op-delay-ms', '2'],
  { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 200 && !fs.existsSync(path.join(dir, 'port')); i++) await sleep(25);
  port = parseInt(fs.readFileSync(path.join(dir, 'port'), 'utf8'), 10);
  host = `127.0.0.1:${port}`;
  process.env.GCE_METADATA_HOST = host;
  process.env.GCE_METADATA_IP = host;
  process.env.HOME = dir; // no gcloud well-known ADC file
  delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
});
test.after(async () => {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  fs.rmSync(dir, { recursive: true, force: true });
});

async function hcFails(p, httpCode, status) {
  let err = null;
  try { await p; } catch (e) { err = e; }
  assert.ok(err, `expected ${httpCode}`);
  assert.strictEqual(err.status, httpCode, err.message);
  assertSchema('healthcare', 'GoogleError', err.response.data);
  assert.strictEqual(err.response.data.error.status, status);
  return err;
}

test('strict auth: no token -> 401 UNAUTHENTICATED with ErrorInfo CREDENTIALS_MISSING; bad token -> 401', async () => {
  const hc = healthcare({ version: 'v1', rootUrl: `http://${host}/` });
  let e = await hcFails(hc.projects.locations.datasets.list({ parent: 'projects/test-project/locations/us' }), 401, 'UNAUTHENTICATED');
  assert.strictEqual(e.response.data.error.details[0].reason, 'CREDENTIALS_MISSING');
  e = await hcFails(hc.projects.locations.datasets.list({ parent: 'projects/test-project/locations/us' }, { headers: { Authorization: 'Bearer ya29.forged' } }), 401, 'UNAUTHENTICATED');
  const h = e.response.headers;
  assert.match(typeof h.get === 'function' ? h.get('www-authenticate') : h['www-authenticate'], /error="invalid_token"/);
});

test('service account JWT: google-auth-library gets a token and the official clients use it', async () => {
  const jwt = viaEmulator(new JWT({ email: key.client_email, key: key.private_key, keyId: key.private_key_id, scopes: [CLOUD] }));
  const creds = await jwt.authorize();
  assert.match(creds.access_token, /^ya29\./);
  assert.strictEqual(creds.token_type, 'Bearer');
  assert.ok(creds.expiry_date > Date.now() + 3000 * 1000);
  const { token } = await jwt.getAccessToken();
  assert.strictEqual(token, creds.access_token); // cached by the library
  const hc = healthcare({ version: 'v1', rootUrl: `http://${host}/`, auth: jwt });
  const r = await hc.projects.locations.datasets.create({ parent: 'projects/test-project/locations/us', datasetId: 'authd', requestBody: {} });
  assertSchema('healthcare', 'Operation', r.data);
  // @google-cloud/storage 7 bundles google-auth-library 9: its auth client must come from that copy
  const StorageAuth = require(require.resolve('google-auth-library', { paths: [path.dirname(require.resolve('@google-cloud/storage'))] }));
  const sjwt = viaEmulator(new StorageAuth.JWT({ email: key.client_email, key: key.private_key, keyId: key.private_key_id, scopes: [CLOUD] }));
  const storage = new Storage({ apiEndpoint: `http://${host}`, projectId: 'test-project', authClient: sjwt, useAuthWithCustomEndpoint: true });
  const [, b] = await storage.createBucket('conf-auth-bkt');
  assertSchema('storage', 'Bucket', b);
  // without credentials the storage client is refused in the GCS error shape
  const anon = new Storage({ apiEndpoint: `http://${host}`, projectId: 'test-project' });
  let err = null;
  try { await anon.bucket('conf-auth-bkt').getMetadata(); } catch (e) { err = e; }
  assert.strictEqual(err && err.code, 401);
  assertSchema('storage', 'GcsError', JSON.parse(err.response.body));
});

test('service account JWT: an unknown key is refused with invalid_grant', async () => {
  const other = makeKey('stranger@test-project.iam.gserviceaccount.com');
  const jwt = viaEmulator(new JWT({ email: other.client_email, key: other.private_key, keyId: other.private_key_id, scopes: [CLOUD] }));
  await assert.rejects(jwt.authorize(), (e) => /invalid_grant/.test(e.message) || (e.response && e.response.data && e.response.data.error === 'invalid_grant'));
  // a key whose signature does not match the registered one
  const forged = viaEmulator(new JWT({ email: key.client_email, key: other.private_key, keyId: key.private_key_id, scopes: [CLOUD] }));
  await assert.rejects(forged.authorize(), (e) => /invalid_grant|Invalid JWT Signature/.test(e.message + JSON.stringify(e.response && e.response.data)));
});

test('metadata server: Compute and ADC (GoogleAuth) get tokens through GCE_METADATA_HOST', async () => {
  const compute = new Compute({ scopes: [CLOUD] });
  const { token } = await compute.getAccessToken();
  assert.match(token, /^ya29\./);
  const hc = healthcare({ version: 'v1', rootUrl: `http://${host}/`, auth: compute });
  const r = await hc.projects.locations.datasets.list({ parent: 'projects/test-project/locations/us' });
  assertSchema('healthcare', 'ListDatasetsResponse', r.data);
  assert.ok(r.data.datasets.some((d) => d.name.endsWith('/authd')));
  const auth = new GoogleAuth({ scopes: [CLOUD] });
  const client = await auth.getClient();
  assert.strictEqual(client.constructor.name, 'Compute');
  assert.strictEqual(await auth.getProjectId(), 'test-project');
  const hdrs = await client.getRequestHeaders();
  const authz = typeof hdrs.get === 'function' ? hdrs.get('authorization') : hdrs.Authorization;
  assert.match(authz, /^Bearer ya29\./);
  // the same header works on a raw request
  const raw = await request(port, 'GET', '/v1/projects/test-project/locations/us/datasets', { headers: { Authorization: authz } });
  assert.strictEqual(raw.status, 200);
});
