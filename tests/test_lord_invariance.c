/* LORD's stage-2 content invariance term (content_invariance, issue 16): the loss it adds is
 * the weight times the class moment gap of the content codes, computed here on the host from
 * the encoder's codes; with it the gap of the trained codes falls and ends below a run without
 * it; a checkpoint carries the weight and a resumed run repeats the losses bit for bit; a
 * checkpoint written before the field existed reads with the term off; bad weights, and the
 * term on a team of processes, are refused by name, in the library and on the command line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_runner.h"
#include "lord.h"
#include "test_support.h"

enum { N_IMAGES = 8, N_CLASSES = 2, BATCH = 4, DIM = 4 };

static lord_cfg tiny_cfg(float invariance) {
  lord_cfg c = lord_preset(LORD_PRESET_SMALL, 1, N_IMAGES, N_CLASSES);
  c.size = 16;
  c.content_dim = DIM;
  c.class_dim = 4;
  c.gen_channels = 8;
  c.head_channels = 4;
  c.enc_channels = 4;
  c.enc_hidden = 8;
  c.batch = BATCH;
  c.seed = 7;
  c.content_std = 0; /* stage 1 then learns content codes large enough to carry the class */
  c.content_decay = 0;
  c.lr_enc = 3e-3f; /* and the encoder follows them within a few dozen steps */
  c.content_invariance = invariance;
  return c;
}

enum { PIXELS = 16 * 16 };

/* Class 0 horizontal ramps, class 1 vertical ones, each image with its own brightness: the
 * encoder's codes tell the classes apart from the start. */
static void tiny_images(float *x) {
  for (int i = 0; i < N_IMAGES; i++)
    for (int y = 0; y < 16; y++)
      for (int xx = 0; xx < 16; xx++)
        x[i * PIXELS + y * 16 + xx] = 0.1f + 0.8f * (float)((i % 2) ? y : xx) / 15 * (0.4f + 0.6f * (float)(i / 2) / 3);
}

/* The term as lord.c defines it, on the host: mean over rows and dimensions of the squared gap
 * between each row's class mean and the batch mean, for the codes and for their squares. */
static double moment_gap(const float *codes, const int32_t *classes, int n) {
  double total = 0;
  for (int power = 1; power <= 2; power++)
    for (int d = 0; d < DIM; d++) {
      double all = 0, sum[N_CLASSES] = { 0 };
      int count[N_CLASSES] = { 0 };
      for (int i = 0; i < n; i++) {
        double v = power == 1 ? codes[i * DIM + d] : (double)codes[i * DIM + d] * codes[i * DIM + d];
        all += v;
        sum[classes[i]] += v;
        count[classes[i]]++;
      }
      for (int i = 0; i < n; i++) {
        double gap = sum[classes[i]] / count[classes[i]] - all / n;
        total += gap * gap;
      }
    }
  return total / (n * DIM);
}

typedef ut_status (*step_fn)(lord_model *, const float *, const int32_t *, const int32_t *, double, float *);

/* Steps over the images in order, BATCH at a time (each batch holds both classes). */
static void train(lord_model *m, step_fn step, const float *data, int first, int steps, float *losses) {
  for (int s = first; s < first + steps; s++) {
    int start = (s * BATCH) % N_IMAGES;
    int32_t ids[BATCH], classes[BATCH];
    for (int b = 0; b < BATCH; b++) {
      ids[b] = start + b;
      classes[b] = (start + b) % 2;
    }
    ck_assert_ut_ok(step(m, data + start * PIXELS, ids, classes, (double)s / 200, &losses[s - first]));
    ck_assert_msg(isfinite(losses[s - first]), "loss %g at step %d", (double)losses[s - first], s);
  }
}

static void stage2(lord_model *m, const float *data, int first, int steps, float *losses) {
  train(m, lord_stage2_step, data, first, steps, losses);
}

/* A checkpoint at `path` after stage 1 and some of stage 2 without the term: an untrained
 * encoder's codes are too small to carry anything, these carry the class. */
static void prepare(const float *data, const char *path) {
  lord_cfg c = tiny_cfg(0);
  lord_model *m = lord_new(test_runtime(), &c, NULL);
  ck_assert_ut_ptr(m);
  float losses[60];
  train(m, lord_stage1_step, data, 0, 60, losses);
  stage2(m, data, 0, 60, losses);
  ck_assert_ut_ok(lord_save(m, path));
  lord_free(m);
}

