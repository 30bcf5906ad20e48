'use strict';
// DICOMweb under ST/dicomWeb/ (api.md §6): STOW-RS (single-part application/dicom or
// multipart/related, streamed to temp files, never held whole), WADO-RS (multipart responses
// streamed from disk, metadata, rendered, frames), QIDO-RS (studies/series/instances with the
// common attribute filters, includefield, limit/offset), and deletes (study/series → Operation,
// instance → {}). Instances live in the shared store (src/instances.js), so import, export and
// DICOMweb see the same data.
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { execFile } = require('child_process');
const dicomParser = require('dicom-parser');
const { ApiError, invalid, notFound, sendJson } = require('./errors');
const { inspectReceived } = require('./dicom');
const { BatchedWriter } = require('./batchwrite');
const { fileName } = require('./ids');

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const UID_RE = /^[0-9.]{1,64}$/;
const HEAD_MAX = 8 * 1024 * 1024;

// ---- DICOM JSON from a parsed dataset ----

// Keywords and VRs for attributes an implicit-VR file may carry and QIDO may name.
const DICT = {
  '00080005': ['SpecificCharacterSet', 'CS'], '00080016': ['SOPClassUID', 'UI'], '00080018': ['SOPInstanceUID', 'UI'],
  '00080020': ['StudyDate', 'DA'], '00080021': ['SeriesDate', 'DA'], '00080030': ['StudyTime', 'TM'],
  '00080031': ['SeriesTime', 'TM'], '00080050': ['AccessionNumber', 'SH'], '00080056': ['InstanceAvailability', 'CS'],
  '00080060': ['Modality', 'CS'], '00080061': ['ModalitiesInStudy', 'CS'], '00080062': ['SOPClassesInStudy', 'UI'],
  '00080070': ['Manufacturer', 'LO'], '00080090': ['ReferringPhysicianName', 'PN'], '00080201': ['TimezoneOffsetFromUTC', 'SH'],
  '00081030': ['StudyDescription', 'LO'], '0008103E': ['SeriesDescription', 'LO'], '00081190': ['RetrieveURL', 'UR'],
  '00100010': ['PatientName', 'PN'], '00100020': ['PatientID', 'LO'], '00100030': ['PatientBirthDate', 'DA'],
  '00100040': ['PatientSex', 'CS'], '0020000D': ['StudyInstanceUID', 'UI'], '0020000E': ['SeriesInstanceUID', 'UI'],
  '00200010': ['StudyID', 'SH'], '00200011': ['SeriesNumber', 'IS'], '00200013': ['InstanceNumber', 'IS'],
  '00201206': ['NumberOfStudyRelatedSeries', 'IS'], '00201208': ['NumberOfStudyRelatedInstances', 'IS'],
  '00201209': ['NumberOfSeriesRelatedInstances', 'IS'], '00280002': ['SamplesPerPixel', 'US'],
  '00280004': ['PhotometricInterpretation', 'CS'], '00280008': ['NumberOfFrames', 'IS'], '00280010': ['Rows', 'US'],
  '00280011': ['Columns', 'US'], '00280100': ['BitsAllocated', 'US'], '00280101': ['BitsStored', 'US'],
  '00280102': ['HighBit', 'US'], '00280103': ['PixelRepresentation', 'US'], '00400244': ['PerformedProcedureStepStartDate', 'DA'],
  '7FE00010': ['PixelData', 'OW'],
};
const KEYWORD = {};
for (const [tag, [kw]] of Object.entries(DICT)) KEYWORD[kw.toLowerCase()] = tag;

const STRING_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'LT', 'SH', 'ST', 'TM', 'UC', 'UI', 'UR', 'UT', 'PN']);
const SINGLE_VRS = new Set(['LT', 'ST', 'UT', 'UR']);
const BINARY_VRS = { US: ['uint16', 2], SS: ['int16', 2], UL: ['uint32', 4], SL: ['int32', 4], FL: ['float', 4], FD: ['double', 8] };

function tagOf(x) { return x.slice(1).toUpperCase(); }

function elementJson(ds, el) {
  const tag = tagOf(el.tag);
  const vr = el.vr || (DICT[tag] && DICT[tag][1]) || (el.items ? 'SQ' : 'UN');
  const out = { vr };
  if (vr === 'SQ') {
    const items = (el.items || []).map((it) => datasetJson(it.dataSet));
    if (items.length) out.Value = items;
    return out;
  }
  if (STRING_VRS.has(vr)) {
    let s = ds.string(el.tag === undefined ? '' : el.tag);
    if (SINGLE_VRS.has(vr)) { const t = dicomParser.readFixedString(ds.byteArray, el.dataOffset, el.length).replace(/[\0 ]+$/, ''); s = t; }
    if (s === undefined || s === '') return out;
    s = s.replace(/\0/g, '');
    const vals = SINGLE_VRS.has(vr) ? [s] : s.split('\\').map((v) => v.trim());
    if (vr === 'PN') out.Value = vals.map((v) => (v === '' ? {} : { Alphabetic: v }));
    else if (vr === 'DS' || vr === 'IS') out.Value = vals.map((v) => (v === '' ? null : Number(v)));
    else out.Value = vals;
    if (out.Value.every((v) => v === '' || v === null)) delete out.Value;
    return out;
  }
  if (vr === 'AT') {
    const vals = [];
    for (let i = 0; i + 4 <= el.length; i += 4) {
      const g = ds.uint16(el.tag, i / 2); const e = ds.uint16(el.tag, i / 2 + 1);
      vals.push(((g << 16) >>> 0 | e).toString(16).toUpperCase().padStart(8, '0'));
    }
    if (vals.length) out.Value = vals;
    return out;
  }
  const bin = BINARY_VRS[vr];
  if (bin) {
    const vals = [];
    for (let i = 0; i < Math.floor(el.length / bin[1]); i++) vals.push(ds[bin[0]](el.tag, i));
    if (vals.length) out.Value = vals;
    return out;
  }
  return out; // bulk data (OB, OW, UN, …): value left out, as Google's metadata does
}

