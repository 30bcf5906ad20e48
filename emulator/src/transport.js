'use strict';
// How the emulator is reached, so that clients can be measured where Google really is: HTTP/2 over
// TLS (ALPN h2, http/1.1) with a certificate made for 127.0.0.1/localhost by a CA generated into
// the data dir, or cleartext HTTP/1.1 and h2c with prior knowledge on one port; a response delay
// (--latency-ms) as a remote region adds; counts of the connections clients opened.
const fs = require('fs');
const http = require('http');
const http2 = require('http2');
const net = require('net');
const { Duplex } = require('stream');
const path = require('path');
const { execFileSync } = require('child_process');

// Google's front ends announce SETTINGS_MAX_CONCURRENT_STREAMS = 100 and INITIAL_WINDOW_SIZE =
// 1 MiB, and open the connection window to 1 MiB (observed: `nghttp -v https://www.google.com/`,
// `curl -v --http2` against storage.googleapis.com; a guess for the upload endpoints, listed in
// emulator/README.md). Never offer a client more; Node's defaults (64 KiB windows) would make the
// emulator slower than Google at uploads.
const MAX_CONCURRENT_STREAMS = 100;
const WINDOW = 1024 * 1024;
// Node refuses new streams (ENHANCE_YOUR_CALM, curl error 92) once a session buffers more than
// maxSessionMemory (default 10 MB): 100 streams of 1 MiB downloads held by --latency-ms pass it.
// Google does not refuse a client that stays within its stream limit.
const SESSION_MEMORY_MB = 512;

/** CA and server certificate in DIR (made once with the openssl CLI, then reused). */
function ensureCerts(dir) {
  const f = {
    ca: path.join(dir, 'tls-ca.pem'), caKey: path.join(dir, 'tls-ca-key.pem'),
    cert: path.join(dir, 'tls-cert.pem'), key: path.join(dir, 'tls-key.pem'),
  };
  if (Object.values(f).every((p) => fs.existsSync(p))) return f;
  const tmp = fs.mkdtempSync(path.join(dir, '.tls-'));
  const t = (n) => path.join(tmp, n);
  const ossl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '3650',
      '-subj', '/CN=dicomgcs emulator test CA', '-keyout', t('ca-key.pem'), '-out', t('ca.pem'),
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=127.0.0.1',
      '-keyout', t('key.pem'), '-out', t('csr.pem'));
    fs.writeFileSync(t('ext.cnf'), 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n' +
      'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
    ossl('x509', '-req', '-in', t('csr.pem'), '-CA', t('ca.pem'), '-CAkey', t('ca-key.pem'), '-CAcreateserial',
      '-days', '825', '-extfile', t('ext.cnf'), '-out', t('cert.pem'));
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new Error(`cannot make a TLS certificate with openssl: ${e.stderr ? e.stderr.toString().trim() : e.message}`);
  }
  // the CA last: its presence says the set is complete
  fs.renameSync(t('key.pem'), f.key); fs.renameSync(t('cert.pem'), f.cert);
  fs.renameSync(t('ca-key.pem'), f.caKey); fs.renameSync(t('ca.pem'), f.ca);
  fs.rmSync(tmp, { recursive: true, force: true });
  return f;
}

/**
 * The server for HANDLER(req, res): opts.tls → HTTP/2 over TLS with HTTP/1.1 beside it;
 * opts.h2c → cleartext HTTP/1.1 and HTTP/2 with prior knowledge on one port; else plain HTTP/1.1.
 * Returns the server (listen/close/address/closeAllConnections) and `stats` (connections).
 */
