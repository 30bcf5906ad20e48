/*
 * ldg_fs.c - binding of dg_fs: core.mkdir_p, core.stat, core.listdir, core.preallocate.
 * Failures return nil, "path: reason" (errno saved before any Lua call).
 */
#include <errno.h>
#include <string.h>
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
  const char *path = luaL_checkstring(L, 1);
  if (dg_fs_mkdir_p(path) != 0) return push_errno(L, path, errno);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_stat(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
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

static int l_preallocate(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer size = luaL_checkinteger(L, 2);
  luaL_argcheck(L, size >= 0, 2, "size must be >= 0");
  if (dg_fs_preallocate(path, (uint64_t)size) != 0) return push_errno(L, path, errno);
  lua_pushboolean(L, 1);
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
  const char *path = luaL_checkstring(L, 1);
  int top = lua_gettop(L);
  lua_pushcfunction(L, listdir_protected);
  lua_pushstring(L, path);
  if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) return lua_error(L);
  return lua_gettop(L) - top;
}

void ldg_register_fs(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"mkdir_p", l_mkdir_p}, {"stat", l_stat}, {"listdir", l_listdir},
    {"preallocate", l_preallocate}, {NULL, NULL}
  };
  luaL_setfuncs(L, fns, 0);
}
