/*
 * dg_mpsink.c - multipart sink: one temporary file per complete part (see dg_mpsink.h).
 */
#include "dg_mpsink.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dg_fs.h"
#include "dg_multipart.h"

typedef struct kept { char *path; uint64_t size; int fd; } kept;   /* fd: open until fsync'ed (defer) */

struct dg_mpsink {
  dg_allocator a;
  int refs, busy, begun, multipart, complete, failed;
  int defer;                  /* complete parts wait open for dg_mpsink_synced */
  size_t open_n;              /* kept parts still open */
  char *dir, *stem;           /* stem: dir + "/part", the final name temporaries sit beside */
  size_t stemcap;             /* strlen(stem) + 80, dg_fs_temp_name's room */
  dg_mp mp;
  char hdr[DG_MP_DEFAULT_HEADER_BYTES];
  int fd;                     /* the part being written, or -1 */
  char *cur;                  /* its path (stemcap bytes) */
  uint64_t cur_size;
  kept *files;
  size_t n, cap;
  char err[200];
};

dg_mpsink *dg_mpsink_new(const dg_allocator *a, const char *dir) {
  dg_mpsink *s = dg_malloc(a, sizeof *s);
  if (!s) return NULL;
  memset(s, 0, sizeof *s);
  s->a = *a;
  s->refs = 1;
  s->fd = -1;
  size_t dl = strlen(dir);
  s->stemcap = dl + 6 + 80;
  s->dir = dg_strdup(a, dir);
  s->stem = dg_malloc(a, s->stemcap);
  s->cur = dg_malloc(a, s->stemcap);
  if (!s->dir || !s->stem || !s->cur) { dg_mpsink_release(s); return NULL; }
  snprintf(s->stem, s->stemcap, "%s/part", dir);
  s->cur[0] = '\0';
  return s;
}

/* failed: 1 = the response (framing, boundary), 2 = our side (a file could not be written) */
static void fail_as(dg_mpsink *s, int why, const char *fmt, const char *a1, const char *a2) {
  if (s->failed) return;
  s->failed = why;
  snprintf(s->err, sizeof s->err, fmt, a1, a2);
}

static void drop_current(dg_mpsink *s) {
  if (s->fd >= 0) { close(s->fd); s->fd = -1; unlink(s->cur); }
  s->cur[0] = '\0';
  s->cur_size = 0;
}

static void drop_kept(dg_mpsink *s) {
  for (size_t i = 0; i < s->n; i++) {
    if (s->files[i].fd >= 0) close(s->files[i].fd);
    unlink(s->files[i].path);
    dg_strfree(&s->a, s->files[i].path);
  }
  s->n = 0;
  s->open_n = 0;
}

/* 0, or the errno of the fsync or close that failed; fd is closed either way. */
static int fsync_close(int fd) {
  int bad = fsync(fd) != 0 ? errno : 0;
  if (close(fd) != 0 && !bad) bad = errno;
  return bad;
}

/* Kept part i did not reach the disk: it goes (closed if open, removed), the rest move up. */
static void forget(dg_mpsink *s, size_t i) {
  if (s->files[i].fd >= 0) { close(s->files[i].fd); s->open_n--; }
  unlink(s->files[i].path);
  dg_strfree(&s->a, s->files[i].path);
  memmove(s->files + i, s->files + i + 1, (s->n - i - 1) * sizeof *s->files);
  s->n--;
}

/* Too many parts open: the oldest is fsync'ed here (as without defer); 0 or its errno. */
static int sync_oldest(dg_mpsink *s) {
  for (size_t i = 0; i < s->n; i++) {
    if (s->files[i].fd < 0) continue;
    int bad = fsync_close(s->files[i].fd);
    s->files[i].fd = -1;
    s->open_n--;
    if (bad) forget(s, i);
    return bad;
  }
  return 0;
}

void dg_mpsink_retain(dg_mpsink *s) { s->refs++; }

void dg_mpsink_release(dg_mpsink *s) {
  if (!s || --s->refs > 0) return;
  dg_allocator a = s->a;
  if (s->cur) drop_current(s);
  drop_kept(s);
  if (s->files) dg_free(&a, s->files, s->cap * sizeof *s->files);
  dg_strfree(&a, s->dir);
  if (s->stem) dg_free(&a, s->stem, s->stemcap);
  if (s->cur) dg_free(&a, s->cur, s->stemcap);
  dg_free(&a, s, sizeof *s);
}

void dg_mpsink_reset(dg_mpsink *s) {
  drop_current(s);
  drop_kept(s);
  s->begun = s->multipart = s->complete = s->failed = 0;
  s->err[0] = '\0';
}

static int open_part(dg_mpsink *s) {
  s->fd = dg_fs_create_temp(s->stem, s->cur, s->stemcap);
  if (s->fd < 0) {
    s->cur[0] = '\0';
    fail_as(s, 2, "cannot create a temporary file in %s: %s", s->dir, strerror(errno));
    return -1;
  }
  s->cur_size = 0;
  return 0;
}

/* The open part is complete: fsync and close it (checked) and keep it; renamed into place later,
 * it is then whole after a crash, never a name with missing bytes. With defer, it is kept open
 * for the engine's fsync workers instead (dg_mpsink_synced). */
