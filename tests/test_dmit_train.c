/* DMIT as a user runs it: `untangle train dmit` on a tiny rendered three-domain set, resumed
 * bit for bit, with translate (prior styles, a reference's style) and grid dispatched by the
 * run's checkpoint, and bad inputs (a set with one domain, a set whose domains disagree with
 * the run's, bad options) refused with a message and nothing written. */
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

/* The image at path, decoded. */
static ut_image load(const char *path) {
  size_t len = 0;
  char *bytes = cli_slurp(path, &len);
  ut_image im = { 0 };
  ck_assert_ptr_nonnull(bytes);
  ck_assert_ut_ok(ut_jpeg_decode((const uint8_t *)bytes, len, path, 3, &im));
  free(bytes);
  return im;
}

static char data[1024], two[1024], device[64];

static void make_data(void) {
  snprintf(device, sizeof device, "%s", test_device_select());
  snprintf(data, sizeof data, "%s", test_tmp_path("dmit-seasons.dat"));
  snprintf(two, sizeof two, "%s", test_tmp_path("dmit-two.dat"));
  ut_synth_cfg cfg = { .classes = 2, .views = 4, .size = 16, .seed = 2 };
  int looks[3] = { UT_SYNTH_DAY, UT_SYNTH_NIGHT, UT_SYNTH_DUSK };
  ck_assert_ut_ok(ut_synth_write_domains(&cfg, looks, NULL, 3, data, 2, NULL, NULL));
  ck_assert_ut_ok(ut_synth_write_domains(&cfg, looks, NULL, 2, two, 2, NULL, NULL));
}

/* A tiny model at 16x16, batch 2: 6 training images per domain, so an epoch is 3 steps. */
static cli_result train(const char *set, const char *run, const char *extra) {
  char args[4096];
  snprintf(args, sizeof args,
           "train dmit --data %s --out %s --device %s --preset small --size 16 --batch 2 --set nef=4 --set ndf=4 "
           "--set n_style=2 --set down_blocks=1 --set content_res=1 --set style_blocks=2 --set dec_res=1 "
           "--set content_dis_blocks=1 --set image_dis_blocks=2 --set test_ratio=0.25 %s",
           set, run, device, extra);
  return cli_run(args);
}

