/* test_engine_body.c - streamed request bodies (dg_body) and the buffer (dg_buf), with a
 * counting allocator that fails the run on leaks (TAP). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dg_alloc.h"
#include "dg_body.h"
#include "dg_buf.h"

static int n_test = 0, n_fail = 0;
static void ok(int cond, const char *desc) {
  n_test++;
  if (!cond) n_fail++;
  printf("%sok %d - %s\n", cond ? "" : "not ", n_test, desc);
}

static long live_bytes = 0, live_blocks = 0;
static void *counting(void *ud, void *p, size_t osize, size_t nsize) {
  (void)ud;
  if (p) { live_bytes -= (long)osize; live_blocks--; }
  if (nsize == 0) { free(p); return NULL; }
  void *q = realloc(p, nsize);
  if (q) { live_bytes += (long)nsize; live_blocks++; }
  else if (p) { live_bytes += (long)osize; live_blocks++; }
  return q;
}
static const dg_allocator counter = { counting, NULL };

static void write_file(const char *path, const char *data, size_t n) {
  FILE *f = fopen(path, "wb");
  fwrite(data, 1, n, f);
  fclose(f);
}

static int read_all(dg_body *b, char *out, size_t cap, size_t chunk, size_t *got) {
  *got = 0;
  for (;;) {
    size_t want = chunk < cap - *got ? chunk : cap - *got;
    long long r = dg_body_read(b, out + *got, want);
    if (r < 0) return -1;
    if (r == 0) return 0;
    *got += (size_t)r;
  }
}

int main(void) {
  char dir[] = "/tmp/dg-body-XXXXXX";
  if (!mkdtemp(dir)) { printf("Bail out! mkdtemp\n"); return 1; }
  char f1[256], f2[256], missing[256];
  snprintf(f1, sizeof f1, "%s/a.bin", dir);
  snprintf(f2, sizeof f2, "%s/b.bin", dir);
  snprintf(missing, sizeof missing, "%s/none.bin", dir);
  char big[10000];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i % 251);
  write_file(f1, big, sizeof big);
  write_file(f2, "FILE-B", 6);

  /* whole parts: offset 0, no length */
  dg_part_spec parts[] = {
    { "--b\r\n\r\n", 7, NULL, 0, 0, 0 }, { NULL, 0, f1, 0, 0, 0 }, { "\r\n--b\r\n\r\n", 9, NULL, 0, 0, 0 },
    { NULL, 0, f2, 0, 0, 0 }, { "", 0, NULL, 0, 0, 0 }, { "\r\n--b--", 7, NULL, 0, 0, 0 },
  };
  dg_body b;
  ok(dg_body_init(&b, &counter, parts, 6) == 0, "init with 6 parts");
  ok(dg_body_open(&b) == 0 && b.total == 7 + 10000 + 9 + 6 + 0 + 7, "total = sum of data and file sizes");
  static char out[20000], expect[20000];
  size_t n = 0, got;
  memcpy(expect + n, "--b\r\n\r\n", 7); n += 7;
  memcpy(expect + n, big, sizeof big); n += sizeof big;
  memcpy(expect + n, "\r\n--b\r\n\r\n", 9); n += 9;
  memcpy(expect + n, "FILE-B", 6); n += 6;
  memcpy(expect + n, "\r\n--b--", 7); n += 7;
  ok(read_all(&b, out, sizeof out, 333, &got) == 0 && got == n && memcmp(out, expect, n) == 0,
     "concatenation read in 333-byte chunks is exact");
  ok(dg_body_read(&b, out, 10) == 0, "reads 0 at the end");
  ok(dg_body_seek(&b, 0) == 0 && read_all(&b, out, sizeof out, 4096, &got) == 0 && got == n &&
     memcmp(out, expect, n) == 0, "rewind to 0 replays the same bytes");
  ok(dg_body_seek(&b, 5000) == 0 && read_all(&b, out, sizeof out, 1, &got) == 0 && got == n - 5000 &&
     memcmp(out, expect + 5000, n - 5000) == 0, "seek into the middle of a file part");
  ok(dg_body_seek(&b, (int64_t)n + 1) == -1, "seek past the end fails");
  ok(dg_body_open(&b) == 0 && read_all(&b, out, sizeof out, 1, &got) == 0 && got == n,
     "open again (next attempt) rewinds");

  /* the file shrinks between measuring and reading */
  ok(dg_body_open(&b) == 0, "measured");
  long long r = dg_body_read(&b, out, 100);
  ok(r == 100, "partial read");
  if (truncate(f1, 50) != 0) printf("# truncate failed\n");
  r = dg_body_read(&b, out, 20000);
  ok(r == -1 && strstr(b.err, f1) && strstr(b.err, "shrank"), "a shrunk file fails naming the file");
  /* shrinking while open */
  write_file(f1, big, sizeof big);
  ok(dg_body_open(&b) == 0, "measured again");
  r = dg_body_read(&b, out, 2000);
  ok(r == 2000, "reading inside the file part");
  if (truncate(f1, 3000) != 0) printf("# truncate failed\n");
  r = dg_body_read(&b, out, 20000);
  ok(r == -1 && strstr(b.err, f1) != NULL, "a file truncated while open fails naming the file");
  /* vanishes before it is reached */
  write_file(f1, big, sizeof big);
  ok(dg_body_open(&b) == 0, "measured a third time");
  unlink(f1);
  r = dg_body_read(&b, out, 20000);
  ok(r == -1 && strstr(b.err, f1) != NULL, "a vanished file fails naming the file");
  ok(dg_body_open(&b) == -1 && strstr(b.err, f1) != NULL, "open with a missing file fails naming it");
  dg_body_free(&b);

  dg_part_spec one[] = { { NULL, 0, missing, 0, 0, 0 } };
  ok(dg_body_init(&b, &counter, one, 1) == 0 && dg_body_open(&b) == -1 && strstr(b.err, "none.bin"),
     "missing body_file");
  dg_body_free(&b);
  dg_part_spec dir_part[] = { { NULL, 0, dir, 0, 0, 0 } };
  ok(dg_body_init(&b, &counter, dir_part, 1) == 0 && dg_body_open(&b) == -1, "a directory is refused");
  dg_body_free(&b);
  ok(dg_body_init(&b, &counter, NULL, 0) == 0 && dg_body_open(&b) == 0 && b.total == 0 &&
     dg_body_read(&b, out, 10) == 0, "empty body");
  dg_body_free(&b);

  /* ---- file slices: length bytes from offset, or the rest of the file from offset ---- */
  write_file(f1, big, sizeof big);
  {
    dg_part_spec sl[] = {
      { "<", 1, NULL, 0, 0, 0 },
      { NULL, 0, f1, 10, 20, 1 },           /* bytes 10..29 */
      { NULL, 0, f1, 9990, 0, 0 },          /* the rest: 10 bytes */
      { NULL, 0, f1, 500, 0, 1 },           /* empty slice */
      { NULL, 0, f1, 10000, 0, 0 },         /* empty: offset at the end */
      { NULL, 0, f1, 0, 3, 1 },             /* bytes 0..2 */
      { NULL, 0, f2, 2, 3, 1 },             /* "LE-" */
      { ">", 1, NULL, 0, 0, 0 },
    };
    char err[256];
    ok(dg_body_check(sl, 8, err, sizeof err) == 0, "slices pass the check");
    ok(dg_body_init(&b, &counter, sl, 8) == 0 && dg_body_open(&b) == 0 && b.total == 1 + 20 + 10 + 0 + 0 + 3 + 3 + 1,
       "total counts slice lengths");
    n = 0;
    expect[n++] = '<';
    memcpy(expect + n, big + 10, 20); n += 20;
    memcpy(expect + n, big + 9990, 10); n += 10;
    memcpy(expect + n, big, 3); n += 3;
    memcpy(expect + n, "LE-", 3); n += 3;
    expect[n++] = '>';
    int exact = 1;
    size_t chunks[] = { 1, 2, 7, 64, 4096 };
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
      if (dg_body_open(&b) != 0 || read_all(&b, out, sizeof out, chunks[c], &got) != 0 || got != n ||
          memcmp(out, expect, n) != 0) exact = 0;
    }
    ok(exact, "slices read exactly, in chunks of 1, 2, 7, 64 and 4096 bytes, each after a rewind");
    ok(dg_body_seek(&b, 15) == 0 && read_all(&b, out, sizeof out, 5, &got) == 0 && got == n - 15 &&
       memcmp(out, expect + 15, n - 15) == 0, "seek into the middle of a slice (libcurl's rewind)");
    ok(dg_body_seek(&b, 0) == 0 && read_all(&b, out, sizeof out, 3, &got) == 0 && got == n &&
       memcmp(out, expect, n) == 0, "seek back to 0 replays the slices");
    /* the file shrinks below offset + length while a later attempt reads it */
    ok(dg_body_open(&b) == 0 && dg_body_read(&b, out, 11) == 11, "retry: partway into the first slice");
    if (truncate(f1, 25) != 0) printf("# truncate failed\n");
    r = dg_body_read(&b, out, sizeof out);
    ok(r == -1 && strstr(b.err, f1) != NULL, "a slice whose file shrank mid-read fails naming the file");
    ok(dg_body_open(&b) == -1 && strstr(b.err, f1) != NULL && strstr(b.err, "offset 10 + length 20"),
       "open fails naming the file when it is shorter than a slice");
    dg_body_free(&b);

    /* a slice of a large file read in one go; the file grows meanwhile (ignored) */
    write_file(f1, big, sizeof big);
    dg_part_spec mid[] = { { NULL, 0, f1, 4000, 5000, 1 } };
    ok(dg_body_init(&b, &counter, mid, 1) == 0 && dg_body_open(&b) == 0 && b.total == 5000, "one slice");
    FILE *app = fopen(f1, "ab");
    if (app) { fwrite("more", 1, 4, app); fclose(app); }
    ok(read_all(&b, out, sizeof out, 100000, &got) == 0 && got == 5000 && memcmp(out, big + 4000, 5000) == 0,
       "exactly length bytes even when the file grew");
    dg_body_free(&b);

    /* exactly offset + length bytes in the file is enough; one fewer is not */
    write_file(f1, big, 100);
    dg_part_spec edge[] = { { NULL, 0, f1, 60, 40, 1 } };
    ok(dg_body_init(&b, &counter, edge, 1) == 0 && dg_body_open(&b) == 0 && b.total == 40,
       "a slice ending at the end of the file");
    edge[0].length = 41;
    dg_body_free(&b);
    ok(dg_body_init(&b, &counter, edge, 1) == 0 && dg_body_open(&b) == -1 && strstr(b.err, f1) &&
       strstr(b.err, "100 bytes"), "one byte past the end fails, naming file and size");
    dg_body_free(&b);
    dg_part_spec past[] = { { NULL, 0, f1, 101, 0, 0 } };
    ok(dg_body_init(&b, &counter, past, 1) == 0 && dg_body_open(&b) == -1 && strstr(b.err, f1),
       "an offset past the end (no length) fails naming the file");
    dg_body_free(&b);

    /* bad arguments */
    dg_part_spec bad1[] = { { "x", 1, NULL, 0, 0, 0 }, { "y", 1, NULL, 2, 0, 0 } };
    ok(dg_body_check(bad1, 2, err, sizeof err) == -1 && strstr(err, "part 2") &&
       strstr(err, "only to a file part"), "offset on a data part is refused, naming the part");
    dg_part_spec bad2[] = { { "y", 1, NULL, 0, 1, 1 } };
    ok(dg_body_check(bad2, 1, err, sizeof err) == -1, "length on a data part is refused");
    dg_part_spec bad3[] = { { NULL, 0, f1, -1, 0, 0 } };
    ok(dg_body_check(bad3, 1, err, sizeof err) == -1 && strstr(err, f1) && strstr(err, "offset"),
       "a negative offset is refused, naming the file");
    ok(dg_body_init(&b, &counter, bad3, 1) == 0 && dg_body_open(&b) == -1 && strstr(b.err, f1),
       "dg_body_open refuses it too");
    dg_body_free(&b);
    dg_part_spec bad4[] = { { NULL, 0, f1, 0, -5, 1 } };
    ok(dg_body_check(bad4, 1, err, sizeof err) == -1 && strstr(err, "length"), "a negative length is refused");
    dg_part_spec bad5[] = { { NULL, 0, f1, INT64_MAX - 1, 2, 1 } };
    ok(dg_body_check(bad5, 1, err, sizeof err) == -1, "offset + length overflowing is refused");
    ok(dg_body_init(&b, &counter, bad5, 1) == 0 && dg_body_open(&b) == -1, "and by dg_body_open");
    dg_body_free(&b);
    write_file(f2, "FILE-B", 6);
  }

  dg_buf buf;
  dg_buf_init(&buf, &counter, 10);
  ok(dg_buf_appendz(&buf, "hello") == 0 && dg_buf_appendz(&buf, " world") == 0 && buf.len == 10 &&
     buf.truncated && strcmp(buf.data, "hello worl") == 0, "buffer limit drops and flags the excess");
  dg_buf_wipe(&buf);
  dg_buf_init(&buf, &counter, 0);
  for (int i = 0; i < 10000; i++) dg_buf_append(&buf, "0123456789", 10);
  ok(buf.len == 100000 && buf.data[buf.len] == '\0', "unlimited buffer grows, stays NUL-terminated");
  dg_buf_free(&buf);

  ok(live_bytes == 0 && live_blocks == 0, "no leaks (counting allocator)");
  unlink(f1);
  unlink(f2);
  rmdir(dir);
  printf("1..%d\n", n_test);
  return n_fail ? 1 : 0;
}
