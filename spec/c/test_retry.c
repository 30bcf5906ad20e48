/* test_retry.c - the engine's retry policy with an injected clock and random source (TAP). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

#include "dg_retry.h"
#include "dg_engine.h"
#include "tap.h"

/* Random sources: fixed values, so the jitter's bounds are hit exactly. */
static uint64_t rnd_zero(void *ud) { (void)ud; return 0; }
static uint64_t rnd_max(void *ud) { (void)ud; return UINT64_MAX; }
static uint64_t rnd_value(void *ud) { return *(uint64_t *)ud; }
/* A fake clock. */
static int64_t fake_now = 0;
static int64_t fake_clock(void *ud) { (void)ud; return fake_now; }

#define S DG_REPLAY_SAFE
#define N DG_REPLAY_NEVER_AMBIGUOUS

static void test_classify(void) {
  long retry[] = { 408, 500, 502, 504 };
  long fatal[] = { 400, 401, 403, 404, 409, 412, 501, 505 };
  long fine[] = { 200, 201, 204, 301, 308 };
  int good = 1;
  for (size_t i = 0; i < sizeof retry / sizeof *retry; i++) good &= dg_retry_classify(retry[i], 0, 1, S) == DG_CLASS_RETRY;
  ok(good, "408 500 502 504 are retried when replay is safe");
  good = 1;
  for (size_t i = 0; i < sizeof fatal / sizeof *fatal; i++)
    good &= dg_retry_classify(fatal[i], 0, 1, S) == DG_CLASS_FATAL && dg_retry_classify(fatal[i], 0, 1, N) == DG_CLASS_FATAL;
  ok(good, "400 401 403 404 409 412 501 505 are fatal in both modes");
  good = 1;
  for (size_t i = 0; i < sizeof fine / sizeof *fine; i++) good &= dg_retry_classify(fine[i], 0, 1, S) == DG_CLASS_OK;
  ok(good, "2xx and 3xx are not failures");
  ok(dg_retry_classify(429, 0, 1, S) == DG_CLASS_QUOTA && dg_retry_classify(429, 0, 1, N) == DG_CLASS_QUOTA,
     "429 is a quota error, replayable even for :import");
  ok(dg_retry_classify(503, 0, 1, S) == DG_CLASS_THROTTLE && dg_retry_classify(503, 0, 1, N) == DG_CLASS_THROTTLE,
     "503 throttles, replayable even for :import");
  ok(dg_retry_classify(500, 0, 1, N) == DG_CLASS_AMBIGUOUS && dg_retry_classify(502, 0, 1, N) == DG_CLASS_AMBIGUOUS &&
     dg_retry_classify(504, 0, 1, N) == DG_CLASS_AMBIGUOUS, "500 502 504 are ambiguous for never-ambiguous requests");
  ok(dg_retry_classify(408, 0, 1, N) == DG_CLASS_RETRY, "408: the server never read the whole request");
  ok(dg_retry_classify(0, CURLE_COULDNT_CONNECT, 0, N) == DG_CLASS_RETRY &&
     dg_retry_classify(0, CURLE_COULDNT_RESOLVE_HOST, 0, N) == DG_CLASS_RETRY &&
     dg_retry_classify(0, CURLE_SSL_CONNECT_ERROR, 0, N) == DG_CLASS_RETRY,
     "no connection: retried even for never-ambiguous requests");
  ok(dg_retry_classify(0, CURLE_RECV_ERROR, 1, S) == DG_CLASS_RETRY &&
     dg_retry_classify(0, CURLE_PARTIAL_FILE, 1, S) == DG_CLASS_RETRY &&
     dg_retry_classify(0, CURLE_GOT_NOTHING, 1, S) == DG_CLASS_RETRY &&
     dg_retry_classify(0, CURLE_OPERATION_TIMEDOUT, 1, S) == DG_CLASS_RETRY,
     "connection lost after sending: retried when replay is safe");
  ok(dg_retry_classify(0, CURLE_RECV_ERROR, 1, N) == DG_CLASS_AMBIGUOUS &&
     dg_retry_classify(0, CURLE_GOT_NOTHING, 1, N) == DG_CLASS_AMBIGUOUS &&
     dg_retry_classify(0, CURLE_OPERATION_TIMEDOUT, 1, N) == DG_CLASS_AMBIGUOUS,
     "connection lost after sending: ambiguous for never-ambiguous requests");
  ok(dg_retry_classify(0, CURLE_OPERATION_TIMEDOUT, 0, N) == DG_CLASS_RETRY,
     "a timeout before anything was sent is retried");
  ok(dg_retry_classify(0, CURLE_ABORTED_BY_CALLBACK, 1, S) == DG_CLASS_FATAL &&
     dg_retry_classify(0, CURLE_PEER_FAILED_VERIFICATION, 0, S) == DG_CLASS_FATAL &&
     dg_retry_classify(0, CURLE_URL_MALFORMAT, 0, S) == DG_CLASS_FATAL &&
     dg_retry_classify(0, CURLE_READ_ERROR, 1, S) == DG_CLASS_FATAL,
     "TLS verification, aborts, bad URLs and read errors are not retried");
  ok(strcmp(dg_retry_class_name(DG_CLASS_QUOTA), "quota") == 0 &&
     strcmp(dg_retry_class_name(DG_CLASS_AMBIGUOUS), "ambiguous") == 0, "class names");
}

