/* dg_engine.c - see dg_engine.h */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <curl/curl.h>
#include <openssl/crypto.h>

#include "dg_buf.h"
#include "dg_engine.h"
#include "dg_fs.h"
#include "dg_mpsink.h"
#include "dg_hash.h"
#include "dg_token.h"
#include "dg_pace.h"
#include "dg_syncer.h"
#include "dg_version.h"

#define ERROR_BODY_CAP (1024 * 1024)     /* non-2xx bodies kept in memory up to this */
#define HEADERS_CAP (256 * 1024)

enum { T_NEW, T_QUEUED, T_WAITING, T_RUNNING, T_SYNCING, T_DONE };

typedef struct tlist {
  dg_transfer *head, *tail;
  size_t n;
} tlist;

/* What an easy handle is configured from: the engine's options or fetch's. */
typedef struct cfg {
  char ua[160];
  const char *ca_file, *ca_path, *proxy;
  long connect_ms, idle_s;
  CURLSH *share;                 /* TLS sessions and DNS shared by the engine's handles */
  long output_bufsize;           /* CURLOPT_BUFFERSIZE for output_file transfers */
  int http2_uploads;             /* dg_engine_opts.http2_uploads */
} cfg;

struct dg_transfer {
  dg_transfer *prev, *next;
  int state;
  int64_t id;
  dg_engine *e;                    /* NULL for dg_fetch */
  dg_allocator alloc;
  char *method, *url, *safe_url, *output_file, *part_file, *noproxy;
  size_t part_len;                 /* allocated size of part_file */
  int64_t out_offset;              /* >= 0: write into output_file at this byte (no part_file) */
  char **headers;
  size_t n_headers;
  int has_ctype, has_authz;
  int has_body;
  int h1_body;                     /* this attempt sends its body over HTTP/1.1 (DG_H2_BODY_MAX) */
  dg_body body;
  dg_retry_policy retry;
  long connect_ms, idle_s, total_ms;
  int auth, progress;
  CURL *easy;
  struct curl_slist *slist;
  char errbuf[CURL_ERROR_SIZE];
  int attempts;
  int64_t start_ms, attempt_ms, due_ms;
  /* per attempt */
  long status;
  dg_buf hdrs, body_buf;
  FILE *out;                       /* part_file mode */
  int part_made;                   /* part_file exists and is ours (created O_EXCL): only then removed */
  int out_fd;                      /* out_offset mode: -1 until the first 2xx byte */
  int64_t out_pos;                 /* out_offset mode: where the next byte goes */
  int hash;                        /* DG_HASH_CRC32C: crc over the attempt's 2xx body bytes */
  uint32_t crc;
  dg_mpsink *sink;                 /* mp_sink (a reference held), or NULL */
  int sink_begun;                  /* this attempt's 2xx body has started into the sink */
  int64_t sent, recvd;
  int64_t retry_after_ms;
  const char *fail_kind;           /* set by a callback (io) or the engine (callback) */
  char msg[DG_ERRLEN];
  /* auth */
  int token_gen, used_auth, auth_retried, force_token;
  /* progress */
  int64_t prog[4], prog_seen[4];
  int64_t idle_ms, last_active_ms;
  int is_timer;                    /* dg_engine_timer: no request, done when due */
  int wire_sends;                  /* requests libcurl sent in this attempt (PREREQFUNCTION) */
  int quota_attempts;              /* 429s so far: quota waits, apart from max_attempts */
  dg_sync_job sync;                /* T_SYNCING: its output's fsync, out on a worker */
  dg_sync_job *sink_jobs;          /* T_SYNCING: its sink's parts' fsyncs (sink_left still out) */
  size_t sink_njobs, sink_left;
  int cancelled;                   /* cancelled while T_SYNCING: finished as such once synced */
  int fresh_retried;               /* retried at once after a reused connection died (attempt_done) */
  dg_result res;
};

struct dg_engine {
  dg_allocator alloc;
  dg_engine_opts o;
  char *ua, *ca_file, *proxy;
  cfg c;
  CURLM *multi;
  tlist queued, waiting, running, syncing, done;
  dg_syncer *syncer;               /* fsyncs of finished downloads, off this thread; made on first use */
  int64_t next_id;
  dg_aimd aimd;
  dg_pace pace;
  int auto_concurrency;          /* concurrency unset: dg_pace chooses it */
  uint64_t rng;
  dg_token tok;
  int token_failed;
  int wake_fd;                     /* -1, or an fd whose readability ends a step early */
  char token_err[DG_ERRLEN];
  int64_t completed, retries, bytes_sent, bytes_received;
  int64_t quota_waits, throttle_until_ms;   /* quota waits so far; when the last one ends */
};

/* ---- lists ---- */

static void list_push(tlist *l, dg_transfer *t) {
  t->next = NULL;
  t->prev = l->tail;
  if (l->tail) l->tail->next = t; else l->head = t;
  l->tail = t;
  l->n++;
}

static void list_push_front(tlist *l, dg_transfer *t) {
  t->prev = NULL;
  t->next = l->head;
  if (l->head) l->head->prev = t; else l->tail = t;
  l->head = t;
  l->n++;
}

static void list_remove(tlist *l, dg_transfer *t) {
  if (t->prev) t->prev->next = t->next; else l->head = t->next;
  if (t->next) t->next->prev = t->prev; else l->tail = t->prev;
  t->prev = t->next = NULL;
  l->n--;
}

static tlist *list_of(dg_engine *e, dg_transfer *t) {
  switch (t->state) {
  case T_QUEUED: return &e->queued;
  case T_WAITING: return &e->waiting;
  case T_RUNNING: return &e->running;
  case T_SYNCING: return &e->syncing;
  case T_DONE: return &e->done;
  default: return NULL;
  }
}

/* ---- small helpers ---- */

void dg_engine_default_user_agent(char *out, size_t outlen) {
  const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
  snprintf(out, outlen, "dicomgcs/%s libcurl/%s", DG_VERSION, v && v->version ? v->version : "?");
}

void dg_url_strip_credentials(const char *url, char *out, size_t outlen) {
  const char *s = strstr(url, "://");
  if (outlen == 0) return;
  if (s) {
    const char *auth = s + 3;
    const char *end = auth + strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < end; p++) if (*p == '@') at = p;
    if (at) {
      size_t pre = (size_t)(auth - url);
      if (pre >= outlen) pre = outlen - 1;
      memcpy(out, url, pre);
      snprintf(out + pre, outlen - pre, "%s", at + 1);
      return;
    }
  }
  snprintf(out, outlen, "%s", url);
}

static int64_t now_ms(const dg_engine *e) {
  return e->o.clock ? e->o.clock(e->o.clock_ud) : dg_clock_monotonic_ms(NULL);
}

static void cfg_init(cfg *c, const char *ua, const char *ca, const char *proxy, long connect_ms,
                     long idle_s) {
  if (ua && strstr(ua, "libcurl/")) snprintf(c->ua, sizeof c->ua, "%s", ua);
  else if (ua) {                       /* "<caller's product> libcurl/<version>" */
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    snprintf(c->ua, sizeof c->ua, "%s libcurl/%s", ua, v && v->version ? v->version : "?");
  } else dg_engine_default_user_agent(c->ua, sizeof c->ua);
  c->ca_file = ca;
  if (!c->ca_file || !*c->ca_file) {
    /* libcurl itself reads none; the curl tool and most clients honour the last two, and
     * DICOMGCS_CA_FILE is what `emulator/start --tls` prints (verification stays on) */
    const char *env = getenv("DICOMGCS_CA_FILE");
    if (!env || !*env) env = getenv("CURL_CA_BUNDLE");
    if (!env || !*env) env = getenv("SSL_CERT_FILE");
    c->ca_file = env && *env ? env : NULL;
  }
  c->ca_path = getenv("SSL_CERT_DIR");
  if (c->ca_path && !*c->ca_path) c->ca_path = NULL;
  c->proxy = proxy && *proxy ? proxy : NULL;
  c->connect_ms = connect_ms;
  c->idle_s = idle_s;
  c->share = NULL;
  c->output_bufsize = 0;
  c->http2_uploads = 0;
}

