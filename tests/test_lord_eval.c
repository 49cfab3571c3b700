/* LORD's evaluation: content-transfer pairs and their truths on a tiny rendered set, checked
 * against the renderer; the baselines and scores on a hand-made set whose values are known; the
 * judge's accuracy guard; then end to end on a tiny rendered set: `untangle train lord` and
 * `untangle eval` through the program as a user runs them, the report's JSON fields, the same
 * report twice in-process, a stage-1 evaluation (no one-shot transfer), a data set without
 * content labels (no true translations), and the refusal of a different data set. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_runner.h"
#include "lord_eval.h"
#include "lord_eval_judge.h"
#include "lord_eval_pairs.h"
#include "lord_train.h"
#include "untangle_data.h"

#define VIEWS 8
#define SIDE 16

/* `classes` objects x 8 poses at 16x16: a set LORD trains on in seconds. */
static const char *tiny_synth(const char *name, int classes) {
  const char *path = test_tmp_path(name);
  ut_synth_cfg sc = { .classes = classes, .views = VIEWS, .size = SIDE, .seed = 3 };
  ck_assert_ut_ok(ut_synth_write_dataset(&sc, path, 1, NULL, NULL));
  return path;
}

static lord_eval_cfg quick_cfg(void) {
  lord_eval_cfg c = lord_eval_default_cfg();
  c.pairs = 48;
  c.probe_samples = 32; /* all 4 x 8 training images: balanced classes */
  c.recon_samples = 16;
  c.classifier_images = 40;
  c.classifier_epochs = 1;
  return c;
}

static void check_share(double v, const char *what) {
  ck_assert_msg(v >= 0 && v <= 1, "%s = %g is not a share", what, v);
}

/* Every pair's truth is the class source's object in the content source's pose, re-rendered
 * here byte for byte; the class source is never the truth nor in its pose; masks mark exactly
 * the pixels that are not plain background. */
START_TEST(pairs_on_rendered_set) {
  char path[512];
  snprintf(path, sizeof path, "%s", tiny_synth("eval-pairs.dat", 5));
  ut_dataset *ds = ut_dataset_open(path);
  ck_assert_ptr_nonnull(ds);
  int32_t all[5 * VIEWS], first4[4 * VIEWS];
  for (int32_t i = 0; i < 5 * VIEWS; i++) all[i] = i;
  for (int32_t i = 0; i < 4 * VIEWS; i++) first4[i] = i;
  enum { N = 300 };
  lord_eval_pair pairs[N], again[N];
  int64_t drawn = 0, drawn_again = 0;
  ck_assert_ut_ok(lord_eval_draw_pairs(ds, first4, 4 * VIEWS, all, 5 * VIEWS, N, 9, pairs, &drawn));
  ck_assert_int_eq(drawn, N);
  ck_assert_ut_ok(lord_eval_draw_pairs(ds, first4, 4 * VIEWS, all, 5 * VIEWS, N, 9, again, &drawn_again));
  ck_assert_msg(drawn_again == N && memcmp(pairs, again, sizeof pairs) == 0, "the same seed drew other pairs");

  lord_eval_refs *refs = lord_eval_refs_new(ds, all, 5 * VIEWS);
  ck_assert_ptr_nonnull(refs);
  ck_assert_ptr_null(lord_eval_refs_why_no_mask(refs));
  ut_synth_cfg sc = { .classes = 5, .views = VIEWS, .size = SIDE, .seed = 3 };
  uint8_t rendered[SIDE * SIDE * 3], mask[SIDE * SIDE];
  int class_sources_seen[5] = { 0 };
  for (int i = 0; i < N; i++) {
    const lord_eval_pair *p = &pairs[i];
    /* The file is class-major: image = class * views + view. */
    int cls = p->class_source / VIEWS, pose = p->content_source % VIEWS;
    ck_assert_int_eq(p->truth, cls * VIEWS + pose);
    ck_assert_int_ne(cls, p->content_source / VIEWS);
    ck_assert_int_ne(p->class_source, p->truth);
    ck_assert_int_ne(p->class_source % VIEWS, pose);
    ck_assert_int_lt(cls, 4);
    class_sources_seen[cls] = 1;
    ck_assert_ut_ok(ut_synth_render(&sc, cls, pose, rendered));
    ck_assert_msg(memcmp(ut_dataset_image(ds, p->truth), rendered, sizeof rendered) == 0,
                  "pair %d: truth %d is not object %d in view %d", i, p->truth, cls, pose);
    ck_assert_ut_ok(lord_eval_refs_mask(refs, p->truth, mask));
    for (int q = 0; q < SIDE * SIDE; q++) {
      int background = rendered[3 * q] == 200 && rendered[3 * q + 1] == 200 && rendered[3 * q + 2] == 200;
      if (!mask[q]) ck_assert_msg(background, "pair %d: pixel %d outside the mask is not background", i, q);
    }
  }
  for (int c = 0; c < 4; c++) ck_assert_msg(class_sources_seen[c], "class %d never a class source", c);
  lord_eval_refs_free(refs);
  ut_dataset_close(ds);
}
END_TEST

