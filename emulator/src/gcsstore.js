'use strict';
// Cloud Storage data, kept on disk under DIR/gcs:
//   DIR/gcs/<bucket>/bucket.json
//   DIR/gcs/<bucket>/o/<sha256(object name)>.bin   the bytes
//   DIR/gcs/<bucket>/o/<sha256(object name)>.json  the metadata (holds the real name)
// Bucket names are checked against Google's rules (only [a-z0-9._-]) before touching the disk,
// and object names never reach a path: only their hash does, so no name can escape DIR.
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const crc32c = require('./crc32c');
const { validBucketName } = require('./wildcard');
const { Worker } = require('worker_threads');
const { BATCH } = require('./batchwrite');
const { fileName } = require('./ids');

let genCounter = 0;
function newGeneration() {
  // microseconds since the epoch, made strictly increasing
  const g = Date.now() * 1000 + (genCounter++ % 1000);
  return String(g);
}

// Hashing and writing happen on one worker thread (sinkworker.js); this side gathers the body's
// chunks into one message per BATCH bytes (batchwrite.js: a body arrives one TLS record, ~8-16
// KiB, at a time) and bounds the bytes handed over but not yet written, across all sinks, by
// sinkLimits.inflightMax.
const sinkLimits = { inflightMax: 32 * 1024 * 1024 };   // tests lower it to make requests wait
const sinkStats = { waits: 0 };
let worker = null; let nextSinkId = 0; let inflight = 0;
const waiters = []; const closing = new Map();

function sinkWorker() {
  if (worker) return worker;
  const w = new Worker(path.join(__dirname, 'sinkworker.js'));
  w.on('message', (m) => {
    if (m.op === 'ack') {
      inflight -= m.n;
      while (waiters.length && inflight < sinkLimits.inflightMax) waiters.shift()();
    } else if (m.op === 'closed') {
      const done = closing.get(m.id); closing.delete(m.id);
      if (done) done(m);
    }
  });
  w.on('error', (e) => {
    // The sinks it held are lost: their uploads fail (a 5xx the client retries); later sinks get a new worker.
    process.stderr.write(`dicomgcs emulator: upload worker: ${e.stack || e}\n`);
    if (worker === w) worker = null;
    for (const done of closing.values()) done({ err: `upload worker failed: ${e.message}` });
    closing.clear(); inflight = 0;
    waiters.splice(0).forEach((wake) => wake());
  });
  w.unref();   // never what keeps the emulator running (after the listeners: adding one refs it again)
  worker = w;
  return w;
}

class Sink {
  // Streams bytes to a temp file while computing size, CRC32C and MD5.
  constructor(tmpDir) {
    this.tmpPath = path.join(tmpDir, fileName('up'));
    this.w = sinkWorker(); this.id = ++nextSinkId;
    this.w.postMessage({ op: 'open', id: this.id, path: this.tmpPath });
    this.bufs = []; this.len = 0; this.size = 0; this.done = false; this.sums = null;
  }
  async write(buf) {
    if (!buf.length) return;
    if (this.done) throw new Error('upload sink closed');
    this.size += buf.length;
    this.bufs.push(buf); this.len += buf.length;
    if (this.len >= BATCH) {
      this.send();
      if (inflight >= sinkLimits.inflightMax) { sinkStats.waits++; await new Promise((wake) => waiters.push(wake)); }
    }
  }
  send() {
    if (!this.len) return;
    const n = this.len; const out = Buffer.allocUnsafeSlow(n);   // its own ArrayBuffer: transferable
    let off = 0;
    for (const b of this.bufs) { b.copy(out, off); off += b.length; }
    this.bufs = []; this.len = 0; inflight += n;
    this.w.postMessage({ op: 'write', id: this.id, buf: out.buffer, n }, [out.buffer]);
  }
  async close() {
    if (!this.done) {
      this.send(); this.done = true;
      const r = await new Promise((done) => { closing.set(this.id, done); this.w.postMessage({ op: 'close', id: this.id }); });
      if (r.err) throw new Error(`upload sink: ${r.err}`);
      this.sums = { size: this.size, crc32c: crc32c.toBase64(r.crc), md5Hash: r.md5 };
    }
    if (!this.sums) throw new Error('upload sink closed');
    return this.sums;
  }
  abort() {
    this.bufs = []; this.len = 0;
    if (!this.done) { this.done = true; this.w.postMessage({ op: 'abort', id: this.id }); }
    fs.rm(this.tmpPath, { force: true }, () => {});
  }
}

class GcsStore {
  constructor(dir) {
    this.root = path.join(dir, 'gcs');
    this.tmp = path.join(dir, 'tmp');
    fs.mkdirSync(this.root, { recursive: true });
    fs.mkdirSync(this.tmp, { recursive: true });
    this.buckets = new Map(); // name -> {meta, objects: Map(name -> meta)}
    this.load();
  }

