/* LORD on tiny data: each stage's loss falls, a checkpoint round trip reproduces generated
 * images bit for bit, a resumed run computes the same losses as an uninterrupted one, and the
 * configuration survives JSON and rejects bad values by name. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lord.h"
#include "test_support.h"

enum { N_IMAGES = 8, N_CLASSES = 2, BATCH = 4 };

static lord_cfg tiny_cfg(void) {
  lord_cfg c = lord_preset(LORD_PRESET_SMALL, 3, N_IMAGES, N_CLASSES);
  c.size = 16;
  c.content_dim = 4;
  c.class_dim = 4;
  c.gen_channels = 8;
  c.head_channels = 4;
  c.enc_channels = 4;
  c.enc_hidden = 8;
  c.batch = BATCH;
  c.seed = 5;
  return c;
}

/* Eight images: class 0 a horizontal ramp, class 1 a vertical one, each image with its own
 * brightness, so both codes have something to explain. */
static float *tiny_images(const lord_cfg *c) {
  int64_t per = (int64_t)c->channels * c->size * c->size;
  float *x = malloc((size_t)(N_IMAGES * per) * sizeof *x);
  for (int i = 0; i < N_IMAGES; i++)
    for (int ch = 0; ch < c->channels; ch++)
      for (int y = 0; y < c->size; y++)
        for (int xx = 0; xx < c->size; xx++) {
          float ramp = (float)((i % 2) ? y : xx) / (float)(c->size - 1);
          x[i * per + ((int64_t)ch * c->size + y) * c->size + xx] = 0.2f + 0.6f * ramp * (0.5f + 0.5f * (float)(i / 2) / 3);
        }
  return x;
}

/* The batch of images first .. first + BATCH - 1 (wrapping). */
static void batch_of(const lord_cfg *c, const float *all, int first, float *images, int32_t *ids, int32_t *classes) {
  int64_t per = (int64_t)c->channels * c->size * c->size;
  for (int b = 0; b < BATCH; b++) {
    int i = (first + b) % N_IMAGES;
    memcpy(images + b * per, all + i * per, (size_t)per * sizeof(float));
    ids[b] = i;
    classes[b] = i % 2;
  }
}

typedef ut_status (*step_fn)(lord_model *, const float *, const int32_t *, const int32_t *, double, float *);

static void train(lord_model *m, step_fn step, const float *data, int first_step, int steps, float *losses) {
  const lord_cfg *c = lord_config(m);
  int64_t per = (int64_t)c->channels * c->size * c->size;
  float *images = malloc((size_t)(BATCH * per) * sizeof *images);
  int32_t ids[BATCH], classes[BATCH];
  for (int s = first_step; s < first_step + steps; s++) {
    batch_of(c, data, (s * BATCH) % N_IMAGES, images, ids, classes);
    ck_assert_ut_ok(step(m, images, ids, classes, (double)s / 200.0, &losses[s - first_step]));
    ck_assert_msg(isfinite(losses[s - first_step]), "loss %g at step %d", (double)losses[s - first_step], s);
  }
  free(images);
}

static double mean(const float *v, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += v[i];
  return s / n;
}

START_TEST(stage1_and_stage2_losses_fall) {
  lord_cfg c = tiny_cfg();
  float *data = tiny_images(&c);
  lord_model *m = lord_new(test_runtime(), &c, NULL);
  ck_assert_ut_ptr(m);
  enum { STEPS = 60 };
  float l1[STEPS], l2[STEPS];
  train(m, lord_stage1_step, data, 0, STEPS, l1);
  ck_assert_msg(mean(l1 + STEPS - 10, 10) < 0.6 * mean(l1, 10), "stage 1 loss did not fall: %g -> %g", mean(l1, 10),
                mean(l1 + STEPS - 10, 10));
  train(m, lord_stage2_step, data, 0, STEPS, l2);
  ck_assert_msg(mean(l2 + STEPS - 10, 10) < 0.8 * mean(l2, 10), "stage 2 loss did not fall: %g -> %g", mean(l2, 10),
                mean(l2 + STEPS - 10, 10));

  /* Codes and images have the promised shapes and ranges. */
  int32_t ids[3] = { 0, 3, 7 }, classes[3] = { 0, 1, 1 };
  float content[3 * 4], class_codes[3 * 4], enc_content[3 * 4], images[3 * 3 * 16 * 16];
  ck_assert_ut_ok(lord_embedded_codes(m, ids, classes, 3, content, class_codes));
  ck_assert_ut_ok(lord_generate(m, content, class_codes, 3, images));
  for (int i = 0; i < 3 * 3 * 16 * 16; i++) ck_assert(images[i] > 0 && images[i] < 1);
  ck_assert_ut_ok(lord_encode(m, data, 3, enc_content, NULL));
  ck_assert_int_eq(lord_embedded_codes(m, (int32_t[]){ N_IMAGES }, classes, 1, content, NULL), UT_ERR_INVALID_ARGUMENT);
  lord_free(m);
  free(data);
}
END_TEST