START_TEST(train_resume_translate) {
  make_data();
  char whole[1024], parts[1024], args[8192];
  snprintf(whole, sizeof whole, "%s", test_tmp_path("dmit-whole"));
  snprintf(parts, sizeof parts, "%s", test_tmp_path("dmit-parts"));
  /* The learning rate decays over the second epoch in both: the resumed run must continue its
   * schedule, not restart it. */
  cli_result r = train(data, whole, "--epochs 2 --decay-epochs 1");
  ck_assert_msg(r.status == 0, "train failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "domains day,night,dusk");
  cli_result_free(&r);
  r = train(data, parts, "--epochs 1 --decay-epochs 0");
  ck_assert_msg(r.status == 0, "train failed:\n%s\n%s", r.out, r.err);
  cli_result_free(&r);
  snprintf(args, sizeof args, "train dmit --data %s --out %s --device %s --epochs 2 --decay-epochs 1 --resume", data,
           parts, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "resume failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "resuming");
  cli_result_free(&r);
  char path[1200];
  snprintf(path, sizeof path, "%s/losses.tsv", whole);
  char *log_whole = cli_slurp(path, NULL);
  snprintf(path, sizeof path, "%s/losses.tsv", parts);
  char *log_parts = cli_slurp(path, NULL);
  ck_assert_ptr_nonnull(log_whole);
  ck_assert_str_eq(log_parts, log_whole);
  /* Without the terms beyond the official ones, the 8 columns of the first runs. */
  static const char *const columns = "epoch\tstep\tdis\tdis_content\tadv\trec\tcyc\tkl\tlatent\tcontent";
  ck_assert_msg(!strncmp(log_whole, columns, strlen(columns)) && log_whole[strlen(columns)] == '\n', "%s", log_whole);
  free(log_whole);
  free(log_parts);
  /* With the confusion term, its three columns follow; the classifier's accuracy is a share. */
  char confused[1024];
  snprintf(confused, sizeof confused, "%s", test_tmp_path("dmit-confused"));
  r = train(data, confused, "--epochs 1 --set w_domain_confusion=1");
  ck_assert_msg(r.status == 0, "train failed:\n%s\n%s", r.out, r.err);
  cli_result_free(&r);
  snprintf(path, sizeof path, "%s/losses.tsv", confused);
  char *log_confused = cli_slurp(path, NULL);
  ck_assert_ptr_nonnull(log_confused);
  char *header_end = strchr(log_confused, '\n');
  ck_assert_ptr_nonnull(header_end);
  *header_end = 0;
  ck_assert_str_eq(log_confused + strlen(columns), "\tconfusion\tdomain_cls\tdomain_cls_acc");
  const char *last_tab = strrchr(header_end + 1, '\t');
  ck_assert_ptr_nonnull(last_tab);
  double accuracy = atof(last_tab + 1);
  ck_assert_msg(accuracy >= 0 && accuracy <= 1, "classifier accuracy %g", accuracy);
  free(log_confused);
  snprintf(path, sizeof path, "%s/samples/epoch0002.jpg", whole);
  ck_assert(exists(path));

  /* translate and grid go to DMIT through the checkpoint. */
  char in[1200], ref[1200], out[1200], out2[1200];
  snprintf(in, sizeof in, "%s/in.jpg", whole);
  snprintf(ref, sizeof ref, "%s/ref.jpg", whole);
  uint8_t px[16 * 16 * 3];
  ut_synth_render(&(ut_synth_cfg){ .classes = 2, .views = 4, .size = 16, .seed = 2 }, 1, 3, px);
  ck_assert_ut_ok(ut_jpeg_write(in, px, 16, 16, 3, 95));
  ut_synth_render(&(ut_synth_cfg){ .classes = 2, .views = 4, .size = 16, .seed = 2, .domain = UT_SYNTH_NIGHT }, 0, 1, px);
  ck_assert_ut_ok(ut_jpeg_write(ref, px, 16, 16, 3, 95));
  snprintf(out, sizeof out, "%s/out.jpg", whole);
  snprintf(out2, sizeof out2, "%s/out2.jpg", whole);
  for (int k = 0; k < 2; k++) {
    snprintf(args, sizeof args, "translate %s --to dusk %s --samples 3 --seed 5 -o %s --device %s", whole, in,
             k ? out2 : out, device);
    r = cli_run(args);
    ck_assert_msg(r.status == 0 && exists(k ? out2 : out), "translate failed:\n%s\n%s", r.out, r.err);
    cli_result_free(&r);
  }
  size_t n1 = 0, n2 = 0;
  char *b1 = cli_slurp(out, &n1), *b2 = cli_slurp(out2, &n2);
  ck_assert_msg(n1 > 0 && n1 == n2 && !memcmp(b1, b2, n1), "one seed gave two different translations");
  free(b1);
  free(b2);
  ut_image im = load(out);
  ck_assert_int_eq(im.width, 3 * 16 + 4 * 2); /* 3 tiles with a 2-pixel border around each */
  ut_image_free(&im);
  snprintf(args, sizeof args, "translate %s --to 1 %s --style-from %s -o %s --device %s", whole, in, ref, out, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "translate --style-from failed:\n%s\n%s", r.out, r.err);
  cli_result_free(&r);
  snprintf(args, sizeof args, "translate %s --to sketch %s -o %s --device %s", whole, in, out, device);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "day,night,dusk, not 'sketch'");
  cli_result_free(&r);
  snprintf(out, sizeof out, "%s/grid-cli.jpg", whole);
  snprintf(args, sizeof args, "grid %s --images %s %s --styles 2 -o %s --device %s", whole, in, ref, out, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0 && exists(out), "grid failed:\n%s\n%s", r.out, r.err);
  cli_result_free(&r);
  im = load(out);
  ck_assert_int_eq(im.width, 7 * 16 + 8 * 2); /* the input, then 3 domains x 2 styles */
  ck_assert_int_eq(im.height, 2 * 16 + 3 * 2);
  ut_image_free(&im);

  /* eval writes its report, every part measured on the paired rendered set. */
  snprintf(args, sizeof args, "eval %s --data %s --max-images 8 --judge-epochs 1 --probe-folds 2 --device %s", whole,
           data, device);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "eval failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "domain judge");
  cli_result_free(&r);
  snprintf(path, sizeof path, "%s/eval.json", whole);
  char *report = cli_slurp(path, NULL);
  ck_assert_ptr_nonnull(report);
  assert_contains(report, "\"judged_target\"");
  assert_contains(report, "\"domain_from_content\"");
  /* The probes see every image's code (2 classes x 4 views x 3 domains), each scored once. */
  assert_contains(report, "\"n_scored\": 24");
  assert_contains(report, "\"folds\": 2");
  assert_contains(report, "\"content_discriminator\"");
  assert_contains(report, "\"variance_share_of_means\"");
  ck_assert_msg(strstr(report, "\"l1\": null") == NULL, "content kept was not measured:\n%s", report);
  free(report);
  /* A judge that cannot be scored, or scores below the bar, judges nothing. */
  snprintf(args, sizeof args, "eval %s --data %s --max-images 8 --judge-images 6 --device %s", whole, data, device);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "the domain judge cannot be scored: its 6 real images leave none held out");
  cli_result_free(&r);
  snprintf(args, sizeof args, "eval %s --data %s --device %s", whole, two, device);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "has 2 domains");
  cli_result_free(&r);

  /* A data set whose domains disagree with the run's is refused with both, and the run is
   * left as it was. */
  snprintf(path, sizeof path, "%s/checkpoint.safetensors", parts);
  size_t before_len = 0, after_len = 0;
  char *before = cli_slurp(path, &before_len);
  snprintf(args, sizeof args, "train dmit --data %s --out %s --device %s --epochs 3 --resume", two, parts, device);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "has 2 domains (day,night); the DMIT model has 3 (day,night,dusk)");
  cli_result_free(&r);
  char *after = cli_slurp(path, &after_len);
  ck_assert(before_len == after_len && !memcmp(before, after, before_len));
  free(before);
  free(after);
}
END_TEST