static void slist_wipe_free(struct curl_slist *l) {
  for (struct curl_slist *p = l; p; p = p->next)
    if (p->data) OPENSSL_cleanse(p->data, strlen(p->data));
  curl_slist_free_all(l);
}

static int header_ok(const char *h) {
  for (; *h; h++) if (*h == '\r' || *h == '\n') return 0;
  return 1;
}

static int has_header(const char *h, const char *name) {
  size_t n = strlen(name);
  return strncasecmp(h, name, n) == 0 && h[n] == ':';
}

/* ---- transfers ---- */

static void transfer_release_attempt(dg_transfer *t) {
  if (t->out) { fclose(t->out); t->out = NULL; }
  if (t->out_fd >= 0) { close(t->out_fd); t->out_fd = -1; }
  dg_body_close(&t->body);
}

/* Remove the temporary file if this transfer created it (a name we did not create is never
 * touched: it may be another transfer's, or a planted link). */
static void part_remove(dg_transfer *t) {
  if (t->part_made) { unlink(t->part_file); t->part_made = 0; }
}

/* A fresh temporary file for this attempt (the previous attempt's, if any, is removed first),
 * created with O_EXCL|O_NOFOLLOW: nothing planted at the name is reused or followed. */
static FILE *part_open(dg_transfer *t) {
  part_remove(t);
  int fd = dg_fs_create_excl(t->part_file);
  if (fd < 0) return NULL;
  t->part_made = 1;
  FILE *f = fdopen(fd, "wb");
  if (!f) { int err = errno; close(fd); part_remove(t); errno = err; }
  return f;
}

void dg_transfer_free(dg_transfer *t) {
  if (!t) return;
  const dg_allocator *a = &t->alloc;
  transfer_release_attempt(t);
  part_remove(t);
  if (t->sink) {
    if (t->sink_jobs) {   /* freed while its fsyncs were out (the engine's end joined them) */
      dg_mpsink_abandon_sync(t->sink);
      dg_free(a, t->sink_jobs, t->sink_njobs * sizeof *t->sink_jobs);
    }
    if (t->state != T_DONE) dg_mpsink_end(t->sink, 0);   /* freed before it finished */
    dg_mpsink_release(t->sink);
  }
  if (t->easy) curl_easy_cleanup(t->easy);   /* the engine removed it from the multi */
  slist_wipe_free(t->slist);
  dg_body_free(&t->body);
  dg_buf_free(&t->hdrs);
  dg_buf_free(&t->body_buf);
  dg_strfree(a, t->method);
  dg_strfree(a, t->url);
  dg_strfree(a, t->safe_url);
  dg_strfree(a, t->output_file);
  dg_strfree(a, t->noproxy);
  if (t->part_file) dg_free(a, t->part_file, t->part_len);
  if (t->headers) {
    for (size_t i = 0; i < t->n_headers; i++) dg_strfree(a, t->headers[i]);
    dg_free(a, t->headers, t->n_headers * sizeof *t->headers);
  }
  dg_allocator copy = t->alloc;
  dg_free(&copy, t, sizeof *t);
}

static int method_ok(const char *m) {
  if (!*m) return 0;
  for (; *m; m++) if (!isupper((unsigned char)*m) && *m != '-' && *m != '_') return 0;
  return 1;
}

static dg_transfer *transfer_new(const dg_allocator *a, const dg_request *r, char *err,
                                 size_t errlen) {
  if (!r->url || !*r->url) { snprintf(err, errlen, "request: url is required"); return NULL; }
  if (!header_ok(r->url) || strchr(r->url, ' ')) {
    snprintf(err, errlen, "request: url contains spaces or line breaks");
    return NULL;
  }
  const char *m = r->method ? r->method : (r->has_body ? "POST" : "GET");
  if (!method_ok(m)) { snprintf(err, errlen, "request: bad method '%s'", m); return NULL; }
  for (size_t i = 0; i < r->n_headers; i++) {
    if (!header_ok(r->headers[i]) || !strchr(r->headers[i], ':')) {
      snprintf(err, errlen, "request: header %zu is not a single 'Name: value' line", i + 1);
      return NULL;
    }
  }
  if (r->output_file && !*r->output_file) {
    snprintf(err, errlen, "request: output_file is empty");
    return NULL;
  }
  if (r->output_offset >= 0) {
    struct stat st;
    if (!r->output_file) {
      snprintf(err, errlen, "request: output_offset needs output_file");
      return NULL;
    }
    int serr = lstat(r->output_file, &st) != 0 ? errno : 0;
    if (serr || !S_ISREG(st.st_mode)) {
      snprintf(err, errlen, "request: output_file %s must be an existing regular file when "
               "output_offset is given (%s)", r->output_file,
               serr ? strerror(serr) : "not a regular file");
      return NULL;
    }
  }
  if (r->has_body && dg_body_check(r->parts, r->n_parts, err, errlen) != 0) return NULL;
  if (r->mp_sink && (r->output_file || dg_mpsink_busy(r->mp_sink))) {
    snprintf(err, errlen, r->output_file ? "request: give multipart_sink or output_file, not both"
                                         : "request: the multipart sink is in use by another transfer");
    return NULL;
  }
  dg_transfer *t = dg_malloc(a, sizeof *t);
  if (!t) goto oom0;
  memset(t, 0, sizeof *t);
  t->alloc = *a;
  a = &t->alloc;
  t->out_fd = -1;
  t->out_offset = -1;
  dg_buf_init(&t->hdrs, a, 0);
  dg_buf_init(&t->body_buf, a, 0);
  memset(&t->body, 0, sizeof t->body);
  t->body.a = a;
  t->state = T_NEW;
  t->method = dg_strdup(a, m);
  t->url = dg_strdup(a, r->url);
  /* The stripped URL is shorter than its buffer: copy it so that dg_strfree frees the
   * size that was allocated. */
  size_t url_size = strlen(r->url) + 1;
  char *stripped = dg_malloc(a, url_size);
  if (stripped) {
    dg_url_strip_credentials(r->url, stripped, url_size);
    t->safe_url = dg_strdup(a, stripped);
    dg_free(a, stripped, url_size);
  }
  if (!t->method || !t->url || !t->safe_url) goto oom;
  if (r->n_headers) {
    t->headers = dg_malloc(a, r->n_headers * sizeof *t->headers);
    if (!t->headers) goto oom;
    memset(t->headers, 0, r->n_headers * sizeof *t->headers);
    t->n_headers = r->n_headers;
    for (size_t i = 0; i < r->n_headers; i++) {
      t->headers[i] = dg_strdup(a, r->headers[i]);
      if (!t->headers[i]) goto oom;
      if (has_header(r->headers[i], "content-type")) t->has_ctype = 1;
      if (has_header(r->headers[i], "authorization")) t->has_authz = 1;
    }
  }
  t->has_body = r->has_body;
  if (r->has_body && dg_body_init(&t->body, a, r->parts, r->n_parts) != 0) goto oom;
  if (r->noproxy && !(t->noproxy = dg_strdup(a, r->noproxy))) goto oom;
  if (r->output_file && r->output_offset >= 0) {
    t->out_offset = r->output_offset;
    if (!(t->output_file = dg_strdup(a, r->output_file))) goto oom;
  } else if (r->output_file) {
    size_t n = strlen(r->output_file) + 80;
    t->output_file = dg_strdup(a, r->output_file);
    t->part_file = dg_malloc(a, n);
    if (!t->output_file || !t->part_file) goto oom;
    t->part_len = n;
    if (dg_fs_temp_name(r->output_file, t->part_file, n) != 0) goto oom;
  }
  if (r->mp_sink) {
    t->sink = r->mp_sink;
    dg_mpsink_retain(t->sink);
    dg_mpsink_set_busy(t->sink, 1);
  }
  t->retry = r->retry;
  if (t->retry.max_attempts < 1) t->retry.max_attempts = 1;
  t->connect_ms = r->connect_timeout_ms;
  t->idle_s = r->idle_timeout_s;
  t->total_ms = r->total_timeout_ms;
  t->auth = r->auth;
  t->progress = r->progress;
  t->hash = r->hash & DG_HASH_CRC32C;
  t->retry_after_ms = -1;
  return t;
oom:
  dg_transfer_free(t);
oom0:
  snprintf(err, errlen, "out of memory");
  return NULL;
}

