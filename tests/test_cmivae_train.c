/* CMI-VAE as a user runs it: `untangle data colorize` on a tiny grey set the test writes,
 * `untangle train cmivae` resumed bit for bit, translate, grid and eval dispatched by the run's
 * checkpoint, and bad input refused with a message and nothing written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_runner.h"
#include "untangle_data.h"

#define SIDE 16

static int exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

static char grey[1024], colour[1024], device[64];

/* 48 grey blobs of 3 classes on black, and their coloured copy. */
static void make_data(void) {
  snprintf(device, sizeof device, "%s", test_device_select());
  snprintf(grey, sizeof grey, "%s", test_tmp_path("cmivae-cli-grey.dat"));
  snprintf(colour, sizeof colour, "%s", test_tmp_path("cmivae-cli-colour.dat"));
  ut_dataset_writer *w = ut_dataset_writer_open(grey, &(ut_dataset_desc){ .height = SIDE, .width = SIDE, .channels = 1,
                                                                          .n_classes = 3 });
  ck_assert_ut_ptr(w);
  uint64_t state = 5;
  for (int i = 0; i < 48; i++) {
    float noise[SIDE * SIDE];
    uint8_t px[SIDE * SIDE];
    test_fill_uniform(&state, noise, SIDE * SIDE, 0.0f, 1.0f);
    int r = 3 + i % 3 * 2;
    for (int p = 0; p < SIDE * SIDE; p++) {
      int x = p % SIDE - 8, y = p / SIDE - 8;
      px[p] = x * x + y * y < r * r ? (uint8_t)(100 + 155 * noise[p]) : 0;
    }
    ck_assert_ut_ok(ut_dataset_writer_add(w, px, i % 3, -1));
  }
  ck_assert_ut_ok(ut_dataset_writer_finish(w));
  char args[4096];
  snprintf(args, sizeof args, "data colorize %s --hue uniform --seed 4 -o %s", grey, colour);
  cli_result r = cli_run(args);
  ck_assert_msg(r.status == 0, "colorize failed:\n%s\n%s", r.out, r.err);
  cli_result_free(&r);
}

START_TEST(colorize_cli) {
  make_data();
  char again[1024], args[4096];
  snprintf(again, sizeof again, "%s", test_tmp_path("cmivae-cli-again.dat"));
  snprintf(args, sizeof args, "data colorize %s --hue uniform --seed 4 -o %s", grey, again);
  cli_result r = cli_run(args);
  ck_assert_int_eq(r.status, 0);
  cli_result_free(&r);
  size_t la, lb;
  char *a = cli_slurp(colour, &la), *b = cli_slurp(again, &lb);
  ck_assert(a && b && la == lb && !memcmp(a, b, la));
  free(a);
  free(b);
  /* A colour set, a missing or unknown --hue: refused, nothing written. */
  remove(again);
  snprintf(args, sizeof args, "data colorize %s --hue uniform -o %s", colour, again);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "colour images (3 channels)");
  assert_contains(r.err, colour);
  cli_result_free(&r);
  snprintf(args, sizeof args, "data colorize %s -o %s", grey, again);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 2);
  assert_contains(r.err, "--hue uniform");
  cli_result_free(&r);
  snprintf(args, sizeof args, "data colorize %s --hue normal -o %s", grey, again);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 2);
  assert_contains(r.err, "not 'normal'");
  cli_result_free(&r);
  ck_assert(!exists(again));
  snprintf(args, sizeof args, "data info %s", colour);
  r = cli_run(args);
  assert_contains(r.out, "hue (");
  cli_result_free(&r);
}
END_TEST

/* A tiny model: 16x16, width 4, batch 8, a quarter held out: 4 steps an epoch; KL weight 1, which
 * the test of a changed weight expects, whatever the preset's. */
static cli_result train(const char *run, const char *extra) {
  char args[4096];
  snprintf(args, sizeof args,
           "train cmivae --data %s --out %s --device %s --preset small --size 16 --batch 8 --set ch=4 --set dis_ch=4 "
           "--set z1_dim=4 --set e2_hidden=8 --set test_ratio=0.25 --set w_kl=1 %s",
           colour, run, device, extra);
  return cli_run(args);
}

/* The recon and kl columns of RUN/losses.tsv at one step. */
static void losses_at(const char *run, int step, double *recon, double *kl) {
  char path[1200];
  snprintf(path, sizeof path, "%s/losses.tsv", run);
  char *text = cli_slurp(path, NULL);
  ck_assert_msg(text, "no %s", path);
  int found = 0;
  for (char *line = strtok(text, "\n"); line && !found; line = strtok(NULL, "\n")) {
    int epoch, at;
    double dis, total;
    found = sscanf(line, "%d %d %lf %lf %lf %lf", &epoch, &at, &dis, &total, recon, kl) == 6 && at == step;
  }
  free(text);
  ck_assert_msg(found, "step %d is not in %s", step, path);
}

