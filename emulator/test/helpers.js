'use strict';
// Shared test helpers: an in-process emulator on 127.0.0.1, a raw HTTP client, DICOM file makers.
const http = require('http');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { createEmulator } = require('../src/server');

async function startEmulator(opts = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dgemu-test-'));
  // Node tests read logs at once; test/logging.test.js starts emulators with the defaults (delay, empty first page).
  const ctx = createEmulator(Object.assign({ dataDir, opDelayMs: 2, logDelayMs: 0, logEmptyPages: 0 }, opts));
  await new Promise((r) => ctx.server.listen(0, '127.0.0.1', r));
  const port = ctx.server.address().port;
  return {
    ctx, port, dataDir, host: `127.0.0.1:${port}`,
    request: (method, p, o) => request(port, method, p, o),
    async close() {
      ctx.server.closeAllConnections && ctx.server.closeAllConnections();
      await new Promise((r) => ctx.server.close(r));
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Raw request. o: {body: Buffer|string|object, headers, json: true}. Resolves {status, headers, body, json}. */
function request(port, method, p, o = {}) {
  return new Promise((resolve, reject) => {
    let body = o.body;
    const headers = Object.assign({}, o.headers || {});
    if (body !== undefined && !Buffer.isBuffer(body) && typeof body !== 'string') {
      body = JSON.stringify(body); headers['Content-Type'] = headers['Content-Type'] || 'application/json';
    }
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        let json;
        try { json = JSON.parse(buf.toString('utf8')); } catch (_) { /* not json */ }
        resolve({ status: res.statusCode, headers: res.headers, body: buf, json, complete: res.complete });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// ---- minimal DICOM Part 10 writer (explicit VR little endian) ----
function el(group, elem, vr, value) {
  let v = Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'latin1');
  const pad = vr === 'UI' || vr === 'OB' ? 0 : 0x20;
  if (v.length % 2) v = Buffer.concat([v, Buffer.from([pad])]);
  const long = ['OB', 'OW', 'SQ', 'UN', 'UT'].includes(vr);
  const h = Buffer.alloc(long ? 12 : 8);
  h.writeUInt16LE(group, 0); h.writeUInt16LE(elem, 2); h.write(vr, 4, 'latin1');
  if (long) h.writeUInt32LE(v.length, 8); else h.writeUInt16LE(v.length, 6);
  return Buffer.concat([h, v]);
}
function us(n) { const b = Buffer.alloc(2); b.writeUInt16LE(n); return b; }

/** A valid Part 10 file. o: {study, series, sop, rows, cols (adds 8-bit MONOCHROME2 pixels), omit: ['sop']} */
function makeDicom(o = {}) {
  const sop = o.sop || '1.2.3.4.5.6';
  const ts = '1.2.840.10008.1.2.1'; const cls = '1.2.840.10008.5.1.4.1.1.7';
  const metaEls = Buffer.concat([
    el(2, 1, 'OB', Buffer.from([0, 1])), el(2, 2, 'UI', cls), el(2, 3, 'UI', sop), el(2, 0x10, 'UI', ts),
    el(2, 0x12, 'UI', '1.2.3.999'),
  ]);
  const gl = Buffer.alloc(4); gl.writeUInt32LE(metaEls.length);
  const meta = Buffer.concat([el(2, 0, 'UL', gl), metaEls]);
  const omit = new Set(o.omit || []);
  const parts = [el(8, 0x16, 'UI', cls)];
  if (!omit.has('sop')) parts.push(el(8, 0x18, 'UI', sop));
  if (o.bigElement) parts.push(el(0x09, 0x1001, 'OB', Buffer.alloc(o.bigElement, 0x5a)));  // before the study UID
  parts.push(el(0x10, 0x10, 'PN', 'Test^Patient'));
  if (!omit.has('study')) parts.push(el(0x20, 0x0d, 'UI', o.study || '1.2.3'));
  if (!omit.has('series')) parts.push(el(0x20, 0x0e, 'UI', o.series || '1.2.3.4'));
  if (o.bigElementLater) parts.push(el(0x21, 0x1001, 'OB', Buffer.alloc(o.bigElementLater, 0x5a)));  // after the series UID
  if (o.frames) parts.push(el(0x28, 8, 'IS', String(o.frames).padEnd(2)));
  if (o.rows) {
    parts.push(el(0x28, 2, 'US', us(1)), el(0x28, 4, 'CS', 'MONOCHROME2'), el(0x28, 0x10, 'US', us(o.rows)),
      el(0x28, 0x11, 'US', us(o.cols)), el(0x28, 0x100, 'US', us(8)), el(0x28, 0x101, 'US', us(8)),
      el(0x28, 0x102, 'US', us(7)), el(0x28, 0x103, 'US', us(0)));
    const px = Buffer.alloc(o.rows * o.cols * (o.frames || 1)); for (let i = 0; i < px.length; i++) px[i] = i % 256;
    parts.push(el(0x7fe0, 0x10, 'OB', px));
  }
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), meta, ...parts]);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitOp(emu, name, ms = 10000) {
  const t0 = Date.now();
  for (;;) {
    const r = await emu.request('GET', `/v1/${name}`);
    if (r.json && r.json.done) return r.json;
    if (Date.now() - t0 > ms) throw new Error('operation did not finish: ' + JSON.stringify(r.json));
    await sleep(10);
  }
}

async function upload(emu, bucket, name, data, contentType = 'application/octet-stream') {
  const r = await emu.request('POST', `/upload/storage/v1/b/${bucket}/o?uploadType=media&name=${encodeURIComponent(name)}`, { body: data, headers: { 'Content-Type': contentType } });
  if (r.status !== 200) throw new Error('upload failed: ' + r.body);
  return r.json;
}

async function makeBucket(emu, name, project = 'p', { grant = true } = {}) {
  const r = await emu.request('POST', `/storage/v1/b?project=${project}`, { body: { name } });
  if (r.status !== 200) throw new Error('bucket failed: ' + r.body);
  // New buckets do not let the Healthcare service agent in (like Google); grant it as a user would.
  if (grant) await grantServiceAgent(emu, name, project);
}

/** Give project's Cloud Healthcare Service Agent roles/storage.objectAdmin on bucket (public IAM API). */
async function grantServiceAgent(emu, bucket, project = 'p', role = 'roles/storage.objectAdmin') {
  const rm = await emu.request('GET', `/resourcemanager/v1/projects/${project}`);
  const member = `serviceAccount:service-${rm.json.projectNumber}@gcp-sa-healthcare.iam.gserviceaccount.com`;
  const pol = (await emu.request('GET', `/storage/v1/b/${bucket}/iam`)).json;
  pol.bindings.push({ role, members: [member] });
  const r = await emu.request('PUT', `/storage/v1/b/${bucket}/iam`, { body: pol });
  if (r.status !== 200) throw new Error('setIamPolicy failed: ' + r.body);
  return r.json;
}

module.exports = { startEmulator, request, makeDicom, sleep, waitOp, upload, makeBucket, grantServiceAgent };
