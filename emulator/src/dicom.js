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

// ---- the checks Google is assumed to make (see README "Pre-flight check": each a guess) ----
// The client's `dicomgcs check` (csrc/dg_dicom.c) makes the same ones, over the same span: the file
// meta group, and the dataset up to (0020,000E); spec/check_parity_spec.lua runs both over a corpus.
const VRS = new Set('AE AS AT CS DA DS DT FL FD IS LO LT PN SH SL SS ST TM UI UL US OB OD OF OL OV OW SQ UC UR UT UN SV UV'.split(' '));
const UNIT = { US: 2, SS: 2, UL: 4, SL: 4, FL: 4, AT: 4, FD: 8, OL: 4, OF: 4, OD: 8, OV: 8, SV: 8, UV: 8 };
const LAST_CHECKED = 'x0020000e';

/** Why a UID value is not a valid UID (PS3.5 9.1), or null. */
function uidProblem(u) {
  if (!u) return 'is empty';
  if (u.length > 64) return 'is longer than 64 characters';
  if (!/^[0-9.]*$/.test(u)) return "contains a character other than 0-9 and '.'";
  for (const c of u.split('.')) {
    if (!c) return 'has an empty component';
    if (c.length > 1 && c[0] === '0') return 'has a component with a leading zero';
  }
  return null;
}

function checkMeta(buf) {
  const at = 132;
  if (buf.length < at + 12) return; // dicom-parser reports the truncation
  if (buf.readUInt16LE(at) !== 2 || buf.readUInt16LE(at + 2) !== 0 || buf.toString('latin1', at + 4, at + 6) !== 'UL') {
    throw new DicomError('failed to parse DICOM: the file meta group must start with (0002,0000) group length');
  }
  const end = at + 12 + buf.readUInt32LE(at + 8);
  let p = at + 12; const seen = new Set();
  while (p < end && p + 8 <= buf.length) {
    const g = buf.readUInt16LE(p); const e = buf.readUInt16LE(p + 2); const vr = buf.toString('latin1', p + 4, p + 6);
    if (g !== 2) throw new DicomError(`failed to parse DICOM: element (${hex4(g)},${hex4(e)}) inside the file meta group (its group length is wrong)`);
    const long = ['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UR', 'UT', 'UN', 'SV', 'UV'].includes(vr);
    const len = long ? buf.readUInt32LE(p + 8) : buf.readUInt16LE(p + 6);
    const hdr = long ? 12 : 8;
    if (p + hdr + len > end) throw new DicomError(`failed to parse DICOM: (0002,${hex4(e)}) runs past the end of the file meta group (its group length is wrong)`);
    seen.add(e);
    p += hdr + len;
  }
  if (buf.length >= end + 2 && buf.readUInt16LE(end) === 2) {
    throw new DicomError('failed to parse DICOM: group 0002 goes on past the file meta group length');
  }
  for (const [e, name] of [[1, 'File Meta Information Version'], [2, 'Media Storage SOP Class UID'], [3, 'Media Storage SOP Instance UID'], [0x10, 'Transfer Syntax UID']]) {
    if (!seen.has(e)) throw new DicomError(`failed to parse DICOM: the file meta group lacks (0002,${hex4(e)}) ${name}`);
  }
}
const hex4 = (n) => n.toString(16).toUpperCase().padStart(4, '0');

// VRs and value lengths of the dataset's elements up to (0020,000E), sequences included.
function checkElements(elements, explicit, top) {
  for (const [tag, el] of Object.entries(elements)) {
    if ((top && tag > LAST_CHECKED) || tag.startsWith('xfffe')) continue; // item / delimiter tags have no VR
    const name = `(${tag.slice(1, 5).toUpperCase()},${tag.slice(5).toUpperCase()})`;
    if (explicit && el.vr !== undefined && !VRS.has(el.vr)) throw new DicomError(`invalid DICOM: ${name} has invalid VR '${el.vr}'`);
    if (!el.hadUndefinedLength && el.length % 2) throw new DicomError(`invalid DICOM: ${name} has odd length ${el.length}`);
    if (explicit && UNIT[el.vr] && el.length % UNIT[el.vr]) throw new DicomError(`invalid DICOM: ${name}: length ${el.length} is not a multiple of ${UNIT[el.vr]} for VR ${el.vr}`);
    for (const item of el.items || []) if (item.dataSet) checkElements(item.dataSet.elements, explicit, false);
  }
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
  checkMeta(buf);
  const transferSyntax = str(ds, 'x00020010');
  if (!transferSyntax) throw new DicomError('failed to parse DICOM: file meta information has no Transfer Syntax UID (0002,0010)');
  if (transferSyntax !== '1.2.840.10008.1.2.1.99') checkElements(ds.elements, transferSyntax !== '1.2.840.10008.1.2', true);
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
  if (!str(ds, 'x00080016') && transferSyntax !== '1.2.840.10008.1.2.1.99') missing.push('SOPClassUID (0008,0016)');
  if (!info.studyUid) missing.push('StudyInstanceUID (0020,000D)');
  if (!info.seriesUid) missing.push('SeriesInstanceUID (0020,000E)');
  if (!info.sopUid) missing.push('SOPInstanceUID (0008,0018)');
  if (missing.length) throw new DicomError('invalid DICOM instance: missing ' + missing.join(', '));
  for (const [tag, name] of [['x00020002', 'MediaStorageSOPClassUID'], ['x00020003', 'MediaStorageSOPInstanceUID'], ['x00020010', 'TransferSyntaxUID'],
    ['x00080016', 'SOPClassUID'], ['x00080018', 'SOPInstanceUID'], ['x0020000d', 'StudyInstanceUID'], ['x0020000e', 'SeriesInstanceUID']]) {
    const v = str(ds, tag);
    const why = v === undefined ? null : uidProblem(v);
    if (why) throw new DicomError(`invalid DICOM instance: ${name} (${tag.slice(1, 5).toUpperCase()},${tag.slice(5).toUpperCase()}) ${why}`);
  }
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

/** Inspect an instance received whole into `file`, whose first bytes are still in memory (`head`):
 * from `head` when that decides (the whole instance, or a header that reaches the pixel data),
 * else from the file. Reading the head back from the file was a quarter of the emulator's time
 * per 256 KiB STOW. Throws DicomError. */
function inspectReceived(head, size, file) {
  if (head.length === size) return Object.assign(inspectBuffer(head, size), { size });
  try {
    const info = inspectBuffer(head, size);
    if (info.hasPixelData) return Object.assign(info, { size });  // the dataset before it was all in the head
  } catch (_) { /* the head ends inside an element (or a deflated dataset): the file decides */ }
  return inspectFile(file);
}

module.exports = { inspectBuffer, inspectFile, inspectReceived, DicomError, uidProblem };
