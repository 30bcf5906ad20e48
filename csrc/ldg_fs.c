/*
 * ldg_fs.c - binding of dg_fs: core.mkdir_p, core.mkdir_under, core.stat, core.listdir,
 * core.create_temp, core.atomic_write, core.atomic_open, core.append_open.
 * Failures return nil, "path: reason" (errno saved before any Lua call).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>

#include "ldg.h"
#include "dg_fs.h"

static const char *type_name(enum dg_fs_type t) {
  switch (t) {
    case DG_FS_FILE: return "file";
    case DG_FS_DIR: return "directory";
    case DG_FS_LINK: return "link";
    default: return "other";
  }
}

static int push_errno(lua_State *L, const char *path, int err) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", path, strerror(err));
  return 2;
}

static int l_mkdir_p(lua_State *L) {
  const char *path = ldg_checkcstring(L, 1);
  if (dg_fs_mkdir_p(path) != 0) return push_errno(L, path, errno);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_stat(lua_State *L) {
  const char *path = ldg_checkcstring(L, 1);
  enum dg_fs_type t;
  uint64_t size;
  double mtime;
  if (dg_fs_stat(path, &t, &size, &mtime) != 0) return push_errno(L, path, errno);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, type_name(t));
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)size);
  lua_setfield(L, -2, "size");
  lua_pushnumber(L, mtime);
  lua_setfield(L, -2, "mtime");
  return 1;
}

struct list_ctx { lua_State *L; lua_Integer n; };

/* Runs inside dg_fs_list with the result table on top; lua_pushstring may raise on
 * out-of-memory, which would leak the DIR*: entries are collected through a
 * protected call (see l_listdir). */
static int add_entry(const char *name, enum dg_fs_type t, void *ud) {
  struct list_ctx *c = ud;
  lua_State *L = c->L;
  lua_createtable(L, 0, 2);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, type_name(t));
  lua_setfield(L, -2, "type");
  lua_rawseti(L, -2, ++c->n);
  return 0;
}

static int listdir_protected(lua_State *L) {
  const char *path = lua_tostring(L, 1);
  struct list_ctx c = { L, 0 };
  int rc;
  lua_newtable(L);
  rc = dg_fs_list(path, add_entry, &c);
  if (rc != 0) {
    int err = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(err));
    return 2;
  }
  return 1;
}

static int l_listdir(lua_State *L) {
  const char *path = ldg_checkcstring(L, 1);
  int top = lua_gettop(L);
  lua_pushcfunction(L, listdir_protected);
  lua_pushstring(L, path);
  if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) return lua_error(L);
  return lua_gettop(L) - top;
}