static void test_quota(void) {
  dg_retry_policy p;
  dg_retry_policy_default(&p);
  ok(p.quota_base_delay_ms == 1000 && p.quota_max_delay_ms == 64000 && p.quota_budget_ms == 600000,
     "quota waits: 1 s base, 64 s max per delay, 10 minute budget");
  ok(dg_quota_backoff_ms(&p, 1, rnd_zero, NULL) == 0, "quota waits use full jitter (lower bound 0)");
  ok(dg_quota_backoff_ms(&p, 20, rnd_max, NULL) <= 64000, "a quota wait never exceeds 64 s");
  uint64_t v = 64000;
  ok(dg_quota_backoff_ms(&p, 7, rnd_value, &v) == 64000, "the 7th quota wait may reach 64 s");
  v = 8000;
  ok(dg_quota_backoff_ms(&p, 4, rnd_value, &v) == 8000, "4th quota wait ceiling is 8 s");
  int64_t start = 0;
  ok(dg_retry_quota_delay(&p, 30, -1, start, 599000, rnd_max, NULL) <= 1000,
     "the last quota wait is cut to end at the budget");
  ok(dg_retry_quota_delay(&p, 30, -1, start, 600000, rnd_max, NULL) == -1, "no quota retry after the budget");
  ok(dg_retry_quota_delay(&p, 1, 2000, start, 1000, rnd_max, NULL) == 2000, "a Retry-After is used as given");
  /* a 5-attempt policy still waits out quota errors: quota waits do not count as attempts */
  ok(dg_retry_next_delay(&p, 5, -1, start, 0, rnd_zero, NULL) == -1 &&
     dg_retry_quota_delay(&p, 50, -1, start, 1000, rnd_zero, NULL) == 0,
     "quota waits are bounded by the budget, not by max_attempts");
}