/* 2 classes x 2 poses of 2x2 gray pixels: pixel 0 is background (10), the other three the
 * object, of one level per image. */
static const uint8_t levels[2][2] = { { 0, 40 }, { 80, 200 } }; /* [class][pose] */

static const char *known_set(void) {
  const char *path = test_tmp_path("eval-known.dat");
  ut_dataset_writer *w = ut_dataset_writer_open(
      path, &(ut_dataset_desc){ .height = 2, .width = 2, .channels = 1, .n_classes = 2, .n_contents = 2 });
  ck_assert_ptr_nonnull(w);
  for (int c = 0; c < 2; c++)
    for (int v = 0; v < 2; v++) {
      uint8_t img[4] = { 10, levels[c][v], levels[c][v], levels[c][v] };
      ck_assert_ut_ok(ut_dataset_writer_add(w, img, c, v));
    }
  ck_assert_ut_ok(ut_dataset_writer_finish(w));
  return path;
}

static void check_score(const lord_eval_refs *refs, int baseline, const lord_eval_pair *p, const uint8_t *mask,
                        const float *truth, double l1, double fg, double colour) {
  float guess[4];
  lord_eval_score s = { 0 };
  double got_l1, got_fg, got_colour;
  lord_eval_refs_baseline(refs, baseline, p, mask, guess);
  lord_eval_score_add(&s, guess, truth, mask, 1, 4);
  lord_eval_score_means(&s, &got_l1, &got_fg, &got_colour);
  const char *name = lord_eval_baseline_name(baseline);
  ck_assert_msg(fabs(got_l1 - l1 / 255) < 1e-6, "%s: L1 %g, expected %g", name, got_l1 * 255, l1);
  ck_assert_msg(fabs(got_fg - fg / 255) < 1e-6, "%s: foreground L1 %g, expected %g", name, got_fg * 255, fg);
  ck_assert_msg(fabs(got_colour - colour / 255) < 1e-6, "%s: colour %g, expected %g", name, got_colour * 255, colour);
}