function datasetJson(ds) {
  const out = {};
  for (const key of Object.keys(ds.elements).sort()) {
    const el = ds.elements[key];
    const tag = tagOf(key);
    if (tag.startsWith('0002') || tag === '7FE00010' || tag.endsWith('0000') || tag === 'FFFEE000') continue;
    try { out[tag] = elementJson(ds, el); } catch (_) { out[tag] = { vr: el.vr || 'UN' }; }
  }
  return out;
}

function readHead(file, limit) {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const n = Math.min(size, limit, HEAD_MAX);
    const buf = Buffer.alloc(n);
    let off = 0;
    while (off < n) { const r = fs.readSync(fd, buf, off, n - off, off); if (r <= 0) break; off += r; }
    return { buf: buf.subarray(0, off), size };
  } finally { fs.closeSync(fd); }
}

// Parse the attributes before Pixel Data, reading 256 KiB of the file first and more only when
// the header goes on beyond it.
function parseHead(file) {
  for (let n = 256 * 1024; ; n *= 4) {
    const { buf, size } = readHead(file, n);
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
    try { return dicomParser.parseDicom(bytes, { untilTag: 'x7fe00010' }); } catch (e) {
      const partial = e && e.dataSet;
      if (partial && (buf.length >= size || n >= HEAD_MAX || partial.elements.x7fe00010)) return partial;
      if (!partial) throw e;
    }
  }
}

// Cache keys: path + size + mtime, so a file replaced under the same name is read again.
function fileKey(file) {
  try { const st = fs.statSync(file); return `${file}\0${st.size}\0${st.mtimeMs}`; } catch (_) { return file; }
}

// Metadata per stored instance, kept with its record: a record's file never changes (a store
// replaces records, never rewrites their files), so no stat is needed to trust it, and a deleted
// record takes its entry with it.
const metaCache = new WeakMap();
function metadataOf(inst) {
  const hit = metaCache.get(inst);
  if (hit) return hit;
  let json;
  try { json = datasetJson(parseHead(inst.file)); } catch (_) { json = {}; }
  const fill = (tag, vr, v) => { if (!json[tag] && v) json[tag] = { vr, Value: [v] }; };
  fill('0020000D', 'UI', inst.studyUid); fill('0020000E', 'UI', inst.seriesUid);
  fill('00080018', 'UI', inst.sopUid); fill('00080016', 'UI', inst.sopClassUid);
  metaCache.set(inst, json);
  return json;
}

// The same, serialized once: a metadata GET is the emulator's most frequent answer, and
// JSON.stringify of the whole dataset was a tenth of its CPU.
const metaTextCache = new WeakMap();
function metadataText(inst) {
  let t = metaTextCache.get(inst);
  if (t === undefined) { t = JSON.stringify(metadataOf(inst)); metaTextCache.set(inst, t); }
  return t;
}

// SHA-256 of a stored instance's bytes (STOW's "same content?" answer), kept with its record.
const instHashes = new WeakMap();
function instanceHash(inst) {
  let h = instHashes.get(inst);
  if (!h) { h = sha256File(inst.file); instHashes.set(inst, h); }
  return h;
}

function sha256File(file) {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(1 << 20);
    for (;;) { const r = fs.readSync(fd, b, 0, b.length, null); if (r <= 0) break; h.update(b.subarray(0, r)); }
  } finally { fs.closeSync(fd); }
  return h.digest('hex');
}

// The same for any file (import sources), cached by path, size and mtime.
const hashCache = new Map();
function fileHash(file) {
  const key = fileKey(file);
  const hit = hashCache.get(key);
  if (hit) return hit;
  const d = sha256File(file);
  if (hashCache.size > 200000) hashCache.clear();
  hashCache.set(key, d);
  return d;
}

// ---- helpers ----

function parseMediaType(v) {
  const parts = String(v || '').split(';').map((s) => s.trim());
  const params = {};
  for (const p of parts.slice(1)) {
    const i = p.indexOf('=');
    if (i > 0) params[p.slice(0, i).trim().toLowerCase()] = p.slice(i + 1).trim().replace(/^"|"$/g, '');
  }
  return { type: parts[0].toLowerCase(), params };
}

// Accept header → list of media ranges (q ignored; order kept).
function accepts(req) {
  const a = req.headers.accept;
  if (!a) return [];
  return a.split(',').map((s) => parseMediaType(s.trim()));
}

function tmpFile(ctx) { return path.join(ctx.gcs.tmp, fileName('dw')); }

function sendDicomJson(res, code, obj, headers) { sendDicomJsonText(res, code, JSON.stringify(obj), headers); }

