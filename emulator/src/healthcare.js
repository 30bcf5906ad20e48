'use strict';
// Cloud Healthcare API v1 / v1beta1: datasets, dicomStores, dicomStores.import/export (LROs)
// and dataset operations. Resource names follow D-hc; ids and counters follow proto3 JSON.
const fs = require('fs');
const { ApiError, invalid, notFound, alreadyExists, badRequestDetail, sendJson, RPC_CODE } = require('./errors');
const { readJson } = require('./body');
const { validate, pick } = require('./validate');
const { parseGsUri, validatePattern, literalPrefix, matcher } = require('./wildcard');
const { pageSizeOf, offsetOf } = require('./operations');
const { inspectFile } = require('./dicom');
const transcode = require('./transcode');
const bigquery = require('./bigquery');
const { sleep } = require('./ids');
const { fileHash } = require('./dicomweb');

const DATASET_ID_RE = /^[\p{L}\p{N}_\-.]{1,256}$/u;
const LABEL_KEY_RE = /^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}$/u;
const LABEL_VAL_RE = /^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$/u;

const S = {
  dataset: { name: 'string', timeZone: 'string' },
  dicomStore: {
    name: 'string', labels: 'map<string>',
    notificationConfig: { message: 'google.cloud.healthcare.v1.NotificationConfig', fields: { pubsubTopic: 'string', sendForBulkImport: 'bool' } },
    streamConfigs: ['repeated', { fields: { bigqueryDestination: { fields: { tableUri: 'string', force: 'bool', writeDisposition: 'string' } } } }],
  },
  importReq: {
    gcsSource: { message: 'google.cloud.healthcare.v1.dicom.GcsSource', fields: { uri: 'string' } },
    blobStorageSettings: { message: 'google.cloud.healthcare.v1.BlobStorageSettings', fields: { blobStorageClass: 'string' } },
  },
  exportReq: (v) => Object.assign({
    gcsDestination: { message: 'google.cloud.healthcare.v1.dicom.GcsDestination', fields: { uriPrefix: 'string', mimeType: 'string' } },
    bigqueryDestination: { message: 'google.cloud.healthcare.v1.dicom.BigQueryDestination', fields: { tableUri: 'string', force: 'bool', writeDisposition: 'string' } },
  }, v === 'v1beta1' ? { filterConfig: { message: 'google.cloud.healthcare.v1beta1.dicom.DicomFilterConfig', fields: { resourcePathsGcsUri: 'string' } } } : {}),
};

const TYPE = (v, t) => `type.googleapis.com/google.cloud.healthcare.${v}.${t}`;
const BLOB_CLASSES = ['BLOB_STORAGE_CLASS_UNSPECIFIED', 'STANDARD', 'NEARLINE', 'COLDLINE', 'ARCHIVE'];

class Healthcare {
  constructor(ctx) {
    this.ctx = ctx;
    this.datasets = new Map(); // name -> {name, timeZone}
    this.stores = new Map(); // name -> {name, labels, notificationConfig, instances: Map}
  }
  reset() { this.datasets.clear(); this.stores.clear(); }

  toState() {
    return {
      datasets: [...this.datasets.values()],
      stores: [...this.stores.values()].map((s) => Object.assign({}, s, { instances: [...s.instances.values()] })),
    };
  }
  fromState(st) {
    for (const d of st.datasets || []) this.datasets.set(d.name, d);
    for (const s of st.stores || []) this.stores.set(s.name, Object.assign({}, s, { instances: new Map((s.instances || []).map((i) => [i.sopUid, i])) }));
  }

  storeJson(s) {
    const o = { name: s.name };
    if (s.labels && Object.keys(s.labels).length) o.labels = s.labels;
    if (s.notificationConfig) o.notificationConfig = s.notificationConfig;
    if (s.streamConfigs) o.streamConfigs = s.streamConfigs;
    return o;
  }
  datasetJson(d) { const o = { name: d.name }; if (d.timeZone) o.timeZone = d.timeZone; return o; }

  needDataset(name) {
    const d = this.datasets.get(name);
    if (!d) throw notFound(`Dataset not found: ${name}`);
    return d;
  }
  needStore(name) {
    const s = this.stores.get(name);
    if (!s) throw notFound(`DICOM store not found: ${name}`);
    return s;
  }
}

