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

/* Create or truncate the regular file `path` (mode 0666 & ~umask) and reserve `size` bytes for
 * it (posix_fallocate: blocks allocated up front, so in-place writes need no allocation and a
 * full disk shows here); where the file system cannot reserve, a sparse file of `size` bytes.
 * 0 or -1/errno (the file is removed again on failure). */
int dg_fs_preallocate(const char *path, uint64_t size);

/* Call `each(name, type, ud)` for every entry of directory `path` except "." and "..";
 * stops early and returns the callback's value when it is non-zero. -1/errno on open failure. */
typedef int dg_fs_each_fn(const char *name, enum dg_fs_type type, void *ud);
int dg_fs_list(const char *path, dg_fs_each_fn *each, void *ud);

#endif