static void test_backoff(void) {
  dg_retry_policy p;
  dg_retry_policy_default(&p);
  ok(p.max_attempts == 5 && p.base_delay_ms == 250 && p.max_delay_ms == 32000 && p.deadline_ms == 0,
     "default policy 5 attempts, 250 ms base, 32 s max, no deadline");
  ok(dg_backoff_cap_ms(&p, 1) == 250 && dg_backoff_cap_ms(&p, 2) == 500 && dg_backoff_cap_ms(&p, 3) == 1000 &&
     dg_backoff_cap_ms(&p, 4) == 2000, "ceiling doubles: 250 500 1000 2000");
  ok(dg_backoff_cap_ms(&p, 8) == 32000 && dg_backoff_cap_ms(&p, 9) == 32000 && dg_backoff_cap_ms(&p, 1000) == 32000,
     "ceiling capped at max_delay_ms, no overflow at 1000 attempts");
  ok(dg_backoff_ms(&p, 3, rnd_zero, NULL) == 500, "jitter lower bound is half the ceiling");
  ok(dg_backoff_ms(&p, 3, rnd_max, NULL) <= 1000, "jitter never exceeds the ceiling");
  uint64_t v = 500;
  ok(dg_backoff_ms(&p, 3, rnd_value, &v) == 1000, "jitter reaches the ceiling (inclusive)");
  v = 501;
  ok(dg_backoff_ms(&p, 3, rnd_value, &v) == 500, "jitter is cap/2 + random mod (cap/2 + 1)");
  /* distribution with the real generator: all within bounds, spread over the range */
  uint64_t seed = 42;
  int64_t lo = INT64_MAX, hi = -1;
  int inside = 1;
  for (int i = 0; i < 10000; i++) {
    int64_t d = dg_backoff_ms(&p, 4, dg_random_splitmix, &seed);
    if (d < 1000 || d > 2000) inside = 0;
    if (d < lo) lo = d;
    if (d > hi) hi = d;
  }
  ok(inside, "10000 jittered delays for attempt 4 all in [1000, 2000]");
  ok(lo < 1050 && hi > 1950, "jittered delays spread over the whole range");
  dg_retry_policy z = p;
  z.base_delay_ms = 0;
  ok(dg_backoff_ms(&z, 5, rnd_max, NULL) == 0, "base 0 means no delay");
}

static void test_retry_after(void) {
  int64_t now = 1700000000;            /* 2023-11-14T22:13:20Z */
  ok(dg_retry_after_ms("2", 1, now) == 2000, "Retry-After: 2 -> 2000 ms");
  ok(dg_retry_after_ms(" 17 \r\n", 6, now) == 17000, "whitespace and CRLF trimmed");
  ok(dg_retry_after_ms("0", 1, now) == 0, "Retry-After: 0");
  ok(dg_retry_after_ms("99999999999999", 14, now) == DG_RETRY_AFTER_MAX_MS, "huge seconds clamped to an hour");
  ok(dg_retry_after_ms("1.5", 3, now) == -1, "fractional seconds rejected");
  ok(dg_retry_after_ms("-3", 2, now) == -1, "negative rejected");
  ok(dg_retry_after_ms("", 0, now) == -1, "empty rejected");
  ok(dg_retry_after_ms("soon", 4, now) == -1, "garbage rejected");
  const char *d = "Tue, 14 Nov 2023 22:13:50 GMT";
  ok(dg_retry_after_ms(d, strlen(d), now) == 30000, "IMF-fixdate 30 s ahead -> 30000 ms");
  const char *past = "Tue, 14 Nov 2023 22:00:00 GMT";
  ok(dg_retry_after_ms(past, strlen(past), now) == 0, "a date in the past -> 0");
  const char *rfc850 = "Tuesday, 14-Nov-23 22:13:25 GMT";
  ok(dg_retry_after_ms(rfc850, strlen(rfc850), now) == 5000, "RFC 850 date");
  const char *asct = "Tue Nov 14 22:13:21 2023";
  ok(dg_retry_after_ms(asct, strlen(asct), now) == 1000, "asctime date");
}

