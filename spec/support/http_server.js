#!/usr/bin/env node
// Test server for spec/engine_spec.lua. Listens on 127.0.0.1, a free port; prints
// "PORT <port> PID <pid>" on stdout. Stops itself after IDLE_MS without a request or
// MAX_MS in all, or on SIGTERM/SIGINT.
//
// Routes (query parameters in brackets):
//   /echo[?status=&fail=&key=] JSON {method, url, headers, length, sha256, body (<= 64 KiB)};
//                              the first `fail` requests of key answer 503 (after the body)
//   /status?code=[&n=&key=&retry_after=&body=]   `code` for the first n requests of key
//                              (default: always), then 200 "ok"
//   /bytes?n=                  n bytes, byte i = i % 251, with Content-Length
//   /range?n=[&key=&fail=]     an object of n bytes (byte i = i % 251) honouring one
//                              "Range: bytes=a-b" (206 + Content-Range, 416 outside); the first
//                              `fail` requests of key send up to 1000 bytes of 'E' and drop
//   /reset?[n=&key=&size=]     the first n requests (default all) of key: headers promising
//                              `size` bytes (default 100000), 1000 bytes, then the socket is
//                              destroyed; later ones get the whole body
//   /stall                     headers and 10 bytes, then silence (socket dropped after 30 s)
//   /delay?ms=                 200 after ms
//   /slow?n=&chunk=&interval=  n bytes in chunks every interval ms
//   /auth?key=[&reject=]       401 when the bearer token equals reject, else 200 + JSON
//   /_log?key=                 JSON list of {t (ms since start, float), method, auth} for key
//   /stuck308/KEY/N/…          a Cloud Storage root whose resumable sessions never progress:
//                              GET → {"items":[]}, POST → 200 + Location of a session, and the
//                              first N PUTs (logged under KEY) → 308 without Range, then 200 {}
'use strict';
const http = require('http');
const crypto = require('crypto');

const IDLE_MS = Number(process.env.HTTP_SERVER_IDLE_MS || 120000);
const MAX_MS = Number(process.env.HTTP_SERVER_MAX_MS || 900000);
const t0 = process.hrtime.bigint();
const nowMs = () => Number(process.hrtime.bigint() - t0) / 1e6;

const logs = new Map();
const counters = new Map();
function record(key, req) {
  if (!key) return;
  if (!logs.has(key)) logs.set(key, []);
  logs.get(key).push({ t: nowMs(), method: req.method, auth: req.headers.authorization || null });
}
function bump(key) {
  const n = (counters.get(key) || 0) + 1;
  counters.set(key, n);
  return n;
}

function pattern(start, len) {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = (start + i) % 251;
  return b;
}

function streamBytes(res, total, chunk, interval, done) {
  let sent = 0;
  const step = () => {
    while (sent < total) {
      const n = Math.min(chunk, total - sent);
      const ok = res.write(pattern(sent, n));
      sent += n;
      if (interval > 0) { if (sent < total) setTimeout(step, interval); else done(); return; }
      if (!ok) { res.once('drain', step); return; }
    }
    done();
  };
  step();
}

let idleTimer = null;
function touch() {
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = setTimeout(() => process.exit(0), IDLE_MS);
  idleTimer.unref();
}
setTimeout(() => process.exit(0), MAX_MS).unref();

