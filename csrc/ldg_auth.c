/*
 * ldg_auth.c - Lua binding of the authentication helpers (dg_jwt, dg_base64).
 *
 *   core.jwt_sign_rs256(pem_key, header_json, claims_json) -> jwt | nil, err
 *   core.base64url_encode(s) -> string
 *   core.base64url_decode(s) -> string | nil, err
 *   core.random_hex(nbytes) -> string           (OpenSSL RAND_bytes)
 *
 * Misuse (a non-string argument) raises; a bad key returns nil, err. The
 * error text never contains key material; the Lua layer adds which
 * credential file the key came from.
 */
#include <lauxlib.h>
#include <stdlib.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "ldg.h"
#include "dg_base64.h"
#include "dg_jwt.h"

struct push_args { const char *p; size_t n; };
static int push_protected(lua_State *L) {
  struct push_args *a = lua_touserdata(L, 1);
  lua_pushlstring(L, a->p, a->n);
  return 1;
}

static int l_jwt_sign_rs256(lua_State *L) {
  size_t pem_len, hlen, clen, jwt_len = 0;
  const char *pem = luaL_checklstring(L, 1, &pem_len);
  const char *hdr = luaL_checklstring(L, 2, &hlen);
  const char *claims = luaL_checklstring(L, 3, &clen);
  char *jwt = NULL;
  char err[256];
  dg_jwt_status st = dg_jwt_sign_rs256(pem, pem_len, hdr, hlen, claims, clen, &jwt, &jwt_len, err, sizeof err);
  if (st != DG_JWT_OK) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  /* Push under lua_pcall so an out-of-memory error cannot skip the wipe. */
  {
    struct push_args a = { jwt, jwt_len };
    int rc;
    lua_pushcfunction(L, push_protected);
    lua_pushlightuserdata(L, &a);
    rc = lua_pcall(L, 1, 1, 0);
    dg_jwt_free(jwt, jwt_len + 1);
    if (rc != LUA_OK) return lua_error(L);
  }
  return 1;
}

static int l_b64url_encode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  char *dst = luaL_buffinitsize(L, &b, dg_b64url_encoded_len(n) + 1);
  size_t len = dg_b64url_encode((const unsigned char *)s, n, dst);
  luaL_pushresultsize(&b, len);
  return 1;
}

static int l_b64url_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  unsigned char *dst = (unsigned char *)luaL_buffinitsize(L, &b, (n / 4 + 1) * 3);
  size_t len = dg_b64url_decode(s, n, dst);
  if (len == (size_t)-1) {
    luaL_pushresultsize(&b, 0);
    lua_pop(L, 1);
    luaL_pushfail(L);
    lua_pushliteral(L, "invalid base64url text");
    return 2;
  }
  luaL_pushresultsize(&b, len);
  return 1;
}

static int l_random_hex(lua_State *L) {
  static const char hex[] = "0123456789abcdef";
  lua_Integer n = luaL_optinteger(L, 1, 16);
  unsigned char raw[64];
  char out[129];
  int i;
  luaL_argcheck(L, n > 0 && n <= 64, 1, "1..64 bytes");
  if (RAND_bytes(raw, (int)n) != 1) {
    luaL_pushfail(L);
    lua_pushliteral(L, "RAND_bytes failed");
    return 2;
  }
  for (i = 0; i < n; i++) {
    out[2 * i] = hex[raw[i] >> 4];
    out[2 * i + 1] = hex[raw[i] & 15];
  }
  OPENSSL_cleanse(raw, sizeof raw);
  lua_pushlstring(L, out, (size_t)(2 * n));
  return 1;
}

void ldg_register_auth(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"jwt_sign_rs256", l_jwt_sign_rs256},
    {"base64url_encode", l_b64url_encode},
    {"base64url_decode", l_b64url_decode},
    {"random_hex", l_random_hex},
    {NULL, NULL}
  };
  luaL_setfuncs(L, fns, 0);
}
