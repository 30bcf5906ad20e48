/*
 * ldg_engine.c - Lua binding of the HTTP engine (dg_engine.h):
 * core.engine(opts) -> dicomgcs.Engine, core.fetch(req).
 *
 * The engine userdata keeps its Lua values in user values (no registry refs):
 *   UV_PROVIDER  the token_provider function (or nil)
 *   UV_LIVE      table id -> anchor; an anchor holds the request's on_progress
 *                and every string whose bytes the C engine borrows (body,
 *                body_parts data) until the transfer is delivered.
 * Hooks (token provider, progress) run only inside dg_engine_step, outside
 * libcurl callbacks, each under lua_pcall through a trampoline that pushes
 * nothing but a C function, the engine and a light userdata before the call.
 * While the step runs, in_step is set and every engine method raises.
 */
#include <lua.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ldg.h"
#include "dg_engine.h"
#include "dg_hash.h"
#include "dg_mpsink.h"
#include "dg_pace.h"
#include "dg_signal.h"

#define LDG_ENGINE "dicomgcs.Engine"
#define LDG_FETCH_HOLD "dicomgcs.FetchResult"
#define LDG_MPSINK "dicomgcs.MultipartSink"

typedef struct mpsink_ud { dg_mpsink *s; } mpsink_ud;

enum { UV_PROVIDER = 1, UV_LIVE, UV_COUNT = UV_LIVE };

typedef struct ldg_engine {
  dg_engine *e;        /* NULL: closed */
  lua_State *L;        /* the calling thread, valid only while in_step */
  int in_step;
} ldg_engine;

typedef struct fetch_hold { dg_transfer *t; } fetch_hold;

/* ---------------------------------------------------------------- helpers */

static void copy_msg(char *dst, size_t n, const char *src) {
  snprintf(dst, n, "%s", src ? src : "");
}

static int tostring_protected(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* Copy a printable form of the value at idx into buf without raising. */
static void error_to_buf(lua_State *L, int idx, char *buf, size_t n) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING) { copy_msg(buf, n, lua_tostring(L, idx)); return; }
  int top = lua_gettop(L);
  lua_pushcfunction(L, tostring_protected);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING)
    copy_msg(buf, n, lua_tostring(L, -1));
  else
    copy_msg(buf, n, "(error value without a message)");
  lua_settop(L, top);
}

static double opt_number(lua_State *L, int idx, const char *where, const char *field, double min) {
  if (!lua_isnumber(L, idx) || lua_type(L, idx) != LUA_TNUMBER)
    luaL_error(L, "%s: field '%s' must be a number", where, field);
  double v = lua_tonumber(L, idx);
  if (!(v >= min) || v != v || v > 1e12) luaL_error(L, "%s: field '%s' must be >= %g", where, field, min);
  return v;
}

/* A string field; an embedded NUL is refused (C would see only the part before it). */
static const char *opt_string(lua_State *L, int idx, const char *where, const char *field) {
  size_t len;
  if (lua_type(L, idx) != LUA_TSTRING) luaL_error(L, "%s: field '%s' must be a string", where, field);
  const char *s = lua_tolstring(L, idx, &len);
  if (strlen(s) != len) luaL_error(L, "%s: field '%s' contains a NUL byte", where, field);
  return s;
}

/* A non-negative integer (a float with an integral value is accepted), raising otherwise. */
static int64_t opt_offset(lua_State *L, int idx, const char *where, const char *field) {
  int isint = 0;
  lua_Integer v = lua_type(L, idx) == LUA_TNUMBER ? lua_tointegerx(L, idx, &isint) : 0;
  if (!isint || v < 0) luaL_error(L, "%s: field '%s' must be an integer >= 0", where, field);
  return (int64_t)v;
}

static void check_table(lua_State *L, int idx, const char *where, const char *field) {
  if (lua_type(L, idx) != LUA_TTABLE) luaL_error(L, "%s: field '%s' must be a table", where, field);
}

/* Key at -2 during lua_next: its name, raising for a non-string key. */
static const char *key_name(lua_State *L, const char *where) {
  if (lua_type(L, -2) != LUA_TSTRING)
    luaL_error(L, "%s: unexpected key of type %s", where, luaL_typename(L, -2));
  return lua_tostring(L, -2);
}

/* ---------------------------------------------------------------- requests */

typedef struct req_scratch {
  dg_request r;
  const char **headers;
  dg_part_spec *parts;
  int has_progress;
} req_scratch;

static void anchor_string(lua_State *L, int anchor, int value_idx) {
  if (anchor == 0) return;
  value_idx = lua_absindex(L, value_idx);
  lua_pushvalue(L, value_idx);
  lua_rawseti(L, anchor, (lua_Integer)lua_rawlen(L, anchor) + 1);
}

