'use strict';
// Strict proto3-JSON request validation, the way Google's front end answers:
//   unknown field  -> 400 'Invalid JSON payload received. Unknown name "foo" at 'gcs_source': Cannot find field.'
//   wrong type     -> 400 "Invalid value at 'gcs_source.uri' (TYPE_STRING), 123"
// with a google.rpc.BadRequest detail holding one fieldViolation per problem.
// Paths in messages use the proto (snake_case) names, as Google does.
const { invalid, badRequestDetail } = require('./errors');

// Schema language: { fieldName: TYPE } where TYPE is 'string' | 'bool' | 'int32' | 'int64' |
// 'map<string>' | { message: 'full.proto.Name', fields: {...} } | ['repeated', TYPE].
const snake = (s) => s.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());

function typeName(t) {
  if (t === 'string') return 'TYPE_STRING';
  if (t === 'bool') return 'TYPE_BOOL';
  if (t === 'int32') return 'TYPE_INT32';
  if (t === 'int64') return 'TYPE_INT64';
  if (t === 'map<string>') return 'TYPE_STRING';
  if (t && t.message) return 'type.googleapis.com/' + t.message;
  return 'TYPE_MESSAGE';
}

function checkScalar(t, v) {
  if (t === 'string') return typeof v === 'string';
  if (t === 'bool') return typeof v === 'boolean' || v === 'true' || v === 'false';
  if (t === 'int32' || t === 'int64') {
    if (typeof v === 'number') return Number.isInteger(v);
    return typeof v === 'string' && /^-?\d+$/.test(v);
  }
  return false;
}

/** Validate obj against fields; returns a list of {field, description}. null values are allowed (= unset). */
function collect(fields, obj, path, out) {
  for (const [k, v] of Object.entries(obj)) {
    // proto3 JSON accepts both lowerCamel and original snake names
    const key = Object.prototype.hasOwnProperty.call(fields, k) ? k
      : Object.keys(fields).find((f) => snake(f) === k);
    if (!key) {
      const at = path ? ` at '${path}'` : '';
      const description = `Invalid JSON payload received. Unknown name "${k}"${at}: Cannot find field.`;
      out.push(path ? { field: path, description } : { description });
      continue;
    }
    if (v === null) continue;
    const t = fields[key];
    const p = path ? `${path}.${snake(key)}` : snake(key);
    const bad = () => out.push({ field: p, description: `Invalid value at '${p}' (${typeName(t)}), ${JSON.stringify(v)}` });
    if (Array.isArray(t)) {
      if (!Array.isArray(v)) { bad(); continue; }
      v.forEach((item, i) => {
        if (t[1] && t[1].fields) {
          if (typeof item !== 'object' || item === null || Array.isArray(item)) bad();
          else collect(t[1].fields, item, `${p}[${i}]`, out);
        } else if (!checkScalar(t[1], item)) bad();
      });
    } else if (t === 'map<string>') {
      if (typeof v !== 'object' || Array.isArray(v)) { bad(); continue; }
      for (const [mk, mv] of Object.entries(v)) {
        if (typeof mv !== 'string') out.push({ field: `${p}[${mk}]`, description: `Invalid value at '${p}[${mk}]' (TYPE_STRING), ${JSON.stringify(mv)}` });
      }
    } else if (t && t.fields) {
      if (typeof v !== 'object' || Array.isArray(v)) { bad(); continue; }
      collect(t.fields, v, p, out);
    } else if (!checkScalar(t, v)) bad();
  }
  return out;
}

/** Throw a Google 400 unless body (already JSON-parsed) fits the schema. */
function validate(fields, body) {
  if (body === undefined || body === null) return;
  if (typeof body !== 'object' || Array.isArray(body)) {
    const msg = `Invalid JSON payload received. Expected an object, got ${Array.isArray(body) ? 'a list' : typeof body}.`;
    throw invalid(msg, [badRequestDetail([{ description: msg }])]);
  }
  const v = collect(fields, body, '', []);
  if (v.length) throw invalid(v.map((x) => x.description).join('\n'), [badRequestDetail(v)]);
}

/** Get a field that may be sent either camelCase or snake_case. */
function pick(obj, name) {
  if (!obj) return undefined;
  if (obj[name] !== undefined && obj[name] !== null) return obj[name];
  const s = snake(name);
  return obj[s] === null ? undefined : obj[s];
}

module.exports = { validate, pick, snake };
