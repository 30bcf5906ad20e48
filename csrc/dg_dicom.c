/* dg_dicom.c - strict DICOM Part 10 header reader; see dg_dicom.h. */
#include "dg_dicom.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define UNDEF_LEN 0xFFFFFFFFu
#define NO_END ((size_t)-1)

#define TAG(g, e) (((uint32_t)(g) << 16) | (uint32_t)(e))
#define TAG_SOP_CLASS TAG(0x0008, 0x0016)
#define TAG_SOP_INSTANCE TAG(0x0008, 0x0018)
#define TAG_STUDY TAG(0x0020, 0x000D)
#define TAG_SERIES TAG(0x0020, 0x000E)
#define TAG_PIXEL_DATA TAG(0x7FE0, 0x0010)

#define TS_IMPLICIT_LE "1.2.840.10008.1.2"
#define TS_EXPLICIT_BE "1.2.840.10008.1.2.2"
#define TS_DEFLATED "1.2.840.10008.1.2.1.99"

typedef struct {
  const unsigned char *b;
  size_t len;
  int complete;
  size_t pos; /* where the walk is, for consumed */
  dg_dicom_header *h;
} ctx;

enum { K_SEQ = 1, K_ITEM, K_FRAG };

typedef struct {
  size_t end;   /* NO_END for undefined length */
  size_t lim;   /* nearest defined end of this or an enclosing container, or NO_END */
  size_t start; /* offset of the element / item header, for messages */
  unsigned short g, e;
  unsigned char kind, explicit_vr, big;
} frame;

const char *dg_dicom_status_name(dg_dicom_status st) {
  switch (st) {
    case DG_DICOM_OK: return "ok";
    case DG_DICOM_NOT_DICOM: return "not_dicom";
    case DG_DICOM_NO_PREAMBLE: return "no_preamble";
    case DG_DICOM_TRUNCATED: return "truncated";
    case DG_DICOM_BAD_META: return "bad_meta";
    case DG_DICOM_BAD_VR_LENGTH: return "bad_vr_length";
    case DG_DICOM_MISSING_UID: return "missing_uid";
    case DG_DICOM_BAD_UID: return "bad_uid";
    case DG_DICOM_NEED_MORE_DATA: return "need_more_data";
  }
  return "unknown";
}

static unsigned rd16(const unsigned char *p, int big) {
  return big ? ((unsigned)p[0] << 8) | p[1] : ((unsigned)p[1] << 8) | p[0];
}

