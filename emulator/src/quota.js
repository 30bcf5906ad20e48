'use strict';
// Per-minute request quotas, as Google enforces them: a fixed window (one minute by default;
// `--quota-window-ms` shortens it for tests only), a count per quota name, and once the count
// reaches the limit, 429 RESOURCE_EXHAUSTED in the service's error shape with NO Retry-After
// (Google's API front end does not send one; see emulator/README.md "Quotas").
//   --quota healthcare=600/min      every Healthcare request that is not DICOMweb
//   --quota dicomweb-write=60/min   DICOMweb POST/PUT/DELETE (STOW, deletes)
//   --quota dicomweb-read=600/min   DICOMweb GET (WADO, QIDO)
//   --quota storage=1000/min        every Cloud Storage JSON API request
// Requests refused for quota do not count against it.
const { ApiError, GcsError } = require('./errors');

const NAMES = ['healthcare', 'dicomweb-write', 'dicomweb-read', 'storage'];

/** Parse "NAME=N/min" → [name, n]; throws on anything else. */
function parseQuota(s) {
  const m = /^([a-z-]+)=(\d+)\/min$/.exec(String(s));
  if (!m || !NAMES.includes(m[1])) throw new Error(`--quota needs NAME=N/min with NAME one of ${NAMES.join(', ')}, got "${s}"`);
  return [m[1], parseInt(m[2], 10)];
}

class Quotas {
  constructor(limits, windowMs) {
    this.limits = new Map(Object.entries(limits || {}));
    this.windowMs = windowMs || 60000;
    this.counts = new Map();   // name -> { window, used }
    this.refused = 0;
  }

  configure(body) {
    if (body.windowMs !== undefined) {
      if (!Number.isInteger(body.windowMs) || body.windowMs < 1) throw new Error('windowMs must be a positive integer');
      this.windowMs = body.windowMs;
    }
    for (const [k, v] of Object.entries(body.limits || {})) {
      if (!NAMES.includes(k)) throw new Error(`unknown quota "${k}" (known: ${NAMES.join(', ')})`);
      if (v === null) { this.limits.delete(k); continue; }
      if (!Number.isInteger(v) || v < 0) throw new Error(`quota "${k}" must be a non-negative integer per window`);
      this.limits.set(k, v);
    }
    for (const k of Object.keys(body)) if (!['windowMs', 'limits'].includes(k)) throw new Error(`unknown field "${k}"`);
    this.counts.clear();
  }

  view() {
    return { windowMs: this.windowMs, limits: Object.fromEntries(this.limits), refused: this.refused };
  }

  reset() { this.counts.clear(); this.refused = 0; }

  /** The quota name a request counts against, or null. */
  static nameOf(service, method, pathname) {
    if (service === 'storage.googleapis.com') return 'storage';
    if (service !== 'healthcare.googleapis.com') return null;
    if (/\/dicomWeb(\/|$)/.test(pathname)) return method === 'GET' || method === 'HEAD' ? 'dicomweb-read' : 'dicomweb-write';
    return 'healthcare';
  }

  /** null when the request may go on; else the error to answer with. */
  take(service, method, pathname) {
    const name = Quotas.nameOf(service, method, pathname);
    if (!name || !this.limits.has(name)) return null;
    const limit = this.limits.get(name);
    const window = Math.floor(Date.now() / this.windowMs);
    let c = this.counts.get(name);
    if (!c || c.window !== window) { c = { window, used: 0 }; this.counts.set(name, c); }
    if (c.used < limit) { c.used++; return null; }
    this.refused++;
    const metric = { healthcare: 'Number of requests', 'dicomweb-write': 'Number of DICOMweb write requests',
      'dicomweb-read': 'Number of DICOMweb read requests', storage: 'Number of requests' }[name];
    const msg = `Quota exceeded for quota metric '${metric}' and limit '${name} per minute per region' of service '${service}' for consumer 'project_number:0'.`;
    if (service === 'storage.googleapis.com') return new GcsError(429, 'rateLimitExceeded', 'The project exceeded the rate limit for this operation.');
    return new ApiError('RESOURCE_EXHAUSTED', msg, [{
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'RATE_LIMIT_EXCEEDED', domain: 'googleapis.com',
      metadata: { service, quota_metric: `${service}/${name}`, quota_limit: `${name}-per-minute`, quota_limit_value: String(limit) },
    }], 429);
  }
}

module.exports = { Quotas, parseQuota, NAMES };
