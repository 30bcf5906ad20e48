/* dg_base64.c - base64url without padding; see dg_base64.h. */
#include "dg_base64.h"

static const char B64URL[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t dg_b64url_encoded_len(size_t n) {
  return (n / 3) * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t dg_b64url_encode(const unsigned char *src, size_t n, char *dst) {
  size_t i = 0, o = 0;
  for (; i + 3 <= n; i += 3) {
    unsigned long v = ((unsigned long)src[i] << 16) | ((unsigned long)src[i + 1] << 8) | src[i + 2];
    dst[o++] = B64URL[(v >> 18) & 63];
    dst[o++] = B64URL[(v >> 12) & 63];
    dst[o++] = B64URL[(v >> 6) & 63];
    dst[o++] = B64URL[v & 63];
  }
  if (n - i == 1) {
    unsigned long v = (unsigned long)src[i] << 16;
    dst[o++] = B64URL[(v >> 18) & 63];
    dst[o++] = B64URL[(v >> 12) & 63];
  } else if (n - i == 2) {
    unsigned long v = ((unsigned long)src[i] << 16) | ((unsigned long)src[i + 1] << 8);
    dst[o++] = B64URL[(v >> 18) & 63];
    dst[o++] = B64URL[(v >> 12) & 63];
    dst[o++] = B64URL[(v >> 6) & 63];
  }
  dst[o] = '\0';
  return o;
}

static int b64val(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-' || c == '+') return 62;
  if (c == '_' || c == '/') return 63;
  return -1;
}

size_t dg_b64url_decode(const char *src, size_t n, unsigned char *dst) {
  size_t i, o = 0;
  unsigned long acc = 0;
  int bits = 0;
  while (n > 0 && src[n - 1] == '=') n--;
  if (n % 4 == 1) return (size_t)-1;
  for (i = 0; i < n; i++) {
    int v = b64val(src[i]);
    if (v < 0) return (size_t)-1;
    acc = (acc << 6) | (unsigned long)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      dst[o++] = (unsigned char)((acc >> bits) & 0xFF);
    }
  }
  return o;
}
