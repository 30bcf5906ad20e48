/*
 * test_multipart.c - unit tests for dg_multipart (TAP output): round trips in
 * every chunk size, zero-copy slices, truncation at every byte, malformed framing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dg_multipart.h"
#include "tap.h"

#define MAXP 8
typedef struct {
  char trace[256];            /* B D E ... X: data merged */
  char data[MAXP][4096];
  size_t dlen[MAXP];
  char ctype[MAXP][128];
  long long clen[MAXP];
  size_t nparts;
  dg_mp_status st;            /* first error, or dg_mp_finish's result */
  int feed_error;             /* the error came from dg_mp_next */
  int zero_copy_ok;
  char msg[200];
  unsigned long long err_off;
} result;

static char hdrbuf[DG_MP_DEFAULT_HEADER_BYTES];

static void tr(result *r, char c) {
  size_t n = strlen(r->trace);
  if (c == 'D' && n && r->trace[n - 1] == 'D') return;
  if (n + 1 < sizeof r->trace) { r->trace[n] = c; r->trace[n + 1] = '\0'; }
}

/* Parse body in chunks of `chunk` bytes (0: whole), each chunk in its own malloc'd copy. */
static void parse(const char *boundary, const char *body, size_t len, size_t chunk, size_t hdrcap, result *r) {
  static dg_mp p;
  size_t at = 0;
  memset(r, 0, sizeof *r);
  r->zero_copy_ok = 1;
  r->st = dg_mp_init(&p, boundary, strlen(boundary), hdrbuf, hdrcap ? hdrcap : sizeof hdrbuf);
  if (r->st != DG_MP_OK) return;
  if (chunk == 0) chunk = len ? len : 1;
  while (at < len && r->st == DG_MP_OK) {
    size_t n = len - at < chunk ? len - at : chunk, off = 0, used;
    unsigned char *c = malloc(n);
    memcpy(c, body + at, n);
    for (;;) {
      dg_mp_event ev;
      r->st = dg_mp_next(&p, c + off, n - off, &used, &ev);
      if (r->st != DG_MP_OK) { r->feed_error = 1; break; }
      off += used;
      if (ev.type == DG_MP_EV_NONE) break;
      if (ev.type == DG_MP_EV_BEGIN) {
        const dg_mp_header *h = dg_mp_find_header(ev.headers, ev.nheaders, "content-type");
        tr(r, 'B');
        if (r->nparts < MAXP) {
          if (h) snprintf(r->ctype[r->nparts], sizeof r->ctype[0], "%.*s", (int)h->value_len, h->value);
          r->clen[r->nparts] = ev.content_length;
        }
        r->nparts++;
      } else if (ev.type == DG_MP_EV_DATA) {
        size_t k = ev.part - 1;
        int in_chunk = ev.data >= c && ev.data + ev.len <= c + n;
        int in_parser = (const void *)ev.data >= (const void *)&p && (const void *)(ev.data + ev.len) <= (const void *)(&p + 1);
        if (!(in_chunk || in_parser) || ev.len == 0) r->zero_copy_ok = 0;
        tr(r, 'D');
        if (k < MAXP && r->dlen[k] + ev.len <= sizeof r->data[0]) {
          memcpy(r->data[k] + r->dlen[k], ev.data, ev.len);
          r->dlen[k] += ev.len;
        }
      } else if (ev.type == DG_MP_EV_END) {
        tr(r, 'E');
      } else if (ev.type == DG_MP_EV_DONE) {
        tr(r, 'X');
      }
    }
    free(c);
    at += n;
  }
  if (r->st == DG_MP_OK) r->st = dg_mp_finish(&p);
  snprintf(r->msg, sizeof r->msg, "%s", dg_mp_error(&p));
  r->err_off = dg_mp_error_offset(&p);
}

static int same(const result *a, const result *b) {
  size_t i;
  if (a->st != b->st || strcmp(a->trace, b->trace) != 0 || a->nparts != b->nparts) return 0;
  for (i = 0; i < a->nparts && i < MAXP; i++)
    if (a->dlen[i] != b->dlen[i] || memcmp(a->data[i], b->data[i], a->dlen[i]) != 0 ||
        strcmp(a->ctype[i], b->ctype[i]) != 0 || a->clen[i] != b->clen[i])
      return 0;
  return 1;
}

/* Part bodies full of near-boundaries. */
static const char *P1 = "x--bound-ary-x\r\n--bound\r\n-\r\n\r\r\n--bound-ar\rX--bound-ary-";
static const char *P2 = "";
static const char *P3 = "\r\n\r\n--\r\n";
#define BOUNDARY "bound-ary-x"

