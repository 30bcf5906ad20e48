/*
 * dg_mpsink.h - a multipart sink: a WADO-RS response body, fed as it arrives, written one part
 * per file (each instance written once, no whole-response temporary file). No Lua.
 *
 * Each part goes into its own temporary file in `dir` (dg_fs_create_temp: hidden random name,
 * O_CREAT|O_EXCL|O_NOFOLLOW, nothing planted there is followed or reused); a part counts as
 * complete only once its closing delimiter has been seen, and only complete parts are kept:
 * the part being written when the body fails (connection cut, malformed framing, write error)
 * is removed, the parts before it stay. Naming and renaming into place are the caller's (it
 * knows the DICOM UIDs); dg_mpsink_take hands it the files. A body that is not multipart
 * (some servers answer one instance as application/dicom) is one part, complete when the
 * response is.
 *
 * Life of one transfer (the engine calls these; refcounted, since the Lua userdata and the
 * transfer may end in either order):
 *   dg_mpsink_reset        each attempt starts clean (the last attempt's files removed)
 *   dg_mpsink_begin(ct)    first 2xx body byte: the response's Content-Type picks the mode
 *   dg_mpsink_write        body bytes; -1 (message in dg_mpsink_error) stops the transfer
 *   dg_mpsink_end(ok)      ok: the response ended (a multipart without its close delimiter is
 *                          "truncated"); !ok: the transfer failed; the open part is removed
 * Not thread-safe; one transfer at a time (dg_mpsink_busy).
 */
#ifndef DG_MPSINK_H
#define DG_MPSINK_H

#include <stddef.h>
#include <stdint.h>

#include "dg_alloc.h"

typedef struct dg_mpsink dg_mpsink;

/* A sink writing into folder `dir` (which must exist). NULL: out of memory. refcount 1. */
dg_mpsink *dg_mpsink_new(const dg_allocator *a, const char *dir);
void dg_mpsink_retain(dg_mpsink *s);
/* Drop a reference; the last one removes every file not taken and frees the sink. */
void dg_mpsink_release(dg_mpsink *s);

void dg_mpsink_reset(dg_mpsink *s);
int dg_mpsink_begin(dg_mpsink *s, const char *content_type, size_t len);
int dg_mpsink_write(dg_mpsink *s, const void *data, size_t len);
void dg_mpsink_end(dg_mpsink *s, int ok);

/* Between begin and end (a transfer is writing); also set by the engine from submit. */
int dg_mpsink_busy(const dg_mpsink *s);
void dg_mpsink_set_busy(dg_mpsink *s, int busy);
/* 1 once a body has ended with every part complete (close delimiter seen, or a single part). */
int dg_mpsink_complete(const dg_mpsink *s);
/* "" or what went wrong (truncated, malformed framing with its byte offset, a write error). */
const char *dg_mpsink_error(const dg_mpsink *s);
/* 1 when that error is ours (a file could not be created or written), 0 when it is the
 * response's (or there is none). */
int dg_mpsink_local_error(const dg_mpsink *s);

/* Complete parts kept so far, in order: their temporary path and size. */
size_t dg_mpsink_count(const dg_mpsink *s);
const char *dg_mpsink_path(const dg_mpsink *s, size_t i, uint64_t *size);
/* The caller now owns every kept file (renames or removes it); the sink forgets them. */
void dg_mpsink_take(dg_mpsink *s);

/* Deferred fsync, for the engine and its fsync workers (dg_syncer.h): a complete part stays open
 * instead of being fsync'ed on the spot, so the loop goes on while the disk catches up; at most
 * DG_MPSINK_OPEN_MAX at once (beyond, the oldest is fsync'ed here: open files stay bounded
 * whatever the number of parts). After dg_mpsink_end, the engine hands out each
 * dg_mpsink_unsynced_fd (>= 0) and reports each fsync with dg_mpsink_synced (which closes it;
 * a failure removes that part and fails the sink as ours). dg_mpsink_abandon_sync closes what is
 * still open, unsynced, and clears busy (a transfer freed before its fsyncs were taken). */
#define DG_MPSINK_OPEN_MAX 32
void dg_mpsink_defer_sync(dg_mpsink *s, int on);
int dg_mpsink_unsynced_fd(const dg_mpsink *s, size_t i);
void dg_mpsink_synced(dg_mpsink *s, int fd, int err);
void dg_mpsink_abandon_sync(dg_mpsink *s);

#endif
