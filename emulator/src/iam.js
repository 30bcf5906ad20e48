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
const { readAll, readJson } = require('./body');
const { validate } = require('./validate');

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
  // _project: the bucket's project, whose policy the bucket inherits
  return { version: 1, bindings, _rev: 1, _project: projectId };
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
    const next = { version: body.version || 1, bindings: validateBindings(body.bindings), _rev: (cur._rev || 1) + 1, _project: cur._project };
    fs.writeFileSync(policyPath(ctx, bucket), JSON.stringify(next));
    sendJson(res, 200, policyJson(bucket, next)); return true;
  }
  throw new GcsError(405, 'methodNotAllowed', 'Method not allowed');
}

// What an import reads and an export writes, as permissions. Google documents the roles
// (objectViewer for import, objectAdmin for export); the permissions it actually tests are not
// published [U]: import = get + list, export = create + delete (an export overwrites objects).
const NEEDED_PERMISSIONS = {
  import: ['storage.objects.get', 'storage.objects.list'],
  export: ['storage.objects.create', 'storage.objects.delete'],
};
// Legacy bucket roles and project basic roles, per https://cloud.google.com/storage/docs/access-control/iam-roles.
Object.assign(PERMISSIONS, {
  'roles/storage.legacyBucketReader': ['storage.buckets.get', 'storage.objects.list'],
  'roles/storage.legacyBucketWriter': ['storage.buckets.get', 'storage.objects.create', 'storage.objects.delete', 'storage.objects.list'],
  'roles/storage.legacyBucketOwner': ['storage.buckets.get', 'storage.buckets.getIamPolicy', 'storage.buckets.setIamPolicy', 'storage.buckets.update', 'storage.objects.create', 'storage.objects.delete', 'storage.objects.list'],
  'roles/storage.legacyObjectReader': ['storage.objects.get'],
  'roles/storage.legacyObjectOwner': ['storage.objects.get', 'storage.objects.getIamPolicy', 'storage.objects.setIamPolicy', 'storage.objects.update'],
  // Basic project roles: editor/owner carry the storage.objects.* permissions [U: basic roles are
  // documented as broad; the exact storage set is a guess]; viewer carries none of them here.
  'roles/editor': ['storage.objects.create', 'storage.objects.delete', 'storage.objects.get', 'storage.objects.list', 'storage.objects.update'],
  'roles/owner': ['storage.objects.create', 'storage.objects.delete', 'storage.objects.get', 'storage.objects.list', 'storage.objects.update'],
});

// ---- project IAM policies (Resource Manager v1 projects.getIamPolicy / setIamPolicy) ----
function projectPolicyPath(ctx, projectId) {
  const dir = path.join(ctx.opts.dataDir, 'iam', 'projects');
  fs.mkdirSync(dir, { recursive: true });
  return path.join(dir, crypto.createHash('sha256').update(projectId).digest('hex') + '.json');
}

// A new project's policy: the service agent holds its own role (roles/healthcare.serviceAgent,
// which carries no storage.objects permission) and nothing else for storage [U: the real policy
// also names the project's owners].
function readProjectPolicy(ctx, projectId) {
  try { return JSON.parse(fs.readFileSync(projectPolicyPath(ctx, projectId), 'utf8')); } catch (_) {
    return { version: 1, _rev: 1, bindings: [
      { role: 'roles/healthcare.serviceAgent', members: [`serviceAccount:${serviceAgent(projectId)}`] },
    ] };
  }
}

function projectPolicyJson(p) {
  return { version: p.version || 1, etag: etagOf(p._rev || 1), bindings: p.bindings.map((b) => Object.assign({}, b)) };
}

const CONCURRENT = 'There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.';

/** POST /resourcemanager/v1/projects/P:getIamPolicy | :setIamPolicy. */
async function handleProjectIam(req, res, ctx, id, verb) {
  const body = await readJson(req);
  if (verb === 'getIamPolicy') {
    validate({ options: { fields: { requestedPolicyVersion: 'int32' } } }, body);
    sendJson(res, 200, projectPolicyJson(readProjectPolicy(ctx, id))); return;
  }
  validate({ policy: { fields: { version: 'int32', etag: 'string', bindings: ['repeated', { fields: { role: 'string', members: ['repeated', 'string'], condition: { fields: { expression: 'string', title: 'string', description: 'string', location: 'string' } } } }] } }, updateMask: 'string' }, body);
  if (!body.policy) throw new ApiError('INVALID_ARGUMENT', 'Request contains an invalid argument: policy is required.');
  const cur = readProjectPolicy(ctx, id);
  const curTag = etagOf(cur._rev || 1);
  if (body.policy.etag !== undefined && body.policy.etag !== curTag) {
    throw new ApiError('ABORTED', `${CONCURRENT} The request's ETag '${body.policy.etag}' did not match the current policy's ETag '${curTag}'.`);
  }
  let bindings;
  try { bindings = validateBindings(body.policy.bindings); } catch (e) {
    throw new ApiError('INVALID_ARGUMENT', e.message);
  }
  if (bindings.some((b) => b.members.some((m) => m === 'allUsers' || m === 'allAuthenticatedUsers'))) {
    throw new ApiError('INVALID_ARGUMENT', 'Policy members must be of the form "<type>:<value>"; allUsers and allAuthenticatedUsers are not allowed on a project.');
  }
  const next = { version: body.policy.version || 1, bindings, _rev: (cur._rev || 1) + 1 };
  fs.writeFileSync(projectPolicyPath(ctx, id), JSON.stringify(next));
  sendJson(res, 200, projectPolicyJson(next));
}

