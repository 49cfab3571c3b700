/* UNIT as a user runs it: `untangle train unit` on a tiny rendered two-domain set, resumed
 * bit for bit, with translate, grid and eval dispatched by the run's checkpoint, and the bad
 * inputs (a set with one domain, images smaller than the model) refused with a message and
 * nothing written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_runner.h"
#include "untangle_data.h"

static int exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

static char data[1024], device[64];

static void make_data(void) {
  snprintf(device, sizeof device, "%s", test_device_select());
  snprintf(data, sizeof data, "%s", test_tmp_path("unit-pairs.dat"));
  ut_synth_cfg cfg = { .classes = 2, .views = 8, .size = 16, .seed = 2 };
  int looks[2] = { UT_SYNTH_DAY, UT_SYNTH_NIGHT };
  ck_assert_ut_ok(ut_synth_write_domains(&cfg, looks, NULL, 2, data, 2, NULL, NULL));
}

/* A tiny model: the small preset at 16x16, width 4, batch 2: 12 training images a domain, so an
 * epoch is 6 steps. */
static cli_result train(const char *run, const char *extra) {
  char args[4096];
  snprintf(args, sizeof args,
           "train unit --data %s --out %s --device %s --preset small --size 16 --batch 2 --set ch=4 --set dis_ch=4 "
           "--set dis_shared=1 --set test_ratio=0.25 %s",
           data, run, device, extra);
  return cli_run(args);
}

START_TEST(train_resume_translate) {
  make_data();
  char whole[1024], parts[1024], args[8192];
  snprintf(whole, sizeof whole, "%s", test_tmp_path("unit-whole"));
  snprintf(parts, sizeof parts, "%s", test_tmp_path("unit-parts"));
  cli_result r = train(whole, "--epochs 2");
  ck_assert_msg(r.status == 0, "train failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "day -> night");
  cli_result_free(&r);
  r = train(parts, "--epochs 1");
  ck_assert_msg(r.status == 0, "train failed:\n%s\n%s", r.out, r.err);
  cli_result_free(&r);
  snprintf(args, sizeof args, "train unit --data %s --out %s --device %s --epochs 2 --resume", data, parts, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "resume failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "after step 6"); /* it continues: a fresh start would redo the same steps */
  cli_result_free(&r);
  /* The same losses at every step and the same checkpoint, byte for byte. */
  char path[1200];
  static const char *const files[] = { "losses.tsv", "checkpoint.safetensors" };
  assert_same_files(whole, parts, files, 2);
  snprintf(path, sizeof path, "%s/samples/epoch0002.jpg", whole);
  ck_assert(exists(path));

  /* translate and grid go to UNIT through the checkpoint. */
  char in[1200], out[1200];
  snprintf(in, sizeof in, "%s/in.jpg", whole);
  uint8_t px[16 * 16 * 3];
  ut_synth_render(&(ut_synth_cfg){ .classes = 2, .views = 8, .size = 16, .seed = 2 }, 1, 3, px);
  ck_assert_ut_ok(ut_jpeg_write(in, px, 16, 16, 3, 95));
  snprintf(out, sizeof out, "%s/out.jpg", whole);
  snprintf(args, sizeof args, "translate %s --to night %s -o %s --device %s", whole, in, out, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0 && exists(out), "translate failed:\n%s\n%s", r.out, r.err);
  cli_result_free(&r);
  snprintf(args, sizeof args, "translate %s --to dusk %s -o %s --device %s", whole, in, out, device);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "not 'dusk'");
  cli_result_free(&r);
  snprintf(out, sizeof out, "%s/grid-cli.jpg", whole);
  snprintf(args, sizeof args, "grid %s --from A --images %s %s -o %s --device %s", whole, in, in, out, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0 && exists(out), "grid failed:\n%s\n%s", r.out, r.err);
  cli_result_free(&r);
  /* LORD's options on a UNIT run are UNIT's usage errors. */
  snprintf(args, sizeof args, "translate %s --class-from %s --content-from %s -o %s", whole, in, in, out);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 2);
  cli_result_free(&r);
}
END_TEST

START_TEST(bad_data_writes_nothing) {
  make_data();
  char run[1024], one[1024];
  snprintf(run, sizeof run, "%s", test_tmp_path("unit-never"));
  snprintf(one, sizeof one, "%s", test_tmp_path("unit-one-domain.dat"));
  ck_assert_ut_ok(ut_synth_write_dataset(&(ut_synth_cfg){ .classes = 2, .views = 4, .size = 16 }, one, 1, NULL, NULL));
  char args[4096];
  snprintf(args, sizeof args, "train unit --data %s --out %s --device %s --preset small --size 16", one, run, device);
  cli_result r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "no domains");
  cli_result_free(&r);
  ck_assert(!exists(run));
  /* Images smaller than the model. */
  snprintf(args, sizeof args, "train unit --data %s --out %s --device %s --preset small --size 32", data, run, device);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "at least 32 pixels");
  cli_result_free(&r);
  ck_assert(!exists(run));
  /* An unknown domain and a bad --set. */
  snprintf(args, sizeof args, "train unit --data %s --out %s --device %s --domains day,dusk", data, run, device);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "no domain 'dusk'");
  cli_result_free(&r);
  snprintf(args, sizeof args, "train unit --data %s --out %s --set width=3", data, run);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 2);
  assert_contains(r.err, "width");
  cli_result_free(&r);
  ck_assert(!exists(run));
  r = cli_run("train --help");
  assert_contains(r.out, "unit");
  cli_result_free(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("unit_train");
  TCase *tc = tcase_create("unit_train");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, bad_data_writes_nothing);
  tcase_add_test(tc, train_resume_translate);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
