/*
 * ldg_core.c - entry point of require "dicomgcs.core", plus small OS helpers
 * (monotonic clock, isatty, Ctrl-C guard) the Lua layer needs for waiting and progress
 * lines; sleep is kept for the specs (the library waits on engine timers).
 *
 * The core is private to the dicomgcs Lua package: the files in lua/dicomgcs/ wrap
 * it and the public module table is built there.
 */
#include <lauxlib.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>

#include "ldg.h"
#include "dg_signal.h"
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

const char *ldg_checkcstring(lua_State *L, int arg) {
  size_t len;
  const char *s = luaL_checklstring(L, arg, &len);
  if (strlen(s) != len) luaL_argerror(L, arg, "must not contain a NUL byte");
  return s;
}

size_t ldg_checklist(lua_State *L, int idx, const char *what) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE) luaL_error(L, "%s must be a table", what);
  size_t n = lua_rawlen(L, idx), count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int isint = 0;
    lua_Integer k = lua_tointegerx(L, -2, &isint);
    if (lua_type(L, -2) != LUA_TNUMBER || !isint || k < 1 || (size_t)k > n)
      luaL_error(L, "%s must be a list without holes (items 1..n only)", what);
    count++;
    lua_pop(L, 1);
  }
  if (count != n) luaL_error(L, "%s must be a list without holes (items 1..n only)", what);
  return n;
}

static int l_monotime(lua_State *L) {
  lua_pushnumber(L, dg_monotonic_seconds());
  return 1;
}

static int l_unixtime(lua_State *L) {
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) { lua_pushnumber(L, (lua_Number)time(NULL)); return 1; }
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

static int l_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  /* a day at most: a longer sleep is a caller's bug, and NaN or inf would never return */
  luaL_argcheck(L, s >= 0 && s <= 86400, 1, "seconds must be in 0..86400");
  if (dg_sleep_seconds(s) != 0) return luaL_error(L, "sleep failed");
  return 0;
}

/* core.sigint_guard(): while open, Ctrl-C is caught (not lua.c's "interrupted!" hook)
 * and ends any engine step at once; guard:caught() says whether it came (once per
 * SIGINT). Close it (a <close> variable, :close(), or the collector) to restore the
 * previous handler. Guards nest. */
#define LDG_SIGINT "dicomgcs.SigintGuard"
typedef struct { int open; } sigint_guard;

static int guard_close(lua_State *L) {
  sigint_guard *g = luaL_checkudata(L, 1, LDG_SIGINT);
  if (g->open) { g->open = 0; dg_sigint_disarm(); }
  return 0;
}

static int guard_caught(lua_State *L) {
  sigint_guard *g = luaL_checkudata(L, 1, LDG_SIGINT);
  lua_pushboolean(L, g->open && dg_sigint_take());
  return 1;
}

/* guard:pass_on(): close it and raise the SIGINT again for the handler from before (lua.c's
 * "interrupted!", a host's own), once the caller has cleaned up after the one it caught. */
static int guard_pass_on(lua_State *L) {
  sigint_guard *g = luaL_checkudata(L, 1, LDG_SIGINT);
  if (g->open) { g->open = 0; dg_sigint_pass_on(); }
  return 0;
}

static int guard_raise(lua_State *L) {      /* for specs: as if Ctrl-C were pressed */
  luaL_checkudata(L, 1, LDG_SIGINT);
  dg_sigint_raise_for_test();
  return 0;
}

static int l_sigint_guard(lua_State *L) {
  sigint_guard *g = lua_newuserdatauv(L, sizeof *g, 0);
  g->open = 0;                              /* closed until armed */
  luaL_setmetatable(L, LDG_SIGINT);
  if (dg_sigint_arm() < 0) return luaL_error(L, "sigint_guard: cannot install a SIGINT handler");
  g->open = 1;
  return 1;
}

static int l_isatty(lua_State *L) {
  lua_Integer fd = luaL_optinteger(L, 1, 1);
  luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, 1, "not a file descriptor");
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
  {"unixtime", l_unixtime},
  {"isatty", l_isatty},
  {"sigint_guard", l_sigint_guard},
  {NULL, NULL}
};

LDG_API int luaopen_dicomgcs_core(lua_State *L) {
  luaL_checkversion(L);
  init_curl_once();
  static const luaL_Reg guard_meta[] = { {"__gc", guard_close}, {"__close", guard_close}, {NULL, NULL} };
  static const luaL_Reg guard_methods[] = {
    {"close", guard_close}, {"caught", guard_caught}, {"pass_on", guard_pass_on}, {"raise_for_test", guard_raise}, {NULL, NULL}
  };
  ldg_define_class(L, LDG_SIGINT, guard_meta, guard_methods);
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
  ldg_register_token(L);
  return 1;
}
