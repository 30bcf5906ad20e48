#include "dg_time.h"

#include <errno.h>
#include <math.h>
#include <time.h>

double dg_monotonic_seconds(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0.0;
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int dg_sleep_seconds(double seconds) {
  struct timespec req, rem;
  if (!(seconds > 0)) return 0;
  if (seconds > 1e9) seconds = 1e9;
  req.tv_sec = (time_t)floor(seconds);
  req.tv_nsec = (long)((seconds - floor(seconds)) * 1e9);
  while (nanosleep(&req, &rem) != 0) {
    if (errno != EINTR) return -1;
    req = rem;
  }
  return 0;
}
