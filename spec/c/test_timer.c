/* test_timer.c - the engine's timers and delayed requests, the Ctrl-C wake-up, and the
 * token cache's refresh rule, on an injected clock (TAP; leaks fail the run). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "tap.h"
#include "dg_alloc.h"
#include "dg_engine.h"
#include "dg_signal.h"
#include "dg_token.h"

static long live_blocks = 0;
static void *counting(void *ud, void *p, size_t osize, size_t nsize) {
  (void)ud; (void)osize;
  if (p) live_blocks--;
  if (nsize == 0) { free(p); return NULL; }
  void *q = realloc(p, nsize);
  if (q || p) live_blocks++;
  return q;
}
static const dg_allocator counter = { counting, NULL };

static int64_t fake_now = 1000000;
static int64_t fake_clock(void *ud) { (void)ud; return fake_now; }

static dg_engine *new_engine(void) {
  dg_engine_opts o;
  char err[DG_ERRLEN];
  dg_engine_opts_default(&o);
  o.clock = fake_clock;
  return dg_engine_new(&counter, &o, err, sizeof err);
}

/* Ids on the done queue, released, in order, into out (at most n). */
static int take_done(dg_engine *e, int64_t *out, int n, int *timers) {
  int k = 0;
  dg_transfer *t;
  while ((t = dg_engine_done_first(e))) {
    if (k < n) out[k] = dg_transfer_id(t);
    if (timers && dg_transfer_result(t)->timer && dg_transfer_result(t)->ok) (*timers)++;
    k++;
    dg_engine_done_release(e, t);
  }
  return k;
}

static void timers(void) {
  char err[DG_ERRLEN];
  dg_engine *e = new_engine();
  ok(e != NULL, "engine with an injected clock");
  int64_t late = dg_engine_timer(e, 100, err, sizeof err);
  int64_t early = dg_engine_timer(e, 50, err, sizeof err);
  int64_t gone = dg_engine_timer(e, 70, err, sizeof err);
  ok(late > 0 && early > late && gone > early, "timers get increasing ids");
  ok(dg_engine_pending(e) == 3, "timers count as pending");
  int64_t ids[4];
  int n_timer = 0;
  ok(dg_engine_step(e, 0) == 0, "nothing is due before its time");
  fake_now += 49;
  dg_engine_step(e, 0);
  ok(take_done(e, ids, 4, NULL) == 0, "a timer does not fire a millisecond early");
  fake_now += 1;
  dg_engine_step(e, 0);
  ok(take_done(e, ids, 4, &n_timer) == 1 && ids[0] == early && n_timer == 1,
     "the 50 ms timer fires at 50 ms, as a timer result");
  ok(dg_engine_cancel(e, gone) == 1, "a waiting timer can be cancelled");
  dg_transfer *t = dg_engine_done_find(e, gone);
  ok(t && !dg_transfer_result(t)->ok && strcmp(dg_transfer_result(t)->kind, "cancelled") == 0,
     "a cancelled timer ends with kind cancelled");
  if (t) dg_engine_done_release(e, t);
  fake_now += 50;
  dg_engine_step(e, 0);
  ok(take_done(e, ids, 4, NULL) == 1 && ids[0] == late, "the 100 ms timer fires at 100 ms");
  ok(dg_engine_pending(e) == 0, "nothing left");
  int64_t never = dg_engine_timer(e, 60000, err, sizeof err);
  ok(never > 0, "a timer still waiting when the engine is freed");
  dg_engine_free(e);
}

static void delayed_request(void) {
  char err[DG_ERRLEN];
  dg_engine *e = new_engine();
  dg_request r;
  dg_request_default(&r);
  r.url = "http://127.0.0.1:1/never";      /* refused at once, once started */
  r.retry.max_attempts = 1;
  r.delay_ms = 200;
  int64_t id = dg_engine_submit(e, &r, err, sizeof err);
  ok(id > 0, "a delayed request is accepted");
  dg_engine_stats st;
  dg_engine_stats_get(e, &st);
  ok(st.waiting == 1 && st.queued == 0, "it waits on the timer list, not the queue");
  dg_engine_step(e, 0);
  dg_engine_stats_get(e, &st);
  ok(st.waiting == 1 && st.in_flight == 0 && !dg_engine_done_first(e), "it does not start before its time");
  fake_now += 200;
  for (int i = 0; i < 200 && !dg_engine_done_find(e, id); i++) dg_engine_step(e, 10);
  dg_transfer *t = dg_engine_done_find(e, id);
  ok(t && !dg_transfer_result(t)->ok && strcmp(dg_transfer_result(t)->kind, "transport") == 0 &&
     dg_transfer_result(t)->attempts == 1, "once due it runs (here: refused, one attempt)");
  if (t) dg_engine_done_release(e, t);
  dg_engine_free(e);
}