static void set_fail(dg_transfer *t, const char *kind, const char *msg) {
  if (t->fail_kind) return;            /* keep the first */
  t->fail_kind = kind;
  snprintf(t->msg, sizeof t->msg, "%s", msg);
}

/* ---- libcurl callbacks: C only, no Lua, no engine calls ---- */

static size_t on_header(char *p, size_t sz, size_t nm, void *ud) {
  dg_transfer *t = ud;
  size_t len = sz * nm, n = len;
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
    size_t i = 5;
    long code = 0;
    while (i < len && p[i] != ' ') i++;
    while (i < len && p[i] == ' ') i++;
    while (i < len && p[i] >= '0' && p[i] <= '9') code = code * 10 + (p[i++] - '0');
    t->status = code;
    dg_buf_reset(&t->hdrs);
    t->retry_after_ms = -1;
    return len;
  }
  while (n && (p[n - 1] == '\r' || p[n - 1] == '\n')) n--;
  const char *colon = n ? memchr(p, ':', n) : NULL;
  if (!colon || colon == p) return len;
  size_t nlen = (size_t)(colon - p);
  const char *v = colon + 1;
  size_t vlen = n - nlen - 1;
  while (vlen && (*v == ' ' || *v == '\t')) { v++; vlen--; }
  while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) vlen--;
  if (t->hdrs.len + nlen + vlen + 2 > HEADERS_CAP) return len;
  char name[128];
  if (nlen >= sizeof name) return len;
  for (size_t i = 0; i < nlen; i++) name[i] = (char)tolower((unsigned char)p[i]);
  name[nlen] = '\0';
  if (dg_buf_append(&t->hdrs, name, nlen + 1) || dg_buf_append(&t->hdrs, v, vlen) ||
      dg_buf_append(&t->hdrs, "", 1)) {
    set_fail(t, "io", "out of memory storing response headers");
    return 0;
  }
  if (strcmp(name, "retry-after") == 0) t->retry_after_ms = dg_retry_after_ms(v, vlen, dg_clock_wall_s());
  return len;
}

#define DG_OUTPUT_BUFSIZE (256L * 1024)   /* CURLOPT_BUFFERSIZE for output_file transfers */

static int is_2xx(long s) { return s >= 200 && s < 300; }

/* The value of response header `name` (lower case) of this attempt, or NULL. */
static const char *header_value(const dg_transfer *t, const char *name) {
  const char *p = t->hdrs.data, *end = p ? p + t->hdrs.len : NULL;
  while (p && p < end) {
    const char *v = p + strlen(p) + 1;
    if (v >= end) break;
    if (strcmp(p, name) == 0) return v;
    p = v + strlen(v) + 1;
  }
  return NULL;
}

/* out_offset mode: write len bytes at out_pos of the existing output_file (opened without
 * O_CREAT or O_TRUNC on the attempt's first byte, so each attempt starts again at out_offset). */
static int write_at(dg_transfer *t, const char *p, size_t len) {
  char m[DG_ERRLEN];
  if (t->out_fd < 0) {
    t->out_fd = open(t->output_file, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (t->out_fd < 0) {
      snprintf(m, sizeof m, "cannot open %s for writing at offset %lld: %s", t->output_file,
               (long long)t->out_offset, strerror(errno));
      set_fail(t, "io", m);
      return -1;
    }
    t->out_pos = t->out_offset;
  }
  while (len > 0) {
    ssize_t w = pwrite(t->out_fd, p, len, (off_t)t->out_pos);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      snprintf(m, sizeof m, "cannot write %s at offset %lld: %s", t->output_file,
               (long long)t->out_pos, w < 0 ? strerror(errno) : "nothing written");
      set_fail(t, "io", m);
      return -1;
    }
    p += w;
    len -= (size_t)w;
    t->out_pos += (int64_t)w;
  }
  return 0;
}

static size_t on_write(char *p, size_t sz, size_t nm, void *ud) {
  dg_transfer *t = ud;
  size_t len = sz * nm;
  t->recvd += (int64_t)len;
  if (t->e) t->e->bytes_received += (int64_t)len;
  if (t->hash && is_2xx(t->status)) t->crc = dg_crc32c(t->crc, p, len);
  if (t->out_offset >= 0 && is_2xx(t->status)) return write_at(t, p, len) == 0 ? len : 0;
  if (t->sink && is_2xx(t->status)) {
    if (!t->sink_begun) {
      const char *ct = header_value(t, "content-type");
      t->sink_begun = 1;
      if (dg_mpsink_begin(t->sink, ct ? ct : "", ct ? strlen(ct) : 0) != 0) {
        set_fail(t, "io", dg_mpsink_error(t->sink));
        return 0;
      }
    }
    if (dg_mpsink_write(t->sink, p, len) != 0) {
      set_fail(t, "io", dg_mpsink_error(t->sink));
      return 0;
    }
    return len;
  }
  if (t->output_file && is_2xx(t->status)) {
    if (!t->out) {
      t->out = part_open(t);
      if (!t->out) {
        char m[DG_ERRLEN];
        snprintf(m, sizeof m, "cannot open %s: %s", t->part_file, strerror(errno));
        set_fail(t, "io", m);
        return 0;
      }
    }
    if (fwrite(p, 1, len, t->out) != len) {
      char m[DG_ERRLEN];
      snprintf(m, sizeof m, "cannot write %s: %s", t->part_file, strerror(errno));
      set_fail(t, "io", m);
      return 0;
    }
    return len;
  }
  size_t keep = len;
  if (!is_2xx(t->status) && t->body_buf.len + keep > ERROR_BODY_CAP) {
    keep = t->body_buf.len < ERROR_BODY_CAP ? ERROR_BODY_CAP - t->body_buf.len : 0;
    t->body_buf.truncated = 1;
  }
  if (keep && dg_buf_append(&t->body_buf, p, keep) != 0) {
    set_fail(t, "io", "out of memory storing the response body");
    return 0;
  }
  return len;
}

static size_t on_read(char *buf, size_t sz, size_t nm, void *ud) {
  dg_transfer *t = ud;
  long long r = dg_body_read(&t->body, buf, sz * nm);
  if (r < 0) {
    set_fail(t, "io", t->body.err);
    return CURL_READFUNC_ABORT;
  }
  t->sent += r;
  if (t->e) t->e->bytes_sent += r;
  return (size_t)r;
}

static int on_seek(void *ud, curl_off_t off, int origin) {
  dg_transfer *t = ud;
  if (origin != SEEK_SET) return CURL_SEEKFUNC_CANTSEEK;
  if (dg_body_seek(&t->body, (int64_t)off) != 0) return CURL_SEEKFUNC_FAIL;
  t->sent = (int64_t)off;
  return CURL_SEEKFUNC_OK;
}

/* Progress numbers for the hook, and the idle timeout: libcurl's LOW_SPEED check
 * averages over several seconds, so "no byte for idle_s" is enforced here. */
static int on_xfer(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                   curl_off_t ulnow) {
  dg_transfer *t = ud;
  int64_t now = dg_clock_monotonic_ms(NULL);
  if (ulnow != t->prog[0] || dlnow != t->prog[2] || t->last_active_ms == 0) t->last_active_ms = now;
  t->prog[0] = ulnow; t->prog[1] = ultotal; t->prog[2] = dlnow; t->prog[3] = dltotal;
  if (t->idle_ms > 0 && now - t->last_active_ms >= t->idle_ms) {
    char m[128];
    snprintf(m, sizeof m, "no data moved for %lld s (idle timeout)", (long long)(t->idle_ms / 1000));
    set_fail(t, "timeout", m);
    return 1;
  }
  return 0;
}

#if LIBCURL_VERSION_NUM >= 0x075000
/* Called before each request goes on the wire. libcurl silently re-sends a request once when
 * a reused keep-alive connection turns out dead before any answer; counting sends here keeps
 * attempts (and the retry budget) equal to what the server saw. */