  load() {
    for (const b of fs.readdirSync(this.root)) {
      if (!validBucketName(b)) continue;
      try {
        const meta = JSON.parse(fs.readFileSync(path.join(this.root, b, 'bucket.json'), 'utf8'));
        const objects = new Map();
        const od = path.join(this.root, b, 'o');
        for (const f of fs.existsSync(od) ? fs.readdirSync(od) : []) {
          if (!f.endsWith('.json')) continue;
          try { const m = JSON.parse(fs.readFileSync(path.join(od, f), 'utf8')); objects.set(m.name, m); } catch (_) { /* skip */ }
        }
        this.buckets.set(b, { meta, objects, sorted: null });
      } catch (_) { /* not a bucket dir */ }
    }
  }

  reset() {
    this.buckets.clear();
    fs.rmSync(this.root, { recursive: true, force: true });
    fs.mkdirSync(this.root, { recursive: true });
  }

  bucketDir(b) { if (!validBucketName(b)) throw new Error('bad bucket name'); return path.join(this.root, b); }
  key(name) { return crypto.createHash('sha256').update(name, 'utf8').digest('hex'); }
  dataPath(b, name) { return path.join(this.bucketDir(b), 'o', this.key(name) + '.bin'); }
  metaPath(b, name) { return path.join(this.bucketDir(b), 'o', this.key(name) + '.json'); }

  getBucket(b) { return this.buckets.get(b) || null; }

  createBucket(name, meta) {
    const dir = this.bucketDir(name);
    fs.mkdirSync(path.join(dir, 'o'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'bucket.json'), JSON.stringify(meta));
    const entry = { meta, objects: new Map(), sorted: null };
    this.buckets.set(name, entry);
    return entry;
  }

  deleteBucket(name) {
    fs.rmSync(this.bucketDir(name), { recursive: true, force: true });
    this.buckets.delete(name);
  }

  /** Sorted object names of a bucket (cached until the next change). */
  names(b) {
    const e = this.buckets.get(b);
    if (!e) return [];
    if (!e.sorted) e.sorted = [...e.objects.keys()].sort(compareNames);
    return e.sorted;
  }

  getObject(b, name) { const e = this.buckets.get(b); return (e && e.objects.get(name)) || null; }

  newSink() { return new Sink(this.tmp); }

  /** Move a finished sink's temp file into place as object (b, name). */
  commit(b, name, tmpPath, sums, opts = {}) {
    const e = this.buckets.get(b);
    const now = new Date().toISOString();
    const generation = newGeneration();
    const prev = e.objects.get(name);
    const meta = {
      name, bucket: b, generation, metageneration: '1',
      contentType: opts.contentType || 'application/octet-stream',
      size: String(sums.size), crc32c: sums.crc32c, md5Hash: sums.md5Hash,
      timeCreated: now, updated: now, timeStorageClassUpdated: now, storageClass: 'STANDARD',
    };
    for (const k of ['metadata', 'cacheControl', 'contentDisposition', 'contentEncoding', 'contentLanguage', 'customTime']) {
      if (opts[k] !== undefined && opts[k] !== null) meta[k] = opts[k];
    }
    fs.renameSync(tmpPath, this.dataPath(b, name));
    fs.writeFileSync(this.metaPath(b, name), JSON.stringify(meta));
    e.objects.set(name, meta);
    if (!prev) e.sorted = null;
    return meta;
  }

  /** Server-side copy of (sb, sn) to (db, dn): a new generation of the destination with the
   * source's bytes and checksums; `meta` overrides the copied metadata (rewrite/copy bodies). */
  copyObject(sb, sn, db, dn, meta = {}) {
    const src = this.getObject(sb, sn);
    const tmpPath = path.join(this.tmp, fileName('cp'));
    fs.copyFileSync(this.dataPath(sb, sn), tmpPath);
    const opts = {};
    for (const k of ['contentType', 'metadata', 'cacheControl', 'contentDisposition', 'contentEncoding', 'contentLanguage', 'customTime']) {
      opts[k] = meta[k] !== undefined ? meta[k] : src[k];
    }
    return this.commit(db, dn, tmpPath, { size: Number(src.size), crc32c: src.crc32c, md5Hash: src.md5Hash }, opts);
  }

  deleteObject(b, name) {
    const e = this.buckets.get(b);
    fs.rmSync(this.dataPath(b, name), { force: true });
    fs.rmSync(this.metaPath(b, name), { force: true });
    e.objects.delete(name);
    e.sorted = null;
  }

  /** Copy a local file into an object (used by export). */
  async putFile(b, name, srcPath, contentType) {
    const sink = this.newSink();
    try {
      for await (const chunk of fs.createReadStream(srcPath, { highWaterMark: 1 << 20 })) await sink.write(chunk);
      const sums = await sink.close();
      return this.commit(b, name, sink.tmpPath, sums, { contentType });
    } catch (e) { sink.abort(); throw e; }
  }

  async putBuffer(b, name, buf, contentType) {
    const sink = this.newSink();
    try {
      await sink.write(buf);
      const sums = await sink.close();
      return this.commit(b, name, sink.tmpPath, sums, { contentType });
    } catch (e) { sink.abort(); throw e; }
  }
}

// GCS orders names by their UTF-8 bytes.
function compareNames(a, b) {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

module.exports = { GcsStore, Sink, compareNames, sinkLimits, sinkStats };