function sendDicomJsonText(res, code, text, headers) {
  const body = Buffer.from(text);
  res.writeHead(code, Object.assign({ 'Content-Type': 'application/dicom+json; charset=utf-8', 'Content-Length': body.length }, headers || {}));
  res.end(body);
}

function xmlEscape(s) { return String(s).replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]); }

function toXml(obj) {
  const attrs = (o) => Object.keys(o).sort().map((tag) => {
    const a = o[tag]; const kw = DICT[tag] ? ` keyword="${DICT[tag][0]}"` : '';
    let inner = '';
    (a.Value || []).forEach((v, i) => {
      if (a.vr === 'SQ') inner += `<Item number="${i + 1}">${attrs(v)}</Item>`;
      else if (a.vr === 'PN') inner += `<PersonName number="${i + 1}"><Alphabetic><FamilyName>${xmlEscape(v.Alphabetic || '')}</FamilyName></Alphabetic></PersonName>`;
      else inner += `<Value number="${i + 1}">${xmlEscape(v)}</Value>`;
    });
    return `<DicomAttribute tag="${tag}" vr="${a.vr}"${kw}>${inner}</DicomAttribute>`;
  }).join('');
  return `<?xml version="1.0" encoding="utf-8"?>\n<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM">${attrs(obj)}</NativeDicomModel>\n`;
}

function wantsJson(req) {
  return accepts(req).some((m) => m.type === 'application/dicom+json' || m.type === 'application/json');
}

function ui(v) { return { vr: 'UI', Value: [v] }; }

// ---- STOW-RS ----

// A STOW part being received, by either reader below: its temp file, written BATCH bytes at a
// time (batchwrite.js), and its first HEAD_KEEP bytes kept in memory so that its DICOM header is
// read from there (dicom.inspectReceived); 64 KiB holds the header of nearly every instance.
// Parts are not hashed on the way: only a part whose SOP Instance UID is already stored needs its
// hash (stow), and SHA-256 of every STOW byte was a sixth of the emulator's STOW CPU.
const HEAD_KEEP = 64 * 1024;
function openPart(ctx, contentType) {
  const file = tmpFile(ctx);
  const fd = fs.openSync(file, 'w');
  return { file, size: 0, contentType, fd, out: new BatchedWriter(fd), heads: [], headLen: 0 };
}
function writePart(part, buf) {
  part.out.write(buf); part.size += buf.length;
  if (part.headLen < HEAD_KEEP) {
    const b = buf.subarray(0, HEAD_KEEP - part.headLen);
    part.heads.push(b); part.headLen += b.length;
  }
}
/** Flush and close the part's file (closed even when the flush throws); returns the part as
 * {file, size, contentType, head}. */
function closePart(part) {
  const { fd, out } = part;
  delete part.fd; delete part.out;
  try { out.flush(); } finally { fs.closeSync(fd); }
  part.head = Buffer.concat(part.heads, part.headLen);
  delete part.heads; delete part.headLen;
  return part;
}

// Stream a request body into a file; returns [part].
async function bodyToFile(ctx, req) {
  const part = openPart(ctx, 'application/dicom');
  try {
    for await (const chunk of req) writePart(part, chunk);
  } catch (e) { fs.closeSync(part.fd); throw e; }
  return [closePart(part)];
}

// A streaming multipart/related reader: each part goes to its own temp file.
async function multipartToFiles(ctx, req, boundary) {
  const delim = Buffer.from('\r\n--' + boundary);
  const parts = [];
  let buf = Buffer.from('\r\n'); // so a delimiter at offset 0 matches "\r\n--b"
  let state = 'preamble'; let cur = null;
  const endPart = () => { parts.push(closePart(cur)); cur = null; };
  const fail = (m) => { throw invalid(`Malformed multipart/related body: ${m}.`); };
  try {
    const step = () => {
      for (;;) {
        if (state === 'preamble' || state === 'body') {
          const i = buf.indexOf(delim);
          if (i < 0) {
            const keep = Math.min(buf.length, delim.length - 1);
            if (state === 'body' && buf.length > keep) writePart(cur, buf.subarray(0, buf.length - keep));
            buf = buf.subarray(buf.length - keep);
            return;
          }
          if (state === 'body') { writePart(cur, buf.subarray(0, i)); endPart(); }
          buf = buf.subarray(i + delim.length);
          state = 'after';
        } else if (state === 'after') {
          if (buf.length < 2) return;
          if (buf[0] === 0x2d && buf[1] === 0x2d) { state = 'done'; return; }
          let j = 0; while (j < buf.length && (buf[j] === 0x20 || buf[j] === 0x09)) j++;
          if (buf.length < j + 2) return;
          if (buf[j] !== 0x0d || buf[j + 1] !== 0x0a) fail('a delimiter is not followed by CRLF');
          buf = buf.subarray(j + 2); state = 'headers';
        } else if (state === 'headers') {
          const i = buf.indexOf('\r\n\r\n');
          const empty = buf.length >= 2 && buf[0] === 0x0d && buf[1] === 0x0a;
          if (i < 0 && !empty) { if (buf.length > 16384) fail('part headers too long'); return; }
          const end = empty ? 0 : i;
          const headers = {};
          for (const line of buf.subarray(0, end).toString('latin1').split('\r\n')) {
            if (!line) continue;
            const k = line.indexOf(':'); if (k <= 0) fail(`bad part header "${line.slice(0, 60)}"`);
            headers[line.slice(0, k).trim().toLowerCase()] = line.slice(k + 1).trim();
          }
          buf = buf.subarray(empty ? 2 : i + 4);
          cur = openPart(ctx, headers['content-type']);
          state = 'body';
        } else return;
      }
    };
    for await (const chunk of req) {
      if (state === 'done') continue; // epilogue
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      step();
    }
    if (state !== 'done') fail('the body ended before the closing delimiter');
    if (!parts.length) fail('no parts');
    return parts;
  } catch (e) {
    if (cur) {
      if (cur.fd !== undefined) { try { fs.closeSync(cur.fd); } catch (_) { /* */ } }   // not when closePart threw
      fs.rmSync(cur.file, { force: true });
    }
    for (const p of parts) fs.rmSync(p.file, { force: true });
    throw e;
  }
}

