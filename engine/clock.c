/* The one wall clock everything times itself with (untangle.h). */
#include <time.h>

#include "untangle.h"

double ut_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
