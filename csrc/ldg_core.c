/*
 * ldg_core.c - entry point of require "dicomgcs.core", plus small OS helpers
 * (monotonic clock, sleep, isatty) the Lua layer needs for polling and progress lines.
 *
 * The core is private to the dicomgcs Lua package: the files in lua/dicomgcs/ wrap
 * it and the public module table is built there.
 */
#include <lauxlib.h>
#include <stdlib.h>
#include <unistd.h>
#include <curl/curl.h>

#include "ldg.h"
#include "dg_time.h"
#include "dg_version.h"

/* curl_global_init is not thread-safe; a host that already initialised
 * libcurl sets DICOMGCS_NO_CURL_INIT (same opt-out as Lua-cURLv3). */
static void init_curl_once(void) {
  static int done = 0;
  if (done) return;
  done = 1;
  if (getenv("DICOMGCS_NO_CURL_INIT") == NULL) curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int l_monotime(lua_State *L) {
  lua_pushnumber(L, dg_monotonic_seconds());
  return 1;
}

static int l_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  luaL_argcheck(L, s >= 0, 1, "seconds must not be negative");
  if (dg_sleep_seconds(s) != 0) return luaL_error(L, "sleep failed");
  return 0;
}

static int l_isatty(lua_State *L) {
  lua_Integer fd = luaL_optinteger(L, 1, 1);
  lua_pushboolean(L, isatty((int)fd) == 1);
  return 1;
}

void ldg_define_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods) {
  if (luaL_newmetatable(L, name)) {
    luaL_setfuncs(L, meta, 0);
    if (methods) {
      lua_newtable(L);
      luaL_setfuncs(L, methods, 0);
      lua_setfield(L, -2, "__index");
    }
  }
  lua_pop(L, 1);
}

static const luaL_Reg core_functions[] = {
  {"monotime", l_monotime},
  {"sleep", l_sleep},
  {"isatty", l_isatty},
  {NULL, NULL}
};

LDG_API int luaopen_dicomgcs_core(lua_State *L) {
  luaL_checkversion(L);
  init_curl_once();
  luaL_newlib(L, core_functions);
  lua_pushliteral(L, DG_VERSION);
  lua_setfield(L, -2, "_VERSION");
  lua_pushstring(L, curl_version());
  lua_setfield(L, -2, "curl_version");
  ldg_register_engine(L);
  ldg_register_parsers(L);
  ldg_register_auth(L);
  ldg_register_fs(L);
  ldg_register_hash(L);
  ldg_register_retry(L);
  return 1;
}
