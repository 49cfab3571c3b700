/* OverLORD as a user runs it: `untangle train overlord` on a tiny rendered set through all
 * three stages, resumed at a stage boundary and inside a stage with the same losses bit for
 * bit, translate and grid dispatched by the run's checkpoint, and bad inputs (images of another
 * size, the localized form without masks, bad options) refused with a message and nothing
 * written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cli_runner.h"
#include "untangle_data.h"

static int exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

static char data[1024], device[64];
static const ut_synth_cfg synth = { .classes = 2, .views = 8, .size = 16, .seed = 2 };

static void make_data(void) {
  snprintf(device, sizeof device, "%s", test_device_select());
  snprintf(data, sizeof data, "%s", test_tmp_path("overlord.dat"));
  ck_assert_ut_ok(ut_synth_write_dataset(&synth, data, 2, NULL, NULL));
}

/* A tiny model at 16x16: 12 training images in batches of 4, so an epoch is 3 steps. */
static cli_result train(const char *run, const char *extra) {
  char args[4096];
  snprintf(args, sizeof args,
           "train overlord --data %s --out %s --device %s --preset small --batch 4 --test-ratio 0.25 --set size=16 "
           "--set gen_channels=8 --set enc_channels=4 --set enc_max=8 --set dis_channels=8 --set label_dim=4 "
           "--set uncorr_dim=4 --set corr_dim=4 %s",
           data, run, device, extra);
  return cli_run(args);
}

static char *log_of(const char *run) {
  char path[1200];
  snprintf(path, sizeof path, "%s/losses.tsv", run);
  char *text = cli_slurp(path, NULL);
  ck_assert_ptr_nonnull(text);
  return text;
}

/* Every translator's misreads in eval.json: per target label, the label read instead is another
 * label, and its share and the share read as the target add up to at most all of the target's
 * changes. */
static void assert_misreads_consistent(const char *text) {
  json_t *root = json_loads(text, 0, NULL);
  ck_assert_ptr_nonnull(root);
  const char *name;
  json_t *scores;
  json_object_foreach(json_object_get(root, "translation"), name, scores) {
    json_t *judged = json_object_get(scores, "label_judged_by_target");
    json_t *instead = json_object_get(scores, "label_judged_instead_by_target");
    ck_assert_msg(json_is_array(judged) && json_is_array(instead) && json_array_size(judged) == json_array_size(instead),
                  "%s: per-target lists missing or of different lengths", name);
    for (size_t k = 0; k < json_array_size(instead); k++) {
      json_t *miss = json_array_get(instead, k), *hit = json_array_get(judged, k);
      if (json_is_null(miss)) continue;
      json_int_t label = json_integer_value(json_object_get(miss, "label"));
      double share = json_real_value(json_object_get(miss, "share"));
      ck_assert_msg(label >= 0 && (size_t)label < json_array_size(judged) && (size_t)label != k,
                    "%s: target %zu read instead as %lld", name, k, (long long)label);
      ck_assert_msg(share > 0 && share + json_number_value(hit) <= 1 + 1e-9, "%s: target %zu: judged %g and read instead %g",
                    name, k, json_number_value(hit), share);
    }
  }
  json_decref(root);
}