function checkLabels(labels) {
  if (!labels) return;
  const keys = Object.keys(labels);
  if (keys.length > 64) throw invalid('A DICOM store can have at most 64 labels.');
  for (const k of keys) {
    if (!LABEL_KEY_RE.test(k)) throw invalid(`Invalid label key "${k}": keys must start with a lowercase letter and hold at most 63 lowercase letters, digits, underscores or dashes.`);
    if (!LABEL_VAL_RE.test(labels[k])) throw invalid(`Invalid label value "${labels[k]}" for key "${k}": at most 63 lowercase letters, digits, underscores or dashes.`);
  }
}

function missingField(field, what) {
  return invalid(`${what || field} is required.`, [badRequestDetail([{ field, description: `${what || field} is required.` }])]);
}

function listPage(items, q, def = 100) {
  const size = pageSizeOf(q.get('pageSize'), def, 1000);
  const start = offsetOf(q.get('pageToken'));
  const page = items.slice(start, start + size);
  const next = start + size < items.length ? Buffer.from(String(start + size)).toString('base64url') : null;
  return { page, next };
}

// Label filter for dicomStores.list: labels.k="v", labels.k:* joined by AND.
function storeFilter(f) {
  if (!f) return () => true;
  const preds = f.split(/\s+AND\s+/).map((t) => {
    let m = /^\s*labels\.([\w-]+)\s*=\s*"?([^"]*)"?\s*$/.exec(t);
    if (m) return (s) => s.labels && s.labels[m[1]] === m[2];
    m = /^\s*labels\.([\w-]+)\s*:\s*\*\s*$/.exec(t);
    if (m) return (s) => s.labels && m[1] in s.labels;
    throw invalid(`Invalid filter: ${f}`);
  });
  return (s) => preds.every((p) => p(s));
}

function logsUrlFor(req, ctx) {
  // Where the per-file failures of an operation can be read: GET on this URL answers like
  // POST /v2/entries:list with the filter below (see README "Operation logsUrl").
  return (opName) => {
    const project = opName.split('/')[1];
    const filter = `resource.type="healthcare_dicom_store" AND operation.id="${opName}"`;
    return `http://${req.headers.host}/_emulator/logs?resourceName=${encodeURIComponent('projects/' + project)}&filter=${encodeURIComponent(filter)}`;
  };
}

// Cloud Logging is written asynchronously: entries show up after the operation is done
// (api.md §3-4, seed; npm-hc v1beta1 text). Failures are held per operation and written
// --log-delay-ms (default 1500) after it finishes; see finish() below.
const pendingLogs = new WeakMap();
const DEFAULT_LOG_DELAY_MS = 1500;

function logFailure(ctx, op, storeName, kind, payload) {
  const [, project, , location, , dataset, , store] = storeName.split('/');
  const entry = {
    logName: `projects/${project}/logs/healthcare.googleapis.com%2F${kind}_dicom`,
    resource: { type: 'healthcare_dicom_store', labels: { project_id: project, location, dataset_id: dataset, dicom_store_id: store } },
    timestamp: new Date().toISOString(),
    severity: 'ERROR',
    operation: { id: op.name, producer: `healthcare.googleapis.com/${kind === 'import' ? 'ImportDicomData' : 'ExportDicomData'}` },
    jsonPayload: Object.assign({ '@type': `type.googleapis.com/google.cloud.healthcare.logging.${kind === 'import' ? 'Import' : 'Export'}DicomLogEntry` }, payload),
  };
  if (!pendingLogs.has(op)) pendingLogs.set(op, []);
  pendingLogs.get(op).push(entry);
}

/** Finish an import/export, and write its log entries logDelayMs later (dropped if the emulator was reset meanwhile). */
function finish(ctx, op, result) {
  ctx.ops.finish(op, result);
  const entries = pendingLogs.get(op);
  pendingLogs.delete(op);
  if (!entries || !entries.length) return;
  const delay = ctx.opts.logDelayMs === undefined ? DEFAULT_LOG_DELAY_MS : ctx.opts.logDelayMs;
  const write = () => { if (ctx.ops.get(op.name) === op) for (const e of entries) ctx.logs.add(e); };
  if (delay > 0) setTimeout(write, delay).unref(); else write();
}

