/*
 * dg_hash.c - CRC32C (SSE4.2 or slicing-by-8) and MD5 (OpenSSL EVP) for
 * Cloud Storage checksums; file hashing and joining of ranged-download parts.
 */
#include "dg_hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>

#define POLY 0x82F63B78u   /* Castagnoli, reflected */

static uint32_t T[8][256];
static int tables_ready = 0;

static void make_tables(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (POLY & (0u - (c & 1u)));
    T[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int s = 1; s < 8; s++) T[s][i] = (T[s - 1][i] >> 8) ^ T[0][T[s - 1][i] & 0xFF];
  tables_ready = 1;
}

static uint32_t crc_sw(uint32_t c, const unsigned char *p, size_t n) {
  if (!tables_ready) make_tables();
  while (n && ((uintptr_t)p & 7)) { c = (c >> 8) ^ T[0][(c ^ *p++) & 0xFF]; n--; }
  while (n >= 8) {
    uint32_t lo, hi;
    memcpy(&lo, p, 4); memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    lo = __builtin_bswap32(lo); hi = __builtin_bswap32(hi);
#endif
    lo ^= c;
    c = T[7][lo & 0xFF] ^ T[6][(lo >> 8) & 0xFF] ^ T[5][(lo >> 16) & 0xFF] ^ T[4][lo >> 24] ^
        T[3][hi & 0xFF] ^ T[2][(hi >> 8) & 0xFF] ^ T[1][(hi >> 16) & 0xFF] ^ T[0][hi >> 24];
    p += 8; n -= 8;
  }
  while (n--) c = (c >> 8) ^ T[0][(c ^ *p++) & 0xFF];
  return c;
}

/* a*b modulo the CRC32C polynomial, both in the reflected form (x^0 is bit 31). */
static uint32_t multmodp(uint32_t a, uint32_t b) {
  uint32_t m = 1u << 31, p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = b & 1 ? (b >> 1) ^ POLY : b >> 1;
  }
  return p;
}

/* x^(8*n) modulo the polynomial: the operator that appends n zero bytes to a raw CRC state. */
static uint32_t x8nmodp(uint64_t n) {
  uint32_t sq = 1u << 30, p = 1u << 31;     /* x^1, x^0 */
  for (int i = 0; i < 3; i++) sq = multmodp(sq, sq);   /* x^8 */
  while (n) {
    if (n & 1) p = multmodp(sq, p);
    n >>= 1;
    sq = multmodp(sq, sq);
  }
  return p;
}

uint32_t dg_crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2) {
  return multmodp(x8nmodp(len2), crc1) ^ crc2;
}

#if defined(__x86_64__) && defined(__GNUC__)
#define HW_BLK 8192                /* bytes per lane when three lanes run interleaved */
static uint32_t hw_shift1 = 0, hw_shift2 = 0;   /* x^(8*BLK), x^(16*BLK); set once (idempotent) */

__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t c, const unsigned char *p, size_t n) {
  uint64_t c64 = c;
  while (n && ((uintptr_t)p & 7)) { c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++); n--; }
  if (n >= 3 * HW_BLK) {
    /* three independent crc32 chains hide the instruction's latency; the lanes are joined
     * by the linearity of the raw CRC state: crc(c, A|B|C) = c_A*x^(16 BLK) ^ c_B*x^(8 BLK) ^ c_C */
    if (!hw_shift2) { hw_shift1 = x8nmodp(HW_BLK); hw_shift2 = x8nmodp(2 * HW_BLK); }
    while (n >= 3 * HW_BLK) {
      uint64_t a = c64, b = 0, d = 0;
      for (size_t i = 0; i < HW_BLK; i += 8) {
        uint64_t x, y, z;
        memcpy(&x, p + i, 8); memcpy(&y, p + HW_BLK + i, 8); memcpy(&z, p + 2 * HW_BLK + i, 8);
        a = __builtin_ia32_crc32di(a, x);
        b = __builtin_ia32_crc32di(b, y);
        d = __builtin_ia32_crc32di(d, z);
      }
      c64 = multmodp(hw_shift2, (uint32_t)a) ^ multmodp(hw_shift1, (uint32_t)b) ^ (uint32_t)d;
      p += 3 * HW_BLK; n -= 3 * HW_BLK;
    }
  }
  while (n >= 32) {
    uint64_t a, b, d, e;
    memcpy(&a, p, 8); memcpy(&b, p + 8, 8); memcpy(&d, p + 16, 8); memcpy(&e, p + 24, 8);
    c64 = __builtin_ia32_crc32di(c64, a);
    c64 = __builtin_ia32_crc32di(c64, b);
    c64 = __builtin_ia32_crc32di(c64, d);
    c64 = __builtin_ia32_crc32di(c64, e);
    p += 32; n -= 32;
  }
  while (n >= 8) { uint64_t a; memcpy(&a, p, 8); c64 = __builtin_ia32_crc32di(c64, a); p += 8; n -= 8; }
  uint32_t c32 = (uint32_t)c64;
  while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32;
}
static int hw = -1;
int dg_crc32c_hw(void) {
  if (hw < 0) { __builtin_cpu_init(); hw = __builtin_cpu_supports("sse4.2") ? 1 : 0; }
  return hw;
}
#else
int dg_crc32c_hw(void) { return 0; }
#endif

