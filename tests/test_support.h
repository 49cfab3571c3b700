/* Shared by the Check suites: one runtime per test process, host reference helpers, and
 * random data from a fixed seed. */
#ifndef UT_TEST_SUPPORT_H
#define UT_TEST_SUPPORT_H

#include <check.h>
#include <stdint.h>

#include "untangle.h"

/* The runtime every test in this process shares, opened on first use on the device named by
 * $UNTANGLE_TEST_DEVICE (default "best"). Fails the test with ut_last_error() if it cannot. */
ut_runtime *test_runtime(void);
/* The device the suites run on: $UNTANGLE_TEST_DEVICE, or "best" (for --device of the program). */
const char *test_device_select(void);

/* Uniform values in [lo, hi) from a fixed-seed generator local to the caller's state. */
void test_fill_uniform(uint64_t *state, float *x, int64_t n, float lo, float hi);

/* A path under $UNTANGLE_TEST_TMP (or /tmp) unique to this process: "<dir>/<pid>.d/<name>".
 * test_run_suite removes the folder when every test passed and keeps it when one failed. */
const char *test_tmp_path(const char *name);

/* Largest |a - b| / (abs_tol + rel_tol * |b|) over n elements; <= 1 means within tolerance.
 * *worst gets the index of the worst element. */
double test_compare(const float *a, const float *b, int64_t n, double abs_tol, double rel_tol, int64_t *worst);

/* Takes "field": value out of a flat JSON object in place (a configuration as
 * kit_config_to_json writes it: values without commas), with one comma beside it, as a
 * checkpoint written before the field existed holds it. Fails the test if the field is not
 * there exactly once. */
void test_json_drop_field(char *json, const char *field);

/* Runs the suite (no fork) and returns the process exit status. */
int test_run_suite(Suite *s);

#define ck_assert_ut_ok(expr)                                                                   \
  do {                                                                                          \
    ut_status ck_s_ = (expr);                                                                   \
    ck_assert_msg(ck_s_ == UT_OK, "%s -> %s: %s", #expr, ut_status_name(ck_s_), ut_last_error()); \
  } while (0)

#define ck_assert_ut_ptr(expr) ck_assert_msg((expr) != NULL, "%s -> NULL: %s", #expr, ut_last_error())

#endif