// ---- import ----
// Imports and exports keep their parameters and progress in `op.job` (persisted with the
// operation), so that a restarted emulator resumes them: the files already counted
// (success + failure, in listing order) are not processed again.
async function runImport(ctx, op, storeName, bucket, pattern) {
  op.job = op.job || { kind: 'import', storeName, bucket, pattern, samples: [] };
  const start = op.counter.success + op.counter.failure;
  const hc = ctx.hc; const ops = ctx.ops;
  const delay = ctx.opts.opDelayMs;
  const uriOf = (n) => `gs://${bucket}/${n}`;
  await sleep(delay);
  if (!ctx.gcs.getBucket(bucket)) {
    finish(ctx, op, { error: { code: RPC_CODE.NOT_FOUND, message: `Cloud Storage bucket not found: gs://${bucket}` } });
    return;
  }
  const denied = require('./iam').checkServiceAgent(ctx, storeName.split('/')[1], bucket, 'import');
  if (denied) { finish(ctx, op, { error: denied }); return; }
  const match = matcher(pattern); const prefix = literalPrefix(pattern);
  const names = ctx.gcs.names(bucket).filter((n) => n.startsWith(prefix) && match(n));
  if (!names.length) {
    finish(ctx, op, { error: { code: RPC_CODE.NOT_FOUND, message: `No files found matching gs://${bucket}/${pattern}` } });
    return;
  }
  op.counter.pending = Math.max(0, names.length - start); ctx.persist();
  const samples = op.job.samples;
  for (const name of names.slice(start)) {
    if (op.cancelRequested) break;
    await sleep(delay);
    if (op.cancelRequested) break;
    const store = hc.stores.get(storeName);
    if (!store) { finish(ctx, op, { error: { code: RPC_CODE.NOT_FOUND, message: `DICOM store ${storeName} was deleted during the import.` } }); return; }
    const obj = ctx.gcs.getObject(bucket, name);
    try {
      if (!obj) throw Object.assign(new Error(`object ${uriOf(name)} disappeared during the import`), { code: RPC_CODE.NOT_FOUND });
      const info = inspectFile(ctx.gcs.dataPath(bucket, name));
      const old = store.instances.get(info.sopUid);
      // Same UIDs, other bytes: Google fails the file (text seen in
      // GoogleCloudPlatform/nodejs-docs-samples#3502; its error code is [U]); same bytes succeed.
      if (old && (old.size !== info.size || fileHash(old.file) !== fileHash(ctx.gcs.dataPath(bucket, name)))) {
        throw Object.assign(new Error('An instance already exists in this DICOM Store with the same Study/Series/SOPInstance UID, but the DICOM files differ (checksum mismatch).'), { code: RPC_CODE.ALREADY_EXISTS });
      }
      if (!old) ctx.instances.add(store, info, ctx.gcs.dataPath(bucket, name));
      op.counter.success++;
    } catch (e) {
      op.counter.failure++;
      const error = { code: typeof e.code === 'number' ? e.code : RPC_CODE.INVALID_ARGUMENT, message: e.message };
      if (samples.length < 10) samples.push({ resource: uriOf(name), error });
      logFailure(ctx, op, storeName, 'import', { source: uriOf(name), error });
    }
    op.counter.pending--;
    ctx.persist();
  }
  finishTransfer(ctx, op, names.length, samples, 'Import', op.version);
}

function finishTransfer(ctx, op, total, samples, kind, version) {
  if (op.cancelRequested) {
    finish(ctx, op, { error: { code: RPC_CODE.CANCELLED, message: 'Operation was cancelled.' } });
  } else if (op.counter.failure) {
    finish(ctx, op, { error: {
      code: RPC_CODE.INVALID_ARGUMENT,
      message: `${kind} failed for ${op.counter.failure} of ${total} ${kind === 'Import' ? 'files' : 'instances'}; the errors are logged to Cloud Logging (see metadata.logsUrl).`,
      details: [{ '@type': TYPE(version, `dicom.${kind}DicomDataErrorDetails`), sampleErrors: samples }],
    } });
  } else {
    finish(ctx, op, { response: { '@type': TYPE(version, `dicom.${kind}DicomDataResponse`) } });
  }
}

// ---- export ----
// Resource paths of a v1beta1 filterConfig file: /studies/X[/series/Y[/instances/Z]], one a line.
const FILTER_PATH_RE = /^\/studies\/([^/]+)(?:\/series\/([^/]+)(?:\/instances\/([^/]+))?)?\/?$/;

