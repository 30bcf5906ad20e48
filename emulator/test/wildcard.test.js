'use strict';
const test = require('node:test');
const assert = require('node:assert');
const path = require('path');
const w = require('../src/wildcard');
const cases = require(path.join(__dirname, '..', '..', 'spec', 'fixtures', 'wildcard_cases.json'));

test('wildcard case table: matches', () => {
  for (const c of cases.matches) assert.strictEqual(w.matcher(c.pattern)(c.name), c.match, JSON.stringify(c));
});
test('wildcard case table: prefixes', () => {
  for (const c of cases.prefixes) assert.strictEqual(w.literalPrefix(c.pattern), c.prefix, JSON.stringify(c));
});
test('wildcard case table: invalid patterns', () => {
  for (const c of cases.invalid) {
    assert.ok(w.validatePattern(c.pattern), JSON.stringify(c));
    assert.throws(() => w.matcher(c.pattern));
  }
});
test('wildcard case table: uris', () => {
  for (const c of cases.uris) {
    const r = w.parseGsUri(c.uri);
    if (c.error) assert.ok(r.error, JSON.stringify(c));
    else assert.deepStrictEqual(r, { bucket: c.bucket, object: c.object });
  }
});
