/* dg_pace.c - latency-aware ceiling for the AIMD cap (see dg_pace.h). */
#include "dg_pace.h"

#include <math.h>

void dg_pace_init(dg_pace *p, dg_aimd *a, int floor, int max) {
  p->floor = floor < 1 ? 1 : floor;
  p->max = max < p->floor ? p->floor : max;
  p->rtt_min = HUGE_VAL;
  p->win_sum = 0;
  p->win_n = 0;
  a->max = DG_PACE_START < p->floor ? DG_PACE_START : p->floor;
  a->cap = a->max;
}

void dg_pace_sample(dg_pace *p, dg_aimd *a, double rtt_ms) {
  if (!(rtt_ms >= 0)) return;
  if (rtt_ms < 0.05) rtt_ms = 0.05;
  /* never forgotten: a minimum re-learnt under load would hide the queue it measures */
  if (rtt_ms < p->rtt_min) p->rtt_min = rtt_ms;
  p->win_sum += rtt_ms;
  int window = a->max;   /* one round of the requests in flight (the first: one round trip) */
  if (++p->win_n < window) return;
  double avg = p->win_sum / p->win_n;
  p->win_sum = 0;
  p->win_n = 0;
  double g = DG_PACE_TOLERANCE * p->rtt_min / avg;
  if (g < 0.5) g = 0.5;
  /* no queueing seen: double (slow start, a few round trips to the maximum); else follow the
   * gradient, with sqrt(ceiling) of headroom to probe for more */
  double ceiling = g >= 1.0 ? 2.0 * a->max : a->max * g + sqrt((double)a->max);
  int next = (int)ceiling;
  if (next < p->floor) next = p->floor;
  if (next > p->max) next = p->max;
  int at_ceiling = a->cap >= a->max;   /* not held down by a 429/503 */
  a->max = next;
  if (at_ceiling || a->cap > a->max) a->cap = a->max;
}
