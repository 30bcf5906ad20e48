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
}

int dg_retry_classify_status(long status) {
  switch (status) {
  case 429: case 503: return DG_RETRY_THROTTLE;
  case 408: case 500: case 502: case 504: return DG_RETRY_SERVER;
  default: return DG_RETRY_NO;
  }
}

int dg_retry_classify_curl(int code) {
  switch ((CURLcode)code) {
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_HTTP3:
  case CURLE_QUIC_CONNECT_ERROR:
    return DG_RETRY_TRANSIENT;
  default:
    return DG_RETRY_NO;
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

int64_t dg_backoff_ms(const dg_retry_policy *p, int attempts, dg_random_fn rnd, void *ud) {
  int64_t cap = dg_backoff_cap_ms(p, attempts);
  if (cap <= 0) return 0;
  return (int64_t)(rnd(ud) % (uint64_t)(cap + 1));
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