START_TEST(baselines_known_values) {
  ut_dataset *ds = ut_dataset_open(known_set());
  ck_assert_ptr_nonnull(ds);
  int32_t train[4] = { 0, 1, 2, 3 };
  lord_eval_refs *refs = lord_eval_refs_new(ds, train, 4);
  ck_assert_ptr_nonnull(refs);
  /* Not a rendered set: no masks, and the reason names the file. */
  ck_assert_ptr_nonnull(lord_eval_refs_why_no_mask(refs));
  assert_contains(lord_eval_refs_why_no_mask(refs), "eval-known.dat");

  /* Content of (class 0, pose 1), class of (class 1, pose 0): the truth is (class 1, pose 1),
   * object level 200. Pose-1 mean 120, class-1 mean 140, the content source 40, background 10. */
  lord_eval_pair p = { .content_source = 1, .class_source = 2, .truth = 3 };
  const uint8_t mask[4] = { 0, 1, 1, 1 };
  float truth[4];
  ut_dataset_image_chw(ds, p.truth, truth);
  check_score(refs, LORD_BASELINE_CLASS_AGNOSTIC, &p, mask, truth, 3 * 80 / 4.0, 80, 80);
  check_score(refs, LORD_BASELINE_CONTENT_AGNOSTIC, &p, mask, truth, 3 * 60 / 4.0, 60, 60);
  check_score(refs, LORD_BASELINE_CONTENT_COPY, &p, mask, truth, 3 * 160 / 4.0, 160, 160);
  check_score(refs, LORD_BASELINE_BACKGROUND, &p, mask, truth, 3 * 190 / 4.0, 190, 190);

  /* The colour error sees the object's mean colour only: the object's pixels shuffled keep it. */
  const float object[4] = { 0.5f, 0.2f, 0.4f, 0.6f }, shuffled[4] = { 0.5f, 0.6f, 0.4f, 0.2f };
  lord_eval_score s = { 0 };
  double l1, fg, colour;
  lord_eval_score_add(&s, shuffled, object, mask, 1, 4);
  lord_eval_score_add(&s, object, object, NULL, 1, 4); /* no mask: counts for L1 only */
  lord_eval_score_means(&s, &l1, &fg, &colour);
  ck_assert_int_eq(s.pairs, 2);
  ck_assert_int_eq(s.masked_pairs, 1);
  ck_assert_double_eq_tol(l1, 0.8 / 4 / 2, 1e-6);
  ck_assert_double_eq_tol(fg, 0.8 / 3, 1e-6);
  ck_assert_double_eq_tol(colour, 0, 1e-6);

  /* Pairs on this set: always the other class in the other pose, the truth its own. */
  lord_eval_pair pairs[16];
  int64_t drawn = 0;
  ck_assert_ut_ok(lord_eval_draw_pairs(ds, train, 4, train, 4, 16, 1, pairs, &drawn));
  ck_assert_int_eq(drawn, 16);
  for (int i = 0; i < 16; i++) {
    ck_assert_int_eq(pairs[i].class_source, 3 - pairs[i].content_source);
    ck_assert_int_eq(pairs[i].truth, (pairs[i].class_source / 2) * 2 + pairs[i].content_source % 2);
  }
  lord_eval_refs_free(refs);
  ut_dataset_close(ds);
}
END_TEST

/* The judge passes on a tiny rendered set, and refuses, by name, a set whose classes are all the
 * same object (it cannot beat chance there). */
START_TEST(judge_accuracy_guard) {
  char path[512];
  snprintf(path, sizeof path, "%s", tiny_synth("eval-judge.dat", 5));
  ut_dataset *ds = ut_dataset_open(path);
  ck_assert_ptr_nonnull(ds);
  lord_eval_judge_cfg jc = { .max_images = 1000, .epochs = 1, .min_accuracy = 0.9, .seed = 4 };
  image_classifier *judge = NULL;
  lord_eval_judge_report jr;
  ck_assert_ut_ok(lord_eval_judge_train(test_runtime(), ds, &jc, &judge, &jr));
  ck_assert_ptr_nonnull(judge);
  ck_assert_int_eq(jr.n_heldout, 5); /* one of each class's 8 images */
  ck_assert_int_eq(jr.n_train, 35);
  ck_assert_msg(jr.heldout_accuracy >= 0.9, "held-out accuracy %.3f", jr.heldout_accuracy);
  image_classifier_free(judge);

  const char *same = test_tmp_path("eval-same-object.dat");
  ut_dataset_writer *w = ut_dataset_writer_open(
      same, &(ut_dataset_desc){ .height = SIDE, .width = SIDE, .channels = 3, .n_classes = 5, .n_contents = VIEWS });
  ck_assert_ptr_nonnull(w);
  for (int c = 0; c < 5; c++)
    for (int v = 0; v < VIEWS; v++) ck_assert_ut_ok(ut_dataset_writer_add(w, ut_dataset_image(ds, v), c, v));
  ck_assert_ut_ok(ut_dataset_writer_finish(w));
  ut_dataset *alike = ut_dataset_open(same);
  ck_assert_ptr_nonnull(alike);
  ck_assert_int_eq(lord_eval_judge_train(test_runtime(), alike, &jc, &judge, &jr), UT_ERR_STATE);
  ck_assert_ptr_null(judge);
  ck_assert_msg(jr.heldout_accuracy < 0.9, "held-out accuracy %.3f on identical classes", jr.heldout_accuracy);
  assert_contains(ut_last_error(), "eval-same-object.dat");
  assert_contains(ut_last_error(), "class judge");
  ut_dataset_close(alike);
  ut_dataset_close(ds);
}
END_TEST