START_TEST(bad_input_writes_nothing) {
  make_data();
  char run[1024], one[1024], args[4096];
  snprintf(run, sizeof run, "%s", test_tmp_path("dmit-never"));
  snprintf(one, sizeof one, "%s", test_tmp_path("dmit-one-domain.dat"));
  ck_assert_ut_ok(ut_synth_write_dataset(&(ut_synth_cfg){ .classes = 2, .views = 4, .size = 16 }, one, 1, NULL, NULL));
  cli_result r = train(one, run, "");
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "no domains");
  cli_result_free(&r);
  ck_assert(!exists(run));
  /* Images smaller than the model. */
  snprintf(args, sizeof args, "train dmit --data %s --out %s --device %s --preset small --size 32", data, run, device);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "at least 32 pixels");
  cli_result_free(&r);
  ck_assert(!exists(run));
  /* A configuration the networks cannot take, an unknown field, and fields the data decides. */
  r = train(data, run, "--set image_dis_blocks=5");
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "image_dis_blocks 5");
  cli_result_free(&r);
  r = train(data, run, "--set width=3");
  ck_assert_int_eq(r.status, 2);
  assert_contains(r.err, "width");
  cli_result_free(&r);
  r = train(data, run, "--set domains=a,b");
  ck_assert_int_eq(r.status, 2);
  assert_contains(r.err, "come from the data set");
  cli_result_free(&r);
  ck_assert(!exists(run));
  /* Resuming a run that does not exist. */
  snprintf(args, sizeof args, "train dmit --data %s --out %s --device %s --resume", data, run, device);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "cannot resume");
  cli_result_free(&r);
  ck_assert(!exists(run));
  r = cli_run("train --help");
  assert_contains(r.out, "dmit");
  cli_result_free(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("dmit_train");
  TCase *tc = tcase_create("dmit_train");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, bad_input_writes_nothing);
  tcase_add_test(tc, train_resume_translate);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