static void parse_retry(lua_State *L, int idx, dg_retry_policy *p) {
  const char *w = "request.retry";
  check_table(L, idx, "request", "retry");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *k = key_name(L, w);
    if (strcmp(k, "max_attempts") == 0) {
      if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > 1000)
        luaL_error(L, "%s: field 'max_attempts' must be an integer in 1..1000", w);
      p->max_attempts = (int)lua_tointeger(L, -1);
    } else if (strcmp(k, "base_delay_ms") == 0) p->base_delay_ms = (int64_t)opt_number(L, -1, w, k, 0);
    else if (strcmp(k, "max_delay_ms") == 0) p->max_delay_ms = (int64_t)opt_number(L, -1, w, k, 0);
    else if (strcmp(k, "deadline_ms") == 0) p->deadline_ms = (int64_t)opt_number(L, -1, w, k, 0);
    else if (strcmp(k, "quota_base_delay_ms") == 0) p->quota_base_delay_ms = (int64_t)opt_number(L, -1, w, k, 0);
    else if (strcmp(k, "quota_max_delay_ms") == 0) p->quota_max_delay_ms = (int64_t)opt_number(L, -1, w, k, 0);
    else if (strcmp(k, "quota_budget_ms") == 0) p->quota_budget_ms = (int64_t)opt_number(L, -1, w, k, 0);
    else luaL_error(L, "%s: unknown field '%s'", w, k);
    lua_pop(L, 1);
  }
}

static void parse_timeout(lua_State *L, int idx, dg_request *r) {
  const char *w = "request.timeout";
  check_table(L, idx, "request", "timeout");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *k = key_name(L, w);
    double v = opt_number(L, -1, w, k, 0);
    if (strcmp(k, "connect") == 0) r->connect_timeout_ms = (long)(v * 1000);
    else if (strcmp(k, "idle") == 0) r->idle_timeout_s = (long)ceil(v);
    else if (strcmp(k, "total") == 0) r->total_timeout_ms = (long)(v * 1000);
    else luaL_error(L, "%s: unknown field '%s'", w, k);
    lua_pop(L, 1);
  }
}

/* Check the request table at idx and fill s. Strings stay owned by the Lua
 * tables (copied by dg_engine_submit, except body bytes, which are pushed
 * into the anchor table at `anchor` when anchor != 0). Scratch arrays are
 * userdata left on the stack. Raises on misuse, naming the field. */
