'use strict';
// Export MIME types (api.md §5). plan(mimeType) checks the type when the export is requested and
// returns { produce(inst, tmpDir) -> [{suffix, path, contentType, temp}] } used per instance.
// Object names: {prefix}{study}/{series}/{instance}{suffix}; suffix is
//   application/dicom          .dcm                  (one file per instance, also multi-frame)
//   application/octet-stream   '' (single frame) or /{n} (frame n, from 1)
//   image/jpeg, image/png      .jpg/.png (single frame) or /{n}.jpg, /{n}.png
// Transcoding and rendering use dcmtk: dcmdjpeg/dcmdrle/dcmdjpls (decompress), dcmconv (explicit
// VR little endian), dcmcjpeg (JPEG baseline .50, lossless .57 and lossless SV1 .70), dcmj2pnm
// (PNG / consumer JPEG). JPEG 2000 (.90/.91) is not in dcmtk: rejected at request time.
const fs = require('fs');
const path = require('path');
const { execFile } = require('child_process');
const dicomParser = require('dicom-parser');
const { ApiError } = require('./errors');
const { fileName } = require('./ids');

const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const DEFLATED_LE = '1.2.840.10008.1.2.1.99';
const EXPLICIT_BE = '1.2.840.10008.1.2.2';
const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
const JPEG_EXTENDED = '1.2.840.10008.1.2.4.51';
const JPEG_LOSSLESS = '1.2.840.10008.1.2.4.57';
const JPEG_LOSSLESS_SV1 = '1.2.840.10008.1.2.4.70';
const RLE = '1.2.840.10008.1.2.5';
const NATIVE = new Set([IMPLICIT_LE, EXPLICIT_LE, DEFLATED_LE, EXPLICIT_BE]);
// target transfer syntax -> dcmcjpeg/dcmconv arguments
const DICOM_TARGETS = {
  [EXPLICIT_LE]: null,
  [JPEG_BASELINE]: ['--encode-baseline'],
  [JPEG_LOSSLESS]: ['--encode-lossless'],
  [JPEG_LOSSLESS_SV1]: ['--encode-lossless-sv1'],
};

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

function tmpName(dir, ext) { return path.join(dir, fileName('tx') + ext); }

function parseMime(mime) {
  const parts = String(mime).split(';').map((s) => s.trim());
  const type = parts[0].toLowerCase();
  const params = {};
  for (const p of parts.slice(1)) { const i = p.indexOf('='); if (i > 0) params[p.slice(0, i).trim().toLowerCase()] = p.slice(i + 1).trim().replace(/^"|"$/g, ''); }
  return { type, ts: params['transfer-syntax'] };
}

function unsupported(mime) {
  return new ApiError('INVALID_ARGUMENT', `Unsupported mime type: "${mime}". The emulator supports application/dicom (transfer-syntax *, ${Object.keys(DICOM_TARGETS).join(', ')}), application/octet-stream (transfer-syntax *, ${EXPLICIT_LE}), image/jpeg (transfer-syntax ${JPEG_BASELINE}) and image/png.`);
}

function failure(message, code) { const e = new Error(message); e.code = code; return e; }

/** A native (uncompressed) copy of an instance, or the file itself when it is native already. */
async function toNative(inst, tmp) {
  if (NATIVE.has(inst.transferSyntax)) return { file: inst.file, temp: null };
  const out = tmpName(tmp, '.dcm');
  const ts = inst.transferSyntax;
  if (/^1\.2\.840\.10008\.1\.2\.4\.(5\d|6\d|70)$/.test(ts)) await run('dcmdjpeg', ['--write-xfer-little', inst.file, out]);
  else if (ts === '1.2.840.10008.1.2.4.80' || ts === '1.2.840.10008.1.2.4.81') await run('dcmdjpls', ['--write-xfer-little', inst.file, out]);
  else if (ts === RLE) await run('dcmdrle', ['--write-xfer-little', inst.file, out]);
  else throw failure(`transcoding from transfer syntax ${ts} is not supported by the emulator`, 12);
  return { file: out, temp: out };
}

