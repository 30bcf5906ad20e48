/*
 * ldg_retry.c - the retry classification of dg_retry.c for the Lua layers, so that the
 * engine, errors.lua, auth, resumable uploads and the queue decide alike:
 *   core.classify{status=, curl_code=, sent=, replay=} -> "ok"|"retry"|"throttle"|"quota"|
 *                                                         "ambiguous"|"fatal"
 *   core.backoff(class, attempts) -> ms   (the engine's default delay policy)
 */
#include <lauxlib.h>
#include <string.h>

#include "ldg.h"
#include "dg_retry.h"

int ldg_check_replay(lua_State *L, int idx, const char *where) {
  if (lua_isnil(L, idx)) return DG_REPLAY_SAFE;
  const char *v = lua_tostring(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING && strcmp(v, "safe") == 0) return DG_REPLAY_SAFE;
  if (lua_type(L, idx) == LUA_TSTRING && strcmp(v, "never-ambiguous") == 0) return DG_REPLAY_NEVER_AMBIGUOUS;
  return luaL_error(L, "%s: field 'replay' must be \"safe\" or \"never-ambiguous\"", where);
}

static lua_Integer opt_int_field(lua_State *L, const char *k, lua_Integer def) {
  lua_getfield(L, 1, k);
  lua_Integer v = def;
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1)) luaL_error(L, "classify: field '%s' must be an integer", k);
    v = lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static int l_classify(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer status = opt_int_field(L, "status", 0);
  lua_Integer curl_code = opt_int_field(L, "curl_code", 0);
  lua_getfield(L, 1, "sent");
  int sent = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);   /* unknown: assume it went out */
  lua_getfield(L, 1, "replay");
  int replay = ldg_check_replay(L, -1, "classify");
  lua_pop(L, 2);
  lua_pushstring(L, dg_retry_class_name(dg_retry_classify((long)status, (int)curl_code, sent, replay)));
  return 1;
}

static uint64_t draw(void *ud) {
  uint64_t *s = ud;
  return dg_random_splitmix(s);
}

static int l_backoff(lua_State *L) {
  const char *cls = luaL_checkstring(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 1 && n <= 1000000, 2, "attempts must be in 1..1000000");   /* fits an int */
  static uint64_t seed;
  if (!seed) seed = (uint64_t)dg_clock_monotonic_ms(NULL) | 1;
  dg_retry_policy p;
  dg_retry_policy_default(&p);
  int64_t d = strcmp(cls, "quota") == 0 ? dg_quota_backoff_ms(&p, (int)n, draw, &seed)
                                        : dg_backoff_ms(&p, (int)n, draw, &seed);
  lua_pushinteger(L, (lua_Integer)d);
  return 1;
}

void ldg_register_retry(lua_State *L) {
  static const luaL_Reg fns[] = { {"classify", l_classify}, {"backoff", l_backoff}, {NULL, NULL} };
  luaL_setfuncs(L, fns, 0);
}
