/*
 * dicomgcs_host.c - a C program that embeds Lua 5.4 and dicomgcs.
 *
 *   dicomgcs_host SCRIPT [ARGS...]     (SCRIPT "-" reads standard input)
 *
 * Shows what a host application does to offer dicomgcs to its own scripts:
 *   - it links the C core statically (the objects in build/obj) and registers
 *     luaopen_dicomgcs_core in package.preload["dicomgcs.core"], so no
 *     core.so is looked up and only one Lua VM (the host's) exists;
 *   - it puts the Lua half (the dicomgcs folder of .lua files) on
 *     package.path: the folder named by $DICOMGCS_LUA_DIR, else the one
 *     compiled in with -DDICOMGCS_LUA_DIR (the source tree's lua/ by default,
 *     or an installed share/lua/5.4);
 *   - it runs SCRIPT with the rest of the command line in the global `arg`
 *     (arg[0] = SCRIPT) and as the chunk's `...`, like lua.c;
 *   - a Lua error is printed with a traceback (a message handler like
 *     lua.c's, so a dicomgcs.Error prints through its __tostring) and the
 *     exit status is 1; a script's os.exit(code) is kept.
 * Ctrl-C interrupts the script at the next Lua instruction (as in lua.c).
 * The host owns the lua_State and closes it before exiting, so finalizers
 * (the engine's __gc) run.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "ldg.h" /* luaopen_dicomgcs_core */

#ifndef DICOMGCS_LUA_DIR
#define DICOMGCS_LUA_DIR "lua"
#endif

static const char *progname = "dicomgcs_host";
static lua_State *running_state = NULL; /* for the SIGINT handler only */

static void on_stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

/* Signal handler, as lua.c's laction: lua_sethook is the one Lua call
 * documented as safe from a signal handler. */
static void on_sigint(int sig) {
  int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
  signal(sig, SIG_DFL); /* a second Ctrl-C kills the process */
  if (running_state != NULL) lua_sethook(running_state, on_stop_hook, flag, 1);
}

/* Message handler after lua.c's: turn any error object into a string and
 * append a traceback. Unlike lua.c it keeps the traceback for objects with a
 * __tostring too (a dicomgcs.Error raised by assert), which is where a
 * pipeline's author needs it most. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static void report(lua_State *L, const char *what) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "%s: %s%s\n", progname, what, msg ? msg : "(error object is not a string)");
  fflush(stderr);
  lua_pop(L, 1);
}

/* package.preload["dicomgcs.core"] = luaopen_dicomgcs_core */
static void preload_core(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_dicomgcs_core);
  lua_setfield(L, -2, "dicomgcs.core");
  lua_pop(L, 1);
}

/* package.path = DIR/?.lua;DIR/?/init.lua;<previous package.path> */
static void set_lua_path(lua_State *L) {
  const char *dir = getenv("DICOMGCS_LUA_DIR");
  if (dir == NULL || dir[0] == '\0') dir = DICOMGCS_LUA_DIR;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 2);
}

/* arg = { [-1] = progname, [0] = script, ARGS... }; pushes ARGS for `...` */
static int push_args(lua_State *L, int argc, char **argv, int script) {
  int i, n = argc - script - 1;
  lua_createtable(L, n, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
  return n;
}

struct run_ctx { int argc; char **argv; int script; };

/* Everything that may raise runs here, under lua_pcall. */
static int run_protected(lua_State *L) {
  struct run_ctx *c = lua_touserdata(L, 1);
  const char *script = c->argv[c->script];
  int nargs, status;
  luaL_openlibs(L);
  preload_core(L);
  set_lua_path(L);
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);
  lua_pushcfunction(L, msghandler);
  status = luaL_loadfile(L, strcmp(script, "-") == 0 ? NULL : script);
  if (status != LUA_OK) return lua_error(L); /* "cannot open"/syntax error, as is */
  nargs = push_args(L, c->argc, c->argv, c->script);
  running_state = L;
  signal(SIGINT, on_sigint);
  status = lua_pcall(L, nargs, 0, lua_gettop(L) - nargs - 1);
  signal(SIGINT, SIG_DFL);
  running_state = NULL;
  lua_pushboolean(L, status == LUA_OK);
  if (status != LUA_OK) lua_insert(L, -2); /* ... false, message */
  return status == LUA_OK ? 1 : 2;
}

static void usage(FILE *out) {
  fprintf(out,
    "usage: %s SCRIPT [ARGS...]\n"
    "Runs a Lua 5.4 script with dicomgcs built in (SCRIPT '-' reads stdin).\n"
    "The script gets ARGS in `arg` and `...`. DICOMGCS_LUA_DIR overrides the folder\n"
    "holding dicomgcs/*.lua (compiled in: %s).\n", progname, DICOMGCS_LUA_DIR);
}

int main(int argc, char **argv) {
  struct run_ctx ctx;
  lua_State *L;
  int status, ok;
  if (argc > 0 && argv[0] && argv[0][0]) progname = argv[0];
  if (argc < 2) { usage(stderr); return 2; }
  if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) { usage(stdout); return 0; }
  ctx.argc = argc; ctx.argv = argv; ctx.script = 1;
  L = luaL_newstate();
  if (L == NULL) { fprintf(stderr, "%s: cannot create state: not enough memory\n", progname); return 1; }
  lua_gc(L, LUA_GCSTOP); /* as lua.c: no collections while the libraries open */
  /* outside protection, push only a C function and a light userdata (no allocation can fail) */
  lua_pushcfunction(L, run_protected);
  lua_pushlightuserdata(L, &ctx);
  status = lua_pcall(L, 1, 2, 0);
  if (status != LUA_OK) {           /* setup or load failed: no traceback (like lua.c) */
    report(L, "");
    ok = 0;
  } else {
    ok = lua_toboolean(L, -2);
    if (!ok) report(L, "");         /* the script raised: message + traceback */
  }
  lua_close(L);
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
