/* test_engine_alloc.c - the engine frees every block with the size it allocated it with
 * (dg_alloc.h's contract, which a host allocator such as Lua's may rely on), including the
 * credential-stripped copy of a URL with user:password@ (issue #14 §7), and refuses
 * line breaks in the options that become header lines (TAP). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "dg_alloc.h"
#include "dg_engine.h"

/* Each block carries the size it was allocated with, in front of it. */
static long mismatches = 0, live = 0;
static void *sized(void *ud, void *p, size_t osize, size_t nsize) {
  (void)ud;
  size_t *h = p ? (size_t *)p - 2 : NULL;
  if (h) {
    if (h[0] != osize) mismatches++;
    live--;
  }
  if (nsize == 0) { free(h); return NULL; }
  size_t *q = realloc(h, nsize + 2 * sizeof(size_t));
  if (!q) { if (h) live++; return NULL; }
  q[0] = nsize;
  live++;
  return q + 2;
}
static const dg_allocator checker = { sized, NULL };

int main(void) {
  char err[DG_ERRLEN];
  dg_engine_opts o;
  dg_engine_opts_default(&o);
  dg_engine *e = dg_engine_new(&checker, &o, err, sizeof err);
  ok(e != NULL, "engine made with a size-checking allocator");
  dg_request r;
  dg_request_default(&r);
  r.url = "http://someone:secret-password@127.0.0.1:9/path?q=1";
  ok(dg_engine_submit(e, &r, err, sizeof err) > 0, "a URL with credentials is accepted");
  dg_request_default(&r);
  r.url = "http://127.0.0.1:9/plain";
  ok(dg_engine_submit(e, &r, err, sizeof err) > 0, "a plain URL is accepted");
  dg_engine_free(e);
  ok(mismatches == 0, "every block was freed with the size it was allocated with");
  ok(live == 0, "no block left");

  const char *bad[] = { "ua\r\nX-Evil: 1", "ua\nX-Evil: 1" };
  for (int i = 0; i < 2; i++) {
    dg_engine_opts_default(&o);
    o.user_agent = bad[i];
    e = dg_engine_new(&checker, &o, err, sizeof err);
    ok(e == NULL && strstr(err, "user_agent") != NULL, "a line break in user_agent is refused, naming it");
    dg_engine_free(e);
  }
  dg_engine_opts_default(&o);
  o.proxy = "http://p\r\n:1";
  e = dg_engine_new(&checker, &o, err, sizeof err);
  ok(e == NULL && strstr(err, "proxy") != NULL, "a line break in proxy is refused");
  ok(live == 0 && mismatches == 0, "nothing leaked by the refusals");
  return tap_done();
}
