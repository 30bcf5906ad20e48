/*
 * test_dicom.c - unit tests for dg_dicom (TAP output). Files are built byte by
 * byte here; spec/dicom_header_spec.lua covers dcmtk-made files.
 */
#include <stdio.h>
#include <string.h>

#include "dg_dicom.h"
#include "tap.h"

enum { EXPL = 0, IMPL = 1, BIG = 2 };

static unsigned char B[16384];
static size_t N;

static void put(const void *p, size_t n) { memcpy(B + N, p, n); N += n; }
static void u16(unsigned v, int be) {
  unsigned char b[2];
  b[be ? 1 : 0] = (unsigned char)(v & 0xFF);
  b[be ? 0 : 1] = (unsigned char)(v >> 8);
  put(b, 2);
}
static void u32(unsigned long v, int be) {
  unsigned char b[4];
  int i;
  for (i = 0; i < 4; i++) b[be ? 3 - i : i] = (unsigned char)(v >> (8 * i));
  put(b, 4);
}
static int is_long(const char *vr) { return strstr("OBODOFOLOVOWSQUCURUTUNSVUV", vr) != NULL; }

/* element header; len may be 0xFFFFFFFF */
static void hdr(unsigned g, unsigned e, const char *vr, unsigned long len, int mode) {
  int be = mode == BIG;
  u16(g, be);
  u16(e, be);
  if (mode == IMPL || g == 0xFFFE) { u32(len, be); return; }
  put(vr, 2);
  if (is_long(vr)) { u16(0, be); u32(len, be); }
  else u16((unsigned)len, be);
}
static void el(unsigned g, unsigned e, const char *vr, const char *val, size_t len, int mode) {
  hdr(g, e, vr, len, mode);
  put(val, len);
}
static void el_str(unsigned g, unsigned e, const char *vr, const char *s, int mode) {
  size_t n = strlen(s);
  hdr(g, e, vr, n + (n & 1), mode);
  put(s, n);
  if (n & 1) put(strcmp(vr, "UI") == 0 ? "\0" : " ", 1);
}

#define CT "1.2.840.10008.5.1.4.1.1.2"
#define SOP "1.2.3.4.5.6.7"
#define STUDY "1.2.3.4.100"
#define SERIES "1.2.3.4.100.2"

static void meta(const char *ts, const char *sop_class, const char *sop_inst) {
  size_t glen_at;
  memset(B, 0, 128);
  N = 128;
  put("DICM", 4);
  hdr(0x0002, 0x0000, "UL", 4, EXPL);
  glen_at = N;
  u32(0, 0);
  el(0x0002, 0x0001, "OB", "\0\1", 2, EXPL);
  el_str(0x0002, 0x0002, "UI", sop_class, EXPL);
  el_str(0x0002, 0x0003, "UI", sop_inst, EXPL);
  el_str(0x0002, 0x0010, "UI", ts, EXPL);
  el_str(0x0002, 0x0012, "UI", "1.2.3.999", EXPL);
  { size_t save = N, gl = N - glen_at - 4; N = glen_at; u32(gl, 0); N = save; }
}

/* a typical dataset up to pixel data */
static void dataset(int mode, const char *study, const char *sop_inst) {
  el_str(0x0008, 0x0005, "CS", "ISO_IR 100", mode);
  el_str(0x0008, 0x0016, "UI", CT, mode);
  el_str(0x0008, 0x0018, "UI", sop_inst, mode);
  el_str(0x0010, 0x0010, "PN", "Doe^John", mode);
  if (study) el_str(0x0020, 0x000D, "UI", study, mode);
  el_str(0x0020, 0x000E, "UI", SERIES, mode);
  el(0x0028, 0x0010, "US", "\0\2", 2, mode);
  hdr(0x7FE0, 0x0010, "OW", 4, mode);
  put("\1\2\3\4", 4);
}

