/* UNIT's evaluation: the colour-matched baseline against numbers worked out by hand, the JSON
 * report's shape (nulls for what was not measured, an unreliable judge flagged) and the printed
 * summary; then end to end on a tiny rendered day/night set with a 2-step-trained small UNIT:
 * every figure a finite share or error, the copy baseline equal to the L1 computed here, the same
 * report twice and again on the images in a frame (centre crop), and the same images without
 * content labels (unpaired: no true translations, the judges still run). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"
#include "unit_eval.h"
#include "unit_eval_internal.h"
#include "unit_train.h"

static void assert_contains(const char *text, const char *part) {
  ck_assert_msg(text && strstr(text, part), "expected '%s' in:\n%s", part, text ? text : "(null)");
}

/* Three channels of four pixels: a ramp (rescaled to the target's statistics), a flat channel
 * (moved to the target mean) and a 0/1 pattern whose stretch runs past [0, 1] (clamped). */
START_TEST(colour_match_known_numbers) {
  const float img[12] = { 0.1f, 0.3f, 0.5f, 0.7f, 0.2f, 0.2f, 0.2f, 0.2f, 0.0f, 1.0f, 0.0f, 1.0f };
  double mean[3], std[3];
  unit_eval_channel_stats(img, 3, 4, mean, std);
  ck_assert_double_eq_tol(mean[0], 0.4, 1e-7);
  ck_assert_double_eq_tol(std[0], sqrt(0.05), 1e-7);
  ck_assert_double_eq_tol(mean[1], 0.2, 1e-7);
  ck_assert_double_eq_tol(std[1], 0.0, 1e-7);
  ck_assert_double_eq_tol(mean[2], 0.5, 1e-12);
  ck_assert_double_eq_tol(std[2], 0.5, 1e-12);

  const double target_mean[3] = { 0.5, 0.8, 0.5 }, target_std[3] = { 0.1, 0.3, 1.0 };
  float out[12];
  unit_eval_colour_match(img, 3, 4, target_mean, target_std, out);
  /* (x - 0.4) / sqrt(0.05) * 0.1 + 0.5 */
  const double want[12] = { 0.5 - 0.3 / sqrt(0.05) * 0.1, 0.5 - 0.1 / sqrt(0.05) * 0.1, 0.5 + 0.1 / sqrt(0.05) * 0.1,
                            0.5 + 0.3 / sqrt(0.05) * 0.1, 0.8, 0.8, 0.8, 0.8, 0.0, 1.0, 0.0, 1.0 };
  for (int i = 0; i < 12; i++) ck_assert_msg(fabs(out[i] - want[i]) < 1e-6, "pixel %d: %g, not %g", i, out[i], want[i]);
  ck_assert_double_eq_tol(out[0], 0.365836, 1e-6);

  /* The matched ramp has exactly the target's statistics. */
  unit_eval_channel_stats(out, 3, 4, mean, std);
  ck_assert_double_eq_tol(mean[0], 0.5, 1e-6);
  ck_assert_double_eq_tol(std[0], 0.1, 1e-6);
  ck_assert_double_eq_tol(mean[1], 0.8, 1e-6);

  /* An image already at the target's statistics is left as it is. */
  float same[12];
  unit_eval_channel_stats(img, 3, 4, mean, std);
  std[1] = 1; /* the flat channel keeps its value either way */
  unit_eval_colour_match(img, 3, 4, mean, std, same);
  for (int i = 0; i < 12; i++) ck_assert_msg(fabs(same[i] - img[i]) < 1e-6, "pixel %d moved: %g", i, same[i]);

  /* L1 sums: |0.1-0| + |0.3-1| = 0.8. */
  const float a[2] = { 0.1f, 0.3f }, b[2] = { 0.0f, 1.0f };
  ck_assert_double_eq_tol(unit_eval_l1_sum(a, b, 2), 0.8, 1e-6);
}
END_TEST

