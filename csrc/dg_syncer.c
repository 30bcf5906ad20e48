/* dg_syncer.c - see dg_syncer.h */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "dg_syncer.h"

struct dg_syncer {
  dg_allocator alloc;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  dg_sync_job *todo_head, *todo_tail;   /* handed out, not yet started */
  dg_sync_job *done_head, *done_tail;   /* fsync'ed, not yet taken */
  int todo_n, idle, stopping, n_threads;
  pthread_t threads[DG_SYNCER_THREADS];
  int rfd, wfd;     /* holds a byte exactly while done_head is set */
  int pending;      /* loop thread only: submitted and not taken */
};

static void push(dg_sync_job **head, dg_sync_job **tail, dg_sync_job *j) {
  j->next = NULL;
  if (*tail) (*tail)->next = j; else *head = j;
  *tail = j;
}

static dg_sync_job *pop(dg_sync_job **head, dg_sync_job **tail) {
  dg_sync_job *j = *head;
  if (j) {
    *head = j->next;
    if (!*head) *tail = NULL;
    j->next = NULL;
  }
  return j;
}

static void *worker(void *arg) {
  dg_syncer *s = arg;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (!s->todo_head && !s->stopping) {
      s->idle++;
      pthread_cond_wait(&s->cv, &s->mu);
      s->idle--;
    }
    dg_sync_job *j = pop(&s->todo_head, &s->todo_tail);
    if (!j) break;   /* stopping, and nothing left to do */
    s->todo_n--;
    pthread_mutex_unlock(&s->mu);
    int rc;
    do rc = fsync(j->fd); while (rc != 0 && errno == EINTR);
    j->err = rc != 0 ? errno : 0;
    pthread_mutex_lock(&s->mu);
    int was_empty = s->done_head == NULL;
    push(&s->done_head, &s->done_tail, j);
    if (was_empty) {
      ssize_t w;
      do w = write(s->wfd, "", 1); while (w < 0 && errno == EINTR);
    }
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

static int nonblocking_cloexec(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ? -1 : 0;
}

dg_syncer *dg_syncer_new(const dg_allocator *a) {
  dg_syncer *s = dg_malloc(a, sizeof *s);
  int fds[2];
  if (!s) return NULL;
  memset(s, 0, sizeof *s);
  s->alloc = *a;
  if (pipe(fds) != 0) { dg_free(a, s, sizeof *s); return NULL; }
  if (nonblocking_cloexec(fds[0]) != 0 || nonblocking_cloexec(fds[1]) != 0 ||
      pthread_mutex_init(&s->mu, NULL) != 0) {
    close(fds[0]);
    close(fds[1]);
    dg_free(a, s, sizeof *s);
    return NULL;
  }
  if (pthread_cond_init(&s->cv, NULL) != 0) {
    pthread_mutex_destroy(&s->mu);
    close(fds[0]);
    close(fds[1]);
    dg_free(a, s, sizeof *s);
    return NULL;
  }
  s->rfd = fds[0];
  s->wfd = fds[1];
  return s;
}

void dg_syncer_free(dg_syncer *s) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  s->stopping = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  for (int i = 0; i < s->n_threads; i++) pthread_join(s->threads[i], NULL);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  close(s->rfd);
  close(s->wfd);
  dg_allocator a = s->alloc;
  dg_free(&a, s, sizeof *s);
}

int dg_syncer_fd(const dg_syncer *s) { return s->rfd; }

int dg_syncer_pending(const dg_syncer *s) { return s->pending; }

/* Under the lock: one more worker. Every signal is blocked in it (it inherits the mask it is
 * created with), so that SIGINT reaches the thread that waits for it. */
static void start_worker(dg_syncer *s) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  if (pthread_create(&s->threads[s->n_threads], NULL, worker, s) == 0) s->n_threads++;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int dg_syncer_submit(dg_syncer *s, dg_sync_job *job) {
  pthread_mutex_lock(&s->mu);
  if (s->todo_n >= s->idle && s->n_threads < DG_SYNCER_THREADS) start_worker(s);
  if (s->n_threads == 0) {
    pthread_mutex_unlock(&s->mu);
    return -1;
  }
  job->err = 0;
  push(&s->todo_head, &s->todo_tail, job);
  s->todo_n++;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  s->pending++;
  return 0;
}

dg_sync_job *dg_syncer_take(dg_syncer *s) {
  if (s->pending == 0) return NULL;
  pthread_mutex_lock(&s->mu);
  dg_sync_job *j = pop(&s->done_head, &s->done_tail);
  if (j && !s->done_head) {   /* empty now: so is the pipe */
    char buf[64];
    while (read(s->rfd, buf, sizeof buf) > 0) {}
  }
  pthread_mutex_unlock(&s->mu);
  if (j) s->pending--;
  return j;
}