static dg_dicom_status check(int complete, dg_dicom_header *h) {
  return dg_dicom_read_header(B, N, complete, h);
}

static void test_good(void) {
  dg_dicom_header h;
  meta("1.2.840.10008.1.2.1", CT, SOP);
  dataset(EXPL, STUDY, SOP);
  ok(check(1, &h) == DG_DICOM_OK, "explicit VR LE file is ok");
  ok(strcmp(h.study_uid, STUDY) == 0 && strcmp(h.series_uid, SERIES) == 0 &&
     strcmp(h.sop_instance_uid, SOP) == 0 && strcmp(h.sop_class_uid, CT) == 0,
     "four UIDs read, NUL padding stripped");
  ok(strcmp(h.transfer_syntax, "1.2.840.10008.1.2.1") == 0 && h.dataset_inspected, "transfer syntax reported");
  ok(h.reason[0] == '\0' && h.offset > 0 && h.offset < N, "ok: empty reason, stop offset before pixel data");
  ok(check(0, &h) == DG_DICOM_OK, "ok also when not marked complete");

  meta("1.2.840.10008.1.2", CT, SOP);
  dataset(IMPL, STUDY, SOP);
  ok(check(1, &h) == DG_DICOM_OK && strcmp(h.study_uid, STUDY) == 0, "implicit VR LE file is ok");

  meta("1.2.840.10008.1.2.2", CT, SOP);
  dataset(BIG, STUDY, SOP);
  ok(check(1, &h) == DG_DICOM_OK && strcmp(h.series_uid, SERIES) == 0, "explicit VR BE file is ok");

  meta("1.2.840.10008.1.2.4.50", CT, SOP);
  dataset(EXPL, STUDY, SOP);
  ok(check(1, &h) == DG_DICOM_OK, "JPEG baseline: dataset read as explicit VR LE");

  meta("1.2.840.10008.1.2.1.99", CT, SOP);
  put("\x78\x9c\x03\x00", 4);
  ok(check(1, &h) == DG_DICOM_OK && !h.dataset_inspected && h.study_uid[0] == '\0' &&
     strcmp(h.meta_sop_instance_uid, SOP) == 0 && strstr(h.reason, "deflated"),
     "deflated: ok, dataset not inspected, meta UIDs kept");
}

/* sequences before the UIDs, in every encoding and length style */
static void seq_dataset(int mode, int undefined) {
  int m = mode;
  el_str(0x0008, 0x0005, "CS", "ISO_IR 100", m);
  /* (0008,0006) SQ with one item holding a nested SQ */
  if (undefined) {
    hdr(0x0008, 0x0006, "SQ", 0xFFFFFFFFul, m);
    hdr(0xFFFE, 0xE000, NULL, 0xFFFFFFFFul, m);
    el_str(0x0008, 0x0100, "SH", "eng", m);
    hdr(0x0040, 0xA730, "SQ", 0xFFFFFFFFul, m);
    hdr(0xFFFE, 0xE000, NULL, 0xFFFFFFFFul, m);
    el_str(0x0040, 0xA010, "CS", "CONTAINS", m);
    hdr(0xFFFE, 0xE00D, NULL, 0, m);
    hdr(0xFFFE, 0xE000, NULL, 0, m); /* an empty item of defined length */
    hdr(0xFFFE, 0xE0DD, NULL, 0, m);
    hdr(0xFFFE, 0xE00D, NULL, 0, m);
    hdr(0xFFFE, 0xE0DD, NULL, 0, m);
  } else {
    /* item: SH (8+4) + inner SQ (hdr + item(8) + CS(8+8)) */
    size_t inner_item = 8 + 8;
    size_t inner_sq = 8 + inner_item;
    size_t sq_hdr = m == IMPL ? 8 : 12;
    size_t item = 8 + 4 + sq_hdr + inner_sq;
    hdr(0x0008, 0x0006, "SQ", 8 + item, m);
    hdr(0xFFFE, 0xE000, NULL, item, m);
    el_str(0x0008, 0x0100, "SH", "eng", m);
    hdr(0x0040, 0xA730, "SQ", inner_sq, m);
    hdr(0xFFFE, 0xE000, NULL, inner_item, m);
    el_str(0x0040, 0xA010, "CS", "CONTAINS", m);
  }
  el_str(0x0008, 0x0016, "UI", CT, m);
  el_str(0x0008, 0x0018, "UI", SOP, m);
  el_str(0x0020, 0x000D, "UI", STUDY, m);
  el_str(0x0020, 0x000E, "UI", SERIES, m);
}

