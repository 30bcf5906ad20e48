/*
 * dg_time.h - clocks and sleeping for the dicomgcs core.
 * Plain C, no Lua. Thread-safe (no state).
 */
#ifndef DG_TIME_H
#define DG_TIME_H

/* Seconds on a clock that never jumps (CLOCK_MONOTONIC), with sub-millisecond resolution. */
double dg_monotonic_seconds(void);

/* Sleep for `seconds` (negative or NaN sleeps not at all), resuming after signals
 * until the time has passed. Returns 0, or -1 if the sleep could not be done. */
int dg_sleep_seconds(double seconds);

#endif
