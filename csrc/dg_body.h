/*
 * dg_body.h - a request body streamed from memory and files, never
 * assembled: the concatenation of its parts, read sequentially by libcurl's
 * read callback. A file part is opened only when the reader reaches it and
 * closed when it moves on, so one file descriptor is open at a time.
 *
 * Ownership: dg_body_init copies the file paths; the bytes of data parts
 * are BORROWED and must outlive the body. dg_body_free closes and frees.
 * dg_body_open stats the files (the total is the Content-Length) and
 * rewinds; call it again before each attempt. A file that is missing,
 * shorter than its slice (offset + length) or than when it was measured, or
 * unreadable makes dg_body_open or dg_body_read fail with a message naming
 * the file. Single-threaded.
 */
#ifndef DG_BODY_H
#define DG_BODY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "dg_alloc.h"

typedef struct dg_part_spec {
  const char *data;          /* data part: bytes (borrowed) ... */
  size_t len;
  const char *path;          /* ... or file part when non-NULL */
  int64_t offset;            /* file part: first byte sent (>= 0; default 0) */
  int64_t length;            /* file part: bytes sent, when has_length (>= 0) ... */
  int has_length;            /* ... else the rest of the file from offset */
} dg_part_spec;

typedef struct dg_body_part {
  const char *data;
  size_t len;
  char *path;
  int64_t offset, length;
  int has_length;
  int64_t size;              /* measured by dg_body_open */
} dg_body_part;

typedef struct dg_body {
  const dg_allocator *a;
  dg_body_part *parts;
  size_t n;
  int64_t total;             /* valid after dg_body_open */
  size_t cur;                /* reader position: part index ... */
  int64_t off;               /* ... and offset in it */
  FILE *fp;                  /* open file of parts[cur], if any */
  char err[512];             /* message after a failure */
} dg_body;

/* Check part specs: offset/length only on file parts, not negative, offset + length
 * representable. 0, or -1 with a message (naming the part, 1-based) in err. */
int dg_body_check(const dg_part_spec *parts, size_t n, char *err, size_t errlen);
/* 0, or -1 out of memory (body left empty and freeable). Specs should pass dg_body_check;
 * a bad one makes dg_body_open fail. */
int dg_body_init(dg_body *b, const dg_allocator *a, const dg_part_spec *parts, size_t n);
void dg_body_free(dg_body *b);
/* Measure and rewind. 0, or -1 with b->err set. */
int dg_body_open(dg_body *b);
/* Up to n bytes into buf: returns the count (0 at the end), or -1 with b->err set. */
long long dg_body_read(dg_body *b, char *buf, size_t n);
/* Reposition to absolute offset. 0, or -1 with b->err set. */
int dg_body_seek(dg_body *b, int64_t offset);
/* Close the open file, if any (between attempts). */
void dg_body_close(dg_body *b);

#endif
