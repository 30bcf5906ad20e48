/* dg_pace - how many requests the engine keeps in flight when the caller did not say
 * (concurrency unset): a latency gradient moves the AIMD's ceiling (dg_retry.h) between a floor
 * and a maximum. While the answers take as long as the fastest seen (times a tolerance),
 * more requests in flight are free throughput - a remote server's latency, not a bottleneck, is
 * what each one waits for - so the ceiling doubles per window of answers; once
 * they slow down, requests are queueing somewhere and the ceiling shrinks with the ratio. The
 * floor is what a loopback or CPU-bound run needs; 429/503 still halve the cap below it. */
#ifndef DG_PACE_H
#define DG_PACE_H

#include "dg_retry.h"

#define DG_PACE_START 4       /* the first window: the fastest answer measured without a queue */
#define DG_PACE_FLOOR 16      /* the fixed default before; what 0 ms needs (curl's best there too) */
#define DG_PACE_MAX 128       /* ~ two RTTs' worth at 50 ms for small requests (uploads: dg_engine.h) */
#define DG_PACE_TOLERANCE 2.0 /* answers up to this times the fastest still count as unqueued */

typedef struct dg_pace {
  int floor, max;
  double rtt_min;                /* fastest answer seen by this engine */
  double win_sum;                /* answers of the current window */
  int win_n;
} dg_pace;

/* AIMD starts at DG_PACE_START (one window of answers, to learn the fastest answer without a queue
 * of our own), then at least the floor; the pace raises it. */
void dg_pace_init(dg_pace *p, dg_aimd *a, int floor, int max);
/* One successful answer that took rtt_ms (request sent to response read). */
void dg_pace_sample(dg_pace *p, dg_aimd *a, double rtt_ms);

#endif
