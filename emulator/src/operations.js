'use strict';
// Long-running operations: DS/operations/{id}. JSON follows proto3 rules: `done` absent while
// running, zero counters omitted, int64 counters as strings, exactly one of error/response when done.
const { decimalId } = require('./ids');
const { invalid, notFound } = require('./errors');

const META_TYPE = (v) => `type.googleapis.com/google.cloud.healthcare.${v}.OperationMetadata`;

class Operations {
  constructor(persist) { this.ops = new Map(); this.persist = persist || (() => {}); }

  create(datasetName, apiMethodName, opts = {}) {
    const name = `${datasetName}/operations/${decimalId()}`;
    const op = {
      name, dataset: datasetName, version: opts.version || 'v1', apiMethodName,
      createTime: new Date().toISOString(), endTime: null, logsUrl: opts.logsUrl ? opts.logsUrl(name) : undefined,
      counter: opts.counter ? { success: 0, failure: 0, pending: 0 } : null,
      cancelRequested: false, done: false, error: null, response: null,
    };
    this.ops.set(name, op);
    this.persist();
    return op;
  }

  get(name) { return this.ops.get(name) || null; }

  /** Running imports/exports (operations with counters) of a project. */
  running(project) {
    let n = 0;
    for (const o of this.ops.values()) if (!o.done && o.counter && o.name.startsWith(`projects/${project}/`)) n++;
    return n;
  }

  finish(op, { error, response }) {
    if (op.done) return;
    op.done = true;
    op.endTime = new Date().toISOString();
    if (error) op.error = error; else op.response = response || {};
    if (op.counter) op.counter.pending = 0;
    this.persist();
  }

  json(op) {
    const md = { '@type': META_TYPE(op.version), apiMethodName: op.apiMethodName, createTime: op.createTime };
    if (op.endTime) md.endTime = op.endTime;
    if (op.logsUrl) md.logsUrl = op.logsUrl;
    if (op.cancelRequested) md.cancelRequested = true;
    if (op.counter) {
      const c = {};
      for (const k of ['success', 'failure', 'pending']) if (op.counter[k]) c[k] = String(op.counter[k]);
      md.counter = c;
    }
    const out = { name: op.name, metadata: md };
    if (op.done) {
      out.done = true;
      if (op.error) out.error = op.error; else out.response = op.response;
    }
    return out;
  }

  list(datasetName, { filter, pageSize, pageToken }) {
    let all = [...this.ops.values()].filter((o) => o.dataset === datasetName);
    if (filter) all = all.filter(compileFilter(filter));
    const size = pageSizeOf(pageSize, 100, 1000);
    const start = offsetOf(pageToken);
    const page = all.slice(start, start + size);
    const out = {};
    if (page.length) out.operations = page.map((o) => this.json(o));
    if (start + size < all.length) out.nextPageToken = Buffer.from(String(start + size)).toString('base64url');
    return out;
  }

  cancel(name) {
    const op = this.ops.get(name);
    if (!op) throw notFound(`Operation ${name} not found.`);
    if (!op.done) { op.cancelRequested = true; this.persist(); }
    return op;
  }

  deleteDataset(datasetName) {
    for (const [k, o] of this.ops) if (o.dataset === datasetName) { o.cancelRequested = true; this.ops.delete(k); }
  }

  toState() { return [...this.ops.values()]; }
  /** Load persisted operations; returns the running ones that can go on (imports and exports
   *  keep their parameters in `op.job`): Google does not lose a running operation when one of
   *  its servers restarts, so neither does a restarted emulator. */
  fromState(list) {
    const resumable = [];
    for (const o of list || []) {
      if (!o.done && o.job) resumable.push(o);
      else if (!o.done) { // nothing to go on from (e.g. a dataset creation, whose work is already done)
        o.done = true; o.endTime = new Date().toISOString();
        o.error = { code: 10, message: 'The emulator was restarted while the operation was running.' };
      }
      this.ops.set(o.name, o);
    }
    return resumable;
  }
}

// Operation list filter: `done=true`, `done = false`, `metadata.api_method_name="..."` joined by AND.
function compileFilter(f) {
  const terms = f.split(/\s+AND\s+/);
  const preds = terms.map((t) => {
    const m = /^\s*([\w.]+)\s*=\s*"?([^"]*)"?\s*$/.exec(t);
    if (!m) throw invalid(`Invalid filter: ${f}`);
    const [, key, val] = m;
    if (key === 'done') return (o) => String(o.done) === val;
    if (key === 'metadata.api_method_name' || key === 'metadata.apiMethodName') return (o) => o.apiMethodName === val || o.apiMethodName.endsWith('.' + val);
    throw invalid(`Invalid filter: unsupported field "${key}" in ${f}`);
  });
  return (o) => preds.every((p) => p(o));
}

function pageSizeOf(v, def, max) {
  if (v === undefined || v === null || v === '') return def;
  if (!/^-?\d+$/.test(String(v))) throw invalid(`Invalid value for pageSize: ${v}`);
  const n = parseInt(v, 10);
  if (n < 0) throw invalid('page_size must be non-negative');
  if (n === 0) return def;
  return Math.min(n, max);
}

function offsetOf(token) {
  if (!token) return 0;
  const s = Buffer.from(String(token), 'base64url').toString('utf8');
  if (!/^\d+$/.test(s)) throw invalid('Invalid page token.');
  return parseInt(s, 10);
}

module.exports = { Operations, pageSizeOf, offsetOf };