static uint32_t rd32(const unsigned char *p, int big) {
  if (big) return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
  return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static dg_dicom_status fail(ctx *c, dg_dicom_status st, size_t off, const char *fmt, ...) {
  va_list ap;
  c->h->status = st;
  c->h->offset = off;
  c->h->consumed = c->pos > c->len ? c->len : c->pos;
  va_start(ap, fmt);
  vsnprintf(c->h->reason, sizeof c->h->reason, fmt, ap);
  va_end(ap);
  return st;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
/* Keep the first warning; the walk goes on. */
static void warn(ctx *c, const char *fmt, ...) {
  va_list ap;
  if (c->h->warning[0]) return;
  va_start(ap, fmt);
  vsnprintf(c->h->warning, sizeof c->h->warning, fmt, ap);
  va_end(ap);
}

/* The bytes ran out at off while reading `what`; total is what would do. */
static dg_dicom_status short_of(ctx *c, size_t off, size_t total, const char *what, unsigned g,
                                unsigned e) {
  char tag[16] = "";
  if (g || e) snprintf(tag, sizeof tag, " (%04X,%04X)", g, e);
  if (c->complete)
    return fail(c, DG_DICOM_TRUNCATED, off,
                "file ends at byte %zu inside %s%s at offset %zu (needs %zu bytes)", c->len, what, tag,
                off, total);
  c->h->need = total;
  return fail(c, DG_DICOM_NEED_MORE_DATA, off,
              "first %zu bytes end inside %s%s at offset %zu; need at least %zu", c->len, what, tag, off,
              total);
}

/* 0: not a VR; 1: 2-byte length; 2: reserved + 4-byte length. *unit: fixed value size or 0. */
static int vr_kind(const unsigned char *v, unsigned *unit) {
  static const char shortvr[] = "AEASATCSDADSDTFLFDISLOLTPNSHSLSSSTTMUIULUS";
  static const char longvr[] = "OBODOFOLOVOWSQUCURUTUNSVUV";
  size_t i;
  *unit = 0;
  for (i = 0; shortvr[i]; i += 2)
    if (v[0] == (unsigned char)shortvr[i] && v[1] == (unsigned char)shortvr[i + 1]) {
      if ((v[0] == 'U' && v[1] == 'S') || (v[0] == 'S' && v[1] == 'S')) *unit = 2;
      else if ((v[0] == 'U' && v[1] == 'L') || (v[0] == 'S' && v[1] == 'L') ||
               (v[0] == 'F' && v[1] == 'L') || (v[0] == 'A' && v[1] == 'T'))
        *unit = 4;
      else if (v[0] == 'F' && v[1] == 'D') *unit = 8;
      return 1;
    }
  for (i = 0; longvr[i]; i += 2)
    if (v[0] == (unsigned char)longvr[i] && v[1] == (unsigned char)longvr[i + 1]) {
      if (v[0] == 'O' && (v[1] == 'L' || v[1] == 'F')) *unit = 4;
      else if ((v[0] == 'O' && (v[1] == 'D' || v[1] == 'V')) || v[1] == 'V') *unit = 8; /* OD OV SV UV */
      return 2;
    }
  return 0;
}

static int vr_is(const unsigned char *v, const char *name) {
  return v[0] == (unsigned char)name[0] && v[1] == (unsigned char)name[1];
}

/* Printable form of two VR bytes for messages. */
static void vr_text(const unsigned char *v, char out[8]) {
  if (v[0] >= 0x20 && v[0] < 0x7F && v[1] >= 0x20 && v[1] < 0x7F)
    snprintf(out, 8, "%c%c", v[0], v[1]);
  else
    snprintf(out, 8, "%02X%02X", v[0], v[1]);
}

const char *dg_dicom_uid_problem(const char *uid, size_t len) {
  size_t i, comp_start = 0;
  if (len == 0) return "is empty";
  if (len > DG_DICOM_UID_MAX) return "is longer than 64 characters";
  for (i = 0; i < len; i++) {
    char ch = uid[i];
    if (ch == '.') {
      if (i == comp_start) return "has an empty component";
      comp_start = i + 1;
    } else if (ch >= '0' && ch <= '9') {
      if (i == comp_start && ch == '0' && i + 1 < len && uid[i + 1] != '.')
        return "has a component with a leading zero";
    } else {
      return "contains a character other than 0-9 and '.'";
    }
  }
  if (comp_start == len) return "has an empty component";
  return NULL;
}

/* Strip trailing NUL padding, validate, copy into dst (DG_DICOM_UID_MAX+1 bytes). */
static dg_dicom_status take_uid(ctx *c, size_t off, unsigned g, unsigned e, const unsigned char *v,
                                size_t n, char *dst) {
  const char *problem;
  while (n > 0 && v[n - 1] == 0) n--;
  problem = dg_dicom_uid_problem((const char *)v, n);
  if (problem) {
    size_t bad = 0;
    while (bad < n && ((v[bad] >= '0' && v[bad] <= '9') || v[bad] == '.')) bad++;
    if (bad < n && bad < DG_DICOM_UID_MAX + 1)
      return fail(c, DG_DICOM_BAD_UID, off,
                  "UID (%04X,%04X) at offset %zu %s (byte 0x%02X at value offset %zu)", g, e, off,
                  problem, v[bad], bad);
    return fail(c, DG_DICOM_BAD_UID, off, "UID (%04X,%04X) at offset %zu %s", g, e, off, problem);
  }
  memcpy(dst, v, n);
  dst[n] = '\0';
  return DG_DICOM_OK;
}

static dg_dicom_status read_meta(ctx *c, size_t *meta_end_out) {
  const unsigned char *b = c->b;
  dg_dicom_header *h = c->h;
  size_t p = 132, meta_end;
  uint32_t glen, last = TAG(0x0002, 0x0000);
  int have_version = 0;
  dg_dicom_status st;

  c->pos = p;
  if (c->len < p + 12) return short_of(c, p, p + 12, "file meta group length", 0x0002, 0x0000);
  if (rd16(b + p, 0) != 0x0002 || rd16(b + p + 2, 0) != 0x0000)
    return fail(c, DG_DICOM_BAD_META, p,
                "file meta group must start with (0002,0000) group length at offset %zu, found (%04X,%04X)",
                p, rd16(b + p, 0), rd16(b + p + 2, 0));
  if (!vr_is(b + p + 4, "UL") || rd16(b + p + 6, 0) != 4)
    return fail(c, DG_DICOM_BAD_META, p,
                "(0002,0000) at offset %zu must be explicit VR UL of length 4", p);
  glen = rd32(b + p + 8, 0);
  if (glen > 65536)
    return fail(c, DG_DICOM_BAD_META, p, "(0002,0000) group length %lu at offset %zu is implausible",
                (unsigned long)glen, p);
  p += 12;
  meta_end = p + glen;
  if (meta_end > c->len)
    return short_of(c, 132, meta_end, "file meta group of", 0x0002, 0x0000);

  while (p < meta_end) {
    unsigned g, e, kind, unit;
    uint32_t tag, vlen;
    size_t hdr;
    char vr[8];
    c->pos = p;
    if (meta_end - p < 8)
      return fail(c, DG_DICOM_BAD_META, p,
                  "element header at offset %zu crosses the end of the file meta group at %zu "
                  "(group length %lu)", p, meta_end, (unsigned long)glen);
    g = rd16(b + p, 0);
    e = rd16(b + p + 2, 0);
    tag = TAG(g, e);
    if (g != 0x0002)
      return fail(c, DG_DICOM_BAD_META, p,
                  "(%04X,%04X) at offset %zu inside the file meta group (group length says it ends at %zu)",
                  g, e, p, meta_end);
    if (tag <= last)
      return fail(c, DG_DICOM_BAD_META, p, "(%04X,%04X) at offset %zu is out of order or repeated", g, e, p);
    last = tag;
    kind = (unsigned)vr_kind(b + p + 4, &unit);
    vr_text(b + p + 4, vr);
    if (!kind)
      return fail(c, DG_DICOM_BAD_META, p, "(%04X,%04X) at offset %zu has invalid VR '%s'", g, e, p, vr);
    if (kind == 2) {
      if (meta_end - p < 12)
        return fail(c, DG_DICOM_BAD_META, p,
                    "element header at offset %zu crosses the end of the file meta group at %zu", p, meta_end);
      vlen = rd32(b + p + 8, 0);
      hdr = 12;
    } else {
      vlen = rd16(b + p + 6, 0);
      hdr = 8;
    }
    if (vlen == UNDEF_LEN)
      return fail(c, DG_DICOM_BAD_META, p, "(%04X,%04X) at offset %zu has undefined length in the meta group",
                  g, e, p);
    if (vlen > meta_end - p - hdr)
      return fail(c, DG_DICOM_BAD_META, p,
                  "value of (%04X,%04X) at offset %zu (length %lu) runs past the end of the file meta "
                  "group at %zu", g, e, p, (unsigned long)vlen, meta_end);
    if (vlen & 1)
      return fail(c, DG_DICOM_BAD_META, p, "(%04X,%04X) at offset %zu has odd length %lu", g, e, p,
                  (unsigned long)vlen);
    if (unit && vlen % unit)
      return fail(c, DG_DICOM_BAD_META, p, "(%04X,%04X) at offset %zu: length %lu is not a multiple of %u for VR %s",
                  g, e, p, (unsigned long)vlen, unit, vr);
    if (e == 0x0001) {
      if (!vr_is(b + p + 4, "OB") || vlen != 2)
        return fail(c, DG_DICOM_BAD_META, p,
                    "(0002,0001) version at offset %zu must be OB of length 2", p);
      have_version = 1;
    } else if (e == 0x0002 || e == 0x0003 || e == 0x0010) {
      char *dst = e == 0x0002 ? h->meta_sop_class_uid
                : e == 0x0003 ? h->meta_sop_instance_uid : h->transfer_syntax;
      if (!vr_is(b + p + 4, "UI"))
        return fail(c, DG_DICOM_BAD_META, p, "(0002,%04X) at offset %zu has VR %s, expected UI", e, p, vr);
      st = take_uid(c, p, g, e, b + p + hdr, vlen, dst);
      if (st != DG_DICOM_OK) return st;
    }
    p += hdr + vlen;
  }
  c->pos = p;
  if (!have_version)
    return fail(c, DG_DICOM_BAD_META, p, "file meta group lacks (0002,0001) File Meta Information Version");
  if (!h->meta_sop_class_uid[0])
    return fail(c, DG_DICOM_BAD_META, p, "file meta group lacks (0002,0002) Media Storage SOP Class UID");
  if (!h->meta_sop_instance_uid[0])
    return fail(c, DG_DICOM_BAD_META, p, "file meta group lacks (0002,0003) Media Storage SOP Instance UID");
  if (!h->transfer_syntax[0])
    return fail(c, DG_DICOM_BAD_META, p, "file meta group lacks (0002,0010) Transfer Syntax UID");
  /* An element of group 0002 right after the declared length means the length lies. */
  if (c->len - p >= 4 && rd16(b + p, 0) == 0x0002)
    return fail(c, DG_DICOM_BAD_META, p,
                "(0002,%04X) at offset %zu lies past the end of the file meta group given by (0002,0000)",
                rd16(b + p + 2, 0), p);
  *meta_end_out = p;
  return DG_DICOM_OK;
}

static const char *missing_list(const dg_dicom_header *h, char *buf, size_t n) {
  buf[0] = '\0';
  if (!h->sop_class_uid[0]) strncat(buf, ", SOP Class UID (0008,0016)", n - strlen(buf) - 1);
  if (!h->sop_instance_uid[0]) strncat(buf, ", SOP Instance UID (0008,0018)", n - strlen(buf) - 1);
  if (!h->study_uid[0]) strncat(buf, ", Study Instance UID (0020,000D)", n - strlen(buf) - 1);
  if (!h->series_uid[0]) strncat(buf, ", Series Instance UID (0020,000E)", n - strlen(buf) - 1);
  return buf[0] ? buf + 2 : buf;
}

static dg_dicom_status finish_missing(ctx *c, size_t off, const char *why) {
  char list[160];
  return fail(c, DG_DICOM_MISSING_UID, off, "missing %s: %s at offset %zu",
              missing_list(c->h, list, sizeof list), why, off);
}

static dg_dicom_status walk(ctx *c, size_t p, int explicit_vr, int big) {
  frame st[2 * DG_DICOM_MAX_DEPTH + 2];
  int depth = 0;
  const unsigned char *b = c->b;
  dg_dicom_header *h = c->h;
  dg_dicom_status s;

  for (;;) {
    frame *top = depth ? &st[depth - 1] : NULL;
    int ex = top ? top->explicit_vr : explicit_vr;
    int be = top ? top->big : big;
    size_t lim = top ? top->lim : NO_END;
    unsigned g, e;
    uint32_t tag, vlen;

    c->pos = p;
    if (top && top->end != NO_END && p == top->end) { depth--; continue; }
    if (top && lim != NO_END && p == lim)
      return fail(c, DG_DICOM_BAD_VR_LENGTH, p,
                  "%s of undefined length at offset %zu is not closed before its enclosing item ends at %zu",
                  top->kind == K_ITEM ? "item" : "sequence", top->start, lim);
    if (p >= c->len) {
      if (!top) {
        if (c->complete) return finish_missing(c, p, "end of file");
        return short_of(c, p, p + 8, "the dataset", 0, 0);
      }
      return short_of(c, p, p + 8, "the sequence", top->g, top->e);
    }

    if (top && (top->kind == K_SEQ || top->kind == K_FRAG)) {
      size_t end;
      if (c->len - p < 8) return short_of(c, p, p + 8, "an item header in sequence", top->g, top->e);
      if (lim != NO_END && lim - p < 8)
        return fail(c, DG_DICOM_BAD_VR_LENGTH, p,
                    "item header at offset %zu crosses the end of sequence (%04X,%04X) at %zu", p, top->g,
                    top->e, lim);
      g = rd16(b + p, be);
      e = rd16(b + p + 2, be);
      vlen = rd32(b + p + 4, be);
      if (g == 0xFFFE && e == 0xE0DD) {
        if (top->end != NO_END)
          return fail(c, DG_DICOM_BAD_VR_LENGTH, p,
                      "sequence delimiter at offset %zu inside sequence (%04X,%04X) of defined length", p,
                      top->g, top->e);
        if (vlen != 0)
          return fail(c, DG_DICOM_BAD_VR_LENGTH, p, "sequence delimiter at offset %zu has length %lu, not 0",
                      p, (unsigned long)vlen);
        depth--;
        p += 8;
        continue;
      }
      if (g != 0xFFFE || e != 0xE000)
        return fail(c, DG_DICOM_BAD_VR_LENGTH, p,
                    "expected an item (FFFE,E000) in sequence (%04X,%04X) at offset %zu, found (%04X,%04X)",
                    top->g, top->e, p, g, e);
      if (vlen == UNDEF_LEN) {
        if (top->kind == K_FRAG)
          return fail(c, DG_DICOM_BAD_VR_LENGTH, p, "pixel data fragment at offset %zu has undefined length", p);
        end = NO_END;
      } else {
        if (vlen & 1)
          return fail(c, DG_DICOM_BAD_VR_LENGTH, p, "item at offset %zu has odd length %lu", p,
                      (unsigned long)vlen);
        if ((lim != NO_END && vlen > lim - p - 8) || vlen > NO_END - 1 - p - 8)
          return fail(c, DG_DICOM_BAD_VR_LENGTH, p,
                      "item at offset %zu (length %lu) runs past the end of sequence (%04X,%04X) at %zu", p,
                      (unsigned long)vlen, top->g, top->e, lim);
        end = p + 8 + vlen;
      }
      if (top->kind == K_FRAG) { /* raw bytes: skip */
        if (end > c->len) return short_of(c, p, end, "a pixel data fragment of", top->g, top->e);
        p = end;
        continue;
      }
      if (depth >= (int)(sizeof st / sizeof st[0]))
        return fail(c, DG_DICOM_BAD_VR_LENGTH, p, "sequences nested more than %d deep at offset %zu",
                    DG_DICOM_MAX_DEPTH, p);
      st[depth].end = end;
      st[depth].lim = end != NO_END ? end : lim;
      st[depth].start = p;
      st[depth].g = top->g;
      st[depth].e = top->e;
      st[depth].kind = K_ITEM;
      st[depth].explicit_vr = (unsigned char)ex;
      st[depth].big = (unsigned char)be;
      depth++;
      p += 8;
      continue;
    }

    /* a data element, at the top level or in an item */
    {
      size_t hdr, vstart;
      unsigned kind = 0, unit = 0;
      const unsigned char *vr = NULL;
      char vrs[8] = "";
      if (c->len - p < 8) return short_of(c, p, p + 8, "an element header", 0, 0);
      if (lim != NO_END && lim - p < 8)
        return fail(c, DG_DICOM_BAD_VR_LENGTH, p,
                    "element header at offset %zu crosses the end of its item at %zu", p, lim);
      g = rd16(b + p, be);
      e = rd16(b + p + 2, be);
      tag = TAG(g, e);
      if (g == 0xFFFE) {
        if (e == 0xE00D && top && top->kind == K_ITEM && top->end == NO_END) {
          if (rd32(b + p + 4, be) != 0)
            return fail(c, DG_DICOM_BAD_VR_LENGTH, p, "item delimiter at offset %zu has non-zero length", p);
          depth--;
          p += 8;
          continue;
        }
        return fail(c, DG_DICOM_BAD_VR_LENGTH, p, "unexpected (FFFE,%04X) at offset %zu%s", e, p,
                    top ? "" : " in the top-level dataset");
      }
      if (!top && g == 0x0002)
        return fail(c, DG_DICOM_BAD_META, p, "file meta element (0002,%04X) in the dataset at offset %zu", e,
                    p);
      if (ex) {
        vr = b + p + 4;
        vr_text(vr, vrs);
        kind = (unsigned)vr_kind(vr, &unit);
        if (!kind)
          return fail(c, DG_DICOM_BAD_VR_LENGTH, p, "(%04X,%04X) at offset %zu has invalid VR '%s'", g, e, p,
                      vrs);
        if (kind == 2) {
          if (c->len - p < 12) return short_of(c, p, p + 12, "the element header of", g, e);
          if (lim != NO_END && lim - p < 12)
            return fail(c, DG_DICOM_BAD_VR_LENGTH, p,
                        "element header at offset %zu crosses the end of its item at %zu", p, lim);
          vlen = rd32(b + p + 8, be);
          hdr = 12;
        } else {
          vlen = rd16(b + p + 6, be);
          hdr = 8;
        }
      } else {
        vlen = rd32(b + p + 4, be);
        hdr = 8;
      }
      vstart = p + hdr;
      if (!top) { /* the header is sane: stop at pixel data or past the last UID */
        if (tag == TAG_PIXEL_DATA) return finish_missing(c, p, "reached Pixel Data (7FE0,0010)");
        if (tag > TAG_SERIES) return finish_missing(c, p, "dataset is already past (0020,000E)");
      }

      if (vlen == UNDEF_LEN) {
        unsigned char nk, nex = (unsigned char)ex, nbe = (unsigned char)be;
        if (!ex || vr_is(vr, "SQ")) nk = K_SEQ;
        else if (vr_is(vr, "UN")) { nk = K_SEQ; nex = 0; nbe = 0; } /* PS3.5 6.2.2 */
        else if ((vr_is(vr, "OB") || vr_is(vr, "OW")) && tag == TAG_PIXEL_DATA) nk = K_FRAG;
        else
          return fail(c, DG_DICOM_BAD_VR_LENGTH, p,
                      "(%04X,%04X) at offset %zu: undefined length is not allowed for VR %s", g, e, p, vrs);
        if (depth >= (int)(sizeof st / sizeof st[0]))
          return fail(c, DG_DICOM_BAD_VR_LENGTH, p, "sequences nested more than %d deep at offset %zu",
                      DG_DICOM_MAX_DEPTH, p);
        st[depth].end = NO_END;
        st[depth].lim = lim;
        st[depth].start = p;
        st[depth].g = (unsigned short)g;
        st[depth].e = (unsigned short)e;
        st[depth].kind = nk;
        st[depth].explicit_vr = nex;
        st[depth].big = nbe;
        depth++;
        p = vstart;
        continue;
      }
      if (vlen & 1)
        return fail(c, DG_DICOM_BAD_VR_LENGTH, p, "(%04X,%04X) at offset %zu has odd length %lu", g, e, p,
                    (unsigned long)vlen);
      if (unit && vlen % unit)
        return fail(c, DG_DICOM_BAD_VR_LENGTH, p,
                    "(%04X,%04X) at offset %zu: length %lu is not a multiple of %u for VR %s", g, e, p,
                    (unsigned long)vlen, unit, vrs);
      if ((lim != NO_END && vlen > lim - vstart) || vlen > NO_END - 1 - vstart)
        return fail(c, DG_DICOM_BAD_VR_LENGTH, p,
                    "value of (%04X,%04X) at offset %zu (length %lu) runs past the end of its item at %zu", g,
                    e, p, (unsigned long)vlen, lim);
      if (ex && vr_is(vr, "SQ")) {
        if (depth >= (int)(sizeof st / sizeof st[0]))
          return fail(c, DG_DICOM_BAD_VR_LENGTH, p, "sequences nested more than %d deep at offset %zu",
                      DG_DICOM_MAX_DEPTH, p);
        st[depth].end = vstart + vlen;
        st[depth].lim = vstart + vlen;
        st[depth].start = p;
        st[depth].g = (unsigned short)g;
        st[depth].e = (unsigned short)e;
        st[depth].kind = K_SEQ;
        st[depth].explicit_vr = (unsigned char)ex;
        st[depth].big = (unsigned char)be;
        depth++;
        p = vstart;
        continue;
      }
      if (vlen > c->len - vstart) return short_of(c, p, vstart + vlen, "the value of", g, e);
      if (!top && (tag == TAG_SOP_CLASS || tag == TAG_SOP_INSTANCE || tag == TAG_STUDY || tag == TAG_SERIES)) {
        char *dst = tag == TAG_SOP_CLASS ? h->sop_class_uid
                  : tag == TAG_SOP_INSTANCE ? h->sop_instance_uid
                  : tag == TAG_STUDY ? h->study_uid : h->series_uid;
        /* A wrong VR (often UN) on a readable UID value, and a file meta group that disagrees with
         * the dataset, are warnings: the import keys on the dataset's values (a guess, see
         * emulator/README.md "Pre-flight check"). */
        {
          size_t n = vlen;
          if (ex && !vr_is(vr, "UI")) {
            warn(c, "(%04X,%04X) at offset %zu has VR %s, expected UI", g, e, p, vrs);
            while (n > 0 && b[vstart + n - 1] == ' ') n--; /* text VRs pad with a space */
          }
          s = take_uid(c, p, g, e, b + vstart, n, dst);
        }
        if (s != DG_DICOM_OK) return s;
        if (tag == TAG_SOP_INSTANCE && strcmp(dst, h->meta_sop_instance_uid) != 0)
          warn(c, "(0002,0003) Media Storage SOP Instance UID '%.64s' differs from (0008,0018) '%.64s' at offset %zu",
               h->meta_sop_instance_uid, dst, p);
        if (tag == TAG_SOP_CLASS && strcmp(dst, h->meta_sop_class_uid) != 0)
          warn(c, "(0002,0002) Media Storage SOP Class UID '%.64s' differs from (0008,0016) '%.64s' at offset %zu",
               h->meta_sop_class_uid, dst, p);
        if (h->sop_class_uid[0] && h->sop_instance_uid[0] && h->study_uid[0] && h->series_uid[0]) {
          c->pos = vstart + vlen;
          h->status = DG_DICOM_OK;
          h->offset = c->pos;
          h->consumed = c->pos;
          return DG_DICOM_OK;
        }
      }
      p = vstart + vlen;
    }
  }
}

/* A dataset without preamble usually opens with group 0002 or 0008, explicit or implicit. */
static int looks_like_bare_dataset(const unsigned char *b, size_t len) {
  unsigned g, unit;
  if (len < 8) return 0;
  g = rd16(b, 0);
  if (g != 0x0002 && g != 0x0008) return 0;
  if (vr_kind(b + 4, &unit)) return 1;
  return rd32(b + 4, 0) < 0x10000;
}

dg_dicom_status dg_dicom_read_header(const unsigned char *buf, size_t len, int is_complete,
                                     dg_dicom_header *out) {
  ctx c;
  size_t ds = 0;
  dg_dicom_status s;
  const char *ts;

  memset(out, 0, sizeof *out);
  c.b = buf;
  c.len = buf ? len : 0;
  c.complete = is_complete;
  c.pos = 0;
  c.h = out;

  if (c.len >= 132 && memcmp(buf + 128, "DICM", 4) == 0) {
    /* Part 10 */
  } else if (c.len >= 4 && memcmp(buf, "DICM", 4) == 0) {
    return fail(&c, DG_DICOM_NO_PREAMBLE, 0, "\"DICM\" at offset 0: the 128-byte preamble is missing");
  } else if (c.len < 132 && !is_complete) { /* the preamble may be anything: wait for offset 128 */
    out->need = 132;
    return fail(&c, DG_DICOM_NEED_MORE_DATA, c.len,
                "first %zu bytes end before the \"DICM\" prefix at offset 128; need at least 132", c.len);
  } else if (looks_like_bare_dataset(buf, c.len)) {
    return fail(&c, DG_DICOM_NO_PREAMBLE, 0,
                "no preamble and no \"DICM\": starts with element (%04X,%04X) at offset 0, a bare dataset",
                rd16(buf, 0), rd16(buf + 2, 0));
  } else if (c.len < 132) {
    return fail(&c, DG_DICOM_NOT_DICOM, c.len,
                "file is %zu bytes, shorter than the 128-byte preamble and \"DICM\" prefix", c.len);
  } else {
    return fail(&c, DG_DICOM_NOT_DICOM, 128, "no \"DICM\" prefix at offset 128");
  }

  s = read_meta(&c, &ds);
  if (s != DG_DICOM_OK) return s;
  ts = out->transfer_syntax;
  if (strcmp(ts, TS_DEFLATED) == 0) {
    out->status = DG_DICOM_OK;
    out->offset = ds;
    out->consumed = ds;
    snprintf(out->reason, sizeof out->reason,
             "deflated transfer syntax: dataset at offset %zu not inspected", ds);
    return DG_DICOM_OK;
  }
  out->dataset_inspected = 1;
  if (strcmp(ts, TS_IMPLICIT_LE) == 0) return walk(&c, ds, 0, 0);
  if (strcmp(ts, TS_EXPLICIT_BE) == 0) return walk(&c, ds, 1, 1);
  return walk(&c, ds, 1, 0);
}
