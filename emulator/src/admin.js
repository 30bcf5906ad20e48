'use strict';
// /_emulator/… : health, reset, faults, request log, logs (GET form of entries:list), state, config.
const { ApiError, invalid, sendJson } = require('./errors');
const { readJson } = require('./body');

async function handle(req, res, url, ctx) {
  const p = url.pathname.slice('/_emulator/'.length);
  const m = req.method;
  if (p === 'health' && m === 'GET') {
    sendJson(res, 200, { status: 'ok', pid: process.pid, port: ctx.port(), dataDir: ctx.opts.dataDir, version: ctx.version });
    return;
  }
  if (p === 'reset' && m === 'POST') { ctx.reset(); sendJson(res, 200, {}); return; }
  if (p === 'faults') {
    if (m === 'GET') { sendJson(res, 200, { faults: ctx.faults.list() }); return; }
    if (m === 'DELETE') { ctx.faults.clear(); sendJson(res, 200, {}); return; }
    if (m === 'POST') {
      const body = await readJson(req);
      try { sendJson(res, 200, { faults: ctx.faults.add(body) }); } catch (e) { throw invalid(`Invalid fault rule: ${e.message}`); }
      return;
    }
  }
  if (p === 'quotas') {
    // GET: {windowMs, limits, refused}; POST {windowMs?, limits?: {NAME: N|null}} changes them.
    if (m === 'POST') {
      const body = await readJson(req);
      try { ctx.quotas.configure(body || {}); } catch (e) { throw invalid(`Invalid quota settings: ${e.message}`); }
    }
    if (m === 'POST' || m === 'GET') { sendJson(res, 200, ctx.quotas.view()); return; }
  }
  if (p === 'requests') {
    if (m === 'GET') {
      const since = parseInt(url.searchParams.get('since') || '0', 10);
      const re = url.searchParams.get('path') ? new RegExp(url.searchParams.get('path')) : null;
      sendJson(res, 200, { requests: ctx.requests.filter((r) => r.seq > since && (!re || re.test(r.path))) });
      return;
    }
    if (m === 'DELETE') { ctx.requests.length = 0; sendJson(res, 200, {}); return; }
  }
  if (p === 'logs' && m === 'GET') {
    // Same answer as POST /v2/entries:list, from query parameters (this is what logsUrl points at).
    const q = url.searchParams; const body = {};
    const rn = q.getAll('resourceName').concat(q.getAll('resourceNames'));
    if (rn.length) body.resourceNames = rn;
    for (const k of ['filter', 'orderBy', 'pageToken']) if (q.get(k) !== null) body[k] = q.get(k);
    if (q.get('pageSize') !== null) body.pageSize = q.get('pageSize');
    req.dgJsonBody = body;
    await require('./logging').entriesListBody(res, ctx, body);
    return;
  }
  if (p === 'state' && m === 'GET') {
    sendJson(res, 200, {
      buckets: [...ctx.gcs.buckets.entries()].map(([name, b]) => ({ name, objects: b.objects.size })),
      datasets: [...ctx.hc.datasets.keys()],
      dicomStores: [...ctx.hc.stores.values()].map((s) => ({ name: s.name, instances: s.instances.size })),
      operations: [...ctx.ops.ops.values()].map((o) => ctx.ops.json(o)),
      logEntries: ctx.logs.entries.length,
      uploads: ctx.uploads.size,
      faults: ctx.faults.list(),
      connections: ctx.connections,
    });
    return;
  }
  if (p === 'config') {
    if (m === 'POST') {
      const body = await readJson(req);
      for (const [k, v] of Object.entries(body)) {
        if (!['opDelayMs', 'maxConcurrentOperations', 'logDelayMs', 'logEmptyPages'].includes(k) || !Number.isInteger(v) || v < 0) throw invalid(`Unknown or invalid config field "${k}" (supported: opDelayMs, maxConcurrentOperations, logDelayMs, logEmptyPages).`);
        ctx.opts[k] = v;
      }
    }
    if (m === 'POST' || m === 'GET') { sendJson(res, 200, { opDelayMs: ctx.opts.opDelayMs, maxConcurrentOperations: ctx.opts.maxConcurrentOperations === undefined ? 100 : ctx.opts.maxConcurrentOperations,
      logDelayMs: ctx.opts.logDelayMs === undefined ? 1500 : ctx.opts.logDelayMs, logEmptyPages: ctx.opts.logEmptyPages === undefined ? 1 : ctx.opts.logEmptyPages }); return; }
  }
  throw new ApiError('NOT_FOUND', `Unknown admin endpoint: ${m} /_emulator/${p}`);
}

module.exports = { handle };
