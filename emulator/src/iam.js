'use strict';
// IAM as the Healthcare import/export needs it:
//   - bucket IAM policies: GET/PUT /storage/v1/b/BUCKET/iam (also under the /b/… alias), with
//     etag checks like Google (a stale etag on PUT → 412 conditionNotMet), and
//     GET /storage/v1/b/BUCKET/iam/testPermissions?permissions=…;
//   - Resource Manager: GET /resourcemanager/v1/projects/PROJECT → {projectId, projectNumber, …}
//     (the emulator's stand-in for https://cloudresourcemanager.googleapis.com/v1/projects/P;
//     /v1/projects/… is Healthcare's). Every project exists; its number is derived from its id;
//   - the check an import/export makes: the project's Cloud Healthcare Service Agent
//     service-NUMBER@gcp-sa-healthcare.iam.gserviceaccount.com must hold a role on the bucket that
//     includes roles/storage.objectViewer (import) or roles/storage.objectAdmin (export).
// A new bucket's policy has Google's default legacy bindings only — no service agent — unless the
// emulator was started with --grant-service-agent (then the creating project's agent gets
// roles/storage.objectAdmin). Policies are kept in DIR/gcs/BUCKET/iam.json.
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { ApiError, GcsError, sendJson, RPC_CODE } = require('./errors');
const { readAll } = require('./body');

/** A stable 12-digit project number for a project id. */
function projectNumber(projectId) {
  const h = crypto.createHash('sha256').update(String(projectId), 'utf8').digest();
  const n = (h.readUInt32BE(0) % 900000) * 1000000 + (h.readUInt32BE(4) % 1000000) + 100000000000;
  return String(n);
}

function serviceAgent(projectId) {
  return `service-${projectNumber(projectId)}@gcp-sa-healthcare.iam.gserviceaccount.com`;
}

// Roles that carry what each operation needs (a role "includes" another's permissions).
const ROLES_FOR = {
  import: ['roles/storage.objectViewer', 'roles/storage.objectUser', 'roles/storage.objectAdmin', 'roles/storage.admin'],
  export: ['roles/storage.objectAdmin', 'roles/storage.admin'],
};
const NEEDED = { import: 'roles/storage.objectViewer', export: 'roles/storage.objectAdmin' };
const PERMISSIONS = {
  'roles/storage.objectViewer': ['storage.objects.get', 'storage.objects.list'],
  'roles/storage.objectCreator': ['storage.objects.create'],
  'roles/storage.objectUser': ['storage.objects.create', 'storage.objects.delete', 'storage.objects.get', 'storage.objects.list', 'storage.objects.update'],
  'roles/storage.objectAdmin': ['storage.objects.create', 'storage.objects.delete', 'storage.objects.get', 'storage.objects.getIamPolicy', 'storage.objects.list', 'storage.objects.setIamPolicy', 'storage.objects.update'],
  'roles/storage.admin': ['storage.buckets.get', 'storage.buckets.getIamPolicy', 'storage.buckets.setIamPolicy', 'storage.buckets.update', 'storage.buckets.delete', 'storage.objects.create', 'storage.objects.delete', 'storage.objects.get', 'storage.objects.getIamPolicy', 'storage.objects.list', 'storage.objects.setIamPolicy', 'storage.objects.update'],
};

function policyPath(ctx, bucket) { return path.join(ctx.gcs.bucketDir(bucket), 'iam.json'); }

function etagOf(version) {
  // Google's policy etags are base64 protobuf bytes; 0x08 + varint(version) has that look ("CAE=").
  const bytes = [0x08]; let v = version;
  while (v > 0x7f) { bytes.push((v & 0x7f) | 0x80); v = Math.floor(v / 128); }
  bytes.push(v);
  return Buffer.from(bytes).toString('base64');
}

function defaultPolicy(projectId, grant) {
  const bindings = [
    { role: 'roles/storage.legacyBucketOwner', members: [`projectEditor:${projectId}`, `projectOwner:${projectId}`] },
    { role: 'roles/storage.legacyBucketReader', members: [`projectViewer:${projectId}`] },
    { role: 'roles/storage.legacyObjectOwner', members: [`projectEditor:${projectId}`, `projectOwner:${projectId}`] },
    { role: 'roles/storage.legacyObjectReader', members: [`projectViewer:${projectId}`] },
  ];
  if (grant) bindings.push({ role: 'roles/storage.objectAdmin', members: [`serviceAccount:${serviceAgent(projectId)}`] });
  return { version: 1, bindings, _rev: 1 };
}

/** Called when a bucket is created (by the JSON API): writes its first policy. */
function onBucketCreated(ctx, bucket, projectId) {
  const p = defaultPolicy(projectId, !!ctx.opts.grantServiceAgent);
  fs.writeFileSync(policyPath(ctx, bucket), JSON.stringify(p));
}

function readPolicy(ctx, bucket) {
  try { return JSON.parse(fs.readFileSync(policyPath(ctx, bucket), 'utf8')); } catch (_) {
    return { version: 1, bindings: [], _rev: 1 };
  }
}

function policyJson(bucket, p) {
  return { kind: 'storage#policy', resourceId: `projects/_/buckets/${bucket}`, version: p.version || 1,
    etag: etagOf(p._rev || 1), bindings: p.bindings.map((b) => Object.assign({}, b)) };
}

