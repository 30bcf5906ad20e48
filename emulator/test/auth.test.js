'use strict';
// Tests of emulator/src/auth.js: OAuth /token grants, metadata server, IAM Credentials,
// STS, strict bearer checks and the /_auth admin endpoints.
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { createEmulator } = require('../src/server');

const EMAIL = 'sa@test-project.iam.gserviceaccount.com';
const CP = 'https://www.googleapis.com/auth/cloud-platform';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dicomgcs-auth-test-'));
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const { privateKey: otherKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
const saFile = path.join(dir, 'sa.json');
fs.writeFileSync(saFile, JSON.stringify({ type: 'service_account', client_email: EMAIL, private_key: pem, private_key_id: 'kid-1', token_uri: 'x' }));

let emu; let base;

function b64(o) { return Buffer.from(JSON.stringify(o)).toString('base64url'); }
function jwt(claims, opts = {}) {
  const header = opts.header || { alg: 'RS256', typ: 'JWT', kid: 'kid-1' };
  const input = `${b64(header)}.${b64(claims)}`;
  const sig = crypto.sign('sha256', Buffer.from(input), opts.key || privateKey).toString('base64url');
  return `${input}.${sig}`;
}
function claims(over = {}) {
  const now = Math.floor(Date.now() / 1000);
  return Object.assign({ iss: EMAIL, scope: CP, aud: `${base}/token`, iat: now, exp: now + 3600 }, over);
}

async function req(method, p, { headers = {}, body, form } = {}) {
  const h = Object.assign({}, headers);
  let data = body;
  if (form) { data = new URLSearchParams(form).toString(); h['Content-Type'] = 'application/x-www-form-urlencoded'; }
  else if (body !== undefined && typeof body !== 'string') { data = JSON.stringify(body); h['Content-Type'] = 'application/json'; }
  const r = await fetch(base + p, { method, headers: h, body: data });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch (_) { /* text */ }
  return { status: r.status, headers: r.headers, text, json };
}

async function jwtToken(c = claims(), opts) {
  return req('POST', '/token', { form: { grant_type: JWT_BEARER, assertion: jwt(c, opts) } });
}

test.before(async () => {
  emu = createEmulator({ dataDir: path.join(dir, 'data'), strictAuth: true, serviceAccounts: [saFile], tokenLifetime: 3600 });
  await new Promise((r) => emu.server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${emu.server.address().port}`;
});
test.after(() => { emu.server.close(); fs.rmSync(dir, { recursive: true, force: true }); });
test.beforeEach(async () => { await req('POST', '/_auth/reset', { body: {} }); await req('POST', '/_auth/config', { body: { tokenLifetime: 3600 } }); });

test('jwt-bearer grant issues a Bearer token with Google headers', async () => {
  const r = await jwtToken();
  assert.strictEqual(r.status, 200);
  assert.match(r.json.access_token, /^ya29\./);
  assert.strictEqual(r.json.token_type, 'Bearer');
  assert.strictEqual(r.json.expires_in, 3600);
  assert.match(r.headers.get('content-type'), /application\/json; charset=utf-8/);
  assert.match(r.headers.get('cache-control'), /no-store/);
});

test('typ and kid are optional (gtoken sends only alg) and Google\'s aud is accepted', async () => {
  const r = await jwtToken(claims({ aud: 'https://oauth2.googleapis.com/token' }), { header: { alg: 'RS256' } });
  assert.strictEqual(r.status, 200);
});

test('jwt-bearer rejections', async () => {
  const cases = [
    [await jwtToken(claims(), { key: otherKey }), 'invalid_grant', /Invalid JWT Signature/],
    [await jwtToken(claims(), { header: { alg: 'RS256', kid: 'other' } }), 'invalid_grant', /Invalid JWT Signature/],
    [await jwtToken(claims(), { header: { alg: 'HS256' } }), 'invalid_grant', /RS256/],
    [await jwtToken(claims({ iss: 'nobody@x.iam.gserviceaccount.com' })), 'invalid_grant', /account not found/],
    [await jwtToken(claims({ aud: 'https://proxy.example/token' })), 'invalid_grant', /Failed audience check/],
    [await jwtToken(claims({ exp: claims().iat + 7200 })), 'invalid_grant', /short-lived token/],
    [await jwtToken(claims({ iat: claims().iat + 600, exp: claims().iat + 1200 })), 'invalid_grant', /short-lived/],
    [await jwtToken(claims({ iat: claims().iat - 7200, exp: claims().iat - 3600 })), 'invalid_grant', /short-lived/],
    [await jwtToken(claims({ scope: '' })), 'invalid_scope', /Invalid OAuth scope/],
  ];
  for (const [r, error, desc] of cases) {
    assert.strictEqual(r.status, 400, r.text);
    assert.strictEqual(r.json.error, error);
    assert.match(r.json.error_description, desc);
  }
  const bad = await req('POST', '/token', { form: { grant_type: 'password' } });
  assert.strictEqual(bad.json.error, 'unsupported_grant_type');
  const notForm = await req('POST', '/token', { body: { grant_type: JWT_BEARER } });
  assert.strictEqual(notForm.json.error, 'unsupported_grant_type');
});

test('a small clock skew is tolerated', async () => {
  const now = Math.floor(Date.now() / 1000);
  assert.strictEqual((await jwtToken(claims({ iat: now + 30, exp: now + 3630 }))).status, 200);
});

test('refresh_token grant: registered tokens, bad client, revoked', async () => {
  await req('POST', '/_auth/refresh-tokens', { body: { refresh_token: '1//rt', client_id: 'cid', client_secret: 'cs', account: 'u@x' } });
  const ok = await req('POST', '/token', { form: { grant_type: 'refresh_token', refresh_token: '1//rt', client_id: 'cid', client_secret: 'cs' } });
  assert.strictEqual(ok.status, 200);
  const info = await req('GET', `/_auth/tokeninfo?access_token=${ok.json.access_token}`);
  assert.strictEqual(info.json.principal, 'u@x');
  const client = await req('POST', '/token', { form: { grant_type: 'refresh_token', refresh_token: '1//rt', client_id: 'cid', client_secret: 'no' } });
  assert.strictEqual(client.status, 401);
  assert.strictEqual(client.json.error, 'invalid_client');
  await req('POST', '/_auth/revoke', { body: { refresh_token: '1//rt' } });
  const gone = await req('POST', '/token', { form: { grant_type: 'refresh_token', refresh_token: '1//rt', client_id: 'cid', client_secret: 'cs' } });
  assert.strictEqual(gone.status, 400);
  assert.deepStrictEqual(gone.json, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' });
});

test('fail-next queues forced token errors and counters count', async () => {
  await req('POST', '/_auth/fail-next', { body: { count: 2, status: 503, error: 'temporarily_unavailable' } });
  assert.strictEqual((await jwtToken()).status, 503);
  assert.strictEqual((await jwtToken()).status, 503);
  assert.strictEqual((await jwtToken()).status, 200);
  const st = await req('GET', '/_auth/state');
  assert.strictEqual(st.json.counters.jwt, 1);
  assert.ok(!st.text.includes('ya29.'), 'state shows no tokens');
});

test('metadata server: Metadata-Flavor required both ways, cached tokens', async () => {
  const root = await req('GET', '/');
  assert.strictEqual(root.status, 200);
  assert.strictEqual(root.headers.get('metadata-flavor'), 'Google');
  const p = '/computeMetadata/v1/instance/service-accounts/default/token';
  const no = await req('GET', p);
  assert.strictEqual(no.status, 403);
  assert.strictEqual(no.headers.get('metadata-flavor'), 'Google');
  const h = { 'Metadata-Flavor': 'Google' };
  const a = await req('GET', p, { headers: h });
  const b = await req('GET', p, { headers: h });
  assert.strictEqual(a.status, 200);
  assert.match(a.headers.get('content-type'), /application\/json/);
  assert.strictEqual(a.json.access_token, b.json.access_token);
  assert.ok(b.json.expires_in <= a.json.expires_in);
  assert.strictEqual((await req('GET', '/computeMetadata/v1/instance/service-accounts/default/email', { headers: h })).text, EMAIL);
  assert.strictEqual((await req('GET', '/computeMetadata/v1/project/project-id', { headers: h })).text, 'test-project');
  const rec = await req('GET', '/computeMetadata/v1/instance/service-accounts/default/?recursive=true', { headers: h });
  assert.deepStrictEqual(rec.json.aliases, ['default']);
  const uni = await req('GET', '/computeMetadata/v1/universe/universe-domain', { headers: h });
  assert.strictEqual(uni.status, 404);
  assert.strictEqual(uni.headers.get('metadata-flavor'), 'Google');
});

test('metadata tokens are renewed inside the cache window', async () => {
  await req('POST', '/_auth/config', { body: { tokenLifetime: 2 } });
  const h = { 'Metadata-Flavor': 'Google' };
  const p = '/computeMetadata/v1/instance/service-accounts/default/token';
  const a = await req('GET', p, { headers: h });
  await new Promise((r) => setTimeout(r, 1100));
  const b = await req('GET', p, { headers: h });
  assert.notStrictEqual(a.json.access_token, b.json.access_token);
});

test('IAM generateAccessToken', async () => {
  const src = (await jwtToken()).json.access_token;
  const target = 'target@test-project.iam.gserviceaccount.com';
  const url = `/v1/projects/-/serviceAccounts/${target}:generateAccessToken`;
  const auth = { Authorization: `Bearer ${src}` };
  const ok = await req('POST', url, { headers: auth, body: { scope: [CP], lifetime: '600s', delegates: null } });
  assert.strictEqual(ok.status, 200, ok.text);
  assert.match(ok.json.expireTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const info = await req('GET', `/_auth/tokeninfo?access_token=${ok.json.accessToken}`);
  assert.strictEqual(info.json.principal, target);
  assert.ok(info.json.expires_in <= 600);
  const noScope = await req('POST', url, { headers: auth, body: { lifetime: '600s' } });
  assert.strictEqual(noScope.status, 400);
  assert.strictEqual(noScope.json.error.status, 'INVALID_ARGUMENT');
  assert.strictEqual(noScope.json.error.message, 'Request contains an invalid argument.');
  assert.strictEqual((await req('POST', url, { headers: auth, body: { scope: [CP], lifetime: '7200s' } })).status, 400);
  assert.strictEqual((await req('POST', url, { headers: auth, body: { scope: [CP], delegates: ['bad'] } })).status, 400);
  const anon = await req('POST', url, { body: { scope: [CP] } });
  assert.strictEqual(anon.status, 401);
  assert.match(anon.headers.get('www-authenticate'), /^Bearer/);
  await req('POST', '/_auth/deny-impersonation', { body: { emails: [target] } });
  const denied = await req('POST', url, { headers: auth, body: { scope: [CP] } });
  assert.strictEqual(denied.status, 403);
  assert.strictEqual(denied.json.error.status, 'PERMISSION_DENIED');
  const narrow = (await jwtToken(claims({ scope: 'https://www.googleapis.com/auth/devstorage.read_only' }))).json.access_token;
  const scopeErr = await req('POST', url.replace(target, 'x@y.iam.gserviceaccount.com'), { headers: { Authorization: `Bearer ${narrow}` }, body: { scope: [CP] } });
  assert.strictEqual(scopeErr.status, 403);
});

test('STS token exchange', async () => {
  const form = { grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', audience: '//iam.googleapis.com/x',
    scope: CP, requested_token_type: 'urn:ietf:params:oauth:token-type:access_token', subject_token: 'opaque',
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' };
  const ok = await req('POST', '/v1/token', { form });
  assert.strictEqual(ok.status, 200, ok.text);
  assert.strictEqual(ok.json.issued_token_type, 'urn:ietf:params:oauth:token-type:access_token');
  await req('POST', '/_auth/subject-tokens', { body: { tokens: ['only'] } });
  const bad = await req('POST', '/v1/token', { form });
  assert.strictEqual(bad.json.error, 'invalid_grant');
});

test('strict auth: missing, invalid, expired and valid tokens on Healthcare and GCS', async () => {
  const hc = '/v1/projects/p/locations/l/datasets';
  const missing = await req('GET', hc);
  assert.strictEqual(missing.status, 401);
  assert.strictEqual(missing.json.error.status, 'UNAUTHENTICATED');
  assert.match(missing.json.error.message, /missing required authentication credential/);
  assert.strictEqual(missing.json.error.details[0].reason, 'CREDENTIALS_MISSING');
  assert.match(missing.headers.get('www-authenticate'), /^Bearer/);
  const invalid = await req('GET', hc, { headers: { Authorization: 'Bearer nope' } });
  assert.strictEqual(invalid.status, 401);
  assert.match(invalid.json.error.message, /^Request had invalid authentication credentials\. Expected OAuth 2 access token/);
  assert.strictEqual(invalid.headers.get('www-authenticate'), 'Bearer realm="https://accounts.google.com/", error="invalid_token"');
  const gcs = await req('GET', '/storage/v1/b?project=p', { headers: { Authorization: 'Bearer nope' } });
  assert.strictEqual(gcs.status, 401);
  assert.strictEqual(gcs.json.error.errors[0].reason, 'authError');

  await req('POST', '/_auth/config', { body: { tokenLifetime: 1 } });
  const short = (await jwtToken()).json.access_token;
  await new Promise((r) => setTimeout(r, 1100));
  const expired = await req('GET', hc, { headers: { Authorization: `Bearer ${short}` } });
  assert.strictEqual(expired.status, 401);
  assert.strictEqual(expired.json.error.details[0].reason, 'ACCESS_TOKEN_EXPIRED');

  await req('POST', '/_auth/config', { body: { tokenLifetime: 3600 } });
  const tok = (await jwtToken()).json.access_token;
  const ok = await req('GET', hc, { headers: { Authorization: `Bearer ${tok}`, 'x-goog-user-project': 'qp' } });
  assert.strictEqual(ok.status, 200, ok.text);
  const st = await req('GET', '/_auth/state');
  const last = st.json.recent[st.json.recent.length - 1];
  assert.strictEqual(last.userProject, 'qp');
  assert.strictEqual(last.principal, EMAIL);

  await req('POST', '/_auth/revoke', { body: { all: true } });
  assert.strictEqual((await req('GET', hc, { headers: { Authorization: `Bearer ${tok}` } })).status, 401);

  const narrow = (await jwtToken(claims({ scope: 'https://www.googleapis.com/auth/devstorage.read_only' }))).json.access_token;
  const scope = await req('GET', hc, { headers: { Authorization: `Bearer ${narrow}` } });
  assert.strictEqual(scope.status, 403);
  assert.strictEqual(scope.json.error.status, 'PERMISSION_DENIED');
});

test('without --strict-auth any bearer token (or none) is accepted', () => {
  const auth = require('../src/auth');
  const saved = auth._state();
  try {
    auth.configure({ strictAuth: false });
    assert.strictEqual(auth.authorize({ headers: {}, method: 'GET', url: '/v1/x' }, 'healthcare.googleapis.com'), null);
    assert.strictEqual(auth.authorize({ headers: { authorization: 'Bearer whatever' }, method: 'GET', url: '/v1/x' }, 'healthcare.googleapis.com'), null);
    assert.strictEqual(auth.routes.length, 3);
  } finally {
    auth.configure({ strictAuth: true, serviceAccounts: [saFile] });
    assert.ok(saved);
  }
});

test('configure rejects unreadable and non-RSA service-account files without echoing keys', () => {
  const auth = require('../src/auth');
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
  const ecFile = path.join(dir, 'ec.json');
  fs.writeFileSync(ecFile, JSON.stringify({ type: 'service_account', client_email: EMAIL, private_key: ec }));
  assert.throws(() => auth.configure({ serviceAccounts: [ecFile] }), (e) => /not an RSA key/.test(e.message) && !e.message.includes('BEGIN'));
  assert.throws(() => auth.configure({ serviceAccounts: [path.join(dir, 'missing.json')] }), /cannot read/);
  auth.configure({ strictAuth: true, serviceAccounts: [saFile] });
});
