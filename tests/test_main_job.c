/* The main job (scripts/main-job.sh) end to end at MAIN_JOB_SCALE=tiny: the same pipeline as the
 * README's first command (render, train LORD, train the plain autoencoder with the same budget,
 * evaluate LORD beside it), in seconds, with this build's program instead of a fresh build.
 * What the full-size settings achieve is measured by running the job itself (README.md). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "cli_runner.h"

static void assert_file(const char *dir, const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  size_t len = 0;
  free(cli_slurp(path, &len));
  ck_assert_msg(len > 0, "the main job wrote no %s", path);
}

START_TEST(tiny_main_job) {
  const char *out = test_tmp_path("main-job");
  char cmd[8192], log[4096];
  snprintf(log, sizeof log, "%s.log", out);
  snprintf(cmd, sizeof cmd,
           "rm -rf '%s' && MAIN_JOB_SCALE=tiny UNTANGLE_EXE='%s' UNTANGLE_DEVICE='%s' bash '%s/scripts/main-job.sh' '%s' "
           ">'%s' 2>&1",
           out, cli_program(), test_device_select(), UT_SOURCE_DIR, out, log);
  int w = system(cmd);
  char *text = cli_slurp(log, NULL);
  ck_assert_msg(WIFEXITED(w) && WEXITSTATUS(w) == 0, "the main job failed:\n%s", text);
  assert_contains(text, "training the plain autoencoder with the same budget");
  free(text);

  static const char *const files[] = { "devices.txt", "synth.dat", "lord/checkpoint.safetensors",
                                       "autoencoder/checkpoint.safetensors", "train-autoencoder.txt", "eval.txt" };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) assert_file(out, files[i]);
  char path[4096];
  snprintf(path, sizeof path, "%s/translation-grid.jpg", out);
  size_t len = 0;
  unsigned char *jpeg = (unsigned char *)cli_slurp(path, &len);
  ck_assert_msg(len > 2 && jpeg[0] == 0xFF && jpeg[1] == 0xD8, "%s is not a JPEG", path);
  free(jpeg);

  /* The autoencoder takes LORD's settings, code sizes included, less the noise and the decay. */
  snprintf(path, sizeof path, "%s/train-lord.txt", out);
  text = cli_slurp(path, NULL);
  assert_contains(text, "content 16, class");
  assert_contains(text, "content noise 0.5 decay 0.0001");
  free(text);
  snprintf(path, sizeof path, "%s/train-autoencoder.txt", out);
  text = cli_slurp(path, NULL);
  assert_contains(text, "content 16, class");
  assert_contains(text, "content noise 0 decay 0,");
  free(text);

  /* The evaluation holds LORD's figures and the autoencoder's on the same pairs. */
  snprintf(path, sizeof path, "%s/eval.txt", out);
  text = cli_slurp(path, NULL);
  assert_contains(text, "autoencode  class-agn");
  free(text);
  snprintf(path, sizeof path, "%s/eval.json", out);
  json_error_t err;
  json_t *root = json_load_file(path, 0, &err);
  ck_assert_msg(root != NULL, "%s: %s", path, err.text);
  json_t *seen = json_object_get(json_object_get(root, "content_transfer"), "seen_classes");
  ck_assert_msg(json_is_object(json_object_get(seen, "stage2")) && json_is_object(json_object_get(seen, "baseline_run")),
                "%s lacks LORD's or the autoencoder's transfer figures", path);
  ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(root, "baseline_run"), "stage")), 2);
  json_decref(root);
}
END_TEST

int main(void) {
  Suite *s = suite_create("main_job");
  TCase *t = tcase_create("main_job");
  tcase_set_timeout(t, 600);
  tcase_add_test(t, tiny_main_job);
  suite_add_tcase(s, t);
  return test_run_suite(s);
}