static int keep_current(dg_mpsink *s) {
  if (s->fd < 0) return 0;
  int fd = s->fd, bad = 0;
  s->fd = -1;
  if (!s->defer) { bad = fsync_close(fd); fd = -1; }
  else if (s->open_n >= DG_MPSINK_OPEN_MAX) bad = sync_oldest(s);
  if (!bad && s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 16;
    kept *f = dg_realloc(&s->a, s->files, s->cap * sizeof *f, nc * sizeof *f);
    if (!f) bad = ENOMEM; else { s->files = f; s->cap = nc; }
  }
  char *p = bad ? NULL : dg_strdup(&s->a, s->cur);
  if (!bad && !p) bad = ENOMEM;
  if (bad) {
    if (fd >= 0) close(fd);
    unlink(s->cur);
    s->cur[0] = '\0';
    fail_as(s, 2, "cannot write %s: %s", s->dir, strerror(bad));
    return -1;
  }
  s->files[s->n].path = p;
  s->files[s->n].size = s->cur_size;
  s->files[s->n].fd = fd;
  if (fd >= 0) s->open_n++;
  s->n++;
  s->cur[0] = '\0';
  return 0;
}

static int put(dg_mpsink *s, const void *p, size_t len) {
  if (dg_fs_write_all(s->fd, p, len) != 0) {
    int e = errno;
    drop_current(s);
    fail_as(s, 2, "cannot write a part into %s: %s", s->dir, strerror(e));
    return -1;
  }
  s->cur_size += len;
  return 0;
}

int dg_mpsink_begin(dg_mpsink *s, const char *ct, size_t len) {
  dg_mpsink_reset(s);
  s->begun = 1;
  while (len && (*ct == ' ' || *ct == '\t')) { ct++; len--; }
  if (len >= 10 && strncasecmp(ct, "multipart/", 10) == 0) {
    char b[DG_MP_BOUNDARY_MAX + 1];
    size_t blen;
    s->multipart = 1;
    if (dg_mp_boundary_from_content_type(ct, len, b, sizeof b, &blen) != DG_MP_OK ||
        dg_mp_init(&s->mp, b, blen, s->hdr, sizeof s->hdr) != DG_MP_OK) {
      fail_as(s, 1, "%s%s", "the multipart response has no usable boundary", "");
      return -1;
    }
    return 0;
  }
  return open_part(s);
}

int dg_mpsink_write(dg_mpsink *s, const void *data, size_t len) {
  if (s->failed) return -1;
  if (!s->multipart) return put(s, data, len);
  const unsigned char *buf = data;
  size_t off = 0, used;
  dg_mp_event ev;
  for (;;) {
    if (dg_mp_next(&s->mp, buf + off, len - off, &used, &ev) != DG_MP_OK) {
      drop_current(s);
      fail_as(s, 1, "%s%s", dg_mp_error(&s->mp), "");
      return -1;
    }
    off += used;
    switch (ev.type) {
      case DG_MP_EV_NONE: return 0;
      case DG_MP_EV_BEGIN: if (open_part(s) != 0) return -1; break;
      case DG_MP_EV_DATA: if (put(s, ev.data, ev.len) != 0) return -1; break;
      case DG_MP_EV_END: if (keep_current(s) != 0) return -1; break;
      case DG_MP_EV_DONE: break;   /* the rest is epilogue, which dg_mp_next swallows */
    }
  }
}

void dg_mpsink_end(dg_mpsink *s, int ok) {
  s->busy = 0;
  if (!ok || s->failed) { drop_current(s); return; }
  if (!s->begun && dg_mpsink_begin(s, "", 0) != 0) return;   /* empty 2xx body: one empty part */
  if (!s->multipart) { if (keep_current(s) == 0) s->complete = 1; return; }
  if (dg_mp_finish(&s->mp) != DG_MP_OK) {
    drop_current(s);
    fail_as(s, 1, "%s%s", dg_mp_error(&s->mp), "");
    return;
  }
  s->complete = 1;
}

int dg_mpsink_busy(const dg_mpsink *s) { return s->busy; }
void dg_mpsink_set_busy(dg_mpsink *s, int busy) { s->busy = busy; }
int dg_mpsink_complete(const dg_mpsink *s) { return s->complete; }
const char *dg_mpsink_error(const dg_mpsink *s) { return s->err; }
int dg_mpsink_local_error(const dg_mpsink *s) { return s->failed == 2; }
size_t dg_mpsink_count(const dg_mpsink *s) { return s->n; }

const char *dg_mpsink_path(const dg_mpsink *s, size_t i, uint64_t *size) {
  if (i >= s->n) return NULL;
  if (size) *size = s->files[i].size;
  return s->files[i].path;
}

void dg_mpsink_take(dg_mpsink *s) {
  for (size_t i = 0; i < s->n; i++) {
    if (s->files[i].fd >= 0) close(s->files[i].fd);   /* not reached: busy until synced */
    dg_strfree(&s->a, s->files[i].path);
  }
  s->n = 0;
  s->open_n = 0;
}

void dg_mpsink_defer_sync(dg_mpsink *s, int on) { s->defer = on; }

int dg_mpsink_unsynced_fd(const dg_mpsink *s, size_t i) { return i < s->n ? s->files[i].fd : -1; }

void dg_mpsink_synced(dg_mpsink *s, int fd, int err) {
  for (size_t i = 0; i < s->n; i++) {
    if (s->files[i].fd != fd) continue;
    if (close(fd) != 0 && !err) err = errno;
    s->files[i].fd = -1;
    s->open_n--;
    if (err) {
      forget(s, i);
      s->complete = 0;
      fail_as(s, 2, "cannot write %s: %s", s->dir, strerror(err));
    }
    return;
  }
}

void dg_mpsink_abandon_sync(dg_mpsink *s) {
  for (size_t i = 0; i < s->n; i++)
    if (s->files[i].fd >= 0) { close(s->files[i].fd); s->files[i].fd = -1; }
  s->open_n = 0;
  s->busy = 0;
}
