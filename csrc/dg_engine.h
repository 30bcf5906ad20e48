/*
 * dg_engine.h - the HTTP engine: many transfers on one libcurl multi handle.
 *
 * Threading: single-threaded; call everything on the thread that created
 * the engine. Nothing here calls exit/abort or raises; failures are return
 * values. No lua.h: the binding (ldg_engine.c) supplies the hooks below.
 *
 * Lifecycle of a transfer: dg_engine_submit() copies the request (except
 * the bytes of data parts, which are BORROWED and must stay valid until the
 * transfer is released) and queues it. dg_engine_step() starts queued
 * transfers up to the AIMD cap, moves bytes, retries (the policy of dg_retry.h:
 * classify, backoff, quota waits, Retry-After) and puts finished transfers on the done
 * queue; it never hands results out by callback. The caller reads them with
 * dg_engine_done_first()/dg_engine_done_find() and dg_transfer_result(),
 * then dg_engine_done_release() frees the transfer. Transfers still owned at
 * dg_engine_free() are cancelled and freed (easies removed from the multi,
 * cleaned up, then the multi).
 *
 * Hooks run only inside dg_engine_step(), never inside a libcurl callback:
 * - token(ud, e, force): fetch an access token; on success it must call
 *   dg_engine_set_token() and return 0, else write a message to err and
 *   return -1. Called when a transfer needing auth starts and the cached
 *   token is missing or due for refresh (dg_token.h: min(225 s, lifetime/2)
 *   before expiry), or after a 401 (force = 1, once per transfer). At most
 *   one call per step round: a failure fails every transfer that needed the
 *   token in that round, unless the old token is still valid (not forced):
 *   then it is served and the refresh retried min(10 s, remaining/4) later.
 * - progress(ud, e, id, ...): after bytes moved for a transfer submitted
 *   with progress = 1; return -1 with a message in err to abort that
 *   transfer (error kind "callback").
 * The hooks must not call back into the engine.
 */
#ifndef DG_ENGINE_H
#define DG_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include "dg_alloc.h"
#include "dg_body.h"
#include "dg_retry.h"

typedef struct dg_engine dg_engine;
typedef struct dg_transfer dg_transfer;

#define DG_ERRLEN 1024

/* Request bodies larger than this go over HTTP/1.1 unless http2_uploads (Node's and Google's
 * HTTP/2 stream windows hold 64 KiB to 1 MiB: beyond one window libcurl 7.x waits in a loop).
 * Downloads into files (output_file) go over HTTP/1.1 too: each on its own connection and TCP
 * window instead of all sharing one, and libcurl's HTTP/1.1 receive path costs less CPU (1,000 x
 * 1 MiB from the TLS emulator: 3.9-4.4 s against 4.4-5.9 s multiplexed; README "Performance"). */
#define DG_H2_BODY_MAX (64 * 1024)
/* Those HTTP/1.1 bodies (either way) in flight at most (each holds a connection, its TLS state and
 * buffers: about 150 KiB; 64 keep RSS near 24 MiB), however many more GETs the pace lets run. */
#define DG_H1_BODIES_MAX 64

typedef struct dg_engine_opts {
  int concurrency;               /* >= 1; 0 (default): chosen by the engine, dg_pace.h */
  const char *user_agent;        /* NULL: "dicomgcs/<ver> libcurl/<ver>"; else " libcurl/<ver>"
                                    is appended unless it already names libcurl */
  const char *ca_file;           /* NULL: $CURL_CA_BUNDLE, $SSL_CERT_FILE, else libcurl's */
  const char *proxy;             /* NULL: libcurl's environment handling */
  long connect_timeout_ms;       /* default 10000 */
  long idle_timeout_s;           /* no byte either way for this long aborts; default 60 */
  int http2_uploads;             /* 0 (default): request bodies over DG_H2_BODY_MAX go over
                                    HTTP/1.1 connections (libcurl 7.x's HTTP/2 upload path
                                    costs 2-4x the CPU: README "Performance"); 1: HTTP/2 too */
  dg_clock_fn clock; void *clock_ud;      /* NULL: monotonic */
  dg_random_fn random; void *random_ud;   /* NULL: internal splitmix64 */
  int (*token)(void *ud, dg_engine *e, int force, char *err, size_t errlen);
  int (*progress)(void *ud, dg_engine *e, int64_t id, int64_t sent, int64_t send_total,
                  int64_t received, int64_t receive_total, char *err, size_t errlen);
  void *hook_ud;
} dg_engine_opts;

/* Defaults for every field. */
void dg_engine_opts_default(dg_engine_opts *o);

typedef struct dg_request {
  const char *method;            /* NULL: GET, or POST when there is a body */
  const char *url;
  const char *const *headers;    /* "Name: value" */
  size_t n_headers;
  int has_body;                  /* body = concatenation of parts (maybe zero parts) */
  const dg_part_spec *parts;
  size_t n_parts;
  const char *output_file;       /* 2xx body streamed to a hidden temporary file beside it
                                    (O_EXCL|O_NOFOLLOW, see dg_fs.h), renamed on success */
  int64_t output_offset;         /* >= 0: the 2xx body is written into the EXISTING output_file
                                    from this byte (no truncation, no .part, no rename; each
                                    attempt starts again at this byte; on failure the file is left
                                    as it is). < 0 (the default): the .part + rename above */
  struct dg_mpsink *mp_sink;     /* dg_mpsink.h: the 2xx body is fed to it as it arrives (one file
                                    per multipart part) instead of output_file or memory; the
                                    transfer holds a reference until it is freed */
  int hash;                      /* DG_HASH_CRC32C (dg_hash.h): CRC32C of the 2xx body bytes as
                                    they arrive (written to output_file or kept), per attempt
                                    (a retry starts again from 0); 0 (the default): none */
  const char *noproxy;           /* CURLOPT_NOPROXY for this request ("*": never a proxy); NULL: environment */
  dg_retry_policy retry;
  long connect_timeout_ms;       /* < 0: engine's */
  long idle_timeout_s;           /* < 0: engine's; 0: none */
  long total_timeout_ms;         /* <= 0: none */
  int64_t delay_ms;              /* > 0: the first attempt starts no earlier than submit + delay
                                    (the transfer waits on the engine's timer list) */
  int auth;                      /* < 0: when a token hook is set */
  int progress;                  /* call the progress hook */
} dg_request;

