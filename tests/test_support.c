#define _XOPEN_SOURCE 700 /* nftw; before any header */
#include "test_support.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* Every file a suite makes lives in one folder of its own, "<dir>/<pid>.d", so that a passing
 * suite can remove everything it made in one sweep (a failing one keeps it for a look). */
static char tmp_dir[4000];

static const char *suite_tmp_dir(void) {
  if (!tmp_dir[0]) {
    const char *dir = getenv("UNTANGLE_TEST_TMP");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/%ld.d", dir && *dir ? dir : "/tmp", (long)getpid());
    ck_assert_msg(mkdir(tmp_dir, 0700) == 0 || errno == EEXIST, "cannot create %s: %s", tmp_dir, strerror(errno));
  }
  return tmp_dir;
}

const char *test_tmp_path(const char *name) {
  static char path[4096];
  snprintf(path, sizeof path, "%s/%s", suite_tmp_dir(), name);
  return path;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
  (void)sb, (void)type, (void)ftw;
  return remove(path) == 0 || errno == ENOENT ? 0 : -1;
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

void test_json_drop_field(char *json, const char *field) {
  char key[128];
  snprintf(key, sizeof key, "\"%s\":", field);
  char *at = strstr(json, key);
  ck_assert_msg(at != NULL, "no field %s in %s", field, json);
  char *end = at + strcspn(at, ",}");
  if (*end == ',') end++;                     /* the comma after it */
  else if (at > json && at[-1] == ',') at--;  /* or, the last field, the comma before it */
  memmove(at, end, strlen(end) + 1);
  ck_assert_msg(strstr(json, key) == NULL, "field %s twice in the JSON", field);
}

int test_run_suite(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  if (failed == 0 && tmp_dir[0] && nftw(tmp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
    fprintf(stderr, "warning: could not remove %s: %s\n", tmp_dir, strerror(errno));
  else if (failed != 0 && tmp_dir[0])
    fprintf(stderr, "the suite's files are kept in %s\n", tmp_dir);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
