/*
 * ldg_token.c - core.token_cache(): the engine's token cache (dg_token.h) for the
 * Lua auth layer, so that a token fetched by auth.Provider follows the same refresh
 * rule as the engine's. Times are seconds on the caller's monotonic clock (the auth
 * layer injects one in specs). The token bytes live in C and are wiped on replace,
 * clear, close and collection.
 *
 *   local tc = core.token_cache()
 *   tc:set(token, expires_in, fetched_at [, static]) -> true | nil, message
 *   tc:get(now) -> token, seconds_left, fresh (bool) | nil   (nil: none, or expired)
 *   tc:postpone(now)   tc:clear()   tc:generation()
 *   core.token_margin(lifetime) -> seconds before expiry a token of that lifetime is refreshed
 */
#include <math.h>
#include <string.h>

#include "ldg.h"
#include "dg_token.h"

#define LDG_TOKEN "dicomgcs.TokenCache"

typedef struct { dg_token t; dg_allocator a; int open; } ldg_token;

static ldg_token *check(lua_State *L) {
  ldg_token *u = luaL_checkudata(L, 1, LDG_TOKEN);
  if (!u->open) luaL_error(L, "token cache: closed");
  return u;
}

static int64_t ms_arg(lua_State *L, int i) {
  double s = luaL_checknumber(L, i);
  luaL_argcheck(L, s == s && fabs(s) < 1e12, i, "time out of range");
  return (int64_t)floor(s * 1000);
}

static int tc_set(lua_State *L) {
  ldg_token *u = check(L);
  size_t len;
  const char *tok = luaL_checklstring(L, 2, &len);
  double exp = luaL_checknumber(L, 3);
  int64_t at = ms_arg(L, 4);
  if (dg_token_set(&u->t, tok, len, exp, at, lua_toboolean(L, 5)) != 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "unusable token (empty, or characters not allowed in a header)");
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int tc_get(lua_State *L) {
  ldg_token *u = check(L);
  int64_t now = ms_arg(L, 2);
  if (!dg_token_valid(&u->t, now)) { lua_pushnil(L); return 1; }
  lua_pushlstring(L, u->t.value.data, u->t.value.len);
  int64_t left = (u->t.expiry_ms - now) / 1000;
  lua_pushinteger(L, left < 1 ? 1 : (lua_Integer)left);
  lua_pushboolean(L, dg_token_fresh(&u->t, now));
  return 3;
}

static int tc_postpone(lua_State *L) {
  ldg_token *u = check(L);
  dg_token_postpone(&u->t, ms_arg(L, 2));
  return 0;
}

static int tc_clear(lua_State *L) {
  dg_token_clear(&check(L)->t);
  return 0;
}

static int tc_generation(lua_State *L) {
  lua_pushinteger(L, check(L)->t.gen);
  return 1;
}

static int tc_gc(lua_State *L) {
  ldg_token *u = luaL_checkudata(L, 1, LDG_TOKEN);
  if (u->open) { u->open = 0; dg_token_free(&u->t); }
  return 0;
}

static int tc_tostring(lua_State *L) {
  luaL_checkudata(L, 1, LDG_TOKEN);
  lua_pushliteral(L, "dicomgcs.TokenCache");   /* never the token */
  return 1;
}

static int l_token_cache(lua_State *L) {
  ldg_token *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->open = 0;
  luaL_setmetatable(L, LDG_TOKEN);
  u->a.realloc = lua_getallocf(L, &u->a.ud);
  dg_token_init(&u->t, &u->a);
  u->open = 1;
  return 1;
}

static int l_token_margin(lua_State *L) {
  double life = luaL_checknumber(L, 1);
  lua_pushnumber(L, (double)dg_token_margin_ms((int64_t)(life * 1000)) / 1000.0);
  return 1;
}

void ldg_register_token(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "set", tc_set }, { "get", tc_get }, { "postpone", tc_postpone }, { "clear", tc_clear },
    { "generation", tc_generation }, { "close", tc_gc }, { NULL, NULL }
  };
  static const luaL_Reg meta[] = {
    { "__gc", tc_gc }, { "__close", tc_gc }, { "__tostring", tc_tostring }, { NULL, NULL }
  };
  ldg_define_class(L, LDG_TOKEN, meta, methods);
  lua_pushcfunction(L, l_token_cache);
  lua_setfield(L, -2, "token_cache");
  lua_pushcfunction(L, l_token_margin);
  lua_setfield(L, -2, "token_margin");
}
