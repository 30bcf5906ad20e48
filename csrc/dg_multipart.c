/* dg_multipart.c - streaming multipart/related parser; see dg_multipart.h. */
#include "dg_multipart.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum {
  ST_PREAMBLE = 1, /* looking for the first delimiter; bytes discarded */
  ST_AFTER_DELIM,  /* "--boundary" just matched */
  ST_CLOSE_DASH,   /* "--boundary-" */
  ST_PAD,          /* transport padding after a delimiter */
  ST_PAD_LF,       /* CR after a delimiter */
  ST_HEADERS,
  ST_BODY,
  ST_EPI_PAD,      /* after the close delimiter */
  ST_EPI_LF,
  ST_EPILOGUE,
  ST_ERROR
};

const char *dg_mp_status_name(dg_mp_status st) {
  switch (st) {
    case DG_MP_OK: return "ok";
    case DG_MP_EARG: return "arg";
    case DG_MP_EMALFORMED: return "malformed";
    case DG_MP_EHEADERS: return "headers_too_large";
    case DG_MP_ELENGTH: return "length_mismatch";
    case DG_MP_ETRUNCATED: return "truncated";
  }
  return "unknown";
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static dg_mp_status set_error(dg_mp *p, dg_mp_status st, unsigned long long off, const char *fmt, ...) {
  va_list ap;
  char msg[128];
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(p->message, sizeof p->message, "%s at byte %llu", msg, off);
  p->state = ST_ERROR;
  p->error = st;
  p->error_offset = off;
  return st;
}

static int is_bchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
  return c != 0 && strchr("'()+_,-./:=? ", c) != NULL;
}

static int is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int ieq(const char *a, size_t alen, const char *b) {
  size_t i;
  if (alen != strlen(b)) return 0;
  for (i = 0; i < alen; i++)
    if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return 0;
  return 1;
}

dg_mp_status dg_mp_init(dg_mp *p, const char *boundary, size_t blen, char *hdrbuf, size_t hdrcap) {
  size_t i;
  memset(p, 0, sizeof *p);
  p->state = ST_ERROR;
  p->error = DG_MP_EARG;
  if (!boundary || blen == 0 || blen > DG_MP_BOUNDARY_MAX) {
    snprintf(p->message, sizeof p->message, "boundary must be 1 to %d characters", DG_MP_BOUNDARY_MAX);
    return DG_MP_EARG;
  }
  for (i = 0; i < blen; i++)
    if (!is_bchar((unsigned char)boundary[i])) {
      snprintf(p->message, sizeof p->message, "boundary has a character not allowed by RFC 2046 (0x%02X)",
               (unsigned char)boundary[i]);
      return DG_MP_EARG;
    }
  if (boundary[blen - 1] == ' ') {
    snprintf(p->message, sizeof p->message, "boundary must not end with a space");
    return DG_MP_EARG;
  }
  if (!hdrbuf || hdrcap < 4) {
    snprintf(p->message, sizeof p->message, "header buffer too small");
    return DG_MP_EARG;
  }
  memcpy(p->delim, "\r\n--", 4);
  memcpy(p->delim + 4, boundary, blen);
  p->dlen = blen + 4;
  p->hdr = hdrbuf;
  p->hdrcap = hdrcap;
  p->state = ST_PREAMBLE;
  p->held = 2; /* as if a CRLF preceded the stream: "--boundary" may open it */
  p->virt = 2;
  p->error = DG_MP_OK;
  p->content_length = -1;
  return DG_MP_OK;
}