static size_t build(char *out) {
  int n = sprintf(out,
                  "This is the preamble. --bound-ary-x not at a line start\r\n--" BOUNDARY " \t\r\n"
                  "Content-Type: application/dicom\r\nContent-Length: %u\r\n"
                  "Content-Location: /studies/1/series/2/instances/3\r\n\r\n%s"
                  "\r\n--" BOUNDARY "\r\n\r\n%s"
                  "\r\n--" BOUNDARY "\r\nContent-Type: application/dicom;\r\n\ttransfer-syntax=*\r\n\r\n%s"
                  "\r\n--" BOUNDARY "--  \r\nepilogue --" BOUNDARY "\r\n",
                  (unsigned)strlen(P1), P1, P2, P3);
  return (size_t)n;
}

static void test_round_trip(void) {
  static char body[2048];
  size_t len = build(body), chunk, cut;
  static result whole, r;
  int all_same = 1, zc = 1, trunc_ok = 1;
  char name[160];

  parse(BOUNDARY, body, len, 0, 0, &whole);
  ok(whole.st == DG_MP_OK, "well-formed body parses");
  ok(strcmp(whole.trace, "BDEBEBDEX") == 0, "events: begin data end, empty part, begin data end, done");
  ok(whole.nparts == 3, "three parts");
  ok(whole.dlen[0] == strlen(P1) && memcmp(whole.data[0], P1, whole.dlen[0]) == 0,
     "part 1 body with boundary-like bytes intact");
  ok(whole.dlen[1] == 0, "empty part 2 (no headers, no body)");
  ok(whole.dlen[2] == strlen(P3) && memcmp(whole.data[2], P3, whole.dlen[2]) == 0, "part 3 body intact");
  ok(strcmp(whole.ctype[0], "application/dicom") == 0 && whole.clen[0] == (long long)strlen(P1) &&
     whole.clen[1] == -1, "headers: Content-Type and Content-Length parsed");
  ok(strcmp(whole.ctype[2], "application/dicom;\ttransfer-syntax=*") == 0, "folded header unfolded");

  for (chunk = 1; chunk <= len; chunk++) {
    parse(BOUNDARY, body, len, chunk, 0, &r);
    if (!same(&whole, &r)) {
      all_same = 0;
      printf("# chunk %zu differs: %s vs %s (%s)\n", chunk, r.trace, whole.trace, r.msg);
      break;
    }
    if (!r.zero_copy_ok) zc = 0;
  }
  snprintf(name, sizeof name, "every chunk size 1..%zu gives the same events and bytes", len);
  ok(all_same, name);
  ok(zc, "data slices point into the fed chunk or the parser (zero-copy), never empty");

  srand(12345);
  for (cut = 0; cut < 300 && all_same; cut++) { /* random splits */
    static dg_mp p;
    size_t at = 0;
    static result rr;
    memset(&rr, 0, sizeof rr);
    dg_mp_init(&p, BOUNDARY, strlen(BOUNDARY), hdrbuf, sizeof hdrbuf);
    while (at < len) {
      size_t n = (size_t)rand() % 40 + 1, off = 0, used;
      if (n > len - at) n = len - at;
      for (;;) {
        dg_mp_event ev;
        if (dg_mp_next(&p, (const unsigned char *)body + at + off, n - off, &used, &ev) != DG_MP_OK) { all_same = 0; break; }
        off += used;
        if (ev.type == DG_MP_EV_NONE) break;
        if (ev.type == DG_MP_EV_DATA) { memcpy(rr.data[ev.part - 1] + rr.dlen[ev.part - 1], ev.data, ev.len); rr.dlen[ev.part - 1] += ev.len; }
      }
      at += n;
    }
    if (dg_mp_finish(&p) != DG_MP_OK || rr.dlen[0] != whole.dlen[0] || memcmp(rr.data[0], whole.data[0], rr.dlen[0]) ||
        rr.dlen[2] != whole.dlen[2] || memcmp(rr.data[2], whole.data[2], rr.dlen[2]))
      all_same = 0;
  }
  ok(all_same, "300 random splits give the same bodies");

  /* every prefix that stops before the close delimiter is truncated, never an error */
  {
    const char *close = strstr(body, "--" BOUNDARY "--");
    size_t close_end = (size_t)(close - body) + strlen("--" BOUNDARY "--");
    for (cut = 0; cut < close_end; cut++) {
      parse(BOUNDARY, body, cut, 3, 0, &r);
      if (r.st != DG_MP_ETRUNCATED || r.feed_error) { trunc_ok = 0; printf("# cut %zu: %d %s\n", cut, r.st, r.msg); break; }
    }
    ok(trunc_ok, "every prefix before the close delimiter: finish() reports truncated");
    parse(BOUNDARY, body, close_end, 7, 0, &r);
    ok(r.st == DG_MP_OK, "stream ending right after the close delimiter is complete");
  }
  parse(BOUNDARY, body, strlen("This is the preamble."), 1, 0, &r);
  ok(r.st == DG_MP_ETRUNCATED && strstr(r.msg, "before the first boundary"), "junk only: truncated, no boundary");
  parse(BOUNDARY, body, 200, 0, 0, &r);
  ok(r.st == DG_MP_ETRUNCATED && strstr(r.msg, "inside the body of part 1") && strstr(r.msg, "at byte 200"),
     "cut inside a body: message names part and byte offset");
}