static int on_prereq(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                     int conn_local_port) {
  dg_transfer *t = ud;
  (void)conn_primary_ip; (void)conn_local_ip; (void)conn_primary_port; (void)conn_local_port;
  t->wire_sends++;
  return CURL_PREREQFUNC_OK;
}
#endif

/* ---- attempts ---- */

static void finish(dg_transfer *t) {
  transfer_release_attempt(t);
  if (t->easy) { curl_easy_cleanup(t->easy); t->easy = NULL; }
  slist_wipe_free(t->slist);
  t->slist = NULL;
  dg_body_free(&t->body);
  t->res.attempts = t->attempts;
  t->res.quota_waits = t->quota_attempts;
  t->res.bytes_sent = t->sent;
  t->res.bytes_received = t->recvd;
  t->res.url = t->safe_url;
  t->state = T_DONE;
  if (t->e) {
    list_push(&t->e->done, t);
    t->e->completed++;
  }
}

static void finish_error(dg_transfer *t, const char *kind, const char *msg, int curl_code) {
  if (msg != t->msg) snprintf(t->msg, sizeof t->msg, "%s", msg);
  transfer_release_attempt(t);
  part_remove(t);
  if (t->sink) dg_mpsink_end(t->sink, 0);   /* complete parts stay, the open one goes */
  t->res.ok = 0;
  t->res.kind = kind;
  t->res.message = t->msg;
  t->res.curl_code = curl_code;
  t->res.status = t->status;
  finish(t);
}

/* A 2xx body is in the output file and fsync'ed (bad: 0, or the errno of what failed so far):
 * close it, rename a part file into place, and finish. */
static void output_synced(dg_transfer *t, int bad) {
  if (t->out_offset >= 0) {
    if (t->out_fd >= 0 && close(t->out_fd) != 0 && !bad) bad = errno;
    t->out_fd = -1;
  } else if (t->out) {
    if (fclose(t->out) != 0 && !bad) bad = errno;
    t->out = NULL;
    if (!bad && rename(t->part_file, t->output_file) != 0) bad = errno;
    if (!bad) t->part_made = 0;   /* it is output_file now */
  }
  if (bad) {
    char m[DG_ERRLEN];
    snprintf(m, sizeof m, "cannot write %s: %s", t->output_file, strerror(bad));
    finish_error(t, "io", m, 0);
    return;
  }
  t->res.has_body = 0;
  finish(t);
}

/* Hand fd's fsync to the engine's workers (1; the transfer waits in T_SYNCING), or 0: fsync here
 * (dg_fetch has no engine; no worker could be started). */
static int sync_later(dg_transfer *t, int fd) {
  dg_engine *e = t->e;
  if (!e) return 0;
  if (!e->syncer && !(e->syncer = dg_syncer_new(&e->alloc))) return 0;
  t->sync.fd = fd;
  t->sync.ud = t;
  if (dg_syncer_submit(e->syncer, &t->sync) != 0) return 0;
  /* its buffers are not needed any more (the connection went back to the pool at remove_handle) */
  curl_easy_cleanup(t->easy);
  t->easy = NULL;
  t->state = T_SYNCING;
  list_push(&e->syncing, t);
  return 1;
}

/* The sink's parts still open after its response ended: their fsyncs go to the workers (1; the
 * transfer waits in T_SYNCING, finished in take_synced), or are done here, each one a worker did
 * not take (dg_fetch has no engine; no worker could start; no memory). The parts are walked from
 * the last: a failed fsync here removes its part, which moves only the ones already walked. */
static int sink_sync_later(dg_transfer *t) {
  size_t n = 0;
  for (size_t i = 0; i < dg_mpsink_count(t->sink); i++) n += dg_mpsink_unsynced_fd(t->sink, i) >= 0;
  if (n == 0) return 0;
  dg_engine *e = t->e;
  dg_syncer *workers = e && (e->syncer || (e->syncer = dg_syncer_new(&e->alloc))) ? e->syncer : NULL;
  t->sink_jobs = workers ? dg_malloc(&t->alloc, n * sizeof *t->sink_jobs) : NULL;
  t->sink_njobs = n;
  t->sink_left = 0;
  for (size_t i = dg_mpsink_count(t->sink); i-- > 0;) {
    int fd = dg_mpsink_unsynced_fd(t->sink, i);
    if (fd < 0) continue;
    if (t->sink_jobs) {   /* a job refused by the syncer was not linked: its slot is reused */
      dg_sync_job *j = &t->sink_jobs[t->sink_left];
      j->fd = fd;
      j->ud = t;
      if (dg_syncer_submit(workers, j) == 0) { t->sink_left++; continue; }
    }
    dg_mpsink_synced(t->sink, fd, fsync(fd) != 0 ? errno : 0);
  }
  if (t->sink_left == 0) {
    if (t->sink_jobs) dg_free(&t->alloc, t->sink_jobs, n * sizeof *t->sink_jobs);
    t->sink_jobs = NULL;
    return 0;
  }
  dg_mpsink_set_busy(t->sink, 1);   /* its files are the workers' until the fsyncs return */
  curl_easy_cleanup(t->easy);
  t->easy = NULL;
  t->state = T_SYNCING;
  list_push(&e->syncing, t);
  return 1;
}

/* A sink's response is over and every part fsync'ed: finish as the sink says. */
static void sink_finished(dg_transfer *t) {
  if (dg_mpsink_local_error(t->sink)) finish_error(t, "io", dg_mpsink_error(t->sink), 0);
  else finish(t);
}

static void finish_response(dg_transfer *t) {
  t->res.ok = 1;
  t->res.has_crc32c = t->hash && is_2xx(t->status);
  t->res.crc32c = t->crc;
  t->res.status = t->status;
  t->res.headers = t->hdrs.data ? t->hdrs.data : "";
  t->res.headers_len = t->hdrs.len;
  if (t->sink) {
    if (is_2xx(t->status)) {
      if (!t->sink_begun) {   /* an empty body */
        const char *ct = header_value(t, "content-type");
        dg_mpsink_begin(t->sink, ct ? ct : "", ct ? strlen(ct) : 0);
      }
      dg_mpsink_end(t->sink, 1);
      t->res.has_body = 0;
      if (sink_sync_later(t)) return;   /* sink_finished once the workers are done */
      sink_finished(t);
      return;
    }
    dg_mpsink_reset(t->sink);
    dg_mpsink_end(t->sink, 0);
  }
  if (t->output_file && is_2xx(t->status)) {
    /* fsync before anyone renames the file into place: after a crash a final name holds the
     * whole body or is absent (a rename can reach the disk before the data it names) */
    int bad = 0, fd = -1;
    if (t->out_offset >= 0) {                         /* written in place */
      fd = t->out_fd;
    } else {
      if (!t->out) t->out = part_open(t);  /* empty body: still create the file */
      if (!t->out) bad = errno;
      else if (fflush(t->out) != 0) bad = errno;
      else fd = fileno(t->out);
    }
    if (!bad && fd >= 0) {
      if (sync_later(t, fd)) return;                  /* output_synced when the worker is done */
      if (fsync(fd) != 0) bad = errno;
    }
    output_synced(t, bad);
  } else {
    if (t->part_file) { transfer_release_attempt(t); part_remove(t); }
    t->res.has_body = 1;
    t->res.body = t->body_buf.data ? t->body_buf.data : "";
    t->res.body_len = t->body_buf.len;
    t->res.body_truncated = t->body_buf.truncated;
    finish(t);
  }
}

/* The one rule for which bodies leave HTTP/2 (dg_engine.h DG_H2_BODY_MAX), for a request body of
 * SIZE; a download into a file (output_file) always does. */
static int sends_h1_body(const cfg *c, const dg_transfer *t, int64_t size) {
  if (t->output_file) return 1;
  return t->has_body && !c->http2_uploads && size > DG_H2_BODY_MAX;
}