dg_mp_status dg_mp_boundary_from_content_type(const char *ct, size_t len, char *out, size_t outcap,
                                              size_t *outlen) {
  size_t i = 0, t0;
  int found = 0;
  if (outlen) *outlen = 0;
  if (!ct || !out || outcap < DG_MP_BOUNDARY_MAX + 1) return DG_MP_EARG;
  out[0] = '\0';
  while (i < len && (ct[i] == ' ' || ct[i] == '\t')) i++;
  t0 = i;
  while (i < len && is_tchar((unsigned char)ct[i])) i++;
  if (!ieq(ct + t0, i - t0, "multipart")) return DG_MP_EARG;
  if (i >= len || ct[i] != '/') return DG_MP_EARG;
  i++;
  t0 = i;
  while (i < len && is_tchar((unsigned char)ct[i])) i++;
  if (i == t0) return DG_MP_EARG;
  for (;;) {
    size_t n0, nlen, vlen = 0;
    int is_boundary;
    while (i < len && (ct[i] == ' ' || ct[i] == '\t')) i++;
    if (i == len) break;
    if (ct[i] != ';') return DG_MP_EARG;
    i++;
    while (i < len && (ct[i] == ' ' || ct[i] == '\t')) i++;
    if (i == len) break; /* a trailing ';' is tolerated */
    n0 = i;
    while (i < len && is_tchar((unsigned char)ct[i])) i++;
    nlen = i - n0;
    if (nlen == 0 || i >= len || ct[i] != '=') return DG_MP_EARG;
    i++;
    is_boundary = ieq(ct + n0, nlen, "boundary");
    if (is_boundary && found) return DG_MP_EARG; /* two boundaries */
    if (i < len && ct[i] == '"') {
      i++;
      for (;;) {
        char ch;
        if (i >= len) return DG_MP_EARG;
        ch = ct[i++];
        if (ch == '"') break;
        if (ch == '\\') {
          if (i >= len) return DG_MP_EARG;
          ch = ct[i++];
        }
        if (is_boundary) {
          if (vlen >= DG_MP_BOUNDARY_MAX) return DG_MP_EARG;
          out[vlen++] = ch;
        }
      }
    } else {
      size_t v0 = i;
      while (i < len && is_tchar((unsigned char)ct[i])) i++;
      if (i == v0) return DG_MP_EARG;
      if (is_boundary) {
        if (i - v0 > DG_MP_BOUNDARY_MAX) return DG_MP_EARG;
        memcpy(out, ct + v0, i - v0);
        vlen = i - v0;
      }
    }
    if (is_boundary) {
      size_t k;
      if (vlen == 0 || out[vlen - 1] == ' ') return DG_MP_EARG;
      for (k = 0; k < vlen; k++)
        if (!is_bchar((unsigned char)out[k])) return DG_MP_EARG;
      out[vlen] = '\0';
      if (outlen) *outlen = vlen;
      found = 1;
    }
  }
  if (!found) {
    out[0] = '\0';
    return DG_MP_EARG;
  }
  return DG_MP_OK;
}

const dg_mp_header *dg_mp_find_header(const dg_mp_header *h, size_t n, const char *name) {
  size_t i;
  for (i = 0; i < n; i++)
    if (ieq(h[i].name, h[i].name_len, name)) return &h[i];
  return NULL;
}

const char *dg_mp_error(const dg_mp *p) { return p->state == ST_ERROR ? p->message : ""; }
unsigned long long dg_mp_error_offset(const dg_mp *p) { return p->error_offset; }

/* Parse (and unfold in place) the complete header block hdr[0 .. hdrlen),
 * which ends with an empty line. start is the stream offset of hdr[0]. */
static dg_mp_status parse_headers(dg_mp *p, unsigned long long start) {
  char *h = p->hdr;
  size_t end = p->hdrlen - 2, r = 0, w = 0;
  p->nheaders = 0;
  p->content_length = -1;
  while (r < end) {
    size_t line = w, line_r = r, colon, nend, v0, v1;
    dg_mp_header *hd;
    if (h[r] == ' ' || h[r] == '\t')
      return set_error(p, DG_MP_EMALFORMED, start + r, "part %zu: header continuation line without a header",
                       p->part);
    for (;;) { /* copy one logical line, dropping CRLF before folded SP/HT */
      if (h[r] == '\r') {
        if (h[r + 2] == ' ' || h[r + 2] == '\t') { r += 2; continue; }
        r += 2;
        break;
      }
      h[w++] = h[r++];
    }
    for (colon = line; colon < w && h[colon] != ':'; colon++) {
      if (!is_tchar((unsigned char)h[colon]))
        return set_error(p, DG_MP_EMALFORMED, start + line_r + (colon - line),
                         "part %zu: invalid character 0x%02X in a header name", p->part, (unsigned char)h[colon]);
    }
    if (colon == w)
      return set_error(p, DG_MP_EMALFORMED, start + line_r, "part %zu: header line without ':'", p->part);
    if (colon == line)
      return set_error(p, DG_MP_EMALFORMED, start + line_r, "part %zu: empty header name", p->part);
    nend = colon;
    v0 = colon + 1;
    v1 = w;
    while (v0 < v1 && (h[v0] == ' ' || h[v0] == '\t')) v0++;
    while (v1 > v0 && (h[v1 - 1] == ' ' || h[v1 - 1] == '\t')) v1--;
    if (p->nheaders == DG_MP_MAX_HEADERS)
      return set_error(p, DG_MP_EHEADERS, start + line_r, "part %zu: more than %d header fields", p->part,
                       DG_MP_MAX_HEADERS);
    hd = &p->headers[p->nheaders++];
    hd->name = h + line;
    hd->name_len = nend - line;
    hd->value = h + v0;
    hd->value_len = v1 - v0;
    if (ieq(hd->name, hd->name_len, "content-length")) {
      long long v = 0;
      size_t k;
      if (hd->value_len == 0 || hd->value_len > 18)
        return set_error(p, DG_MP_EMALFORMED, start + line_r, "part %zu: bad Content-Length", p->part);
      for (k = 0; k < hd->value_len; k++) {
        if (hd->value[k] < '0' || hd->value[k] > '9')
          return set_error(p, DG_MP_EMALFORMED, start + line_r, "part %zu: bad Content-Length", p->part);
        v = v * 10 + (hd->value[k] - '0');
      }
      if (p->content_length >= 0 && p->content_length != v)
        return set_error(p, DG_MP_EMALFORMED, start + line_r, "part %zu: conflicting Content-Length headers",
                         p->part);
      p->content_length = v;
    }
  }
  return DG_MP_OK;
}