static void parse_request(lua_State *L, int idx, req_scratch *s, int anchor) {
  const char *w = "request";
  int nbodies = 0;
  dg_part_spec *file_part = NULL;        /* body_file's part, for body_offset/body_length */
  int64_t body_offset = -1, body_length = -1;
  idx = lua_absindex(L, idx);
  luaL_checktype(L, idx, LUA_TTABLE);
  int ins = lua_gettop(L) + 1;           /* scratch userdata go here, below the iteration */
  dg_request_default(&s->r);
  s->headers = NULL;
  s->parts = NULL;
  s->has_progress = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *k = key_name(L, w);
    int v = lua_gettop(L);
    if (strcmp(k, "url") == 0) s->r.url = opt_string(L, v, w, k);
    else if (strcmp(k, "method") == 0) s->r.method = opt_string(L, v, w, k);
    else if (strcmp(k, "output_file") == 0) s->r.output_file = opt_string(L, v, w, k);
    else if (strcmp(k, "output_offset") == 0) s->r.output_offset = opt_offset(L, v, w, k);
    else if (strcmp(k, "body_offset") == 0) body_offset = opt_offset(L, v, w, k);
    else if (strcmp(k, "body_length") == 0) body_length = opt_offset(L, v, w, k);
    else if (strcmp(k, "noproxy") == 0) s->r.noproxy = opt_string(L, v, w, k);
    else if (strcmp(k, "delay") == 0) s->r.delay_ms = (int64_t)(opt_number(L, v, w, k, 0) * 1000);
    else if (strcmp(k, "hash") == 0) {
      const char *h = opt_string(L, v, w, k);
      if (strcmp(h, "crc32c") != 0) luaL_error(L, "%s: field 'hash' must be \"crc32c\"", w);
      s->r.hash = DG_HASH_CRC32C;
    }
    else if (strcmp(k, "headers") == 0) {
      size_t n = ldg_checklist(L, v, "request: field 'headers'");
      for (size_t i = 0; i < n; i++) {
        char hw[40];
        lua_rawgeti(L, v, (lua_Integer)i + 1);
        snprintf(hw, sizeof hw, "headers[%d]", (int)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
          luaL_error(L, "request: field 'headers' must be a list of \"Name: value\" strings");
        opt_string(L, -1, w, hw);
        lua_pop(L, 1);
      }
      s->headers = lua_newuserdatauv(L, (n ? n : 1) * sizeof *s->headers, 0);
      lua_insert(L, ins);
      v++;
      for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, v, (lua_Integer)i + 1);
        s->headers[i] = lua_tostring(L, -1);  /* referenced by the headers table */
        lua_pop(L, 1);
      }
      s->r.headers = s->headers;
      s->r.n_headers = n;
    } else if (strcmp(k, "body") == 0) {
      size_t len;
      if (lua_type(L, v) != LUA_TSTRING) luaL_error(L, "%s: field '%s' must be a string", w, k);
      const char *p = lua_tolstring(L, v, &len);   /* bytes: NULs allowed */
      s->parts = lua_newuserdatauv(L, sizeof *s->parts, 0);
      lua_insert(L, ins);
      v++;
      memset(s->parts, 0, sizeof *s->parts);
      s->parts[0].data = p; s->parts[0].len = len; s->parts[0].path = NULL;
      anchor_string(L, anchor, v);
      s->r.parts = s->parts; s->r.n_parts = 1; s->r.has_body = 1;
      nbodies++;
    } else if (strcmp(k, "body_file") == 0) {
      const char *p = opt_string(L, v, w, k);
      s->parts = lua_newuserdatauv(L, sizeof *s->parts, 0);
      lua_insert(L, ins);
      v++;
      memset(s->parts, 0, sizeof *s->parts);
      s->parts[0].data = NULL; s->parts[0].len = 0; s->parts[0].path = p;
      file_part = s->parts;
      s->r.parts = s->parts; s->r.n_parts = 1; s->r.has_body = 1;
      nbodies++;
    } else if (strcmp(k, "body_parts") == 0) {
      size_t n = ldg_checklist(L, v, "request: field 'body_parts'");
      s->parts = lua_newuserdatauv(L, (n ? n : 1) * sizeof *s->parts, 0);
      memset(s->parts, 0, (n ? n : 1) * sizeof *s->parts);
      lua_insert(L, ins);
      v++;
      for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, v, (lua_Integer)i + 1);
        int pi = lua_gettop(L);
        if (lua_type(L, pi) != LUA_TTABLE)
          luaL_error(L, "request: body_parts[%d] must be a table {data=} or {file=[, offset=, length=]}",
                     (int)i + 1);
        lua_pushliteral(L, "data");
        lua_rawget(L, pi);
        lua_pushliteral(L, "file");
        lua_rawget(L, pi);
        int has_d = lua_type(L, -2) == LUA_TSTRING, has_f = lua_type(L, -1) == LUA_TSTRING;
        if (has_d == has_f || (!has_d && !lua_isnil(L, -2)) || (!has_f && !lua_isnil(L, -1)))
          luaL_error(L, "request: body_parts[%d] needs exactly one of data (string) or file (path)",
                     (int)i + 1);
        lua_pushnil(L);
        while (lua_next(L, pi)) {
          const char *pk = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
          if (pk && (strcmp(pk, "offset") == 0 || strcmp(pk, "length") == 0)) {
            char pw[48];
            snprintf(pw, sizeof pw, "request: body_parts[%d]", (int)i + 1);
            if (!has_f) luaL_error(L, "%s: field '%s' applies only to a file part", pw, pk);
            int64_t x = opt_offset(L, -1, pw, pk);
            if (pk[0] == 'o') s->parts[i].offset = x;
            else { s->parts[i].length = x; s->parts[i].has_length = 1; }
          } else if (!pk || (strcmp(pk, "data") != 0 && strcmp(pk, "file") != 0))
            luaL_error(L, "request: body_parts[%d]: unknown field '%s'", (int)i + 1,
                       pk ? pk : luaL_typename(L, -2));
          lua_pop(L, 1);
        }
        if (has_d) {
          s->parts[i].data = lua_tolstring(L, -2, &s->parts[i].len);
          s->parts[i].path = NULL;
          anchor_string(L, anchor, -2);
        } else {
          s->parts[i].data = NULL;
          s->parts[i].len = 0;
          s->parts[i].path = opt_string(L, -1, "request: body_parts[]", "file");
        }
        lua_pop(L, 3);                   /* strings stay referenced by the part tables */
      }
      s->r.parts = s->parts; s->r.n_parts = n; s->r.has_body = 1;
      nbodies++;
    } else if (strcmp(k, "replay") == 0) {
      s->r.retry.replay = ldg_check_replay(L, v, "request");
    } else if (strcmp(k, "retry") == 0) {
      if (!lua_isnil(L, v)) parse_retry(L, v, &s->r.retry);
    } else if (strcmp(k, "timeout") == 0) {
      parse_timeout(L, v, &s->r);
    } else if (strcmp(k, "auth") == 0) {
      if (lua_type(L, v) != LUA_TBOOLEAN) luaL_error(L, "request: field 'auth' must be a boolean");
      s->r.auth = lua_toboolean(L, v);
    } else if (strcmp(k, "multipart_sink") == 0) {
      mpsink_ud *m = luaL_testudata(L, v, LDG_MPSINK);
      if (!m || !m->s) luaL_error(L, "request: field 'multipart_sink' must be an open core.multipart_sink");
      s->r.mp_sink = m->s;   /* the transfer holds its own reference */
    } else if (strcmp(k, "on_progress") == 0) {
      if (lua_type(L, v) != LUA_TFUNCTION) luaL_error(L, "request: field 'on_progress' must be a function");
      s->has_progress = 1;
      s->r.progress = 1;
      if (anchor) {
        lua_pushvalue(L, v);
        lua_setfield(L, anchor, "on_progress");
      }
    } else {
      luaL_error(L, "request: unknown field '%s'", k);
    }
    lua_settop(L, v - 1);
  }
  if (!s->r.url) luaL_error(L, "request: field 'url' is required (a string)");
  if (nbodies > 1) luaL_error(L, "request: give at most one of 'body', 'body_file', 'body_parts'");
  if ((body_offset >= 0 || body_length >= 0) && !file_part)
    luaL_error(L, "request: fields 'body_offset' and 'body_length' need 'body_file'");
  if (file_part) {
    if (body_offset >= 0) file_part->offset = body_offset;
    if (body_length >= 0) { file_part->length = body_length; file_part->has_length = 1; }
  }
  if (s->r.output_offset >= 0 && !s->r.output_file)
    luaL_error(L, "request: field 'output_offset' needs 'output_file'");
}

