'use strict';
// One HTTP server for everything: admin, auth hooks, faults, then Cloud Storage, Cloud Logging
// and Cloud Healthcare. Errors thrown by handlers become Google-shaped JSON.
const transport = require('./transport');
const fs = require('fs');
const path = require('path');
const { ApiError, GcsError, sendError } = require('./errors');
const { GcsStore } = require('./gcsstore');
const { Healthcare } = require('./healthcare');
const { Operations } = require('./operations');
const { Logs } = require('./logging');
const { Instances } = require('./instances');
const { Faults, apply: applyFault } = require('./faults');
const { Quotas } = require('./quota');
const auth = require('./auth');
const gcs = require('./gcs');
const logging = require('./logging');
const healthcare = require('./healthcare');
const admin = require('./admin');

const VERSION = require('../package.json').version;
const REQUEST_LOG_MAX = 5000;
const SECRET_PARAMS = /^(access_token|key|token|upload_id|client_secret|refresh_token|assertion)$/i;

function scrubPath(url) {
  const q = new URLSearchParams(url.search);
  for (const k of [...q.keys()]) if (SECRET_PARAMS.test(k)) q.set(k, 'REDACTED');
  const s = q.toString();
  return url.pathname + (s ? '?' + s : '');
}

function serviceOf(pathname) {
  if (gcs.normalize(pathname)) return 'storage.googleapis.com';
  if (pathname.startsWith('/v2/')) return 'logging.googleapis.com';
  if (pathname.startsWith('/resourcemanager/v1/')) return 'cloudresourcemanager.googleapis.com';
  if (pathname.startsWith('/v1/') || pathname.startsWith('/v1beta1/')) return 'healthcare.googleapis.com';
  return null;
}