// dest: {kind: 'gcs', bucket, dir, plan} | {kind: 'bq', table: bigquery.parseDestination(...)}
async function runExport(ctx, op, storeName, dest, filterUri) {
  op.job = op.job || { kind: 'export', storeName, dest: Object.assign({}, dest, { plan: undefined }), filterUri, samples: [] };
  const start = op.counter.success + op.counter.failure;
  const ops = ctx.ops; const delay = ctx.opts.opDelayMs;
  const bucket = dest.bucket;
  await sleep(delay);
  if (dest.kind === 'gcs') {
    if (!ctx.gcs.getBucket(bucket)) {
      finish(ctx, op, { error: { code: RPC_CODE.NOT_FOUND, message: `Cloud Storage bucket not found: gs://${bucket}` } });
      return;
    }
    const denied = require('./iam').checkServiceAgent(ctx, storeName.split('/')[1], bucket, 'export');
    if (denied) { finish(ctx, op, { error: denied }); return; }
  }
  const store = ctx.hc.stores.get(storeName);
  if (!store) { finish(ctx, op, { error: { code: RPC_CODE.NOT_FOUND, message: `DICOM store not found: ${storeName}` } }); return; }
  let list = [...store.instances.values()].sort((a, b) => (a.studyUid + '/' + a.seriesUid + '/' + a.sopUid < b.studyUid + '/' + b.seriesUid + '/' + b.sopUid ? -1 : 1));
  const samples = op.job.samples;
  const fail = (resourceName, error) => {
    op.counter.failure++;
    if (samples.length < 10) samples.push({ resource: resourceName, error });
    logFailure(ctx, op, storeName, 'export', { resourceName, error });
  };
  let badPaths = [];
  if (filterUri) {
    const f = parseGsUri(filterUri);
    const obj = !f.error && ctx.gcs.getObject(f.bucket, f.object);
    if (!obj) { finish(ctx, op, { error: { code: RPC_CODE.NOT_FOUND, message: `Filter file not found: ${filterUri}` } }); return; }
    const paths = fs.readFileSync(ctx.gcs.dataPath(f.bucket, f.object), 'utf8').split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
    const chosen = new Set();
    for (const p of paths) {
      const m = FILTER_PATH_RE.exec(p);
      const hits = m ? list.filter((i) => m[1] === i.studyUid && (!m[2] || m[2] === i.seriesUid) && (!m[3] || m[3] === i.sopUid)) : [];
      if (!m) badPaths.push({ path: p, error: { code: RPC_CODE.INVALID_ARGUMENT, message: `invalid resource path "${p}" in ${filterUri}: expected /studies/{uid}[/series/{uid}[/instances/{uid}]]` } });
      else if (!hits.length) badPaths.push({ path: p, error: { code: RPC_CODE.NOT_FOUND, message: `resource ${p} listed in ${filterUri} was not found in the DICOM store` } });
      for (const i of hits) chosen.add(i);
    }
    list = list.filter((i) => chosen.has(i));
  }
  const total = list.length + badPaths.length;
  op.counter.pending = Math.max(0, total - start); ctx.persist();
  if (start) { // resumed: the bad paths were counted first, then `start - badPaths.length` instances
    list = list.slice(Math.max(0, start - badPaths.length)); badPaths = badPaths.slice(start);
  }
  for (const b of badPaths) {
    fail(`${storeName}/dicomWeb/${b.path.replace(/^\/+|\/+$/g, '')}`, b.error);
    op.counter.pending--;
  }
  let table = null;
  if (dest.kind === 'bq') {
    // a resumed export appends to the rows it wrote before the restart
    const tdest = start ? Object.assign({}, dest.table, { disposition: 'WRITE_APPEND' }) : dest.table;
    try { table = bigquery.openTable(ctx.opts.dataDir, tdest); } catch (e) {
      finish(ctx, op, { error: { code: typeof e.code === 'number' ? e.code : RPC_CODE.INTERNAL, message: e.message } });
      return;
    }
  }
  for (const inst of list) {
    if (op.cancelRequested) break;
    await sleep(delay);
    if (op.cancelRequested) break;
    const resourceName = `${storeName}/dicomWeb/studies/${inst.studyUid}/series/${inst.seriesUid}/instances/${inst.sopUid}`;
    let outs = [];
    try {
      if (dest.kind === 'bq') {
        table.append(await bigquery.rowFor(inst));
      } else {
        if (!ctx.gcs.getBucket(bucket)) throw Object.assign(new Error(`Cloud Storage bucket not found: gs://${bucket}`), { code: RPC_CODE.NOT_FOUND });
        outs = await dest.plan.produce(inst, ctx.gcs.tmp);
        for (const o of outs) {
          await ctx.gcs.putFile(bucket, `${dest.dir}${inst.studyUid}/${inst.seriesUid}/${inst.sopUid}${o.suffix}`, o.path, o.contentType);
        }
      }
      op.counter.success++;
    } catch (e) {
      fail(resourceName, { code: typeof e.code === 'number' ? e.code : RPC_CODE.INTERNAL, message: e.message });
    } finally {
      for (const o of outs) if (o.temp) fs.rm(o.path, { force: true }, () => {});
    }
    op.counter.pending--;
    ctx.persist();
  }
  finishTransfer(ctx, op, total, samples, 'Export', op.version);
}