static void expect_error(const char *body, dg_mp_status want, const char *needle, const char *name) {
  result a, b;
  parse("B", body, strlen(body), 0, 0, &a);
  parse("B", body, strlen(body), 1, 0, &b);
  if (!(a.st == want && b.st == want && strstr(a.msg, needle) && a.err_off == b.err_off))
    printf("# got %d '%s' / %d '%s'\n", a.st, a.msg, b.st, b.msg);
  ok(a.st == want && b.st == want && strstr(a.msg, needle) != NULL && a.err_off == b.err_off, name);
}

static void test_malformed(void) {
  static char big[24000];
  size_t i, n;
  result r;
  expect_error("--B\r\n\r\nabc\r\n--Bjunk\r\n", DG_MP_EMALFORMED, "boundary followed by byte 0x6A",
               "delimiter followed by other bytes: malformed");
  expect_error("--B\nContent-Type: x\n\n", DG_MP_EMALFORMED, "instead of CRLF", "LF-only line after boundary: malformed");
  expect_error("--B\r\nContent-Type: x\n\r\n", DG_MP_EMALFORMED, "bare LF", "bare LF in headers: malformed");
  expect_error("--B\r\nContent-Type: x\rX\r\n\r\n", DG_MP_EMALFORMED, "CR without LF", "bare CR in headers: malformed");
  expect_error("--B\r\nnocolonhere\r\n\r\nx\r\n--B--", DG_MP_EMALFORMED, "without ':'", "header without colon: malformed");
  expect_error("--B\r\nBad Name: v\r\n\r\nx\r\n--B--", DG_MP_EMALFORMED, "without ':'", "space in header name: malformed");
  expect_error("--B\r\n folded: v\r\n\r\nx\r\n--B--", DG_MP_EMALFORMED, "continuation", "leading continuation line: malformed");
  expect_error("--B\r\nContent-Length: 4\r\n\r\nabc\r\n--B--", DG_MP_ELENGTH, "Content-Length is 4",
               "body shorter than Content-Length: length error");
  expect_error("--B\r\nContent-Length: 1x\r\n\r\nabc\r\n--B--", DG_MP_EMALFORMED, "bad Content-Length",
               "non-numeric Content-Length: malformed");
  expect_error("--B--\r\n", DG_MP_EMALFORMED, "before any part", "close delimiter with no part: malformed");
  expect_error("--B\r\n\r\nx\r\n--B--junk", DG_MP_EMALFORMED, "after the close delimiter",
               "junk right after close delimiter: malformed");
  expect_error("--B\r\n\r\nx\r\n--B-x", DG_MP_EMALFORMED, "single '-'", "'--B-x': malformed");
  expect_error("--B x\r\n", DG_MP_EMALFORMED, "padding", "non-blank padding after boundary: malformed");

  n = (size_t)sprintf(big, "--B\r\n");
  for (i = 0; n < DG_MP_DEFAULT_HEADER_BYTES + 50; i++) n += (size_t)sprintf(big + n, "X-%zu: %s\r\n", i, "v");
  strcpy(big + n, "\r\nbody\r\n--B--");
  parse("B", big, strlen(big), 1000, 0, &r);
  ok(r.st == DG_MP_EHEADERS, "header block over 16 KiB or over 64 fields: rejected");
  for (i = 0; i < 20000; i++) big[i] = 'a';
  memcpy(big, "--B\r\nX-Long: ", 13);
  strcpy(big + 20000, "\r\n\r\nbody\r\n--B--");
  parse("B", big, strlen(big), 4096, 0, &r);
  ok(r.st == DG_MP_EHEADERS && strstr(r.msg, "16384"), "one header line over 16 KiB: rejected, limit named");
  {
    const char *sm = "--B\r\nA: 1\r\n\r\nx\r\n--B--";
    parse("B", sm, strlen(sm), 0, 6, &r);
  }
  ok(r.st == DG_MP_EHEADERS, "custom small header buffer enforced");

  /* sticky errors */
  {
    static dg_mp p;
    size_t used;
    dg_mp_event ev;
    const unsigned char *in = (const unsigned char *)"--B\r\n\r\nx\r\n--Bz";
    size_t off = 0;
    dg_mp_status st;
    dg_mp_init(&p, "B", 1, hdrbuf, sizeof hdrbuf);
    while ((st = dg_mp_next(&p, in + off, 14 - off, &used, &ev)) == DG_MP_OK && ev.type != DG_MP_EV_NONE) off += used;
    ok(st == DG_MP_EMALFORMED && dg_mp_next(&p, (const unsigned char *)"x", 1, &used, &ev) == DG_MP_EMALFORMED &&
       dg_mp_finish(&p) == DG_MP_EMALFORMED && dg_mp_error_offset(&p) == 13, "errors are sticky, offset kept");
  }
}

