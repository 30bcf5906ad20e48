'use strict';
// Export MIME types (api.md §5). plan(mimeType) checks the type when the export is requested and
// returns { ext, produce(inst, tmpDir) -> [{suffix, path, contentType, temp}] } used per instance.
// Transcoding and rendering use dcmtk: dcmconv (explicit VR little endian), dcmcjpeg (JPEG
// baseline), dcmj2pnm (PNG / consumer JPEG). JPEG 2000 is not available in dcmtk -> rejected.
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { execFile } = require('child_process');
const dicomParser = require('dicom-parser');
const { ApiError } = require('./errors');

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 120000 }, (err, stdout, stderr) => {
      if (err) {
        const e = new Error(`${cmd} failed: ${(stderr || err.message).toString().trim().split('\n').slice(-2).join(' ')}`);
        e.code = err.code === 'ENOENT' ? 12 : 13; // UNIMPLEMENTED when the tool is missing
        reject(e);
      } else resolve(stdout);
    });
  });
}

function tmpName(dir, ext) { return path.join(dir, 'tx-' + crypto.randomBytes(8).toString('hex') + ext); }

function parseMime(mime) {
  const parts = String(mime).split(';').map((s) => s.trim());
  const type = parts[0].toLowerCase();
  const params = {};
  for (const p of parts.slice(1)) { const i = p.indexOf('='); if (i > 0) params[p.slice(0, i).trim().toLowerCase()] = p.slice(i + 1).trim().replace(/^"|"$/g, ''); }
  return { type, ts: params['transfer-syntax'] };
}

function unsupported(mime) {
  return new ApiError('INVALID_ARGUMENT', `Unsupported mime type: "${mime}". The emulator supports application/dicom (transfer-syntax *, ${EXPLICIT_LE}, ${JPEG_BASELINE}), application/octet-stream (transfer-syntax *, ${EXPLICIT_LE}), image/jpeg (transfer-syntax ${JPEG_BASELINE}) and image/png.`);
}

/** Raw PixelData bytes of a (native or encapsulated) file. */
function pixelData(file) {
  const buf = fs.readFileSync(file);
  const ds = dicomParser.parseDicom(new Uint8Array(buf.buffer, buf.byteOffset, buf.length));
  const el = ds.elements.x7fe00010;
  if (!el) { const e = new Error('instance has no Pixel Data'); e.code = 9; throw e; }
  if (el.encapsulatedPixelData) return Buffer.concat(el.fragments.map((f) => buf.subarray(f.position, f.position + f.length)));
  return buf.subarray(el.dataOffset, el.dataOffset + el.length);
}

function plan(mime) {
  if (!mime) mime = 'application/dicom; transfer-syntax=*';
  const { type, ts } = parseMime(mime);
  const asIs = ts === undefined || ts === '*';
  if (type === 'application/dicom') {
    if (asIs) return { produce: async (inst) => [{ suffix: '.dcm', path: inst.file, contentType: 'application/dicom' }] };
    if (ts === EXPLICIT_LE || ts === JPEG_BASELINE) {
      return { produce: async (inst, tmp) => {
        if (inst.transferSyntax === ts) return [{ suffix: '.dcm', path: inst.file, contentType: 'application/dicom' }];
        const out = tmpName(tmp, '.dcm');
        if (ts === EXPLICIT_LE) await run('dcmconv', ['--write-xfer-little', inst.file, out]);
        else await run('dcmcjpeg', ['--encode-baseline', inst.file, out]);
        return [{ suffix: '.dcm', path: out, contentType: 'application/dicom', temp: true }];
      } };
    }
    throw unsupported(mime);
  }
  if (type === 'application/octet-stream') {
    if (!asIs && ts !== EXPLICIT_LE) throw unsupported(mime);
    return { produce: async (inst, tmp) => {
      let src = inst.file; let temp = null;
      if (!asIs && inst.transferSyntax !== EXPLICIT_LE) { temp = tmpName(tmp, '.dcm'); await run('dcmconv', ['--write-xfer-little', inst.file, temp]); src = temp; }
      try {
        if (inst.numberOfFrames > 1) { const e = new Error('multi-frame octet-stream export is not implemented by the emulator'); e.code = 12; throw e; }
        const out = tmpName(tmp, '.raw');
        fs.writeFileSync(out, pixelData(src));
        return [{ suffix: '', path: out, contentType: 'application/octet-stream', temp: true }];
      } finally { if (temp) fs.rmSync(temp, { force: true }); }
    } };
  }
  if (type === 'image/png' || (type === 'image/jpeg' && (asIs || ts === JPEG_BASELINE))) {
    const png = type === 'image/png';
    const ext = png ? '.png' : '.jpg';
    return { produce: async (inst, tmp) => {
      const outs = [];
      if (inst.numberOfFrames > 1) {
        const base = tmpName(tmp, '');
        await run('dcmj2pnm', [png ? '--write-png' : '--write-jpeg', '--all-frames', inst.file, base]);
        for (let f = 0; f < inst.numberOfFrames; f++) {
          const p = `${base}.${f}${ext}`; // dcmj2pnm names frames base.N.ext, N from 0
          if (fs.existsSync(p)) outs.push({ suffix: `/${f + 1}${ext}`, path: p, contentType: type, temp: true });
        }
      } else {
        const out = tmpName(tmp, ext);
        await run('dcmj2pnm', [png ? '--write-png' : '--write-jpeg', inst.file, out]);
        outs.push({ suffix: ext, path: out, contentType: type, temp: true });
      }
      return outs;
    } };
  }
  throw unsupported(mime);
}

module.exports = { plan, parseMime, pixelData };
