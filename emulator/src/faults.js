'use strict';
// Fault injection. A rule (POST /_emulator/faults, or --faults JSON at start-up):
//   { "path": "regexp on the URL path", "method": "GET",            which requests (both optional)
//     "skip": 0, "count": 3, "share": 1.0,                          let `skip` pass, then fire `count`
//                                                                   times (default: forever), each with
//                                                                   probability `share`
//     "status": 503, "retryAfter": 2, "message": "...",             answer with this error status
//     "stallMs": 500,                                               wait before handling
//     "throttleBytesPerSec": 65536,                                 pace the response body
//     "resetAfterBytes": 1000,                                      cut the connection after N response body bytes
//     "resetRequestAfterBytes": 1000,                               cut it after N request body bytes (uploads)
//     "goaway": true,                                               HTTP/2: GOAWAY naming the stream before
//                                                                   this one as the last processed, then close
//                                                                   the connection (a front end draining it);
//                                                                   HTTP/1.1: close it unanswered
//     "resetAfterHandling": true,                                   handle the request in full (an :import
//                                                                   starts its operation), then cut the
//                                                                   connection instead of answering: the
//                                                                   "answer lost after the body was sent" case
//     "fallThrough": true }                                         when skip/share let the request pass,
//                                                                   try the next rules (mixes of faults)
// The first rule that matches a request decides (unless it falls through).
const { ApiError, GcsError, sendJson } = require('./errors');
const { sleep } = require('./ids');
const http2 = require('http2');
const { resetRequest } = require('./transport');

