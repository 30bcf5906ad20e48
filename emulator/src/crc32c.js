'use strict';
// CRC-32C (Castagnoli), slicing-by-8, incremental. GCS reports it base64 of the big-endian 4 bytes.
const T = [];
for (let k = 0; k < 8; k++) T.push(new Int32Array(256));
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let j = 0; j < 8; j++) c = c & 1 ? (c >>> 1) ^ 0x82F63B78 : c >>> 1;
  T[0][i] = c;
}
for (let i = 0; i < 256; i++) {
  for (let k = 1; k < 8; k++) T[k][i] = (T[k - 1][i] >>> 8) ^ T[0][T[k - 1][i] & 0xff];
}
const [T0, T1, T2, T3, T4, T5, T6, T7] = T;

/** Continue a CRC (pass the previous return value, 0 to start). */
function update(crc, buf) {
  let c = ~crc;
  let i = 0; const n = buf.length;
  for (; i + 8 <= n; i += 8) {
    c ^= buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24);
    c = T7[c & 0xff] ^ T6[(c >>> 8) & 0xff] ^ T5[(c >>> 16) & 0xff] ^ T4[c >>> 24]
      ^ T3[buf[i + 4]] ^ T2[buf[i + 5]] ^ T1[buf[i + 6]] ^ T0[buf[i + 7]];
  }
  for (; i < n; i++) c = T0[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

function toBase64(crc) {
  const b = Buffer.alloc(4); b.writeUInt32BE(crc >>> 0); return b.toString('base64');
}

module.exports = { update, toBase64 };
