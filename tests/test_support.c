#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static ut_runtime *shared_runtime;

static void close_shared_runtime(void) {
  ut_runtime_close(shared_runtime);
  shared_runtime = NULL;
}

const char *test_device_select(void) {
  const char *sel = getenv("UNTANGLE_TEST_DEVICE");
  return sel && *sel ? sel : "best";
}

ut_runtime *test_runtime(void) {
  if (!shared_runtime) {
    shared_runtime = ut_runtime_open(&(ut_device_query){ .select = test_device_select(), .profiling = 1 });
    ck_assert_msg(shared_runtime != NULL, "cannot open a device: %s", ut_last_error());
    atexit(close_shared_runtime);
  }
  return shared_runtime;
}

/* splitmix64: small, good enough for test data, and the same on every machine. */
static uint64_t next_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void test_fill_uniform(uint64_t *state, float *x, int64_t n, float lo, float hi) {
  for (int64_t i = 0; i < n; i++) {
    double u = (double)(next_u64(state) >> 11) / 9007199254740992.0;
    x[i] = (float)(lo + (hi - lo) * u);
  }
}

const char *test_tmp_path(const char *name) {
  static char path[4096];
  const char *dir = getenv("UNTANGLE_TEST_TMP");
  snprintf(path, sizeof path, "%s/%ld-%s", dir && *dir ? dir : "/tmp", (long)getpid(), name);
  return path;
}

double test_compare(const float *a, const float *b, int64_t n, double abs_tol, double rel_tol, int64_t *worst) {
  double max_ratio = 0;
  int64_t at = 0;
  for (int64_t i = 0; i < n; i++) {
    double r = fabs((double)a[i] - (double)b[i]) / (abs_tol + rel_tol * fabs((double)b[i]));
    if (!(r <= max_ratio)) { /* also catches NaN */
      max_ratio = isnan(r) ? INFINITY : r;
      at = i;
    }
  }
  if (worst) *worst = at;
  return max_ratio;
}

int test_run_suite(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