// Google caps concurrent long-running operations per project (api.md §7; value and error [U]).
// Running imports/exports of the project count; over the cap -> 429 RESOURCE_EXHAUSTED.
const DEFAULT_MAX_CONCURRENT_OPS = 100;
function checkOpLimit(ctx, project) {
  const max = ctx.opts.maxConcurrentOperations === undefined ? DEFAULT_MAX_CONCURRENT_OPS : ctx.opts.maxConcurrentOperations;
  const running = ctx.ops.running(project);
  if (running < max) return;
  const metric = 'healthcare.googleapis.com/dicom_store_lro_ops';
  throw new ApiError('RESOURCE_EXHAUSTED',
    `Quota exceeded for quota metric 'Concurrent long-running operations' and limit 'Concurrent long-running operations per project per region' of service 'healthcare.googleapis.com' for consumer 'project:${project}': ${running} operations are running, the limit is ${max}.`,
    [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'RATE_LIMIT_EXCEEDED', domain: 'googleapis.com',
      metadata: { service: 'healthcare.googleapis.com', consumer: `projects/${project}`, quota_metric: metric, quota_limit: 'ConcurrentLROsPerProjectPerRegion', quota_limit_value: String(max) } }]);
}

/** Go on with an import or export that was running when the emulator stopped (see runImport). */
function resume(ctx, op) {
  const j = op.job;
  if (j.kind === 'import') { background(ctx, op, runImport(ctx, op, j.storeName, j.bucket, j.pattern)); return; }
  const dest = j.dest.kind === 'gcs' ? Object.assign({}, j.dest, { plan: transcode.plan(j.dest.mimeType) }) : j.dest;
  background(ctx, op, runExport(ctx, op, j.storeName, dest, j.filterUri));
}

function background(ctx, op, p) {
  p.catch((e) => { finish(ctx, op, { error: { code: RPC_CODE.INTERNAL, message: 'Internal error: ' + e.message } }); });
}

// ---- router ----
const SEG = '([^/:]+)';
const ROUTES = [
  ['datasets', new RegExp(`^projects/${SEG}/locations/${SEG}/datasets$`)],
  ['dataset', new RegExp(`^projects/${SEG}/locations/${SEG}/datasets/${SEG}$`)],
  ['stores', new RegExp(`^projects/${SEG}/locations/${SEG}/datasets/${SEG}/dicomStores$`)],
  ['store', new RegExp(`^projects/${SEG}/locations/${SEG}/datasets/${SEG}/dicomStores/${SEG}$`)],
  ['storeVerb', new RegExp(`^projects/${SEG}/locations/${SEG}/datasets/${SEG}/dicomStores/${SEG}:(\\w+)$`)],
  ['dicomWeb', new RegExp(`^projects/${SEG}/locations/${SEG}/datasets/${SEG}/dicomStores/${SEG}/dicomWeb(/.*)?$`)],
  ['operations', new RegExp(`^projects/${SEG}/locations/${SEG}/datasets/${SEG}/operations$`)],
  ['operation', new RegExp(`^projects/${SEG}/locations/${SEG}/datasets/${SEG}/operations/${SEG}$`)],
  ['operationVerb', new RegExp(`^projects/${SEG}/locations/${SEG}/datasets/${SEG}/operations/${SEG}:(\\w+)$`)],
];

// Query parameters each method declares (discovery), besides Google's standard ones. Others get
// Google's front-end answer: 400 'Invalid JSON payload received. Unknown name "foo": Cannot bind
// query parameter. Field 'foo' could not be found in request message.' snake_case names are
// accepted and read as their lowerCamel form, as Google does.
const STANDARD_QUERY = new Set(['$.xgafv', 'access_token', 'alt', 'callback', 'fields', 'key', 'oauth_token', 'prettyPrint', 'quotaUser', 'upload_protocol', 'uploadType']);
const QUERY = {
  datasets: { POST: ['datasetId'], GET: ['pageSize', 'pageToken'] },
  dataset: { PATCH: ['updateMask'] },
  stores: { POST: ['dicomStoreId'], GET: ['pageSize', 'pageToken', 'filter'] },
  store: { PATCH: ['updateMask'] },
  operations: { GET: ['filter', 'pageSize', 'pageToken'] },
};
function checkQuery(route, method, q) {
  const allowed = (QUERY[route] && QUERY[route][method]) || [];
  for (const k of [...q.keys()]) {
    if (STANDARD_QUERY.has(k)) continue;
    const camel = k.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
    if (allowed.includes(camel)) { if (camel !== k && !q.has(camel)) q.set(camel, q.get(k)); continue; }
    const msg = `Invalid JSON payload received. Unknown name "${k}": Cannot bind query parameter. Field '${k}' could not be found in request message.`;
    throw invalid(msg, [badRequestDetail([{ description: msg }])]);
  }
}

