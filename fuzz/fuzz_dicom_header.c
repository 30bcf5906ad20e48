/* fuzz_dicom_header.c - libFuzzer target for dg_dicom_read_header (see fuzz/README.md). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "dg_dicom.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dg_dicom_header h;
  int complete;
  for (complete = 0; complete <= 1; complete++) {
    dg_dicom_status st = dg_dicom_read_header(data, size, complete, &h);
    /* invariants: status echoed, NUL-terminated fields, need grows, OK UIDs valid */
    if (st != h.status || memchr(h.reason, 0, sizeof h.reason) == NULL) __builtin_trap();
    if (st == DG_DICOM_NEED_MORE_DATA && (complete || h.need <= size)) __builtin_trap();
    if (st == DG_DICOM_OK && h.dataset_inspected &&
        (dg_dicom_uid_problem(h.study_uid, strlen(h.study_uid)) ||
         dg_dicom_uid_problem(h.sop_instance_uid, strlen(h.sop_instance_uid))))
      __builtin_trap();
  }
  return 0;
}