/* ---------------------------------------------------------------- results */

static void set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

/* Push res, err (one of them nil). */
static void push_result(lua_State *L, const dg_result *r) {
  if (r->ok && r->timer) {                   /* a timer: res = {timer = true} */
    lua_createtable(L, 0, 1);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "timer");
    lua_pushnil(L);
    return;
  }
  if (r->ok) {
    lua_createtable(L, 0, 7);
    set_int(L, "status", r->status);
    lua_createtable(L, 0, 8);
    const char *p = r->headers, *end = r->headers + r->headers_len;
    while (p < end) {
      const char *name = p;
      const char *val = name + strlen(name) + 1;
      if (val >= end) break;
      p = val + strlen(val) + 1;
      lua_getfield(L, -1, name);
      if (lua_type(L, -1) == LUA_TSTRING) {
        lua_pushliteral(L, ", ");
        lua_pushstring(L, val);
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushstring(L, val);
      }
      lua_setfield(L, -2, name);
    }
    lua_setfield(L, -2, "headers");
    if (r->has_body) {
      lua_pushlstring(L, r->body, r->body_len);
      lua_setfield(L, -2, "body");
      if (r->body_truncated) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "body_truncated");
      }
    }
    set_int(L, "attempts", r->attempts);
    set_int(L, "bytes_sent", r->bytes_sent);
    set_int(L, "bytes_received", r->bytes_received);
    if (r->has_crc32c) set_int(L, "crc32c", (lua_Integer)r->crc32c);
    lua_pushnil(L);
  } else {
    lua_pushnil(L);
    lua_createtable(L, 0, 6);
    lua_pushstring(L, r->kind);
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, r->message);
    lua_setfield(L, -2, "message");
    if (r->curl_code) set_int(L, "curl_code", r->curl_code);
    set_int(L, "attempts", r->attempts);
    lua_pushstring(L, r->url ? r->url : "");
    lua_setfield(L, -2, "url");
    if (r->status > 0) set_int(L, "status", r->status);
    if (r->ambiguous) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "ambiguous");
    }
  }
  if (r->ok && r->ambiguous) {         /* res is below the nil on the stack */
    lua_pushboolean(L, 1);
    lua_setfield(L, -3, "ambiguous");
  }
  if (r->quota_waits > 0) {            /* on res (below the nil) or on err (on top) */
    lua_pushinteger(L, r->quota_waits);
    lua_setfield(L, r->ok ? -3 : -2, "quota_waits");
  }
}

/* ---------------------------------------------------------------- hooks */

struct token_call { dg_engine *e; int force; char *err; size_t errlen; };

