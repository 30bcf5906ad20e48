'use strict';
// Feeds the emulator a steady stream of DICOM files for bench/watch.sh:
//   node bench/watch_feed.js HOST BUCKET TEMPLATE.dcm UID_PART RATE SECONDS OUT.jsonl
// Every file is TEMPLATE with UID_PART (a piece of its SOP Instance UID, e.g. "77777777.1.1.1")
// replaced by a same-length piece holding a counter, so each one is a distinct instance. Files
// are written as incoming/f<counter>.dcm at RATE a second (evenly spaced, not in bursts);
// OUT gets {name, sop, arrived} (ms since the epoch, when the upload was answered) per file.
const fs = require('fs');
const http = require('http');

const [host, bucket, template, part, rate, seconds, out] = process.argv.slice(2);
const tpl = fs.readFileSync(template);
const marker = Buffer.from(part, 'latin1');
const at = [];
for (let i = tpl.indexOf(marker); i >= 0; i = tpl.indexOf(marker, i + 1)) at.push(i);
if (at.length !== 2) { console.error(`watch_feed: expected the UID piece twice in the template, found ${at.length}`); process.exit(1); }
const tail = part.slice(part.indexOf('.'));          // ".1.1.1"
const width = part.length - tail.length - 1;          // digits after a leading 9
const [hostname, port] = host.split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
const log = fs.createWriteStream(out);
const total = Math.round(Number(rate) * Number(seconds));
const gap = 1000 / Number(rate);
let sent = 0; let done = 0; let failed = 0;

function put(n) {
  const body = Buffer.from(tpl);
  const piece = Buffer.from('9' + String(n).padStart(width, '0') + tail, 'latin1');
  for (const i of at) piece.copy(body, i);
  const name = `incoming/f${String(n).padStart(7, '0')}.dcm`;
  const req = http.request({ hostname, port, agent, method: 'POST',
    path: `/upload/storage/v1/b/${bucket}/o?uploadType=media&name=${encodeURIComponent(name)}`,
    headers: { 'Content-Type': 'application/dicom', 'Content-Length': body.length, Authorization: 'Bearer bench' } }, (res) => {
    res.resume();
    res.on('end', () => {
      if (res.statusCode === 200) log.write(JSON.stringify({ name, sop: piece.toString('latin1'), arrived: Date.now() }) + '\n');
      else failed++;
      if (++done === total) log.end(() => { console.error(`watch_feed: ${total - failed} files written, ${failed} failed`); process.exit(failed ? 1 : 0); });
    });
  });
  req.on('error', () => { failed++; if (++done === total) process.exit(1); });
  req.end(body);
}

const start = Date.now();
(function tick() {
  const due = Math.min(total, Math.floor((Date.now() - start) / gap) + 1);
  while (sent < due) put(sent++);
  if (sent < total) setTimeout(tick, Math.max(1, gap / 2));
})();
