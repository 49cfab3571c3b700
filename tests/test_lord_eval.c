/* LORD's evaluation end to end on a tiny rendered set: `untangle train lord` then `untangle
 * eval` through the program as a user runs them, the report's JSON, its numbers' ranges, the
 * same report twice in-process, a stage-1 evaluation (no one-shot transfer), a data set without
 * content labels (no true translations), and the refusal of a different data set. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_runner.h"
#include "lord_eval.h"
#include "lord_train.h"
#include "untangle_data.h"

/* `classes` objects x 8 poses at 16x16: a set LORD trains on in seconds, one class held out. */
static const char *tiny_synth(const char *name, int classes) {
  const char *path = test_tmp_path(name);
  ut_synth_cfg sc = { .classes = classes, .views = 8, .size = 16, .seed = 3 };
  ck_assert_ut_ok(ut_synth_write_dataset(&sc, path, 1, NULL, NULL));
  return path;
}

static lord_eval_cfg quick_cfg(void) {
  lord_eval_cfg c = lord_eval_default_cfg();
  c.pairs = 48;
  c.probe_samples = 24;
  c.recon_samples = 16;
  c.classifier_images = 32;
  c.classifier_epochs = 1;
  return c;
}

static void check_share(double v, const char *what) {
  ck_assert_msg(v >= 0 && v <= 1, "%s = %g is not a share", what, v);
}