static void test_next_delay(void) {
  dg_retry_policy p;
  dg_retry_policy_default(&p);
  p.max_attempts = 3;
  fake_now = 1000;
  int64_t start = fake_clock(NULL);
  ok(dg_retry_next_delay(&p, 1, -1, start, fake_now, rnd_max, NULL) >= 0, "retry after attempt 1 of 3");
  ok(dg_retry_next_delay(&p, 2, -1, start, fake_now, rnd_max, NULL) >= 0, "retry after attempt 2 of 3");
  ok(dg_retry_next_delay(&p, 3, -1, start, fake_now, rnd_max, NULL) == -1, "no retry after attempt 3 of 3");
  ok(dg_retry_next_delay(&p, 1, 7000, start, fake_now, rnd_max, NULL) == 7000, "Retry-After used as given");
  ok(dg_retry_next_delay(&p, 1, 0, start, fake_now, rnd_max, NULL) == 0, "Retry-After: 0 retries at once");
  p.deadline_ms = 5000;
  ok(dg_retry_next_delay(&p, 1, 7000, start, fake_now, rnd_max, NULL) == -1,
     "Retry-After past the deadline stops the retries");
  fake_now = start + 4900;
  uint64_t v = 150;
  ok(dg_retry_next_delay(&p, 1, -1, start, fake_now, rnd_value, &v) == -1,
     "backoff crossing the deadline stops the retries");
  p.base_delay_ms = 100;
  v = 0;
  ok(dg_retry_next_delay(&p, 1, -1, start, fake_now, rnd_value, &v) == 50, "backoff inside the deadline");
  p.max_attempts = 1;
  ok(dg_retry_next_delay(&p, 1, 0, start, fake_now, rnd_zero, NULL) == -1, "max_attempts = 1: never retried");
}

static void test_aimd(void) {
  dg_aimd a;
  dg_aimd_init(&a, 16);
  ok(dg_aimd_limit(&a) == 16, "starts at the configured concurrency");
  dg_aimd_throttle(&a);
  ok(dg_aimd_limit(&a) == 8, "throttle halves: 16 -> 8");
  dg_aimd_throttle(&a); dg_aimd_throttle(&a); dg_aimd_throttle(&a);
  ok(dg_aimd_limit(&a) == 1, "8 -> 4 -> 2 -> 1");
  dg_aimd_throttle(&a);
  ok(dg_aimd_limit(&a) == 1, "never below 1");
  dg_aimd_success(&a);
  ok(dg_aimd_limit(&a) == 2, "success at cap 1 adds 1/1 -> 2");
  dg_aimd_success(&a);
  ok(dg_aimd_limit(&a) == 2, "one success at cap 2 adds 1/2 -> 2.5");
  dg_aimd_success(&a);
  ok(dg_aimd_limit(&a) == 2 || dg_aimd_limit(&a) == 3, "about one step per cap successes");
  for (int i = 0; i < 10000; i++) dg_aimd_success(&a);
  ok(dg_aimd_limit(&a) == 16 && a.cap <= 16, "increase stops at the configured concurrency");
  dg_aimd_init(&a, 0);
  ok(dg_aimd_limit(&a) == 1, "a configured 0 is treated as 1");
  dg_aimd_init(&a, 5);
  dg_aimd_throttle(&a);
  ok(dg_aimd_limit(&a) == 2, "halving rounds down: 5 -> 2");
}

static void test_url(void) {
  char out[256];
  dg_url_strip_credentials("https://user:secret@host.example/p?q=1&token=x", out, sizeof out);
  ok(strcmp(out, "https://host.example/p?q=1&token=x") == 0, "userinfo removed, query kept");
  dg_url_strip_credentials("http://h/p@x?a=b@c", out, sizeof out);
  ok(strcmp(out, "http://h/p@x?a=b@c") == 0, "@ after the authority kept");
  dg_url_strip_credentials("http://a@b@h:80/", out, sizeof out);
  ok(strcmp(out, "http://h:80/") == 0, "last @ of the authority ends the userinfo");
  dg_url_strip_credentials("no-scheme", out, sizeof out);
  ok(strcmp(out, "no-scheme") == 0, "no scheme: unchanged");
  char ua[160];
  dg_engine_default_user_agent(ua, sizeof ua);
  ok(strncmp(ua, "dicomgcs/", 9) == 0 && strstr(ua, " libcurl/") != NULL, "default User-Agent");
}

int main(void) {
  test_classify();
  test_quota();
  test_backoff();
  test_retry_after();
  test_next_delay();
  test_aimd();
  test_url();
  return tap_done();
}
