'use strict';
// Cloud Storage JSON API: buckets, objects, media/multipart/resumable uploads, downloads.
// Paths accepted (api.md §9): /storage/v1/…, /upload/storage/v1/…, /download/storage/v1/…,
// and the aliases /b/… (Node's STORAGE_EMULATOR_HOST base) and /storage/v1/upload/storage/v1/….
const fs = require('fs');
const crypto = require('crypto');
const { GcsError, sendJson } = require('./errors');
const { validBucketName } = require('./wildcard');
const { compareNames } = require('./gcsstore');
const { readAll } = require('./body');
const iam = require('./iam');

const notFoundBucket = () => new GcsError(404, 'notFound', 'The specified bucket does not exist.');
const notFoundObject = (b, n) => new GcsError(404, 'notFound', `No such object: ${b}/${n}`);
const badRequest = (msg, reason = 'invalid') => new GcsError(400, reason, msg);
const preconditionFailed = () => new GcsError(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');

/** Map the accepted path forms onto {kind: 'json'|'upload'|'download', rest}. */
function normalize(pathname) {
  let p = pathname;
  if (p.startsWith('/storage/v1/upload/storage/v1/')) p = p.slice('/storage/v1'.length);
  if (p.startsWith('/storage/v1/download/storage/v1/')) p = p.slice('/storage/v1'.length);
  if (p.startsWith('/upload/storage/v1/')) return { kind: 'upload', rest: p.slice('/upload/storage/v1'.length) };
  if (p.startsWith('/download/storage/v1/')) return { kind: 'download', rest: p.slice('/download/storage/v1'.length) };
  if (p.startsWith('/storage/v1/')) return { kind: 'json', rest: p.slice('/storage/v1'.length) };
  if (p === '/b' || p.startsWith('/b/') || p.startsWith('/b?')) return { kind: 'json', rest: p };
  return null;
}

function decodeSeg(s) {
  try { return decodeURIComponent(s); } catch (_) { throw badRequest('Invalid path: bad percent-encoding.'); }
}

function checkObjectName(name) {
  if (!name) throw badRequest('Required parameter: object', 'required');
  if (Buffer.byteLength(name, 'utf8') > 1024) throw badRequest('The object name is too long.');
  if (/[\r\n]/.test(name)) throw badRequest('Object name contains an invalid character.');
  if (name === '.' || name === '..') throw badRequest('Object name cannot be "." or "..".');
  if (name.startsWith('.well-known/acme-challenge/')) throw badRequest('Object name is not allowed.');
}

function baseUrl(req) { return `http://${req.headers.host || '127.0.0.1'}`; }
const encName = (n) => encodeURIComponent(n);

function objectJson(req, m) {
  const base = baseUrl(req);
  const o = {
    kind: 'storage#object',
    id: `${m.bucket}/${m.name}/${m.generation}`,
    selfLink: `${base}/storage/v1/b/${m.bucket}/o/${encName(m.name)}`,
    mediaLink: `${base}/download/storage/v1/b/${m.bucket}/o/${encName(m.name)}?generation=${m.generation}&alt=media`,
    name: m.name, bucket: m.bucket, generation: m.generation, metageneration: m.metageneration,
    contentType: m.contentType, storageClass: m.storageClass, size: m.size,
    md5Hash: m.md5Hash, crc32c: m.crc32c,
    etag: crypto.createHash('md5').update(m.generation + m.metageneration).digest('base64').slice(0, 12),
    timeCreated: m.timeCreated, updated: m.updated, timeStorageClassUpdated: m.timeStorageClassUpdated,
  };
  for (const k of ['metadata', 'cacheControl', 'contentDisposition', 'contentEncoding', 'contentLanguage', 'customTime']) {
    if (m[k] !== undefined) o[k] = m[k];
  }
  return o;
}

function bucketJson(req, meta) {
  return Object.assign({ kind: 'storage#bucket', selfLink: `${baseUrl(req)}/storage/v1/b/${meta.name}` }, meta);
}

function checkPreconditions(q, m) {
  const g = q.get('ifGenerationMatch');
  if (g !== null) {
    if (g === '0' ? !!m : !m || m.generation !== g) throw preconditionFailed();
  }
  const gn = q.get('ifGenerationNotMatch');
  if (gn !== null && m && m.generation === gn) throw preconditionFailed();
  const mg = q.get('ifMetagenerationMatch');
  if (mg !== null && (!m || m.metageneration !== mg)) throw preconditionFailed();
  const mgn = q.get('ifMetagenerationNotMatch');
  if (mgn !== null && m && m.metageneration === mgn) throw preconditionFailed();
}

// ---- matchGlob (GCS glob: *, **, ?, [set], {a,b}) ----
function globToRegExp(g) {
  let out = ''; let i = 0;
  while (i < g.length) {
    const c = g[i];
    if (c === '*' && g[i + 1] === '*') { out += '.*'; i += 2; if (g[i] === '/') { out = out.slice(0, -2) + '(?:.*/)?'; i++; } continue; }
    if (c === '*') { out += '[^/]*'; i++; continue; }
    if (c === '?') { out += '[^/]'; i++; continue; }
    if (c === '[') {
      const j = g.indexOf(']', i + 2);
      if (j < 0) throw badRequest(`Invalid matchGlob: ${g}`);
      let set = g.slice(i + 1, j);
      if (set[0] === '!') set = '^' + set.slice(1);
      out += '[' + set.replace(/\\/g, '\\\\') + ']'; i = j + 1; continue;
    }
    if (c === '{') {
      const j = g.indexOf('}', i);
      if (j < 0) throw badRequest(`Invalid matchGlob: ${g}`);
      out += '(?:' + g.slice(i + 1, j).split(',').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|') + ')';
      i = j + 1; continue;
    }
    out += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); i++;
  }
  return new RegExp('^' + out + '$', 's');
}

