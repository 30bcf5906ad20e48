/* d_type and DT_* come with the default (BSD) feature set */
#define _DEFAULT_SOURCE 1
#include "dg_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

static enum dg_fs_type type_of(mode_t m) {
  if (S_ISREG(m)) return DG_FS_FILE;
  if (S_ISDIR(m)) return DG_FS_DIR;
  if (S_ISLNK(m)) return DG_FS_LINK;
  return DG_FS_OTHER;
}

int dg_fs_preallocate(const char *path, uint64_t size) {
  if (size > (uint64_t)INT64_MAX) { errno = EFBIG; return -1; }
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return -1;
  int err = size > 0 ? posix_fallocate(fd, 0, (off_t)size) : 0;
  if (err == EOPNOTSUPP || err == EINVAL || err == ENOSYS)
    err = ftruncate(fd, (off_t)size) == 0 ? 0 : errno;
  if (close(fd) != 0 && !err) err = errno;
  if (err) { unlink(path); errno = err; return -1; }
  return 0;
}

int dg_fs_mkdir_p(const char *path) {
  size_t n = strlen(path);
  char *p;
  size_t i;
  int saved;
  if (n == 0) { errno = ENOENT; return -1; }
  p = malloc(n + 1);
  if (!p) return -1;
  memcpy(p, path, n + 1);
  for (i = 1; i <= n; i++) {
    if (p[i] == '/' || p[i] == '\0') {
      char c = p[i];
      struct stat st;
      p[i] = '\0';
      if (mkdir(p, 0777) != 0 && errno != EEXIST) { saved = errno; free(p); errno = saved; return -1; }
      if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
        free(p); errno = ENOTDIR; return -1;
      }
      p[i] = c;
    }
  }
  free(p);
  return 0;
}

int dg_fs_stat(const char *path, enum dg_fs_type *type, uint64_t *size, double *mtime) {
  struct stat st;
  if (lstat(path, &st) != 0) return -1;
  *type = type_of(st.st_mode);
  *size = (uint64_t)st.st_size;
  *mtime = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9;
  return 0;
}

int dg_fs_list(const char *path, dg_fs_each_fn *each, void *ud) {
  DIR *d = opendir(path);
  struct dirent *e;
  int rc = 0;
  if (!d) return -1;
  while ((e = readdir(d)) != NULL) {
    enum dg_fs_type t = DG_FS_OTHER;
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (e->d_type == DT_REG) t = DG_FS_FILE;
    else if (e->d_type == DT_DIR) t = DG_FS_DIR;
    else if (e->d_type == DT_LNK) t = DG_FS_LINK;
    else if (e->d_type == DT_UNKNOWN) {
      /* some file systems do not fill d_type: ask */
      size_t n = strlen(path) + strlen(e->d_name) + 2;
      char *full = malloc(n);
      struct stat st;
      if (full) {
        snprintf(full, n, "%s/%s", path, e->d_name);
        if (lstat(full, &st) == 0) t = type_of(st.st_mode);
        free(full);
      }
    }
    rc = each(e->d_name, t, ud);
    if (rc != 0) break;
  }
  closedir(d);
  return rc;
}