function createServer(handler, opts, dataDir) {
  const stats = { total: 0, open: 0, http2: 0, tls: !!opts.tls, h2c: !!opts.h2c };
  const settings = { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, initialWindowSize: WINDOW };
  const count = (socket) => {
    stats.total++; stats.open++;
    socket.once('close', () => { stats.open--; });
  };
  const sessions = new Set();
  const track = (srv) => srv.on('session', (s) => {
    stats.http2++; sessions.add(s); s.once('close', () => sessions.delete(s));
    s.once('connect', () => s.setLocalWindowSize(WINDOW));
    if (!s.connecting) s.setLocalWindowSize(WINDOW);
  });
  let server;
  if (opts.tls) {
    const f = ensureCerts(dataDir);
    server = http2.createSecureServer({ key: fs.readFileSync(f.key), cert: fs.readFileSync(f.cert), allowHTTP1: true, settings, maxSessionMemory: SESSION_MEMORY_MB }, handler);
    const sockets = new Set();
    server.on('connection', (c) => { count(c); sockets.add(c); c.once('close', () => sockets.delete(c)); });
    track(server);
    server.caFile = f.ca;
    server.closeAllConnections = () => { for (const s of sessions) s.destroy(); for (const c of sockets) c.destroy(); };
    server.setTimeout(0);
  } else if (opts.h2c) {
    // One port, both protocols: the HTTP/2 connection preface starts with "PRI * HTTP/2.0", which no
    // HTTP/1.1 request line does.
    const h1 = http.createServer(handler);
    const h2 = http2.createServer({ settings, maxSessionMemory: SESSION_MEMORY_MB }, handler);
    track(h2);
    server = net.createServer((socket) => {
      count(socket);
      let head = Buffer.alloc(0);
      const route = () => {
        socket.removeListener('data', onData);
        socket.pause();
        if (head.subarray(0, 3).toString('latin1') === 'PRI') { h2.emit('connection', replay(socket, head)); return; }
        socket.unshift(head);
        h1.emit('connection', socket);
        socket.resume();
      };
      const onData = (chunk) => {
        head = Buffer.concat([head, chunk]);
        // "PRI" needs 3 bytes; fewer that already differ from it are HTTP/1.1
        if (head.length >= 3 || !Buffer.from('PRI').subarray(0, head.length).equals(head)) route();
      };
      socket.on('data', onData);
      socket.on('error', () => socket.destroy());
    });
    server.dgHttp1 = h1;
    server.closeAllConnections = () => { h1.closeAllConnections(); for (const s of sessions) s.destroy(); };
    Object.defineProperty(server, 'keepAliveTimeout', { set: (v) => { h1.keepAliveTimeout = v; }, get: () => h1.keepAliveTimeout });
    Object.defineProperty(server, 'headersTimeout', { set: (v) => { h1.headersTimeout = v; }, get: () => h1.headersTimeout });
    Object.defineProperty(server, 'requestTimeout', { set: (v) => { h1.requestTimeout = v; }, get: () => h1.requestTimeout });
  } else {
    server = http.createServer(handler);
    server.on('connection', count);
  }
  return { server, stats };
}

/** SOCKET as a Duplex that first yields HEAD (the bytes read to choose the protocol). Node's HTTP/2
 * session reads a net.Socket's handle directly, bypassing unshift(); a Duplex goes through JS. */
function replay(socket, head) {
  const d = new Duplex({
    read() { socket.resume(); },
    write(chunk, enc, cb) { socket.write(chunk, enc, cb); },
    final(cb) { socket.end(); cb(); },
    destroy(err, cb) { socket.destroy(); cb(err); },
  });
  for (const k of ['remoteAddress', 'remotePort', 'remoteFamily', 'localAddress', 'localPort']) d[k] = socket[k];
  d.setNoDelay = () => d; d.setKeepAlive = () => d; d.setTimeout = () => d;
  d.push(head);
  socket.on('data', (c) => { if (!d.push(c)) socket.pause(); });
  socket.on('end', () => d.push(null));
  socket.on('close', () => d.destroy());
  socket.on('error', (e) => d.destroy(e));
  return d;
}

/**
 * Hold RES for MS milliseconds from the handler's first answer (writeHead/write/end): handlers
 * answer once they have read the request, so this is a remote region's round trip and processing
 * time added after the request was read. Calls made meanwhile are queued, then replayed in order.
 */
function delayResponse(res, ms) {
  if (!(ms > 0)) return;
  const queue = [];
  const orig = { writeHead: res.writeHead, write: res.write, end: res.end };
  let timer = null;
  const release = () => {
    Object.assign(res, orig);
    for (const [fn, args] of queue) orig[fn].apply(res, args);
    queue.length = 0;
    res.emit('drain');
  };
  const hold = (fn) => function held(...args) {
    if (fn === 'writeHead') res.dgHeadersQueued = true;
    queue.push([fn, args]);
    if (!timer) timer = setTimeout(release, ms);
    return fn === 'write' ? false : res;
  };
  res.writeHead = hold('writeHead'); res.write = hold('write'); res.end = hold('end');
  res.once('close', () => { if (timer) clearTimeout(timer); queue.length = 0; });
}

/** Cut this request off the way the wire allows: RST_STREAM for an HTTP/2 stream (its neighbours
 * on the connection go on, as with Google's front ends), the TCP connection for HTTP/1.1. */
function resetRequest(req) {
  if (req.stream && typeof req.stream.close === 'function') req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  else if (req.socket) req.socket.destroy();
}

module.exports = { createServer, delayResponse, resetRequest, ensureCerts, MAX_CONCURRENT_STREAMS };
