'use strict';
// Cloud Logging: the entries import/export write, and POST /v2/entries:list to read them.
const { ApiError, invalid, sendJson } = require('./errors');
const { readJson } = require('./body');
const { validate } = require('./validate');
const { pageSizeOf } = require('./operations');

class Logs {
  constructor(persist) { this.entries = []; this.seq = 0; this.persist = persist || (() => {}); }
  reset() { this.entries = []; }
  add(e) {
    this.seq++;
    e.insertId = e.insertId || `${Date.now().toString(36)}${this.seq.toString(36).padStart(6, '0')}`;
    e.receiveTimestamp = new Date().toISOString();
    this.entries.push(e);
    this.persist();
  }
}

function get(obj, path) {
  // keys like jsonPayload.@type, operation.id, resource.labels.dataset_id
  let cur = obj;
  for (const k of path.split('.')) { if (cur === null || typeof cur !== 'object') return undefined; cur = cur[k]; }
  return cur;
}

/** A subset of the Logging query language: comparisons joined by AND (and optional NOT-free parens). */
function compileFilter(filter) {
  if (!filter || !filter.trim()) return () => true;
  const terms = [];
  // tokenise on AND outside quotes
  let cur = ''; let inq = false;
  const s = filter.replace(/\n/g, ' ');
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '"' && s[i - 1] !== '\\') inq = !inq;
    if (!inq && /\sAND\s/.test(s.slice(i, i + 5)) && s.slice(i, i + 5).trim() === 'AND') { terms.push(cur); cur = ''; i += 4; continue; }
    cur += c;
  }
  terms.push(cur);
  const preds = terms.map((t) => t.trim()).filter(Boolean).map((t) => {
    const m = /^([A-Za-z_@][\w.@]*)\s*(=|!=|>=|<=|>|<|:)\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))$/.exec(t.replace(/^\(+|\)+$/g, ''));
    if (!m) throw invalid(`Unparseable filter: ${filter}`);
    const key = m[1]; const op = m[2];
    const val = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[4];
    const SEV = ['DEFAULT', 'DEBUG', 'INFO', 'NOTICE', 'WARNING', 'ERROR', 'CRITICAL', 'ALERT', 'EMERGENCY'];
    return (e) => {
      let v = get(e, key);
      if (v === undefined) return op === '!=';
      if (typeof v !== 'string') v = String(v);
      if (key === 'severity' && SEV.includes(val.toUpperCase())) {
        const a = SEV.indexOf(v); const b = SEV.indexOf(val.toUpperCase());
        return { '=': a === b, '!=': a !== b, '>=': a >= b, '<=': a <= b, '>': a > b, '<': a < b, ':': a === b }[op];
      }
      switch (op) {
        case '=': return v === val;
        case '!=': return v !== val;
        case ':': return v.includes(val);
        case '>=': return v >= val;
        case '<=': return v <= val;
        case '>': return v > val;
        case '<': return v < val;
        default: return false;
      }
    };
  });
  return (e) => preds.every((p) => p(e));
}

const LIST_SCHEMA = {
  resourceNames: ['repeated', 'string'], projectIds: ['repeated', 'string'], filter: 'string',
  orderBy: 'string', pageSize: 'int32', pageToken: 'string',
};

async function entriesList(req, res, ctx) {
  entriesListBody(res, ctx, await readJson(req));
}

function entriesListBody(res, ctx, body) {
  validate(LIST_SCHEMA, body);
  const names = body.resourceNames || (body.projectIds || []).map((p) => `projects/${p}`);
  if (!names.length) throw invalid('Field resourceNames is required.', [{ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ field: 'resource_names', description: 'Field is required.' }] }]);
  for (const n of names) {
    if (!/^(projects|organizations|billingAccounts|folders)\/[^/]+(\/locations\/[^/]+\/buckets\/[^/]+(\/views\/[^/]+)?)?$/.test(n)) throw invalid(`Invalid resource name: ${n}`);
  }
  if (body.filter && body.filter.length > 20000) throw invalid('filter is longer than 20000 characters.');
  const order = (body.orderBy || 'timestamp asc').trim();
  if (!/^timestamp( (asc|desc))?$/.test(order)) throw invalid(`Invalid orderBy: ${body.orderBy}. Only "timestamp asc" and "timestamp desc" are supported.`);
  // D-log ListLogEntriesRequest.pageSize: "If the value is negative or exceeds 1000, the request is rejected."
  if (body.pageSize !== undefined && body.pageSize !== null && (Number(body.pageSize) < 0 || Number(body.pageSize) > 1000)) {
    throw invalid(`Invalid page_size ${body.pageSize}: the value must be between 0 and 1000.`, [{ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ field: 'page_size', description: 'must be between 0 and 1000' }] }]);
  }
  const size = pageSizeOf(body.pageSize, 50, 1000);
  const pred = compileFilter(body.filter);
  const projects = new Set(names.filter((n) => n.startsWith('projects/')).map((n) => n.split('/')[1]));
  let list = ctx.logs.entries.filter((e) => projects.has(e.logName.split('/')[1]) && pred(e));
  list = list.map((e, i) => [e, i]).sort((a, b) => (a[0].timestamp < b[0].timestamp ? -1 : a[0].timestamp > b[0].timestamp ? 1 : a[1] - b[1])).map((x) => x[0]);
  if (order.endsWith('desc')) list.reverse();
  let start = 0; let empties = 0;
  if (body.pageToken) {
    const t = Buffer.from(body.pageToken, 'base64url').toString('utf8');
    const m = /^(?:e(\d+):)?(\d+)$/.exec(t);
    if (!m) throw invalid('Invalid page token.');
    empties = m[1] ? parseInt(m[1], 10) : Infinity;
    start = parseInt(m[2], 10);
  }
  // D-log ListLogEntriesResponse.nextPageToken: a token with no entries means "not done searching".
  // The emulator answers the first --log-empty-pages pages (default 1) of every query that way,
  // deterministically, so a client that stops on an empty page is caught.
  const emptyPages = ctx.opts.logEmptyPages === undefined ? 1 : ctx.opts.logEmptyPages;
  if (empties < emptyPages && list.length > start) {
    sendJson(res, 200, { nextPageToken: Buffer.from(`e${empties + 1}:${start}`).toString('base64url') });
    return;
  }
  const page = list.slice(start, start + size);
  const out = {};
  if (page.length) out.entries = page.map(({ receiveTimestamp, ...e }) => Object.assign(e, { receiveTimestamp }));
  if (start + size < list.length) out.nextPageToken = Buffer.from(String(start + size)).toString('base64url');
  sendJson(res, 200, out);
}

async function handle(req, res, url, ctx) {
  if (url.pathname === '/v2/entries:list') {
    if (req.method !== 'POST') throw new ApiError('NOT_FOUND', 'Method not found.', undefined, 404);
    await entriesList(req, res, ctx);
    return true;
  }
  return false;
}

module.exports = { Logs, handle, compileFilter, entriesListBody };
