#!/usr/bin/env node
'use strict';
// dicomgcs emulator entry point. Usually started through emulator/start.
//   node src/main.js --data DIR [--port N] [--host 127.0.0.1] [--op-delay-ms N] [--faults JSON]
//                    [--strict-auth] [--service-account FILE]... [--token-lifetime S] [--port-file F] [--pid-file F]
//                    [--tls | --h2c] [--latency-ms N] [--latency-jitter-ms N]
const fs = require('fs');
const path = require('path');
const { parseQuota } = require('./quota');

const USAGE = 'usage: main.js --data DIR [--port N] [--host H] [--op-delay-ms N] [--log-delay-ms N] [--log-empty-pages N] [--max-concurrent-operations N] [--faults JSON] [--quota NAME=N/min]... [--quota-window-ms N] [--strict-auth] [--grant-service-agent] [--service-account FILE]... [--token-lifetime S] [--port-file FILE] [--pid-file FILE] [--tls | --h2c] [--latency-ms N] [--latency-jitter-ms N]';

function parseArgs(argv) {
  const o = { port: 0, host: '127.0.0.1', opDelayMs: 20, serviceAccounts: [], strictAuth: false };
  const need = (i, a) => { if (i + 1 >= argv.length) throw new Error(`${a} needs a value`); return argv[i + 1]; };
  const int = (v, a) => { if (!/^\d+$/.test(v)) throw new Error(`${a} needs a non-negative integer, got "${v}"`); return parseInt(v, 10); };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i]; let inline = null;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) { inline = a.slice(eq + 1); a = a.slice(0, eq); argv = argv.slice(0, i + 1).concat([inline], argv.slice(i + 1)); }
    switch (a) {
      case '--data': o.dataDir = need(i, a); i++; break;
      case '--port': o.port = int(need(i, a), a); i++; break;
      case '--host': o.host = need(i, a); i++; break;
      case '--op-delay-ms': o.opDelayMs = int(need(i, a), a); i++; break;
      case '--log-delay-ms': o.logDelayMs = int(need(i, a), a); i++; break;
      case '--log-empty-pages': o.logEmptyPages = int(need(i, a), a); i++; break;
      case '--max-concurrent-operations': o.maxConcurrentOperations = int(need(i, a), a); i++; break;
      case '--faults': try { o.faults = JSON.parse(need(i, a)); } catch (e) { throw new Error(`--faults: ${e.message}`); } i++; break;
      case '--quota': { const [k, n] = parseQuota(need(i, a)); o.quotas = Object.assign(o.quotas || {}, { [k]: n }); i++; break; }
      case '--quota-window-ms': o.quotaWindowMs = int(need(i, a), a); if (!o.quotaWindowMs) throw new Error('--quota-window-ms must be > 0'); i++; break;
      case '--strict-auth': o.strictAuth = true; break;
      case '--tls': o.tls = true; break;
      case '--h2c': o.h2c = true; break;
      case '--latency-ms': o.latencyMs = int(need(i, a), a); i++; break;
      case '--latency-jitter-ms': o.latencyJitterMs = int(need(i, a), a); i++; break;
      case '--grant-service-agent': o.grantServiceAgent = true; break;
      case '--service-account': o.serviceAccounts.push(need(i, a)); i++; break;
      case '--token-lifetime': o.tokenLifetime = int(need(i, a), a); i++; break;
      case '--port-file': o.portFile = need(i, a); i++; break;
      case '--pid-file': o.pidFile = need(i, a); i++; break;
      case '-h': case '--help': process.stdout.write(USAGE + '\n'); process.exit(0); break;
      default: throw new Error(`unknown option: ${a}`);
    }
  }
  if (!o.dataDir) throw new Error('--data DIR is required');
  if (o.tls && o.h2c) throw new Error('--tls and --h2c exclude each other (--tls offers h2 and http/1.1 by ALPN)');
  return o;
}

function main() {
  let opts;
  try { opts = parseArgs(process.argv.slice(2)); } catch (e) {
    process.stderr.write(`dicomgcs emulator: ${e.message}\n${USAGE}\n`); process.exit(2);
  }
  try { require.resolve('dicom-parser'); } catch (_) {
    process.stderr.write('dicomgcs emulator: node_modules is missing; run: make emulator-deps (or npm ci --prefix emulator)\n');
    process.exit(3);
  }
  const { createEmulator } = require('./server');
  let ctx;
  try { ctx = createEmulator(opts); } catch (e) { process.stderr.write(`dicomgcs emulator: ${e.message}\n`); process.exit(2); }
  ctx.server.on('error', (e) => { process.stderr.write(`dicomgcs emulator: ${e.message}\n`); process.exit(1); });
  const listening = (srv, port) => new Promise((resolve) => srv.listen(port, opts.host, resolve));
  Promise.all([listening(ctx.server, opts.port), ctx.metadataServer && listening(ctx.metadataServer, 0)]).then(() => {
    const port = ctx.server.address().port;
    if (opts.pidFile) fs.writeFileSync(opts.pidFile, String(process.pid) + '\n');
    // second line (--tls only): the plain-HTTP port of the metadata server
    if (opts.portFile) fs.writeFileSync(opts.portFile, [port].concat(ctx.metadataServer ? [ctx.metadataServer.address().port] : []).join('\n') + '\n');
    const proto = opts.tls ? `https (h2, http/1.1; CA ${ctx.server.caFile})` : opts.h2c ? 'http (http/1.1, h2c)' : 'http';
    process.stdout.write(`dicomgcs emulator ${ctx.version} listening on ${opts.host}:${port} (${proto}), data in ${path.resolve(opts.dataDir)}\n`);
  });
  const stop = () => {
    try { ctx.flush(); } catch (_) { /* */ }
    try { if (opts.pidFile && fs.readFileSync(opts.pidFile, 'utf8').trim() === String(process.pid)) fs.rmSync(opts.pidFile); } catch (_) { /* */ }
    ctx.server.close(); process.exit(0);
  };
  process.on('SIGTERM', stop); process.on('SIGINT', stop);
}

if (require.main === module) main();
module.exports = { parseArgs };
