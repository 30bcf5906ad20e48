/* dg_signal.c - see dg_signal.h */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "dg_signal.h"

static volatile sig_atomic_t caught = 0;
static int pipe_fd[2] = { -1, -1 };
static int armed = 0;
static int ignoring = 0;                    /* the process ignores SIGINT: so do we */
static struct sigaction saved;

static void on_sigint(int sig) {
  int save = errno;
  (void)sig;
  caught = 1;
  if (pipe_fd[1] >= 0) {
    ssize_t w = write(pipe_fd[1], "", 1);   /* async-signal-safe; a full pipe already wakes */
    (void)w;
  }
  errno = save;
}

static int make_pipe(void) {
  if (pipe_fd[0] >= 0) return 0;
  if (pipe(pipe_fd) != 0) return -1;
  for (int i = 0; i < 2; i++) {
    fcntl(pipe_fd[i], F_SETFD, FD_CLOEXEC);
    fcntl(pipe_fd[i], F_SETFL, fcntl(pipe_fd[i], F_GETFL) | O_NONBLOCK);
  }
  return 0;
}

int dg_sigint_arm(void) {
  if (armed++ > 0) return pipe_fd[0];
  if (make_pipe() != 0) { armed--; return -1; }
  dg_sigint_take();                         /* one that came before arming was not ours */
  /* A host (or a shell, for a background job) that ignores Ctrl-C keeps ignoring it: the pipe is
   * there to poll, nothing ever writes to it. */
  if (sigaction(SIGINT, NULL, &saved) != 0) { armed--; return -1; }
  ignoring = saved.sa_handler == SIG_IGN;
  if (ignoring) return pipe_fd[0];
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;                          /* no SA_RESTART: poll() returns EINTR */
  if (sigaction(SIGINT, &sa, &saved) != 0) { armed--; return -1; }
  return pipe_fd[0];
}

void dg_sigint_disarm(void) {
  if (armed == 0) return;
  if (--armed > 0) return;
  if (ignoring) return;
  sigaction(SIGINT, &saved, NULL);
  /* Caught but nobody asked: it was meant for whoever handled SIGINT before us (lua.c
   * raises "interrupted!", a host may quit), so it is theirs now rather than lost. */
  if (dg_sigint_take()) raise(SIGINT);
}

void dg_sigint_pass_on(void) {
  if (armed == 0) return;
  dg_sigint_disarm();
  raise(SIGINT);
}

int dg_sigint_fd(void) { return armed ? pipe_fd[0] : -1; }

int dg_sigint_take(void) {
  char buf[64];
  if (pipe_fd[0] >= 0) while (read(pipe_fd[0], buf, sizeof buf) > 0) {}
  if (!caught) return 0;
  caught = 0;
  return 1;
}

void dg_sigint_raise_for_test(void) { on_sigint(SIGINT); }