/* Configure the easy handle for the next attempt. 0, or -1 after finish_error. */
static int attempt_prepare(dg_transfer *t, const cfg *c, const char *token, int64_t now) {
  t->attempts++;
  t->attempt_ms = now;
  t->status = 0;
  dg_buf_reset(&t->hdrs);
  dg_buf_reset(&t->body_buf);
  transfer_release_attempt(t);
  t->sent = t->recvd = 0;
  t->crc = 0;
  if (t->sink) { dg_mpsink_reset(t->sink); dg_mpsink_set_busy(t->sink, 1); t->sink_begun = 0; }
  t->retry_after_ms = -1;
  t->fail_kind = NULL;
  t->errbuf[0] = '\0';
  memset(t->prog, 0, sizeof t->prog);
  memset(t->prog_seen, 0, sizeof t->prog_seen);
  if (t->has_body && dg_body_open(&t->body) != 0) {
    finish_error(t, "io", t->body.err, 0);
    return -1;
  }
  if (t->easy) curl_easy_reset(t->easy);
  else if (!(t->easy = curl_easy_init())) {
    finish_error(t, "transport", "cannot create a libcurl handle", 0);
    return -1;
  }
  slist_wipe_free(t->slist);
  t->slist = NULL;
  struct curl_slist *l = NULL, *n;
  for (size_t i = 0; i < t->n_headers; i++) {
    if (!(n = curl_slist_append(l, t->headers[i]))) goto oom;
    l = n;
  }
  if (!(n = curl_slist_append(l, "Expect:"))) goto oom;
  l = n;
  if (!t->has_ctype && strcmp(t->method, "POST") == 0) {
    if (!(n = curl_slist_append(l, "Content-Type:"))) goto oom;   /* no form-urlencoded default */
    l = n;
  }
  if (token) {
    dg_buf h;
    dg_buf_init(&h, &t->alloc, 0);
    int bad = dg_buf_appendz(&h, "Authorization: Bearer ") || dg_buf_appendz(&h, token);
    n = bad ? NULL : curl_slist_append(l, h.data);
    dg_buf_wipe(&h);
    if (!n) goto oom;
    l = n;
  }
  t->slist = l;
  CURL *h = t->easy;
  t->errbuf[0] = '\0';
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(h, CURLOPT_PRIVATE, (void *)t);
  curl_easy_setopt(h, CURLOPT_URL, t->url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(h, CURLOPT_USERAGENT, c->ua);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, t->slist);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, (void *)t);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, (void *)t);
  /* bodies streamed to a file: bigger reads (fewer recv and pwrite calls); others keep 16 KiB */
  if (t->output_file || t->sink)
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, c->output_bufsize ? c->output_bufsize : (long)DG_OUTPUT_BUFSIZE);
  if (c->share) curl_easy_setopt(h, CURLOPT_SHARE, c->share);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);       /* never turned off */
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if (c->ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
  if (c->ca_path) curl_easy_setopt(h, CURLOPT_CAPATH, c->ca_path);
  if (c->proxy) curl_easy_setopt(h, CURLOPT_PROXY, c->proxy);
  if (t->noproxy) curl_easy_setopt(h, CURLOPT_NOPROXY, t->noproxy);
  /* HTTP/2 where offered, except large bodies (dg_engine.h DG_H2_BODY_MAX): libcurl 7.88
   * sends them in 8 KiB pieces, polling between each, at 2-4x the CPU of HTTP/1.1 (curl
   * --http2 alike; bench/RESULTS.md). They get their own connections; GETs stay multiplexed. */
  t->h1_body = sends_h1_body(c, t, t->body.total);
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION, t->h1_body ? (long)CURL_HTTP_VERSION_1_1 : (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  /* libcurl silently re-sends a request once when a reused connection dies before any answer
   * (it cannot know the server never acted on it); a never-ambiguous request gets a fresh
   * connection, so that a lost answer reaches us as a failure instead of a second request. */
  if (t->retry.replay == DG_REPLAY_NEVER_AMBIGUOUS) curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
  long connect_ms = t->connect_ms >= 0 ? t->connect_ms : c->connect_ms;
  long idle_s = t->idle_s >= 0 ? t->idle_s : c->idle_s;
  if (connect_ms > 0) curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  t->idle_ms = idle_s > 0 ? (int64_t)idle_s * 1000 : 0;
  t->last_active_ms = 0;
  if (idle_s > 0) {
    /* A backstop only: on_xfer enforces the idle limit to the millisecond. libcurl computes
     * the speed once a second and sees 0 B/s for a whole first second of a slow answer, so
     * LOW_SPEED_TIME = idle_s would cut a slow-but-moving transfer when idle_s is 1. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, idle_s + 2);
  }
  int64_t total = t->total_ms > 0 ? t->total_ms : 0;
  if (t->retry.deadline_ms > 0) {
    int64_t left = t->start_ms + t->retry.deadline_ms - now;
    if (left < 1) left = 1;
    if (!total || left < total) total = left;
  }
  if (total > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)total);
  const char *m = t->method;
  if (t->has_body) {
    curl_off_t size = (curl_off_t)t->body.total;
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, (void *)t);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, (void *)t);
    if (strcmp(m, "POST") == 0) {
      curl_easy_setopt(h, CURLOPT_POST, 1L);
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, size);
    } else {
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, size);
      if (strcmp(m, "PUT") != 0) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
    }
  } else if (strcmp(m, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (strcmp(m, "POST") == 0) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
  } else if (strcmp(m, "GET") != 0) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
  }
  t->wire_sends = 0;
#if LIBCURL_VERSION_NUM >= 0x075000
  curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, on_prereq);
  curl_easy_setopt(h, CURLOPT_PREREQDATA, (void *)t);
#endif
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xfer);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)t);
  return 0;
oom:
  slist_wipe_free(l);
  finish_error(t, "transport", "out of memory building request headers", 0);
  return -1;
}

/* After an attempt ended with rc: -1 when the transfer is finished (result
 * set), else the delay in ms before the next attempt. */
static int64_t attempt_done(dg_transfer *t, CURLcode rc, int64_t now, dg_random_fn rnd,
                            void *rud, dg_aimd *aimd, int token_gen) {
  int sent = t->wire_sends > 0;
  if (!sent && t->easy) {              /* libcurl without PREREQFUNCTION: bytes of request sent */
    long req_size = 0;
    if (curl_easy_getinfo(t->easy, CURLINFO_REQUEST_SIZE, &req_size) == CURLE_OK && req_size > 0) sent = 1;
  }
  if (t->wire_sends > 1) {             /* libcurl's own re-sends count as attempts */
    t->attempts += t->wire_sends - 1;
    if (t->e) t->e->retries += t->wire_sends - 1;
  }
  t->wire_sends = 0;
  int budget_used = t->attempts - (t->auth_retried ? 1 : 0) - t->quota_attempts;
  int idle = t->fail_kind && strcmp(t->fail_kind, "timeout") == 0;
  if (t->fail_kind && !idle) {        /* our callback refused: io, callback */
    finish_error(t, t->fail_kind, t->msg, 0);
    return -1;
  }
  if (idle) {                         /* our idle check: a stall, like libcurl's timeout */
    rc = CURLE_OPERATION_TIMEDOUT;
    t->fail_kind = NULL;
  }
  if (rc != CURLE_OK) {
    const char *kind = rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "transport";
    if (!idle) {
      if (t->errbuf[0]) snprintf(t->msg, sizeof t->msg, "%s: %s", curl_easy_strerror(rc), t->errbuf);
      else snprintf(t->msg, sizeof t->msg, "%s", curl_easy_strerror(rc));
    }
    int cls = dg_retry_classify(0, (int)rc, sent, t->retry.replay);
    if (rc == CURLE_OPERATION_TIMEDOUT && !idle && t->total_ms > 0 && now - t->attempt_ms >= t->total_ms - 5)
      cls = sent && t->retry.replay == DG_REPLAY_NEVER_AMBIGUOUS ? DG_CLASS_AMBIGUOUS
                                                                : DG_CLASS_FATAL;  /* the caller's total limit */
    if (cls == DG_CLASS_RETRY) {
      int64_t d = dg_retry_next_delay(&t->retry, budget_used, -1, t->start_ms, now, rnd, rud);
      /* A connection we reused died before any byte of the answer (an HTTP/2 GOAWAY or
       * REFUSED_STREAM: the server says it did not process the stream; a keep-alive connection the
       * server had closed): nothing is wrong with the server, so the first such retry goes at
       * once, on a fresh connection, instead of waiting out a backoff. */
      if (d > 0 && !t->fresh_retried && t->status == 0 && t->recvd == 0 && t->easy) {
        long connects = -1;
        if (curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects == 0) {
          t->fresh_retried = 1;
          d = 0;
        }
      }
      if (d >= 0) return d;
    }
    t->res.ambiguous = cls == DG_CLASS_AMBIGUOUS;
    finish_error(t, kind, t->msg, (int)rc);
    return -1;
  }
  if (t->status == 401 && t->used_auth && !t->auth_retried) {
    t->auth_retried = 1;
    t->force_token = (t->token_gen == token_gen);   /* nobody refreshed since */
    return 0;
  }
  int cls = dg_retry_classify(t->status, 0, 1, t->retry.replay);
  if ((cls == DG_CLASS_THROTTLE || cls == DG_CLASS_QUOTA) && aimd) dg_aimd_throttle(aimd);
  if (cls == DG_CLASS_QUOTA) {
    t->quota_attempts++;
    int64_t d = dg_retry_quota_delay(&t->retry, t->quota_attempts, t->retry_after_ms, t->start_ms, now,
                                     rnd, rud);
    if (d >= 0) {
      if (t->e) {
        t->e->quota_waits++;
        if (now + d > t->e->throttle_until_ms) t->e->throttle_until_ms = now + d;
      }
      return d;
    }
  } else if (cls == DG_CLASS_RETRY || cls == DG_CLASS_THROTTLE) {
    int64_t d = dg_retry_next_delay(&t->retry, budget_used, t->retry_after_ms, t->start_ms, now,
                                    rnd, rud);
    if (d >= 0) return d;
  }
  t->res.ambiguous = cls == DG_CLASS_AMBIGUOUS;
  if (is_2xx(t->status) && aimd) dg_aimd_success(aimd);
  finish_response(t);
  return -1;
}

/* ---- engine ---- */

void dg_engine_opts_default(dg_engine_opts *o) {
  memset(o, 0, sizeof *o);
  o->concurrency = 0;              /* chosen by the engine (dg_pace.h) */
  o->connect_timeout_ms = 10000;
  o->idle_timeout_s = 60;
}

void dg_request_default(dg_request *r) {
  memset(r, 0, sizeof *r);
  dg_retry_policy_default(&r->retry);
  r->connect_timeout_ms = -1;
  r->idle_timeout_s = -1;
  r->total_timeout_ms = 0;
  r->auth = -1;
  r->output_offset = -1;
  r->hash = 0;
}

dg_engine *dg_engine_new(const dg_allocator *a, const dg_engine_opts *o, char *err, size_t errlen) {
  dg_engine *e = dg_malloc(a, sizeof *e);
  if (!e) { snprintf(err, errlen, "out of memory"); return NULL; }
  memset(e, 0, sizeof *e);
  e->alloc = *a;
  e->o = *o;
  dg_token_init(&e->tok, &e->alloc);
  e->wake_fd = -1;
  /* each becomes a header line or a curl option: a line break would inject a header */
  if ((o->user_agent && !header_ok(o->user_agent)) || (o->proxy && !header_ok(o->proxy)) ||
      (o->ca_file && !header_ok(o->ca_file))) {
    snprintf(err, errlen, "%s contains a line break (CR or LF)",
             o->user_agent && !header_ok(o->user_agent) ? "user_agent" : o->proxy && !header_ok(o->proxy)
             ? "proxy" : "ca_file");
    dg_engine_free(e);
    return NULL;
  }
  /* concurrency 0: the engine chooses (dg_pace), up to DG_PACE_MAX in flight */
  e->auto_concurrency = e->o.concurrency < 1;
  if (e->auto_concurrency) e->o.concurrency = DG_PACE_MAX;
  if ((o->user_agent && !(e->ua = dg_strdup(&e->alloc, o->user_agent))) ||
      (o->ca_file && !(e->ca_file = dg_strdup(&e->alloc, o->ca_file))) ||
      (o->proxy && !(e->proxy = dg_strdup(&e->alloc, o->proxy)))) {
    snprintf(err, errlen, "out of memory");
    dg_engine_free(e);
    return NULL;
  }
  e->o.user_agent = e->ua;
  e->o.ca_file = e->ca_file;
  e->o.proxy = e->proxy;
  cfg_init(&e->c, e->ua, e->ca_file, e->proxy, e->o.connect_timeout_ms, e->o.idle_timeout_s);
  e->c.http2_uploads = e->o.http2_uploads;
  e->multi = curl_multi_init();
  if (!e->multi) {
    snprintf(err, errlen, "cannot create a libcurl multi handle");
    dg_engine_free(e);
    return NULL;
  }
  curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long)(e->o.concurrency + 4));
  /* HTTP/1.1 needs a connection per request in flight; HTTP/2 multiplexes them (PIPEWAIT) */
  curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)e->o.concurrency);
  dg_aimd_init(&e->aimd, e->o.concurrency);
  if (e->auto_concurrency) dg_pace_init(&e->pace, &e->aimd, DG_PACE_FLOOR, DG_PACE_MAX);
  /* one TLS handshake per host, later connections resume its session; DNS looked up once */
  e->c.share = curl_share_init();
  if (e->c.share) {
    curl_share_setopt(e->c.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(e->c.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  }
  /* receive buffers of downloads to files: 4 MiB in all at most, whatever the streams (at 128
   * streams 32 KiB each, two TLS records; 8 MiB took peak RSS past 32 MiB at 50 ms, no faster) */
  e->c.output_bufsize = (4L * 1024 * 1024) / e->o.concurrency;
  if (e->c.output_bufsize > DG_OUTPUT_BUFSIZE) e->c.output_bufsize = DG_OUTPUT_BUFSIZE;
  if (e->c.output_bufsize < 16L * 1024) e->c.output_bufsize = 16L * 1024;
  e->rng = (uint64_t)dg_clock_monotonic_ms(NULL) ^ ((uint64_t)(uintptr_t)e << 16) ^ (uint64_t)getpid();
  e->next_id = 1;
  return e;
}

static void free_list(dg_engine *e, tlist *l, int attached) {
  dg_transfer *t;
  while ((t = l->head)) {
    list_remove(l, t);
    if (attached && t->easy) curl_multi_remove_handle(e->multi, t->easy);
    dg_transfer_free(t);
  }
}

void dg_engine_free(dg_engine *e) {
  if (!e) return;
  dg_syncer_free(e->syncer);                     /* its fsyncs end before their files close */
  free_list(e, &e->syncing, 0);
  if (e->multi) free_list(e, &e->running, 1);   /* remove easies first ... */
  free_list(e, &e->queued, 0);
  free_list(e, &e->waiting, 0);
  free_list(e, &e->done, 0);
  if (e->multi) curl_multi_cleanup(e->multi);    /* ... then the multi */
  dg_token_free(&e->tok);
  if (e->c.share) curl_share_cleanup(e->c.share); /* no handle uses it any more */
  dg_strfree(&e->alloc, e->ua);
  dg_strfree(&e->alloc, e->ca_file);
  dg_strfree(&e->alloc, e->proxy);
  dg_allocator a = e->alloc;
  dg_free(&a, e, sizeof *e);
}

int dg_engine_has_token_hook(const dg_engine *e) { return e->o.token != NULL; }

int64_t dg_engine_next_id(const dg_engine *e) { return e->next_id; }

int64_t dg_engine_submit(dg_engine *e, const dg_request *r, char *err, size_t errlen) {
  if (r->auth > 0 && !e->o.token) {
    snprintf(err, errlen, "request: auth = true needs an engine with a token_provider");
    return -1;
  }
  dg_transfer *t = transfer_new(&e->alloc, r, err, errlen);
  if (!t) return -1;
  t->e = e;
  if (t->sink) dg_mpsink_defer_sync(t->sink, 1);   /* its parts' fsyncs go to the workers */
  t->id = e->next_id++;
  t->auth = (r->auth < 0 ? e->o.token != NULL : r->auth != 0) && !t->has_authz;
  if (!e->o.progress) t->progress = 0;
  t->start_ms = now_ms(e);
  if (r->delay_ms > 0) {               /* starts no earlier than now + delay */
    t->start_ms += r->delay_ms;
    t->due_ms = t->start_ms;
    t->state = T_WAITING;
    list_push(&e->waiting, t);
  } else {
    t->state = T_QUEUED;
    list_push(&e->queued, t);
  }
  return t->id;
}

int64_t dg_engine_timer(dg_engine *e, int64_t delay_ms, char *err, size_t errlen) {
  dg_transfer *t = dg_malloc(&e->alloc, sizeof *t);
  if (!t) { snprintf(err, errlen, "out of memory"); return -1; }
  memset(t, 0, sizeof *t);
  t->alloc = e->alloc;
  t->out_fd = -1;
  t->out_offset = -1;
  dg_buf_init(&t->hdrs, &t->alloc, 0);
  dg_buf_init(&t->body_buf, &t->alloc, 0);
  t->body.a = &t->alloc;
  t->is_timer = 1;
  t->e = e;
  t->id = e->next_id++;
  t->start_ms = now_ms(e);
  t->due_ms = t->start_ms + (delay_ms > 0 ? delay_ms : 0);
  t->state = T_WAITING;
  list_push(&e->waiting, t);
  return t->id;
}

void dg_engine_set_wake_fd(dg_engine *e, int fd) { e->wake_fd = fd; }

static int ensure_token(dg_engine *e, dg_transfer *t) {
  int64_t now = now_ms(e);
  int force = t->force_token && t->token_gen == e->tok.gen;
  t->force_token = 0;
  if (!force && dg_token_fresh(&e->tok, now)) return 0;
  if (e->token_failed) return !force && dg_token_valid(&e->tok, now) ? 0 : -1;
  e->token_err[0] = '\0';
  if (!e->o.token) {
    snprintf(e->token_err, sizeof e->token_err, "no token provider");
    e->token_failed = 1;
    return -1;
  }
  int gen = e->tok.gen;
  int rc = e->o.token(e->o.hook_ud, e, force, e->token_err, sizeof e->token_err);
  if (rc != 0 || e->tok.gen == gen || !e->tok.value.len) {
    if (!e->token_err[0]) snprintf(e->token_err, sizeof e->token_err, "token provider returned no token");
    e->token_failed = 1;
    if (!force && dg_token_valid(&e->tok, now)) {   /* serve the old one a little longer */
      dg_token_postpone(&e->tok, now);
      return 0;
    }
    return -1;
  }
  return 0;
}

int dg_engine_set_token(dg_engine *e, const char *tok, size_t len, double expires_in_s) {
  return dg_token_set(&e->tok, tok, len, expires_in_s, now_ms(e), 0);
}

/* Whether T may go over HTTP/1.1 with a body before its files are measured (any file part may be
 * large), and how many such run now: DG_H1_BODIES_MAX bounds them, not the pace. */
static int may_be_h1_body(const dg_engine *e, const dg_transfer *t) {
  int64_t size = 0;
  for (size_t i = 0; i < t->body.n; i++) {
    if (t->body.parts[i].path) { size = INT64_MAX; break; }
    size += (int64_t)t->body.parts[i].len;
  }
  return sends_h1_body(&e->c, t, size);
}

static size_t h1_bodies_running(const dg_engine *e) {
  size_t n = 0;
  for (const dg_transfer *r = e->running.head; r; r = r->next) n += r->h1_body ? 1 : 0;
  return n;
}

static void start_queued(dg_engine *e) {
  dg_transfer *t;
  /* a transfer waiting for its fsync still holds its file open: it counts as in flight, so a disk
   * slower than the network holds back new transfers instead of piling up open files */
  while ((t = e->queued.head) && (int)(e->running.n + e->syncing.n) < dg_aimd_limit(&e->aimd)) {
    /* first in, first out: an upload waiting for a connection holds back what follows it */
    if (may_be_h1_body(e, t) && h1_bodies_running(e) >= DG_H1_BODIES_MAX) break;
    list_remove(&e->queued, t);
    t->state = T_NEW;
    const char *tok = NULL;
    if (t->auth) {
      if (ensure_token(e, t) != 0) {
        t->attempts++;                 /* the attempt failed before the wire */
        finish_error(t, "auth", e->token_err, 0);
        continue;
      }
      tok = e->tok.value.data;
      t->token_gen = e->tok.gen;
      t->used_auth = 1;
    }
    if (attempt_prepare(t, &e->c, tok, now_ms(e)) != 0) continue;
    CURLMcode mc = curl_multi_add_handle(e->multi, t->easy);
    if (mc != CURLM_OK) {
      finish_error(t, "transport", curl_multi_strerror(mc), 0);
      continue;
    }
    t->state = T_RUNNING;
    list_push(&e->running, t);
  }
}

static void promote_due(dg_engine *e, int64_t now) {
  dg_transfer *t = e->waiting.head, *next;
  for (; t; t = next) {
    next = t->next;
    if (t->due_ms <= now) {
      list_remove(&e->waiting, t);
      if (t->is_timer) {
        t->res.ok = 1;
        t->res.timer = 1;
        t->state = T_DONE;
        list_push(&e->done, t);
        continue;
      }
      t->state = T_QUEUED;
      list_push_front(&e->queued, t);   /* retries go first */
    }
  }
}

static int call_progress(dg_engine *e, dg_transfer *t) {
  if (!e->o.progress || !t->progress || memcmp(t->prog, t->prog_seen, sizeof t->prog) == 0) return 0;
  memcpy(t->prog_seen, t->prog, sizeof t->prog);
  char err[DG_ERRLEN];
  err[0] = '\0';
  if (e->o.progress(e->o.hook_ud, e, t->id, t->prog[0], t->prog[1], t->prog[2], t->prog[3],
                    err, sizeof err) == 0) return 0;
  set_fail(t, "callback", err[0] ? err : "progress callback failed");
  return -1;
}

/* The last numbers of a finished attempt (libcurl may not have reported them). */
static void final_progress(dg_transfer *t) {
  curl_off_t v;
  if (!t->progress || !t->easy) return;
  if (curl_easy_getinfo(t->easy, CURLINFO_SIZE_UPLOAD_T, &v) == CURLE_OK && v > t->prog[0]) t->prog[0] = v;
  if (curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_UPLOAD_T, &v) == CURLE_OK && v > 0) t->prog[1] = v;
  if (curl_easy_getinfo(t->easy, CURLINFO_SIZE_DOWNLOAD_T, &v) == CURLE_OK && v > t->prog[2]) t->prog[2] = v;
  if (curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &v) == CURLE_OK && v > 0) t->prog[3] = v;
}