/* A report as an evaluation of paired data would leave it, with an unreliable class judge. */
static unit_eval_report sample_report(void) {
  unit_eval_report r = { .paired = 1, .channels = 3, .n_classes = 4, .class_chance = 0.25, .judge_epochs = 2,
                         .seed = 7, .max_images = 16, .seconds = 1.5 };
  snprintf(r.domain_name[0], sizeof r.domain_name[0], "day");
  snprintf(r.domain_name[1], sizeof r.domain_name[1], "night");
  for (int d = 0; d < 2; d++) {
    r.domain_id[d] = d;
    r.n_train[d] = 24;
    r.n_test[d] = 8;
    for (int c = 0; c < 3; c++) {
      r.colour_mean[d][c] = 0.5 + 0.1 * d;
      r.colour_std[d][c] = 0.2;
    }
    r.dir[d] = (unit_eval_direction){ .from = d, .to = 1 - d, .n_images = 8, .n_paired = 8, .translation_l1 = 0.11,
                                      .copy_l1 = 0.2, .colour_matched_l1 = 0.15, .cycle_l1 = 0.05, .recon_l1 = 0.04,
                                      .judged_target_domain = 0.75, .copy_judged_target_domain = 0.125,
                                      .colour_matched_judged_target_domain = 0.5, .true_judged_target_domain = 0.875,
                                      .class_kept = 0.625, .copy_class_kept = 0.875, .colour_matched_class_kept = 0.75,
                                      .true_class_kept = 1.0 };
  }
  r.domain_judge = (unit_eval_judge){ .measured = 1, .classes = 2, .n_train = 44, .n_heldout = 4,
                                      .heldout_accuracy = 1.0, .reliable = 1 };
  r.class_judge = (unit_eval_judge){ .measured = 1, .classes = 4, .n_train = 44, .n_heldout = 4,
                                     .heldout_accuracy = 0.5, .reliable = 0 };
  snprintf(r.class_judge.note, sizeof r.class_judge.note, "unreliable: its held-out accuracy 0.500 is below 0.90");
  return r;
}

static double real_at(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  ck_assert_msg(json_is_real(v), "'%s' is not a number", key);
  return json_real_value(v);
}

static const char *const direction_keys[] = { "images", "paired_images", "translation_l1", "copy_l1",
                                              "colour_matched_l1", "cycle_l1", "reconstruction_l1",
                                              "judged_target_domain", "copy_judged_target_domain",
                                              "colour_matched_judged_target_domain", "true_image_judged_target_domain",
                                              "class_kept", "copy_class_kept", "colour_matched_class_kept",
                                              "true_image_class_kept" };