static int token_protected(lua_State *L) {
  struct token_call *c = lua_touserdata(L, 2);
  lua_getiuservalue(L, 1, UV_PROVIDER);
  lua_pushboolean(L, c->force);
  lua_call(L, 1, 2);
  if (lua_type(L, -2) == LUA_TSTRING) {
    size_t len;
    const char *tok = lua_tolstring(L, -2, &len);
    double exp = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
    if (dg_engine_set_token(c->e, tok, len, exp) != 0)
      copy_msg(c->err, c->errlen, "token_provider returned an unusable token "
               "(empty, or characters not allowed in a header)");
    return 0;
  }
  if (lua_isnil(L, -1)) copy_msg(c->err, c->errlen, "token_provider returned no token");
  else copy_msg(c->err, c->errlen, luaL_tolstring(L, -1, NULL));
  return 0;
}

static int token_hook(void *ud, dg_engine *e, int force, char *err, size_t errlen) {
  ldg_engine *u = ud;
  lua_State *L = u->L;
  struct token_call c = { e, force, err, errlen };
  err[0] = '\0';
  if (!L || !lua_checkstack(L, 8)) { copy_msg(err, errlen, "token_provider: Lua stack overflow"); return -1; }
  int top = lua_gettop(L);
  lua_pushcfunction(L, token_protected);
  lua_pushvalue(L, 1);                      /* the engine: index 1 of every method */
  lua_pushlightuserdata(L, &c);
  int st = lua_pcall(L, 2, 0, 0);
  if (st != LUA_OK) {
    char m[DG_ERRLEN - 32];
    error_to_buf(L, -1, m, sizeof m);
    snprintf(err, errlen, "token_provider: %s", m);
  }
  lua_settop(L, top);
  return err[0] ? -1 : 0;
}

struct progress_call { lua_Integer id; int64_t v[4]; };

static int progress_protected(lua_State *L) {
  struct progress_call *c = lua_touserdata(L, 2);
  lua_getiuservalue(L, 1, UV_LIVE);
  if (lua_type(L, -1) != LUA_TTABLE) return 0;
  if (lua_rawgeti(L, -1, c->id) != LUA_TTABLE) return 0;
  lua_pushliteral(L, "on_progress");
  if (lua_rawget(L, -2) != LUA_TFUNCTION) return 0;
  for (int i = 0; i < 4; i++) lua_pushinteger(L, (lua_Integer)c->v[i]);
  lua_call(L, 4, 0);
  return 0;
}

static int progress_hook(void *ud, dg_engine *e, int64_t id, int64_t s, int64_t st, int64_t r,
                         int64_t rt, char *err, size_t errlen) {
  ldg_engine *u = ud;
  lua_State *L = u->L;
  struct progress_call c = { (lua_Integer)id, { s, st, r, rt } };
  (void)e;
  if (!L || !lua_checkstack(L, 10)) { copy_msg(err, errlen, "on_progress: Lua stack overflow"); return -1; }
  int top = lua_gettop(L);
  lua_pushcfunction(L, progress_protected);
  lua_pushvalue(L, 1);
  lua_pushlightuserdata(L, &c);
  int rc = 0;
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    char m[DG_ERRLEN - 32];
    error_to_buf(L, -1, m, sizeof m);
    snprintf(err, errlen, "on_progress: %s", m);
    rc = -1;
  }
  lua_settop(L, top);
  return rc;
}

/* ---------------------------------------------------------------- engine */

static ldg_engine *check_engine(lua_State *L) {
  ldg_engine *u = luaL_checkudata(L, 1, LDG_ENGINE);
  if (u->in_step)
    luaL_error(L, "dicomgcs engine: re-entered from a callback (on_progress or token_provider); "
               "the engine cannot be used until the callback returns");
  if (!u->e) luaL_error(L, "dicomgcs engine: the engine is closed");
  return u;
}

/* wake: let Ctrl-C end the step early while a core.sigint_guard is open. */
static int run_step(lua_State *L, ldg_engine *u, int timeout_ms, int wake) {
  u->L = L;
  u->in_step = 1;
  dg_engine_set_wake_fd(u->e, wake ? dg_sigint_fd() : -1);
  int n = dg_engine_step(u->e, timeout_ms);
  u->in_step = 0;
  u->L = NULL;
  return n;
}

/* Engine at 1, request at 2: returns the id (anchor registered in UV_LIVE). */
static lua_Integer submit(lua_State *L, ldg_engine *u) {
  req_scratch s;
  char err[DG_ERRLEN];
  lua_settop(L, 2);
  int base = 2;
  lua_getiuservalue(L, 1, UV_LIVE);          /* base+1 */
  lua_newtable(L);                           /* base+2: anchor */
  parse_request(L, 2, &s, base + 2);
  int64_t id = dg_engine_next_id(u->e);
  lua_pushvalue(L, base + 2);
  lua_rawseti(L, base + 1, (lua_Integer)id); /* may raise: nothing in C yet */
  int64_t got = dg_engine_submit(u->e, &s.r, err, sizeof err);
  if (got < 0) {
    lua_pushnil(L);
    lua_rawseti(L, base + 1, (lua_Integer)id);
    luaL_error(L, "%s", err);
  }
  lua_settop(L, base);
  return (lua_Integer)got;
}