static void test_content_type(void) {
  char b[DG_MP_BOUNDARY_MAX + 1];
  size_t n;
  static dg_mp p;
#define CTOK(ct, want, name)                                                                          \
  ok(dg_mp_boundary_from_content_type(ct, strlen(ct), b, sizeof b, &n) == DG_MP_OK && strcmp(b, want) == 0 && \
     n == strlen(want), name)
#define CTBAD(ct, name) ok(dg_mp_boundary_from_content_type(ct, strlen(ct), b, sizeof b, &n) == DG_MP_EARG, name)
  CTOK("multipart/related; type=\"application/dicom\"; boundary=abc123", "abc123", "unquoted boundary");
  CTOK("Multipart/Related;Boundary=\"a b:c?\";type=\"application/dicom\"", "a b:c?", "quoted boundary, any case, no spaces");
  CTOK("multipart/related; boundary=\"x\\yz\"", "xyz", "quoted-pair inside quotes");
  CTOK("multipart/related; type=\"application/dicom; x=y\"; boundary=q;", "q", "';' inside a quoted parameter");
  CTBAD("multipart/related; type=\"application/dicom\"", "no boundary parameter");
  CTBAD("application/dicom; boundary=abc", "not multipart");
  CTBAD("multipart/related; boundary=\"abc \"", "boundary ending in space");
  CTBAD("multipart/related; boundary=\"ab\x01\"", "control character in boundary");
  CTBAD("multipart/related; boundary=\"unterminated", "unterminated quote");
  CTBAD("multipart/related; boundary=a; boundary=b", "two boundary parameters");
  CTBAD("multipart/related; boundary=0123456789012345678901234567890123456789012345678901234567890123456789X",
        "71-character boundary");
  ok(dg_mp_init(&p, "", 0, hdrbuf, sizeof hdrbuf) == DG_MP_EARG && dg_mp_error(&p)[0], "empty boundary refused");
  ok(dg_mp_init(&p, "a\r", 2, hdrbuf, sizeof hdrbuf) == DG_MP_EARG, "CR in boundary refused");
  ok(dg_mp_init(&p, "a", 1, NULL, 0) == DG_MP_EARG, "missing header buffer refused");
  ok(strcmp(dg_mp_status_name(DG_MP_ETRUNCATED), "truncated") == 0, "status names");
}

static void test_empty_bodies(void) {
  result r, r1;
  const char *a = "--B\r\nContent-Type: text/plain\r\n\r\n--B\r\n\r\n--B\r\n\r\n\r\n--B--";
  parse("B", a, strlen(a), 0, 0, &r);
  parse("B", a, strlen(a), 1, 0, &r1);
  ok(r.st == DG_MP_OK && strcmp(r.trace, "BEBEBEX") == 0 && r.dlen[0] == 0 && r.dlen[1] == 0 && r.dlen[2] == 0,
     "header-ending CRLF doubles as the delimiter's CRLF: three empty parts");
  ok(same(&r, &r1), "same byte by byte");
  parse("B", "--B\r\n\r\n-x", strlen("--B\r\n\r\n-x"), 1, 0, &r);
  if (r.dlen[0] != 2) printf("# %d %s %zu\n", r.st, r.trace, r.dlen[0]);
  ok(r.st == DG_MP_ETRUNCATED && r.dlen[0] == 2 && memcmp(r.data[0], "-x", 2) == 0,
     "a near-delimiter at body start is data, without the virtual CRLF");
  parse("B", "--B\r\n--B--\r\n", strlen("--B\r\n--B--\r\n"), 0, 0, &r);
  ok(r.st == DG_MP_EMALFORMED, "boundary line right after a boundary line: malformed header");
}

int main(void) {
  test_round_trip();
  test_malformed();
  test_content_type();
  test_empty_bodies();
  return tap_done();
}
