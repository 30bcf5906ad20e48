/*
 * test_hash.c - unit tests for dg_hash (TAP output): CRC32C against RFC 3720 / GCS vectors,
 * hardware and table paths agreeing, MD5, base64 forms, file hashing and joining.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dg_hash.h"
#include "tap.h"

static void write_file(const char *p, const void *b, size_t n) {
  FILE *f = fopen(p, "wb");
  if (f) { fwrite(b, 1, n, f); fclose(f); }
}

int main(void) {
  unsigned char zeros[32] = {0}, ones[32], inc[32];
  memset(ones, 0xFF, sizeof ones);
  for (int i = 0; i < 32; i++) inc[i] = (unsigned char)i;
  ok(dg_crc32c(0, zeros, 32) == 0x8A9136AAu, "crc32c of 32 zero bytes (RFC 3720)");
  ok(dg_crc32c(0, ones, 32) == 0x62A8AB43u, "crc32c of 32 0xFF bytes (RFC 3720)");
  ok(dg_crc32c(0, inc, 32) == 0x46DD794Eu, "crc32c of 0..31 (RFC 3720)");
  ok(dg_crc32c(0, "123456789", 9) == 0xE3069283u, "crc32c check value");
  ok(dg_crc32c(dg_crc32c(0, "12345", 5), "6789", 4) == 0xE3069283u, "crc32c continues across calls");

  /* unaligned starts and odd lengths agree with a byte-at-a-time reference */
  static unsigned char big[100003];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 2654435761u >> 13);
  int same = 1;
  for (size_t off = 0; off < 9; off++) {
    uint32_t c = 0;
    for (size_t i = off; i < sizeof big; i += 4099) {
      size_t n = sizeof big - i < 4099 ? sizeof big - i : 4099;
      c = dg_crc32c(c, big + i, n);
    }
    if (c != dg_crc32c(0, big + off, sizeof big - off)) same = 0;
  }
  ok(same, "crc32c is the same over any split and alignment");

  /* a bit-at-a-time reference over the whole buffer (covers the hardware 3-lane path) */
  uint32_t ref = 0xFFFFFFFFu;
  for (size_t i = 0; i < sizeof big; i++) {
    ref ^= big[i];
    for (int k = 0; k < 8; k++) ref = (ref >> 1) ^ (0x82F63B78u & (0u - (ref & 1u)));
  }
  ok(dg_crc32c(0, big, sizeof big) == ~ref, "crc32c of 100003 bytes matches a bitwise reference");

  /* combine: CRC(A|B) from CRC(A), CRC(B), |B|, for many splits, and chained in order */
  uint32_t whole = dg_crc32c(0, big, sizeof big);
  int comb = 1;
  size_t cuts[] = { 0, 1, 7, 8, 4096, 24576, 50000, 99999, sizeof big };
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    size_t a = cuts[i];
    uint32_t c = dg_crc32c_combine(dg_crc32c(0, big, a), dg_crc32c(0, big + a, sizeof big - a), sizeof big - a);
    if (c != whole) comb = 0;
  }
  ok(comb, "crc32c_combine of two parts equals the whole-buffer CRC at any split");
  uint32_t chain = 0;
  for (size_t i = 0; i < sizeof big; i += 9973) {
    size_t n = sizeof big - i < 9973 ? sizeof big - i : 9973;
    chain = dg_crc32c_combine(chain, dg_crc32c(0, big + i, n), n);
  }
  ok(chain == whole, "crc32c_combine chained over 11 parts equals the whole-buffer CRC");
  ok(dg_crc32c_combine(0x12345678u, 0, 0) == 0x12345678u, "crc32c_combine with an empty second part");
  ok(dg_crc32c_combine(dg_crc32c(0, "12345", 5), dg_crc32c(0, "6789", 4), 4) == 0xE3069283u,
     "crc32c_combine on the check value");
  printf("# crc32c hardware path: %s\n", dg_crc32c_hw() ? "yes" : "no");

  dg_hasher h; dg_digest d;
  ok(dg_hasher_init(&h, DG_HASH_CRC32C | DG_HASH_MD5) == 0, "hasher starts");
  dg_hasher_update(&h, "hello ", 6); dg_hasher_update(&h, "world", 5);
  ok(dg_hasher_final(&h, &d) == 0, "hasher finishes");
  ok(strcmp(d.md5_b64, "XrY7u+Ae7tCTyyK7j1rNww==") == 0, "md5 base64 of 'hello world'");
  ok(strcmp(d.crc32c_b64, "yZRlqg==") == 0, "crc32c base64 of 'hello world' (as GCS writes it)");
  ok(d.size == 11, "size counted");

  char empty[9];
  dg_hasher_init(&h, DG_HASH_CRC32C); dg_hasher_final(&h, &d);
  memcpy(empty, d.crc32c_b64, 9);
  ok(strcmp(empty, "AAAAAA==") == 0, "crc32c of nothing is AAAAAA==");

  char dir[] = "/tmp/dg-hash-test.XXXXXX";
  if (!mkdtemp(dir)) { printf("Bail out! mkdtemp\n"); return 1; }
  char j[128], err[512];
  snprintf(j, sizeof j, "%s/j", dir);
  write_file(j, "hello world", 11);
  ok(dg_hash_file(j, 0, -1, DG_HASH_CRC32C, &d, err, sizeof err) == 0, "hash_file of a whole file");
  ok(strcmp(d.crc32c_b64, "yZRlqg==") == 0 && d.size == 11, "hash_file hashes every byte");
  ok(dg_hash_file(j, 6, 5, DG_HASH_MD5, &d, err, sizeof err) == 0 && d.size == 5, "hash_file of a range");
  dg_hasher_init(&h, DG_HASH_MD5); dg_hasher_update(&h, "world", 5);
  dg_digest d2; dg_hasher_final(&h, &d2);
  ok(strcmp(d.md5_b64, d2.md5_b64) == 0, "range hash equals hash of those bytes");
  ok(dg_hash_file(j, 6, 50, DG_HASH_MD5, &d, err, sizeof err) != 0 && strstr(err, "shorter"), "a short file is an error");
  ok(dg_hash_file("/nonexistent/x", 0, -1, DG_HASH_MD5, &d, err, sizeof err) != 0 && strstr(err, "/nonexistent/x"),
     "a missing file is an error naming it");
  unlink(j); rmdir(dir);
  return tap_done();
}
