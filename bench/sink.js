#!/usr/bin/env node
// Upload sink for bench/transport.sh: reads (and discards) every request body before it answers
// 200 "ok"; remembers per request the method, body length and the Expect header.
// Prints "PORT <port>" on stdout. GET /_stats → {requests, expect, bytes}; it exits on SIGTERM
// or after MAX_MS (default 10 min).
'use strict';
const http = require('http');
const stats = { requests: 0, expect: 0, bytes: 0, log: [] };
const server = http.createServer((req, res) => {
  if (req.url === '/_stats') { res.end(JSON.stringify(stats)); return; }
  let n = 0;
  req.on('data', (c) => { n += c.length; });
  req.on('end', () => {
    stats.requests++; stats.bytes += n;
    if (req.headers.expect !== undefined) stats.expect++;
    if (stats.log.length < 100) stats.log.push({ method: req.method, length: n, expect: req.headers.expect || null });
    res.end('ok\n');
  });
});
// Node answers "Expect: 100-continue" itself unless told otherwise; count it, then continue.
server.on('checkContinue', (req, res) => { res.writeContinue(); server.emit('request', req, res); });
server.listen(0, '127.0.0.1', () => process.stdout.write(`PORT ${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
setTimeout(() => process.exit(0), Number(process.env.MAX_MS || 600000)).unref();