function failure(part, info, reason, detail) {
  const item = {};
  if (info && info.sopClassUid) item['00081150'] = ui(info.sopClassUid);
  if (info && info.sopUid) item['00081155'] = ui(info.sopUid);
  item['00081197'] = { vr: 'US', Value: [reason] };
  item['00090097'] = { vr: 'LT', Value: [detail] };
  return item;
}

async function stow(req, res, ctx, store, base, studyParam) {
  const ct = parseMediaType(req.headers['content-type']);
  let parts;
  if (ct.type === 'application/dicom') {
    parts = await bodyToFile(ctx, req);
  } else if (ct.type === 'multipart/related') {
    const t = (ct.params.type || 'application/dicom').toLowerCase();
    if (t !== 'application/dicom') { req.resume(); throw new ApiError('INVALID_ARGUMENT', `Unsupported multipart/related type "${t}": the emulator stores application/dicom parts only.`, undefined, 415); }
    if (!ct.params.boundary) { req.resume(); throw invalid('multipart/related content type has no boundary parameter.'); }
    parts = await multipartToFiles(ctx, req, ct.params.boundary);
  } else {
    req.resume();
    throw new ApiError('INVALID_ARGUMENT', `Unsupported Content-Type "${req.headers['content-type'] || ''}": use application/dicom or multipart/related; type="application/dicom".`, undefined, 415);
  }
  const referenced = []; const failed = [];
  try {
    for (const p of parts) {
      let info = null;
      try {
        const pt = p.contentType ? parseMediaType(p.contentType).type : 'application/dicom';
        if (pt !== 'application/dicom') { failed.push(failure(p, null, 0xC122, `unsupported part Content-Type "${p.contentType}"`)); continue; }
        try { info = inspectReceived(p.head, p.size, p.file); } catch (e) { failed.push(failure(p, null, 272, `Invalid DICOM: ${e.message}`)); continue; }
        if (![info.studyUid, info.seriesUid, info.sopUid].every((u) => UID_RE.test(u))) {
          failed.push(failure(p, info, 272, 'Invalid DICOM: a Study, Series or SOP Instance UID is not a valid UID')); continue;
        }
        if (studyParam && info.studyUid !== studyParam) {
          failed.push(failure(p, info, 0xA900, `StudyInstanceUID ${info.studyUid} does not match the study in the URL (${studyParam})`)); continue;
        }
        const busy = deleting.get(store.name);
        if (busy && (busy.has(info.studyUid) || busy.has(info.studyUid + '/' + info.seriesUid))) {
          failed.push(failure(p, info, 272, 'the study or series is being deleted; try again when the delete operation has finished')); continue;
        }
        const old = store.instances.get(info.sopUid);
        if (old) {
          // Google answers 409 whenever the Study/Series/SOP triplet is already stored, identical
          // bytes or not (README: "STOW-RS of an instance already stored").
          const same = old.size === p.size && instanceHash(old) === sha256File(p.file);
          failed.push(failure(p, info, 272, same
            ? `An instance with SOPInstanceUID ${info.sopUid} already exists in the DICOM store`
            : `An instance with SOPInstanceUID ${info.sopUid} already exists in the DICOM store with different content`));
          continue;
        } else {
          ctx.instances.add(store, info, p.file, { move: true });
          p.moved = true;
        }
        referenced.push({ '00081150': ui(info.sopClassUid), '00081155': ui(info.sopUid),
          '00081190': { vr: 'UR', Value: [`${base}/studies/${info.studyUid}/series/${info.seriesUid}/instances/${info.sopUid}`] } });
      } catch (e) {
        failed.push(failure(p, info, 272, `Processing failure: ${e.message}`));
      }
    }
  } finally {
    // (a part moved into the store is gone from here: removing it anyway cost an lstat each)
    for (const p of parts) if (!p.moved) fs.rm(p.file, { force: true }, () => {});
  }
  if (referenced.length) ctx.persist();
  const body = {};
  const studies = new Set(referenced.map((r) => r['00081190'].Value[0].split('/series/')[0]));
  if (studyParam) body['00081190'] = { vr: 'UR', Value: [`${base}/studies/${studyParam}`] };
  else if (studies.size === 1) body['00081190'] = { vr: 'UR', Value: [...studies] };
  if (failed.length) body['00081198'] = { vr: 'SQ', Value: failed };
  if (referenced.length) body['00081199'] = { vr: 'SQ', Value: referenced };
  const code = failed.length === 0 ? 200 : referenced.length === 0 ? 409 : 202;
  if (wantsJson(req)) sendDicomJson(res, code, body);
  else {
    const xml = Buffer.from(toXml(body));
    res.writeHead(code, { 'Content-Type': 'application/dicom+xml; charset=utf-8', 'Content-Length': xml.length });
    res.end(xml);
  }
}

