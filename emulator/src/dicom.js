'use strict';
// DICOM Part 10 inspection with dicom-parser: preamble + "DICM" + File Meta Information, then the
// identifying UIDs. Only the head of big files is read (up to the Pixel Data tag).
const fs = require('fs');
const zlib = require('zlib');
const dicomParser = require('dicom-parser');

const HEAD_LIMIT = 16 * 1024 * 1024;

class DicomError extends Error {
  constructor(message, code = 3) { super(message); this.code = code; }
}

function str(ds, tag) {
  const v = ds.string(tag);
  return v === undefined ? undefined : v.replace(/\0/g, '').trim();
}

/** Inspect a Buffer holding (the head of) a Part 10 file. fullSize = size of the whole file. */
function inspectBuffer(buf, fullSize = buf.length) {
  if (fullSize === 0) throw new DicomError('empty DICOM instance found');
  if (buf.length < 132 || buf.toString('latin1', 128, 132) !== 'DICM') {
    throw new DicomError('failed to parse DICOM: missing DICM prefix at offset 128 (not a DICOM Part 10 file)');
  }
  let ds;
  const opts = { untilTag: 'x7fe00010', inflater: (b, pos) => {
    const out = zlib.inflateRawSync(Buffer.from(b.buffer, b.byteOffset + pos, b.length - pos));
    const full = new Uint8Array(out.length + pos);
    full.set(b.subarray(0, pos)); full.set(out, pos);
    return full;
  } };
  try {
    ds = dicomParser.parseDicom(new Uint8Array(buf.buffer, buf.byteOffset, buf.length), opts);
  } catch (e) {
    // A truncated head (big file) still yields the elements read so far.
    if (e && e.dataSet && buf.length < fullSize) ds = e.dataSet;
    else throw new DicomError('failed to parse DICOM: ' + (e && e.exception ? e.exception : (e && e.message) || String(e)));
  }
  const transferSyntax = str(ds, 'x00020010');
  if (!transferSyntax) throw new DicomError('failed to parse DICOM: file meta information has no Transfer Syntax UID (0002,0010)');
  const info = {
    transferSyntax,
    mediaStorageSopClass: str(ds, 'x00020002'),
    sopClassUid: str(ds, 'x00080016') || str(ds, 'x00020002'),
    studyUid: str(ds, 'x0020000d'),
    seriesUid: str(ds, 'x0020000e'),
    sopUid: str(ds, 'x00080018') || undefined,
    numberOfFrames: parseInt(str(ds, 'x00280008') || '1', 10) || 1,
    hasPixelData: !!ds.elements.x7fe00010,
  };
  const missing = [];
  if (!info.studyUid) missing.push('StudyInstanceUID (0020,000D)');
  if (!info.seriesUid) missing.push('SeriesInstanceUID (0020,000E)');
  if (!info.sopUid) missing.push('SOPInstanceUID (0008,0018)');
  if (missing.length) throw new DicomError('invalid DICOM instance: missing ' + missing.join(', '));
  return info;
}

/** Inspect a file on disk. Throws DicomError. */
function inspectFile(path) {
  const fd = fs.openSync(path, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const n = Math.min(size, HEAD_LIMIT);
    const buf = Buffer.alloc(n);
    let off = 0;
    while (off < n) { const r = fs.readSync(fd, buf, off, n - off, off); if (r <= 0) break; off += r; }
    return Object.assign(inspectBuffer(buf.subarray(0, off), size), { size });
  } finally { fs.closeSync(fd); }
}

module.exports = { inspectBuffer, inspectFile, DicomError };
