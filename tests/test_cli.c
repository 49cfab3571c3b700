/* The `untangle` program as a user meets it: help and version, device listing as JSON, exit
 * status 2 with a message naming the culprit for unknown commands and bad options, and a
 * short spirals training that writes a checkpoint and resumes from it.
 *
 * The program is found next to this test in the build tree (../apps/untangle) or at
 * $UNTANGLE_EXE. It runs through the shell with its output captured in files. */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_runner.h"

START_TEST(test_help_and_version) {
  cli_result r = cli_run("--help");
  ck_assert_msg(r.status == 0, "--help exited %d: %s", r.status, r.err);
  assert_contains(r.out, "Usage: untangle");
  assert_contains(r.out, "devices");
  assert_contains(r.out, "train");
  cli_result_free(&r);

  r = cli_run("--version");
  ck_assert_int_eq(r.status, 0);
  assert_contains(r.out, "untangle ");
  cli_result_free(&r);

  r = cli_run("help train");
  ck_assert_int_eq(r.status, 0);
  assert_contains(r.out, "--steps");
  assert_contains(r.out, "--resume");
  cli_result_free(&r);

  r = cli_run("help train spirals");
  ck_assert_int_eq(r.status, 0);
  assert_contains(r.out, "--save-every");
  cli_result_free(&r);

  r = cli_run("train spirals --help");
  ck_assert_int_eq(r.status, 0);
  assert_contains(r.out, "--save-every");
  cli_result_free(&r);

  r = cli_run("devices -h");
  ck_assert_int_eq(r.status, 0);
  assert_contains(r.out, "--json");
  cli_result_free(&r);

  r = cli_run("");
  ck_assert_msg(r.status == 2, "no command exited %d", r.status);
  assert_contains(r.err, "Usage: untangle");
  cli_result_free(&r);
}
END_TEST

START_TEST(test_usage_errors) {
  static const struct {
    const char *args;
    const char *says[2];
  } cases[] = {
    { "frobnicate", { "unknown command 'frobnicate'", "devices" } },
    { "help frobnicate", { "unknown command 'frobnicate'", NULL } },
    { "help train hopscotch", { "unknown model 'hopscotch'", NULL } },
    { "help devices json", { "expects a command name", NULL } },
    { "--frobnicate", { "'--frobnicate'", NULL } },
    { "devices --frobnicate", { "unknown option '--frobnicate'", "untangle help devices" } },
    { "devices -x", { "unknown option '-x'", NULL } },
    { "devices extra", { "no arguments", "'extra'" } },
    { "train", { "model name", NULL } },
    { "train hopscotch", { "unknown model 'hopscotch'", "spirals" } },
    { "train spirals --steps", { "'--steps' needs a value", NULL } },
    { "train spirals --steps abc", { "--steps expects a whole number", "'abc'" } },
    { "train spirals --steps -5", { "--steps expects a whole number", "'-5'" } },
    { "train spirals -n 12x", { "--steps", "'12x'" } },
    { "train spirals --seed -1", { "--seed expects a whole number", "'-1'" } },
    { "train spirals --batch 100000", { "--batch 100000", "training points" } },
    { "train spirals --save-every 0", { "--save-every", "'0'" } },
    { "train spirals --out ''", { "--out", NULL } },
    { "train lord --content-dim 0", { "--content-dim", "'0'" } },
    { "train lord --class-dim 12x", { "--class-dim", "'12x'" } },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cli_result r = cli_run(cases[i].args);
    ck_assert_msg(r.status == 2, "'untangle %s' exited %d, not 2; stderr:\n%s", cases[i].args, r.status, r.err);
    for (int k = 0; k < 2 && cases[i].says[k]; k++) assert_contains(r.err, cases[i].says[k]);
    cli_result_free(&r);
  }
}
END_TEST

START_TEST(test_devices_json) {
  cli_result r = cli_run("devices --json");
  ck_assert_msg(r.status == 0, "devices --json exited %d: %s", r.status, r.err);
  json_error_t err;
  json_t *arr = json_loads(r.out, 0, &err);
  ck_assert_msg(arr != NULL, "not JSON (line %d: %s):\n%s", err.line, err.text, r.out);
  ck_assert_msg(json_is_array(arr) && json_array_size(arr) >= 1, "expected an array of at least one device:\n%s", r.out);
  size_t i;
  json_t *dev;
  json_array_foreach(arr, i, dev) {
    ck_assert_int_eq(json_integer_value(json_object_get(dev, "index")), (json_int_t)i);
    ck_assert_msg(json_is_string(json_object_get(dev, "name")), "device %zu has no name", i);
    ck_assert_msg(json_is_string(json_object_get(dev, "type")), "device %zu has no type", i);
    ck_assert_msg(json_integer_value(json_object_get(dev, "compute_units")) >= 1, "device %zu has no compute units", i);
    ck_assert_msg(json_integer_value(json_object_get(dev, "global_mem_bytes")) > 0, "device %zu has no memory", i);
    ck_assert_msg(json_is_boolean(json_object_get(dev, "fp64")), "device %zu lacks fp64", i);
  }
  json_decref(arr);
  cli_result_free(&r);

  r = cli_run("devices");
  ck_assert_int_eq(r.status, 0);
  assert_contains(r.out, "OpenCL C");
  cli_result_free(&r);
}
END_TEST