// ---- listing ----
function listObjects(req, res, ctx, bucket, q) {
  const store = ctx.gcs;
  if (!store.getBucket(bucket)) throw notFoundBucket();
  const prefix = q.get('prefix') || '';
  const delimiter = q.get('delimiter') || '';
  let max = 1000;
  if (q.get('maxResults') !== null) {
    max = parseInt(q.get('maxResults'), 10);
    if (!/^\d+$/.test(q.get('maxResults'))) throw badRequest(`Invalid unsigned integer value: '${q.get('maxResults')}'.`);
    if (max === 0 || max > 1000) max = 1000;
  }
  const startOffset = q.get('startOffset'); const endOffset = q.get('endOffset');
  const glob = q.get('matchGlob') ? globToRegExp(q.get('matchGlob')) : null;
  const includeTrailing = q.get('includeTrailingDelimiter') === 'true';
  let after = null;
  if (q.get('pageToken')) {
    try { after = Buffer.from(q.get('pageToken'), 'base64url').toString('utf8'); } catch (_) { throw badRequest('Invalid pageToken.'); }
  }
  const items = []; const prefixes = []; const seen = new Set();
  let next = null; let count = 0; let lastKey = null;
  for (const name of store.names(bucket)) {
    if (!name.startsWith(prefix)) {
      if (compareNames(name, prefix) > 0) break; // sorted: nothing later can match the prefix
      continue;
    }
    if (after !== null && (compareNames(name, after) <= 0 || (delimiter && after.endsWith(delimiter) && name.startsWith(after)))) continue;
    if (startOffset && compareNames(name, startOffset) < 0) continue;
    if (endOffset && compareNames(name, endOffset) >= 0) continue;
    if (glob && !glob.test(name)) continue;
    let folded = null;
    if (delimiter) {
      const k = name.indexOf(delimiter, prefix.length);
      if (k >= 0) folded = name.slice(0, k + delimiter.length);
    }
    if (folded && seen.has(folded)) {
      if (includeTrailing && name === folded) items.push(objectJson(req, store.getObject(bucket, name)));
      continue;
    }
    if (count >= max) { next = lastKey; break; }
    if (folded) {
      seen.add(folded); prefixes.push(folded); lastKey = folded;
      if (includeTrailing && name === folded) items.push(objectJson(req, store.getObject(bucket, name)));
    } else {
      items.push(objectJson(req, store.getObject(bucket, name))); lastKey = name;
    }
    count++;
  }
  const out = { kind: 'storage#objects' };
  if (next !== null) out.nextPageToken = Buffer.from(next, 'utf8').toString('base64url');
  if (prefixes.length) out.prefixes = prefixes;
  if (items.length) out.items = items;
  sendJson(res, 200, out);
}

