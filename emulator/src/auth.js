'use strict';
// Google authentication, emulated (reference: auth.md §11).
//
//   configure(opts)          start options: { strictAuth, serviceAccounts: [files], tokenLifetime, dataDir, … }
//   routes(req, res, url)    serve auth endpoints; return true when the request was handled
//   authorize(req, service)  null = allowed, else a Google error body {error:{code,message,status,…}}
//
// Endpoints served by routes():
//   POST /token  (aliases /oauth2/v4/token, /o/oauth2/token)
//        grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer   RS256 JWT checked against the public
//                   keys of the --service-account files (iss, kid, aud, iat/exp ≤ 1 h, skew, scope)
//        grant_type=refresh_token                                  test refresh tokens (admin-registered)
//        grant_type=urn:ietf:params:oauth:grant-type:token-exchange  as POST /v1/token
//   POST /v1/token                      STS token exchange (opaque subject tokens; admin may restrict)
//   POST /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken   IAM Credentials
//   GET  /  and /computeMetadata/v1/…   metadata server (needs Metadata-Flavor: Google)
//   /_auth/…                            admin for specs (see admin() below)
// Tokens are random "ya29.emu…" strings living --token-lifetime seconds (default 3600).
// Nothing here ever logs a token, key or refresh token.
const crypto = require('crypto');
const fs = require('fs');
const { readAll, readJson } = require('./body');

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
const IAM_SCOPE = 'https://www.googleapis.com/auth/iam';
const TOKEN_PATHS = new Set(['/token', '/oauth2/v4/token', '/o/oauth2/token']);
const SHORT_LIVED = 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.';
const DEVCONSOLE = 'See https://developers.google.com/identity/sign-in/web/devconsole-project.';
const MSG_MISSING = `Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. ${DEVCONSOLE}`;
const MSG_INVALID = `Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. ${DEVCONSOLE}`;
const WWW_AUTH_INVALID = 'Bearer realm="https://accounts.google.com/", error="invalid_token"';
const WWW_AUTH_MISSING = 'Bearer realm="https://accounts.google.com/"';
// Scopes that let a token call each service (cloud-platform works everywhere).
const SERVICE_SCOPES = {
  'healthcare.googleapis.com': [/^https:\/\/www\.googleapis\.com\/auth\/cloud-healthcare$/],
  'storage.googleapis.com': [/^https:\/\/www\.googleapis\.com\/auth\/devstorage\./],
  'logging.googleapis.com': [/^https:\/\/www\.googleapis\.com\/auth\/logging\./],
};
const RECENT_MAX = 200;

let options = {};
let state = null;

function freshState() {
  return {
    serviceAccounts: new Map(), // email -> { email, kid, publicKey, file }
    tokens: new Map(),          // access token -> { principal, scopes, expiresAt (ms), via }
    refreshTokens: new Map(),   // refresh token -> { clientId, clientSecret, account, scopes }
    subjectTokens: new Set(),   // accepted STS subject tokens; empty = accept any non-empty one
    deniedTargets: new Set(),   // emails generateAccessToken refuses (403)
    mdsCache: null,             // { token, expiresAt }
    failNext: [],               // queued forced /token errors: { status, error, error_description }
    counters: { jwt: 0, refresh: 0, sts: 0, iam: 0, mds: 0, issued: 0, rejected: 0, authorized: 0, denied: 0 },
    recent: [],                 // { method, path, service, principal, userProject, apiClient, verdict }
    builtin: null,              // generated SA: { email, privatePem, kid }
    config: {
      tokenLifetime: 3600, skewSeconds: 60, mdsCacheWindow: 300,
      metadataEmail: null, projectId: 'test-project', numericProjectId: '123456789012',
    },
  };
}