static void test_sequences(void) {
  static const char *ts[] = {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2"};
  static const char *names[] = {"explicit LE", "implicit LE", "explicit BE"};
  dg_dicom_header h;
  char name[128];
  int mode, undef;
  for (mode = 0; mode < 3; mode++)
    for (undef = 0; undef < 2; undef++) {
      meta(ts[mode], CT, SOP);
      seq_dataset(mode, undef);
      snprintf(name, sizeof name, "%s, nested sequences of %s length: ok", names[mode],
               undef ? "undefined" : "defined");
      ok(check(1, &h) == DG_DICOM_OK && strcmp(h.series_uid, SERIES) == 0, name);
    }

  /* UN of undefined length holds implicit VR LE items (PS3.5 6.2.2) */
  meta("1.2.840.10008.1.2.1", CT, SOP);
  el_str(0x0008, 0x0005, "CS", "ISO_IR 100", EXPL);
  hdr(0x0009, 0x1010, "UN", 0xFFFFFFFFul, EXPL);
  hdr(0xFFFE, 0xE000, NULL, 0xFFFFFFFFul, EXPL);
  el_str(0x0009, 0x0010, "LO", "PRIVATE", IMPL);
  hdr(0xFFFE, 0xE00D, NULL, 0, EXPL);
  hdr(0xFFFE, 0xE0DD, NULL, 0, EXPL);
  el_str(0x0008, 0x0016, "UI", CT, EXPL);
  el_str(0x0008, 0x0018, "UI", SOP, EXPL);
  el_str(0x0020, 0x000D, "UI", STUDY, EXPL);
  el_str(0x0020, 0x000E, "UI", SERIES, EXPL);
  ok(check(1, &h) == DG_DICOM_OK, "UN of undefined length read as implicit VR LE");

  /* encapsulated pixel data (fragments) inside an icon sequence */
  meta("1.2.840.10008.1.2.4.50", CT, SOP);
  el_str(0x0008, 0x0016, "UI", CT, EXPL);
  el_str(0x0008, 0x0018, "UI", SOP, EXPL);
  hdr(0x0008, 0x0200, "SQ", 0xFFFFFFFFul, EXPL); /* stands in for an icon sequence */
  hdr(0xFFFE, 0xE000, NULL, 0xFFFFFFFFul, EXPL);
  hdr(0x7FE0, 0x0010, "OB", 0xFFFFFFFFul, EXPL);
  hdr(0xFFFE, 0xE000, NULL, 0, EXPL);             /* empty offset table */
  hdr(0xFFFE, 0xE000, NULL, 4, EXPL);
  put("\xFF\xD8\xFF\xD9", 4);
  hdr(0xFFFE, 0xE0DD, NULL, 0, EXPL);
  hdr(0xFFFE, 0xE00D, NULL, 0, EXPL);
  hdr(0xFFFE, 0xE0DD, NULL, 0, EXPL);
  el_str(0x0020, 0x000D, "UI", STUDY, EXPL);
  el_str(0x0020, 0x000E, "UI", SERIES, EXPL);
  ok(check(1, &h) == DG_DICOM_OK, "fragments of nested encapsulated pixel data skipped");

  /* nesting deeper than the limit is refused, not overflowed */
  meta("1.2.840.10008.1.2.1", CT, SOP);
  {
    int i;
    for (i = 0; i < DG_DICOM_MAX_DEPTH + 5; i++) {
      hdr(0x0008, 0x0006, "SQ", 0xFFFFFFFFul, EXPL);
      hdr(0xFFFE, 0xE000, NULL, 0xFFFFFFFFul, EXPL);
    }
  }
  ok(check(1, &h) == DG_DICOM_BAD_VR_LENGTH && strstr(h.reason, "nested"), "too deep nesting: bad_vr_length");
}

static void test_prefixes(void) {
  dg_dicom_header h;
  size_t full, cut, need_ok = 1, trunc_ok = 1, last_need = 0;
  meta("1.2.840.10008.1.2.1", CT, SOP);
  seq_dataset(EXPL, 1);
  full = N;
  check(1, &h);
  for (cut = 0; cut < h.offset; cut++) {
    dg_dicom_header a, b;
    dg_dicom_read_header(B, cut, 0, &a);
    dg_dicom_read_header(B, cut, 1, &b);
    if (a.status != DG_DICOM_NEED_MORE_DATA || a.need <= cut || a.need < last_need) need_ok = 0;
    last_need = a.need;
    if (b.status == DG_DICOM_OK || b.status == DG_DICOM_NEED_MORE_DATA) trunc_ok = 0;
    if (cut < 132 && b.status != DG_DICOM_NOT_DICOM) trunc_ok = 0;
    /* a complete file ending between two top-level elements lacks the UIDs */
    if (cut >= 132 && b.status != DG_DICOM_TRUNCATED && b.status != DG_DICOM_MISSING_UID) trunc_ok = 0;
  }
  ok(need_ok, "every prefix before the last UID: need_more_data, need > length, need never shrinks");
  ok(trunc_ok, "every such prefix marked complete: truncated or missing_uid (not_dicom under 132)");
  N = full;
  ok(dg_dicom_read_header(NULL, 0, 1, &h) == DG_DICOM_NOT_DICOM, "NULL buffer, length 0: not_dicom");
  ok(dg_dicom_read_header(NULL, 0, 0, &h) == DG_DICOM_NEED_MORE_DATA && h.need == 132,
     "empty incomplete buffer: need 132 bytes");
}

static void test_broken(void) {
  dg_dicom_header h;
  size_t at;

  N = 0;
  put("DICM", 4);
  put("\2\0\0\0UL\4\0", 8);
  ok(check(1, &h) == DG_DICOM_NO_PREAMBLE, "DICM at 0: no_preamble");
  N = 0;
  el_str(0x0008, 0x0005, "CS", "ISO_IR 100", EXPL);
  ok(check(1, &h) == DG_DICOM_NO_PREAMBLE, "bare dataset: no_preamble");
  memset(B, 'x', 300);
  N = 300;
  ok(check(1, &h) == DG_DICOM_NOT_DICOM && h.offset == 128, "no DICM at 128: not_dicom");

  meta("1.2.840.10008.1.2.1", CT, SOP);
  memcpy(B + 132, "\2\0\1\0", 4); /* first element is not the group length */
  ok(check(1, &h) == DG_DICOM_BAD_META && strstr(h.reason, "(0002,0000)"), "meta without group length: bad_meta");

  meta("1.2.840.10008.1.2.1", CT, SOP);
  B[140] = (unsigned char)(B[140] - 2);
  dataset(EXPL, STUDY, SOP);
  ok(check(1, &h) == DG_DICOM_BAD_META, "group length too small: bad_meta");

  meta("1.2.840.10008.1.2.1", CT, SOP);
  at = N;
  el_str(0x0002, 0x0016, "AE", "SOMEAE", EXPL); /* beyond the declared group length */
  dataset(EXPL, STUDY, SOP);
  ok(check(1, &h) == DG_DICOM_BAD_META && h.offset == at, "group 0002 past the group length: bad_meta at its offset");

  meta("1.2.840.10008.1.2.1", CT, "");
  dataset(EXPL, STUDY, SOP);
  ok(check(1, &h) == DG_DICOM_BAD_UID && strstr(h.reason, "(0002,0003)"), "empty meta SOP Instance UID: bad_uid");

  meta("1.2.840.10008.1.2.1", CT, SOP);
  dataset(EXPL, STUDY, "1.2.3.4.5.6.8");
  ok(check(1, &h) == DG_DICOM_OK && strstr(h.warning, "differs") && !strcmp(h.sop_instance_uid, "1.2.3.4.5.6.8"),
     "meta/dataset SOP Instance UID mismatch: ok with a warning, the dataset's UID kept");

  meta("1.2.840.10008.1.2.1", CT, SOP);
  dataset(EXPL, NULL, SOP);
  ok(check(1, &h) == DG_DICOM_MISSING_UID && strstr(h.reason, "(0020,000D)") && strstr(h.reason, "offset"),
     "no Study UID: missing_uid naming the tag");
  ok(check(0, &h) == DG_DICOM_MISSING_UID, "no Study UID, incomplete buffer: still missing_uid (past (0020,000E))");

  meta("1.2.840.10008.1.2.1", CT, SOP);
  el_str(0x0008, 0x0016, "UI", CT, EXPL);
  el_str(0x0008, 0x0018, "UI", SOP, EXPL);
  ok(check(1, &h) == DG_DICOM_MISSING_UID && strstr(h.reason, "end of file"), "dataset ends early: missing_uid");
  ok(check(0, &h) == DG_DICOM_NEED_MORE_DATA, "same bytes, not complete: need_more_data");

  meta("1.2.840.10008.1.2.1", CT, SOP);
  el_str(0x0008, 0x0016, "UI", CT, EXPL);
  el_str(0x0008, 0x0018, "UI", SOP, EXPL);
  el(0x0010, 0x0010, "PN", "Doe", 3, EXPL);
  ok(check(1, &h) == DG_DICOM_BAD_VR_LENGTH && strstr(h.reason, "odd"), "odd length: bad_vr_length");

  meta("1.2.840.10008.1.2.1", CT, SOP);
  el(0x0008, 0x0005, "Cs", "ISO_IR 100", 10, EXPL);
  ok(check(1, &h) == DG_DICOM_BAD_VR_LENGTH && strstr(h.reason, "invalid VR"), "invalid VR: bad_vr_length");

  meta("1.2.840.10008.1.2.1", CT, SOP);
  el(0x0008, 0x0012, "DA", "2024", 4, EXPL);
  el(0x0018, 0x9087, "FD", "1234", 4, EXPL); /* order does not matter before the UIDs */
  ok(check(1, &h) == DG_DICOM_BAD_VR_LENGTH && strstr(h.reason, "multiple of 8"), "FD of 4 bytes: bad_vr_length");

  meta("1.2.840.10008.1.2.1", CT, SOP);
  hdr(0x0008, 0x0005, "CS", 0xFFFF, EXPL); /* short VR: 0xFFFF is a plain length */
  ok(check(1, &h) == DG_DICOM_BAD_VR_LENGTH || h.status == DG_DICOM_TRUNCATED, "0xFFFF short length flagged");

  meta("1.2.840.10008.1.2.1", CT, SOP);
  hdr(0x0008, 0x0005, "UT", 0xFFFFFFFFul, EXPL);
  ok(check(1, &h) == DG_DICOM_BAD_VR_LENGTH && strstr(h.reason, "undefined length"),
     "undefined length on UT: bad_vr_length");

  meta("1.2.840.10008.1.2.1", CT, SOP);
  hdr(0x0008, 0x0006, "SQ", 16, EXPL);
  hdr(0xFFFE, 0xE000, NULL, 24, EXPL); /* item longer than its sequence */
  ok(check(1, &h) == DG_DICOM_BAD_VR_LENGTH && strstr(h.reason, "runs past"), "item past its sequence: bad_vr_length");

  meta("1.2.840.10008.1.2.1", CT, SOP);
  hdr(0x0008, 0x0006, "SQ", 20, EXPL);
  hdr(0xFFFE, 0xE000, NULL, 0xFFFFFFFFul, EXPL); /* undefined item never closed inside */
  el_str(0x0008, 0x0100, "SH", "eng", EXPL);
  el_str(0x0008, 0x0016, "UI", CT, EXPL);
  ok(check(1, &h) == DG_DICOM_BAD_VR_LENGTH && strstr(h.reason, "not closed"),
     "undefined item outliving its defined sequence: bad_vr_length");

  meta("1.2.840.10008.1.2.1", CT, SOP);
  hdr(0xFFFE, 0xE0DD, NULL, 0, EXPL);
  ok(check(1, &h) == DG_DICOM_BAD_VR_LENGTH, "sequence delimiter at top level: bad_vr_length");

  meta("1.2.840.10008.1.2.1", CT, SOP);
  hdr(0x0008, 0x0006, "SQ", 0xFFFFFFFFul, EXPL);
  el_str(0x0008, 0x0100, "SH", "eng", EXPL); /* element where an item must be */
  ok(check(1, &h) == DG_DICOM_BAD_VR_LENGTH && strstr(h.reason, "expected an item"), "element in a sequence: bad_vr_length");

  meta("1.2.840.10008.1.2.1", CT, SOP);
  el_str(0x0008, 0x0016, "SH", CT, EXPL); /* not LO: is_long() would take it for a long VR */
  ok(check(1, &h) == DG_DICOM_MISSING_UID && strstr(h.warning, "expected UI") && !strcmp(h.sop_class_uid, CT),
     "SOP Class UID with VR SH: read (space padding stripped), with a warning; the file then lacks the other UIDs");

  meta("1.2.840.10008.1.2.1", CT, SOP);
  dataset(EXPL, "1.2.3.a", SOP);
  ok(check(1, &h) == DG_DICOM_BAD_UID && strstr(h.reason, "(0020,000D)") && strstr(h.reason, "0x61"),
     "letter in Study UID: bad_uid naming tag and byte");

  meta("1.2.840.10008.1.2.1", CT, SOP);
  dataset(EXPL, "1.2.3 ", SOP);
  ok(check(1, &h) == DG_DICOM_BAD_UID, "space-padded UID: bad_uid (only NUL padding is legal)");
}

static void test_uid_rules(void) {
  ok(dg_dicom_uid_problem("1.2.840.10008.1.2", 17) == NULL, "valid UID");
  ok(dg_dicom_uid_problem("0", 1) == NULL, "single 0 component is valid");
  ok(dg_dicom_uid_problem("1.0.3", 5) == NULL, "0 component is valid");
  ok(dg_dicom_uid_problem("1.02.3", 6) != NULL, "leading zero rejected");
  ok(dg_dicom_uid_problem("1..2", 4) != NULL, "empty component rejected");
  ok(dg_dicom_uid_problem(".1.2", 4) != NULL, "leading dot rejected");
  ok(dg_dicom_uid_problem("1.2.", 4) != NULL, "trailing dot rejected");
  ok(dg_dicom_uid_problem("", 0) != NULL, "empty rejected");
  ok(dg_dicom_uid_problem("1.2.3333333333333333333333333333333333333333333333333333333333333", 65) != NULL,
     "65 characters rejected");
  ok(dg_dicom_uid_problem("1.2.333333333333333333333333333333333333333333333333333333333333", 64) == NULL,
     "64 characters accepted");
  ok(strcmp(dg_dicom_status_name(DG_DICOM_NEED_MORE_DATA), "need_more_data") == 0, "status names");
}

int main(void) {
  test_good();
  test_sequences();
  test_prefixes();
  test_broken();
  test_uid_rules();
  return tap_done();
}