const MEMBER_RE = /^(allUsers|allAuthenticatedUsers|(user|serviceAccount|group|domain|principal|principalSet):.+|project(Owner|Editor|Viewer):[a-z0-9.:-]+)$/;

function validateBindings(bindings) {
  if (bindings === undefined) return [];
  if (!Array.isArray(bindings)) throw new GcsError(400, 'invalid', 'Invalid argument: bindings must be a list.');
  for (const b of bindings) {
    if (!b || typeof b.role !== 'string' || !/^(roles|projects\/[^/]+\/roles|organizations\/[^/]+\/roles)\/[A-Za-z0-9_.]+$/.test(b.role)) {
      throw new GcsError(400, 'invalid', `Role ${b && b.role} is not a valid role.`);
    }
    if (!Array.isArray(b.members) || !b.members.every((m) => typeof m === 'string' && MEMBER_RE.test(m))) {
      throw new GcsError(400, 'invalid', `Invalid member in the binding for ${b.role}.`);
    }
  }
  return bindings.filter((b) => b.members.length).map((b) => {
    const o = { role: b.role, members: [...new Set(b.members)].sort() };
    if (b.condition) o.condition = b.condition;
    return o;
  });
}

/** GET/PUT b/BUCKET/iam[/testPermissions]. segs = ['b', bucket, 'iam', ...]. */
async function handleBucketIam(req, res, ctx, bucket, segs, q) {
  if (!ctx.gcs.getBucket(bucket)) { req.resume(); throw new GcsError(404, 'notFound', 'The specified bucket does not exist.'); }
  if (segs.length === 4 && segs[3] === 'testPermissions' && req.method === 'GET') {
    // The caller of the emulator may do everything it asks about.
    const perms = q.getAll('permissions');
    const out = { kind: 'storage#testIamPermissionsResponse' };
    if (perms.length) out.permissions = perms;
    sendJson(res, 200, out); return true;
  }
  if (segs.length !== 3) throw new GcsError(404, 'notFound', 'Not Found');
  if (req.method === 'GET') { req.resume(); sendJson(res, 200, policyJson(bucket, readPolicy(ctx, bucket))); return true; }
  if (req.method === 'PUT') {
    const raw = (await readAll(req, 1 << 20)).toString('utf8');
    let body;
    try { body = raw.trim() ? JSON.parse(raw) : {}; } catch (_) { throw new GcsError(400, 'parseError', 'Parse Error'); }
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new GcsError(400, 'parseError', 'Parse Error');
    const cur = readPolicy(ctx, bucket);
    if (body.etag !== undefined && body.etag !== etagOf(cur._rev || 1)) {
      throw new GcsError(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');
    }
    const next = { version: body.version || 1, bindings: validateBindings(body.bindings), _rev: (cur._rev || 1) + 1 };
    fs.writeFileSync(policyPath(ctx, bucket), JSON.stringify(next));
    sendJson(res, 200, policyJson(bucket, next)); return true;
  }
  throw new GcsError(405, 'methodNotAllowed', 'Method not allowed');
}

/** The permission error an import/export ends with when the service agent lacks the role, else null. */
function checkServiceAgent(ctx, projectId, bucket, purpose) {
  const member = `serviceAccount:${serviceAgent(projectId)}`;
  const p = readPolicy(ctx, bucket);
  const ok = p.bindings.some((b) => ROLES_FOR[purpose].includes(b.role) && !b.condition &&
    (b.members.includes(member) || b.members.includes('allUsers') || b.members.includes('allAuthenticatedUsers')));
  if (ok) return null;
  const perm = purpose === 'import' ? 'storage.objects.list' : 'storage.objects.create';
  return { code: RPC_CODE.PERMISSION_DENIED,
    message: `Permission denied: ${serviceAgent(projectId)} does not have ${perm} access to the Google Cloud Storage bucket gs://${bucket}. ` +
      `Grant the Cloud Healthcare Service Agent ${NEEDED[purpose]} on the bucket.` };
}

/** GET /resourcemanager/v1/projects/PROJECT. Returns handled?. */
function handleResourceManager(req, res, url) {
  const m = /^\/resourcemanager\/v1\/projects\/([^/:]+)$/.exec(url.pathname);
  if (!m) return false;
  req.resume();
  if (req.method !== 'GET') throw new ApiError('INVALID_ARGUMENT', 'Method not allowed.', undefined, 405);
  let id;
  try { id = decodeURIComponent(m[1]); } catch (_) { id = m[1]; }
  if (!/^[a-z][a-z0-9.:-]{0,99}$/.test(id)) {
    throw new ApiError('PERMISSION_DENIED', 'The caller does not have permission');
  }
  sendJson(res, 200, { projectNumber: projectNumber(id), projectId: id, lifecycleState: 'ACTIVE', name: id,
    createTime: '2024-01-01T00:00:00.000Z' });
  return true;
}

module.exports = { projectNumber, serviceAgent, onBucketCreated, readPolicy, handleBucketIam, checkServiceAgent,
  handleResourceManager, ROLES_FOR, NEEDED, PERMISSIONS, etagOf };