// ---- selection ----

function sortKey(i) { return `${i.studyUid}/${i.seriesUid}/${i.sopUid}`; }

function select(store, study, series, instance) {
  if (instance) {   // instances are keyed by SOP Instance UID: no scan of the store per request
    const i = store.instances.get(instance);
    return i && (!study || i.studyUid === study) && (!series || i.seriesUid === series) ? [i] : [];
  }
  const out = [];
  for (const i of store.instances.values()) {
    if (study && i.studyUid !== study) continue;
    if (series && i.seriesUid !== series) continue;
    if (instance && i.sopUid !== instance) continue;
    out.push(i);
  }
  return out.sort((a, b) => {
    const na = Number((metadataOf(a)['00200013'] || {}).Value || 0); const nb = Number((metadataOf(b)['00200013'] || {}).Value || 0);
    const ka = `${a.studyUid}/${a.seriesUid}`; const kb = `${b.studyUid}/${b.seriesUid}`;
    if (ka !== kb) return ka < kb ? -1 : 1;
    if (na !== nb) return na - nb;
    return sortKey(a) < sortKey(b) ? -1 : 1;
  });
}

function needSome(list, study, series, instance) {
  if (list.length) return list;
  if (instance) throw notFound(`Instance not found: studies/${study}/series/${series}/instances/${instance}`);
  if (series) throw notFound(`Series not found: studies/${study}/series/${series}`);
  throw notFound(`Study not found: studies/${study}`);
}

// ---- WADO-RS ----

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 120000 }, (err, stdout, stderr) => {
      if (err) reject(new ApiError(err.code === 'ENOENT' ? 'UNIMPLEMENTED' : 'INTERNAL', `${cmd} failed: ${(stderr || err.message).toString().trim().split('\n').slice(-1)[0]}`));
      else resolve(stdout);
    });
  });
}

// Which transfer syntax the Accept header asks for at study/series/instance level.
function dicomAccept(req, single) {
  const list = accepts(req);
  if (!list.length) return { ts: EXPLICIT_LE, multipart: true };
  for (const m of list) {
    if (m.type === '*/*' || m.type === 'multipart/*') return { ts: EXPLICIT_LE, multipart: true };
    if (m.type === 'multipart/related') {
      const t = (m.params.type || 'application/dicom').toLowerCase();
      if (t === 'application/dicom') return { ts: m.params['transfer-syntax'] || EXPLICIT_LE, multipart: true };
    }
    if (single && m.type === 'application/dicom') return { ts: m.params['transfer-syntax'] || EXPLICIT_LE, multipart: false };
  }
  throw new ApiError('INVALID_ARGUMENT', `Unsupported Accept header "${req.headers.accept}": use multipart/related; type="application/dicom"; transfer-syntax=…`, undefined, 406);
}

async function sourceFor(ctx, inst, ts, temps) {
  if (ts === '*' || ts === inst.transferSyntax) return { file: inst.file, ts: inst.transferSyntax };
  if (ts !== EXPLICIT_LE) throw new ApiError('INVALID_ARGUMENT', `Transcoding to transfer syntax ${ts} is not supported by the emulator; use transfer-syntax=* or ${EXPLICIT_LE}.`, undefined, 406);
  const out = tmpFile(ctx) + '.dcm';
  temps.push(out);
  await run('dcmconv', ['--write-xfer-little', inst.file, out]);
  return { file: out, ts };
}

function pipeFile(res, file) {
  return new Promise((resolve, reject) => {
    const rs = fs.createReadStream(file, { highWaterMark: 256 * 1024 });
    rs.on('error', reject);
    rs.on('end', resolve);
    rs.pipe(res, { end: false });
  });
}

async function wado(req, res, ctx, list, single) {
  const want = dicomAccept(req, single);
  const temps = [];
  try {
    const sources = [];
    for (const inst of list) sources.push(await sourceFor(ctx, inst, want.ts, temps));
    if (!want.multipart) {
      const s = sources[0];
      res.writeHead(200, { 'Content-Type': `application/dicom; transfer-syntax=${s.ts}`, 'Content-Length': fs.statSync(s.file).size });
      await pipeFile(res, s.file); res.end(); return;
    }
    const boundary = crypto.randomBytes(16).toString('hex');
    const heads = sources.map((s) => Buffer.from(`--${boundary}\r\nContent-Type: application/dicom; transfer-syntax=${s.ts}\r\n\r\n`));
    const tail = Buffer.from(`--${boundary}--\r\n`);
    const crlf = Buffer.from('\r\n');
    let total = tail.length;
    sources.forEach((s, k) => { total += heads[k].length + fs.statSync(s.file).size + 2; });
    res.writeHead(200, {
      'Content-Type': `multipart/related; type="application/dicom"; transfer-syntax=${want.ts}; boundary=${boundary}`,
      'Content-Length': total,
    });
    for (let k = 0; k < sources.length; k++) {
      if (res.destroyed) return;
      res.write(heads[k]);
      await pipeFile(res, sources[k].file);
      res.write(crlf);
    }
    res.end(tail);
  } finally {
    for (const t of temps) fs.rm(t, { force: true }, () => {});
  }
}

