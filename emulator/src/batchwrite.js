'use strict';
// Body bytes written to a file in one writev per BATCH bytes. A request body arrives a TLS record
// (~8-16 KiB) at a time; one write call per chunk was most of the emulator's system time on
// uploads and STOW (132,000 calls per 1,000 MiB, 4,000 gathered; emulator/README.md). Writes stay
// synchronous: a page-cache write costs less than a trip through libuv's thread pool. The caller
// never changes a chunk after handing it over (stream chunks, or fresh subarrays of them).
// STOW bodies are written here; uploads gather by the same BATCH for their writer thread
// (gcsstore.js).
const fs = require('fs');

const BATCH = 256 * 1024;

class BatchedWriter {
  constructor(fd) { this.fd = fd; this.bufs = []; this.len = 0; }

  write(buf) {
    if (!buf.length) return;
    this.bufs.push(buf); this.len += buf.length;
    if (this.len >= BATCH) this.flush();
  }

  /** Write everything gathered (throws what writev throws, e.g. ENOSPC). */
  flush() {
    let bufs = this.bufs, left = this.len;
    this.bufs = []; this.len = 0;
    while (left > 0) {
      const n = fs.writevSync(this.fd, bufs);
      left -= n;
      if (left > 0) { const all = Buffer.concat(bufs); bufs = [all.subarray(all.length - left)]; }
    }
  }

  /** Drop what was gathered (the file is being thrown away). */
  discard() { this.bufs = []; this.len = 0; }
}

module.exports = { BatchedWriter, BATCH };