/* Push {id=, res=|err=} / res, err for a done transfer, then release it. */
static void deliver_forget(lua_State *L, ldg_engine *u, dg_transfer *t) {
  lua_getiuservalue(L, 1, UV_LIVE);
  lua_pushnil(L);
  lua_rawseti(L, -2, (lua_Integer)dg_transfer_id(t));
  lua_pop(L, 1);
  dg_engine_done_release(u->e, t);
}

static int eng_submit(lua_State *L) {
  ldg_engine *u = check_engine(L);
  lua_pushinteger(L, submit(L, u));
  return 1;
}

/* Blocking: lua.c's Ctrl-C hook cannot run until this returns, so the wait catches SIGINT itself:
 * the transfer is cancelled (its temporary file removed), then the SIGINT is handed back to the
 * handler from before (lua.c raises "interrupted!" as soon as Lua runs again; nested in a guard,
 * that guard sees it). */
static int eng_request(lua_State *L) {
  ldg_engine *u = check_engine(L);
  lua_Integer id = submit(L, u);
  dg_transfer *t;
  int guarded = dg_sigint_arm() >= 0, interrupted = 0;
  while (!(t = dg_engine_done_find(u->e, id))) {
    run_step(L, u, 1000, guarded);
    if (guarded && !interrupted && dg_sigint_take()) {
      interrupted = 1;
      dg_engine_cancel(u->e, (int64_t)id);
    }
  }
  /* the guard goes before anything that may raise (pushing the result allocates): an arm left
   * behind would keep SIGINT caught for the rest of the process. lua.c's hook, set by pass_on,
   * runs only once Lua code runs again. */
  if (interrupted) dg_sigint_pass_on();
  else if (guarded) dg_sigint_disarm();
  push_result(L, dg_transfer_result(t));
  deliver_forget(L, u, t);
  if (interrupted && lua_istable(L, -1)) {   /* cancelled by the Ctrl-C, not by anyone's call */
    lua_pushliteral(L, "interrupted");
    lua_setfield(L, -2, "kind");
    lua_pushliteral(L, "interrupted (Ctrl-C)");
    lua_setfield(L, -2, "message");
  }
  return 2;
}

static int eng_step(lua_State *L) {
  ldg_engine *u = check_engine(L);
  lua_Integer ms = luaL_optinteger(L, 2, 1000);
  if (ms < 0) ms = 0;
  if (ms > 3600000) ms = 3600000;
  lua_settop(L, 1);
  lua_newtable(L);                            /* 2: the list */
  run_step(L, u, dg_engine_done_first(u->e) ? 0 : (int)ms, 1);
  lua_Integer i = 0;
  dg_transfer *t;
  while ((t = dg_engine_done_first(u->e))) {
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)dg_transfer_id(t));
    lua_setfield(L, -2, "id");
    push_result(L, dg_transfer_result(t));
    lua_setfield(L, -3, "err");
    lua_setfield(L, -2, "res");
    lua_rawseti(L, 2, ++i);
    deliver_forget(L, u, t);                  /* only after its table is complete */
  }
  return 1;
}

static int eng_timer(lua_State *L) {
  ldg_engine *u = check_engine(L);
  double s = luaL_checknumber(L, 2);
  luaL_argcheck(L, s >= 0 && s <= 1e9, 2, "seconds must be in 0..1e9");
  char err[DG_ERRLEN];
  int64_t id = dg_engine_timer(u->e, (int64_t)(s * 1000), err, sizeof err);
  if (id < 0) return luaL_error(L, "%s", err);
  lua_pushinteger(L, (lua_Integer)id);
  return 1;
}

static int eng_pending(lua_State *L) {
  ldg_engine *u = check_engine(L);
  lua_pushinteger(L, (lua_Integer)dg_engine_pending(u->e));
  return 1;
}

static int eng_cancel(lua_State *L) {
  ldg_engine *u = check_engine(L);
  lua_Integer id = luaL_checkinteger(L, 2);
  lua_pushboolean(L, dg_engine_cancel(u->e, (int64_t)id));
  return 1;
}

static int eng_stats(lua_State *L) {
  ldg_engine *u = check_engine(L);
  dg_engine_stats s;
  dg_engine_stats_get(u->e, &s);
  lua_createtable(L, 0, 8);
  set_int(L, "in_flight", s.in_flight);
  set_int(L, "cap", s.cap);
  set_int(L, "queued", s.queued);
  set_int(L, "waiting", s.waiting);
  set_int(L, "completed", s.completed);
  set_int(L, "retries", s.retries);
  set_int(L, "bytes_sent", s.bytes_sent);
  set_int(L, "bytes_received", s.bytes_received);
  set_int(L, "quota_waits", s.quota_waits);
  lua_pushnumber(L, (lua_Number)s.throttle_wait_ms / 1000.0);
  lua_setfield(L, -2, "throttle_wait");
  return 1;
}

