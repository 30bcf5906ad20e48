/* test_pace.c - the engine's choice of concurrency (dg_pace) with simulated answer times (TAP). */
#include <stdio.h>

#include "dg_pace.h"
#include "tap.h"

/* Feed n answers; each takes base_ms plus per_stream_ms for every request in flight (the cap). */
static void feed(dg_pace *p, dg_aimd *a, int n, double base_ms, double per_stream_ms) {
  for (int i = 0; i < n; i++) dg_pace_sample(p, a, base_ms + per_stream_ms * dg_aimd_limit(a));
}

static void test_remote(void) {
  dg_pace p;
  dg_aimd a;
  dg_pace_init(&p, &a, DG_PACE_FLOOR, DG_PACE_MAX);
  ok(dg_aimd_limit(&a) == DG_PACE_START, "starts with a few (4), to learn the unqueued answer time");
  feed(&p, &a, DG_PACE_START - 1, 50, 0);
  ok(dg_aimd_limit(&a) == DG_PACE_START, "no change before a window of answers (one round trip)");
  feed(&p, &a, 1, 50, 0);
  ok(dg_aimd_limit(&a) == DG_PACE_FLOOR, "then at least the floor (16)");
  feed(&p, &a, DG_PACE_FLOOR, 50, 0);
  ok(dg_aimd_limit(&a) == 2 * DG_PACE_FLOOR, "answers as fast as ever: the ceiling doubles");
  feed(&p, &a, 400, 50, 0);
  ok(dg_aimd_limit(&a) == DG_PACE_MAX, "50 ms away and nothing queues: up to the maximum");
  feed(&p, &a, 4000, 50, 0);
  ok(dg_aimd_limit(&a) == DG_PACE_MAX && a.max == DG_PACE_MAX, "never past the maximum");
}

static void test_bottleneck(void) {
  dg_pace p;
  dg_aimd a;
  dg_pace_init(&p, &a, DG_PACE_FLOOR, DG_PACE_MAX);
  /* loopback, CPU-bound: each answer waits for all the others (0.1 ms of work per request) */
  feed(&p, &a, 5000, 0.05, 0.1);
  ok(dg_aimd_limit(&a) == DG_PACE_FLOOR, "answers slow down with every stream: stays at the floor");
  /* a bandwidth-bound link: a fixed 20 ms plus 5 ms per stream in flight */
  dg_pace_init(&p, &a, DG_PACE_FLOOR, DG_PACE_MAX);
  feed(&p, &a, 5000, 20, 5);
  ok(dg_aimd_limit(&a) == DG_PACE_FLOOR, "answers 4x the fastest (a shared bottleneck): back to the floor");
}

static void test_throttle(void) {
  dg_pace p;
  dg_aimd a;
  dg_pace_init(&p, &a, DG_PACE_FLOOR, DG_PACE_MAX);
  feed(&p, &a, 400, 50, 0);
  ok(dg_aimd_limit(&a) == DG_PACE_MAX, "at the maximum");
  dg_aimd_throttle(&a);
  ok(dg_aimd_limit(&a) == DG_PACE_MAX / 2, "a 429/503 halves the cap");
  feed(&p, &a, 200, 50, 0);
  ok(dg_aimd_limit(&a) == DG_PACE_MAX / 2, "fast answers do not undo a throttle (AIMD raises it)");
  for (int i = 0; i < 10; i++) dg_aimd_throttle(&a);
  ok(dg_aimd_limit(&a) == 1, "quota pressure goes below the floor");
  feed(&p, &a, 100, 50, 0);
  ok(dg_aimd_limit(&a) == 1, "and stays there until successes raise it");
  for (int i = 0; i < 100000; i++) dg_aimd_success(&a);
  ok(dg_aimd_limit(&a) == a.max, "additive increase climbs back to the ceiling");
}

int main(void) {
  test_remote();
  test_bottleneck();
  test_throttle();
  return tap_done();
}