uint32_t dg_crc32c(uint32_t crc, const void *buf, size_t n) {
  uint32_t c = ~crc;
#if defined(__x86_64__) && defined(__GNUC__)
  if (dg_crc32c_hw()) return ~crc_hw(c, buf, n);
#endif
  return ~crc_sw(c, buf, n);
}

void dg_hash_b64(const unsigned char *src, size_t n, char *dst) {
  static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0, o = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = ((uint32_t)src[i] << 16) | ((uint32_t)src[i + 1] << 8) | src[i + 2];
    dst[o++] = A[v >> 18]; dst[o++] = A[(v >> 12) & 63]; dst[o++] = A[(v >> 6) & 63]; dst[o++] = A[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)src[i] << 16;
    if (i + 1 < n) v |= (uint32_t)src[i + 1] << 8;
    dst[o++] = A[v >> 18]; dst[o++] = A[(v >> 12) & 63];
    dst[o++] = i + 1 < n ? A[(v >> 6) & 63] : '=';
    dst[o++] = '=';
  }
  dst[o] = '\0';
}

int dg_hasher_init(dg_hasher *h, int which) {
  h->which = which; h->crc = 0; h->md5 = NULL; h->size = 0;
  if (which & DG_HASH_MD5) {
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (!m) return -1;
    if (EVP_DigestInit_ex(m, EVP_md5(), NULL) != 1) { EVP_MD_CTX_free(m); return -1; }
    h->md5 = m;
  }
  return 0;
}

int dg_hasher_update(dg_hasher *h, const void *buf, size_t n) {
  if (h->which & DG_HASH_CRC32C) h->crc = dg_crc32c(h->crc, buf, n);
  if (h->md5 && EVP_DigestUpdate((EVP_MD_CTX *)h->md5, buf, n) != 1) return -1;
  h->size += (int64_t)n;
  return 0;
}

void dg_hasher_free(dg_hasher *h) {
  if (h->md5) { EVP_MD_CTX_free((EVP_MD_CTX *)h->md5); h->md5 = NULL; }
}

int dg_hasher_final(dg_hasher *h, dg_digest *d) {
  memset(d, 0, sizeof *d);
  d->which = h->which; d->size = h->size; d->crc32c = h->crc;
  if (h->which & DG_HASH_CRC32C) {
    unsigned char be[4] = { (unsigned char)(h->crc >> 24), (unsigned char)(h->crc >> 16),
                            (unsigned char)(h->crc >> 8), (unsigned char)h->crc };
    dg_hash_b64(be, 4, d->crc32c_b64);
  }
  int rc = 0;
  if (h->md5) {
    unsigned int len = 0;
    if (EVP_DigestFinal_ex((EVP_MD_CTX *)h->md5, d->md5, &len) != 1 || len != 16) rc = -1;
    else dg_hash_b64(d->md5, 16, d->md5_b64);
  }
  dg_hasher_free(h);
  return rc;
}

#define BUFSZ (1u << 20)

int dg_hash_file(const char *path, int64_t offset, int64_t length, int which, dg_digest *d,
                 char *err, size_t errlen) {
  dg_hasher h;
  int fd = -1, rc = -1;
  unsigned char *buf = NULL;
  if (dg_hasher_init(&h, which) != 0) { snprintf(err, errlen, "cannot start MD5"); return -1; }
  if ((buf = malloc(BUFSZ)) == NULL) { snprintf(err, errlen, "out of memory"); goto out; }
  if ((fd = open(path, O_RDONLY)) < 0) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); goto out; }
  int64_t pos = offset, left = length;
  for (;;) {
    size_t want = BUFSZ;
    if (length >= 0) { if (left == 0) break; if ((int64_t)want > left) want = (size_t)left; }
    ssize_t got = pread(fd, buf, want, (off_t)pos);
    if (got < 0) {
      if (errno == EINTR) continue;
      snprintf(err, errlen, "%s: %s", path, strerror(errno)); goto out;
    }
    if (got == 0) {
      if (length >= 0) { snprintf(err, errlen, "%s: the file is shorter than expected", path); goto out; }
      break;
    }
    if (dg_hasher_update(&h, buf, (size_t)got) != 0) { snprintf(err, errlen, "MD5 failed"); goto out; }
    pos += got;
    if (length >= 0) left -= got;
  }
  if (dg_hasher_final(&h, d) != 0) { snprintf(err, errlen, "MD5 failed"); rc = -1; h.md5 = NULL; }
  else rc = 0;
out:
  dg_hasher_free(&h);
  if (fd >= 0) close(fd);
  free(buf);
  return rc;
}