function frameList(s, nframes) {
  const out = s.split(',').map((x) => {
    if (!/^\d+$/.test(x)) throw invalid(`Invalid frame list "${s}": comma-separated frame numbers from 1.`);
    const n = parseInt(x, 10);
    if (n < 1 || n > nframes) throw notFound(`Frame ${n} does not exist (the instance has ${nframes} frame${nframes === 1 ? '' : 's'}).`);
    return n;
  });
  return out;
}

function frameBytes(inst, n) {
  const buf = fs.readFileSync(inst.file);
  const ds = dicomParser.parseDicom(new Uint8Array(buf.buffer, buf.byteOffset, buf.length));
  const el = ds.elements.x7fe00010;
  if (!el) throw new ApiError('FAILED_PRECONDITION', 'The instance has no Pixel Data.', undefined, 400);
  if (el.encapsulatedPixelData) {
    const nframes = inst.numberOfFrames || 1;
    if (nframes === 1) return Buffer.concat(el.fragments.map((f) => buf.subarray(f.position, f.position + f.length)));
    const bot = el.basicOffsetTable && el.basicOffsetTable.length ? el.basicOffsetTable : dicomParser.createJPEGBasicOffsetTable(ds, el);
    return Buffer.from(dicomParser.readEncapsulatedImageFrame(ds, el, n - 1, bot));
  }
  const rows = ds.uint16('x00280010'); const cols = ds.uint16('x00280011');
  const spp = ds.uint16('x00280002') || 1; const bits = ds.uint16('x00280100') || 16;
  const size = (rows * cols * spp * bits) / 8;
  const start = el.dataOffset + (n - 1) * size;
  return buf.subarray(start, start + size);
}

