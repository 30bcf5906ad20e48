/* dg_body.c - see dg_body.h */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "dg_body.h"

int dg_body_check(const dg_part_spec *parts, size_t n, char *err, size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    const dg_part_spec *p = &parts[i];
    if (!p->path) {
      if (p->offset != 0 || p->has_length) {
        snprintf(err, errlen, "body part %zu: offset and length apply only to a file part", i + 1);
        return -1;
      }
      continue;
    }
    if (p->offset < 0) {
      snprintf(err, errlen, "body part %zu (%s): offset must be >= 0", i + 1, p->path);
      return -1;
    }
    if (p->has_length && (p->length < 0 || p->length > INT64_MAX - p->offset)) {
      snprintf(err, errlen, "body part %zu (%s): length must be >= 0 and offset + length "
               "below 2^63", i + 1, p->path);
      return -1;
    }
  }
  return 0;
}

int dg_body_init(dg_body *b, const dg_allocator *a, const dg_part_spec *parts, size_t n) {
  memset(b, 0, sizeof *b);
  b->a = a;
  if (n == 0) return 0;
  b->parts = dg_malloc(a, n * sizeof *b->parts);
  if (!b->parts) return -1;
  memset(b->parts, 0, n * sizeof *b->parts);
  b->n = n;
  for (size_t i = 0; i < n; i++) {
    b->parts[i].data = parts[i].data;
    b->parts[i].len = parts[i].len;
    b->parts[i].offset = parts[i].offset;
    b->parts[i].length = parts[i].length;
    b->parts[i].has_length = parts[i].has_length;
    if (parts[i].path) {
      b->parts[i].path = dg_strdup(a, parts[i].path);
      if (!b->parts[i].path) { dg_body_free(b); return -1; }
    }
  }
  return 0;
}

void dg_body_close(dg_body *b) {
  if (b->fp) { fclose(b->fp); b->fp = NULL; }
}

void dg_body_free(dg_body *b) {
  dg_body_close(b);
  if (b->parts) {
    for (size_t i = 0; i < b->n; i++) dg_strfree(b->a, b->parts[i].path);
    dg_free(b->a, b->parts, b->n * sizeof *b->parts);
  }
  b->parts = NULL;
  b->n = 0;
}

static int fail_errno(dg_body *b, const char *what, const char *path, int err) {
  snprintf(b->err, sizeof b->err, "%s %s: %s", what, path, strerror(err));
  return -1;
}

int dg_body_open(dg_body *b) {
  dg_body_close(b);
  b->total = 0;
  b->cur = 0;
  b->off = 0;
  b->err[0] = '\0';
  for (size_t i = 0; i < b->n; i++) {
    dg_body_part *p = &b->parts[i];
    if (p->path) {
      struct stat st;
      if (stat(p->path, &st) != 0) return fail_errno(b, "cannot read body file", p->path, errno);
      if (!S_ISREG(st.st_mode)) {
        snprintf(b->err, sizeof b->err, "body file %s is not a regular file", p->path);
        return -1;
      }
      int64_t fsize = (int64_t)st.st_size;
      if (p->offset < 0 || (p->has_length && (p->length < 0 || p->length > INT64_MAX - p->offset))) {
        snprintf(b->err, sizeof b->err, "body file %s: bad slice (offset %lld, length %lld)",
                 p->path, (long long)p->offset, (long long)p->length);
        return -1;
      }
      if (p->has_length ? fsize < p->offset + p->length : fsize < p->offset) {
        snprintf(b->err, sizeof b->err, "body file %s has %lld bytes, fewer than the slice needs "
                 "(offset %lld + length %lld)", p->path, (long long)fsize, (long long)p->offset,
                 (long long)(p->has_length ? p->length : 0));
        return -1;
      }
      p->size = p->has_length ? p->length : fsize - p->offset;
    } else {
      p->size = (int64_t)p->len;
    }
    b->total += p->size;
  }
  return 0;
}

static int open_part(dg_body *b) {
  dg_body_part *p = &b->parts[b->cur];
  struct stat st;
  b->fp = fopen(p->path, "rb");
  if (!b->fp) return fail_errno(b, "cannot open body file", p->path, errno);
  if (fstat(fileno(b->fp), &st) != 0) return fail_errno(b, "cannot stat body file", p->path, errno);
  if ((int64_t)st.st_size < p->offset + p->size) {
    snprintf(b->err, sizeof b->err, "body file %s shrank during the upload (%lld of %lld bytes)",
             p->path, (long long)st.st_size, (long long)(p->offset + p->size));
    return -1;
  }
  if (p->offset + b->off > 0 && fseeko(b->fp, (off_t)(p->offset + b->off), SEEK_SET) != 0)
    return fail_errno(b, "cannot seek body file", p->path, errno);
  return 0;
}

long long dg_body_read(dg_body *b, char *buf, size_t n) {
  size_t done = 0;
  while (done < n && b->cur < b->n) {
    dg_body_part *p = &b->parts[b->cur];
    int64_t left = p->size - b->off;
    if (left <= 0) {
      dg_body_close(b);
      b->cur++;
      b->off = 0;
      continue;
    }
    size_t want = n - done;
    if ((int64_t)want > left) want = (size_t)left;
    if (!p->path) {
      memcpy(buf + done, p->data + b->off, want);
    } else {
      if (!b->fp && open_part(b) != 0) return -1;
      size_t got = fread(buf + done, 1, want, b->fp);
      if (got < want) {
        if (ferror(b->fp)) return fail_errno(b, "cannot read body file", p->path, errno);
        snprintf(b->err, sizeof b->err, "body file %s shrank or vanished during the upload "
                 "(ended at %lld of %lld bytes)", p->path,
                 (long long)(p->offset + b->off + (int64_t)got), (long long)(p->offset + p->size));
        return -1;
      }
    }
    b->off += (int64_t)want;
    done += want;
  }
  return (long long)done;
}

int dg_body_seek(dg_body *b, int64_t offset) {
  dg_body_close(b);
  b->cur = 0;
  b->off = 0;
  if (offset < 0 || offset > b->total) {
    snprintf(b->err, sizeof b->err, "seek to %lld outside the body", (long long)offset);
    return -1;
  }
  while (b->cur < b->n && offset >= b->parts[b->cur].size) {
    offset -= b->parts[b->cur].size;
    b->cur++;
  }
  b->off = offset;
  return 0;
}
