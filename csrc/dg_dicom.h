/*
 * dg_dicom.h - strict pre-flight reader of a DICOM Part 10 file header.
 *
 * Looks at the first bytes of a file (a local read or a ranged download of
 * the first N KiB of a bucket object) and tells whether the Healthcare API
 * import is likely to reject it, and which Study / Series / SOP Instance /
 * SOP Class UIDs it carries. It checks, in order:
 *
 *   - the 128-byte preamble followed by "DICM";
 *   - the file meta group (0002,xxxx), explicit VR little endian, starting
 *     with (0002,0000) UL whose value is honoured exactly: every element up
 *     to that length is group 0002 and none lies past it; the required
 *     (0002,0001) OB, (0002,0002) UI, (0002,0003) UI, (0002,0010) UI;
 *   - the dataset in the declared transfer syntax: implicit VR LE
 *     (1.2.840.10008.1.2), explicit VR BE (1.2.840.10008.1.2.2), deflated
 *     (1.2.840.10008.1.2.1.99: reported ok with dataset_inspected == 0, the
 *     dataset is not inflated), anything else as explicit VR LE (that is how
 *     every encapsulated syntax encodes the dataset), walked element by
 *     element, into sequences of defined and undefined length (items,
 *     item / sequence delimiters, UN of undefined length read as implicit
 *     VR LE, encapsulated fragments), until SOP Class UID (0008,0016), SOP
 *     Instance UID (0008,0018), Study Instance UID (0020,000D) and Series
 *     Instance UID (0020,000E) are all found at the top level, or Pixel Data
 *     (7FE0,0010), a top-level tag past (0020,000E), or the end is reached;
 *   - value lengths: every length even, fixed-size VRs (US SS UL SL FL FD
 *     AT OL OF OD OV SV UV) a multiple of their size, undefined length only
 *     for SQ, UN and OB/OW pixel data, no value past its enclosing item;
 *   - the four UIDs and the meta UIDs: 1..64 characters of 0-9 and '.',
 *     no empty component, no leading zero in a component (trailing NUL
 *     padding is stripped first); meta (0002,0003)/(0002,0002) equal to the
 *     dataset's (0008,0018)/(0008,0016).
 *
 * Reads only buf[0 .. len); never allocates; all output lives in the
 * caller's dg_dicom_header. Thread-safe (no shared state); no Lua.
 */
#ifndef DG_DICOM_H
#define DG_DICOM_H

#include <stddef.h>

typedef enum {
  DG_DICOM_OK = 0,
  DG_DICOM_NOT_DICOM,      /* no "DICM" at offset 128 and nothing like DICOM at 0 */
  DG_DICOM_NO_PREAMBLE,    /* "DICM" or a bare dataset at offset 0: no Part 10 preamble */
  DG_DICOM_TRUNCATED,      /* is_complete and the bytes end inside an element/sequence */
  DG_DICOM_BAD_META,       /* file meta group malformed, incomplete or inconsistent */
  DG_DICOM_BAD_VR_LENGTH,  /* bad VR, bad value length, or broken item framing */
  DG_DICOM_MISSING_UID,    /* one of the four UIDs absent from the dataset */
  DG_DICOM_BAD_UID,        /* a UID with illegal characters, form or length */
  DG_DICOM_NEED_MORE_DATA  /* !is_complete and the buffer ended first: see need */
} dg_dicom_status;

#define DG_DICOM_UID_MAX 64       /* PS3.5 9.1 */
#define DG_DICOM_MAX_DEPTH 32     /* nested sequences; deeper is reported as bad_vr_length */

typedef struct {
  dg_dicom_status status;
  size_t offset;     /* byte offset of the problem; for OK where the walk stopped */
  size_t consumed;   /* bytes of buf examined */
  size_t need;       /* NEED_MORE_DATA: total bytes the next attempt needs at least */
  int dataset_inspected; /* 0 for the deflated transfer syntax (and before the dataset) */
  char reason[200];  /* human-readable, names the tag and byte offset; "" when OK */
  char warning[200]; /* a defect the import is expected to accept (first one only); "" when none */
  char transfer_syntax[DG_DICOM_UID_MAX + 1];   /* "" when not read */
  char meta_sop_class_uid[DG_DICOM_UID_MAX + 1];
  char meta_sop_instance_uid[DG_DICOM_UID_MAX + 1];
  char study_uid[DG_DICOM_UID_MAX + 1];
  char series_uid[DG_DICOM_UID_MAX + 1];
  char sop_instance_uid[DG_DICOM_UID_MAX + 1];
  char sop_class_uid[DG_DICOM_UID_MAX + 1];
} dg_dicom_header;

/* Inspect buf[0 .. len). is_complete says buf holds the whole file, so that
 * running out of bytes is TRUNCATED / MISSING_UID rather than NEED_MORE_DATA.
 * Fills *out completely (UIDs found before a failure are kept) and returns
 * out->status. buf may be NULL when len is 0. */
dg_dicom_status dg_dicom_read_header(const unsigned char *buf, size_t len, int is_complete,
                                     dg_dicom_header *out);

/* Short lower-case name of a status: "ok", "not_dicom", "no_preamble", "truncated",
 * "bad_meta", "bad_vr_length", "missing_uid", "bad_uid", "need_more_data". */
const char *dg_dicom_status_name(dg_dicom_status st);

/* Check a UID value (padding already stripped). Returns NULL when valid, else a
 * static description of the first problem. */
const char *dg_dicom_uid_problem(const char *uid, size_t len);

#endif