START_TEST(train_resume_translate_eval) {
  make_data();
  char whole[1024], parts[1024], args[8192], path[1200];
  snprintf(whole, sizeof whole, "%s", test_tmp_path("cmivae-whole"));
  snprintf(parts, sizeof parts, "%s", test_tmp_path("cmivae-parts"));
  cli_result r = train(whole, "--feature hue --epochs 2");
  ck_assert_msg(r.status == 0, "train failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "feature hue");
  cli_result_free(&r);
  r = train(parts, "--feature hue --epochs 1");
  ck_assert_msg(r.status == 0, "train failed:\n%s\n%s", r.out, r.err);
  cli_result_free(&r);
  snprintf(args, sizeof args, "train cmivae --data %s --out %s --device %s --epochs 2 --resume", colour, parts, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "resume failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "after step 4"); /* it continues: a fresh start would redo the same steps */
  cli_result_free(&r);
  /* The same losses at every step and the same checkpoint, byte for byte. */
  static const char *const files[] = { "losses.tsv", "checkpoint.safetensors" };
  assert_same_files(whole, parts, files, 2);

  /* A loss weight may change on resume: the first step after it is the whole run's with the KL
   * term halved and the same reconstruction; a weight that shapes the model may not change. */
  char halved[1024];
  snprintf(halved, sizeof halved, "%s", test_tmp_path("cmivae-halved"));
  r = train(halved, "--feature hue --epochs 1");
  ck_assert_msg(r.status == 0, "train failed:\n%s\n%s", r.out, r.err);
  cli_result_free(&r);
  snprintf(args, sizeof args, "train cmivae --data %s --out %s --device %s --epochs 2 --resume --set w_kl=0.5", colour,
           halved, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "resume with w_kl 0.5 failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "w_kl changes from 1 to 0.5");
  assert_contains(r.out, "kl 0.5");
  cli_result_free(&r);
  double recon_whole, kl_whole, recon_halved, kl_halved;
  losses_at(whole, 4, &recon_whole, &kl_whole);
  losses_at(halved, 4, &recon_halved, &kl_halved);
  ck_assert_double_eq_tol(recon_halved, recon_whole, 1e-6 * recon_whole);
  ck_assert_double_eq_tol(kl_halved, 0.5 * kl_whole, 1e-6 * kl_whole);
  snprintf(args, sizeof args, "train cmivae --data %s --out %s --device %s --epochs 3 --resume", colour, halved, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "resume failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "kl 0.5"); /* the checkpoint keeps the new weight */
  cli_result_free(&r);
  snprintf(args, sizeof args, "train cmivae --data %s --out %s --device %s --epochs 4 --resume --set z1_dim=8", colour,
           halved, device);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 2);
  assert_contains(r.err, "--set z1_dim=8");
  assert_contains(r.err, "w_recon, w_kl and w_f");
  cli_result_free(&r);
  snprintf(path, sizeof path, "%s/samples/epoch0002.jpg", whole);
  ck_assert(exists(path));

  /* translate and grid go to CMI-VAE through the checkpoint. */
  char in[1200], out[1200];
  snprintf(in, sizeof in, "%s/in.jpg", whole);
  snprintf(out, sizeof out, "%s/out.jpg", whole);
  snprintf(args, sizeof args, "grid %s --content-from %s --hue 0,120,240 -o %s --device %s", whole, path, in, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0 && exists(in), "grid failed:\n%s\n%s", r.out, r.err);
  cli_result_free(&r);
  snprintf(args, sizeof args, "translate %s --content-from %s --feature-from %s -o %s --device %s", whole, in, in, out, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0 && exists(out), "translate failed:\n%s\n%s", r.out, r.err);
  cli_result_free(&r);
  snprintf(args, sizeof args, "translate %s --content-from %s --hue 90 -o %s --device %s", whole, in, out, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "translate --hue failed:\n%s\n%s", r.out, r.err);
  cli_result_free(&r);
  snprintf(args, sizeof args, "translate %s --content-from %s --class 1 -o %s --device %s", whole, in, out, device);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 2);
  assert_contains(r.err, "is a hue run");
  cli_result_free(&r);

  /* eval with the other run as its baseline. */
  snprintf(args, sizeof args, "eval %s --data %s --baseline %s --max-images 12 --judge-epochs 1 --device %s", whole, colour,
           parts, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "eval failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "fused hue error");
  /* The judged figures name the judge's accuracy; it passed the default bar of 0.9. */
  assert_contains(r.out, "class kept by the copy (judge ");
  assert_contains(r.out, "held-out grey real images");
  cli_result_free(&r);
  snprintf(path, sizeof path, "%s/eval.json", whole);
  char *json = cli_slurp(path, NULL);
  ck_assert_ptr_nonnull(json);
  assert_contains(json, "\"fused_hue_error_deg\"");
  assert_contains(json, "\"hue_error_at_most_a_fifth_of_baseline\"");
  assert_contains(json, "\"class_kept_by_the_copy\"");
  assert_contains(json, "\"reconstruction_class_kept\"");
  assert_contains(json, "\"judge_heldout_accuracy\"");
  free(json);

  /* The same images with classes that say nothing about them: the judge cannot learn them, so
   * eval refuses to judge and writes nothing. */
  char alike_grey[1024], alike[1024], report[1200];
  snprintf(alike_grey, sizeof alike_grey, "%s", test_tmp_path("cmivae-cli-alike-grey.dat"));
  snprintf(alike, sizeof alike, "%s", test_tmp_path("cmivae-cli-alike.dat"));
  snprintf(report, sizeof report, "%s/alike.json", whole);
  ut_dataset *src = ut_dataset_open(grey);
  ck_assert_ut_ptr(src);
  ut_dataset_writer *w = ut_dataset_writer_open(alike_grey, &(ut_dataset_desc){ .height = SIDE, .width = SIDE,
                                                                                .channels = 1, .n_classes = 3 });
  ck_assert_ut_ptr(w);
  for (int32_t i = 0; i < ut_dataset_count(src); i++) /* the size tells the class in i % 3; this is i / 16 */
    ck_assert_ut_ok(ut_dataset_writer_add(w, ut_dataset_image(src, i), i / 16, -1));
  ck_assert_ut_ok(ut_dataset_writer_finish(w));
  ut_dataset_close(src);
  snprintf(args, sizeof args, "data colorize %s --hue uniform --seed 4 -o %s", alike_grey, alike);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 0);
  cli_result_free(&r);
  snprintf(args, sizeof args, "eval %s --data %s --max-images 12 --judge-epochs 1 -o %s --device %s", whole, alike, report,
           device);
  r = cli_run(args);
  ck_assert_msg(r.status == 1, "eval judged with a judge that cannot tell the classes apart:\n%s\n%s", r.out, r.err);
  assert_contains(r.err, "the class judge recognises only");
  assert_contains(r.err, "--judge-min-accuracy");
  ck_assert(!exists(report));
  cli_result_free(&r);
  /* A judge trained on another set, whose classes the images show, passes and is named. */
  snprintf(args, sizeof args, "eval %s --data %s --max-images 12 --judge-epochs 1 --judge-data %s --judge-head flat -o %s "
           "--device %s", whole, alike, grey, report, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "eval failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "head flat, images of ");
  cli_result_free(&r);
  json = cli_slurp(report, NULL);
  ck_assert_ptr_nonnull(json);
  assert_contains(json, grey);
  free(json);
}
END_TEST

START_TEST(bad_input_writes_nothing) {
  make_data();
  char run[1024], args[4096];
  snprintf(run, sizeof run, "%s", test_tmp_path("cmivae-never"));
  /* A grey set for the hue feature. */
  snprintf(args, sizeof args, "train cmivae --data %s --feature hue --out %s --device %s --size 16", grey, run, device);
  cli_result r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, grey);
  assert_contains(r.err, "data colorize");
  cli_result_free(&r);
  ck_assert(!exists(run));
  /* Images smaller than the model; an unknown feature; a bad --set; --resume with settings. */
  snprintf(args, sizeof args, "train cmivae --data %s --feature hue --out %s --device %s --size 32", colour, run, device);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "at least 32 pixels");
  cli_result_free(&r);
  snprintf(args, sizeof args, "train cmivae --data %s --feature colour --out %s", colour, run);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 2);
  assert_contains(r.err, "hue or class, not 'colour'");
  cli_result_free(&r);
  snprintf(args, sizeof args, "train cmivae --data %s --feature hue --out %s --set w_f=-1", colour, run);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "must not be negative");
  cli_result_free(&r);
  snprintf(args, sizeof args, "train cmivae --data %s --out %s --resume --no-cmi", colour, run);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 2);
  cli_result_free(&r);
  ck_assert(!exists(run));
  r = cli_run("train --help");
  assert_contains(r.out, "cmivae");
  cli_result_free(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("cmivae_train");
  TCase *tc = tcase_create("cmivae_train");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, colorize_cli);
  tcase_add_test(tc, bad_input_writes_nothing);
  tcase_add_test(tc, train_resume_translate_eval);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