const server = http.createServer((req, res) => {
  touch();
  const u = new URL(req.url, 'http://x');
  const q = (k, d) => (u.searchParams.has(k) ? u.searchParams.get(k) : d);
  const key = q('key', null);
  const path = u.pathname;
  if (path !== '/_log') record(key, req);

  if (path === '/_log') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(logs.get(key) || []));
    return;
  }
  if (path.startsWith('/stuck308/')) {
    const [, skey, sn] = path.split('/').slice(1);
    if (path.includes('/session')) record(skey, req);
    req.resume();
    req.on('end', () => {
      if (req.method === 'GET') { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"items":[]}'); return; }
      if (req.method === 'POST') {
        const loc = `http://127.0.0.1:${server.address().port}/stuck308/${skey}/${sn}/session`;
        res.writeHead(200, { location: loc, 'content-length': 0 }); res.end(); return;
      }
      if (req.method === 'PUT' && bump(skey) <= Number(sn)) { res.writeHead(308, { 'content-length': 0 }); res.end(); return; }
      res.writeHead(200, { 'content-type': 'application/json' }); res.end('{}');
    });
    return;
  }
  if (path === '/echo' || path === '/upload') {
    const h = crypto.createHash('sha256');
    let length = 0;
    const keep = [];
    req.on('data', (c) => { h.update(c); length += c.length; if (length <= 65536) keep.push(c); });
    req.on('end', () => {
      const out = {
        method: req.method, url: req.url, headers: req.headers, length,
        sha256: h.digest('hex'),
        body: length <= 65536 ? Buffer.concat(keep).toString('latin1') : null,
      };
      const fail = Number(q('fail', 0));
      const status = fail > 0 && key && bump(key) <= fail ? 503 : Number(q('status', 200));
      res.writeHead(status, {
        'content-type': 'application/json', 'x-multi': ['a', 'b'],
      });
      res.end(JSON.stringify(out));
    });
    return;
  }
  // the other routes ignore request bodies
  req.resume();
  if (path === '/status') {
    const code = Number(q('code', 500));
    const n = Number(q('n', Infinity));
    const count = key ? bump(key) : 1;
    if (count <= n) {
      const headers = { 'content-type': 'text/plain' };
      if (u.searchParams.has('retry_after')) headers['retry-after'] = q('retry_after');
      res.writeHead(code, headers);
      res.end(q('body', 'failure ' + count));
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok after ' + (count - 1));
    }
    return;
  }
  if (path === '/bytes') {
    const n = Number(q('n', 0));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
    streamBytes(res, n, 65536, 0, () => res.end());
    return;
  }
  if (path === '/range') {
    const n = Number(q('n', 0));
    let a = 0, b = n - 1, status = 200;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range || '');
    if (m) {
      a = Number(m[1]);
      b = m[2] === '' ? n - 1 : Math.min(Number(m[2]), n - 1);
      if (a >= n || b < a) {
        res.writeHead(416, { 'content-type': 'text/plain', 'content-range': `bytes */${n}` });
        res.end('range not satisfiable');
        return;
      }
      status = 206;
    }
    const len = b - a + 1;
    const headers = { 'content-type': 'application/octet-stream', 'content-length': len };
    if (status === 206) headers['content-range'] = `bytes ${a}-${b}/${n}`;
    res.writeHead(status, headers);
    const fail = Number(q('fail', 0));
    if (fail > 0 && key && bump(key) <= fail) {
      res.write(Buffer.alloc(Math.min(1000, Math.max(len - 1, 0)), 'E'));
      setTimeout(() => req.socket.destroy(), 20);
      return;
    }
    const step = 65536;
    let off = a;
    const more = () => {
      while (off <= b) {
        const k = Math.min(step, b - off + 1);
        const ok = res.write(pattern(off, k));
        off += k;
        if (!ok) { res.once('drain', more); return; }
      }
      res.end();
    };
    more();
    return;
  }
  if (path === '/slow') {
    const n = Number(q('n', 1000));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
    streamBytes(res, n, Number(q('chunk', 100)), Number(q('interval', 50)), () => res.end());
    return;
  }
  if (path === '/reset') {
    const size = Number(q('size', 100000));
    const n = Number(q('n', Infinity));
    const count = key ? bump(key) : 1;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    if (count <= n) {
      res.write(pattern(0, 1000));
      setTimeout(() => req.socket.destroy(), 20);
    } else {
      res.end(pattern(0, size));
    }
    return;
  }
  if (path === '/stall') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 1000 });
    res.write(pattern(0, 10));
    const t = setTimeout(() => req.socket.destroy(), 30000);
    req.socket.on('close', () => clearTimeout(t));
    return;
  }
  if (path === '/delay') {
    setTimeout(() => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('late'); },
      Number(q('ms', 100)));
    return;
  }
  if (path === '/auth') {
    const auth = req.headers.authorization || '';
    if (u.searchParams.has('reject') && auth === 'Bearer ' + q('reject')) {
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' });
      res.end('token rejected');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ auth }));
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('no route ' + path);
});
server.keepAliveTimeout = 30000;

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port} PID ${process.pid}\n`);
  touch();
});
for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(s, () => process.exit(0));
