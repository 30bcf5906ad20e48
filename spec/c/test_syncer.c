/* test_syncer.c - fsyncs on worker threads (dg_syncer), taken back on the loop's thread (TAP). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dg_syncer.h"
#include "tap.h"

#define N_JOBS 40

/* Take completed jobs until `want` have come back (poll on the syncer's fd in between). */
static int take_all(dg_syncer *s, dg_sync_job **got, int want) {
  int n = 0;
  while (n < want) {
    struct pollfd pf = { dg_syncer_fd(s), POLLIN, 0 };
    if (poll(&pf, 1, 10000) <= 0) break;   /* a lost wake-up fails the test instead of hanging it */
    dg_sync_job *j;
    while ((j = dg_syncer_take(s))) got[n++] = j;
  }
  return n;
}

static void test_jobs_come_back(void) {
  char dir[] = "/tmp/dg-syncer-XXXXXX";
  dg_sync_job jobs[N_JOBS], *got[N_JOBS];
  int fds[N_JOBS];
  if (!mkdtemp(dir)) { ok(0, "a temporary folder"); return; }
  dg_syncer *s = dg_syncer_new(dg_default_allocator());
  ok(s != NULL, "a syncer");
  if (!s) return;
  ok(dg_syncer_take(s) == NULL, "nothing to take before anything was handed out");
  for (int i = 0; i < N_JOBS; i++) {
    char path[64];
    snprintf(path, sizeof path, "%s/f%d", dir, i);
    fds[i] = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fds[i] >= 0 && write(fds[i], path, strlen(path)) < 0) { close(fds[i]); fds[i] = -1; }
    jobs[i].fd = fds[i];
    jobs[i].ud = &fds[i];
  }
  int handed = 0;
  for (int i = 0; i < N_JOBS; i++) handed += dg_syncer_submit(s, &jobs[i]) == 0;
  ok(handed == N_JOBS, "every job handed out");
  ok(dg_syncer_pending(s) == N_JOBS, "all pending");
  int n = take_all(s, got, N_JOBS);
  ok(n == N_JOBS, "every job comes back through the fd");
  int seen[N_JOBS] = { 0 }, errs = 0, dup = 0;
  for (int i = 0; i < n; i++) {
    int k = (int)(got[i] - jobs);
    if (k < 0 || k >= N_JOBS || got[i]->ud != &fds[k]) continue;
    dup += seen[k]++;
    errs += got[i]->err != 0;
  }
  ok(dup == 0 && errs == 0, "each once, with fsync's success");
  ok(dg_syncer_pending(s) == 0 && dg_syncer_take(s) == NULL, "none left");
  struct pollfd pf = { dg_syncer_fd(s), POLLIN, 0 };
  ok(poll(&pf, 1, 0) == 0, "the fd is quiet once everything is taken");
  for (int i = 0; i < N_JOBS; i++) {
    char path[64];
    snprintf(path, sizeof path, "%s/f%d", dir, i);
    if (fds[i] >= 0) close(fds[i]);
    unlink(path);
  }
  rmdir(dir);

  /* an fd that cannot be synced: its error comes back, nothing else happens */
  dg_sync_job bad = { NULL, -1, 0, NULL };
  ok(dg_syncer_submit(s, &bad) == 0, "a bad fd is handed out like any");
  dg_sync_job *one[1];
  ok(take_all(s, one, 1) == 1 && one[0] == &bad && bad.err == EBADF, "and comes back with EBADF");
  dg_syncer_free(s);
}

static void test_free_waits(void) {
  dg_syncer *s = dg_syncer_new(dg_default_allocator());
  dg_sync_job jobs[8];
  int fd = open("/dev/null", O_WRONLY);
  for (int i = 0; i < 8; i++) { jobs[i].fd = fd; jobs[i].ud = NULL; dg_syncer_submit(s, &jobs[i]); }
  dg_syncer_free(s);   /* joins the workers after their jobs: ASan and valgrind see the rest */
  ok(1, "freed with jobs out and none taken");
  close(fd);
}

int main(void) {
  test_jobs_come_back();
  test_free_waits();
  return tap_done();
}