static void drain(dg_engine *e) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(e->multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL *easy = msg->easy_handle;
    CURLcode rc = msg->data.result;     /* copy before the handle is removed */
    char *priv = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    curl_multi_remove_handle(e->multi, easy);
    dg_transfer *t = (dg_transfer *)(void *)priv;
    if (!t || t->state != T_RUNNING) continue;
    list_remove(&e->running, t);
    t->state = T_NEW;
    if (rc == CURLE_OK && !t->fail_kind) {
      final_progress(t);
      call_progress(e, t);             /* an error here fails the transfer (kind callback) */
    }
    int64_t now = now_ms(e);
    dg_random_fn rnd = e->o.random ? e->o.random : dg_random_splitmix;
    void *rud = e->o.random ? e->o.random_ud : &e->rng;
    curl_off_t t_pre = -1, t_first = -1;
    if (e->auto_concurrency && rc == CURLE_OK) {
      curl_easy_getinfo(easy, CURLINFO_PRETRANSFER_TIME_T, &t_pre);
      /* what another request waits for: request sent to the answer's first byte; with a body,
       * to the answer's end (libcurl 7.88 stamps STARTTRANSFER as an upload begins, so the first
       * byte would read as 0 ms and every upload as unqueued, doubling the count to the max) */
      curl_easy_getinfo(easy, t->has_body ? CURLINFO_TOTAL_TIME_T : CURLINFO_STARTTRANSFER_TIME_T, &t_first);
    }
    int64_t d = attempt_done(t, rc, now, rnd, rud, &e->aimd, e->tok.gen);
    if (d < 0 && e->auto_concurrency && is_2xx(t->status) && t_first >= t_pre && t_pre >= 0)
      dg_pace_sample(&e->pace, &e->aimd, (double)(t_first - t_pre) / 1000.0);
    if (d >= 0) {
      e->retries++;
      transfer_release_attempt(t);
      t->due_ms = now + d;
      t->state = T_WAITING;
      list_push(&e->waiting, t);
    }
  }
}