START_TEST(json_shape) {
  unit_eval_report r = sample_report();
  char *text = unit_eval_json(&r, "runs/u", "data/dn.dat", "cpu");
  ck_assert_ptr_nonnull(text);
  json_error_t err;
  json_t *root = json_loads(text, 0, &err);
  ck_assert_msg(root != NULL, "%s\n%s", err.text, text);
  ck_assert_str_eq(json_string_value(json_object_get(root, "model")), "unit");
  ck_assert_str_eq(json_string_value(json_object_get(root, "run")), "runs/u");
  ck_assert_str_eq(json_string_value(json_object_get(root, "data")), "data/dn.dat");
  ck_assert_str_eq(json_string_value(json_object_get(root, "device")), "cpu");
  ck_assert_int_eq(json_integer_value(json_object_get(root, "seed")), 7);
  ck_assert_str_eq(json_string_value(json_object_get(json_object_get(root, "domains"), "b")), "night");
  json_t *split = json_object_get(root, "split");
  ck_assert(json_is_true(json_object_get(split, "paired")));
  ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(split, "a"), "held_out_images")), 8);
  ck_assert_ptr_null(json_object_get(root, "translation_not_measured"));
  const char *dirs[2] = { "a_to_b", "b_to_a" };
  for (int d = 0; d < 2; d++) {
    json_t *o = json_object_get(root, dirs[d]);
    ck_assert_msg(json_is_object(o), "%s missing", dirs[d]);
    for (size_t k = 0; k < sizeof direction_keys / sizeof *direction_keys; k++)
      ck_assert_msg(json_object_get(o, direction_keys[k]) != NULL, "%s.%s missing", dirs[d], direction_keys[k]);
    ck_assert_double_eq_tol(real_at(o, "translation_l1"), 0.11, 1e-9);
    ck_assert_double_eq_tol(real_at(o, "colour_matched_judged_target_domain"), 0.5, 1e-9);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "paired_images")), 8);
  }
  json_t *dj = json_object_get(root, "domain_judge");
  ck_assert_double_eq_tol(real_at(dj, "heldout_accuracy"), 1.0, 1e-9);
  ck_assert(json_is_true(json_object_get(dj, "reliable")));
  ck_assert_ptr_null(json_object_get(dj, "warning"));
  json_t *cj = json_object_get(root, "class_judge");
  ck_assert(json_is_false(json_object_get(cj, "reliable")));
  assert_contains(json_string_value(json_object_get(cj, "warning")), "unreliable");
  ck_assert_double_eq_tol(real_at(cj, "chance"), 0.25, 1e-9);
  ck_assert_int_eq(json_array_size(json_object_get(json_object_get(json_object_get(root, "colour_statistics"), "b"), "mean")), 3);
  json_decref(root);
  free(text);

  /* Unpaired data and one class: translation errors null with the reason, no class judge. */
  r.paired = 0;
  snprintf(r.why_no_translation, sizeof r.why_no_translation, "the domains are not paired");
  for (int d = 0; d < 2; d++) {
    r.dir[d].n_paired = 0;
    r.dir[d].translation_l1 = r.dir[d].copy_l1 = r.dir[d].colour_matched_l1 = NAN;
    r.dir[d].class_kept = r.dir[d].copy_class_kept = r.dir[d].colour_matched_class_kept = NAN;
    r.dir[d].true_judged_target_domain = r.dir[d].true_class_kept = NAN;
  }
  r.n_classes = 1;
  r.class_chance = NAN;
  r.class_judge = (unit_eval_judge){ .heldout_accuracy = NAN };
  snprintf(r.class_judge.note, sizeof r.class_judge.note, "the data set has 1 class");
  text = unit_eval_json(&r, NULL, "x.dat", NULL);
  ck_assert_ptr_nonnull(text);
  root = json_loads(text, 0, &err);
  ck_assert_msg(root != NULL, "%s", err.text);
  ck_assert(json_is_null(json_object_get(root, "run")));
  assert_contains(json_string_value(json_object_get(root, "translation_not_measured")), "not paired");
  json_t *ab = json_object_get(root, "a_to_b");
  ck_assert(json_is_null(json_object_get(ab, "translation_l1")));
  ck_assert(json_is_null(json_object_get(ab, "copy_l1")));
  ck_assert(json_is_null(json_object_get(ab, "class_kept")));
  ck_assert(json_is_null(json_object_get(ab, "true_image_judged_target_domain")));
  ck_assert_double_eq_tol(real_at(ab, "cycle_l1"), 0.05, 1e-9);
  ck_assert_double_eq_tol(real_at(ab, "judged_target_domain"), 0.75, 1e-9);
  cj = json_object_get(root, "class_judge");
  ck_assert(json_is_false(json_object_get(cj, "measured")));
  ck_assert_ptr_null(json_object_get(cj, "heldout_accuracy"));
  assert_contains(json_string_value(json_object_get(cj, "not_measured")), "1 class");
  json_decref(root);
  free(text);

  /* A seed past INT64_MAX is kept exactly, as text. */
  r.seed = UINT64_MAX;
  text = unit_eval_json(&r, NULL, NULL, NULL);
  assert_contains(text, "\"18446744073709551615\"");
  free(text);
}
END_TEST

static char *printed(const unit_eval_report *r) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ck_assert_ptr_nonnull(f);
  unit_eval_print(f, r);
  fclose(f);
  return buf;
}