const STATUS_NAME = { 400: 'INVALID_ARGUMENT', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 408: 'DEADLINE_EXCEEDED', 409: 'ABORTED', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 502: 'UNAVAILABLE', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED' };
const GCS_REASON = { 408: 'requestTimeout', 429: 'rateLimitExceeded', 500: 'backendError', 502: 'backendError', 503: 'backendError', 504: 'gatewayTimeout' };
const KEYS = ['path', 'method', 'skip', 'count', 'share', 'status', 'retryAfter', 'message', 'stallMs', 'throttleBytesPerSec', 'resetAfterBytes', 'resetRequestAfterBytes', 'resetAfterHandling', 'goaway', 'fallThrough'];

class Faults {
  constructor() { this.rules = []; this.nextId = 1; }

  add(spec) {
    const list = Array.isArray(spec) ? spec : spec && Array.isArray(spec.rules) ? spec.rules : [spec];
    const added = [];
    for (const r of list) {
      if (!r || typeof r !== 'object') throw new Error('a fault rule must be a JSON object');
      for (const k of Object.keys(r)) if (!KEYS.includes(k)) throw new Error(`unknown fault rule field "${k}"`);
      const rule = Object.assign({ id: this.nextId++, seen: 0, fired: 0 }, r);
      rule.re = new RegExp(r.path || '');
      if (r.status !== undefined && !(Number.isInteger(r.status) && r.status >= 400 && r.status <= 599)) throw new Error('status must be an HTTP error status');
      if (r.resetAfterHandling !== undefined && r.resetAfterHandling !== true) throw new Error('resetAfterHandling must be true');
      if (r.goaway !== undefined && r.goaway !== true) throw new Error('goaway must be true');
      if (!(r.goaway || r.status || r.stallMs || r.throttleBytesPerSec || r.resetAfterBytes !== undefined || r.resetRequestAfterBytes !== undefined || r.resetAfterHandling)) {
        throw new Error('a fault rule needs one of goaway, status, stallMs, throttleBytesPerSec, resetAfterBytes, resetRequestAfterBytes, resetAfterHandling');
      }
      this.rules.push(rule); added.push(rule);
    }
    return added.map(view);
  }

  clear() { this.rules = []; }
  list() { return this.rules.map(view); }

  /** The rule to apply to this request, or null. */
  pick(req, pathname) {
    for (const r of this.rules) {
      if (r.method && r.method.toUpperCase() !== req.method) continue;
      if (!r.re.test(pathname)) continue;
      r.seen++;
      const pass = r.fallThrough ? null : undefined;
      if (r.seen <= (r.skip || 0)) { if (pass === undefined) return null; continue; }
      if (r.count !== undefined && r.fired >= r.count) continue;
      if (r.share !== undefined && Math.random() >= r.share) { if (pass === undefined) return null; continue; }
      r.fired++;
      return r;
    }
    return null;
  }
}

function view(r) { const { re, ...rest } = r; return rest; } // eslint-disable-line no-unused-vars

/** Apply a rule. Returns true when the request has been answered (or the connection cut). */
async function apply(rule, req, res, isGcs) {
  if (rule.stallMs) await sleep(rule.stallMs);
  if (rule.goaway) { goAway(req); return true; }
  if (rule.status) {
    const headers = {};
    if (rule.retryAfter !== undefined) headers['Retry-After'] = String(rule.retryAfter);
    const msg = rule.message || (rule.status === 429 ? 'Quota exceeded (injected fault).' : 'The service is currently unavailable (injected fault).');
    const err = isGcs ? new GcsError(rule.status, GCS_REASON[rule.status] || 'backendError', msg)
      : new ApiError(STATUS_NAME[rule.status] || 'UNKNOWN', msg, undefined, rule.status);
    req.resume(); // drain the request body
    sendJson(res, rule.status, err.body(), headers);
    return true;
  }
  if (rule.resetRequestAfterBytes !== undefined) {
    req.dgFault = { resetAfterBytes: rule.resetRequestAfterBytes };
    if (rule.resetRequestAfterBytes === 0) { resetRequest(req); return true; }
  }
  if (rule.resetAfterHandling) { dropAnswer(res); return false; }
  if (rule.resetAfterBytes !== undefined || rule.throttleBytesPerSec) wrapResponse(res, rule);
  return false;
}

// The connection is drained before this request is processed (RFC 9113 §6.8: streams above the
// GOAWAY's last stream id were not processed and may be retried on a new connection).
function goAway(req) {
  const stream = req.stream;
  if (!stream || !stream.session) { resetRequest(req); return; }   // HTTP/1.1: closed unanswered
  const session = stream.session;
  session.goaway(http2.constants.NGHTTP2_NO_ERROR, Math.max(0, stream.id - 2));
  setImmediate(() => session.destroy());
}

// The handler runs to the end (its effects stay), but no byte of the answer leaves.
function dropAnswer(res) {
  res.writeHead = () => res;
  res.setHeader = () => res;
  res.write = () => true;
  res.end = () => { if (res.socket) res.socket.destroy(); return res; };
}

function wrapResponse(res, rule) {
  const origWrite = res.write.bind(res); const origEnd = res.end.bind(res);
  let sent = 0; let chain = Promise.resolve(); let dead = false;
  const limit = rule.resetAfterBytes; const bps = rule.throttleBytesPerSec;
  const push = (chunk, enc) => {
    if (dead || chunk === undefined || chunk === null) return;
    let b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, typeof enc === 'string' ? enc : 'utf8');
    chain = chain.then(async () => {
      if (dead) return;
      if (limit !== undefined && sent + b.length > limit) {
        b = b.subarray(0, limit - sent);
        if (b.length) origWrite(b);
        dead = true;
        setImmediate(() => resetRequest(res.req || res));
        return;
      }
      if (bps) await sleep((b.length * 1000) / bps);
      sent += b.length;
      origWrite(b);
    });
  };
  res.write = (chunk, enc, cb) => {
    push(chunk, enc);
    chain.then(() => { if (typeof cb === 'function') cb(); res.emit('drain'); });
    return false;
  };
  res.end = (chunk, enc, cb) => {
    if (typeof chunk === 'function') { cb = chunk; chunk = undefined; }
    push(chunk, enc);
    chain.then(() => { if (!dead) origEnd(cb); });
    return res;
  };
  if (limit === 0) { dead = true; resetRequest(res.req || res); }
}

module.exports = { Faults, apply };
