#!/usr/bin/env node
'use strict';
// The JavaScript dicomweb-client doing bench/stow.sh's STOW work: every file of DIR, one
// storeInstances() call per instance, CONCURRENCY calls in flight (xhr2 as XMLHttpRequest).
//   node bench/node/stow.js BASE_URL DIR CONCURRENCY
// Exits non-zero unless every instance was accepted; prints {"instances": N, "seconds": S}.
global.XMLHttpRequest = require('xhr2');
const fs = require('fs');
const path = require('path');
const { api } = require('dicomweb-client');

async function main() {
  const [url, dir, conc] = process.argv.slice(2);
  const files = fs.readdirSync(dir).filter((n) => n.endsWith('.dcm')).map((n) => path.join(dir, n));
  const client = new api.DICOMwebClient({ url, singlepart: false });
  let next = 0; let failed = 0;
  const t0 = process.hrtime.bigint();
  async function worker() {
    while (next < files.length) {
      const f = files[next++];
      const buf = await fs.promises.readFile(f);
      const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
      try { await client.storeInstances({ datasets: [ab] }); } catch (e) { failed++; if (failed < 3) console.error(f, e && (e.status || e.message || e)); }
    }
  }
  await Promise.all(Array.from({ length: Number(conc) || 16 }, worker));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ instances: files.length - failed, failed, seconds: s }));
  if (failed) process.exit(1);
}
main().catch((e) => { console.error(e); process.exit(1); });