START_TEST(summary_text) {
  unit_eval_report r = sample_report();
  char *s = printed(&r);
  assert_contains(s, "'day'");
  assert_contains(s, "'night'");
  assert_contains(s, "A -> B");
  assert_contains(s, "baseline: copy of the input");
  assert_contains(s, "baseline: colour-matched input");
  assert_contains(s, "reference: the true image");
  assert_contains(s, "  0.1100");
  assert_contains(s, "judge's held-out accuracy 1.000)");
  assert_contains(s, "judge's held-out accuracy 0.500: UNRELIABLE)");
  assert_contains(s, "WARNING: the class judge is unreliable");
  ck_assert_msg(!strstr(s, "WARNING: the domain judge"), "a reliable judge is flagged:\n%s", s);
  /* Every judged line carries its judge's accuracy: 4 per judge (both directions on a line). */
  int lines = 0;
  for (const char *p = s; (p = strstr(p, "judge's held-out accuracy")); p++) lines++;
  ck_assert_int_eq(lines, 8);
  free(s);

  r.paired = 0;
  snprintf(r.why_no_translation, sizeof r.why_no_translation, "the domains are not paired");
  r.dir[0].n_paired = r.dir[1].n_paired = 0;
  r.dir[0].true_judged_target_domain = r.dir[1].true_judged_target_domain = NAN;
  r.class_judge = (unit_eval_judge){ .heldout_accuracy = NAN };
  snprintf(r.class_judge.note, sizeof r.class_judge.note, "the data set has 1 class");
  s = printed(&r);
  assert_contains(s, "not measured: the domains are not paired");
  assert_contains(s, "class judge: not measured: the data set has 1 class");
  ck_assert_msg(!strstr(s, "reference: the true image"), "true images without pairs:\n%s", s);
  free(s);
}
END_TEST

/* 3 objects x 8 views at 16x16, rendered by day and by night: 24 images per domain. */
static const char *tiny_day_night(void) {
  const char *path = test_tmp_path("unit-eval-dn.dat");
  ut_synth_cfg sc = { .classes = 3, .views = 8, .size = 16, .seed = 3 };
  const int looks[2] = { UT_SYNTH_DAY, UT_SYNTH_NIGHT };
  ck_assert_ut_ok(ut_synth_write_domains(&sc, looks, NULL, 2, path, 1, NULL, NULL));
  return path;
}

static unit_cfg tiny_cfg(void) {
  unit_cfg c = unit_preset(UNIT_PRESET_SMALL, 3);
  c.size = 16;
  c.ch = 4;
  c.dis_ch = 4;
  c.batch = 2;
  c.epochs = 1;
  c.test_ratio = 0.25f;
  return c;
}

static void check_figure(double v, const char *what, int dir) {
  ck_assert_msg(isfinite(v) && v >= 0 && v <= 1, "direction %d: %s = %g is not in [0, 1]", dir, what, v);
}

static char *json_without_time(unit_eval_report r) {
  r.seconds = 0;
  return unit_eval_json(&r, "run", "data", "device");
}