static volatile sig_atomic_t host_saw = 0;
static void host_handler(int sig) { (void)sig; host_saw++; }

static void wake(void) {
  char err[DG_ERRLEN];
  dg_engine *e = new_engine();
  struct sigaction host;                    /* the handler in place before us, as lua.c's */
  memset(&host, 0, sizeof host);
  host.sa_handler = host_handler;
  sigemptyset(&host.sa_mask);
  sigaction(SIGINT, &host, NULL);
  int fd = dg_sigint_arm();
  ok(fd >= 0, "a SIGINT guard gives a wake fd");
  ok(dg_sigint_fd() == fd, "dg_sigint_fd names it while armed");
  dg_engine_set_wake_fd(e, fd);
  dg_engine_timer(e, 60000, err, sizeof err);
  dg_sigint_raise_for_test();
  /* the fake clock never moves: only the wake fd can end this step */
  ok(dg_engine_step(e, 5000) == 0, "Ctrl-C ends a step that waits on a timer");
  ok(dg_engine_pending(e) == 1, "the timer is still there");
  ok(dg_sigint_take() == 1, "the interrupt is reported once");
  ok(dg_sigint_take() == 0, "... and only once");
  int fd2 = dg_sigint_arm();
  ok(fd2 == fd, "guards nest");
  dg_sigint_raise_for_test();
  dg_sigint_disarm();
  ok(dg_sigint_fd() == fd, "still armed after the inner disarm");
  ok(host_saw == 0, "an interrupt caught while armed is ours");
  dg_sigint_disarm();
  ok(dg_sigint_fd() == -1, "disarmed after the outer one");
  ok(host_saw == 1, "an interrupt nobody took goes to the handler from before, once");
  dg_sigint_arm();
  ok(dg_sigint_take() == 0, "arming again forgets an interrupt from before");
  dg_sigint_raise_for_test();
  ok(dg_sigint_take() == 1, "taken");
  dg_sigint_disarm();
  ok(host_saw == 1, "an interrupt that was taken is not raised again");
  struct sigaction ign, now;                /* a host that ignores Ctrl-C */
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  sigaction(SIGINT, &ign, NULL);
  ok(dg_sigint_arm() >= 0, "arming where SIGINT is ignored still gives an fd to poll");
  raise(SIGINT);
  ok(dg_sigint_take() == 0, "... and a real SIGINT is not caught: it stays ignored");
  sigaction(SIGINT, NULL, &now);
  ok(now.sa_handler == SIG_IGN, "... the disposition untouched while armed");
  dg_sigint_disarm();
  sigaction(SIGINT, NULL, &now);
  ok(now.sa_handler == SIG_IGN, "... and after");
  dg_engine_set_wake_fd(e, -1);
  dg_engine_free(e);
}

static void token_rule(void) {
  dg_token t;
  dg_token_init(&t, &counter);
  ok(!dg_token_valid(&t, 0) && !dg_token_fresh(&t, 0), "an empty cache has no token");
  ok(dg_token_set(&t, "ya29.a", 6, 3600, 0, 0) == 0, "set a one-hour token");
  ok(dg_token_margin_ms(3600000) == 225000, "margin of a one-hour token: 225 s");
  ok(dg_token_fresh(&t, 3374999) && !dg_token_fresh(&t, 3375000), "refreshed from 225 s before expiry on");
  ok(dg_token_valid(&t, 3599999) && !dg_token_valid(&t, 3600000), "valid until expiry");
  ok(dg_token_set(&t, "ya29.b", 6, 5, 10000, 0) == 0 && t.gen == 2, "a 5-second token");
  ok(dg_token_fresh(&t, 12499) && !dg_token_fresh(&t, 12500), "short tokens: refreshed halfway");
  dg_token_postpone(&t, 13000);
  ok(dg_token_fresh(&t, 13000) && !dg_token_fresh(&t, 13500), "a failed refresh: served min(10 s, left/4) longer");
  ok(dg_token_set(&t, "bad token", 9, 60, 0, 0) == -1 && strcmp(t.value.data, "ya29.b") == 0,
     "a token with a space is refused and the old one kept");
  ok(dg_token_set(&t, "", 0, 60, 0, 0) == -1, "an empty token is refused");
  ok(dg_token_set(&t, "fixed", 5, 0, 0, 1) == 0 && dg_token_fresh(&t, 3599999),
     "a static token (no lifetime: 3600 s) is used until expiry");
  dg_token_clear(&t);
  ok(!dg_token_valid(&t, 1), "clear forgets the token");
  dg_token_free(&t);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  timers();
  delayed_request();
  wake();
  token_rule();
  ok(live_blocks == 0, "no block leaked");
  curl_global_cleanup();
  return tap_done();
}