static int l_mkdir_under(lua_State *L) {
  const char *root = ldg_checkcstring(L, 1);
  const char *rel = ldg_checkcstring(L, 2);
  if (dg_fs_mkdir_under(root, rel) != 0) {
    int err = errno;
    lua_pushnil(L);
    if (err == ELOOP)
      lua_pushfstring(L, "%s/%s: a folder on the way is a symbolic link (not followed)", root, rel);
    else
      lua_pushfstring(L, "%s/%s: %s", root, rel, strerror(err));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* create_temp(final [, size]): a new empty (or `size`-byte, reserved) hidden file next to
 * `final`, created O_EXCL|O_NOFOLLOW; returns its path, for the caller to fill and rename. */
static int l_create_temp(lua_State *L) {
  size_t n;
  const char *final = ldg_checkcstring(L, 1);
  n = strlen(final);
  lua_Integer size = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, size >= 0, 2, "size must be >= 0");
  char *tmp = malloc(n + 80);
  if (!tmp) return luaL_error(L, "out of memory");
  int fd = dg_fs_create_temp(final, tmp, n + 80);
  int err = errno;
  if (fd >= 0) {
    int e2 = dg_fs_reserve(fd, (uint64_t)size) != 0 ? errno : 0;
    if (close(fd) != 0 && !e2) e2 = errno;
    if (e2) { unlink(tmp); fd = -1; err = e2; }
  }
  if (fd < 0) { free(tmp); return push_errno(L, final, err); }
  lua_pushstring(L, tmp);   /* may raise (out of memory): the file stays, the path is lost */
  free(tmp);
  return 1;
}

static int l_atomic_write(lua_State *L) {
  size_t len;
  const char *path = ldg_checkcstring(L, 1);
  const char *data = luaL_checklstring(L, 2, &len);
  int sync = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3);
  if (dg_fs_write_atomic(path, data, len, sync) != 0) return push_errno(L, path, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* A file being written: an atomic one (tmp set: renamed to final on commit, removed on abort
 * or collection) or an append-only log (tmp NULL). */
#define FILE_MT "dicomgcs.file"
typedef struct { int fd; char *tmp, *final; } lfile;

static lfile *check_file(lua_State *L) {
  lfile *f = luaL_checkudata(L, 1, FILE_MT);
  if (f->fd < 0) luaL_error(L, "the file is closed");
  return f;
}

static void lfile_release(lfile *f, int remove_tmp) {
  if (f->fd >= 0) { close(f->fd); f->fd = -1; }
  if (f->tmp && remove_tmp) unlink(f->tmp);
  free(f->tmp); free(f->final);
  f->tmp = f->final = NULL;
}

static lfile *new_file(lua_State *L) {
  lfile *f = lua_newuserdatauv(L, sizeof *f, 0);
  f->fd = -1; f->tmp = f->final = NULL;
  luaL_setmetatable(L, FILE_MT);
  return f;
}

static int l_atomic_open(lua_State *L) {
  size_t n;
  const char *final = ldg_checkcstring(L, 1);
  n = strlen(final);
  lfile *f = new_file(L);
  f->final = malloc(n + 1);
  f->tmp = malloc(n + 80);
  if (!f->final || !f->tmp) { lfile_release(f, 0); return luaL_error(L, "out of memory"); }
  memcpy(f->final, final, n + 1);
  f->fd = dg_fs_create_temp(final, f->tmp, n + 80);
  if (f->fd < 0) { int err = errno; lfile_release(f, 0); return push_errno(L, final, err); }
  return 1;
}

static int l_append_open(lua_State *L) {
  size_t n;
  const char *path = ldg_checkcstring(L, 1);
  n = strlen(path);
  lfile *f = new_file(L);
  f->final = malloc(n + 1);
  if (!f->final) return luaL_error(L, "out of memory");
  memcpy(f->final, path, n + 1);
  f->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (f->fd < 0) {
    int err = errno;
    lfile_release(f, 0);
    lua_pushnil(L);
    if (err == ELOOP) lua_pushfstring(L, "%s: is a symbolic link (not followed)", path);
    else lua_pushfstring(L, "%s: %s", path, strerror(err));
    return 2;
  }
  return 1;
}

/* f:write(s): all of s with write(2) (one call unless the kernel takes less), checked. */
static int f_write(lua_State *L) {
  lfile *f = check_file(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  if (dg_fs_write_all(f->fd, s, len) != 0) return push_errno(L, f->tmp ? f->tmp : f->final, errno);
  lua_pushboolean(L, 1);
  return 1;
}

static int f_sync(lua_State *L) {
  lfile *f = check_file(L);
  if (fsync(f->fd) != 0) return push_errno(L, f->final, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* f:truncate(n): cut the (append-only) file to n bytes, durably. */
static int f_truncate(lua_State *L) {
  lfile *f = check_file(L);
  lua_Integer len = luaL_checkinteger(L, 2);
  luaL_argcheck(L, len >= 0, 2, "length must be >= 0");
  if (ftruncate(f->fd, (off_t)len) != 0 || fsync(f->fd) != 0) return push_errno(L, f->final, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* f:commit([final]): fsync, close, rename the temporary file to final (default: the name
 * given to atomic_open). The file is closed whatever happens; on failure nothing is left. */
static int f_commit(lua_State *L) {
  lfile *f = check_file(L);
  const char *final = lua_isnoneornil(L, 2) ? f->final : ldg_checkcstring(L, 2);
  if (!f->tmp) return luaL_error(L, "commit: not an atomic file");
  int fd = f->fd;
  f->fd = -1;
  if (dg_fs_commit(fd, f->tmp, final, 1) != 0) {
    int err = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", final, strerror(err));
    lfile_release(f, 0);
    return 2;
  }
  lfile_release(f, 0);
  lua_pushboolean(L, 1);
  return 1;
}

/* f:abort() / f:close() / collection: an atomic file's temporary file is removed. */
static int f_close(lua_State *L) {
  lfile *f = luaL_checkudata(L, 1, FILE_MT);
  int err = 0;
  if (f->fd >= 0 && !f->tmp && close(f->fd) != 0) err = errno;
  if (!f->tmp) f->fd = -1;
  const char *name = f->final ? f->final : "file";
  if (err) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", name, strerror(err));
    lfile_release(f, 1);
    return 2;
  }
  lfile_release(f, 1);
  lua_pushboolean(L, 1);
  return 1;
}

static int f_temp_path(lua_State *L) {
  lfile *f = check_file(L);
  lua_pushstring(L, f->tmp ? f->tmp : f->final);
  return 1;
}

void ldg_register_fs(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"mkdir_p", l_mkdir_p}, {"mkdir_under", l_mkdir_under}, {"stat", l_stat}, {"listdir", l_listdir},
    {"create_temp", l_create_temp}, {"atomic_write", l_atomic_write},
    {"atomic_open", l_atomic_open}, {"append_open", l_append_open}, {NULL, NULL}
  };
  static const luaL_Reg meta[] = { {"__gc", f_close}, {"__close", f_close}, {NULL, NULL} };
  static const luaL_Reg methods[] = {
    {"write", f_write}, {"sync", f_sync}, {"truncate", f_truncate}, {"commit", f_commit},
    {"abort", f_close}, {"close", f_close}, {"temp_path", f_temp_path}, {NULL, NULL}
  };
  ldg_define_class(L, FILE_MT, meta, methods);
  dg_fs_ignore_sigxfsz();
  luaL_setfuncs(L, fns, 0);
}