// ---- downloads ----
function parseRange(h, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(String(h).trim());
  if (!m || (m[1] === '' && m[2] === '')) return null; // ignored, like GCS does for bad syntax
  let start; let end;
  if (m[1] === '') { const n = parseInt(m[2], 10); if (n === 0) return 'unsatisfiable'; start = Math.max(0, size - n); end = size - 1; }
  else { start = parseInt(m[1], 10); end = m[2] === '' ? size - 1 : Math.min(parseInt(m[2], 10), size - 1); if (m[2] !== '' && parseInt(m[2], 10) < start) return null; }
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

function download(req, res, ctx, bucket, name, q) {
  const m = ctx.gcs.getObject(bucket, name);
  if (!ctx.gcs.getBucket(bucket)) throw notFoundBucket();
  if (!m) throw notFoundObject(bucket, name);
  if (q.get('generation') && q.get('generation') !== m.generation) throw notFoundObject(bucket, name);
  checkPreconditions(q, m);
  const size = parseInt(m.size, 10);
  const headers = {
    'Content-Type': m.contentType,
    'x-goog-hash': `crc32c=${m.crc32c},md5=${m.md5Hash}`,
    'x-goog-generation': m.generation,
    'x-goog-metageneration': m.metageneration,
    'x-goog-stored-content-encoding': 'identity',
    'x-goog-stored-content-length': m.size,
    'x-goog-storage-class': m.storageClass,
    'Accept-Ranges': 'bytes',
    ETag: `"${m.md5Hash}"`,
    'Last-Modified': new Date(m.updated).toUTCString(),
    'Cache-Control': 'private, max-age=0',
  };
  let status = 200; let start = 0; let end = size - 1;
  if (req.headers.range) {
    const r = parseRange(req.headers.range, size);
    if (r === 'unsatisfiable') {
      throw new GcsError(416, 'requestedRangeNotSatisfiable', 'Request range not satisfiable', { 'Content-Range': `bytes */${size}` });
    }
    if (r) { status = 206; start = r.start; end = r.end; headers['Content-Range'] = `bytes ${start}-${end}/${size}`; }
  }
  headers['Content-Length'] = Math.max(0, end - start + 1);
  res.writeHead(status, headers);
  if (req.method === 'HEAD' || size === 0) { res.end(); return; }
  const rs = fs.createReadStream(ctx.gcs.dataPath(bucket, name), { start, end, highWaterMark: 256 * 1024 });
  rs.on('error', () => res.destroy());
  rs.pipe(res);
}

// ---- uploads ----
/** Stream a request body (or the rest of it) into a sink; honours the reset-after-N-bytes fault. */
async function pump(req, sink, skip = 0) {
  const resetAfter = req.dgFault && req.dgFault.resetAfterBytes;
  let seen = 0;
  for await (let chunk of req) {
    seen += chunk.length;
    if (resetAfter !== undefined && seen > resetAfter) {
      const keep = chunk.length - (seen - resetAfter);
      if (keep > skip) await sink.write(chunk.subarray(skip > 0 ? skip : 0, keep));
      require('./transport').resetRequest(req);
      throw new Error('fault: connection reset');
    }
    if (skip > 0) { const s = Math.min(skip, chunk.length); chunk = chunk.subarray(s); skip -= s; }
    await sink.write(chunk);
  }
}

function uploadOpts(meta, req) {
  return {
    contentType: meta.contentType || req.headers['x-upload-content-type'] || undefined,
    metadata: meta.metadata, cacheControl: meta.cacheControl, contentDisposition: meta.contentDisposition,
    contentEncoding: meta.contentEncoding, contentLanguage: meta.contentLanguage, customTime: meta.customTime,
  };
}

function verifyHashes(req, sums) {
  const h = req.headers['x-goog-hash'];
  if (!h) return;
  for (const part of String(h).split(',')) {
    const i = part.indexOf('='); if (i < 0) continue;
    const k = part.slice(0, i).trim(); const v = part.slice(i + 1).trim();
    if (k === 'crc32c' && v !== sums.crc32c) throw badRequest(`Provided CRC32C "${v}" doesn't match calculated CRC32C "${sums.crc32c}".`);
    if (k === 'md5' && v !== sums.md5Hash) throw badRequest(`Provided MD5 hash "${v}" doesn't match calculated MD5 hash "${sums.md5Hash}".`);
  }
}

function parseJsonMeta(buf) {
  const t = buf.toString('utf8').trim();
  if (!t) return {};
  try { const o = JSON.parse(t); if (o && typeof o === 'object' && !Array.isArray(o)) return o; } catch (_) { /* fallthrough */ }
  throw badRequest('Metadata part is not valid JSON.', 'parseError');
}

async function finishUpload(req, res, ctx, bucket, name, sink, meta, q) {
  const sums = await sink.close();
  try { verifyHashes(req, sums); if (meta.crc32c && meta.crc32c !== sums.crc32c) throw badRequest(`Provided CRC32C "${meta.crc32c}" doesn't match calculated CRC32C "${sums.crc32c}".`); if (meta.md5Hash && meta.md5Hash !== sums.md5Hash) throw badRequest(`Provided MD5 hash "${meta.md5Hash}" doesn't match calculated MD5 hash "${sums.md5Hash}".`); checkPreconditions(q, ctx.gcs.getObject(bucket, name)); } catch (e) { sink.abort(); throw e; }
  if (!ctx.gcs.getBucket(bucket)) { sink.abort(); throw notFoundBucket(); }
  const m = ctx.gcs.commit(bucket, name, sink.tmpPath, sums, uploadOpts(meta, req));
  sendJson(res, 200, objectJson(req, m));
}

async function uploadMedia(req, res, ctx, bucket, q) {
  const name = q.get('name');
  checkObjectName(name);
  checkPreconditions(q, ctx.gcs.getObject(bucket, name));
  const sink = ctx.gcs.newSink();
  try { await pump(req, sink); } catch (e) { sink.abort(); throw e; }
  await finishUpload(req, res, ctx, bucket, name, sink, { contentType: req.headers['content-type'] }, q);
}

async function uploadMultipart(req, res, ctx, bucket, q) {
  const ct = req.headers['content-type'] || '';
  const bm = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(ct);
  if (!/^multipart\//i.test(ct) || !bm) throw badRequest('Content-Type must be multipart/related with a boundary.');
  const boundary = bm[1] || bm[2];
  const delim = Buffer.from('--' + boundary);
  const closeDelim = Buffer.from('\r\n--' + boundary);
  const HEAD_MAX = 16 * 1024 * 1024;
  let head = Buffer.alloc(0); let meta = null; let mediaType = null;
  const sink = ctx.gcs.newSink();
  let pending = Buffer.alloc(0); const K = closeDelim.length + 8;
  try {
    for await (const chunk of req) {
      if (meta === null) {
        head = Buffer.concat([head, chunk]);
        if (head.length > HEAD_MAX) throw badRequest('Multipart metadata part too large.');
        // --b CRLF headers CRLFCRLF json CRLF--b CRLF headers CRLFCRLF data
        const p0 = head.indexOf(delim); if (p0 < 0) continue;
        const h1 = head.indexOf('\r\n\r\n', p0); if (h1 < 0) continue;
        const p1 = head.indexOf(closeDelim, h1 + 4); if (p1 < 0) continue;
        const h2 = head.indexOf('\r\n\r\n', p1 + closeDelim.length); if (h2 < 0) continue;
        meta = parseJsonMeta(head.subarray(h1 + 4, p1));
        const hdrs = head.subarray(p1 + closeDelim.length, h2).toString('latin1');
        const mt = /content-type:\s*([^\r\n]+)/i.exec(hdrs);
        mediaType = mt ? mt[1].trim() : null;
        pending = head.subarray(h2 + 4); head = null;
      } else if (chunk.length > K) {
        // the last K bytes may start the closing delimiter: hold back only those, copy nothing else
        if (pending.length) await sink.write(pending);
        await sink.write(chunk.subarray(0, chunk.length - K));
        pending = Buffer.from(chunk.subarray(chunk.length - K));
        continue;
      } else {
        pending = Buffer.concat([pending, chunk]);
      }
      if (pending.length > K) { await sink.write(pending.subarray(0, pending.length - K)); pending = Buffer.from(pending.subarray(pending.length - K)); }
    }
    if (meta === null) throw badRequest('Malformed multipart body.');
    const end = pending.lastIndexOf(closeDelim);
    if (end < 0) throw badRequest('Malformed multipart body: missing closing boundary.');
    await sink.write(pending.subarray(0, end));
  } catch (e) { sink.abort(); throw e; }
  const name = meta.name || q.get('name');
  try { checkObjectName(name); } catch (e) { sink.abort(); throw e; }
  if (!meta.contentType && mediaType) meta.contentType = mediaType;
  await finishUpload(req, res, ctx, bucket, name, sink, meta, q);
}

async function startResumable(req, res, ctx, bucket, q) {
  const meta = parseJsonMeta(await readAll(req));
  const name = meta.name || q.get('name');
  checkObjectName(name);
  checkPreconditions(q, ctx.gcs.getObject(bucket, name));
  const id = crypto.randomBytes(24).toString('base64url');
  const total = req.headers['x-upload-content-length'];
  ctx.uploads.set(id, {
    bucket, name, meta: Object.assign({}, meta, { contentType: meta.contentType || req.headers['x-upload-content-type'] }),
    query: q.toString(), sink: ctx.gcs.newSink(), persisted: 0,
    total: total !== undefined ? parseInt(total, 10) : null, result: null,
  });
  const loc = `${baseUrl(req)}/upload/storage/v1/b/${bucket}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
  res.writeHead(200, { Location: loc, 'X-GUploader-UploadID': id, 'Content-Length': 0 });
  res.end();
}

function sendIncomplete(res, s) {
  const h = { 'Content-Length': 0 };
  if (s.persisted > 0) h.Range = `bytes=0-${s.persisted - 1}`;
  res.writeHead(308, h); res.end();
}

async function resumableFinalize(req, res, ctx, s, id) {
  const q = new URLSearchParams(s.query);
  const sums = await s.sink.close();
  try { verifyHashes(req, sums); checkPreconditions(q, ctx.gcs.getObject(s.bucket, s.name)); } catch (e) { s.sink.abort(); ctx.uploads.delete(id); throw e; }
  if (!ctx.gcs.getBucket(s.bucket)) { s.sink.abort(); ctx.uploads.delete(id); throw notFoundBucket(); }
  const m = ctx.gcs.commit(s.bucket, s.name, s.sink.tmpPath, sums, uploadOpts(s.meta, req));
  s.result = m;
  sendJson(res, 200, objectJson(req, m));
}

const UPLOAD_QUANTUM = 256 * 1024;

// Writes to a sink only whole UPLOAD_QUANTUM units (counting from the object's first byte); the
// rest waits in `tail` until the caller writes or drops it.
class AlignedWriter {
  constructor(sink) { this.sink = sink; this.tail = Buffer.alloc(0); }
  async write(buf) {
    this.tail = this.tail.length ? Buffer.concat([this.tail, buf]) : Buffer.from(buf);
    const total = this.sink.size + this.tail.length;
    const keep = total - (total % UPLOAD_QUANTUM) - this.sink.size;
    if (keep > 0) { const out = this.tail.subarray(0, keep); this.tail = this.tail.subarray(keep); await this.sink.write(out); }
  }
}

async function resumablePut(req, res, ctx, q) {
  const id = q.get('upload_id');
  const s = ctx.uploads.get(id);
  if (!s) throw new GcsError(404, 'notFound', 'No such upload session.');
  if (s.busy) throw new GcsError(503, 'backendError', 'Another request is in progress for this upload session.');
  if (s.result) { await readAll(req, 64 * 1024 * 1024).catch(() => {}); sendJson(res, 200, objectJson(req, s.result)); return; }
  const cr = req.headers['content-range'];
  s.busy = true;
  try {
    if (!cr) {
      // no Content-Range: the whole object in one go
      if (s.persisted > 0) throw badRequest('Missing Content-Range header.');
      await pump(req, s.sink); s.persisted = s.sink.size;
      await resumableFinalize(req, res, ctx, s, id); return;
    }
    let m = /^bytes \*\/(\d+|\*)$/.exec(cr.trim());
    if (m) { // status query
      await readAll(req, 1024);
      if (m[1] !== '*') {
        const total = parseInt(m[1], 10);
        if (s.persisted === total) { await resumableFinalize(req, res, ctx, s, id); return; }
        if (s.persisted > total) throw badRequest('Content-Range total is less than the bytes already received.');
      }
      sendIncomplete(res, s); return;
    }
    m = /^bytes (\d+)-(\d+|\*)\/(\d+|\*)$/.exec(cr.trim());
    if (!m) throw badRequest(`Invalid Content-Range header: ${cr}`);
    const first = parseInt(m[1], 10);
    const last = m[2] === '*' ? null : parseInt(m[2], 10);
    const total = m[3] === '*' ? null : parseInt(m[3], 10);
    if (last !== null && last < first) throw badRequest(`Invalid Content-Range header: ${cr}`);
    if (first > s.persisted) throw badRequest(`Invalid request. The first byte ${first} is beyond the ${s.persisted} byte(s) already received; resume from there.`);
    const skip = s.persisted - first;
    // Only whole 256 KiB units of a non-final chunk are kept; the 308's Range shows what was
    // (https://cloud.google.com/storage/docs/performing-resumable-uploads: "the server may keep
    // fewer bytes than sent"; chunk sizes are multiples of 256 KiB). The client resends the rest.
    const w = new AlignedWriter(s.sink);
    let failure = null;
    try { await pump(req, w, skip); } catch (e) { failure = e; }
    const received = s.sink.size + w.tail.length;
    const isFinal = !failure && ((total !== null && received >= total) || (last === null));
    try {
      if (isFinal) await s.sink.write(w.tail);
    } finally { s.persisted = s.sink.size; }
    if (failure) throw failure;
    if (last !== null && received < last + 1) throw badRequest(`Invalid request. There were ${received - first} byte(s) in the request body, but Content-Range declared ${last - first + 1}.`);
    if (total !== null && received > total) throw badRequest('Invalid request. Received more bytes than the declared total.');
    if (isFinal) { await resumableFinalize(req, res, ctx, s, id); return; }
    sendIncomplete(res, s);
  } finally { s.busy = false; }
}

// ---- server-side copies: objects.rewrite and objects.copy ----
// POST b/SB/o/SO/rewriteTo/b/DB/o/DO and …/copyTo/… (storage_v1 discovery). Preconditions
// ifGeneration*/ifMetageneration* apply to the destination, ifSourceGeneration*/
// ifSourceMetageneration* to the source (412 when one does not hold). A rewrite moves at most
// maxBytesRewrittenPerCall (a multiple of 1 MiB; default 1 MiB here, a guess: Google decides)
// per call and answers done=false with a rewriteToken until the last call; the token is tied to
// the source generation it started from, so a source rewritten meanwhile ends the rewrite (404).
const MiB = 1024 * 1024;

function sourcePreconditions(q, src) {
  const map = { ifSourceGenerationMatch: 'ifGenerationMatch', ifSourceGenerationNotMatch: 'ifGenerationNotMatch',
    ifSourceMetagenerationMatch: 'ifMetagenerationMatch', ifSourceMetagenerationNotMatch: 'ifMetagenerationNotMatch' };
  const sq = new URLSearchParams();
  for (const [k, v] of Object.entries(map)) if (q.get(k) !== null) sq.set(v, q.get(k));
  checkPreconditions(sq, src);
}

async function rewriteOrCopy(req, res, ctx, verb, sb, sn, db, dn, q) {
  const store = ctx.gcs;
  checkObjectName(dn);
  if (!store.getBucket(sb) || !store.getBucket(db)) throw notFoundBucket();
  const meta = parseJsonMeta(await readAll(req));
  const tokens = ctx.rewrites;
  let st = null;
  if (verb === 'rewriteTo' && q.get('rewriteToken')) {
    st = tokens.get(q.get('rewriteToken'));
    if (!st || st.sb !== sb || st.sn !== sn || st.db !== db || st.dn !== dn) throw badRequest('Invalid rewrite token.');
  }
  const src = store.getObject(sb, sn);
  const wantGen = st ? st.generation : q.get('sourceGeneration');
  if (!src || (wantGen && wantGen !== src.generation)) {
    if (st) tokens.delete(q.get('rewriteToken'));
    throw notFoundObject(sb, sn);
  }
  sourcePreconditions(q, src);
  checkPreconditions(q, store.getObject(db, dn));
  if (verb === 'copyTo') { sendJson(res, 200, objectJson(req, store.copyObject(sb, sn, db, dn, meta))); return; }
  let per = MiB;
  if (q.get('maxBytesRewrittenPerCall') !== null) {
    per = Number(q.get('maxBytesRewrittenPerCall'));
    if (!Number.isInteger(per) || per <= 0 || per % MiB) throw badRequest('maxBytesRewrittenPerCall must be an integral multiple of 1048576.');
  }
  const size = Number(src.size);
  if (!st) st = { sb, sn, db, dn, generation: src.generation, written: 0, meta };
  st.written = Math.min(size, st.written + per);
  if (st.written < size) {
    let token = q.get('rewriteToken');
    if (!token) { token = crypto.randomBytes(24).toString('base64url'); tokens.set(token, st); }
    sendJson(res, 200, { kind: 'storage#rewriteResponse', totalBytesRewritten: String(st.written), objectSize: String(size), done: false, rewriteToken: token });
    return;
  }
  if (q.get('rewriteToken')) tokens.delete(q.get('rewriteToken'));
  const m = store.copyObject(sb, sn, db, dn, st.meta);
  sendJson(res, 200, { kind: 'storage#rewriteResponse', totalBytesRewritten: String(size), objectSize: String(size), done: true, resource: objectJson(req, m) });
}

// ---- dispatcher ----
async function handle(req, res, url, ctx) {
  const n = normalize(url.pathname);
  if (!n) return false;
  const q = url.searchParams;
  const segs = n.rest.split('/').slice(1); // ['b', bucket, 'o', ...name]
  if (segs[0] !== 'b') throw new GcsError(404, 'notFound', 'Not Found');
  const m = req.method;
  const store = ctx.gcs;

  if (n.kind === 'upload') {
    if (segs.length !== 3 || segs[2] !== 'o') throw new GcsError(404, 'notFound', 'Not Found');
    const bucket = decodeSeg(segs[1]);
    if (!store.getBucket(bucket)) { if (!(m === 'PUT' || m === 'DELETE')) throw notFoundBucket(); }
    const t = q.get('uploadType');
    if (m === 'POST' && t === 'media') return uploadMedia(req, res, ctx, bucket, q).then(() => true);
    if (m === 'POST' && t === 'multipart') return uploadMultipart(req, res, ctx, bucket, q).then(() => true);
    if (m === 'POST' && t === 'resumable') return startResumable(req, res, ctx, bucket, q).then(() => true);
    if ((m === 'PUT' || m === 'POST') && q.get('upload_id')) return resumablePut(req, res, ctx, q).then(() => true);
    if (m === 'DELETE' && q.get('upload_id')) {
      const s = ctx.uploads.get(q.get('upload_id'));
      if (s) { s.sink.abort(); ctx.uploads.delete(q.get('upload_id')); }
      res.writeHead(499, { 'Content-Length': 0 }); res.end(); return true;
    }
    throw badRequest(`Invalid upload type: ${t}`);
  }

  // bucket collection
  if (segs.length === 1 || (segs.length === 2 && segs[1] === '')) {
    if (m === 'POST') {
      const body = parseJsonMeta(await readAll(req));
      if (!q.get('project')) throw badRequest('Required parameter: project', 'required');
      const name = body.name;
      if (!name) throw badRequest('Required parameter: name', 'required');
      if (!validBucketName(name)) throw badRequest('Invalid bucket name: \'' + name + '\'');
      if (store.getBucket(name)) throw new GcsError(409, 'conflict', 'Your previous request to create the named bucket succeeded and you already own it.');
      const now = new Date().toISOString();
      const meta = {
        id: name, name, projectNumber: iam.projectNumber(q.get('project')), metageneration: '1',
        location: (body.location || 'US').toUpperCase(), storageClass: body.storageClass || 'STANDARD',
        etag: 'CAE=', timeCreated: now, updated: now, locationType: 'multi-region',
      };
      if (body.labels) meta.labels = body.labels;
      store.createBucket(name, meta);
      iam.onBucketCreated(ctx, name, q.get('project'));
      sendJson(res, 200, bucketJson(req, meta)); return true;
    }
    if (m === 'GET') {
      if (!q.get('project')) throw badRequest('Required parameter: project', 'required');
      const items = [...store.buckets.values()].map((b) => bucketJson(req, b.meta)).sort((a, b) => compareNames(a.name, b.name));
      const out = { kind: 'storage#buckets' };
      if (items.length) out.items = items;
      sendJson(res, 200, out); return true;
    }
    throw new GcsError(405, 'methodNotAllowed', 'Method not allowed');
  }
  const bucket = decodeSeg(segs[1]);
  if (segs.length === 2) {
    const b = store.getBucket(bucket);
    if (!b) throw notFoundBucket();
    if (m === 'GET') { sendJson(res, 200, bucketJson(req, b.meta)); return true; }
    if (m === 'PATCH') { sendJson(res, 200, bucketJson(req, await require('./gcsmeta').patchBucket(req, ctx, bucket, q))); return true; }
    if (m === 'DELETE') {
      if (b.objects.size) throw new GcsError(409, 'conflict', 'The bucket you tried to delete is not empty.');
      store.deleteBucket(bucket); res.writeHead(204); res.end(); return true;
    }
    throw new GcsError(405, 'methodNotAllowed', 'Method not allowed');
  }
  if (segs[2] === 'iam' && n.kind === 'json') return iam.handleBucketIam(req, res, ctx, bucket, segs, q);
  if (segs[2] !== 'o') throw new GcsError(404, 'notFound', 'Not Found');
  if (segs.length === 3 || (segs.length === 4 && segs[3] === '')) {
    if (m === 'GET') { listObjects(req, res, ctx, bucket, q); return true; }
    throw new GcsError(405, 'methodNotAllowed', 'Method not allowed');
  }
  // raw segments: a name's own '/' arrive as %2F, so the verb is a segment of its own
  const verbAt = segs.findIndex((s, i) => i >= 4 && (s === 'rewriteTo' || s === 'copyTo') && segs[i + 1] === 'b' && segs[i + 3] === 'o' && segs.length > i + 4);
  if (verbAt > 0 && n.kind === 'json') {
    if (m !== 'POST') throw new GcsError(405, 'methodNotAllowed', 'Method not allowed');
    await rewriteOrCopy(req, res, ctx, segs[verbAt], bucket, decodeSeg(segs.slice(3, verbAt).join('/')),
      decodeSeg(segs[verbAt + 2]), decodeSeg(segs.slice(verbAt + 4).join('/')), q);
    return true;
  }
  const name = decodeSeg(segs.slice(3).join('/'));
  if (!store.getBucket(bucket)) throw notFoundBucket();
  if (n.kind === 'download' || ((m === 'GET' || m === 'HEAD') && q.get('alt') === 'media')) {
    download(req, res, ctx, bucket, name, q); return true;
  }
  const obj = store.getObject(bucket, name);
  if (m === 'GET') {
    if (!obj || (q.get('generation') && q.get('generation') !== obj.generation)) throw notFoundObject(bucket, name);
    checkPreconditions(q, obj);
    sendJson(res, 200, objectJson(req, obj)); return true;
  }
  if (m === 'PATCH') { sendJson(res, 200, objectJson(req, await require('./gcsmeta').patchObject(req, ctx, bucket, name, q))); return true; }
  if (m === 'DELETE') {
    if (!obj) throw notFoundObject(bucket, name);
    checkPreconditions(q, obj);
    store.deleteObject(bucket, name); res.writeHead(204); res.end(); return true;
  }
  throw new GcsError(405, 'methodNotAllowed', 'Method not allowed');
}

module.exports = { handle, normalize, globToRegExp, objectJson };