void dg_request_default(dg_request *r);

typedef struct dg_result {
  int ok;                        /* 1: an HTTP response (any status); 0: an error */
  long status;
  const char *headers;           /* "name\0value\0" pairs, lower-case names */
  size_t headers_len;
  const char *body; size_t body_len;
  int has_body;                  /* 0 when the body went to output_file */
  int body_truncated;            /* non-2xx body longer than the 1 MiB cap */
  int attempts;
  int64_t bytes_sent, bytes_received;   /* of the last attempt */
  int has_crc32c;                /* the request asked for DG_HASH_CRC32C and the status is 2xx */
  uint32_t crc32c;               /* CRC32C of the last attempt's body bytes (then valid) */
  int timer;                     /* 1: a dg_engine_timer that fell due (ok = 1, no response) */
  const char *kind;              /* error: transport|timeout|cancelled|auth|io|callback */
  const char *message;
  int curl_code;                 /* 0 when not from libcurl */
  const char *url;               /* the URL without credentials */
  int ambiguous;                 /* a never-ambiguous request failed after it may have run */
  int quota_waits;               /* 429 answers this transfer waited out */
} dg_result;

typedef struct dg_engine_stats {
  int in_flight, cap, queued, waiting;
  int64_t completed, retries, bytes_sent, bytes_received;
  int64_t quota_waits;           /* 429 answers waited out so far */
  int64_t throttle_wait_ms;      /* > 0: a quota wait is under way and ends in this many ms */
} dg_engine_stats;

/* NULL on failure with a message in err. a is copied; *a's ud must outlive the engine. */
dg_engine *dg_engine_new(const dg_allocator *a, const dg_engine_opts *o, char *err, size_t errlen);
void dg_engine_free(dg_engine *e);
/* The id the next successful dg_engine_submit will return. */
int64_t dg_engine_next_id(const dg_engine *e);
/* Queue a transfer: its id (> 0), or -1 with a message in err (bad request, out of memory). */
int64_t dg_engine_submit(dg_engine *e, const dg_request *r, char *err, size_t errlen);
/* Work for up to timeout_ms (returns sooner once something is done or nothing is left).
 * Returns the number of transfers on the done queue. */
int dg_engine_step(dg_engine *e, int timeout_ms);
/* A timer: an id (> 0) that lands on the done queue, with result.timer = 1, once delay_ms
 * has passed (dg_engine_step sleeps no longer than the earliest timer or delayed
 * transfer). Cancel it with dg_engine_cancel (result kind "cancelled"). -1: out of memory. */
int64_t dg_engine_timer(dg_engine *e, int64_t delay_ms, char *err, size_t errlen);
/* fd >= 0: dg_engine_step also polls fd and returns early when it is readable (the caller
 * drains it); -1: none. Used with dg_sigint_arm (dg_signal.h) so Ctrl-C ends a wait at once. */
void dg_engine_set_wake_fd(dg_engine *e, int fd);
/* 1 if the transfer was cancelled (it then is on the done queue), 0 if unknown or finished. */
int dg_engine_cancel(dg_engine *e, int64_t id);
/* Transfers submitted and not yet released (queued, running, waiting, done). */
size_t dg_engine_pending(const dg_engine *e);
void dg_engine_stats_get(const dg_engine *e, dg_engine_stats *s);
/* Replace the cached token (the old one is wiped; dg_token.h has the refresh rule).
 * expires_in_s <= 0: 3600.
 * 0, or -1 if the token is empty or holds characters not allowed in a header. */
int dg_engine_set_token(dg_engine *e, const char *token, size_t len, double expires_in_s);
int dg_engine_has_token_hook(const dg_engine *e);

dg_transfer *dg_engine_done_first(dg_engine *e);
dg_transfer *dg_engine_done_find(dg_engine *e, int64_t id);
void dg_engine_done_release(dg_engine *e, dg_transfer *t);
int64_t dg_transfer_id(const dg_transfer *t);
const dg_result *dg_transfer_result(const dg_transfer *t);

/* One blocking request on its own easy handle (no multi, no token, no progress hook),
 * with the same retries. Returns a finished transfer (free with dg_transfer_free),
 * or NULL with a message in err for a bad request or out of memory. o may be NULL. */
dg_transfer *dg_fetch(const dg_allocator *a, const dg_engine_opts *o, const dg_request *r,
                      char *err, size_t errlen);
void dg_transfer_free(dg_transfer *t);

/* "dicomgcs/<DG_VERSION> libcurl/<version>" into out. */
void dg_engine_default_user_agent(char *out, size_t outlen);
/* Copy url to out without "user:password@". */
void dg_url_strip_credentials(const char *url, char *out, size_t outlen);

#endif
