'use strict';
// Check JSON bodies against the schemas of Google's discovery documents (compact copies in
// ./discovery/, made from /work/shared/discovery/*.json with descriptions stripped).
//   check(api, schemaName, value) -> list of problems ('' = none); assertSchema throws.
// Rules: every field must be declared (no unknown fields); int64/uint64 are JSON strings of digits;
// google-datetime is RFC 3339; enums hold one of their values; `additionalProperties` maps are
// checked per value; `Any` objects (metadata, response, error details) are checked against the
// schema their "@type" names when it is known (see TYPES).
const assert = require('node:assert');

const DOCS = {
  healthcare: require('./discovery/healthcare_v1.json'),
  storage: require('./discovery/storage_v1.json'),
  logging: require('./discovery/logging_v2.json'),
};

// Fields newer than the stored discovery revisions, confirmed in @googleapis/healthcare 26
// build/v1.d.ts and build/v1beta1.d.ts (see /work/shared/discovery/README.md).
const hs = DOCS.healthcare.schemas;
Object.assign(hs.ImportDicomDataRequest.properties, { blobStorageSettings: { $ref: 'BlobStorageSettings' } });
hs.BlobStorageSettings = hs.BlobStorageSettings || { type: 'object', properties: { blobStorageClass: { type: 'string', enum: ['BLOB_STORAGE_CLASS_UNSPECIFIED', 'STANDARD', 'NEARLINE', 'COLDLINE', 'ARCHIVE'] } } };
hs.DicomStore.properties.streamConfigs = hs.DicomStore.properties.streamConfigs || { type: 'array', items: { type: 'object', properties: { bigqueryDestination: { $ref: 'GoogleCloudHealthcareV1DicomBigQueryDestination' } } } };
// v1beta1 = v1 plus these fields
const BETA = {
  ExportDicomDataRequest: { filterConfig: { $ref: 'DicomFilterConfig' } },
  ProgressCounter: { secondarySuccess: { type: 'string', format: 'int64' }, secondaryFailure: { type: 'string', format: 'int64' } },
};

// Google error body over HTTP (google.rpc.Status plus "status"), not part of discovery documents.
const EXTRA = {
  GoogleError: { type: 'object', properties: { error: { $ref: 'HttpStatus' } } },
  HttpStatus: { type: 'object', properties: { code: { type: 'integer' }, message: { type: 'string' }, status: { type: 'string', enum: ['CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'] }, details: { type: 'array', items: { type: 'object', additionalProperties: { type: 'any' } } } } },
  GcsError: { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'integer' }, message: { type: 'string' }, errors: { type: 'array', items: { type: 'object', properties: { domain: { type: 'string' }, reason: { type: 'string' }, message: { type: 'string' }, locationType: { type: 'string' }, location: { type: 'string' } } } } } } } },
  BadRequest: { type: 'object', properties: { fieldViolations: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, description: { type: 'string' } } } } } },
  ErrorInfo: { type: 'object', properties: { reason: { type: 'string' }, domain: { type: 'string' }, metadata: { type: 'object', additionalProperties: { type: 'string' } } } },
  ImportDicomDataErrorDetails: { type: 'object', properties: { sampleErrors: { type: 'array', items: { type: 'object', properties: { resource: { type: 'string' }, error: { $ref: 'Status' } } } } } },
  ImportDicomLogEntry: { type: 'object', properties: { source: { type: 'string' }, error: { $ref: 'Status' } } },
  ExportDicomLogEntry: { type: 'object', properties: { resourceName: { type: 'string' }, error: { $ref: 'Status' } } },
  ExportDicomDataErrorDetails: { type: 'object', properties: { sampleErrors: { type: 'array', items: { type: 'object', properties: { resource: { type: 'string' }, error: { $ref: 'Status' } } } } } },
};

// "@type" → schema of the Any's other fields ('Empty' = none allowed).
const TYPES = [
  [/^type\.googleapis\.com\/google\.cloud\.healthcare\.v1(beta1)?\.OperationMetadata$/, 'OperationMetadata'],
  [/^type\.googleapis\.com\/google\.cloud\.healthcare\.v1(beta1)?\.dataset\.Dataset$/, 'Dataset'],
  [/^type\.googleapis\.com\/google\.cloud\.healthcare\.v1(beta1)?\.dicom\.(Import|Export)DicomDataResponse$/, 'Empty'],
  [/^type\.googleapis\.com\/google\.cloud\.healthcare\.v1(beta1)?\.dicom\.ImportDicomDataErrorDetails$/, 'ImportDicomDataErrorDetails'],
  [/^type\.googleapis\.com\/google\.cloud\.healthcare\.v1(beta1)?\.dicom\.ExportDicomDataErrorDetails$/, 'ExportDicomDataErrorDetails'],
  [/^type\.googleapis\.com\/google\.rpc\.BadRequest$/, 'BadRequest'],
  [/^type\.googleapis\.com\/google\.cloud\.healthcare\.logging\.ImportDicomLogEntry$/, 'ImportDicomLogEntry'],
  [/^type\.googleapis\.com\/google\.cloud\.healthcare\.logging\.ExportDicomLogEntry$/, 'ExportDicomLogEntry'],
  [/^type\.googleapis\.com\/google\.rpc\.ErrorInfo$/, 'ErrorInfo'],
];

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;

