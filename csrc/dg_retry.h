/*
 * dg_retry.h - the retry policy of the HTTP engine, free of I/O so that
 * spec/c/test_retry.c can check it with an injected clock and random source.
 *
 * - classify: which outcomes are retried (connection errors, 408, 429, 500,
 *   502, 503, 504) and which of those are throttling (429, 503).
 * - backoff: exponential with full jitter: delay for retry n (n = number of
 *   attempts already made, >= 1) is uniform in [0, min(max, base * 2^(n-1))].
 * - Retry-After: delta-seconds or an HTTP-date, as milliseconds from now.
 * - AIMD: the engine's in-flight cap; halved on throttling (min 1), raised
 *   by 1/cap on each success up to the configured concurrency.
 * Pure functions; no allocation; thread-compatible.
 */
#ifndef DG_RETRY_H
#define DG_RETRY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds on a monotonic clock. */
typedef int64_t (*dg_clock_fn)(void *ud);
/* 64 uniformly random bits. */
typedef uint64_t (*dg_random_fn)(void *ud);

int64_t dg_clock_monotonic_ms(void *ud);      /* ud unused */
uint64_t dg_random_splitmix(void *ud);        /* ud: uint64_t *state */
int64_t dg_clock_wall_s(void);                /* seconds since the epoch */

typedef struct dg_retry_policy {
  int max_attempts;        /* total attempts, >= 1 (default 5) */
  int64_t base_delay_ms;   /* default 250 */
  int64_t max_delay_ms;    /* default 32000 */
  int64_t deadline_ms;     /* 0 = none; else no attempt starts after start+deadline */
} dg_retry_policy;

void dg_retry_policy_default(dg_retry_policy *p);

enum {
  DG_RETRY_NO = 0,         /* return the outcome as it is */
  DG_RETRY_TRANSIENT,      /* connection-level failure */
  DG_RETRY_THROTTLE,       /* 429, 503: also lowers the AIMD cap */
  DG_RETRY_SERVER          /* 408, 500, 502, 504 */
};
int dg_retry_classify_status(long status);
int dg_retry_classify_curl(int curl_code);    /* a CURLcode */

/* Upper bound of the jittered delay after `attempts` attempts (>= 1). */
int64_t dg_backoff_cap_ms(const dg_retry_policy *p, int attempts);
/* Full jitter: uniform in [0, dg_backoff_cap_ms]. */
int64_t dg_backoff_ms(const dg_retry_policy *p, int attempts, dg_random_fn rnd, void *ud);

/* Retry-After value (not NUL-terminated, len bytes) -> delay in ms from
 * now_epoch_s, 0 for a date in the past, -1 if unparseable. Values above
 * DG_RETRY_AFTER_MAX_MS are clamped to it. */
#define DG_RETRY_AFTER_MAX_MS (3600 * 1000)
int64_t dg_retry_after_ms(const char *v, size_t len, int64_t now_epoch_s);

/* Delay before the next attempt, or -1 to stop retrying.
 * attempts: attempts made so far; retry_after_ms: -1 when absent;
 * start_ms/now_ms on the policy's clock. A Retry-After is used as given
 * (not jittered); a delay that would start the next attempt past the
 * deadline stops the retries. */
int64_t dg_retry_next_delay(const dg_retry_policy *p, int attempts, int64_t retry_after_ms,
                            int64_t start_ms, int64_t now_ms, dg_random_fn rnd, void *ud);

typedef struct dg_aimd {
  double cap;              /* current cap, 1 <= cap <= max */
  int max;                 /* configured concurrency */
} dg_aimd;

void dg_aimd_init(dg_aimd *a, int max);
void dg_aimd_throttle(dg_aimd *a);            /* multiplicative decrease */
void dg_aimd_success(dg_aimd *a);             /* additive increase */
int dg_aimd_limit(const dg_aimd *a);          /* floor(cap), >= 1 */

#endif
