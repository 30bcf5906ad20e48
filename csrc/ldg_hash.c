/*
 * ldg_hash.c - binding of dg_hash: Cloud Storage checksums for the Lua layer.
 *   core.crc32c(bytes [, crc]) -> integer
 *   core.crc32c_combine(crc1, crc2, len2) -> integer (CRC32C of A..B from those of A and B)
 *   core.crc32c_b64(crc) -> "base64" (the object-metadata form of an integer CRC32C)
 *   core.hash_file(path, {crc32c=, md5=, offset=, length=}) -> digest | nil, msg
 * A digest is { size=, crc32c="base64" (when asked), md5="base64" (when asked) }, the forms
 * Cloud Storage uses in object metadata and X-Goog-Hash.
 */
#include <string.h>
#include <lauxlib.h>

#include "ldg.h"
#include "dg_hash.h"

static int which_of(lua_State *L, int idx) {
  int which = 0;
  if (lua_isnoneornil(L, idx)) return DG_HASH_CRC32C | DG_HASH_MD5;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "crc32c");
  if (lua_toboolean(L, -1)) which |= DG_HASH_CRC32C;
  lua_getfield(L, idx, "md5");
  if (lua_toboolean(L, -1)) which |= DG_HASH_MD5;
  lua_pop(L, 2);
  return which;
}

static void push_digest(lua_State *L, const dg_digest *d) {
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)d->size);
  lua_setfield(L, -2, "size");
  if (d->which & DG_HASH_CRC32C) {
    lua_pushstring(L, d->crc32c_b64);
    lua_setfield(L, -2, "crc32c");
  }
  if (d->which & DG_HASH_MD5) {
    lua_pushstring(L, d->md5_b64);
    lua_setfield(L, -2, "md5");
  }
}

static int l_crc32c(lua_State *L) {
  size_t n;
  const char *p = luaL_checklstring(L, 1, &n);
  lua_Integer c = luaL_optinteger(L, 2, 0);
  lua_pushinteger(L, (lua_Integer)dg_crc32c((uint32_t)c, p, n));
  return 1;
}

static int l_crc32c_combine(lua_State *L) {
  lua_Integer c1 = luaL_checkinteger(L, 1), c2 = luaL_checkinteger(L, 2), n = luaL_checkinteger(L, 3);
  luaL_argcheck(L, n >= 0, 3, "length must not be negative");
  lua_pushinteger(L, (lua_Integer)dg_crc32c_combine((uint32_t)c1, (uint32_t)c2, (uint64_t)n));
  return 1;
}

static int l_crc32c_b64(lua_State *L) {
  uint32_t c = (uint32_t)luaL_checkinteger(L, 1);
  unsigned char be[4] = { (unsigned char)(c >> 24), (unsigned char)(c >> 16), (unsigned char)(c >> 8),
                          (unsigned char)c };
  char out[9];
  dg_hash_b64(be, 4, out);
  lua_pushstring(L, out);
  return 1;
}

static lua_Integer opt_int_field(lua_State *L, int idx, const char *k, lua_Integer dflt) {
  lua_Integer v = dflt;
  if (lua_istable(L, idx)) {
    lua_getfield(L, idx, k);
    if (!lua_isnil(L, -1)) {
      if (!lua_isinteger(L, -1)) luaL_error(L, "hash_file: field '%s' must be an integer", k);
      v = lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
  }
  return v;
}

static int l_hash_file(lua_State *L) {
  const char *path = ldg_checkcstring(L, 1);
  int which = which_of(L, 2);
  lua_Integer off = opt_int_field(L, 2, "offset", 0), len = opt_int_field(L, 2, "length", -1);
  luaL_argcheck(L, off >= 0, 2, "offset must not be negative");
  luaL_argcheck(L, len >= -1, 2, "length must not be negative");
  dg_digest d;
  char err[512];
  if (dg_hash_file(path, off, len, which, &d, err, sizeof err) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  push_digest(L, &d);
  return 1;
}

static const luaL_Reg hash_functions[] = {
  {"crc32c", l_crc32c}, {"crc32c_combine", l_crc32c_combine}, {"crc32c_b64", l_crc32c_b64},
  {"hash_file", l_hash_file}, {NULL, NULL}
};

void ldg_register_hash(lua_State *L) {
  luaL_setfuncs(L, hash_functions, 0);
}
