/*
 * dg_retry.h - the retry policy of the HTTP engine, free of I/O so that
 * spec/c/test_retry.c can check it with an injected clock and random source.
 *
 * - classify: the ONE classification of an attempt's outcome for every layer
 *   (engine, errors.lua, auth, resumable uploads, queue): retry, throttle
 *   (503), quota (429), ambiguous (a non-replayable request that may have run),
 *   fatal. Exported to Lua as core.classify.
 * - backoff: ordinary retries wait uniform in [cap/2, cap] with cap =
 *   min(max, base * 2^(n-1)) (n = attempts already made, >= 1): the floor grows
 *   exponentially like Google's "truncated exponential backoff". Quota waits use
 *   full jitter, uniform in [0, min(quota_max, quota_base * 2^(q-1))], within a
 *   total quota budget, and do not count against max_attempts.
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
  int64_t quota_base_delay_ms;  /* default 1000 */
  int64_t quota_max_delay_ms;   /* default 64000: the longest single quota wait */
  int64_t quota_budget_ms;      /* default 600000: no quota retry starts after start+budget */
  int replay;                   /* DG_REPLAY_SAFE (default) or DG_REPLAY_NEVER_AMBIGUOUS */
} dg_retry_policy;

void dg_retry_policy_default(dg_retry_policy *p);

/* May the request be sent again after an answer was lost? */
enum {
  DG_REPLAY_SAFE = 0,            /* idempotent: GET, PUT, STOW of the same bytes, ... */
  DG_REPLAY_NEVER_AMBIGUOUS      /* :import, :export, creates: only when it surely did not run */
};

enum {
  DG_CLASS_OK = 0,         /* not a failure (< 400): return it */
  DG_CLASS_RETRY,          /* transient: retry with the ordinary policy */
  DG_CLASS_THROTTLE,       /* 503: retry, and lower the AIMD cap */
  DG_CLASS_QUOTA,          /* 429: quota waits (full jitter, quota budget), lower the cap */
  DG_CLASS_AMBIGUOUS,      /* a never-ambiguous request may have run: do not resend; the
                              caller checks whether it took effect */
  DG_CLASS_FATAL           /* retrying the same request fails the same way */
};
/* status: the HTTP status, 0 when there was none; curl_code: a CURLcode, 0 when the
 * attempt got an answer; sent: the request (or part of it) went on the wire, so the server
 * may have acted on it; replay: DG_REPLAY_*. */
int dg_retry_classify(long status, int curl_code, int sent, int replay);
/* "ok", "retry", "throttle", "quota", "ambiguous", "fatal" */
const char *dg_retry_class_name(int cls);

/* Upper bound of the jittered delay after `attempts` attempts (>= 1). */
int64_t dg_backoff_cap_ms(const dg_retry_policy *p, int attempts);
/* Ordinary retries: uniform in [cap/2, cap] with cap = dg_backoff_cap_ms. */
int64_t dg_backoff_ms(const dg_retry_policy *p, int attempts, dg_random_fn rnd, void *ud);
/* Quota waits: full jitter, uniform in [0, min(quota_max, quota_base * 2^(q-1))]. */
int64_t dg_quota_backoff_ms(const dg_retry_policy *p, int quota_attempts, dg_random_fn rnd, void *ud);

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
/* Delay before the next attempt after a quota error, or -1 when the quota budget (or the
 * deadline) is spent. quota_attempts: quota errors so far (>= 1). The last wait is cut to end
 * at the budget, so one attempt is always made at its end. */
int64_t dg_retry_quota_delay(const dg_retry_policy *p, int quota_attempts, int64_t retry_after_ms,
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
