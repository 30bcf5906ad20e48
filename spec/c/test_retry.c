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

static void test_classify(void) {
  long retry[] = { 408, 429, 500, 502, 503, 504 };
  long no[] = { 200, 201, 204, 301, 400, 401, 403, 404, 409, 412, 501, 505 };
  int good = 1;
  for (size_t i = 0; i < sizeof retry / sizeof *retry; i++) good &= dg_retry_classify_status(retry[i]) != DG_RETRY_NO;
  ok(good, "408 429 500 502 503 504 are retried");
  good = 1;
  for (size_t i = 0; i < sizeof no / sizeof *no; i++) good &= dg_retry_classify_status(no[i]) == DG_RETRY_NO;
  ok(good, "2xx, 3xx, 400 401 403 404 409 412 501 505 are returned at once");
  ok(dg_retry_classify_status(429) == DG_RETRY_THROTTLE && dg_retry_classify_status(503) == DG_RETRY_THROTTLE,
     "429 and 503 are throttling");
  ok(dg_retry_classify_status(500) == DG_RETRY_SERVER, "500 is a server error");
  ok(dg_retry_classify_curl(CURLE_COULDNT_CONNECT) == DG_RETRY_TRANSIENT &&
     dg_retry_classify_curl(CURLE_RECV_ERROR) == DG_RETRY_TRANSIENT &&
     dg_retry_classify_curl(CURLE_PARTIAL_FILE) == DG_RETRY_TRANSIENT &&
     dg_retry_classify_curl(CURLE_GOT_NOTHING) == DG_RETRY_TRANSIENT &&
     dg_retry_classify_curl(CURLE_OPERATION_TIMEDOUT) == DG_RETRY_TRANSIENT,
     "connection errors are transient");
  ok(dg_retry_classify_curl(CURLE_OK) == DG_RETRY_NO &&
     dg_retry_classify_curl(CURLE_ABORTED_BY_CALLBACK) == DG_RETRY_NO &&
     dg_retry_classify_curl(CURLE_PEER_FAILED_VERIFICATION) == DG_RETRY_NO &&
     dg_retry_classify_curl(CURLE_URL_MALFORMAT) == DG_RETRY_NO &&
     dg_retry_classify_curl(CURLE_READ_ERROR) == DG_RETRY_NO,
     "TLS verification, aborts, bad URLs and read errors are not retried");
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
  ok(dg_backoff_ms(&p, 3, rnd_zero, NULL) == 0, "full jitter lower bound is 0");
  ok(dg_backoff_ms(&p, 3, rnd_max, NULL) <= 1000, "full jitter never exceeds the ceiling");
  uint64_t v = 1000;
  ok(dg_backoff_ms(&p, 3, rnd_value, &v) == 1000, "full jitter reaches the ceiling (inclusive)");
  v = 1001;
  ok(dg_backoff_ms(&p, 3, rnd_value, &v) == 0, "jitter is random mod (ceiling + 1)");
  /* distribution with the real generator: all within bounds, spread over the range */
  uint64_t seed = 42;
  int64_t lo = INT64_MAX, hi = -1;
  int inside = 1;
  for (int i = 0; i < 10000; i++) {
    int64_t d = dg_backoff_ms(&p, 4, dg_random_splitmix, &seed);
    if (d < 0 || d > 2000) inside = 0;
    if (d < lo) lo = d;
    if (d > hi) hi = d;
  }
  ok(inside, "10000 jittered delays for attempt 4 all in [0, 2000]");
  ok(lo < 50 && hi > 1950, "jittered delays spread over the whole range");
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
  v = 50;
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
  test_backoff();
  test_retry_after();
  test_next_delay();
  test_aimd();
  test_url();
  return tap_done();
}