/* The OpenBLAS kernels the program multiplies with. This test process runs the ones OpenBLAS
 * chose by itself; where those are older than the processor's vector units, the program must
 * run the better ones and say what OpenBLAS had chosen, else the same ones without that note.
 * A user's own OPENBLAS_CORETYPE stands. */
START_TEST(test_blas_kernels) {
  const char *own = ut_blas_kernels(), *better = ut_blas_better_kernels();
  if (getenv("OPENBLAS_CORETYPE")) better = NULL; /* the tests run under the user's choice */
  char expect[256];
  snprintf(expect, sizeof expect, "with OpenBLAS's %s kernels", better ? better : own);
  cli_result r = cli_run("devices");
  ck_assert_msg(r.status == 0, "devices exited %d: %s", r.status, r.err);
  if (!strstr(r.out, "cpu ")) { /* no CPU device: no such line */
    cli_result_free(&r);
    return;
  }
  assert_contains(r.out, expect);
  if (better) {
    snprintf(expect, sizeof expect, "OpenBLAS by itself chose %s on this processor", own);
    assert_contains(r.out, expect);
  } else {
    ck_assert_msg(!strstr(r.out, "by itself chose"), "OpenBLAS's own choice was replaced:\n%s", r.out);
  }
  snprintf(expect, sizeof expect, "direct loops in %d-float vectors", ut_host_conv_lanes());
  assert_contains(r.out, expect);
  cli_result_free(&r);
  r = cli_run_under("UNTANGLE_CONV_LANES=8", "devices --json");
  ck_assert_msg(r.status == 0, "devices exited %d: %s", r.status, r.err);
  assert_contains(r.out, "\"host_conv_lanes\": 8");
  cli_result_free(&r);
#if defined(__x86_64__)
  r = cli_run_under("OPENBLAS_CORETYPE=Haswell", "devices --json");
  ck_assert_msg(r.status == 0, "devices exited %d: %s", r.status, r.err);
  ck_assert_msg(!strstr(r.out, "host_blas_detected"), "the user's OPENBLAS_CORETYPE was replaced:\n%s", r.out);
  assert_contains(r.out, "\"host_blas_kernels\": \"Haswell\"");
  cli_result_free(&r);
#endif
}
END_TEST

START_TEST(test_train_and_resume) {
  char dir[4096], args[8192], ckpt[8192];
  snprintf(dir, sizeof dir, "%s", test_tmp_path("cli-spirals"));
  snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
  /* The program honours UNTANGLE_DEVICE; point it at the tests' device. */
  const char *dev = getenv("UNTANGLE_TEST_DEVICE");
  if (dev && *dev) setenv("UNTANGLE_DEVICE", dev, 1);

  snprintf(args, sizeof args, "train spirals --steps 30 --batch 64 --save-every 10 --out '%s'", dir);
  cli_result r = cli_run(args);
  ck_assert_msg(r.status == 0, "training exited %d:\n%s%s", r.status, r.out, r.err);
  assert_contains(r.out, "accuracy at step 30");
  assert_contains(r.out, "ms per step");
  assert_contains(r.out, "program cache");
  assert_contains(r.err, "step 30/30");
  ck_assert_msg(access(ckpt, R_OK) == 0, "no checkpoint at %s", ckpt);
  cli_result_free(&r);

  snprintf(args, sizeof args, "train spirals --steps 40 --resume --out '%s'", dir);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "resuming exited %d:\n%s%s", r.status, r.out, r.err);
  assert_contains(r.out, "at step 30");
  assert_contains(r.out, "batch 64 points");
  assert_contains(r.out, "accuracy at step 40");
  cli_result_free(&r);

  snprintf(args, sizeof args, "train spirals --steps 50 --resume --seed 9 --out '%s'", dir);
  r = cli_run(args);
  ck_assert_msg(r.status == 2, "resuming with another seed exited %d:\n%s", r.status, r.err);
  assert_contains(r.err, "--seed 9");
  cli_result_free(&r);

  snprintf(args, sizeof args, "train spirals --resume --out '%s/nothing-here'", dir);
  r = cli_run(args);
  ck_assert_msg(r.status == 1, "resuming without a checkpoint exited %d:\n%s", r.status, r.err);
  assert_contains(r.err, "cannot resume");
  cli_result_free(&r);

  unlink(ckpt);
  rmdir(dir);
}
END_TEST

static Suite *cli_suite(void) {
  Suite *s = suite_create("cli");
  TCase *tc = tcase_create("program");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_help_and_version);
  tcase_add_test(tc, test_usage_errors);
  tcase_add_test(tc, test_devices_json);
  tcase_add_test(tc, test_blas_kernels);
  tcase_add_test(tc, test_train_and_resume);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(cli_suite()); }