function methodNotAllowed() { return new ApiError('NOT_FOUND', 'Method not found.', undefined, 404); }

async function handle(req, res, url, ctx) {
  const m = /^\/(v1|v1beta1)\/(.*)$/.exec(url.pathname);
  if (!m) return false;
  const version = m[1];
  let rest;
  try { rest = m[2].split('/').map(decodeURIComponent).join('/'); } catch (_) { throw invalid('Invalid resource name encoding.'); }
  let route = null; let g = null;
  for (const [k, re] of ROUTES) { const x = re.exec(rest); if (x) { route = k; g = x; break; } }
  if (!route) return false;
  const hc = ctx.hc; const q = url.searchParams; const method = req.method;
  if (route !== 'dicomWeb') checkQuery(route, method, q);
  const parent = `projects/${g[1]}/locations/${g[2]}`;
  const dsName = g[3] !== undefined ? `${parent}/datasets/${g[3]}` : null;
  // ids inside resource names follow the create-time rules (a bad one can never exist)
  if (g[3] !== undefined && !DATASET_ID_RE.test(g[3])) throw invalid(`Invalid resource name: dataset ID "${g[3]}" must match [\\p{L}\\p{N}_\\-\\.]{1,256}.`);
  if (/^(store|storeVerb|dicomWeb)$/.test(route) && g[4].length > 256) throw invalid(`Invalid resource name: DICOM store ID "${g[4].slice(0, 40)}…" is longer than 256 characters.`);
  if (/^operation(Verb)?$/.test(route) && !/^\d{1,20}$/.test(g[4])) throw notFound(`Operation ${parent}/datasets/${g[3]}/operations/${g[4]} not found.`);

  switch (route) {
    case 'datasets': {
      if (method === 'POST') {
        const body = await readJson(req);
        validate(S.dataset, body);
        const id = q.get('datasetId');
        if (!id) throw missingField('dataset_id', 'datasetId');
        if (!DATASET_ID_RE.test(id)) throw invalid(`Invalid dataset ID "${id}": it must match [\\p{L}\\p{N}_\\-\\.]{1,256}.`);
        const name = `${parent}/datasets/${id}`;
        if (hc.datasets.has(name)) throw alreadyExists(`Dataset ${name} already exists.`);
        const tz = pick(body, 'timeZone');
        const d = { name }; if (tz) d.timeZone = tz;
        hc.datasets.set(name, d);
        const op = ctx.ops.create(name, `google.cloud.healthcare.${version}.dataset.DatasetService.CreateDataset`, { version });
        sendJson(res, 200, ctx.ops.json(op));
        setTimeout(() => { ctx.ops.finish(op, { response: Object.assign({ '@type': TYPE(version, 'dataset.Dataset') }, hc.datasetJson(d)) }); }, ctx.opts.opDelayMs);
        ctx.persist();
        return true;
      }
      if (method === 'GET') {
        const all = [...hc.datasets.values()].filter((d) => d.name.startsWith(parent + '/'));
        const { page, next } = listPage(all, q);
        const out = {};
        if (page.length) out.datasets = page.map((d) => hc.datasetJson(d));
        if (next) out.nextPageToken = next;
        sendJson(res, 200, out); return true;
      }
      throw methodNotAllowed();
    }
    case 'dataset': {
      const d = hc.needDataset(dsName);
      if (method === 'GET') { sendJson(res, 200, hc.datasetJson(d)); return true; }
      if (method === 'DELETE') {
        for (const [n, s] of hc.stores) if (n.startsWith(dsName + '/')) { ctx.instances.removeStore(s); hc.stores.delete(n); }
        hc.datasets.delete(dsName);
        ctx.ops.deleteDataset(dsName);
        ctx.persist();
        sendJson(res, 200, {}); return true;
      }
      if (method === 'PATCH') {
        const body = await readJson(req); validate(S.dataset, body);
        const mask = q.get('updateMask');
        if (!mask) throw missingField('update_mask', 'updateMask');
        for (const f of mask.split(',')) {
          if (f === 'timeZone' || f === 'time_zone') { const tz = pick(body, 'timeZone'); if (tz) d.timeZone = tz; else delete d.timeZone; }
          else throw invalid(`Invalid update mask path: "${f}".`);
        }
        ctx.persist();
        sendJson(res, 200, hc.datasetJson(d)); return true;
      }
      throw methodNotAllowed();
    }
    case 'stores': {
      hc.needDataset(dsName);
      if (method === 'POST') {
        const body = await readJson(req); validate(S.dicomStore, body);
        const id = q.get('dicomStoreId');
        if (!id) throw missingField('dicom_store_id', 'dicomStoreId');
        if (id.length > 256 || !DATASET_ID_RE.test(id)) throw invalid(`Invalid DICOM store ID "${id}": it must match [\\p{L}\\p{N}_\\-\\.]{1,256}.`);
        const name = `${dsName}/dicomStores/${id}`;
        if (hc.stores.has(name)) throw alreadyExists(`DICOM store ${name} already exists.`);
        checkLabels(body.labels);
        const s = { name, labels: body.labels || {}, instances: new Map() };
        const nc = pick(body, 'notificationConfig'); if (nc) s.notificationConfig = nc;
        const sc = pick(body, 'streamConfigs'); if (sc) s.streamConfigs = sc;
        hc.stores.set(name, s);
        ctx.persist();
        sendJson(res, 200, hc.storeJson(s)); return true;
      }
      if (method === 'GET') {
        const pred = storeFilter(q.get('filter'));
        const all = [...hc.stores.values()].filter((s) => s.name.startsWith(dsName + '/') && pred(s));
        const { page, next } = listPage(all, q);
        const out = {};
        if (page.length) out.dicomStores = page.map((s) => hc.storeJson(s));
        if (next) out.nextPageToken = next;
        sendJson(res, 200, out); return true;
      }
      throw methodNotAllowed();
    }
    case 'store': {
      const name = `${dsName}/dicomStores/${g[4]}`;
      const s = hc.needStore(name);
      if (method === 'GET') { sendJson(res, 200, hc.storeJson(s)); return true; }
      if (method === 'DELETE') { ctx.instances.removeStore(s); hc.stores.delete(name); ctx.persist(); sendJson(res, 200, {}); return true; }
      if (method === 'PATCH') {
        const body = await readJson(req); validate(S.dicomStore, body);
        const mask = q.get('updateMask');
        if (!mask) throw missingField('update_mask', 'updateMask');
        for (const f of mask.split(',')) {
          if (f === 'labels') { checkLabels(body.labels); s.labels = body.labels || {}; }
          else if (f === 'notificationConfig' || f === 'notification_config') { const nc = pick(body, 'notificationConfig'); if (nc) s.notificationConfig = nc; else delete s.notificationConfig; }
          else throw invalid(`Invalid update mask path: "${f}".`);
        }
        ctx.persist();
        sendJson(res, 200, hc.storeJson(s)); return true;
      }
      throw methodNotAllowed();
    }
    case 'storeVerb': {
      const name = `${dsName}/dicomStores/${g[4]}`;
      const verb = g[5];
      if (method !== 'POST' || (verb !== 'import' && verb !== 'export')) throw methodNotAllowed();
      const body = await readJson(req);
      hc.needStore(name);
      if (verb === 'import') {
        validate(S.importReq, body);
        const src = pick(body, 'gcsSource');
        if (!src) throw missingField('gcs_source', 'gcsSource');
        const uri = pick(src, 'uri');
        if (!uri) throw missingField('gcs_source.uri', 'gcsSource.uri');
        const bss = pick(body, 'blobStorageSettings');
        const cls = bss && pick(bss, 'blobStorageClass');
        if (cls && !BLOB_CLASSES.includes(cls)) throw invalid(`Invalid value at 'blob_storage_settings.blob_storage_class' (type.googleapis.com/google.cloud.healthcare.${version}.BlobStorageClass), "${cls}"`, [badRequestDetail([{ field: 'blob_storage_settings.blob_storage_class', description: `Invalid value at 'blob_storage_settings.blob_storage_class' (type.googleapis.com/google.cloud.healthcare.${version}.BlobStorageClass), "${cls}"` }])]);
        const p = parseGsUri(uri);
        if (p.error) throw invalid(`Invalid gcsSource.uri "${uri}": ${p.error}; expected gs://{bucket_id}/{object_id}.`);
        const why = validatePattern(p.object);
        if (why) throw invalid(`Invalid gcsSource.uri "${uri}": ${why}.`);
        checkOpLimit(ctx, g[1]);
        const op = ctx.ops.create(dsName, `google.cloud.healthcare.${version}.dicom.DicomService.ImportDicomData`, { version, counter: true, logsUrl: logsUrlFor(req, ctx) });
        sendJson(res, 200, ctx.ops.json(op));
        background(ctx, op, runImport(ctx, op, name, p.bucket, p.object));
        return true;
      }
      validate(S.exportReq(version), body);
      const dst = pick(body, 'gcsDestination'); const bq = pick(body, 'bigqueryDestination');
      if (dst && bq) throw invalid('Only one of gcsDestination and bigqueryDestination may be set.');
      if (!dst && !bq) throw missingField('destination', 'gcsDestination or bigqueryDestination');
      const fc = pick(body, 'filterConfig');
      const filterUri = fc && pick(fc, 'resourcePathsGcsUri');
      if (filterUri && parseGsUri(filterUri).error) throw invalid(`Invalid filterConfig.resourcePathsGcsUri "${filterUri}": expected gs://{bucket_id}/{object_id}.`);
      if (bq) {
        const table = bigquery.parseDestination(bq, g[1]);
        checkOpLimit(ctx, g[1]);
        const op = ctx.ops.create(dsName, `google.cloud.healthcare.${version}.dicom.DicomService.ExportDicomData`, { version, counter: true, logsUrl: logsUrlFor(req, ctx) });
        sendJson(res, 200, ctx.ops.json(op));
        background(ctx, op, runExport(ctx, op, name, { kind: 'bq', table }, filterUri));
        return true;
      }
      const prefix = pick(dst, 'uriPrefix');
      if (!prefix) throw missingField('gcs_destination.uri_prefix', 'gcsDestination.uriPrefix');
      const pm = /^gs:\/\/([^/]+)(?:\/(.*))?$/.exec(prefix);
      if (!pm || !parseGsUri(`gs://${pm[1]}/x`).bucket) throw invalid(`Invalid gcsDestination.uriPrefix "${prefix}": expected gs://{bucket_id}[/{path}].`);
      if (/[*?]/.test(pm[2] || '')) throw invalid(`Invalid gcsDestination.uriPrefix "${prefix}": wildcards are not allowed.`);
      let dir = pm[2] || '';
      if (dir && !dir.endsWith('/')) dir += '/';
      const plan = transcode.plan(pick(dst, 'mimeType'));
      checkOpLimit(ctx, g[1]);
      const op = ctx.ops.create(dsName, `google.cloud.healthcare.${version}.dicom.DicomService.ExportDicomData`, { version, counter: true, logsUrl: logsUrlFor(req, ctx) });
      sendJson(res, 200, ctx.ops.json(op));
      background(ctx, op, runExport(ctx, op, name, { kind: 'gcs', bucket: pm[1], dir, plan, mimeType: pick(dst, 'mimeType') }, filterUri));
      return true;
    }
    case 'dicomWeb': {
      const storeName = `${dsName}/dicomStores/${g[4]}`;
      const store = hc.needStore(storeName);
      await require('./dicomweb').handle(req, res, url, ctx, { store, storeName, dsName, version, sub: g[5] });
      return true;
    }
    case 'operations': {
      hc.needDataset(dsName);
      if (method !== 'GET') throw methodNotAllowed();
      sendJson(res, 200, ctx.ops.list(dsName, { filter: q.get('filter'), pageSize: q.get('pageSize'), pageToken: q.get('pageToken') }));
      return true;
    }
    case 'operation': {
      if (method !== 'GET') throw methodNotAllowed();
      hc.needDataset(dsName);
      const op = ctx.ops.get(`${dsName}/operations/${g[4]}`);
      if (!op) throw notFound(`Operation ${dsName}/operations/${g[4]} not found.`);
      sendJson(res, 200, ctx.ops.json(op)); return true;
    }
    case 'operationVerb': {
      if (method !== 'POST' || g[5] !== 'cancel') throw methodNotAllowed();
      const body = await readJson(req); validate({}, body);
      hc.needDataset(dsName);
      ctx.ops.cancel(`${dsName}/operations/${g[4]}`);
      sendJson(res, 200, {}); return true;
    }
    default: return false;
  }
}

module.exports = { Healthcare, handle, resume, DATASET_ID_RE };