START_TEST(train_then_eval) {
  char data[512], run[512], args[2048];
  snprintf(data, sizeof data, "%s", tiny_synth("eval-synth.dat", 5));
  snprintf(run, sizeof run, "%s", test_tmp_path("eval-run"));
  snprintf(args, sizeof args,
           "train lord --data %s --out %s --preset small --batch 8 --epochs 1 --test-classes 1 --device %s", data,
           run, test_device_select());
  cli_result r = cli_run(args);
  ck_assert_msg(r.status == 0, "train failed:\n%s\n%s", r.out, r.err);
  cli_result_free(&r);

  snprintf(args, sizeof args, "eval %s --data %s --pairs 40 --probe-samples 24 --judge-epochs 1 --device %s", run, data,
           test_device_select());
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "eval failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "held-out classes (one-shot)");
  assert_contains(r.out, "judged as the target class");
  cli_result_free(&r);

  char path[600];
  snprintf(path, sizeof path, "%s/eval.json", run);
  json_error_t err;
  json_t *root = json_load_file(path, 0, &err);
  ck_assert_msg(root != NULL, "%s: %s", path, err.text);
  ck_assert_int_eq(json_integer_value(json_object_get(root, "stage")), 2);
  json_t *unseen = json_object_get(json_object_get(root, "content_transfer"), "unseen_classes");
  ck_assert_int_eq(json_integer_value(json_object_get(unseen, "pairs")), 40);
  check_share(json_real_value(json_object_get(unseen, "l1")), "unseen l1");
  json_t *probe = json_object_get(json_object_get(json_object_get(root, "probes"), "encoders"), "class_from_content");
  check_share(json_real_value(json_object_get(probe, "mlp")), "class-from-content mlp");
  check_share(json_real_value(json_object_get(probe, "chance")), "chance");
  json_t *judge = json_object_get(root, "class_transfer");
  ck_assert_int_eq(json_integer_value(json_object_get(judge, "translations")), 40);
  check_share(json_real_value(json_object_get(judge, "judged_target_class")), "judged target");
  json_decref(root);

  /* In-process: the same report twice, and every measure present. */
  ut_runtime *rt = test_runtime();
  int stage = 0;
  lord_model *m = lord_open_run(rt, run, 2, &stage);
  ck_assert_msg(m != NULL, "%s", ut_last_error());
  ck_assert_int_eq(stage, 2);
  ut_dataset *ds = ut_dataset_open(data);
  ck_assert_ptr_nonnull(ds);
  lord_eval_cfg cfg = quick_cfg();
  lord_eval_report a, b;
  ck_assert_ut_ok(lord_evaluate(rt, m, stage, ds, 1, 0, &cfg, &a));
  ck_assert_ut_ok(lord_evaluate(rt, m, stage, ds, 1, 0, &cfg, &b));
  a.seconds = b.seconds = 0;
  ck_assert_msg(memcmp(&a, &b, sizeof a) == 0, "two evaluations of one run differ");
  ck_assert_int_eq(a.n_test_classes, 1);
  ck_assert_int_eq(a.n_unseen, 8);
  ck_assert_int_eq(a.transfer_unseen.pairs, 48);
  ck_assert_int_eq(a.transfer_seen.pairs, 48);
  ck_assert_int_eq(a.recon_train.pairs, 16);
  ck_assert_int_eq(a.recon_unseen.pairs, 8);
  ck_assert(a.class_from_content.measured && a.content_from_class.measured);
  ck_assert(a.class_from_content_embedded.measured && a.content_from_class_embedded.measured);
  ck_assert_int_eq(a.judged, 48);
  ck_assert_double_eq_tol(a.judge_chance, 0.25, 1e-12);
  check_share(a.judged_target + a.judged_content_class, "target + content shares");
  ck_assert(isnan(a.transfer_unseen.vgg));

  /* Measured as a stage-1 run (embeddings): held-out classes have no codes to transfer. */
  lord_eval_report one;
  ck_assert_ut_ok(lord_evaluate(rt, m, 1, ds, 1, 0, &cfg, &one));
  ck_assert_int_eq(one.transfer_unseen.pairs, 0);
  assert_contains(one.why_no_transfer, "stage-2 encoders");
  ck_assert_int_eq(one.transfer_seen.pairs, 48);

  /* The same images without content labels: no true translations, no content probe. */
  const char *unlabelled = test_tmp_path("eval-unlabelled.dat");
  ut_dataset_writer *w = ut_dataset_writer_open(
      unlabelled, &(ut_dataset_desc){ .height = 16, .width = 16, .channels = 3, .n_classes = 5 });
  ck_assert_ptr_nonnull(w);
  for (int32_t i = 0; i < ut_dataset_count(ds); i++)
    ck_assert_ut_ok(ut_dataset_writer_add(w, ut_dataset_image(ds, i), ut_dataset_class(ds, i), -1));
  ck_assert_ut_ok(ut_dataset_writer_finish(w));
  ut_dataset *bare = ut_dataset_open(unlabelled);
  ck_assert_ptr_nonnull(bare);
  ck_assert_ut_ok(lord_evaluate(rt, m, stage, bare, 1, 0, &cfg, &one));
  ck_assert_int_eq(one.transfer_unseen.pairs + one.transfer_seen.pairs, 0);
  assert_contains(one.why_no_transfer, "no content labels");
  ck_assert(one.class_from_content.measured && !one.content_from_class.measured);
  ck_assert_int_eq(one.judged, 48);
  ut_dataset_close(bare);

  /* Another data set: refused by name, nothing measured. */
  ut_dataset *other = ut_dataset_open(tiny_synth("eval-other.dat", 6));
  ck_assert_ptr_nonnull(other);
  ck_assert_int_eq(lord_evaluate(rt, m, stage, other, 1, 0, &cfg, &a), UT_ERR_MISMATCH);
  assert_contains(ut_last_error(), "eval-other.dat");
  ut_dataset_close(other);
  ut_dataset_close(ds);
  lord_free(m);

  /* A run folder that does not exist: named in the error, exit status 1. */
  r = cli_run("eval /nonexistent-run --data /nonexistent.dat --device cpu");
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "/nonexistent-run");
  cli_result_free(&r);
}
END_TEST

START_TEST(usage_errors) {
  cli_result r = cli_run("eval");
  ck_assert_int_eq(r.status, 2);
  assert_contains(r.err, "run folder");
  cli_result_free(&r);
  r = cli_run("eval somewhere");
  ck_assert_int_eq(r.status, 2);
  assert_contains(r.err, "--data");
  cli_result_free(&r);
  r = cli_run("eval somewhere --data x --pairs 0");
  ck_assert_int_eq(r.status, 2);
  assert_contains(r.err, "--pairs");
  cli_result_free(&r);
  r = cli_run("help eval");
  ck_assert_int_eq(r.status, 0);
  assert_contains(r.out, "class transfer");
  cli_result_free(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("lord_eval");
  TCase *t = tcase_create("lord_eval");
  tcase_set_timeout(t, 900);
  tcase_add_test(t, usage_errors);
  tcase_add_test(t, train_then_eval);
  suite_add_tcase(s, t);
  return test_run_suite(s);
}