function createEmulator(opts) {
  const dataDir = path.resolve(opts.dataDir);
  fs.mkdirSync(dataDir, { recursive: true });
  const stateFile = path.join(dataDir, 'state.json');
  let persistTimer = null;
  const ctx = {
    opts: Object.assign({ opDelayMs: 20 }, opts, { dataDir }),
    version: VERSION,
    gcs: new GcsStore(dataDir),
    instances: new Instances(dataDir),
    faults: new Faults(),
    quotas: new Quotas(opts.quotas, opts.quotaWindowMs),
    uploads: new Map(), rewrites: new Map(),
    requests: [],
    seq: 0,
    port: () => (server.address() ? server.address().port : null),
    connections: null,
  };
  // A save writes the whole state: 50 ms after a change, or ten times as long as the last save
  // took when that is longer, so saving a large state never takes more than a tenth of the
  // emulator's time (with 2,000 instances stored, saves every 50 ms were 8% of its time per STOW).
  let lastFlushMs = 0;
  const flush = () => {
    persistTimer = null;
    const t0 = performance.now();
    const st = { healthcare: ctx.hc.toState(), operations: ctx.ops.toState(), logs: ctx.logs.entries };
    const tmp = stateFile + '.tmp';
    fs.writeFileSync(tmp, JSON.stringify(st));
    fs.renameSync(tmp, stateFile);
    lastFlushMs = performance.now() - t0;
  };
  // A timed flush after the data dir was removed (tests closing an emulator) is dropped, not thrown.
  const timedFlush = () => { try { flush(); } catch (e) { if (e.code !== 'ENOENT') throw e; } };
  ctx.persist = () => { if (!persistTimer) { persistTimer = setTimeout(timedFlush, Math.max(50, 10 * lastFlushMs)); persistTimer.unref(); } };
  ctx.flush = () => { if (persistTimer) { clearTimeout(persistTimer); } flush(); };
  ctx.hc = new Healthcare(ctx);
  ctx.ops = new Operations(ctx.persist);
  ctx.logs = new Logs(ctx.persist);
  let resumable = [];
  if (fs.existsSync(stateFile)) {
    try {
      const st = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
      ctx.hc.fromState(st.healthcare || {}); resumable = ctx.ops.fromState(st.operations); ctx.logs.entries = st.logs || [];
    } catch (e) { process.stderr.write(`emulator: ignoring unreadable ${stateFile}: ${e.message}\n`); }
  }
  for (const op of resumable) healthcare.resume(ctx, op);
  ctx.reset = () => {
    for (const op of ctx.ops.ops.values()) op.cancelRequested = true;
    ctx.ops.ops.clear(); ctx.hc.reset(); ctx.logs.reset(); ctx.gcs.reset(); ctx.instances.reset();
    fs.rmSync(path.join(dataDir, 'iam'), { recursive: true, force: true });
    for (const s of ctx.uploads.values()) s.sink.abort();
    ctx.uploads.clear(); ctx.rewrites.clear(); ctx.faults.clear(); ctx.quotas.reset(); ctx.requests.length = 0;
    ctx.flush();
  };
  if (opts.faults) ctx.faults.add(opts.faults);
  if (typeof auth.configure === 'function') auth.configure(Object.assign({}, ctx.opts));

  async function route(req, res) {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname.startsWith('/_emulator/')) { await admin.handle(req, res, url, ctx); return; }
    const service = serviceOf(url.pathname);
    const isGcs = service === 'storage.googleapis.com';
    const rule = ctx.faults.pick(req, url.pathname);
    if (rule) {
      req.dgFaultId = rule.id;
      if (await applyFault(rule, req, res, isGcs)) return;
    }
    if (await auth.routes(req, res, url)) return;
    if (service) {
      const over = ctx.quotas.take(service, req.method, url.pathname);
      if (over) { req.resume(); sendError(res, over); return; }
      const denied = await auth.authorize(req, service);
      if (denied) {
        req.resume();
        const body = JSON.stringify(denied);
        res.writeHead(denied.error && denied.error.code ? denied.error.code : 401, { 'Content-Type': 'application/json; charset=UTF-8', 'Content-Length': Buffer.byteLength(body) });
        res.end(body); return;
      }
    }
    let handled = false;
    try {
      if (isGcs) handled = await gcs.handle(req, res, url, ctx);
      else if (service === 'logging.googleapis.com') handled = await logging.handle(req, res, url, ctx);
      else if (service === 'healthcare.googleapis.com') handled = await healthcare.handle(req, res, url, ctx);
      else if (service === 'cloudresourcemanager.googleapis.com') handled = await require('./iam').handleResourceManager(req, res, url, ctx);
    } catch (e) {
      if (isGcs && e instanceof ApiError) throw new GcsError(e.httpCode, 'invalid', e.message);
      throw e;
    }
    if (!handled) {
      if (isGcs) throw new GcsError(404, 'notFound', 'Not Found');
      throw new ApiError('NOT_FOUND', `The requested URL ${url.pathname} was not found on this server.`);
    }
  }

  const onRequest = (req, res) => {
    const t0 = Date.now();
    const entry = { seq: ++ctx.seq, time: new Date().toISOString(), method: req.method, path: '', status: 0, ms: 0, http: req.httpVersion };
    try { entry.path = scrubPath(new URL(req.url, 'http://127.0.0.1')); } catch (_) { entry.path = '(bad url)'; }
    const done = () => {
      if (entry.ms) return;
      entry.status = res.headersSent ? res.statusCode : 0;
      entry.ms = Date.now() - t0 || 1;
      if (req.dgFaultId) entry.fault = req.dgFaultId;
      if (!entry.path.startsWith('/_emulator/')) {
        ctx.requests.push(entry);
        if (ctx.requests.length > REQUEST_LOG_MAX) ctx.requests.splice(0, ctx.requests.length - REQUEST_LOG_MAX);
      }
    };
    res.on('finish', done); res.on('close', done);
    const lat = ctx.opts.latencyMs || 0; const jit = ctx.opts.latencyJitterMs || 0;
    if ((lat || jit) && !entry.path.startsWith('/_emulator/') && !req.dgLocal) transport.delayResponse(res, lat + Math.random() * jit);
    route(req, res).catch((e) => {
      if (!(e instanceof ApiError || e instanceof GcsError) && !/fault: connection reset/.test(e.message)) {
        process.stderr.write(`emulator: ${req.method} ${entry.path}: ${e.stack || e}\n`);
      }
      if (res.headersSent || res.dgHeadersQueued || res.destroyed) { res.destroy(); return; }
      sendError(res, e);
      req.resume();
    });
  };
  const { server, stats } = transport.createServer(onRequest, ctx.opts, dataDir);
  ctx.connections = stats;
  // Google's metadata server speaks plain HTTP; beside a TLS port it gets a port of its own.
  // It is next to the VM, not a region away: no --latency-ms.
  if (ctx.opts.tls) ctx.metadataServer = require('http').createServer((req, res) => { req.dgLocal = true; onRequest(req, res); });
  server.keepAliveTimeout = 65000;
  server.headersTimeout = 70000;
  server.requestTimeout = 0; // uploads may be long
  ctx.server = server;
  return ctx;
}

module.exports = { createEmulator };
