'use strict';
const crypto = require('crypto');
/** A long decimal id like Google's operation ids (e.g. 9268869944714461185). */
function decimalId() {
  const n = crypto.randomBytes(8).readBigUInt64BE() & ((1n << 63n) - 1n);
  return (n < 10n ** 18n ? n + 10n ** 18n : n).toString();
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
module.exports = { decimalId, sleep };