/* A stage's figures on the pairs of a transfer object: numbers in range. */
static void check_errors(json_t *o, const char *what) {
  ck_assert_msg(json_is_object(o), "%s is missing", what);
  check_share(json_real_value(json_object_get(o, "l1")), what);
  check_share(json_real_value(json_object_get(o, "foreground_l1")), what);
  check_share(json_real_value(json_object_get(o, "foreground_colour")), what);
}

static void check_json(const char *path) {
  json_error_t err;
  json_t *root = json_load_file(path, 0, &err);
  ck_assert_msg(root != NULL, "%s: %s", path, err.text);
  ck_assert_int_eq(json_integer_value(json_object_get(root, "stage")), 2);
  json_t *judge = json_object_get(root, "judge");
  ck_assert_msg(json_real_value(json_object_get(judge, "heldout_accuracy")) >= 0.9, "judge below 0.9 in the report");
  json_t *transfer = json_object_get(root, "content_transfer");
  json_t *unseen = json_object_get(transfer, "unseen_classes"), *seen = json_object_get(transfer, "seen_classes");
  ck_assert_int_eq(json_integer_value(json_object_get(unseen, "pairs")), 40);
  check_errors(json_object_get(unseen, "stage2"), "unseen stage2");
  ck_assert_ptr_null(json_object_get(unseen, "stage1")); /* held-out classes have no embeddings */
  check_errors(json_object_get(seen, "stage1"), "seen stage1");
  check_errors(json_object_get(seen, "stage2"), "seen stage2");
  for (int b = 0; b < LORD_BASELINE_COUNT; b++) {
    check_errors(json_object_get(json_object_get(unseen, "baselines"), lord_eval_baseline_name(b)), "unseen baseline");
    check_errors(json_object_get(json_object_get(seen, "baselines"), lord_eval_baseline_name(b)), "seen baseline");
  }
  json_t *probes = json_object_get(root, "probes");
  json_t *p1 = json_object_get(probes, "stage1"), *p2 = json_object_get(probes, "stage2");
  ck_assert_str_eq(json_string_value(json_object_get(p1, "codes")), "embeddings");
  assert_contains(json_string_value(json_object_get(json_object_get(p1, "content_from_class"), "degenerate")),
                  "one class code per class");
  assert_contains(json_string_value(json_object_get(json_object_get(p1, "class_from_class"), "degenerate")),
                  "one class code per class");
  static const char *const names[] = { "class_from_content", "content_from_content", "content_from_class",
                                       "class_from_class" };
  for (int i = 0; i < 4; i++) {
    json_t *p = json_object_get(p2, names[i]);
    ck_assert_str_eq(json_string_value(json_object_get(p, "measures")), i % 2 ? "informativeness" : "leakage");
    ck_assert_str_eq(json_string_value(json_object_get(p, "best")), i % 2 ? "high" : "chance");
    check_share(json_real_value(json_object_get(p, "mlp")), names[i]);
  }
  check_share(json_real_value(json_object_get(json_object_get(p1, "content_from_content"), "mlp")), "stage-1 view");
  json_t *recon = json_object_get(root, "reconstruction");
  check_share(json_real_value(json_object_get(json_object_get(json_object_get(recon, "stage1"), "train_images"), "l1")),
              "stage-1 reconstruction");
  json_t *ct = json_object_get(root, "class_transfer");
  ck_assert_int_eq(json_integer_value(json_object_get(ct, "translations")), 40);
  /* --baseline with the run itself: its figures are the stage-2 figures, bit for bit. */
  static const char *const fields[] = { "l1", "foreground_l1", "foreground_colour" };
  for (int i = 0; i < 3; i++) {
    json_t *pair_sets[2] = { unseen, seen };
    for (int k = 0; k < 2; k++) {
      json_t *own = json_object_get(json_object_get(pair_sets[k], "stage2"), fields[i]);
      json_t *other = json_object_get(json_object_get(pair_sets[k], "baseline_run"), fields[i]);
      ck_assert_msg(json_is_real(other) && json_real_value(other) == json_real_value(own),
                    "baseline run's %s differs from the same run's stage 2", fields[i]);
    }
  }
  ck_assert(json_real_value(json_object_get(json_object_get(ct, "baseline_run"), "judged_target_class")) ==
            json_real_value(json_object_get(json_object_get(ct, "stage2"), "judged_target_class")));
  ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(root, "baseline_run"), "stage")), 2);
  check_share(json_real_value(json_object_get(ct, "judge_heldout_accuracy")), "judge accuracy");
  check_share(json_real_value(json_object_get(json_object_get(ct, "stage1"), "judged_target_class")), "stage-1 judged");
  check_share(json_real_value(json_object_get(json_object_get(ct, "stage2"), "judged_target_class")), "stage-2 judged");
  json_decref(root);
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

  /* The run beside itself as --baseline: the same model on the same pairs must score the same. */
  snprintf(args, sizeof args,
           "eval %s --data %s --pairs 40 --probe-samples 24 --judge-epochs 1 --baseline %s/ --device %s", run, data,
           run, test_device_select());
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "eval failed:\n%s\n%s", r.out, r.err);
  assert_contains(r.out, "held-out classes, one-shot (40 pairs)");
  /* The baseline run's column and judged line, named after its folder (at most 10 characters). */
  const char *base = strrchr(run, '/') ? strrchr(run, '/') + 1 : run;
  char header[64];
  snprintf(header, sizeof header, " %10.10s  class-agn", base);
  assert_contains(r.out, header);
  snprintf(header, sizeof header, "%.10s (stage 2)  judged as the target class", base);
  assert_contains(r.out, header);
  assert_contains(r.out, "class-agn");
  assert_contains(r.out, "foreground L1");
  assert_contains(r.out, "one code per class");
  assert_contains(r.out, "judged as the target class");
  cli_result_free(&r);
  char path[600];
  snprintf(path, sizeof path, "%s/eval.json", run);
  check_json(path);

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
  const lord_eval_stage_report *s1 = &a.stages[0], *s2 = &a.stages[1];
  ck_assert(s1->measured && s2->measured);
  ck_assert_int_eq(s2->transfer_unseen.pairs, 48);
  ck_assert_int_eq(s1->transfer_unseen.pairs, 0);
  ck_assert_int_eq(s1->transfer_seen.pairs, 48);
  ck_assert_int_eq(s2->transfer_seen.pairs, 48);
  for (int k = 0; k < LORD_BASELINE_COUNT; k++) {
    ck_assert_int_eq(a.baseline_seen[k].pairs, 48);
    ck_assert_int_eq(a.baseline_unseen[k].pairs, 48);
    check_share(a.baseline_seen[k].foreground_l1, "baseline foreground L1");
  }
  ck_assert_int_eq(s2->recon_train.pairs, 16);
  ck_assert_int_eq(s2->recon_unseen.pairs, 8);
  ck_assert_int_eq(s1->recon_unseen.pairs, 0);
  ck_assert(s2->class_from_content.measured && s2->content_from_content.measured && s2->content_from_class.measured &&
            s2->class_from_class.measured);
  ck_assert(s1->class_from_content.measured && s1->content_from_content.measured);
  ck_assert(!s1->content_from_class.measured && s1->content_from_class.degenerate && s1->class_from_class.degenerate);
  /* Stratified probes on balanced classes: chance is exactly one class's share. */
  ck_assert_double_eq_tol(s2->class_from_content.result.chance, 0.25, 1e-12);
  ck_assert_int_eq(a.judged, 48);
  ck_assert_double_eq_tol(a.judge_chance, 0.25, 1e-12);
  ck_assert(a.judge_heldout_accuracy >= 0.9);
  check_share(s2->judged_target + s2->judged_content_class, "target + content shares");
  ck_assert(isnan(s2->transfer_unseen.vgg));

  /* A baseline run is scored with its own weights: the run again with one generator tensor
   * scaled scores differently on the same pairs, while the evaluated run's figures stay. */
  int stage2 = 0;
  lord_model *changed = lord_open_run(rt, run, 2, &stage2);
  ck_assert_msg(changed != NULL, "%s", ut_last_error());
  ut_store *cs = lord_store(changed);
  ut_store_tensor *t = NULL;
  for (int i = 0; i < ut_store_count(cs) && !t; i++)
    if (!strncmp(ut_store_tensor_name(ut_store_at(cs, i)), "lord.gen.", 9)) t = ut_store_at(cs, i);
  ck_assert_ptr_nonnull(t);
  int64_t n = 1;
  for (int d = 0; d < ut_store_tensor_shape(t).rank; d++) n *= ut_store_tensor_shape(t).d[d];
  float *v = malloc((size_t)n * sizeof *v);
  ck_assert_ut_ok(ut_store_tensor_read(cs, t, v));
  for (int64_t i = 0; i < n; i++) v[i] = v[i] * 3.0f + 0.5f;
  ck_assert_ut_ok(ut_store_tensor_write(cs, t, v));
  free(v);
  lord_eval_cfg beside = cfg;
  beside.baseline = changed;
  beside.baseline_stage = stage2;
  beside.baseline_test_classes = 1;
  lord_eval_report c;
  ck_assert_ut_ok(lord_evaluate(rt, m, stage, ds, 1, 0, &beside, &c));
  ck_assert(c.baseline_run.measured && c.baseline_run.transfer_seen.pairs == 48);
  ck_assert_double_eq(c.stages[1].transfer_seen.l1, a.stages[1].transfer_seen.l1);
  ck_assert_msg(c.baseline_run.transfer_seen.l1 != c.stages[1].transfer_seen.l1,
                "a changed baseline run scored exactly as the evaluated run");
  lord_free(changed);

  /* A baseline run with another split is refused before anything is measured. */
  lord_eval_cfg mixed = cfg;
  mixed.baseline = m;
  mixed.baseline_stage = 2;
  mixed.baseline_test_classes = 2;
  ck_assert_int_eq(lord_evaluate(rt, m, stage, ds, 1, 0, &mixed, &a), UT_ERR_MISMATCH);
  assert_contains(ut_last_error(), "holds out other classes");

  /* Measured as a stage-1 run (embeddings): held-out classes have no codes to transfer. */
  lord_eval_report one;
  ck_assert_ut_ok(lord_evaluate(rt, m, 1, ds, 1, 0, &cfg, &one));
  ck_assert(one.stages[0].measured && !one.stages[1].measured);
  ck_assert_int_eq(one.baseline_unseen[0].pairs, 0);
  assert_contains(one.why_no_transfer, "stage-2 encoders");
  ck_assert_int_eq(one.stages[0].transfer_seen.pairs, 48);

  /* The same images without content labels: no true translations, no content probe. */
  const char *unlabelled = test_tmp_path("eval-unlabelled.dat");
  ut_dataset_writer *w = ut_dataset_writer_open(
      unlabelled, &(ut_dataset_desc){ .height = SIDE, .width = SIDE, .channels = 3, .n_classes = 5 });
  ck_assert_ptr_nonnull(w);
  for (int32_t i = 0; i < ut_dataset_count(ds); i++)
    ck_assert_ut_ok(ut_dataset_writer_add(w, ut_dataset_image(ds, i), ut_dataset_class(ds, i), -1));
  ck_assert_ut_ok(ut_dataset_writer_finish(w));
  ut_dataset *bare = ut_dataset_open(unlabelled);
  ck_assert_ptr_nonnull(bare);
  ck_assert_ut_ok(lord_evaluate(rt, m, stage, bare, 1, 0, &cfg, &one));
  ck_assert_int_eq(one.stages[1].transfer_unseen.pairs + one.stages[1].transfer_seen.pairs, 0);
  assert_contains(one.why_no_transfer, "no content labels");
  ck_assert(one.stages[1].class_from_content.measured && !one.stages[1].content_from_class.measured);
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
  r = cli_run("eval somewhere --data x --judge-min-accuracy 1.5");
  ck_assert_int_eq(r.status, 2);
  assert_contains(r.err, "--judge-min-accuracy");
  cli_result_free(&r);
  r = cli_run("help eval");
  ck_assert_int_eq(r.status, 0);
  assert_contains(r.out, "class transfer");
  assert_contains(r.out, "baselines on the same pairs");
  cli_result_free(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("lord_eval");
  TCase *t = tcase_create("lord_eval");
  tcase_set_timeout(t, 900);
  tcase_add_test(t, usage_errors);
  tcase_add_test(t, pairs_on_rendered_set);
  tcase_add_test(t, baselines_known_values);
  tcase_add_test(t, judge_accuracy_guard);
  tcase_add_test(t, train_then_eval);
  suite_add_tcase(s, t);
  return test_run_suite(s);
}