static void engine_release(lua_State *L, ldg_engine *u) {
  if (u->e) {
    dg_engine_free(u->e);
    u->e = NULL;
  }
  lua_pushnil(L);
  lua_setiuservalue(L, 1, UV_LIVE);
  lua_pushnil(L);
  lua_setiuservalue(L, 1, UV_PROVIDER);
}

static int eng_close(lua_State *L) {
  ldg_engine *u = luaL_checkudata(L, 1, LDG_ENGINE);
  if (u->in_step) luaL_error(L, "dicomgcs engine: cannot close the engine from its own callback");
  engine_release(L, u);
  return 0;
}

static int eng_gc(lua_State *L) {            /* __gc and __close: idempotent */
  ldg_engine *u = luaL_checkudata(L, 1, LDG_ENGINE);
  if (!u->in_step) engine_release(L, u);
  return 0;
}

static int eng_tostring(lua_State *L) {
  ldg_engine *u = luaL_checkudata(L, 1, LDG_ENGINE);
  if (u->e) lua_pushfstring(L, "dicomgcs.Engine (%p)", (void *)u);
  else lua_pushliteral(L, "dicomgcs.Engine (closed)");
  return 1;
}

static int l_engine(lua_State *L) {
  const char *w = "engine";
  dg_engine_opts o;
  dg_engine_opts_default(&o);
  if (lua_isnoneornil(L, 1)) { lua_settop(L, 0); lua_newtable(L); }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  int has_provider = 0;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    const char *k = key_name(L, w);
    if (strcmp(k, "concurrency") == 0) {
      if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > 10000)
        luaL_error(L, "engine: field 'concurrency' must be an integer in 1..10000");
      o.concurrency = (int)lua_tointeger(L, -1);
    } else if (strcmp(k, "user_agent") == 0) o.user_agent = opt_string(L, -1, w, k);
    else if (strcmp(k, "ca_file") == 0) o.ca_file = opt_string(L, -1, w, k);
    else if (strcmp(k, "proxy") == 0) o.proxy = opt_string(L, -1, w, k);
    else if (strcmp(k, "connect_timeout") == 0) o.connect_timeout_ms = (long)(opt_number(L, -1, w, k, 0) * 1000);
    else if (strcmp(k, "idle_timeout") == 0) o.idle_timeout_s = (long)ceil(opt_number(L, -1, w, k, 0));
    else if (strcmp(k, "http2_uploads") == 0) {
      if (!lua_isboolean(L, -1)) luaL_error(L, "engine: field 'http2_uploads' must be a boolean");
      o.http2_uploads = lua_toboolean(L, -1);
    } else if (strcmp(k, "token_provider") == 0) {
      if (lua_type(L, -1) != LUA_TFUNCTION) luaL_error(L, "engine: field 'token_provider' must be a function");
      has_provider = 1;
    } else luaL_error(L, "engine: unknown field '%s'", k);
    lua_pop(L, 1);
  }
  ldg_engine *u = lua_newuserdatauv(L, sizeof *u, UV_COUNT);   /* 2 */
  u->e = NULL;                                                  /* closed until built */
  u->L = NULL;
  u->in_step = 0;
  luaL_setmetatable(L, LDG_ENGINE);
  lua_getfield(L, 1, "token_provider");
  lua_setiuservalue(L, 2, UV_PROVIDER);
  lua_newtable(L);
  lua_setiuservalue(L, 2, UV_LIVE);
  o.progress = progress_hook;
  o.token = has_provider ? token_hook : NULL;
  o.hook_ud = u;
  dg_allocator a;
  a.realloc = lua_getallocf(L, &a.ud);
  char err[DG_ERRLEN];
  u->e = dg_engine_new(&a, &o, err, sizeof err);       /* copies the strings of o */
  if (!u->e) luaL_error(L, "engine: %s", err);
  return 1;
}

/* ------------------------------------------------------- multipart sink */

/* core.multipart_sink(dir) -> sink: give it as a request's `multipart_sink`; afterwards
 * sink:parts() -> { {path=, size=}, ... } (complete parts, which the caller now owns),
 * sink:complete() -> bool, sink:error() -> message, kind ("io": ours, "transport": the
 * response's) | nil, sink:close() (removes what was not taken). */