dg_mp_status dg_mp_next(dg_mp *p, const unsigned char *buf, size_t len, size_t *used, dg_mp_event *ev) {
  size_t i = 0;
  memset(ev, 0, sizeof *ev);
  ev->content_length = -1;
  *used = 0;
  if (p->state == ST_ERROR) return p->error;
  if (!buf) len = 0;

  while (i < len) {
    switch (p->state) {
      case ST_PREAMBLE:
      case ST_BODY: {
        int body = p->state == ST_BODY;
        size_t start, pos, r, m = 0;
        if (p->held > 0) { /* continue a delimiter match begun in an earlier chunk */
          size_t k = p->held, j = 0;
          while (k + j < p->dlen && i + j < len && buf[i + j] == p->delim[k + j]) j++;
          if (k + j == p->dlen || i + j == len) {
            i += j;
            p->offset += j;
            p->held = k + j;
            if (p->held < p->dlen) break; /* chunk used up, still undecided */
            p->held = 0;
            p->virt = 0;
            goto delimiter;
          }
          /* mismatch: the held bytes were data (delim[1..] holds no CR, so none restarts a
           * match), except a virtual leading CRLF, which was never in the stream as data */
          p->held = 0;
          if (body && k > p->virt) {
            size_t v = p->virt;
            p->virt = 0;
            p->body_len += k - v;
            ev->type = DG_MP_EV_DATA;
            ev->part = p->part;
            ev->data = p->delim + v;
            ev->len = k - v;
            *used = i;
            return DG_MP_OK;
          }
          p->virt = 0;
          continue;
        }
        start = pos = i;
        for (;;) {
          const unsigned char *cr = memchr(buf + pos, '\r', len - pos);
          if (!cr) { r = len; m = 0; break; }
          r = (size_t)(cr - buf);
          m = 0;
          while (m < p->dlen && r + m < len && buf[r + m] == p->delim[m]) m++;
          if (m == p->dlen || r + m == len) break;
          pos = r + 1;
        }
        if (r > start) {
          p->offset += r - start;
          if (body) {
            p->body_len += r - start;
            ev->type = DG_MP_EV_DATA;
            ev->part = p->part;
            ev->data = buf + start;
            ev->len = r - start;
            *used = r;
            return DG_MP_OK;
          }
          i = r;
        }
        if (r == len) break;
        i += m;
        p->offset += m;
        if (m < p->dlen) { /* a delimiter prefix ends the chunk: hold it */
          p->held = m;
          break;
        }
      delimiter:
        if (p->state == ST_BODY) {
          p->state = ST_AFTER_DELIM;
          if (p->content_length >= 0 && p->body_len != (unsigned long long)p->content_length)
            return set_error(p, DG_MP_ELENGTH, p->offset - p->dlen,
                             "part %zu: body is %llu bytes but Content-Length is %lld", p->part, p->body_len,
                             p->content_length);
          ev->type = DG_MP_EV_END;
          ev->part = p->part;
          *used = i;
          return DG_MP_OK;
        }
        p->state = ST_AFTER_DELIM;
        break;
      }
      case ST_AFTER_DELIM: {
        unsigned char c = buf[i];
        if (c == '-') p->state = ST_CLOSE_DASH;
        else if (c == ' ' || c == '\t') p->state = ST_PAD;
        else if (c == '\r') p->state = ST_PAD_LF;
        else
          return set_error(p, DG_MP_EMALFORMED, p->offset,
                           "boundary followed by byte 0x%02X instead of CRLF or \"--\"", c);
        i++;
        p->offset++;
        break;
      }
      case ST_CLOSE_DASH:
        if (buf[i] != '-')
          return set_error(p, DG_MP_EMALFORMED, p->offset, "boundary followed by a single '-'");
        if (p->part == 0)
          return set_error(p, DG_MP_EMALFORMED, p->offset - p->dlen + 1, "close delimiter before any part");
        i++;
        p->offset++;
        p->state = ST_EPI_PAD;
        ev->type = DG_MP_EV_DONE;
        ev->part = p->part;
        *used = i;
        return DG_MP_OK;
      case ST_PAD:
        if (buf[i] == '\r') p->state = ST_PAD_LF;
        else if (buf[i] != ' ' && buf[i] != '\t')
          return set_error(p, DG_MP_EMALFORMED, p->offset, "byte 0x%02X in the padding after a boundary",
                           buf[i]);
        i++;
        p->offset++;
        break;
      case ST_PAD_LF:
        if (buf[i] != '\n')
          return set_error(p, DG_MP_EMALFORMED, p->offset, "CR not followed by LF after a boundary");
        i++;
        p->offset++;
        p->state = ST_HEADERS;
        p->hdrlen = 0;
        p->line_start = 0;
        p->nheaders = 0;
        p->part++;
        break;
      case ST_HEADERS: {
        unsigned char c = buf[i];
        size_t n = p->hdrlen;
        if (n > 0 && p->hdr[n - 1] == '\r' && c != '\n')
          return set_error(p, DG_MP_EMALFORMED, p->offset - 1, "part %zu: CR without LF in the headers", p->part);
        if (c == '\n' && (n == 0 || p->hdr[n - 1] != '\r'))
          return set_error(p, DG_MP_EMALFORMED, p->offset, "part %zu: bare LF in the headers", p->part);
        if (n == p->hdrcap)
          return set_error(p, DG_MP_EHEADERS, p->offset, "part %zu: header block longer than %zu bytes", p->part,
                           p->hdrcap);
        p->hdr[n++] = (char)c;
        p->hdrlen = n;
        i++;
        p->offset++;
        if (c == '\n' && n - p->line_start > 2) { /* a header line ended: check its shape now */
          size_t k = p->line_start;
          const char *h = p->hdr;
          unsigned long long at = p->offset - (n - k);
          if (h[k] == ' ' || h[k] == '\t') {
            if (k == 0)
              return set_error(p, DG_MP_EMALFORMED, at, "part %zu: header continuation line without a header",
                               p->part);
          } else {
            while (k < n - 2 && is_tchar((unsigned char)h[k])) k++;
            if (k == n - 2 || h[k] != ':' || k == p->line_start)
              return set_error(p, DG_MP_EMALFORMED, p->offset - (n - k),
                               "part %zu: header line without ':' after a valid name", p->part);
          }
          p->line_start = n;
          break;
        }
        if (c == '\n') {
          dg_mp_status st = parse_headers(p, p->offset - n);
          if (st != DG_MP_OK) return st;
          /* RFC 2046: body-part := headers [CRLF *OCTET], delimiter := CRLF "--" boundary, so
           * the CRLF ending the header block may also open the delimiter of an empty body */
          p->state = ST_BODY;
          p->body_len = 0;
          p->held = 2;
          p->virt = 2;
          ev->type = DG_MP_EV_BEGIN;
          ev->part = p->part;
          ev->headers = p->headers;
          ev->nheaders = p->nheaders;
          ev->content_length = p->content_length;
          *used = i;
          return DG_MP_OK;
        }
        break;
      }
      case ST_EPI_PAD:
        if (buf[i] == '\r') p->state = ST_EPI_LF;
        else if (buf[i] != ' ' && buf[i] != '\t')
          return set_error(p, DG_MP_EMALFORMED, p->offset, "byte 0x%02X after the close delimiter", buf[i]);
        i++;
        p->offset++;
        break;
      case ST_EPI_LF:
        if (buf[i] != '\n')
          return set_error(p, DG_MP_EMALFORMED, p->offset, "CR not followed by LF after the close delimiter");
        i++;
        p->offset++;
        p->state = ST_EPILOGUE;
        break;
      case ST_EPILOGUE:
        p->offset += len - i;
        i = len;
        break;
      default:
        return set_error(p, DG_MP_EARG, p->offset, "parser in an unknown state");
    }
  }
  *used = len;
  return DG_MP_OK;
}

dg_mp_status dg_mp_finish(dg_mp *p) {
  switch (p->state) {
    case ST_EPI_PAD:
    case ST_EPI_LF:
    case ST_EPILOGUE:
      return DG_MP_OK;
    case ST_ERROR:
      return p->error;
    case ST_PREAMBLE:
      return set_error(p, DG_MP_ETRUNCATED, p->offset, "stream ended before the first boundary \"--%.*s\"",
                       (int)(p->dlen - 4), (const char *)p->delim + 4);
    case ST_HEADERS:
      return set_error(p, DG_MP_ETRUNCATED, p->offset, "stream ended inside the headers of part %zu", p->part);
    case ST_BODY:
      return set_error(p, DG_MP_ETRUNCATED, p->offset,
                       "stream ended inside the body of part %zu (%llu bytes) before its closing boundary",
                       p->part, p->body_len + p->held);
    default:
      return set_error(p, DG_MP_ETRUNCATED, p->offset, "stream ended right after a boundary (part %zu)",
                       p->part);
  }
}