/* The gap of all eight images' stage-2 content codes. */
static double codes_gap(lord_model *m, const float *data) {
  float codes[N_IMAGES * DIM];
  int32_t classes[N_IMAGES];
  for (int i = 0; i < N_IMAGES; i++) classes[i] = i % 2;
  ck_assert_ut_ok(lord_encode(m, data, N_IMAGES, codes, NULL));
  return moment_gap(codes, classes, N_IMAGES);
}

static double mean(const float *v, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += v[i];
  return s / n;
}

START_TEST(term_adds_the_gap_and_removes_it) {
  enum { STEPS = 80 };
  const float w = 1000;
  static float data[N_IMAGES * PIXELS];
  tiny_images(data);
  char path[256];
  snprintf(path, sizeof path, "%s", test_tmp_path("lord_invariance_start.safetensors"));
  prepare(data, path);
  lord_cfg off_cfg = tiny_cfg(0), on_cfg = tiny_cfg(w);
  lord_model *off = lord_new(test_runtime(), &off_cfg, NULL), *on = lord_new(test_runtime(), &on_cfg, NULL);
  ck_assert_ut_ptr(off);
  ck_assert_ut_ptr(on);
  ck_assert_ut_ok(lord_load(off, path));
  ck_assert_ut_ok(lord_load(on, path));
  unlink(path);

  /* From the same parameters the first step's losses differ by exactly w times the gap of the
   * first batch's codes. */
  float codes[BATCH * DIM];
  ck_assert_ut_ok(lord_encode(on, data, BATCH, codes, NULL));
  double gap0 = moment_gap(codes, (const int32_t[]){ 0, 1, 0, 1 }, BATCH);
  ck_assert_msg(gap0 > 1e-7, "the prepared encoder's codes carry no class (gap %g): nothing to test", gap0);
  double all_gap0 = codes_gap(on, data);
  printf("gap of the first batch %g, of all images %g\n", gap0, all_gap0);
  float loss_off[STEPS], loss_on[STEPS];
  stage2(off, data, 60, STEPS, loss_off);
  stage2(on, data, 60, STEPS, loss_on);
  double added = (double)loss_on[0] - loss_off[0];
  ck_assert_msg(fabs(added - w * gap0) <= 1e-3 * w * gap0 + 1e-5, "the term added %g to the loss, not w x gap = %g",
                added, w * gap0);

  /* Trained with it, the codes' gap falls, well below the gap of codes trained without it. */
  double gap_on = codes_gap(on, data), gap_off = codes_gap(off, data);
  printf("after %d steps: gap %g with the term, %g without\n", STEPS, gap_on, gap_off);
  ck_assert_msg(gap_on < 0.5 * all_gap0, "the gap did not fall with the term: %g -> %g", all_gap0, gap_on);
  ck_assert_msg(gap_on < 0.5 * gap_off, "the term left the gap at %g against %g without it", gap_on, gap_off);
  lord_free(off);
  lord_free(on);

  /* From scratch, a stage 2 with the term learns: its loss falls. */
  lord_model *fresh = lord_new(test_runtime(), &on_cfg, NULL);
  ck_assert_ut_ptr(fresh);
  stage2(fresh, data, 0, STEPS, loss_on);
  ck_assert_msg(mean(loss_on + STEPS - 10, 10) < 0.8 * mean(loss_on, 10), "stage 2 loss did not fall: %g -> %g",
                mean(loss_on, 10), mean(loss_on + STEPS - 10, 10));
  lord_free(fresh);
}
END_TEST