static dg_mpsink *sink_check(lua_State *L) {
  mpsink_ud *m = luaL_checkudata(L, 1, LDG_MPSINK);
  if (!m->s) luaL_error(L, "multipart sink: closed");
  if (dg_mpsink_busy(m->s)) luaL_error(L, "multipart sink: a transfer is still writing into it");
  return m->s;
}

static int l_multipart_sink(lua_State *L) {
  size_t len;
  const char *dir = luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, len > 0 && strlen(dir) == len, 1, "a folder path (not empty, no NUL byte)");
  mpsink_ud *m = lua_newuserdatauv(L, sizeof *m, 0);
  m->s = NULL;
  luaL_setmetatable(L, LDG_MPSINK);
  m->s = dg_mpsink_new(dg_default_allocator(), dir);
  if (!m->s) luaL_error(L, "multipart sink: out of memory");
  return 1;
}

static int sink_parts(lua_State *L) {
  dg_mpsink *s = sink_check(L);
  size_t n = dg_mpsink_count(s);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    uint64_t size = 0;
    const char *p = dg_mpsink_path(s, i, &size);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, p);
    lua_setfield(L, -2, "path");
    lua_pushinteger(L, (lua_Integer)size);
    lua_setfield(L, -2, "size");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  dg_mpsink_take(s);
  return 1;
}

static int sink_complete(lua_State *L) {
  lua_pushboolean(L, dg_mpsink_complete(sink_check(L)));
  return 1;
}

static int sink_error(lua_State *L) {
  dg_mpsink *s = sink_check(L);
  const char *e = dg_mpsink_error(s);
  if (!*e) { lua_pushnil(L); return 1; }
  lua_pushstring(L, e);
  lua_pushstring(L, dg_mpsink_local_error(s) ? "io" : "transport");
  return 2;
}

static int sink_gc(lua_State *L) {
  mpsink_ud *m = luaL_checkudata(L, 1, LDG_MPSINK);
  if (m->s) { dg_mpsink_release(m->s); m->s = NULL; }
  return 0;
}

/* ---------------------------------------------------------------- fetch */

static int hold_gc(lua_State *L) {
  fetch_hold *h = luaL_checkudata(L, 1, LDG_FETCH_HOLD);
  if (h->t) { dg_transfer_free(h->t); h->t = NULL; }
  return 0;
}

static int l_fetch(lua_State *L) {
  req_scratch s;
  char err[DG_ERRLEN];
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  fetch_hold *h = lua_newuserdatauv(L, sizeof *h, 0);   /* 2: frees the transfer if we raise */
  h->t = NULL;
  luaL_setmetatable(L, LDG_FETCH_HOLD);
  parse_request(L, 1, &s, 0);
  if (s.has_progress) luaL_error(L, "request: field 'on_progress' is not supported by fetch");
  dg_allocator a;
  a.realloc = lua_getallocf(L, &a.ud);
  h->t = dg_fetch(&a, NULL, &s.r, err, sizeof err);
  if (!h->t) luaL_error(L, "%s", err);
  push_result(L, dg_transfer_result(h->t));
  dg_transfer_free(h->t);
  h->t = NULL;
  return 2;
}

void ldg_register_engine(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "submit", eng_submit }, { "request", eng_request }, { "step", eng_step }, { "timer", eng_timer },
    { "pending", eng_pending }, { "cancel", eng_cancel }, { "stats", eng_stats },
    { "close", eng_close }, { NULL, NULL }
  };
  static const luaL_Reg meta[] = {
    { "__gc", eng_gc }, { "__close", eng_gc }, { "__tostring", eng_tostring }, { NULL, NULL }
  };
  static const luaL_Reg hold_meta[] = { { "__gc", hold_gc }, { NULL, NULL } };
  ldg_define_class(L, LDG_ENGINE, meta, methods);
  ldg_define_class(L, LDG_FETCH_HOLD, hold_meta, NULL);
  static const luaL_Reg sink_methods[] = {
    { "parts", sink_parts }, { "complete", sink_complete }, { "error", sink_error },
    { "close", sink_gc }, { NULL, NULL }
  };
  static const luaL_Reg sink_meta[] = { { "__gc", sink_gc }, { "__close", sink_gc }, { NULL, NULL } };
  ldg_define_class(L, LDG_MPSINK, sink_meta, sink_methods);
  lua_pushcfunction(L, l_multipart_sink);
  lua_setfield(L, -2, "multipart_sink");
  lua_pushcfunction(L, l_engine);
  lua_setfield(L, -2, "engine");
  lua_pushcfunction(L, l_fetch);
  lua_setfield(L, -2, "fetch");
  /* how many an engine left to choose may run at once: what schedulers hand it at most */
  lua_pushinteger(L, DG_PACE_MAX);
  lua_setfield(L, -2, "max_in_flight");
}