START_TEST(end_to_end) {
  char data[512];
  snprintf(data, sizeof data, "%s", tiny_day_night());
  ut_dataset *ds = ut_dataset_open(data);
  ck_assert_ut_ptr(ds);
  ut_runtime *rt = test_runtime();
  unit_cfg c = tiny_cfg();
  unit_model *m = unit_new(rt, &c);
  ck_assert_ut_ptr(m);
  /* Two steps on seeded noise: a model whose outputs are not yet the identity. */
  int64_t per = 3 * 16 * 16;
  float *a = malloc((size_t)(2 * per) * sizeof(float)), *b = malloc((size_t)(2 * per) * sizeof(float));
  uint64_t state = 5;
  for (int s = 0; s < 2; s++) {
    test_fill_uniform(&state, a, 2 * per, -1, 1);
    test_fill_uniform(&state, b, 2 * per, -1, 1);
    ck_assert_ut_ok(unit_train_step(m, a, b, NULL));
  }
  free(a);
  free(b);

  unit_eval_cfg cfg = unit_eval_default_cfg();
  cfg.max_images = 64; /* more than are held out: every held-out image is measured */
  cfg.judge_epochs = 1;
  cfg.judge_images = 32;
  unit_eval_report r1, r2;
  ck_assert_ut_ok(unit_evaluate(rt, m, ds, &cfg, &r1));
  ck_assert_str_eq(r1.domain_name[0], "day");
  ck_assert_str_eq(r1.domain_name[1], "night");
  ck_assert(r1.paired);
  ck_assert_str_eq(r1.why_no_translation, "");

  /* The split the evaluation used, to compute the copy baseline here. */
  unit_cfg resolved = c;
  ck_assert_ut_ok(unit_resolve_domains(ds, &resolved));
  unit_split sp;
  ck_assert_ut_ok(unit_run_split(ds, &resolved, &sp));
  float *x = malloc((size_t)per * sizeof(float)), *y = malloc((size_t)per * sizeof(float));
  for (int d = 0; d < 2; d++) {
    const unit_eval_direction *dir = &r1.dir[d];
    ck_assert_int_eq(dir->from, d);
    ck_assert_int_eq(dir->to, 1 - d);
    ck_assert_int_eq(dir->n_images, sp.n_test[d]);
    ck_assert_int_eq(dir->n_paired, sp.n_test[d]);
    ck_assert_int_eq(r1.n_train[d], sp.n_train[d]);
    check_figure(dir->translation_l1, "translation_l1", d);
    check_figure(dir->copy_l1, "copy_l1", d);
    check_figure(dir->colour_matched_l1, "colour_matched_l1", d);
    check_figure(dir->cycle_l1, "cycle_l1", d);
    check_figure(dir->recon_l1, "recon_l1", d);
    check_figure(dir->judged_target_domain, "judged_target_domain", d);
    check_figure(dir->copy_judged_target_domain, "copy_judged_target_domain", d);
    check_figure(dir->colour_matched_judged_target_domain, "colour_matched_judged_target_domain", d);
    check_figure(dir->class_kept, "class_kept", d);
    check_figure(dir->copy_class_kept, "copy_class_kept", d);
    check_figure(dir->colour_matched_class_kept, "colour_matched_class_kept", d);
    check_figure(dir->true_judged_target_domain, "true_judged_target_domain", d);
    check_figure(dir->true_class_kept, "true_class_kept", d);
    double sum = 0;
    for (int32_t i = 0; i < sp.n_test[d]; i++) {
      int32_t p = unit_partner(ds, sp.test[d][i], sp.domain[1 - d]);
      ck_assert_int_ge(p, 0);
      ck_assert_int_eq(ut_dataset_class(ds, p), ut_dataset_class(ds, sp.test[d][i]));
      ut_dataset_image_chw(ds, sp.test[d][i], x);
      ut_dataset_image_chw(ds, p, y);
      sum += unit_eval_l1_sum(x, y, per);
    }
    double direct = sum / ((double)sp.n_test[d] * (double)per);
    ck_assert_msg(fabs(direct - dir->copy_l1) < 1e-9, "direction %d: copy_l1 %.9f, computed here %.9f", d,
                  dir->copy_l1, direct);
    ck_assert_msg(direct > 0.01, "day and night images should differ (L1 %g)", direct);
    for (int k = 0; k < 3; k++) {
      check_figure(r1.colour_mean[d][k], "colour mean", d);
      check_figure(r1.colour_std[d][k], "colour std", d);
    }
  }
  free(x);
  free(y);
  unit_split_free(&sp);
  const unit_eval_judge *judges[2] = { &r1.domain_judge, &r1.class_judge };
  for (int j = 0; j < 2; j++) {
    ck_assert(judges[j]->measured);
    ck_assert_int_eq(judges[j]->classes, j == 0 ? 2 : 3);
    ck_assert_int_eq(judges[j]->n_train + judges[j]->n_heldout, 32);
    check_figure(judges[j]->heldout_accuracy, "judge accuracy", j);
    ck_assert_int_eq(judges[j]->reliable, judges[j]->heldout_accuracy >= UNIT_EVAL_RELIABLE_ACCURACY);
    ck_assert_int_eq(judges[j]->note[0] != 0, !judges[j]->reliable);
  }
  ck_assert_double_eq_tol(r1.class_chance, 1.0 / 3, 1e-12);

  /* Determinism: the same report again. */
  ck_assert_ut_ok(unit_evaluate(rt, m, ds, &cfg, &r2));
  char *j1 = json_without_time(r1), *j2 = json_without_time(r2);
  ck_assert_ptr_nonnull(j1);
  ck_assert_str_eq(j1, j2);
  free(j2);

  /* The same set with a 2-pixel black frame (20x20): the evaluation's centre crop gives back
   * the very images, so the very report. */
  const char *framed_path = test_tmp_path("unit-eval-framed.dat");
  const char *names[2] = { "day", "night" };
  ut_dataset_writer *w = ut_dataset_writer_open(
      framed_path, &(ut_dataset_desc){ .height = 20, .width = 20, .channels = 3, .n_classes = 3, .n_contents = 8,
                                       .n_domains = 2, .domain_names = names });
  ck_assert_ut_ptr(w);
  uint8_t framed[20 * 20 * 3];
  for (int32_t i = 0; i < ut_dataset_count(ds); i++) {
    memset(framed, 0, sizeof framed);
    for (int row = 0; row < 16; row++) memcpy(framed + ((row + 2) * 20 + 2) * 3, ut_dataset_image(ds, i) + row * 16 * 3, 16 * 3);
    ck_assert_ut_ok(ut_dataset_writer_add_domain(w, framed, ut_dataset_class(ds, i), ut_dataset_content(ds, i),
                                                 ut_dataset_domain(ds, i)));
  }
  ck_assert_ut_ok(ut_dataset_writer_finish(w));
  ut_dataset *framed_ds = ut_dataset_open(framed_path);
  ck_assert_ut_ptr(framed_ds);
  ck_assert_ut_ok(unit_evaluate(rt, m, framed_ds, &cfg, &r2));
  j2 = json_without_time(r2);
  ck_assert_str_eq(j1, j2);
  free(j1);
  free(j2);
  ut_dataset_close(framed_ds);

  /* The same images without content labels: not paired, so no true translations; the
   * reconstructions and both judges are still measured. */
  const char *bare_path = test_tmp_path("unit-eval-unpaired.dat");
  w = ut_dataset_writer_open(
      bare_path, &(ut_dataset_desc){ .height = 16, .width = 16, .channels = 3, .n_classes = 3, .n_domains = 2,
                                     .domain_names = names });
  ck_assert_ut_ptr(w);
  for (int32_t i = 0; i < ut_dataset_count(ds); i++)
    ck_assert_ut_ok(ut_dataset_writer_add_domain(w, ut_dataset_image(ds, i), ut_dataset_class(ds, i), -1,
                                                 ut_dataset_domain(ds, i)));
  ck_assert_ut_ok(ut_dataset_writer_finish(w));
  ut_dataset *bare = ut_dataset_open(bare_path);
  ck_assert_ut_ptr(bare);
  ck_assert_ut_ok(unit_evaluate(rt, m, bare, &cfg, &r2));
  ck_assert(!r2.paired);
  ck_assert_msg(strstr(r2.why_no_translation, "not paired"), "%s", r2.why_no_translation);
  for (int d = 0; d < 2; d++) {
    ck_assert_int_eq(r2.dir[d].n_paired, 0);
    ck_assert(isnan(r2.dir[d].translation_l1) && isnan(r2.dir[d].copy_l1) && isnan(r2.dir[d].colour_matched_l1));
    ck_assert(isnan(r2.dir[d].true_judged_target_domain) && isnan(r2.dir[d].true_class_kept));
    check_figure(r2.dir[d].cycle_l1, "unpaired cycle_l1", d);
    check_figure(r2.dir[d].judged_target_domain, "unpaired judged_target_domain", d);
    check_figure(r2.dir[d].colour_matched_class_kept, "unpaired colour_matched_class_kept", d);
  }
  ck_assert(r2.domain_judge.measured && r2.class_judge.measured);
  char *text = unit_eval_json(&r2, NULL, bare_path, NULL);
  assert_contains(text, "\"translation_not_measured\"");
  free(text);
  ut_dataset_close(bare);

  /* Bad settings are refused by name. */
  cfg.judge_epochs = 0;
  ck_assert_int_eq(unit_evaluate(rt, m, ds, &cfg, &r2), UT_ERR_INVALID_ARGUMENT);
  assert_contains(ut_last_error(), "judge_epochs");
  ut_dataset_close(ds);
  unit_free(m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("unit_eval");
  TCase *t = tcase_create("unit_eval");
  tcase_set_timeout(t, 900);
  tcase_add_test(t, colour_match_known_numbers);
  tcase_add_test(t, json_shape);
  tcase_add_test(t, summary_text);
  tcase_add_test(t, end_to_end);
  suite_add_tcase(s, t);
  return test_run_suite(s);
}
