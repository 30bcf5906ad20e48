/* fuzz_multipart.c - libFuzzer target for dg_multipart (see fuzz/README.md).
 * Input: byte 0 = chunk size - 1, then a Content-Type line up to '\n', then the body.
 * Oracle: feeding the body whole and in chunks must give the same events and result. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "dg_multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Event digest: FNV-1a over event types, part numbers and data bytes. */
static uint64_t run(const char *b, size_t blen, const uint8_t *body, size_t n, size_t chunk, int *status) {
  static char hdr[4096];
  dg_mp p;
  uint64_t d = 1469598103934665603ull;
  size_t at = 0, off, used, i;
  dg_mp_event ev;
  dg_mp_status st = dg_mp_init(&p, b, blen, hdr, sizeof hdr);
  while (st == DG_MP_OK && at < n) {
    size_t len = n - at < chunk ? n - at : chunk;
    for (off = 0; st == DG_MP_OK;) {
      st = dg_mp_next(&p, body + at + off, len - off, &used, &ev);
      if (st != DG_MP_OK) break;
      if (used > len - off) __builtin_trap();
      off += used;
      if (ev.type == DG_MP_EV_NONE) { if (off != len) __builtin_trap(); break; }
      if (ev.type == DG_MP_EV_DATA && ev.len == 0) __builtin_trap();
      if (ev.type != DG_MP_EV_DATA) /* data may be split differently: hash only its bytes */
        d = (d ^ (uint64_t)ev.type ^ ((uint64_t)ev.part << 8) ^ ((uint64_t)ev.nheaders << 32)) * 1099511628211ull;
      for (i = 0; ev.type == DG_MP_EV_DATA && i < ev.len; i++) d = (d ^ ev.data[i]) * 1099511628211ull;
    }
    at += len;
  }
  if (st == DG_MP_OK) st = dg_mp_finish(&p);
  *status = (int)st;
  return st == DG_MP_OK ? d : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char b[DG_MP_BOUNDARY_MAX + 1];
  size_t blen, ctlen = 0, chunk, skip;
  int s1, s2;
  uint64_t d1, d2;
  if (size < 2) return 0;
  chunk = (size_t)data[0] + 1;
  while (1 + ctlen < size && ctlen < 200 && data[1 + ctlen] != '\n') ctlen++;
  if (dg_mp_boundary_from_content_type((const char *)data + 1, ctlen, b, sizeof b, &blen) != DG_MP_OK) {
    memcpy(b, "BOUNDARY", 9);
    blen = 8;
  }
  skip = 1 + ctlen + (1 + ctlen < size ? 1 : 0); /* chunk byte, Content-Type, '\n' */
  data += skip;
  size -= skip;
  d1 = run(b, blen, data, size, size ? size : 1, &s1);
  d2 = run(b, blen, data, size, chunk, &s2);
  if (s1 != s2 || (s1 == DG_MP_OK && d1 != d2)) __builtin_trap();
  return 0;
}
