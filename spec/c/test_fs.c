/* test_fs.c - files we write (dg_fs): temporary names, exclusive creation, links never followed,
 * atomic replacement, folders created under a root without following links (TAP). */
#define _DEFAULT_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dg_fs.h"
#include "tap.h"

static char dir[256];

static char *at(const char *name) {
  static char buf[4][512];
  static int i;
  i = (i + 1) % 4;
  snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
  return buf[i];
}

static int file_is(const char *path, const char *want) {
  char got[256];
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  size_t n = fread(got, 1, sizeof got - 1, f);
  fclose(f);
  got[n] = '\0';
  return strcmp(got, want) == 0;
}

static void put(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (f) { fputs(text, f); fclose(f); }
}

int main(void) {
  char a[600], b[600];
  snprintf(dir, sizeof dir, "%s/dg-test-fs-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }

  ok(dg_fs_temp_name(at("obj.dcm"), a, sizeof a) == 0 && dg_fs_temp_name(at("obj.dcm"), b, sizeof b) == 0,
     "temporary names are made");
  ok(strncmp(a, at(".obj.dcm."), strlen(at(".obj.dcm."))) == 0 && strstr(a, ".dgtmp") != NULL,
     "a temporary name is hidden, beside the final name, ends in .dgtmp");
  ok(strcmp(a, b) != 0, "two temporary names for one file differ (random suffix)");
  char small[8];
  ok(dg_fs_temp_name(at("x"), small, sizeof small) != 0 && errno == ENAMETOOLONG, "a short buffer is refused");

  put(at("victim"), "keep");
  ok(symlink(at("victim"), at("link")) == 0, "a link is planted");
  int fd = dg_fs_create_excl(at("link"));
  ok(fd < 0 && errno == EEXIST, "exclusive creation refuses a planted link");
  ok(file_is(at("victim"), "keep"), "the link's target is untouched");

  ok(dg_fs_write_atomic(at("link"), "new", 3, 1) == 0, "an atomic write over a link succeeds");
  struct stat st;
  ok(lstat(at("link"), &st) == 0 && S_ISREG(st.st_mode) && file_is(at("link"), "new"),
     "the link is replaced by the file, not written through");
  ok(file_is(at("victim"), "keep"), "the link's old target is untouched");
  ok(dg_fs_write_atomic(at("missing/x"), "y", 1, 0) != 0 && errno == ENOENT, "a missing folder fails");

  ok(dg_fs_mkdir_under(dir, "a/b/c") == 0 && lstat(at("a/b/c"), &st) == 0 && S_ISDIR(st.st_mode),
     "folders are created under the root");
  ok(mkdir(at("outside"), 0777) == 0 && symlink(at("outside"), at("a/ln")) == 0, "a linked folder is planted");
  ok(dg_fs_mkdir_under(dir, "a/ln/d") != 0 && errno == ELOOP, "a linked folder under the root is refused");
  ok(rmdir(at("outside")) == 0, "nothing was created through the link");

  fd = dg_fs_create_temp(at("t"), a, sizeof a);
  ok(fd >= 0, "a temporary file is created");
  ok(dg_fs_reserve(fd, 4096) == 0 && fstat(fd, &st) == 0 && st.st_size == 4096, "space is reserved");
  ok(dg_fs_write_all(fd, "data", 4) == 0, "writes are checked");
  ok(dg_fs_commit(fd, a, at("t"), 1) == 0 && access(a, F_OK) != 0, "commit renames the temporary file away");

  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
  return tap_done();
}