/** Raw PixelData frames of a file: native pixel data is cut by frame size; encapsulated per frame. */
function pixelFrames(file, frames) {
  const buf = fs.readFileSync(file);
  const ds = dicomParser.parseDicom(new Uint8Array(buf.buffer, buf.byteOffset, buf.length));
  const el = ds.elements.x7fe00010;
  if (!el) throw failure('instance has no Pixel Data', 9);
  if (el.encapsulatedPixelData) {
    const out = [];
    if (frames <= 1) return [Buffer.concat(el.fragments.map((f) => buf.subarray(f.position, f.position + f.length)))];
    for (let i = 0; i < frames; i++) {
      const f = el.basicOffsetTable.length
        ? dicomParser.readEncapsulatedImageFrame(ds, el, i)
        : dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, i, 1);
      out.push(Buffer.from(f.buffer, f.byteOffset, f.length));
    }
    return out;
  }
  const data = buf.subarray(el.dataOffset, el.dataOffset + el.length);
  if (frames <= 1) return [data];
  const size = data.length / frames;
  if (!Number.isInteger(size)) throw failure('Pixel Data length is not a multiple of Number of Frames', 9);
  return Array.from({ length: frames }, (_, i) => data.subarray(i * size, (i + 1) * size));
}

/** All PixelData bytes of a single-frame (native or encapsulated) file. */
function pixelData(file) { return pixelFrames(file, 1)[0]; }

function plan(mime) {
  if (!mime) mime = 'application/dicom; transfer-syntax=*';
  const { type, ts } = parseMime(mime);
  const asIs = ts === undefined || ts === '*';
  if (type === 'application/dicom') {
    if (asIs) return { produce: async (inst) => [{ suffix: '.dcm', path: inst.file, contentType: 'application/dicom' }] };
    if (!Object.prototype.hasOwnProperty.call(DICOM_TARGETS, ts)) throw unsupported(mime);
    return { produce: async (inst, tmp) => {
      if (inst.transferSyntax === ts) return [{ suffix: '.dcm', path: inst.file, contentType: 'application/dicom' }];
      const native = await toNative(inst, tmp);
      try {
        const out = tmpName(tmp, '.dcm');
        if (ts === EXPLICIT_LE) {
          if (native.temp) fs.renameSync(native.temp, out); // dcmd* already wrote explicit VR LE
          else await run('dcmconv', ['--write-xfer-little', native.file, out]);
          native.temp = null;
        } else {
          await run('dcmcjpeg', DICOM_TARGETS[ts].concat([native.file, out]));
        }
        return [{ suffix: '.dcm', path: out, contentType: 'application/dicom', temp: true }];
      } finally { if (native.temp) fs.rmSync(native.temp, { force: true }); }
    } };
  }
  if (type === 'application/octet-stream') {
    if (!asIs && ts !== EXPLICIT_LE) throw unsupported(mime);
    return { produce: async (inst, tmp) => {
      const src = asIs ? { file: inst.file, temp: null } : await toNative(inst, tmp);
      try {
        const frames = pixelFrames(src.file, inst.numberOfFrames || 1);
        return frames.map((data, i) => {
          const out = tmpName(tmp, '.raw');
          fs.writeFileSync(out, data);
          return { suffix: frames.length > 1 ? `/${i + 1}` : '', path: out, contentType: 'application/octet-stream', temp: true };
        });
      } finally { if (src.temp) fs.rmSync(src.temp, { force: true }); }
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

module.exports = { plan, parseMime, pixelData, pixelFrames, EXPLICIT_LE, JPEG_BASELINE, JPEG_EXTENDED, JPEG_LOSSLESS, JPEG_LOSSLESS_SV1 };
