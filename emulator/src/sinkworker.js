'use strict';
// The other half of an upload sink (gcsstore.js): on one worker thread, each sink's bytes are
// hashed (CRC32C, MD5) and written to its temp file, in the order they were sent. The emulator's
// one thread was the ceiling for every client's uploads, and MD5 plus the write were more than
// half of its time per byte (emulator/README.md, "Its own speed").
//
// Messages in:  {op:'open', id, path}  {op:'write', id, buf, n}  {op:'close', id}  {op:'abort', id}
// Messages out: {op:'ack', n}  after each write (the sender's bound on bytes in flight)
//               {op:'closed', id, crc, md5, err}  once the file is complete and its fd closed
// The worker opens each sink's file (O_EXCL: never one that exists) and is the only one to close
// it, after its last write, so no write can land in a file that reused the number.
const { parentPort } = require('worker_threads');
const fs = require('fs');
const crypto = require('crypto');
const crc32c = require('./crc32c');

const sinks = new Map();

function writeAll(fd, buf) {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
}

function release(id) {
  const s = sinks.get(id);
  if (!s) return null;
  sinks.delete(id);
  if (s.fd !== null) { try { fs.closeSync(s.fd); } catch (e) { if (!s.err) s.err = e.message; } }
  return s;
}

parentPort.on('message', (m) => {
  if (m.op === 'open') {
    const s = { fd: null, crc: 0, md5: crypto.createHash('md5'), err: null };
    try { s.fd = fs.openSync(m.path, 'wx'); } catch (e) { s.err = e.message; }
    sinks.set(m.id, s);
    return;
  }
  if (m.op === 'write') {
    const s = sinks.get(m.id);
    const buf = Buffer.from(m.buf, 0, m.n);
    if (s && !s.err) {
      try { s.crc = crc32c.update(s.crc, buf); s.md5.update(buf); writeAll(s.fd, buf); } catch (e) { s.err = e.message; }
    }
    parentPort.postMessage({ op: 'ack', n: buf.length });
    return;
  }
  if (m.op === 'close') {
    const s = release(m.id);
    if (!s) { parentPort.postMessage({ op: 'closed', id: m.id, err: 'unknown sink' }); return; }
    parentPort.postMessage({ op: 'closed', id: m.id, crc: s.crc, md5: s.err ? null : s.md5.digest('base64'), err: s.err });
    return;
  }
  if (m.op === 'abort') release(m.id);
});