/* Finish the transfers whose output the workers have fsync'ed. */
static void take_synced(dg_engine *e) {
  dg_sync_job *j;
  while (e->syncer && (j = dg_syncer_take(e->syncer))) {
    dg_transfer *t = j->ud;
    if (t->sink_jobs) {
      dg_mpsink_synced(t->sink, j->fd, j->err);
      if (--t->sink_left > 0) continue;
      dg_free(&t->alloc, t->sink_jobs, t->sink_njobs * sizeof *t->sink_jobs);
      t->sink_jobs = NULL;
      dg_mpsink_set_busy(t->sink, 0);
    }
    list_remove(&e->syncing, t);
    t->state = T_NEW;
    if (t->cancelled) finish_error(t, "cancelled", "cancelled", 0);
    else if (t->sink) sink_finished(t);
    else output_synced(t, j->err);
  }
}

static void report_progress(dg_engine *e) {
  if (!e->o.progress) return;
  dg_transfer *t = e->running.head, *next;
  for (; t; t = next) {
    next = t->next;
    if (call_progress(e, t) != 0) {
      curl_multi_remove_handle(e->multi, t->easy);
      list_remove(&e->running, t);
      t->state = T_NEW;
      finish_error(t, t->fail_kind, t->msg, 0);
    }
  }
}

