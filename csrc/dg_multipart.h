/*
 * dg_multipart.h - strict, streaming multipart/related (RFC 2046 5.1) parser
 * for WADO-RS responses (multipart/related; type="application/dicom"; boundary=...).
 *
 * Pull style, no callbacks: feed a chunk of any size (1 byte to MBs) to
 * dg_mp_next() repeatedly; each call consumes some bytes and returns at most
 * one event:
 *
 *   DG_MP_EV_BEGIN  a part starts; ev.headers[0 .. ev.nheaders) are its
 *                   unfolded header fields, ev.content_length is -1 or the
 *                   Content-Length value;
 *   DG_MP_EV_DATA   ev.data[0 .. ev.len) are body bytes of the current part
 *                   (never empty). Zero-copy: they point into the chunk you
 *                   passed, or - for up to 4+70 bytes held back at the end of
 *                   the previous chunk because they could have started a
 *                   delimiter - into the parser's own boundary string;
 *   DG_MP_EV_END    the current part ended (its closing delimiter was seen);
 *   DG_MP_EV_DONE   the close delimiter was seen; later bytes are epilogue;
 *   DG_MP_EV_NONE   the chunk is used up (*used == remaining length); feed the next.
 *
 * Pointers in an event stay valid until the next call with this parser, and
 * for DATA as long as the chunk itself. Loop:
 *
 *   size_t off = 0, used; dg_mp_event ev;
 *   for (;;) {
 *     if (dg_mp_next(p, buf + off, len - off, &used, &ev) != DG_MP_OK) -> dg_mp_error(p)
 *     off += used;
 *     if (ev.type == DG_MP_EV_NONE) break;      (off == len now)
 *     ...handle ev...
 *   }
 *   ...at end of input: dg_mp_finish(p) != DG_MP_OK means truncated.
 *
 * Framing rules (strict): the first delimiter is "--boundary" at offset 0 or
 * "CRLF--boundary" after a preamble (discarded); the CRLF that ends a header
 * block also serves as the CRLF of the next delimiter, so "--b CRLF A: 1 CRLF
 * CRLF --b" is a part with an empty body (RFC 2046 body-part grammar); after each delimiter only
 * transport padding (SP / HT) then CRLF, or "--" for the close delimiter;
 * part headers are CRLF-terminated lines "Name: value" (obsolete folding
 * accepted and unfolded), bare CR or LF rejected, at most hdrcap bytes and
 * DG_MP_MAX_HEADERS fields, ended by an empty line; a part whose body length
 * differs from its Content-Length is an error; "CRLF--boundary" followed by
 * anything but padding/CRLF/"--" is an error (RFC 2046: the delimiter must not
 * occur in a body), while boundary-like bytes not preceded by CRLF-- are data;
 * after the close delimiter, padding then CRLF then anything (the epilogue).
 * A stream with no part ("--b--" first) is an error.
 *
 * Errors are sticky: after one, every call returns the same status;
 * dg_mp_error() gives a message naming the absolute stream byte offset
 * (dg_mp_error_offset()).
 *
 * Memory: none allocated. dg_mp is a plain struct the caller places anywhere
 * (the Lua binding puts it in a userdata); the header block buffer is
 * caller-provided too and must outlive the parser. Nothing to free.
 * Not thread-safe per parser; no shared state; no Lua.
 */
#ifndef DG_MULTIPART_H
#define DG_MULTIPART_H

#include <stddef.h>

#define DG_MP_BOUNDARY_MAX 70      /* RFC 2046 */
#define DG_MP_MAX_HEADERS 64
#define DG_MP_DEFAULT_HEADER_BYTES 16384

typedef enum {
  DG_MP_OK = 0,
  DG_MP_EARG,        /* bad boundary or content type, or a closed/unusable parser */
  DG_MP_EMALFORMED,  /* framing or header syntax error */
  DG_MP_EHEADERS,    /* header block larger than hdrcap or more than DG_MP_MAX_HEADERS */
  DG_MP_ELENGTH,     /* body length differs from Content-Length */
  DG_MP_ETRUNCATED   /* dg_mp_finish before the close delimiter */
} dg_mp_status;

typedef enum {
  DG_MP_EV_NONE = 0,
  DG_MP_EV_BEGIN,
  DG_MP_EV_DATA,
  DG_MP_EV_END,
  DG_MP_EV_DONE
} dg_mp_event_type;

typedef struct {
  const char *name;  /* as sent; compare case-insensitively */
  size_t name_len;
  const char *value; /* leading/trailing blanks trimmed, folding removed */
  size_t value_len;
} dg_mp_header;

typedef struct {
  dg_mp_event_type type;
  size_t part;                  /* 1-based index of the current part */
  const unsigned char *data;    /* DATA */
  size_t len;
  const dg_mp_header *headers;  /* BEGIN */
  size_t nheaders;
  long long content_length;     /* BEGIN: -1 when absent */
} dg_mp_event;

/* Private fields; use the functions. */
typedef struct {
  unsigned char delim[4 + DG_MP_BOUNDARY_MAX]; /* "\r\n--" boundary */
  size_t dlen;
  int state;
  size_t held;          /* bytes of delim matched at the end of earlier chunks */
  size_t virt;          /* of which leading bytes are a virtual CRLF (not stream data) */
  unsigned long long offset;  /* absolute stream offset of the next byte */
  char *hdr;
  size_t hdrcap, hdrlen, line_start;
  dg_mp_header headers[DG_MP_MAX_HEADERS];
  size_t nheaders;
  size_t part;
  long long content_length;
  unsigned long long body_len;
  dg_mp_status error;
  unsigned long long error_offset;
  char message[160];
} dg_mp;

/* Initialise p for boundary[0 .. blen) (1..70 RFC 2046 bchars, not ending in
 * a space). hdrbuf[0 .. hdrcap) holds one part's header block at a time (use
 * DG_MP_DEFAULT_HEADER_BYTES). On failure p is left in an error state. */
dg_mp_status dg_mp_init(dg_mp *p, const char *boundary, size_t blen, char *hdrbuf, size_t hdrcap);

/* Extract the boundary parameter from a Content-Type value such as
 * multipart/related; type="application/dicom"; boundary="abc" (quoted or not,
 * parameter names case-insensitive). The media type must be multipart/x.
 * Writes it NUL-terminated to out (outcap >= DG_MP_BOUNDARY_MAX + 1) and its
 * length to *outlen. Returns DG_MP_EARG with no boundary or a bad one. */
dg_mp_status dg_mp_boundary_from_content_type(const char *ct, size_t len, char *out, size_t outcap,
                                              size_t *outlen);

/* See the top of this file. buf may be NULL when len is 0. */
dg_mp_status dg_mp_next(dg_mp *p, const unsigned char *buf, size_t len, size_t *used, dg_mp_event *ev);

/* The input has ended: DG_MP_OK if the close delimiter was seen, else
 * DG_MP_ETRUNCATED (or the earlier sticky error) with a message. */
dg_mp_status dg_mp_finish(dg_mp *p);

/* Case-insensitive lookup among ev->headers; NULL when absent. */
const dg_mp_header *dg_mp_find_header(const dg_mp_header *h, size_t n, const char *name);

const char *dg_mp_error(const dg_mp *p);              /* "" when no error */
unsigned long long dg_mp_error_offset(const dg_mp *p);
const char *dg_mp_status_name(dg_mp_status st);     /* "ok", "arg", "malformed", ... */

#endif