async function frames(req, res, ctx, inst, spec) {
  const list = frameList(spec, inst.numberOfFrames || 1);
  const acc = accepts(req);
  let type = 'application/octet-stream';
  for (const m of acc) {
    if (m.type === 'multipart/related' && m.params.type) { type = m.params.type.toLowerCase(); break; }
  }
  if (type !== 'application/octet-stream') throw new ApiError('INVALID_ARGUMENT', `Unsupported frame media type "${type}": the emulator serves application/octet-stream frames (use …/rendered for images).`, undefined, 406);
  const boundary = crypto.randomBytes(16).toString('hex');
  const chunks = [];
  for (const n of list) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/octet-stream; transfer-syntax=${inst.transferSyntax}\r\n\r\n`), frameBytes(inst, n), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  const body = Buffer.concat(chunks);
  res.writeHead(200, { 'Content-Type': `multipart/related; type="application/octet-stream"; transfer-syntax=${inst.transferSyntax}; boundary=${boundary}`, 'Content-Length': body.length });
  res.end(body);
}

async function rendered(req, res, ctx, inst, frame) {
  const acc = accepts(req).map((m) => m.type);
  let type = 'image/jpeg';
  for (const t of acc) {
    if (t === 'image/png' || t === 'image/jpeg') { type = t; break; }
    if (t === '*/*' || t === 'image/*') break;
  }
  if (acc.length && !acc.some((t) => ['image/png', 'image/jpeg', '*/*', 'image/*'].includes(t))) {
    throw new ApiError('INVALID_ARGUMENT', `Unsupported Accept "${req.headers.accept}" for rendered: use image/jpeg or image/png.`, undefined, 406);
  }
  const nframes = inst.numberOfFrames || 1;
  if (frame !== undefined) frameList(String(frame), nframes);
  const out = tmpFile(ctx) + (type === 'image/png' ? '.png' : '.jpg');
  try {
    const args = [type === 'image/png' ? '--write-png' : '--write-jpeg'];
    if (frame !== undefined) args.push('--frame', String(frame));
    args.push(inst.file, out);
    await run('dcmj2pnm', args);
    res.writeHead(200, { 'Content-Type': type, 'Content-Length': fs.statSync(out).size });
    await pipeFile(res, out);
    res.end();
  } finally { fs.rm(out, { force: true }, () => {}); }
}

// ---- QIDO-RS ----

const STUDY_TAGS = ['00080005', '00080020', '00080030', '00080050', '00080090', '00081030', '00100010', '00100020', '00100030', '00100040', '0020000D', '00200010'];
const SERIES_TAGS = ['00080005', '00080060', '0008103E', '0020000D', '0020000E', '00200011'];
const INSTANCE_TAGS = ['00080005', '00080016', '00080018', '0020000D', '0020000E', '00200013', '00280008', '00280010', '00280011', '00280100'];
const MATCHABLE = new Set(['00100010', '00100020', '00080020', '00080030', '0020000D', '00080060', '00080061', '00080050', '0020000E', '00080018', '00080016', '00081030', '0008103E', '00200010', '00200011', '00200013', '00080090', '00100030', '00100040']);

function tagFromKey(k) {
  if (/^[0-9a-fA-F]{8}$/.test(k)) return k.toUpperCase();
  return KEYWORD[k.toLowerCase()] || null;
}

function firstString(json, tag) {
  const a = json[tag];
  if (!a || !a.Value || !a.Value.length) return '';
  const v = a.Value[0];
  if (v && typeof v === 'object') return v.Alphabetic || '';
  return String(v);
}

function wildcardRe(v) {
  return new RegExp('^' + v.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$', 'i');
}

function compileMatch(tag, value) {
  if (tag === '00080020' || tag === '00080030' || tag === '00100030') { // date / time ranges
    const m = /^(\d*)-(\d*)$/.exec(value);
    if (m) return (s) => s !== '' && (!m[1] || s >= m[1]) && (!m[2] || s <= m[2] + (tag === '00080030' ? '\uffff' : ''));
    return (s) => s === value || (tag === '00080030' && s.startsWith(value));
  }
  if (tag.endsWith('000D') || tag.endsWith('000E') || tag === '00080018' || tag === '00080016') { // UID lists
    const set = new Set(value.split(/[,\\]/).map((s) => s.trim()).filter(Boolean));
    return (s) => set.has(s);
  }
  if (/[*?]/.test(value)) { const re = wildcardRe(value); return (s) => re.test(s); }
  if (tag === '00100010' || tag === '00080090') { const v = value.toLowerCase(); return (s) => s.toLowerCase() === v || s.toLowerCase().startsWith(v + '^'); }
  return (s) => s === value;
}

function qidoParams(q, level) {
  const filters = []; const include = new Set(); let limit = null; let offset = 0; let all = false;
  for (const [k, v] of q.entries()) {
    if (k === 'limit') { if (!/^\d+$/.test(v)) throw invalid(`Invalid limit "${v}".`); limit = parseInt(v, 10); continue; }
    if (k === 'offset') { if (!/^\d+$/.test(v)) throw invalid(`Invalid offset "${v}".`); offset = parseInt(v, 10); continue; }
    if (k === 'fuzzymatching') continue;
    if (k === 'includefield') {
      for (const f of v.split(',').map((s) => s.trim()).filter(Boolean)) {
        if (f.toLowerCase() === 'all') { all = true; continue; }
        const t = tagFromKey(f);
        if (!t) throw invalid(`Invalid includefield "${f}": not a known keyword or an 8-digit hexadecimal tag.`);
        include.add(t);
      }
      continue;
    }
    const tag = tagFromKey(k);
    if (!tag) throw invalid(`Invalid QIDO-RS query parameter "${k}": not a known attribute keyword or tag.`);
    if (!MATCHABLE.has(tag)) throw invalid(`QIDO-RS matching on ${k} is not supported.`);
    filters.push({ tag, pred: compileMatch(tag, v) });
  }
  const max = level === 'instances' ? 50000 : 5000;
  const def = level === 'instances' ? 1000 : 100;
  if (limit === null || limit === 0) limit = def;
  if (limit > max) limit = max;
  if (offset > 1000000) throw invalid('offset must be at most 1000000.');
  return { filters, include, limit, offset, all };
}

function instanceMatches(inst, filters) {
  if (!filters.length) return true;
  const json = metadataOf(inst);
  return filters.every((f) => {
    if (f.tag === '00080061') return f.pred(firstString(json, '00080060'));
    const a = json[f.tag];
    if (!a || !a.Value || !a.Value.length) return f.pred('');
    return a.Value.some((v) => f.pred(v && typeof v === 'object' ? (v.Alphabetic || '') : String(v)));
  });
}

function pickTags(json, tags, out) {
  for (const t of tags) if (json[t]) out[t] = json[t];
  return out;
}

function qido(req, res, ctx, store, level, study, series, base) {
  const p = qidoParams(new URL(req.url, 'http://x').searchParams, level);
  // Study-level filters must hold for the study (any of its instances), so match per instance
  // and group; the scope (study/series in the path) narrows first.
  const pool = select(store, study, series).filter((i) => instanceMatches(i, p.filters));
  let rows = [];
  if (level === 'studies') {
    const by = new Map();
    for (const i of pool) { if (!by.has(i.studyUid)) by.set(i.studyUid, []); by.get(i.studyUid).push(i); }
    for (const [uid, list] of by) {
      const everything = select(store, uid);
      const json = metadataOf(list[0]);
      const o = pickTags(json, STUDY_TAGS, {});
      const mods = [...new Set(everything.map((i) => firstString(metadataOf(i), '00080060')).filter(Boolean))].sort();
      if (mods.length) o['00080061'] = { vr: 'CS', Value: mods };
      o['00201206'] = { vr: 'IS', Value: [new Set(everything.map((i) => i.seriesUid)).size] };
      o['00201208'] = { vr: 'IS', Value: [everything.length] };
      o['00081190'] = { vr: 'UR', Value: [`${base}/studies/${uid}`] };
      rows.push({ o, json, all: STUDY_TAGS });
    }
  } else if (level === 'series') {
    const by = new Map();
    for (const i of pool) { const k = i.studyUid + '/' + i.seriesUid; if (!by.has(k)) by.set(k, []); by.get(k).push(i); }
    for (const [, list] of by) {
      const json = metadataOf(list[0]);
      const o = pickTags(json, SERIES_TAGS, {});
      o['00201209'] = { vr: 'IS', Value: [select(store, list[0].studyUid, list[0].seriesUid).length] };
      o['00081190'] = { vr: 'UR', Value: [`${base}/studies/${list[0].studyUid}/series/${list[0].seriesUid}`] };
      rows.push({ o, json, all: SERIES_TAGS.concat(STUDY_TAGS) });
    }
  } else {
    for (const i of pool) {
      const json = metadataOf(i);
      const o = pickTags(json, INSTANCE_TAGS, {});
      o['00081190'] = { vr: 'UR', Value: [`${base}/studies/${i.studyUid}/series/${i.seriesUid}/instances/${i.sopUid}`] };
      rows.push({ o, json, all: null });
    }
  }
  const total = rows.length;
  rows = rows.slice(p.offset, p.offset + p.limit);
  const out = rows.map((r) => {
    if (p.all) {
      if (r.all) pickTags(r.json, r.all, r.o);
      else for (const [t, a] of Object.entries(r.json)) if (!r.o[t]) r.o[t] = a;
    }
    pickTags(r.json, [...p.include], r.o);
    const sorted = {};
    for (const t of Object.keys(r.o).sort()) sorted[t] = r.o[t];
    return sorted;
  });
  const headers = {};
  if (p.offset + p.limit < total) headers.Warning = '299 healthcare.googleapis.com: "There are additional results that can be requested."';
  sendDicomJson(res, 200, out, headers);
}

// ---- deletes ----

function removeInstances(ctx, store, list) {
  for (const i of list) {
    if (store.instances.get(i.sopUid) === i) {
      store.instances.delete(i.sopUid);
      fs.rm(i.file, { force: true }, () => {});
    }
  }
  ctx.persist();
}

// Studies/series being deleted, per store name (kept out of the persisted store record).
const deleting = new Map();

function deleteLro(res, ctx, store, dsName, version, list, key, method) {
  if (!deleting.has(store.name)) deleting.set(store.name, new Set());
  const busy = deleting.get(store.name);
  busy.add(key);
  const op = ctx.ops.create(dsName, `google.cloud.healthcare.${version}.dicomweb.DicomWebService.${method}`, { version });
  sendJson(res, 200, ctx.ops.json(op));
  setTimeout(() => {
    try { removeInstances(ctx, store, list); } finally {
      busy.delete(key);
      ctx.ops.finish(op, { response: { '@type': 'type.googleapis.com/google.protobuf.Empty' } });
    }
  }, ctx.opts.opDelayMs);
}

// ---- router ----

function checkUid(u, what) {
  if (!UID_RE.test(u)) throw invalid(`Invalid ${what} UID "${u}": a UID has at most 64 digits and dots.`);
  return u;
}

/** Handle ST/dicomWeb{sub}. `store` is the store record, `storeName` its name. */
async function handle(req, res, url, ctx, { store, storeName, dsName, version, sub }) {
  const base = `http://${req.headers.host}/${version}/${storeName}/dicomWeb`;
  const segs = (sub || '').split('/').filter(Boolean);
  const method = req.method;
  const bad = () => { req.resume(); return new ApiError('NOT_FOUND', `The requested DICOMweb path /${segs.join('/')} is not supported.`, undefined, 404); };
  if (!segs.length) throw bad();
  const level = segs[0];
  if (level !== 'studies' && level !== 'series' && level !== 'instances') throw bad();
  if (level !== 'studies') {
    if (segs.length !== 1 || method !== 'GET') throw bad();
    return qido(req, res, ctx, store, level, null, null, base);
  }
  const study = segs[1] && checkUid(segs[1], 'study');
  if (method === 'POST') {
    if (segs.length > 2) throw bad();
    return stow(req, res, ctx, store, base, study);
  }
  if (segs.length === 1) { if (method !== 'GET') throw bad(); return qido(req, res, ctx, store, 'studies', null, null, base); }
  const rest = segs.slice(2);
  if (rest.length === 1 && (rest[0] === 'series' || rest[0] === 'instances') && method === 'GET') {
    return qido(req, res, ctx, store, rest[0], study, null, base);
  }
  let series; let instance; let k = 0;
  if (rest[k] === 'series' && rest[k + 1]) { series = checkUid(rest[k + 1], 'series'); k += 2; }
  if (series && rest[k] === 'instances' && rest[k + 1]) { instance = checkUid(rest[k + 1], 'instance'); k += 2; }
  const tail = rest.slice(k);
  if (series && !instance && tail.length === 1 && tail[0] === 'instances' && method === 'GET') {
    return qido(req, res, ctx, store, 'instances', study, series, base);
  }
  if (method === 'DELETE') {
    if (tail.length) throw bad();
    const list = needSome(select(store, study, series, instance), study, series, instance);
    if (instance) { removeInstances(ctx, store, list); sendJson(res, 200, {}); return; }
    if (series) return deleteLro(res, ctx, store, dsName, version, list, `${study}/${series}`, 'DeleteSeries');
    return deleteLro(res, ctx, store, dsName, version, list, study, 'DeleteStudy');
  }
  if (method !== 'GET') throw bad();
  const list = needSome(select(store, study, series, instance), study, series, instance);
  if (!tail.length) return wado(req, res, ctx, list, !!instance);
  if (tail.length === 1 && tail[0] === 'metadata') return sendDicomJsonText(res, 200, `[${list.map(metadataText).join(',')}]`);
  if (instance && tail.length === 1 && tail[0] === 'rendered') return rendered(req, res, ctx, list[0]);
  if (instance && tail[0] === 'frames' && tail.length === 2) return frames(req, res, ctx, list[0], tail[1]);
  if (instance && tail[0] === 'frames' && tail.length === 3 && tail[2] === 'rendered') {
    if (!/^\d+$/.test(tail[1])) throw invalid('rendered frames take one frame number');
    return rendered(req, res, ctx, list[0], parseInt(tail[1], 10));
  }
  throw bad();
}

module.exports = { handle, datasetJson, metadataOf, toXml, fileHash };