int dg_engine_step(dg_engine *e, int timeout_ms) {
  int64_t now = now_ms(e);
  int64_t until = now + (timeout_ms > 0 ? timeout_ms : 0);
  e->token_failed = 0;
  for (;;) {
    int still = 0;
    promote_due(e, now);
    start_queued(e);
    if (e->running.n) {
      curl_multi_perform(e->multi, &still);
      drain(e);
      report_progress(e);
    }
    take_synced(e);
    now = now_ms(e);
    promote_due(e, now);
    start_queued(e);
    if (e->done.n) break;
    if (!e->queued.n && !e->running.n && !e->waiting.n && !e->syncing.n) break;
    if (now >= until) break;
    int64_t wait = until - now;
    for (dg_transfer *t = e->waiting.head; t; t = t->next)
      if (t->due_ms - now < wait) wait = t->due_ms - now;
    if (wait < 0) wait = 0;
    /* [0]: the owner's wake fd, if any; then the fsync workers' */
    struct pollfd pf[2];
    struct curl_waitfd cw[2];
    unsigned n = 0;
    int woken = 0;
    if (e->wake_fd >= 0) pf[n++] = (struct pollfd){ e->wake_fd, POLLIN, 0 };
    if (e->syncing.n) pf[n++] = (struct pollfd){ dg_syncer_fd(e->syncer), POLLIN, 0 };
    for (unsigned i = 0; i < n; i++) cw[i] = (struct curl_waitfd){ pf[i].fd, CURL_WAIT_POLLIN, 0 };
    if (e->running.n) {
      curl_multi_poll(e->multi, n ? cw : NULL, n, (int)wait, NULL);
      woken = e->wake_fd >= 0 && (cw[0].revents & CURL_WAIT_POLLIN);
    } else if (wait > 0 || n) {
      woken = poll(pf, n, (int)wait) > 0 && e->wake_fd >= 0 && (pf[0].revents & POLLIN);
    }
    now = now_ms(e);
    if (woken) break;   /* the owner of the fd wants control */
  }
  return (int)e->done.n;
}

static dg_transfer *find(dg_engine *e, int64_t id) {
  tlist *ls[] = { &e->running, &e->queued, &e->waiting, &e->syncing, &e->done };
  for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++)
    for (dg_transfer *t = ls[i]->head; t; t = t->next)
      if (t->id == id) return t;
  return NULL;
}

int dg_engine_cancel(dg_engine *e, int64_t id) {
  dg_transfer *t = find(e, id);
  if (!t || t->state == T_DONE) return 0;
  if (t->state == T_SYNCING) {
    /* its file is a worker's until the fsync returns: wait for that (one fsync at most) */
    t->cancelled = 1;
    while (t->state == T_SYNCING) {
      struct pollfd pf = { dg_syncer_fd(e->syncer), POLLIN, 0 };
      poll(&pf, 1, -1);
      take_synced(e);
    }
    return 1;
  }
  if (t->state == T_RUNNING) curl_multi_remove_handle(e->multi, t->easy);
  list_remove(list_of(e, t), t);
  t->state = T_NEW;
  finish_error(t, "cancelled", "cancelled", 0);
  return 1;
}

size_t dg_engine_pending(const dg_engine *e) {
  return e->queued.n + e->waiting.n + e->running.n + e->syncing.n + e->done.n;
}

void dg_engine_stats_get(const dg_engine *e, dg_engine_stats *s) {
  s->in_flight = (int)e->running.n;
  s->cap = dg_aimd_limit(&e->aimd);
  s->queued = (int)e->queued.n;
  s->waiting = (int)e->waiting.n;
  s->completed = e->completed;
  s->retries = e->retries;
  s->bytes_sent = e->bytes_sent;
  s->bytes_received = e->bytes_received;
  s->quota_waits = e->quota_waits;
  int64_t left = e->throttle_until_ms - now_ms(e);
  s->throttle_wait_ms = left > 0 ? left : 0;
}

dg_transfer *dg_engine_done_first(dg_engine *e) { return e->done.head; }

dg_transfer *dg_engine_done_find(dg_engine *e, int64_t id) {
  for (dg_transfer *t = e->done.head; t; t = t->next)
    if (t->id == id) return t;
  return NULL;
}

void dg_engine_done_release(dg_engine *e, dg_transfer *t) {
  list_remove(&e->done, t);
  dg_transfer_free(t);
}

int64_t dg_transfer_id(const dg_transfer *t) { return t->id; }
const dg_result *dg_transfer_result(const dg_transfer *t) { return &t->res; }

/* ---- one-shot ---- */

dg_transfer *dg_fetch(const dg_allocator *a, const dg_engine_opts *o, const dg_request *r,
                      char *err, size_t errlen) {
  dg_engine_opts def;
  if (!o) { dg_engine_opts_default(&def); o = &def; }
  if (r->auth > 0) { snprintf(err, errlen, "request: fetch does not take auth = true"); return NULL; }
  dg_transfer *t = transfer_new(a, r, err, errlen);
  if (!t) return NULL;
  t->auth = 0;
  t->progress = 0;
  cfg c;
  cfg_init(&c, o->user_agent, o->ca_file, o->proxy, o->connect_timeout_ms, o->idle_timeout_s);
  dg_clock_fn clk = o->clock ? o->clock : dg_clock_monotonic_ms;
  void *cud = o->clock ? o->clock_ud : NULL;
  uint64_t seed = (uint64_t)dg_clock_monotonic_ms(NULL) ^ (uint64_t)(uintptr_t)t;
  dg_random_fn rnd = o->random ? o->random : dg_random_splitmix;
  void *rud = o->random ? o->random_ud : &seed;
  t->start_ms = clk(cud);
  for (;;) {
    if (attempt_prepare(t, &c, NULL, clk(cud)) != 0) break;
    CURLcode rc = curl_easy_perform(t->easy);
    int64_t d = attempt_done(t, rc, clk(cud), rnd, rud, NULL, 0);
    if (d < 0) break;
    transfer_release_attempt(t);
    if (d > 0) {
      struct timespec ts = { (time_t)(d / 1000), (long)(d % 1000) * 1000000L };
      while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }
  }
  return t;
}
