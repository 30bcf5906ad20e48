/*
 * dg_buf.h - a growable byte buffer with an optional size cap.
 *
 * The buffer owns its memory (allocated with the allocator given to
 * dg_buf_init, which must outlive it). data is always NUL-terminated when
 * non-NULL, so text can be read in place. Single-threaded.
 */
#ifndef DG_BUF_H
#define DG_BUF_H

#include <stddef.h>
#include "dg_alloc.h"

typedef struct dg_buf {
  char *data;
  size_t len, cap;           /* cap = allocated bytes (len + 1 <= cap) */
  size_t limit;              /* 0 = no limit; else appends past it are dropped */
  int truncated;             /* set when bytes were dropped because of limit */
  const dg_allocator *a;
} dg_buf;

void dg_buf_init(dg_buf *b, const dg_allocator *a, size_t limit);
/* 0 on success (including bytes dropped at the limit), -1 out of memory. */
int dg_buf_append(dg_buf *b, const void *p, size_t n);
int dg_buf_appendz(dg_buf *b, const char *s);
/* Forget the contents (keeps the memory). */
void dg_buf_reset(dg_buf *b);
/* Free the memory; the buffer may be reused after dg_buf_init. */
void dg_buf_free(dg_buf *b);
/* Same, but overwrite the bytes first (secrets). */
void dg_buf_wipe(dg_buf *b);

#endif