START_TEST(checkpoint_keeps_the_weight_and_resumes_bit_for_bit) {
  static float data[N_IMAGES * PIXELS];
  tiny_images(data);
  lord_cfg c = tiny_cfg(20);
  char path[256];
  snprintf(path, sizeof path, "%s", test_tmp_path("lord_invariance.safetensors"));
  lord_model *a = lord_new(test_runtime(), &c, NULL);
  float ref[6], first[3], rest[3];
  stage2(a, data, 0, 6, ref);
  lord_free(a);

  lord_model *b = lord_new(test_runtime(), &c, NULL);
  stage2(b, data, 0, 3, first);
  ck_assert_ut_ok(lord_save(b, path));
  lord_cfg read;
  ck_assert_ut_ok(lord_read_config(test_runtime(), path, &read));
  ck_assert(read.content_invariance == 20);
  lord_model *r = lord_new(test_runtime(), &read, NULL);
  ck_assert_ut_ok(lord_load(r, path));
  stage2(r, data, 3, 3, rest);
  ck_assert_mem_eq(first, ref, sizeof first);
  ck_assert_mem_eq(rest, ref + 3, sizeof rest);

  /* The weight is a loss setting, not the model: a model with the term off loads it too (how
   * `train lord --resume --content-invariance W` turns it on for stage 2 of a stage-1 run). */
  lord_cfg off = c;
  off.content_invariance = 0;
  lord_model *o = lord_new(test_runtime(), &off, NULL);
  ck_assert_ut_ok(lord_load(o, path));
  lord_free(o);
  lord_free(r);
  lord_free(b);
  unlink(path);
}
END_TEST

START_TEST(old_configs_read_with_the_term_off_and_bad_weights_are_refused) {
  lord_cfg c = tiny_cfg(3), back;
  char *json = lord_cfg_to_json(&c);
  ck_assert_ptr_nonnull(json);
  ck_assert_ut_ok(lord_cfg_from_json(json, &back));
  ck_assert(back.content_invariance == 3);
  /* A checkpoint from before the field: the same JSON without it. */
  char *field = strstr(json, "\"content_invariance\":3.0,");
  ck_assert_msg(field != NULL, "%s", json);
  memmove(field, field + strlen("\"content_invariance\":3.0,"), strlen(field + strlen("\"content_invariance\":3.0,")) + 1);
  ck_assert_ut_ok(lord_cfg_from_json(json, &back));
  ck_assert(back.content_invariance == 0);
  free(json);
  /* With the term off a checkpoint's configuration is what it was before the field existed. */
  c.content_invariance = 0;
  json = lord_cfg_to_json(&c);
  ck_assert_msg(strstr(json, "content_invariance") == NULL, "%s", json);
  free(json);

  const float bad[] = { -1, NAN, 2e6f };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    lord_cfg b = tiny_cfg(bad[i]);
    ck_assert_int_eq(lord_cfg_check(&b), UT_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(ut_last_error(), "content_invariance") != NULL, "%s", ut_last_error());
    ck_assert_ptr_null(lord_new(test_runtime(), &b, NULL));
  }

  /* On a team of two the term is refused (before the team is used), and only when stage 2 runs. */
  kit_team team = { .rank = 0, .size = 2 };
  lord_cfg on = tiny_cfg(5);
  lord_model *m = lord_new(test_runtime(), &on, NULL);
  ck_assert_int_eq(lord_set_team(m, &team), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), "content invariance") && strstr(ut_last_error(), "data-parallel"), "%s",
                ut_last_error());
  lord_free(m);

  static const char *const bad_args[] = { "-0.5", "abc", "1e7" };
  for (size_t i = 0; i < sizeof bad_args / sizeof bad_args[0]; i++) {
    char args[128];
    snprintf(args, sizeof args, "train lord --data none.dat --out none --content-invariance %s", bad_args[i]);
    cli_result r = cli_run(args);
    ck_assert_msg(r.status == 2, "'untangle %s' exited %d, not 2; stderr:\n%s", args, r.status, r.err);
    ck_assert_msg(strstr(r.err, "--content-invariance") && strstr(r.err, bad_args[i]), "%s", r.err);
    cli_result_free(&r);
  }
  cli_result h = cli_run("train lord --help");
  ck_assert_int_eq(h.status, 0);
  ck_assert_msg(strstr(h.out, "--content-invariance W") != NULL, "%s", h.out);
  cli_result_free(&h);
}
END_TEST

int main(void) {
  Suite *s = suite_create("lord_invariance");
  TCase *t = tcase_create("lord_invariance");
  tcase_set_timeout(t, 300);
  tcase_add_test(t, term_adds_the_gap_and_removes_it);
  tcase_add_test(t, checkpoint_keeps_the_weight_and_resumes_bit_for_bit);
  tcase_add_test(t, old_configs_read_with_the_term_off_and_bad_weights_are_refused);
  suite_add_tcase(s, t);
  return test_run_suite(s);
}
