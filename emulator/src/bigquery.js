'use strict';
// Export to BigQuery, emulated: the rows Google would insert (one per instance, columns named by
// DICOM keyword) are written as JSON Lines to DIR/bigquery/{project}/{dataset}/{table}.jsonl
// (table id percent-encoded). Metadata comes from dcmtk's dcm2json; keywords from dcmtk's dicom.dic.
// Value mapping (an emulator choice, [U] against Google's real schema): PN -> its Alphabetic string;
// SQ -> array of row-like objects; numbers stay numbers; other VRs -> strings; one value -> scalar,
// several -> array; bulk data (OB/OW/OD/OF/OL/OV/UN), private tags, group lengths and the file meta
// group are left out.
const fs = require('fs');
const path = require('path');
const { execFile } = require('child_process');
const { invalid } = require('./errors');

const BULK = new Set(['OB', 'OW', 'OD', 'OF', 'OL', 'OV', 'UN']);
// bq://project.dataset.table — project ids may carry a domain ("example.com:proj").
const TABLE_URI_RE = /^bq:\/\/((?:[a-z][a-z0-9.-]*[a-z0-9]:)?[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?)\.([A-Za-z0-9_]{1,1024})\.([\p{L}\p{M}\p{N}\p{Pc}\p{Pd}\p{Zs}]{1,1024})$/u;
const DISPOSITIONS = ['WRITE_DISPOSITION_UNSPECIFIED', 'WRITE_EMPTY', 'WRITE_TRUNCATE', 'WRITE_APPEND'];

let keywords = null;
function keywordOf(tag) {
  if (!keywords) {
    keywords = new Map();
    const dirs = fs.existsSync('/usr/share') ? fs.readdirSync('/usr/share').filter((d) => d.startsWith('libdcmtk')) : [];
    for (const d of dirs) {
      const f = path.join('/usr/share', d, 'dicom.dic');
      if (!fs.existsSync(f)) continue;
      for (const line of fs.readFileSync(f, 'latin1').split('\n')) {
        const m = /^\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)\s+\S+\s+(\w+)/.exec(line);
        if (m) keywords.set((m[1] + m[2]).toUpperCase(), m[3]);
      }
      break;
    }
  }
  return keywords.get(tag.toUpperCase());
}

/** Check a bigqueryDestination at request time; returns {project, dataset, table, disposition}. */
function parseDestination(bq, storeProject) {
  const uri = bq.tableUri;
  if (!uri) throw invalid('bigqueryDestination.tableUri is required.');
  if (uri.length > 2000) throw invalid('bigqueryDestination.tableUri is longer than 2000 characters.');
  const m = TABLE_URI_RE.exec(uri);
  if (!m) throw invalid(`Invalid bigqueryDestination.tableUri "${uri}": expected bq://projectId.bqDatasetId.tableId.`);
  if (m[1] !== storeProject) {
    throw invalid(`Invalid bigqueryDestination.tableUri "${uri}": the BigQuery dataset must be in the same project as the DICOM store (${storeProject}).`);
  }
  let disposition = bq.writeDisposition || bq.write_disposition;
  if (disposition && !DISPOSITIONS.includes(disposition)) {
    throw invalid(`Invalid value at 'bigquery_destination.write_disposition' (type.googleapis.com/google.cloud.healthcare.v1.dicom.BigQueryDestination.WriteDisposition), "${disposition}"`);
  }
  if (!disposition || disposition === 'WRITE_DISPOSITION_UNSPECIFIED') {
    disposition = (bq.force === true || bq.force === 'true') ? 'WRITE_TRUNCATE' : 'WRITE_EMPTY';
  }
  return { uri, project: m[1], dataset: m[2], table: m[3], disposition };
}

function tableFile(dataDir, dest) {
  return path.join(dataDir, 'bigquery', encodeURIComponent(dest.project), dest.dataset, encodeURIComponent(dest.table) + '.jsonl');
}

function convert(obj) {
  const row = {};
  for (const [tag, el] of Object.entries(obj)) {
    const group = parseInt(tag.slice(0, 4), 16);
    if (group % 2 === 1 || group === 2 || tag.slice(4) === '0000' || BULK.has(el.vr)) continue;
    const key = keywordOf(tag);
    if (!key || !el.Value) continue;
    let vals;
    if (el.vr === 'SQ') vals = el.Value.map(convert);
    else if (el.vr === 'PN') vals = el.Value.map((p) => (p && typeof p === 'object' ? [p.Alphabetic, p.Ideographic, p.Phonetic].filter((x) => x !== undefined).join('=') : String(p)));
    else vals = el.Value.map((v) => (typeof v === 'number' ? v : String(v)));
    if (el.vr === 'SQ') row[key] = vals;
    else row[key] = vals.length === 1 ? vals[0] : vals;
  }
  return row;
}

/** The BigQuery row for one stored instance. */
function rowFor(inst) {
  return new Promise((resolve, reject) => {
    execFile('dcm2json', ['--compact-code', inst.file], { maxBuffer: 256 * 1024 * 1024, timeout: 120000 }, (err, stdout, stderr) => {
      if (err) {
        const e = new Error(`reading the metadata failed: ${(stderr || err.message).toString().trim().split('\n').slice(-1)[0]}`);
        e.code = err.code === 'ENOENT' ? 12 : 13;
        reject(e); return;
      }
      try { resolve(convert(JSON.parse(stdout))); } catch (e) { e.code = 13; reject(e); }
    });
  });
}

/** Open the table for writing per its disposition; returns {append(row), close()} or throws {code 9}. */
function openTable(dataDir, dest) {
  const file = tableFile(dataDir, dest);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const exists = fs.existsSync(file) && fs.statSync(file).size > 0;
  if (dest.disposition === 'WRITE_EMPTY' && exists) {
    const e = new Error(`BigQuery table ${dest.uri} is not empty; writeDisposition WRITE_EMPTY only writes to an empty table (use WRITE_TRUNCATE or WRITE_APPEND).`);
    e.code = 9; throw e;
  }
  if (dest.disposition === 'WRITE_TRUNCATE' || !exists) fs.writeFileSync(file, '');
  return { file, append(row) { fs.appendFileSync(file, JSON.stringify(row) + '\n'); } };
}

module.exports = { parseDestination, tableFile, rowFor, openTable, convert };