START_TEST(train_resume_translate) {
  make_data();
  char whole[1024], parts[1024], args[8192];
  snprintf(whole, sizeof whole, "%s", test_tmp_path("overlord-whole"));
  snprintf(parts, sizeof parts, "%s", test_tmp_path("overlord-parts"));
  cli_result r = train(whole, "--epochs 2,1,2");
  ck_assert_msg(r.status == 0, "train failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "pose-invariant");
  cli_result_free(&r);
  /* Stopped at the end of stage 1, then resumed into stage 3 with a checkpoint every 2 steps,
   * so its last resume starts inside stage 3. */
  r = train(parts, "--epochs 2,0,0");
  ck_assert_msg(r.status == 0, "train failed:\n%s\n%s", r.out, r.err);
  cli_result_free(&r);
  snprintf(args, sizeof args, "translate %s --label 1 --content-from %s -o %s/x.jpg", parts, data, parts);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "only stage 1 trained");
  cli_result_free(&r);
  snprintf(args, sizeof args, "train overlord --data %s --out %s --device %s --epochs 2,1,1 --resume", data, parts, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "resume failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "resuming");
  cli_result_free(&r);
  snprintf(args, sizeof args, "train overlord --data %s --out %s --device %s --epochs 2,1,2 --resume", data, parts, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "resume failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "in stage 3");
  cli_result_free(&r);
  char *log_whole = log_of(whole), *log_parts = log_of(parts);
  ck_assert_str_eq(log_parts, log_whole);
  assert_contains(log_whole, "\n3\t1\t5\t");
  free(log_whole);
  free(log_parts);
  char path[1200];
  for (int s = 1; s <= 3; s++) {
    snprintf(path, sizeof path, "%s/samples/stage%d-epoch0001.jpg", whole, s);
    ck_assert_msg(exists(path), "no %s", path);
  }

  /* translate and grid go to OverLORD through the checkpoint. */
  char in[1200], out[1200];
  snprintf(in, sizeof in, "%s/in.jpg", whole);
  uint8_t px[16 * 16 * 3];
  ut_synth_render(&synth, 1, 3, px);
  ck_assert_ut_ok(ut_jpeg_write(in, px, 16, 16, 3, 95));
  snprintf(out, sizeof out, "%s/out.jpg", whole);
  snprintf(args, sizeof args, "translate %s --label object-000 --content-from %s --reference %s -o %s --device %s", whole,
           in, in, out, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0 && exists(out), "translate failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "stage 3");
  cli_result_free(&r);
  snprintf(args, sizeof args, "translate %s --label object-007 --content-from %s -o %s --device %s", whole, in, out, device);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "no label 'object-007'");
  cli_result_free(&r);
  snprintf(out, sizeof out, "%s/grid-cli.jpg", whole);
  snprintf(args, sizeof args, "grid %s --images %s %s --labels 0,1 -o %s --device %s", whole, in, in, out, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0 && exists(out), "grid failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "stage 2 left, stage 3 right");
  cli_result_free(&r);
}
END_TEST

START_TEST(bad_input_writes_nothing) {
  make_data();
  char run[1024], args[4096], big[1024];
  snprintf(run, sizeof run, "%s", test_tmp_path("overlord-never"));
  /* The localized form on a set without masks. */
  cli_result r = train(run, "--correlation localized --epochs 1,0,0");
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "has no masks");
  cli_result_free(&r);
  ck_assert(!exists(run));
  /* Images of another size than the model's. */
  snprintf(big, sizeof big, "%s", test_tmp_path("overlord-32.dat"));
  ck_assert_ut_ok(ut_synth_write_dataset(&(ut_synth_cfg){ .classes = 2, .views = 4, .size = 32 }, big, 1, NULL, NULL));
  snprintf(args, sizeof args, "train overlord --data %s --out %s --device %s --preset small --set size=16 --batch 4", big,
           run, device);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "32x32 images");
  cli_result_free(&r);
  ck_assert(!exists(run));
  /* Bad options are usage errors naming them. */
  static const char *const bad[][2] = {
    { "--correlation global", "pose-invariant or localized" },
    { "--set batch=6", "batch 6" },
    { "--set depth=3", "depth" },
    { "--epochs 1,2,3,4", "at most three" },
    { "--recon vgg", "--vgg FILE" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(args, sizeof args, "train overlord --data %s --out %s --device %s --preset small %s", data, run, device, bad[i][0]);
    r = cli_run(args);
    ck_assert_msg(r.status != 0, "%s was accepted", bad[i][0]);
    assert_contains(r.err, bad[i][1]);
    cli_result_free(&r);
  }
  ck_assert(!exists(run));
  r = cli_run("train --help");
  assert_contains(r.out, "overlord");
  cli_result_free(&r);
}
END_TEST

/* The localized form on a rendered set with paints and masks, through eval: its report holds
 * both stages, the baselines, the judges and the probes; a set without paints is refused. */
START_TEST(localized_and_eval) {
  make_data();
  char painted[1024], run[1024], args[8192], path[1200];
  snprintf(painted, sizeof painted, "%s", test_tmp_path("overlord-paints.dat"));
  snprintf(run, sizeof run, "%s", test_tmp_path("overlord-localized"));
  ut_synth_cfg cfg = synth;
  cfg.classes = 3;
  ck_assert_ut_ok(ut_synth_write_paints(&cfg, 3, 1, painted, NULL, NULL));
  snprintf(args, sizeof args,
           "train overlord --data %s --out %s --device %s --preset small --batch 4 --test-ratio 0.25 --set size=16 "
           "--set gen_channels=8 --set enc_channels=4 --set enc_max=8 --set dis_channels=8 --set label_dim=4 "
           "--set uncorr_dim=4 --set corr_dim=4 --correlation localized --epochs 1,1,1",
           painted, run, device);
  cli_result r = cli_run(args);
  ck_assert_msg(r.status == 0, "train failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "localized");
  cli_result_free(&r);
  snprintf(args, sizeof args, "eval %s --data %s --device %s --max-images 4 --judge-epochs 1 --targets 0", run, painted, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "eval failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "stage 3");
  cli_result_free(&r);
  snprintf(path, sizeof path, "%s/eval.json", run);
  char *json = cli_slurp(path, NULL);
  ck_assert_ptr_nonnull(json);
  static const char *const keys[] = { "\"stage2\"", "\"stage3\"", "\"copy\"", "\"truth\"", "\"paint_kept\"",
                                      "\"label_from_uncorrelated\"", "\"paint_from_correlated\"", "\"pairs\": 8",
                                      "\"targets_per_image\": 2", /* --targets 0: both other labels */
                                      "\"train_renders\": 63", "\"heldout_renders\": 9", /* 3 labels x 3 paints x views 0-3, 5-7 / view 4 */
                                      "\"stage1_training_images\"", "\"label_from_uncorrelated_embedding\"", "\"label_of_input\"",
                                      "\"label_judged_by_target\"", "\"label_judged_instead_by_target\"", "\"foreign_paint\"" };
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) assert_contains(json, keys[i]);
  assert_misreads_consistent(json);
  free(json);
  /* A run of stage 1 alone is evaluated on its training images, without the later stages. */
  char run1[1024];
  snprintf(run1, sizeof run1, "%s", test_tmp_path("overlord-stage1"));
  snprintf(args, sizeof args,
           "train overlord --data %s --out %s --device %s --preset small --batch 4 --test-ratio 0.25 --set size=16 "
           "--set gen_channels=8 --set enc_channels=4 --set enc_max=8 --set dis_channels=8 --set label_dim=4 "
           "--set uncorr_dim=4 --set corr_dim=4 --correlation localized --epochs 1,0,0",
           painted, run1, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "train of stage 1 failed:\n%s\n%s", r.out, r.err);
  cli_result_free(&r);
  snprintf(args, sizeof args, "eval %s --data %s --device %s --max-images 4 --judge-epochs 1 --targets 1", run1, painted,
           device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "eval of stage 1 failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "stage 1 on");
  ck_assert_msg(!strstr(r.out, "stage 2"), "a stage-1 run's eval reports stage 2:\n%s", r.out);
  cli_result_free(&r);
  snprintf(path, sizeof path, "%s/eval.json", run1);
  json = cli_slurp(path, NULL);
  ck_assert_ptr_nonnull(json);
  assert_contains(json, "\"stage1_training_images\"");
  assert_contains(json, "\"targets_per_image\": 1");
  ck_assert_msg(!strstr(json, "\"stage2\""), "a stage-1 run's eval.json holds stage 2:\n%s", json);
  free(json);
  /* A set without paints has no ground truth for the paint. */
  snprintf(args, sizeof args, "eval %s --data %s --device %s", run, data, device);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  cli_result_free(&r);
  /* A localized run translates with the image's mask only. */
  char in[1200], out[1200];
  snprintf(in, sizeof in, "%s/in.jpg", run);
  snprintf(out, sizeof out, "%s/out.jpg", run);
  uint8_t px[16 * 16 * 3];
  ut_synth_render(&cfg, 1, 3, px);
  ck_assert_ut_ok(ut_jpeg_write(in, px, 16, 16, 3, 95));
  snprintf(args, sizeof args, "translate %s --label 0 --content-from %s -o %s --device %s", run, in, out, device);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "--mask");
  cli_result_free(&r);
  snprintf(args, sizeof args, "translate %s --label 0 --content-from %s --mask %s -o %s --device %s", run, in, in, out, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0 && exists(out), "translate failed:\n%s\n%s", r.out, r.err);
  cli_result_free(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("overlord_train");
  TCase *tc = tcase_create("overlord_train");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, bad_input_writes_nothing);
  tcase_add_test(tc, train_resume_translate);
  tcase_add_test(tc, localized_and_eval);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
