/* d_type and DT_* come with the default (BSD) feature set */
#define _DEFAULT_SOURCE 1
#include "dg_fs.h"

#include <dirent.h>
#include <signal.h>
#include <sys/random.h>
#include <time.h>
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

int dg_fs_reserve(int fd, uint64_t size) {
  if (size > (uint64_t)INT64_MAX) { errno = EFBIG; return -1; }
  int err = size > 0 ? posix_fallocate(fd, 0, (off_t)size) : 0;
  if (err == EOPNOTSUPP || err == EINVAL || err == ENOSYS)
    err = ftruncate(fd, (off_t)size) == 0 ? 0 : errno;
  if (err) { errno = err; return -1; }
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

/* ---- files we write: complete or absent, never through a link ---- */

void dg_fs_ignore_sigxfsz(void) {
  struct sigaction sa;
  if (sigaction(SIGXFSZ, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGXFSZ, &sa, NULL);
  }
}

static uint64_t random64(void) {
  static uint64_t counter;
  uint64_t r = 0;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
    /* no entropy yet (early boot): still unique within this process, and O_EXCL catches the rest */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
  }
  counter++;
  return r ^ (counter * 0x9E3779B97F4A7C15ull);
}

int dg_fs_temp_name(const char *final, char *out, size_t outlen) {
  const char *slash = strrchr(final, '/');
  size_t dirlen = slash ? (size_t)(slash - final) + 1 : 0;
  const char *base = final + dirlen;
  size_t baselen = strlen(base);
  int n;
  if (baselen > 48) baselen = 48;   /* keep the whole name under NAME_MAX */
  n = snprintf(out, outlen, "%.*s.%.*s.%016llx.dgtmp", (int)dirlen, final, (int)baselen, base,
               (unsigned long long)random64());
  if (n < 0 || (size_t)n >= outlen) { errno = ENAMETOOLONG; return -1; }
  return 0;
}

int dg_fs_create_excl(const char *path) {
  return open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
}

int dg_fs_create_temp(const char *final, char *out, size_t outlen) {
  for (int i = 0; i < 8; i++) {
    if (dg_fs_temp_name(final, out, outlen) != 0) return -1;
    int fd = dg_fs_create_excl(out);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  return -1;
}

int dg_fs_write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    if (w == 0) { errno = EIO; return -1; }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

/* fsync the folder holding `path`, so that a rename in it survives a crash. */
static int sync_parent(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir;
  int fd, rc, saved;
  if (!slash) return 0;
  dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
  if (!dir) return -1;
  fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(dir);
  if (fd < 0) return 0;   /* a folder we may not read: the rename itself is done */
  rc = fsync(fd);
  saved = errno;
  close(fd);
  /* some file systems refuse fsync on a folder */
  if (rc != 0 && (saved == EINVAL || saved == EBADF || saved == ENOTSUP)) rc = 0;
  errno = saved;
  return rc;
}

int dg_fs_commit(int fd, const char *tmp, const char *final, int sync) {
  int err = 0;
  if (sync && fsync(fd) != 0) err = errno;
  if (close(fd) != 0 && !err) err = errno;
  if (!err && rename(tmp, final) != 0) err = errno;
  if (err) { unlink(tmp); errno = err; return -1; }
  if (sync && sync_parent(final) != 0) return -1;
  return 0;
}

int dg_fs_write_atomic(const char *path, const void *data, size_t len, int sync) {
  size_t n = strlen(path) + 80;
  char *tmp = malloc(n);
  int fd, saved;
  if (!tmp) return -1;
  fd = dg_fs_create_temp(path, tmp, n);
  if (fd < 0) { saved = errno; free(tmp); errno = saved; return -1; }
  if (dg_fs_write_all(fd, data, len) != 0) {
    saved = errno;
    close(fd);
    unlink(tmp);
    free(tmp);
    errno = saved;
    return -1;
  }
  int rc = dg_fs_commit(fd, tmp, path, sync);
  saved = errno;
  free(tmp);
  errno = saved;
  return rc;
}

int dg_fs_mkdir_under(const char *root, const char *rel) {
  size_t rn = strlen(root), n = strlen(rel);
  char *p;
  int saved;
  if (n == 0) return 0;
  if (rel[0] == '/') { errno = EINVAL; return -1; }
  p = malloc(rn + n + 2);
  if (!p) return -1;
  memcpy(p, root, rn);
  p[rn] = '/';
  memcpy(p + rn + 1, rel, n + 1);
  for (size_t i = rn + 1; i <= rn + 1 + n; i++) {
    if (p[i] == '/' || p[i] == '\0') {
      char c = p[i];
      struct stat st;
      p[i] = '\0';
      if (mkdir(p, 0777) != 0 && errno != EEXIST) { saved = errno; free(p); errno = saved; return -1; }
      /* lstat: a link planted under the root is refused, never followed */
      if (lstat(p, &st) != 0) { saved = errno; free(p); errno = saved; return -1; }
      if (!S_ISDIR(st.st_mode)) {
        free(p);
        errno = S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR;
        return -1;
      }
      p[i] = c;
    }
  }
  free(p);
  return 0;
}
