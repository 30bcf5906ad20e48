/*
 * dg_signal.h - Ctrl-C (SIGINT) caught while the engine waits.
 *
 * dg_sigint_arm() installs a SIGINT handler (saving the one in place, e.g. lua.c's,
 * which would otherwise raise "interrupted!" from a Lua hook only once the wait is
 * over) and returns the read end of a self-pipe: the handler sets a flag and writes a
 * byte to the pipe, so a poll() that includes the fd (dg_engine_set_wake_fd) returns
 * at once, with no race between checking the flag and going to sleep.
 * dg_sigint_disarm() restores the saved handler when the last arm is undone (arms
 * nest; the outermost arm forgets an earlier one), and a SIGINT caught but not yet taken
 * is raised again for that handler. Where SIGINT is ignored (SIG_IGN: a host's choice, or
 * a background job's) arming changes nothing and nothing is ever caught. dg_sigint_take() returns 1 once per caught
 * SIGINT and drains the pipe.
 *
 * Process-wide by nature (signal dispositions are): call from the thread that owns
 * the engine; not for multi-threaded hosts that route SIGINT elsewhere. No Lua.
 */
#ifndef DG_SIGNAL_H
#define DG_SIGNAL_H

/* The fd to poll, or -1 if the handler could not be installed. */
int dg_sigint_arm(void);
void dg_sigint_disarm(void);
/* Disarm once and raise SIGINT again: for one who caught it, cleaned up, and now hands it
 * to the handler from before (or, nested, to the outer arm). */
void dg_sigint_pass_on(void);
/* The pipe's read end while armed, else -1. */
int dg_sigint_fd(void);
/* 1 if a SIGINT arrived since the last call (then cleared), else 0. */
int dg_sigint_take(void);
/* Pretend a SIGINT arrived (what the handler does); for tests. */
void dg_sigint_raise_for_test(void);

#endif