function schemaOf(api, name, beta) {
  const doc = DOCS[api];
  let s = (doc && doc.schemas[name]) || EXTRA[name];
  if (!s) throw new Error(`no schema ${api}.${name}`);
  if (beta && BETA[name]) s = Object.assign({}, s, { properties: Object.assign({}, s.properties, BETA[name]) });
  return s;
}

function walk(api, s, v, path, out, beta) {
  if (s.$ref) return walk(api, schemaOf(api, s.$ref, beta), v, path, out, beta);
  if (v === null) { out.push(`${path}: null`); return; }
  switch (s.type) {
    case 'any': return;
    case 'string':
      if (typeof v !== 'string') { out.push(`${path}: expected string (${s.format || 'string'}), got ${JSON.stringify(v)}`); return; }
      if ((s.format === 'int64' || s.format === 'uint64') && !/^-?\d+$/.test(v)) out.push(`${path}: not an ${s.format} string: ${v}`);
      if ((s.format === 'google-datetime' || s.format === 'date-time') && !RFC3339.test(v)) out.push(`${path}: not RFC 3339: ${v}`);
      if (s.format === 'byte' && !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) out.push(`${path}: not base64: ${v}`);
      if (s.enum && !s.enum.includes(v)) out.push(`${path}: ${v} not in enum`);
      return;
    case 'integer':
      if (!Number.isInteger(v)) out.push(`${path}: expected integer, got ${JSON.stringify(v)}`);
      return;
    case 'number': if (typeof v !== 'number') out.push(`${path}: expected number`); return;
    case 'boolean': if (typeof v !== 'boolean') out.push(`${path}: expected boolean, got ${JSON.stringify(v)}`); return;
    case 'array':
      if (!Array.isArray(v)) { out.push(`${path}: expected array`); return; }
      v.forEach((x, i) => walk(api, s.items, x, `${path}[${i}]`, out, beta));
      return;
    case 'object': default: {
      if (typeof v !== 'object' || Array.isArray(v)) { out.push(`${path}: expected object, got ${JSON.stringify(v)}`); return; }
      const props = s.properties || {};
      const addl = s.additionalProperties;
      if (addl && addl.type === 'any' && typeof v['@type'] === 'string') {
        // a google.protobuf.Any: check the rest against the named type
        const hit = TYPES.find(([re]) => re.test(v['@type']));
        if (!hit) { out.push(`${path}: unknown @type ${v['@type']}`); return; }
        const rest = Object.assign({}, v); delete rest['@type'];
        const isBeta = beta || /\.v1beta1\./.test(v['@type']);
        walk(hit[1] === 'Empty' ? 'healthcare' : (DOCS.healthcare.schemas[hit[1]] ? 'healthcare' : api), hit[1] === 'Empty' ? { type: 'object', properties: {} } : schemaOf('healthcare', hit[1], isBeta), rest, path, out, isBeta);
        return;
      }
      for (const [k, x] of Object.entries(v)) {
        if (props[k]) walk(api, props[k], x, `${path}.${k}`, out, beta);
        else if (addl) walk(api, addl, x, `${path}.${k}`, out, beta);
        else out.push(`${path}: unknown field "${k}"`);
      }
    }
  }
}

function check(api, name, value, opts = {}) {
  const out = [];
  walk(api, schemaOf(api, name, opts.beta), value, name, out, !!opts.beta);
  return out;
}

function assertSchema(api, name, value, opts) {
  const problems = check(api, name, value, opts);
  assert.deepStrictEqual(problems, [], `${api}.${name} body does not match discovery:\n${JSON.stringify(value, null, 1)}`);
  return value;
}

/** The method description (httpMethod, path, request, response, parameters) by discovery id. */
function method(api, id) { const m = DOCS[api].methods[id]; if (!m) throw new Error(`no method ${id}`); return m; }

module.exports = { check, assertSchema, method, DOCS };