function loadServiceAccount(file) {
  let info;
  try { info = JSON.parse(fs.readFileSync(file, 'utf8')); } catch (e) {
    throw new Error(`--service-account ${file}: cannot read it as JSON (${e.code || 'invalid JSON'})`);
  }
  if (info.type !== 'service_account' || typeof info.client_email !== 'string' || typeof info.private_key !== 'string') {
    throw new Error(`--service-account ${file}: not a service_account key file (needs type, client_email, private_key)`);
  }
  let publicKey;
  try { publicKey = crypto.createPublicKey(info.private_key); } catch (_) {
    throw new Error(`--service-account ${file}: private_key is not a readable PEM key`); // never echo the key
  }
  if (publicKey.asymmetricKeyType !== 'rsa') throw new Error(`--service-account ${file}: private_key is not an RSA key`);
  return { email: info.client_email, kid: info.private_key_id || null, publicKey, file };
}

function addServiceAccount(sa) { state.serviceAccounts.set(sa.email, sa); }

function configure(opts) {
  options = opts || {};
  state = freshState();
  if (Number.isInteger(options.tokenLifetime) && options.tokenLifetime > 0) state.config.tokenLifetime = options.tokenLifetime;
  for (const f of options.serviceAccounts || []) addServiceAccount(loadServiceAccount(f));
  for (const rt of options.refreshTokens || []) registerRefreshToken(rt);
  const first = state.serviceAccounts.keys().next();
  if (!first.done) state.config.metadataEmail = first.value;
}

function st() { if (!state) configure({}); return state; }

// ---------------------------------------------------------------------------------------------
// Helpers

function nowMs() { return Date.now(); }
function random(n) { return crypto.randomBytes(n).toString('base64url'); }

function issue(principal, scopes, via, lifetimeS) {
  const s = st();
  const life = Math.max(1, Math.min(lifetimeS || s.config.tokenLifetime, s.config.tokenLifetime));
  const token = `ya29.emu${random(24)}`;
  const expiresAt = nowMs() + life * 1000;
  s.tokens.set(token, { principal, scopes: scopes.slice(), expiresAt, via });
  s.counters.issued++;
  // Forget long-expired tokens so the map stays small in long runs.
  if (s.tokens.size > 10000) {
    const cutoff = nowMs() - 3600 * 1000;
    for (const [k, v] of s.tokens) if (v.expiresAt < cutoff) s.tokens.delete(k);
  }
  return { token, expiresIn: life, expiresAt };
}

