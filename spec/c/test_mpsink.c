/*
 * test_mpsink.c - unit tests for dg_mpsink (TAP output): parts written one file each as bytes
 * arrive in any chunk size, complete parts kept after a cut, the open part removed, malformed
 * framing, a single-part body, hidden temporary names, nothing left behind on release.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dg_mpsink.h"
#include "tap.h"

static char dir[256];

static int count_entries(void) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  if (d) closedir(d);
  return n;
}

static int file_is(const char *path, const char *want) {
  FILE *f = fopen(path, "rb");
  char buf[256];
  size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
  if (f) fclose(f);
  return f && n == strlen(want) && memcmp(buf, want, n) == 0;
}

static const char *CT = "multipart/related; type=\"application/dicom\"; boundary=XyZ";
static const char *BODY =
  "--XyZ\r\nContent-Type: application/dicom\r\n\r\nfirst part\r\n"
  "--XyZ\r\nContent-Type: application/dicom\r\n\r\nsecond\r\n"
  "--XyZ\r\nContent-Type: application/dicom\r\n\r\nthird one here\r\n--XyZ--\r\n";

/* Feed BODY[0..upto) in chunks; ok_end: the response ended normally. */
static dg_mpsink *feed(size_t upto, size_t chunk, int ok_end) {
  dg_mpsink *s = dg_mpsink_new(dg_default_allocator(), dir);
  dg_mpsink_set_busy(s, 1);
  dg_mpsink_reset(s);
  dg_mpsink_begin(s, CT, strlen(CT));
  for (size_t at = 0; at < upto; at += chunk) {
    size_t n = upto - at < chunk ? upto - at : chunk;
    if (dg_mpsink_write(s, BODY + at, n) != 0) break;
  }
  dg_mpsink_end(s, ok_end);
  return s;
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/dg-mpsink-%d", (int)getpid());
  mkdir(dir, 0700);
  size_t len = strlen(BODY);
  const size_t chunks[] = { 1, 2, 7, 64, 100000 };
  for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
    dg_mpsink *s = feed(len, chunks[c], 1);
    uint64_t sz = 0;
    const char *p1 = dg_mpsink_path(s, 0, &sz);
    int good = dg_mpsink_complete(s) && dg_mpsink_count(s) == 3 && sz == 10 && file_is(p1, "first part") &&
               file_is(dg_mpsink_path(s, 1, NULL), "second") && file_is(dg_mpsink_path(s, 2, NULL), "third one here") &&
               !dg_mpsink_busy(s) && *dg_mpsink_error(s) == '\0';
    char name[80];
    snprintf(name, sizeof name, "three parts, one file each, in chunks of %zu bytes", chunks[c]);
    ok(good, name);
    const char *base = p1 ? strrchr(p1, '/') + 1 : "";
    ok(strncmp(p1 ? p1 : "", dir, strlen(dir)) == 0 && base[0] == '.' && strstr(base, ".dgtmp") != NULL,
       "parts are hidden temporary files inside the folder");
    dg_mpsink_release(s);
    ok(count_entries() == 0, "release removes every file not taken");
  }

  /* cut inside the third part, at every byte from the second part's end on */
  const char *third = strstr(BODY, "third");
  int all = 1;
  for (size_t cut = (size_t)(third - BODY); cut < len - 12; cut++) {
    dg_mpsink *s = feed(cut, 5, 0);
    if (dg_mpsink_count(s) != 2 || dg_mpsink_complete(s) || count_entries() != 2) all = 0;
    dg_mpsink_release(s);
  }
  ok(all, "a cut connection keeps the two complete parts and removes the open one");

  /* the response ends without the close delimiter (a 200 cut by a proxy) */
  dg_mpsink *s = feed((size_t)(third - BODY) + 3, 4096, 1);
  ok(dg_mpsink_count(s) == 2 && !dg_mpsink_complete(s) && strstr(dg_mpsink_error(s), "") != NULL &&
     *dg_mpsink_error(s) != '\0' && count_entries() == 2, "a body without its close delimiter: truncated, two kept");
  dg_mpsink_take(s);
  ok(dg_mpsink_count(s) == 0, "take hands the files over");
  dg_mpsink_release(s);
  ok(count_entries() == 2, "taken files are the caller's: release leaves them");
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[600];
  while ((e = readdir(d))) if (e->d_name[0] == '.' && strlen(e->d_name) > 2) {
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);

  /* malformed: a delimiter followed by junk in the second part */
  s = dg_mpsink_new(dg_default_allocator(), dir);
  dg_mpsink_begin(s, CT, strlen(CT));
  const char *bad = "--XyZ\r\n\r\nok\r\n--XyZ\r\n\r\nbody\r\n--XyZjunk\r\n";
  int r = dg_mpsink_write(s, bad, strlen(bad));
  dg_mpsink_end(s, 0);
  ok(r == -1 && dg_mpsink_count(s) == 2 && strstr(dg_mpsink_error(s), "at byte 33") != NULL && count_entries() == 2,
     "malformed framing after two delimited parts: an error naming the byte, both parts kept");
  dg_mpsink_release(s);
  ok(count_entries() == 0, "release removes them");
  s = dg_mpsink_new(dg_default_allocator(), dir);
  dg_mpsink_begin(s, CT, strlen(CT));
  const char *bad2 = "--XyZ\r\n\r\nok\r\n--XyZ\r\nNo colon here\r\n\r\nbody";
  r = dg_mpsink_write(s, bad2, strlen(bad2));
  dg_mpsink_end(s, 0);
  ok(r == -1 && dg_mpsink_count(s) == 1 && count_entries() == 1, "a malformed part header: the part before kept, nothing of this one");
  ok(!dg_mpsink_local_error(s), "a framing error is the response's, not ours");
  dg_mpsink_release(s);

  /* a header block too large */
  s = dg_mpsink_new(dg_default_allocator(), dir);
  dg_mpsink_begin(s, CT, strlen(CT));
  dg_mpsink_write(s, "--XyZ\r\nX: ", 10);
  char junk[4096];
  memset(junk, 'a', sizeof junk);
  for (int i = 0; i < 8; i++) r = dg_mpsink_write(s, junk, sizeof junk);
  dg_mpsink_end(s, 0);
  ok(r == -1 && dg_mpsink_count(s) == 0 && count_entries() == 0, "a hostile header block is refused, nothing written");
  dg_mpsink_release(s);

  /* no boundary */
  s = dg_mpsink_new(dg_default_allocator(), dir);
  ok(dg_mpsink_begin(s, "multipart/related", 17) == -1 && *dg_mpsink_error(s), "multipart without a boundary fails");
  dg_mpsink_release(s);

  /* single part */
  s = dg_mpsink_new(dg_default_allocator(), dir);
  dg_mpsink_begin(s, "application/dicom", 17);
  dg_mpsink_write(s, "abc", 3);
  dg_mpsink_write(s, "def", 3);
  dg_mpsink_end(s, 1);
  ok(dg_mpsink_count(s) == 1 && dg_mpsink_complete(s) && file_is(dg_mpsink_path(s, 0, NULL), "abcdef"),
     "a single-part body is one part, complete when the response is");
  dg_mpsink_reset(s);
  ok(dg_mpsink_count(s) == 0 && count_entries() == 0, "reset (a new attempt) removes the last attempt's files");
  dg_mpsink_begin(s, "application/dicom", 17);
  dg_mpsink_write(s, "abc", 3);
  dg_mpsink_end(s, 0);
  ok(dg_mpsink_count(s) == 0 && count_entries() == 0, "a single-part body cut: nothing kept");
  dg_mpsink_release(s);

  /* folder not writable */
  snprintf(path, sizeof path, "%s/missing", dir);
  s = dg_mpsink_new(dg_default_allocator(), path);
  dg_mpsink_begin(s, CT, strlen(CT));
  r = dg_mpsink_write(s, BODY, len);
  ok(r == -1 && strstr(dg_mpsink_error(s), "cannot create") != NULL, "a folder that is not there: an error naming it");
  ok(dg_mpsink_local_error(s), "a file we cannot create is our error");
  dg_mpsink_end(s, 0);
  dg_mpsink_release(s);

  /* deferred fsync (the engine's workers do it): parts stay open, at most DG_MPSINK_OPEN_MAX */
  s = dg_mpsink_new(dg_default_allocator(), dir);
  dg_mpsink_defer_sync(s, 1);
  dg_mpsink_set_busy(s, 1);
  dg_mpsink_begin(s, CT, strlen(CT));
  const int parts = DG_MPSINK_OPEN_MAX + 8;
  for (int i = 0; i < parts; i++) {
    char one[64];
    snprintf(one, sizeof one, "--XyZ\r\n\r\npart %d\r\n", i);
    dg_mpsink_write(s, one, strlen(one));
  }
  dg_mpsink_write(s, "--XyZ--\r\n", 9);
  dg_mpsink_end(s, 1);
  int open_n = 0, first_open = -1;
  for (int i = 0; i < parts; i++) {
    if (dg_mpsink_unsynced_fd(s, (size_t)i) >= 0) { open_n++; if (first_open < 0) first_open = i; }
  }
  ok(dg_mpsink_complete(s) && (int)dg_mpsink_count(s) == parts && open_n == DG_MPSINK_OPEN_MAX && first_open == 8,
     "deferred: complete parts wait open for their fsync, the oldest beyond the bound fsync'ed at once");
  int fd5 = dg_mpsink_unsynced_fd(s, 8), fd6 = dg_mpsink_unsynced_fd(s, 9);
  dg_mpsink_synced(s, fd5, 0);
  ok(dg_mpsink_unsynced_fd(s, 8) == -1 && fcntl(fd5, F_GETFD) == -1 && dg_mpsink_complete(s),
     "a part whose fsync returned is closed, and stays");
  char gone[600];
  snprintf(gone, sizeof gone, "%s", dg_mpsink_path(s, 9, NULL));
  dg_mpsink_synced(s, fd6, EIO);
  ok((int)dg_mpsink_count(s) == parts - 1 && access(gone, F_OK) != 0 && !dg_mpsink_complete(s) &&
     dg_mpsink_local_error(s) && strstr(dg_mpsink_error(s), strerror(EIO)) != NULL,
     "a part whose fsync failed is removed and the sink fails as ours");
  dg_mpsink_abandon_sync(s);
  int still = 0;
  for (int i = 0; i < parts - 1; i++) still += dg_mpsink_unsynced_fd(s, (size_t)i) >= 0;
  ok(still == 0 && !dg_mpsink_busy(s), "abandon closes what is still open and frees the sink");
  dg_mpsink_release(s);
  ok(count_entries() == 0, "release removes them all");

  rmdir(dir);
  return tap_done();
}