// Every permission `member` holds on `bucket`: the union of the bucket's policy and its project's
// (IAM policies inherit down the hierarchy: https://cloud.google.com/iam/docs/resource-hierarchy-access-control).
// The bucket's convenience members projectViewer:/projectEditor:/projectOwner:P hold when the member
// has roles/viewer, roles/editor or roles/owner on P.
function permissionsOn(ctx, bucket, bucketProject, member) {
  const proj = readProjectPolicy(ctx, bucketProject).bindings.filter((b) => !b.condition);
  const holds = (b) => b.members.includes(member);
  const basic = new Set(proj.filter(holds).map((b) => b.role));
  const conv = (m) => {
    const c = /^project(Viewer|Editor|Owner):(.+)$/.exec(m);
    return c && c[2] === bucketProject && basic.has(`roles/${c[1].toLowerCase()}`);
  };
  const perms = new Set();
  const add = (role) => { for (const p of PERMISSIONS[role] || []) perms.add(p); };
  for (const b of proj) if (holds(b)) add(b.role);
  for (const b of readPolicy(ctx, bucket).bindings) {
    if (b.condition) continue;
    if (b.members.some((m) => m === member || m === 'allUsers' || m === 'allAuthenticatedUsers' || conv(m))) add(b.role);
  }
  return perms;
}

/** The permission error an import/export ends with when the service agent lacks the role, else null. */
function checkServiceAgent(ctx, projectId, bucket, purpose) {
  const member = `serviceAccount:${serviceAgent(projectId)}`;
  const bucketProject = readPolicy(ctx, bucket)._project || projectId;
  const perms = permissionsOn(ctx, bucket, bucketProject, member);
  const missing = NEEDED_PERMISSIONS[purpose].find((p) => !perms.has(p));
  if (!missing) return null;
  // Text [U]: Google's wording for this failure is not published; it names the agent and the bucket.
  return { code: RPC_CODE.PERMISSION_DENIED,
    message: `Permission denied: ${serviceAgent(projectId)} does not have ${missing} access to the Google Cloud Storage bucket gs://${bucket}. ` +
      `Grant the Cloud Healthcare Service Agent ${NEEDED[purpose]} on the bucket or its project.` };
}

/** GET /resourcemanager/v1/projects/PROJECT, POST …/projects/PROJECT:getIamPolicy|:setIamPolicy. Returns handled?. */
async function handleResourceManager(req, res, url, ctx) {
  const m = /^\/resourcemanager\/v1\/projects\/([^/:]+)(?::(getIamPolicy|setIamPolicy))?$/.exec(url.pathname);
  if (!m) return false;
  let id;
  try { id = decodeURIComponent(m[1]); } catch (_) { id = m[1]; }
  if (!/^[a-z][a-z0-9.:-]{0,99}$/.test(id)) {
    req.resume();
    throw new ApiError('PERMISSION_DENIED', 'The caller does not have permission');
  }
  if (m[2]) {
    if (req.method !== 'POST') { req.resume(); throw new ApiError('NOT_FOUND', 'Method not found.'); }
    await handleProjectIam(req, res, ctx, id, m[2]);
    return true;
  }
  req.resume();
  if (req.method !== 'GET') throw new ApiError('INVALID_ARGUMENT', 'Method not allowed.', undefined, 405);
  sendJson(res, 200, { projectNumber: projectNumber(id), projectId: id, lifecycleState: 'ACTIVE', name: id,
    createTime: '2024-01-01T00:00:00.000Z' });
  return true;
}

module.exports = { projectNumber, serviceAgent, onBucketCreated, readPolicy, handleBucketIam, checkServiceAgent,
  handleResourceManager, ROLES_FOR, NEEDED, NEEDED_PERMISSIONS, PERMISSIONS, etagOf, readProjectPolicy };
