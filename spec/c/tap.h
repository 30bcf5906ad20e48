/* tap.h - TAP output for the C tests: one `ok` line per check, then the plan.
 *
 *   ok(cond, "what it checks");          ... as many as there are checks
 *   return tap_done();                   prints "1..N"; exit status 1 if any check failed
 */
#ifndef DICOMGCS_SPEC_TAP_H
#define DICOMGCS_SPEC_TAP_H

#include <stdio.h>

static int tap_count = 0, tap_failed = 0;

static void ok(int cond, const char *name) {
  tap_count++;
  if (!cond) tap_failed++;
  printf("%sok %d - %s\n", cond ? "" : "not ", tap_count, name);
  fflush(stdout);
}

/* Print the plan; returns the exit status for main. */
static int tap_done(void) {
  printf("1..%d\n", tap_count);
  return tap_failed ? 1 : 0;
}

#endif
