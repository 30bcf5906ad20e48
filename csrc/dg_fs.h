/*
 * dg_fs.h - the few file-system calls the Lua layer needs (mkdir -p, directory listing,
 * stat), so that dicomgcs depends on no Lua file-system module. Plain C, no Lua.
 * Errors are returned as -1 with errno set; nothing here allocates except dg_fs_list.
 */
#ifndef DG_FS_H
#define DG_FS_H

#include <stddef.h>
#include <stdint.h>

enum dg_fs_type { DG_FS_OTHER = 0, DG_FS_FILE = 1, DG_FS_DIR = 2, DG_FS_LINK = 3 };

/* Create `path` and its missing parents with mode 0777 & ~umask. 0 or -1/errno. */
int dg_fs_mkdir_p(const char *path);

/* lstat-like: type (a symlink is DG_FS_LINK, not followed), size in bytes, mtime seconds. */
int dg_fs_stat(const char *path, enum dg_fs_type *type, uint64_t *size, double *mtime);

/* Reserve `size` bytes for the open file fd (posix_fallocate: blocks allocated up front, so
 * in-place writes need no allocation and a full disk shows here); where the file system cannot
 * reserve, a sparse file of `size` bytes. 0 or -1/errno. */
int dg_fs_reserve(int fd, uint64_t size);

/* Call `each(name, type, ud)` for every entry of directory `path` except "." and "..";
 * stops early and returns the callback's value when it is non-zero. -1/errno on open failure. */
typedef int dg_fs_each_fn(const char *name, enum dg_fs_type type, void *ud);
int dg_fs_list(const char *path, dg_fs_each_fn *each, void *ud);

/* ---- files we write: complete or absent, never through a symlink ----
 * Temporary files live next to their final name under a hidden name with a random suffix,
 * "DIR/.BASE.<16 hex>.dgtmp" (BASE cut to 48 bytes), created with O_CREAT|O_EXCL|O_NOFOLLOW:
 * no object name can be relied on to produce it, and nothing planted there is followed or
 * reused. Only the creator ever removes or renames it. */

/* Under a file-size limit (ulimit -f) a write must fail with EFBIG, not kill the process:
 * SIGXFSZ is ignored unless the host installed its own handler. */
void dg_fs_ignore_sigxfsz(void);
/* A fresh temporary name next to `final` into out (outlen >= strlen(final) + 80). 0 or -1. */
int dg_fs_temp_name(const char *final, char *out, size_t outlen);
/* open(path, O_RDWR|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0666): fd or -1/errno. */
int dg_fs_create_excl(const char *path);
/* dg_fs_temp_name + dg_fs_create_excl, a few names tried on EEXIST: fd or -1/errno. */
int dg_fs_create_temp(const char *final, char *out, size_t outlen);
/* write(2) until all `len` bytes are written (EINTR retried): 0 or -1/errno (EFBIG, ENOSPC…). */
int dg_fs_write_all(int fd, const void *data, size_t len);
/* fsync (when `sync`) and close fd (the temporary `tmp`), rename tmp to `final`, fsync final's
 * folder (when `sync`). fd is closed in every case; on failure tmp is removed. 0 or -1/errno. */
int dg_fs_commit(int fd, const char *tmp, const char *final, int sync);
/* The whole of `data` to `path`, atomically: temporary file, checked writes, commit. */
int dg_fs_write_atomic(const char *path, const void *data, size_t len, int sync);
/* mkdir -p of root/rel where root (given by the user) may be a link but no folder under it
 * may: each component of rel is created or must already be a real folder (lstat), else
 * -1 with errno ELOOP (a link) or ENOTDIR. */
int dg_fs_mkdir_under(const char *root, const char *rel);

#endif