START_TEST(checkpoint_round_trip_and_resume) {
  lord_cfg c = tiny_cfg();
  float *data = tiny_images(&c);
  char path[256];
  snprintf(path, sizeof path, "%s", test_tmp_path("lord.safetensors"));

  /* Reference: 6 uninterrupted steps. */
  lord_model *a = lord_new(test_runtime(), &c, NULL);
  ck_assert_ut_ptr(a);
  float ref[6], first[3], rest[3];
  train(a, lord_stage1_step, data, 0, 6, ref);
  lord_free(a);

  /* The same 6 steps with a checkpoint after 3 and a fresh model resuming from it. */
  lord_model *b = lord_new(test_runtime(), &c, NULL);
  train(b, lord_stage1_step, data, 0, 3, first);
  ck_assert_ut_ok(lord_save(b, path));
  int32_t ids[2] = { 1, 6 }, classes[2] = { 1, 0 };
  float content[2 * 4], class_codes[2 * 4], img_b[2 * 3 * 16 * 16], img_c[2 * 3 * 16 * 16];
  ck_assert_ut_ok(lord_embedded_codes(b, ids, classes, 2, content, class_codes));
  ck_assert_ut_ok(lord_generate(b, content, class_codes, 2, img_b));

  lord_cfg read;
  ck_assert_ut_ok(lord_read_config(test_runtime(), path, &read));
  ck_assert_int_eq(read.gen_channels, c.gen_channels);
  lord_model *r = lord_new(test_runtime(), &read, NULL);
  ck_assert_ut_ok(lord_load(r, path));
  ck_assert_ut_ok(lord_generate(r, content, class_codes, 2, img_c));
  ck_assert_mem_eq(img_b, img_c, sizeof img_b);
  train(r, lord_stage1_step, data, 3, 3, rest);
  ck_assert_mem_eq(first, ref, sizeof first);
  ck_assert_mem_eq(rest, ref + 3, sizeof rest);

  /* A model of another shape refuses the checkpoint and names the difference. */
  lord_cfg other = c;
  other.gen_channels = 16;
  lord_model *o = lord_new(test_runtime(), &other, NULL);
  ck_assert_int_eq(lord_load(o, path), UT_ERR_MISMATCH);
  ck_assert_msg(strstr(ut_last_error(), "gen_channels") != NULL, "%s", ut_last_error());
  lord_free(o);
  lord_free(r);
  lord_free(b);
  unlink(path);
  free(data);
}
END_TEST

START_TEST(config_json_and_checks) {
  lord_cfg c = lord_preset(LORD_PRESET_DEFAULT, 3, 1000, 10), back;
  c.seed = UINT64_MAX;
  char *json = lord_cfg_to_json(&c);
  ck_assert_ptr_nonnull(json);
  ck_assert_ut_ok(lord_cfg_from_json(json, &back));
  char *again = lord_cfg_to_json(&back);
  ck_assert_str_eq(json, again);
  ck_assert(back.seed == UINT64_MAX);
  free(json);
  free(again);
  ck_assert_int_eq(lord_cfg_from_json("{\"size\": 64}", &back), UT_ERR_FORMAT);
  ck_assert_int_eq(lord_cfg_from_json("not json", &back), UT_ERR_FORMAT);

  lord_cfg bad = c;
  bad.size = 40;
  ck_assert_int_eq(lord_cfg_check(&bad), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), "size 40") != NULL, "%s", ut_last_error());
  bad = c;
  bad.channels = 2;
  ck_assert_int_eq(lord_cfg_check(&bad), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), "channels") != NULL, "%s", ut_last_error());
  bad = c;
  bad.recon = LORD_RECON_VGG;
  ck_assert_ptr_null(lord_new(test_runtime(), &bad, NULL));
  ck_assert_msg(strstr(ut_last_error(), "--vgg") != NULL, "%s", ut_last_error());
}
END_TEST

int main(void) {
  Suite *s = suite_create("lord");
  TCase *t = tcase_create("lord");
  tcase_set_timeout(t, 600);
  tcase_add_test(t, stage1_and_stage2_losses_fall);
  tcase_add_test(t, checkpoint_round_trip_and_resume);
  tcase_add_test(t, config_json_and_checks);
  suite_add_tcase(s, t);
  return test_run_suite(s);
}
