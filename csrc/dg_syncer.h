/* dg_syncer - fsync off the engine's thread.
 *
 * A download is fsync'ed before it is renamed into place (complete or absent after a crash). On
 * the loop thread each fsync stops every other transfer until the disk answers: 1,000 files of
 * 1 MiB spent ~1 s there, while their sockets filled and the server waited. Here a few worker
 * threads do the fsyncs while the loop goes on; the loop learns of each one through a pipe it
 * polls with its sockets.
 *
 * The caller owns each job (embedded in its own object, so submitting never allocates from a
 * worker: the allocator may be Lua's, which is not thread-safe) and the fd, which it must neither
 * close nor write while the job is out. Workers only call fsync; everything else stays on the
 * loop thread. Threads start on the first jobs (an engine that never writes a file starts none).
 */
#ifndef DG_SYNCER_H
#define DG_SYNCER_H

#include "dg_alloc.h"

#define DG_SYNCER_THREADS 4   /* fsyncs at once: enough for the file system to batch commits */

typedef struct dg_sync_job {
  struct dg_sync_job *next;
  int fd;
  int err;        /* after completion: 0, or fsync's errno */
  void *ud;
} dg_sync_job;

typedef struct dg_syncer dg_syncer;

/* NULL when out of memory or out of pipes (then the caller fsyncs itself). */
dg_syncer *dg_syncer_new(const dg_allocator *a);
/* Waits for every job handed out, then stops the threads; completed jobs not taken are dropped
 * (their owners are being freed too). */
void dg_syncer_free(dg_syncer *s);
/* Readable while completed jobs wait to be taken. */
int dg_syncer_fd(const dg_syncer *s);
/* Hand out `job` (fd and ud set). 0, or -1 when no worker could be started (fsync yourself). */
int dg_syncer_submit(dg_syncer *s, dg_sync_job *job);
/* The next completed job, or NULL. */
dg_sync_job *dg_syncer_take(dg_syncer *s);
/* Jobs handed out and not yet taken. */
int dg_syncer_pending(const dg_syncer *s);

#endif