function sendOAuth(res, code, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(code, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-cache, no-store, max-age=0, must-revalidate',
    Pragma: 'no-cache',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

function oauthError(res, code, error, description) {
  st().counters.rejected++;
  sendOAuth(res, code, description ? { error, error_description: description } : { error });
}

function sendGoogle(res, code, status, message, details, extraHeaders) {
  const e = { code, message, status };
  if (details) e.details = details;
  const body = JSON.stringify({ error: e }, null, 2) + '\n';
  res.writeHead(code, Object.assign({
    'Content-Type': 'application/json; charset=UTF-8',
    'Content-Length': Buffer.byteLength(body),
  }, extraHeaders || {}));
  res.end(body);
}

async function readForm(req) {
  const ct = String(req.headers['content-type'] || '').toLowerCase();
  const buf = await readAll(req, 1024 * 1024);
  if (!ct.startsWith('application/x-www-form-urlencoded')) return null;
  return new URLSearchParams(buf.toString('utf8'));
}

function b64json(part) {
  try { return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')); } catch (_) { return null; }
}

function bearerOf(req) {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1] : '';
}

function ownTokenUrls(req, pathname) {
  const host = req.headers.host || '';
  // gtoken <= 7 (google-auth-library 9, bundled by @google-cloud/storage 7) signs aud = the legacy URL
  const urls = new Set([GOOGLE_TOKEN_URL, 'https://www.googleapis.com/oauth2/v4/token']);
  for (const p of TOKEN_PATHS) {
    urls.add(`http://${host}${p}`);
    urls.add(`http://${host.replace(/^localhost:/, '127.0.0.1:')}${p}`);
    urls.add(`http://${host.replace(/^127\.0\.0\.1:/, 'localhost:')}${p}`);
  }
  urls.add(`http://${host}${pathname}`);
  return urls;
}

function scopesOf(str) { return String(str || '').split(/\s+/).filter(Boolean); }

function registerRefreshToken(rt) {
  if (!rt || typeof rt.refresh_token !== 'string' || !rt.refresh_token || typeof rt.client_id !== 'string' || typeof rt.client_secret !== 'string') {
    throw new Error('a test refresh token needs refresh_token, client_id and client_secret');
  }
  st().refreshTokens.set(rt.refresh_token, {
    clientId: rt.client_id, clientSecret: rt.client_secret,
    account: rt.account || 'user@example.com',
    scopes: Array.isArray(rt.scopes) && rt.scopes.length ? rt.scopes : [CLOUD_PLATFORM, 'openid', 'https://www.googleapis.com/auth/userinfo.email'],
  });
}

// ---------------------------------------------------------------------------------------------
// POST /token

function tokenResponse(res, issued) {
  sendOAuth(res, 200, { access_token: issued.token, expires_in: issued.expiresIn, token_type: 'Bearer' });
}

function jwtGrant(req, res, form, pathname) {
  const s = st();
  s.counters.jwt++;
  const assertion = form.get('assertion') || '';
  const parts = assertion.split('.');
  if (parts.length !== 3) return oauthError(res, 400, 'invalid_grant', 'Invalid JWT: the assertion is not a JWT.');
  const header = b64json(parts[0]);
  const claims = b64json(parts[1]);
  if (!header || !claims) return oauthError(res, 400, 'invalid_grant', 'Invalid JWT: the assertion could not be decoded.');
  if (header.alg !== 'RS256') return oauthError(res, 400, 'invalid_grant', 'Invalid JWT: the signing algorithm must be RS256.');
  const sa = typeof claims.iss === 'string' ? s.serviceAccounts.get(claims.iss) : undefined;
  if (!sa) return oauthError(res, 400, 'invalid_grant', 'Invalid grant: account not found');
  if (header.kid !== undefined && sa.kid && header.kid !== sa.kid) return oauthError(res, 400, 'invalid_grant', 'Invalid JWT Signature.');
  let good = false;
  try {
    good = crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), sa.publicKey, Buffer.from(parts[2], 'base64url'));
  } catch (_) { good = false; }
  if (!good) return oauthError(res, 400, 'invalid_grant', 'Invalid JWT Signature.');
  if (typeof claims.aud !== 'string' || !ownTokenUrls(req, pathname).has(claims.aud)) {
    return oauthError(res, 400, 'invalid_grant', 'Invalid JWT: Failed audience check.');
  }
  const now = Math.floor(nowMs() / 1000);
  const skew = s.config.skewSeconds;
  const { iat, exp } = claims;
  if (!Number.isInteger(iat) || !Number.isInteger(exp) || exp - iat > 3600 || exp <= iat ||
      iat > now + skew || exp < now - skew) {
    return oauthError(res, 400, 'invalid_grant', SHORT_LIVED);
  }
  const scopes = scopesOf(claims.scope);
  if (!scopes.length) return oauthError(res, 400, 'invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
  return tokenResponse(res, issue(sa.email, scopes, 'jwt'));
}

function refreshGrant(req, res, form) {
  const s = st();
  s.counters.refresh++;
  const rt = s.refreshTokens.get(form.get('refresh_token') || '');
  const clientId = form.get('client_id');
  if (rt && (clientId !== rt.clientId || form.get('client_secret') !== rt.clientSecret)) {
    return oauthError(res, 401, 'invalid_client', 'Unauthorized');
  }
  if (!rt) return oauthError(res, 400, 'invalid_grant', 'Token has been expired or revoked.');
  let scopes = rt.scopes;
  if (form.get('scope')) {
    scopes = scopesOf(form.get('scope'));
    if (!scopes.every((x) => rt.scopes.includes(x))) {
      return oauthError(res, 400, 'invalid_scope', 'Bad Request');
    }
  }
  const issued = issue(rt.account, scopes, 'refresh');
  sendOAuth(res, 200, { access_token: issued.token, expires_in: issued.expiresIn, token_type: 'Bearer', scope: scopes.join(' ') });
}

function stsGrant(req, res, form) {
  const s = st();
  s.counters.sts++;
  if (form.get('grant_type') !== TOKEN_EXCHANGE) {
    return oauthError(res, 400, 'unsupported_grant_type', `Invalid grant_type: ${String(form.get('grant_type') || '').slice(0, 80)}`);
  }
  const subject = form.get('subject_token') || '';
  const audience = form.get('audience') || '';
  if (!audience) return oauthError(res, 400, 'invalid_request', 'The audience is required.');
  if (!form.get('subject_token_type')) return oauthError(res, 400, 'invalid_request', 'The subject_token_type is required.');
  if (form.get('requested_token_type') && form.get('requested_token_type') !== ACCESS_TOKEN_TYPE) {
    return oauthError(res, 400, 'invalid_request', 'The requested_token_type is not supported.');
  }
  if (!subject || (s.subjectTokens.size && !s.subjectTokens.has(subject))) {
    return oauthError(res, 400, 'invalid_grant', 'The subject token is invalid or expired.');
  }
  const scopes = scopesOf(form.get('scope'));
  if (!scopes.length) return oauthError(res, 400, 'invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
  const issued = issue(`principal://${audience.replace(/^\/\//, '')}/subject`, scopes, 'sts');
  sendOAuth(res, 200, { access_token: issued.token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: issued.expiresIn });
}

async function tokenEndpoint(req, res, url) {
  const s = st();
  if (req.method !== 'POST') { req.resume(); return oauthError(res, 405, 'invalid_request', 'Method not allowed; use POST.'); }
  const form = await readForm(req);
  if (!form) return oauthError(res, 400, 'unsupported_grant_type', 'Invalid grant_type: the body must be application/x-www-form-urlencoded');
  if (s.failNext.length) {
    const f = s.failNext.shift();
    return oauthError(res, f.status || 400, f.error || 'invalid_grant', f.error_description);
  }
  const grant = form.get('grant_type');
  if (grant === JWT_BEARER) return jwtGrant(req, res, form, url.pathname);
  if (grant === 'refresh_token') return refreshGrant(req, res, form);
  if (grant === TOKEN_EXCHANGE) return stsGrant(req, res, form);
  return oauthError(res, 400, 'unsupported_grant_type', `Invalid grant_type: ${String(grant || '').slice(0, 80)}`);
}

// ---------------------------------------------------------------------------------------------
// Token checks shared by IAM Credentials and authorize()

/** { ok, entry } or { ok:false, why: 'missing'|'invalid'|'expired' } */
function checkBearer(req) {
  const tok = bearerOf(req);
  if (tok === null) return { ok: false, why: 'missing' };
  const entry = tok ? st().tokens.get(tok) : undefined;
  if (!entry) return { ok: false, why: 'invalid' };
  if (entry.expiresAt <= nowMs()) return { ok: false, why: 'expired' };
  return { ok: true, entry };
}

function unauthenticatedBody(why, service, method) {
  const gcs = service === 'storage.googleapis.com';
  if (gcs) {
    const message = why === 'missing' ? 'Anonymous caller does not have storage.objects.get access.' : 'Invalid Credentials';
    return { error: { code: 401, message,
      errors: [{ message, domain: 'global', reason: why === 'missing' ? 'required' : 'authError', locationType: 'header', location: 'Authorization' }] } };
  }
  const reason = why === 'missing' ? 'CREDENTIALS_MISSING' : why === 'expired' ? 'ACCESS_TOKEN_EXPIRED' : 'ACCESS_TOKEN_TYPE_UNSUPPORTED';
  return { error: { code: 401, message: why === 'missing' ? MSG_MISSING : MSG_INVALID, status: 'UNAUTHENTICATED',
    details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason, domain: 'googleapis.com',
      metadata: { service: service || 'unknown', method: method || 'unknown' } }] } };
}

