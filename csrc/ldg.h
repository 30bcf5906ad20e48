/*
 * ldg.h - the Lua binding of the dicomgcs C core.
 *
 * Only files named ldg_*.c include lua.h. Each binding file adds its
 * functions to the module table that luaopen_dicomgcs_core (ldg_core.c)
 * leaves on the top of the stack; none of them may leave anything else
 * on the stack.
 */
#ifndef LDG_H
#define LDG_H

#include <lua.h>
#include <lauxlib.h>

#if defined(__GNUC__)
#define LDG_API __attribute__((visibility("default")))
#else
#define LDG_API
#endif

/* engine(opts), fetch(req): the HTTP engine (ldg_engine.c) */
void ldg_register_engine(lua_State *L);
/* dicom_header(bytes [, complete]), multipart_parser(content_type): parsers (ldg_parse.c) */
void ldg_register_parsers(lua_State *L);
/* mkdir_p, mkdir_under, stat, listdir, create_temp, atomic_write/open, append_open (ldg_fs.c) */
void ldg_register_fs(lua_State *L);
/* jwt_sign_rs256(...), secure token helpers (ldg_auth.c) */
void ldg_register_auth(lua_State *L);
/* classify, backoff: the one retry classification (ldg_retry.c) */
void ldg_register_retry(lua_State *L);
/* "safe" | "never-ambiguous" (nil: safe) at idx -> DG_REPLAY_*; raises otherwise */
int ldg_check_replay(lua_State *L, int idx, const char *where);
/* crc32c, crc32c_combine, crc32c_b64, hash_file: Cloud Storage checksums (ldg_hash.c) */
void ldg_register_hash(lua_State *L);

/* token_cache(): the access-token cache of dg_token.h (ldg_token.c) */
void ldg_register_token(lua_State *L);

/* Create the metatable `name` once per state (luaL_newmetatable, so it also gets __name):
 * `meta` holds its metamethods (__gc, __close, __tostring…), `methods` (may be NULL) becomes
 * its __index. Leaves the stack as it was. (ldg_core.c) */
void ldg_define_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods);

/* The string argument at `arg`, raising when it is not a string or holds a NUL byte (a C
 * function would silently see only the part before it: a path or header cut short). */
const char *ldg_checkcstring(lua_State *L, int arg);

/* Length of the list at idx, raising (naming `what`) unless its keys are exactly 1..n: a
 * hole or a stray key would otherwise be skipped or read as NULL. */
size_t ldg_checklist(lua_State *L, int idx, const char *what);

LDG_API int luaopen_dicomgcs_core(lua_State *L);

#endif
