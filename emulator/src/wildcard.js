'use strict';
// The gcsSource.uri wildcard, as defined by spec/fixtures/wildcard_cases.json:
//   '*'  zero or more characters other than '/'
//   '?'  exactly one character (Unicode code point, not byte) other than '/'
//   '**' zero or more of any character; only at the end of the path (optionally followed by a
//        literal extension without '/'), and only when no other wildcard is in the path.
// Everything else is literal.

const BUCKET_RE = /^[a-z0-9][a-z0-9_.-]{1,220}[a-z0-9]$/;

function validBucketName(b) {
  if (!BUCKET_RE.test(b)) return false;
  // dotted names: each component 1..63; plain names 3..63
  if (b.includes('.')) return b.split('.').every((c) => c.length >= 1 && c.length <= 63);
  return b.length >= 3 && b.length <= 63;
}

/** Parse "gs://bucket/object". Returns {bucket, object} or {error}. */
function parseGsUri(uri) {
  if (typeof uri !== 'string' || !uri.startsWith('gs://')) return { error: 'not a gs:// URI' };
  const rest = uri.slice(5);
  const slash = rest.indexOf('/');
  if (slash < 0) return { error: 'no object part' };
  const bucket = rest.slice(0, slash);
  const object = rest.slice(slash + 1);
  if (!validBucketName(bucket)) return { error: 'bucket name' };
  if (object === '') return { error: 'empty object part' };
  return { bucket, object };
}

/** Check a pattern; returns null when valid, else a reason string. */
function validatePattern(p) {
  if (typeof p !== 'string' || p === '') return 'the object part of the URI is empty';
  const dbl = p.indexOf('**');
  if (dbl < 0) return null;
  const after = p.slice(dbl + 2);
  if (after.includes('/') || after.includes('**')) return "'**' must be at the end of the path";
  const before = p.slice(0, dbl);
  if (/[*?]/.test(before) || /[*?]/.test(after)) return "no other wildcard may appear with '**'";
  return null;
}

function escapeRe(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

/** RegExp matching whole object names for a valid pattern. '?' is one character (a Unicode
 * code point, as Google's "exactly 1 character"), never one UTF-16 unit or one byte: the
 * pattern is walked by code point and the RegExp has the 'u' flag. */
function toRegExp(pattern) {
  const p = Array.from(pattern);
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '*' && p[i + 1] === '*') { out += '[\\s\\S]*'; i++; }
    else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += escapeRe(c);
  }
  return new RegExp('^' + out + '$', 'u');
}

/** The literal part before the first wildcard (used as a listing prefix). */
function literalPrefix(p) {
  const m = p.search(/[*?]/);
  return m < 0 ? p : p.slice(0, m);
}

function matcher(p) {
  const why = validatePattern(p);
  if (why) throw new Error(why);
  const re = toRegExp(p);
  return (name) => re.test(name);
}

module.exports = { parseGsUri, validatePattern, toRegExp, literalPrefix, matcher, validBucketName };
