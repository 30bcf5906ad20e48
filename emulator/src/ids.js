'use strict';
const crypto = require('crypto');
/** A long decimal id like Google's operation ids (e.g. 9268869944714461185). */
function decimalId() {
  const n = crypto.randomBytes(8).readBigUInt64BE() & ((1n << 63n) - 1n);
  return (n < 10n ** 18n ? n + 10n ** 18n : n).toString();
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// File names of the emulator's own (temp and stored) files: unique within this process by a
// counter, and across processes on one data folder by a random prefix drawn once. One
// crypto.randomBytes per file (two per STOW) was ~4% of the emulator's CPU per STOW.
const RUN = crypto.randomBytes(6).toString('hex');
let fileSeq = 0;
/** A file name never used before in this data folder: PREFIX-<run>-<n>. */
function fileName(prefix) { return `${prefix}-${RUN}-${(++fileSeq).toString(36)}`; }

module.exports = { decimalId, sleep, fileName };
