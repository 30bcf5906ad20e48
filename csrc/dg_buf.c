/* dg_buf.c - see dg_buf.h */
#include <string.h>
#include <openssl/crypto.h>

#include "dg_buf.h"

void dg_buf_init(dg_buf *b, const dg_allocator *a, size_t limit) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->limit = limit;
  b->truncated = 0;
  b->a = a;
}

int dg_buf_append(dg_buf *b, const void *p, size_t n) {
  if (b->limit && b->len + n > b->limit) {
    size_t room = b->limit > b->len ? b->limit - b->len : 0;
    if (room < n) b->truncated = 1;
    n = room;
  }
  if (n == 0 && b->data) return 0;
  if (b->len + n + 1 > b->cap) {
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < b->len + n + 1) {
      if (ncap > (size_t)-1 / 2) return -1;
      ncap *= 2;
    }
    char *d = dg_realloc(b->a, b->data, b->cap, ncap);
    if (!d) return -1;
    b->data = d;
    b->cap = ncap;
  }
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int dg_buf_appendz(dg_buf *b, const char *s) { return dg_buf_append(b, s, strlen(s)); }

void dg_buf_reset(dg_buf *b) {
  b->len = 0;
  b->truncated = 0;
  if (b->data) b->data[0] = '\0';
}

void dg_buf_free(dg_buf *b) {
  dg_free(b->a, b->data, b->cap);
  b->data = NULL;
  b->len = b->cap = 0;
  b->truncated = 0;
}

void dg_buf_wipe(dg_buf *b) {
  if (b->data) OPENSSL_cleanse(b->data, b->cap);
  dg_buf_free(b);
}
