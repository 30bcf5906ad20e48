/* dg_retry.c - see dg_retry.h */
#include <string.h>
#include <time.h>
#include <curl/curl.h>

#include "dg_retry.h"

int64_t dg_clock_monotonic_ms(void *ud) {
  struct timespec ts;
  (void)ud;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t dg_clock_wall_s(void) { return (int64_t)time(NULL); }

uint64_t dg_random_splitmix(void *ud) {
  uint64_t *s = ud;
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void dg_retry_policy_default(dg_retry_policy *p) {
  p->max_attempts = 5;
  p->base_delay_ms = 250;
  p->max_delay_ms = 32000;
  p->deadline_ms = 0;
  p->quota_base_delay_ms = 1000;
  p->quota_max_delay_ms = 64000;
  p->quota_budget_ms = 600000;
  p->replay = DG_REPLAY_SAFE;
}

/* The connection was never made: the server cannot have seen the request. */
static int never_reached(int code) {
  switch ((CURLcode)code) {
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_QUIC_CONNECT_ERROR:
    return 1;
  default:
    return 0;
  }
}

/* Transient once connected: the answer may have been lost after the server acted. */
static int transient_after_send(int code) {
  switch ((CURLcode)code) {
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_HTTP3:
    return 1;
  default:
    return 0;
  }
}

int dg_retry_classify(long status, int curl_code, int sent, int replay) {
  int safe = replay != DG_REPLAY_NEVER_AMBIGUOUS;
  if (curl_code != 0) {
    if (never_reached(curl_code)) return DG_CLASS_RETRY;
    if (transient_after_send(curl_code)) return safe || !sent ? DG_CLASS_RETRY : DG_CLASS_AMBIGUOUS;
    return DG_CLASS_FATAL;
  }
  switch (status) {
  case 429: return DG_CLASS_QUOTA;            /* refused before it ran: always replayable */
  case 503: return DG_CLASS_THROTTLE;         /* likewise */
  case 408: return DG_CLASS_RETRY;            /* the server gave up reading the request */
  case 500: case 502: case 504: return safe ? DG_CLASS_RETRY : DG_CLASS_AMBIGUOUS;
  default: return status >= 400 || status < 100 ? DG_CLASS_FATAL : DG_CLASS_OK;
  }
}

const char *dg_retry_class_name(int cls) {
  switch (cls) {
  case DG_CLASS_OK: return "ok";
  case DG_CLASS_RETRY: return "retry";
  case DG_CLASS_THROTTLE: return "throttle";
  case DG_CLASS_QUOTA: return "quota";
  case DG_CLASS_AMBIGUOUS: return "ambiguous";
  default: return "fatal";
  }
}

int64_t dg_backoff_cap_ms(const dg_retry_policy *p, int attempts) {
  int64_t base = p->base_delay_ms > 0 ? p->base_delay_ms : 0;
  int64_t max = p->max_delay_ms > 0 ? p->max_delay_ms : 0;
  int64_t cap = base;
  if (attempts < 1) attempts = 1;
  for (int i = 1; i < attempts && cap < max; i++) cap *= 2;   /* no overflow: stops at max */
  return cap < max ? cap : max;
}

static int64_t uniform(int64_t lo, int64_t hi, dg_random_fn rnd, void *ud) {
  if (hi <= lo) return lo < 0 ? 0 : lo;
  return lo + (int64_t)(rnd(ud) % (uint64_t)(hi - lo + 1));
}

int64_t dg_backoff_ms(const dg_retry_policy *p, int attempts, dg_random_fn rnd, void *ud) {
  int64_t cap = dg_backoff_cap_ms(p, attempts);
  if (cap <= 0) return 0;
  return uniform(cap / 2, cap, rnd, ud);
}

int64_t dg_quota_backoff_ms(const dg_retry_policy *p, int quota_attempts, dg_random_fn rnd, void *ud) {
  dg_retry_policy q = *p;
  q.base_delay_ms = p->quota_base_delay_ms;
  q.max_delay_ms = p->quota_max_delay_ms;
  int64_t cap = dg_backoff_cap_ms(&q, quota_attempts);
  if (cap <= 0) return 0;
  return uniform(0, cap, rnd, ud);
}

int64_t dg_retry_after_ms(const char *v, size_t len, int64_t now_epoch_s) {
  char tmp[128];
  while (len && (*v == ' ' || *v == '\t')) { v++; len--; }
  while (len && (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\r' || v[len - 1] == '\n')) len--;
  if (len == 0 || len >= sizeof tmp) return -1;
  if (v[0] >= '0' && v[0] <= '9') {
    int64_t s = 0;
    for (size_t i = 0; i < len; i++) {
      if (v[i] < '0' || v[i] > '9') return -1;
      if (s < DG_RETRY_AFTER_MAX_MS) s = s * 10 + (v[i] - '0');
    }
    s *= 1000;
    return s > DG_RETRY_AFTER_MAX_MS ? DG_RETRY_AFTER_MAX_MS : s;
  }
  memcpy(tmp, v, len);
  tmp[len] = '\0';
  time_t t = curl_getdate(tmp, NULL);
  if (t == (time_t)-1) return -1;
  int64_t d = ((int64_t)t - now_epoch_s) * 1000;
  if (d < 0) return 0;
  return d > DG_RETRY_AFTER_MAX_MS ? DG_RETRY_AFTER_MAX_MS : d;
}

int64_t dg_retry_next_delay(const dg_retry_policy *p, int attempts, int64_t retry_after_ms,
                            int64_t start_ms, int64_t now_ms, dg_random_fn rnd, void *ud) {
  if (attempts >= p->max_attempts) return -1;
  int64_t d = retry_after_ms >= 0 ? retry_after_ms : dg_backoff_ms(p, attempts, rnd, ud);
  if (p->deadline_ms > 0 && now_ms + d - start_ms >= p->deadline_ms) return -1;
  return d;
}

int64_t dg_retry_quota_delay(const dg_retry_policy *p, int quota_attempts, int64_t retry_after_ms,
                             int64_t start_ms, int64_t now_ms, dg_random_fn rnd, void *ud) {
  int64_t used = now_ms - start_ms;
  if (p->quota_budget_ms <= 0 || used >= p->quota_budget_ms) return -1;
  int64_t d = retry_after_ms >= 0 ? retry_after_ms : dg_quota_backoff_ms(p, quota_attempts, rnd, ud);
  if (used + d > p->quota_budget_ms) d = p->quota_budget_ms - used;
  if (p->deadline_ms > 0 && used + d >= p->deadline_ms) return -1;
  return d;
}

void dg_aimd_init(dg_aimd *a, int max) {
  a->max = max < 1 ? 1 : max;
  a->cap = a->max;
}

void dg_aimd_throttle(dg_aimd *a) {
  a->cap = (double)(int)(a->cap / 2);
  if (a->cap < 1) a->cap = 1;
}

void dg_aimd_success(dg_aimd *a) {
  a->cap += 1.0 / a->cap;
  if (a->cap > a->max) a->cap = a->max;
}

int dg_aimd_limit(const dg_aimd *a) {
  int l = (int)a->cap;
  return l < 1 ? 1 : l;
}
