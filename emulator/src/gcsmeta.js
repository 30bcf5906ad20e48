'use strict';
// Cloud Storage metadata updates: buckets.patch and objects.patch (PATCH /b/B, PATCH /b/B/o/O),
// as @google-cloud/storage's bucket.setMetadata / setStorageClass / setLabels and
// file.setMetadata send them. Patch semantics: fields present replace, `null` clears, and in the
// `labels` / `metadata` maps a null value removes that key. metageneration goes up by one.
// Preconditions ifMetagenerationMatch/NotMatch (and ifGenerationMatch/NotMatch for objects) -> 412.
const fs = require('fs');
const path = require('path');
const { GcsError, sendJson } = require('./errors');
const { readAll } = require('./body');

// Writable fields (discovery storage v1 Bucket / Object); others are read-only or unknown -> 400.
const BUCKET_FIELDS = new Set(['labels', 'storageClass', 'versioning', 'lifecycle', 'cors', 'website', 'logging',
  'billing', 'retentionPolicy', 'iamConfiguration', 'defaultEventBasedHold', 'encryption', 'autoclass', 'rpo',
  'defaultObjectAcl', 'acl', 'customPlacementConfig', 'softDeletePolicy', 'hierarchicalNamespace']);
const BUCKET_READONLY = new Set(['id', 'name', 'kind', 'selfLink', 'projectNumber', 'metageneration', 'etag', 'timeCreated', 'updated', 'location', 'locationType', 'owner']);
const OBJECT_FIELDS = new Set(['contentType', 'contentEncoding', 'contentDisposition', 'contentLanguage', 'cacheControl',
  'metadata', 'customTime', 'temporaryHold', 'eventBasedHold', 'acl']);
const OBJECT_READONLY = new Set(['id', 'name', 'bucket', 'kind', 'selfLink', 'mediaLink', 'generation', 'metageneration', 'size',
  'md5Hash', 'crc32c', 'etag', 'timeCreated', 'updated', 'storageClass', 'timeStorageClassUpdated', 'owner', 'componentCount']);
const STORAGE_CLASSES = ['STANDARD', 'NEARLINE', 'COLDLINE', 'ARCHIVE', 'MULTI_REGIONAL', 'REGIONAL', 'DURABLE_REDUCED_AVAILABILITY'];

const bad = (msg) => new GcsError(400, 'invalid', msg);
const conditionNotMet = () => new GcsError(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');

async function readPatch(req) {
  const buf = await readAll(req);
  let body;
  try { body = buf.length ? JSON.parse(buf.toString('utf8')) : {}; } catch (_) { throw bad('Invalid JSON payload received.'); }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw bad('Invalid JSON payload received. Expected an object.');
  return body;
}

function mergeMap(old, patch, what) {
  if (patch === null) return undefined;
  if (typeof patch !== 'object' || Array.isArray(patch)) throw bad(`Invalid value for ${what}: expected an object.`);
  const out = Object.assign({}, old || {});
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else if (typeof v !== 'string') throw bad(`Invalid value for ${what}.${k}: expected a string.`);
    else out[k] = v;
  }
  return Object.keys(out).length ? out : undefined;
}

function metaPreconditions(q, m) {
  const mg = q.get('ifMetagenerationMatch');
  if (mg !== null && m.metageneration !== mg) throw conditionNotMet();
  const mgn = q.get('ifMetagenerationNotMatch');
  if (mgn !== null && m.metageneration === mgn) throw conditionNotMet();
  const g = q.get('ifGenerationMatch');
  if (g !== null && m.generation !== undefined && m.generation !== g) throw conditionNotMet();
  const gn = q.get('ifGenerationNotMatch');
  if (gn !== null && m.generation !== undefined && m.generation === gn) throw conditionNotMet();
}

function bump(meta) {
  meta.metageneration = String(parseInt(meta.metageneration || '1', 10) + 1);
  meta.updated = new Date().toISOString();
}

/** PATCH a bucket; returns the new metadata object (caller renders it). */
async function patchBucket(req, ctx, bucket, q) {
  const b = ctx.gcs.getBucket(bucket);
  const body = await readPatch(req);
  metaPreconditions(q, b.meta);
  const meta = Object.assign({}, b.meta);
  for (const [k, v] of Object.entries(body)) {
    if (BUCKET_READONLY.has(k)) continue; // ignored, as GCS does for output-only fields
    if (!BUCKET_FIELDS.has(k)) throw bad(`Invalid argument: unknown bucket field "${k}".`);
    if (k === 'labels') { const l = mergeMap(meta.labels, v, 'labels'); if (l) meta.labels = l; else delete meta.labels; continue; }
    if (k === 'storageClass' && v !== null && !STORAGE_CLASSES.includes(v)) throw bad(`Invalid argument: storage class "${v}".`);
    if (v === null) delete meta[k]; else meta[k] = v;
  }
  bump(meta);
  fs.writeFileSync(path.join(ctx.gcs.bucketDir(bucket), 'bucket.json'), JSON.stringify(meta));
  b.meta = meta;
  return meta;
}

/** PATCH an object's metadata; returns the new object metadata. */
async function patchObject(req, ctx, bucket, name, q) {
  const obj = ctx.gcs.getObject(bucket, name);
  const body = await readPatch(req);
  if (!obj || (q.get('generation') && q.get('generation') !== obj.generation)) throw new GcsError(404, 'notFound', `No such object: ${bucket}/${name}`);
  metaPreconditions(q, obj);
  const meta = Object.assign({}, obj);
  for (const [k, v] of Object.entries(body)) {
    if (OBJECT_READONLY.has(k)) continue;
    if (!OBJECT_FIELDS.has(k)) throw bad(`Invalid argument: unknown object field "${k}".`);
    if (k === 'metadata') { const m = mergeMap(meta.metadata, v, 'metadata'); if (m) meta.metadata = m; else delete meta.metadata; continue; }
    if (v === null) { delete meta[k]; if (k === 'contentType') meta.contentType = 'application/octet-stream'; continue; }
    if (k === 'customTime' && (typeof v !== 'string' || Number.isNaN(Date.parse(v)))) throw bad(`Invalid value for customTime: ${JSON.stringify(v)}`);
    if (k !== 'acl' && k !== 'temporaryHold' && k !== 'eventBasedHold' && typeof v !== 'string') throw bad(`Invalid value for ${k}: expected a string.`);
    meta[k] = v;
  }
  bump(meta);
  fs.writeFileSync(ctx.gcs.metaPath(bucket, name), JSON.stringify(meta));
  ctx.gcs.buckets.get(bucket).objects.set(name, meta);
  return meta;
}

module.exports = { patchBucket, patchObject, sendJson };