function hasScope(entry, service) {
  if (entry.scopes.includes(CLOUD_PLATFORM)) return true;
  return (SERVICE_SCOPES[service] || []).some((re) => entry.scopes.some((x) => re.test(x)));
}

// ---------------------------------------------------------------------------------------------
// IAM Credentials generateAccessToken

async function generateAccessToken(req, res, email) {
  const s = st();
  s.counters.iam++;
  if (req.method !== 'POST') { req.resume(); return sendGoogle(res, 405, 'INVALID_ARGUMENT', 'Method not allowed.'); }
  const chk = checkBearer(req);
  if (!chk.ok) {
    req.resume();
    const b = unauthenticatedBody(chk.why, 'iamcredentials.googleapis.com', 'google.iam.credentials.v1.IAMCredentials.GenerateAccessToken');
    return sendGoogle(res, 401, 'UNAUTHENTICATED', b.error.message, b.error.details,
      { 'WWW-Authenticate': chk.why === 'missing' ? WWW_AUTH_MISSING : WWW_AUTH_INVALID });
  }
  if (!chk.entry.scopes.includes(CLOUD_PLATFORM) && !chk.entry.scopes.includes(IAM_SCOPE)) {
    req.resume();
    return sendGoogle(res, 403, 'PERMISSION_DENIED', 'Request had insufficient authentication scopes.',
      [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'ACCESS_TOKEN_SCOPE_INSUFFICIENT', domain: 'googleapis.com' }]);
  }
  let body;
  try { body = await readJson(req); } catch (e) { return sendGoogle(res, 400, 'INVALID_ARGUMENT', e.message); }
  const bad = () => sendGoogle(res, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.');
  if (!body || !Array.isArray(body.scope) || body.scope.length === 0 || !body.scope.every((x) => typeof x === 'string' && x)) return bad();
  let lifetime = 3600;
  if (body.lifetime !== undefined && body.lifetime !== null) {
    const m = /^(\d+)(?:\.\d+)?s$/.exec(String(body.lifetime));
    if (!m) return bad();
    lifetime = parseInt(m[1], 10);
    if (lifetime < 1 || lifetime > 3600) return bad();
  }
  if (body.delegates !== undefined && body.delegates !== null) {
    if (!Array.isArray(body.delegates) || !body.delegates.every((d) => typeof d === 'string' && /^projects\/-\/serviceAccounts\/[^/]+$/.test(d))) return bad();
  }
  if (s.deniedTargets.has(email) || !/^[^@\s]+@[^@\s]+$/.test(email)) {
    return sendGoogle(res, 403, 'PERMISSION_DENIED', `Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).`,
      [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'IAM_PERMISSION_DENIED', domain: 'iam.googleapis.com',
        metadata: { permission: 'iam.serviceAccounts.getAccessToken' } }]);
  }
  const issued = issue(email, body.scope, 'iam', lifetime);
  // Whole seconds, as Python's parser requires; never later than the real expiry.
  const expireTime = new Date(Math.floor(issued.expiresAt / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  s.tokens.get(issued.token).expiresAt = Math.floor(issued.expiresAt / 1000) * 1000;
  const out = JSON.stringify({ accessToken: issued.token, expireTime });
  res.writeHead(200, { 'Content-Type': 'application/json; charset=UTF-8', 'Content-Length': Buffer.byteLength(out) });
  res.end(out);
}

// ---------------------------------------------------------------------------------------------
// Metadata server

function mdsSend(res, code, body, type) {
  const buf = Buffer.from(body);
  res.writeHead(code, { 'Metadata-Flavor': 'Google', 'Content-Type': type || 'application/text', 'Content-Length': buf.length, Server: 'Metadata Server for VM' });
  res.end(buf);
}

function metadataEmail() {
  return st().config.metadataEmail || `default@${st().config.projectId}.iam.gserviceaccount.com`;
}

function metadata(req, res, url) {
  const s = st();
  req.resume();
  if (req.method !== 'GET') return mdsSend(res, 405, 'Method not allowed\n', 'text/html');
  if (url.pathname === '/') return mdsSend(res, 200, 'computeMetadata/\n');
  if (String(req.headers['metadata-flavor'] || '') !== 'Google') {
    return mdsSend(res, 403, 'Missing required header "Metadata-Flavor": "Google"\n', 'text/html; charset=UTF-8');
  }
  if (req.headers['x-forwarded-for']) return mdsSend(res, 403, 'Request denied: X-Forwarded-For header present\n', 'text/html');
  let p = url.pathname.slice('/computeMetadata/v1'.length).replace(/^\//, '');
  const email = metadataEmail();
  p = p.replace(/^instance\/service-accounts\/[^/]+\//, (m) => {
    const who = m.split('/')[2];
    return who === 'default' || who === email ? 'instance/service-accounts/default/' : m;
  });
  const sa = 'instance/service-accounts/default/';
  switch (p) {
    case '': return mdsSend(res, 200, 'instance/\noauth2/\nproject/\n');
    case 'instance': case 'instance/': return mdsSend(res, 200, 'attributes/\nhostname\nid\nservice-accounts/\nzone\n');
    case 'project/project-id': return mdsSend(res, 200, s.config.projectId);
    case 'project/numeric-project-id': return mdsSend(res, 200, s.config.numericProjectId);
    case 'instance/zone': return mdsSend(res, 200, `projects/${s.config.numericProjectId}/zones/us-central1-a`);
    case 'instance/service-accounts': case 'instance/service-accounts/': return mdsSend(res, 200, `default/\n${email}/\n`);
    case `${sa}email`: return mdsSend(res, 200, email);
    case `${sa}scopes`: return mdsSend(res, 200, `${CLOUD_PLATFORM}\n`);
    case 'instance/service-accounts/default': case sa:
      if (url.searchParams.get('recursive') === 'true') {
        return mdsSend(res, 200, JSON.stringify({ aliases: ['default'], email, scopes: [CLOUD_PLATFORM] }), 'application/json');
      }
      return mdsSend(res, 200, 'aliases\nemail\nidentity\nscopes\ntoken\n');
    case `${sa}token`: {
      s.counters.mds++;
      const scopes = url.searchParams.get('scopes') ? url.searchParams.get('scopes').split(',').filter(Boolean) : [CLOUD_PLATFORM];
      const life = s.config.tokenLifetime;
      const windowMs = Math.min(s.config.mdsCacheWindow, life / 2) * 1000;
      let c = s.mdsCache;
      const key = scopes.join(',');
      // Like the real server: the same token, with a falling expires_in, until the cache window.
      if (!c || c.key !== key || c.expiresAt - nowMs() <= windowMs || !s.tokens.has(c.token)) {
        const issued = issue(email, scopes, 'mds');
        c = s.mdsCache = { token: issued.token, expiresAt: issued.expiresAt, key };
      }
      const expiresIn = Math.max(0, Math.floor((c.expiresAt - nowMs()) / 1000));
      return mdsSend(res, 200, JSON.stringify({ access_token: c.token, expires_in: expiresIn, token_type: 'Bearer' }), 'application/json');
    }
    default:
      return mdsSend(res, 404, 'Not Found\n', 'text/html; charset=UTF-8');
  }
}

// ---------------------------------------------------------------------------------------------
// Admin for specs: /_auth/…
//   GET    /_auth/state                    counters, configuration, recent authorized calls (no secrets)
//   POST   /_auth/config                   { tokenLifetime, skewSeconds, mdsCacheWindow, metadataEmail, projectId }
//   POST   /_auth/refresh-tokens           { refresh_token, client_id, client_secret, account?, scopes? }
//   POST   /_auth/revoke                   { all: true } | { token } | { principal } | { refresh_token }
//   POST   /_auth/fail-next                { count?, status?, error?, error_description? }  next /token calls fail
//   POST   /_auth/service-accounts         { file } (load a key file) | {} (make a built-in one: returns its JSON)
//   POST   /_auth/subject-tokens           { tokens: [..] } (STS accepts only these; [] = any)
//   POST   /_auth/deny-impersonation       { emails: [..] }
//   POST   /_auth/reset                    forget tokens, revocations, counters (keeps service accounts)
//   GET    /_auth/tokeninfo?access_token=  { principal, scopes, expires_in } (like Google's tokeninfo)

async function admin(req, res, url) {
  const s = st();
  const p = url.pathname.slice('/_auth/'.length);
  const m = req.method;
  const ok = (obj) => sendOAuth(res, 200, obj || {});
  const bad = (msg) => sendGoogle(res, 400, 'INVALID_ARGUMENT', msg);
  if (p === 'state' && m === 'GET') {
    req.resume();
    return ok({ counters: s.counters, config: s.config, liveTokens: [...s.tokens.values()].filter((t) => t.expiresAt > nowMs()).length,
      serviceAccounts: [...s.serviceAccounts.keys()], refreshTokens: s.refreshTokens.size, recent: s.recent });
  }
  if (p === 'tokeninfo' && m === 'GET') {
    req.resume();
    const e = s.tokens.get(url.searchParams.get('access_token') || '');
    if (!e) return oauthError(res, 400, 'invalid_token', 'Invalid Value');
    return ok({ principal: e.principal, scope: e.scopes.join(' '), expires_in: Math.floor((e.expiresAt - nowMs()) / 1000), via: e.via });
  }
  if (m !== 'POST') { req.resume(); return sendGoogle(res, 404, 'NOT_FOUND', `Unknown auth admin endpoint: ${m} /_auth/${p}`); }
  let body;
  try { body = await readJson(req); } catch (e) { return bad(e.message); }
  switch (p) {
    case 'config': {
      for (const [k, v] of Object.entries(body)) {
        if (['tokenLifetime', 'skewSeconds', 'mdsCacheWindow'].includes(k)) {
          if (!Number.isInteger(v) || v < 0 || (k === 'tokenLifetime' && v < 1)) return bad(`${k} must be a non-negative integer`);
        } else if (['metadataEmail', 'projectId', 'numericProjectId'].includes(k)) {
          if (typeof v !== 'string' || !v) return bad(`${k} must be a string`);
        } else return bad(`unknown auth config field "${k}"`);
        s.config[k] = v;
      }
      return ok(s.config);
    }
    case 'refresh-tokens':
      try { registerRefreshToken(body); } catch (e) { return bad(e.message); }
      return ok({});
    case 'revoke': {
      let n = 0;
      for (const [k, v] of s.tokens) {
        if (body.all || k === body.token || (body.principal && v.principal === body.principal)) { s.tokens.delete(k); n++; }
      }
      if (body.all || body.refresh_token) {
        for (const k of [...s.refreshTokens.keys()]) if (body.all || k === body.refresh_token) { s.refreshTokens.delete(k); n++; }
      }
      if (n) s.mdsCache = null;
      return ok({ revoked: n });
    }
    case 'fail-next': {
      const count = Number.isInteger(body.count) ? body.count : 1;
      for (let i = 0; i < count; i++) {
        s.failNext.push({ status: body.status || 400, error: body.error || 'invalid_grant', error_description: body.error_description });
      }
      return ok({ queued: s.failNext.length });
    }
    case 'service-accounts': {
      if (body.file) {
        try { addServiceAccount(loadServiceAccount(body.file)); } catch (e) { return bad(e.message); }
        return ok({ email: [...s.serviceAccounts.keys()].pop() });
      }
      if (!s.builtin) {
        const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
        const kid = crypto.randomBytes(20).toString('hex');
        const email = `sa@${s.config.projectId}.iam.gserviceaccount.com`;
        s.builtin = { email, kid, privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }) };
        addServiceAccount({ email, kid, publicKey, file: null });
      }
      const host = req.headers.host || '127.0.0.1';
      return ok({ type: 'service_account', project_id: s.config.projectId, private_key_id: s.builtin.kid,
        private_key: s.builtin.privatePem, client_email: s.builtin.email, client_id: '100000000000000000001',
        token_uri: `http://${host}/token` });
    }
    case 'subject-tokens':
      if (!Array.isArray(body.tokens)) return bad('tokens must be a list');
      s.subjectTokens = new Set(body.tokens.filter((x) => typeof x === 'string'));
      return ok({});
    case 'deny-impersonation':
      if (!Array.isArray(body.emails)) return bad('emails must be a list');
      s.deniedTargets = new Set(body.emails);
      return ok({});
    case 'reset': {
      s.tokens.clear(); s.failNext = []; s.mdsCache = null; s.recent = []; s.subjectTokens.clear(); s.deniedTargets.clear();
      for (const k of Object.keys(s.counters)) s.counters[k] = 0;
      return ok({});
    }
    default:
      return sendGoogle(res, 404, 'NOT_FOUND', `Unknown auth admin endpoint: POST /_auth/${p}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Hooks

const IAM_RE = /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):generateAccessToken$/;

async function routes(req, res, url) {
  const path = url.pathname;
  if (TOKEN_PATHS.has(path)) { await tokenEndpoint(req, res, url); return true; }
  if (path === '/v1/token' || path === '/v1/oauthtoken') {
    if (req.method !== 'POST') { req.resume(); oauthError(res, 405, 'invalid_request', 'Method not allowed; use POST.'); return true; }
    const form = await readForm(req);
    if (!form) { oauthError(res, 400, 'invalid_request', 'The body must be application/x-www-form-urlencoded'); return true; }
    stsGrant(req, res, form);
    return true;
  }
  const iam = IAM_RE.exec(path);
  if (iam) { await generateAccessToken(req, res, decodeURIComponent(iam[1])); return true; }
  if (path === '/' || path === '/computeMetadata/v1' || path.startsWith('/computeMetadata/v1/')) { metadata(req, res, url); return true; }
  if (path.startsWith('/_auth/')) { await admin(req, res, url); return true; }
  // Not ours. Under --strict-auth the server may next ask authorize() to refuse this request;
  // its 401 needs WWW-Authenticate, which authorize() cannot set: set it here (writeHead merges).
  if (options.strictAuth) {
    const chk = checkBearer(req);
    if (!chk.ok) res.setHeader('WWW-Authenticate', chk.why === 'missing' ? WWW_AUTH_MISSING : WWW_AUTH_INVALID);
  }
  return false;
}

function remember(req, service, principal, verdict) {
  const s = st();
  s.recent.push({
    method: req.method, path: String(req.url || '').split('?')[0], service, principal: principal || null,
    userProject: req.headers['x-goog-user-project'] || null, apiClient: req.headers['x-goog-api-client'] || null, verdict,
  });
  if (s.recent.length > RECENT_MAX) s.recent.splice(0, s.recent.length - RECENT_MAX);
}

function authorize(req, service) {
  const s = st();
  const chk = checkBearer(req);
  if (!options.strictAuth) {
    remember(req, service, chk.ok ? chk.entry.principal : null, 'allowed');
    s.counters.authorized++;
    return null;
  }
  if (!chk.ok) {
    remember(req, service, null, chk.why);
    s.counters.denied++;
    return unauthenticatedBody(chk.why, service, `${req.method} ${String(req.url || '').split('?')[0]}`);
  }
  if (!hasScope(chk.entry, service)) {
    remember(req, service, chk.entry.principal, 'scope');
    s.counters.denied++;
    return { error: { code: 403, message: 'Request had insufficient authentication scopes.', status: 'PERMISSION_DENIED',
      details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'ACCESS_TOKEN_SCOPE_INSUFFICIENT', domain: 'googleapis.com',
        metadata: { service } }] } };
  }
  remember(req, service, chk.entry.principal, 'allowed');
  s.counters.authorized++;
  return null;
}

module.exports = { configure, routes, authorize, admin, _state: () => st() };
