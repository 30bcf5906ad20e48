/*
 * dg_hash.h - the checksums Cloud Storage keeps for every object: CRC32C
 * (Castagnoli, reflected, as `crc32c` = base64 of the big-endian 4 bytes)
 * and MD5 (`md5Hash` = base64 of the 16 bytes), computed while streaming.
 *
 * CRC32C uses the SSE4.2 instruction when the CPU has it (checked once at
 * run time), else slicing-by-8 tables. MD5 comes from OpenSSL's EVP.
 * No Lua. A dg_hasher is owned by its caller: dg_hasher_init, any number of
 * dg_hasher_update, dg_hasher_final (which also releases it; call
 * dg_hasher_free instead to abandon it). Thread-safe apart from the one-time
 * table set-up, which is idempotent.
 */
#ifndef DG_HASH_H
#define DG_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC32C: crc is the previous value (0 to start). */
uint32_t dg_crc32c(uint32_t crc, const void *buf, size_t n);
/* The CRC32C of A followed by B from crc1 = CRC32C(A), crc2 = CRC32C(B), len2 = |B|
 * (zlib's crc32_combine for the Castagnoli polynomial). */
uint32_t dg_crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2);
/* 1 when the hardware (SSE4.2) path is used. */
int dg_crc32c_hw(void);

enum { DG_HASH_CRC32C = 1, DG_HASH_MD5 = 2 };

typedef struct dg_hasher {
  int which;            /* DG_HASH_* bits */
  uint32_t crc;
  void *md5;            /* EVP_MD_CTX*, when MD5 is wanted */
  int64_t size;         /* bytes seen */
} dg_hasher;

typedef struct dg_digest {
  int which;
  uint32_t crc32c;
  unsigned char md5[16];
  int64_t size;
  char crc32c_b64[9];   /* standard base64 with padding, NUL-terminated */
  char md5_b64[25];
} dg_digest;

/* 0, or -1 when OpenSSL cannot make an MD5 context. */
int dg_hasher_init(dg_hasher *h, int which);
/* 0, or -1 on an OpenSSL failure. */
int dg_hasher_update(dg_hasher *h, const void *buf, size_t n);
/* Fill d and release h. 0, or -1 on an OpenSSL failure. */
int dg_hasher_final(dg_hasher *h, dg_digest *d);
void dg_hasher_free(dg_hasher *h);

/* Standard base64 (with padding) of n bytes into dst (4*ceil(n/3)+1 bytes). */
void dg_hash_b64(const unsigned char *src, size_t n, char *dst);

/* Hash `length` bytes of the file at `path` from `offset` (length < 0: to the end).
 * 0, or -1 with a message naming the file in err (missing, unreadable, shorter than asked). */
int dg_hash_file(const char *path, int64_t offset, int64_t length, int which, dg_digest *d,
                 char *err, size_t errlen);

#endif
