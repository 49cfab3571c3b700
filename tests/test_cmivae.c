/* CMI-VAE (models/cmivae*.h): the colour feature (painting, the measured hue, the soft hue and
 * its gradient), the coloured copy of a grey set, a few training steps of each feature whose
 * losses fall, checkpoints that reproduce outputs bit for bit, and refused configurations and
 * data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmivae.h"
#include "cmivae_colour.h"
#include "cmivae_data.h"
#include "cmivae_train.h"
#include "gradcheck.h"
#include "untangle_data.h"

#define SIDE 16
#define PI 3.14159265358979323846

/* A grey garment: a bright blob with a textured inside on a black background. */
static void grey_image(uint64_t *state, uint8_t *px) {
  float noise[SIDE * SIDE];
  test_fill_uniform(state, noise, SIDE * SIDE, 0.0f, 1.0f);
  float cx = 6 + 4 * noise[0], cy = 6 + 4 * noise[1];
  for (int y = 0; y < SIDE; y++)
    for (int x = 0; x < SIDE; x++) {
      float d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
      px[y * SIDE + x] = d2 < 20 ? (uint8_t)(120 + 135 * noise[y * SIDE + x]) : 0;
    }
}

/* A grey set of n images with `classes` classes, written by the test. */
static void write_grey_set(const char *path, int n, int classes) {
  ut_dataset_writer *w = ut_dataset_writer_open(path, &(ut_dataset_desc){ .height = SIDE, .width = SIDE, .channels = 1,
                                                                          .n_classes = classes });
  ck_assert_ut_ptr(w);
  uint64_t state = 7;
  uint8_t px[SIDE * SIDE];
  for (int i = 0; i < n; i++) {
    grey_image(&state, px);
    ck_assert_ut_ok(ut_dataset_writer_add(w, px, i % classes, -1));
  }
  ck_assert_ut_ok(ut_dataset_writer_finish(w));
}

START_TEST(painted_hue_is_measured_exactly) {
  uint64_t state = 3;
  uint8_t grey[SIDE * SIDE], rgb[SIDE * SIDE * 3];
  float chw[3 * SIDE * SIDE];
  grey_image(&state, grey);
  const double hues[] = { 0.0, 37.5, 123.25, 200.0, 251.0, 359.5 };
  for (size_t k = 0; k < sizeof hues / sizeof hues[0]; k++) {
    /* The colour's chroma has exactly the hue's angle ... */
    double c[3];
    cmivae_hue_colour(hues[k], c);
    double a = c[0] - 0.5 * (c[1] + c[2]), b = 0.5 * sqrt(3.0) * (c[1] - c[2]);
    ck_assert_double_eq_tol(a, 0.75 * cos(hues[k] * PI / 180), 1e-12);
    ck_assert_double_eq_tol(b, 0.75 * sin(hues[k] * PI / 180), 1e-12);
    /* ... so the painted image measures it, up to the rounding of its bytes. */
    cmivae_paint(grey, SIDE * SIDE, hues[k], rgb);
    ut_image_bytes_to_chw(rgb, SIDE * SIDE, 3, chw);
    double measured = cmivae_image_hue(chw, SIDE * SIDE);
    ck_assert_msg(cmivae_hue_distance(measured, hues[k]) < 0.2, "hue %g measured %g", hues[k], measured);
    /* The grey level comes back whatever the hue. */
    float back[SIDE * SIDE];
    cmivae_grey(chw, SIDE * SIDE, back);
    for (int p = 0; p < SIDE * SIDE; p++) {
      ck_assert_msg(fabsf(back[p] - grey[p] / 255.0f) < 1.5f / 255, "hue %g pixel %d: %g, not %g", hues[k], p, back[p], grey[p] / 255.0);
      if (!grey[p]) ck_assert(!rgb[3 * p] && !rgb[3 * p + 1] && !rgb[3 * p + 2]);
    }
  }
  ck_assert(isnan(cmivae_image_hue((float[12]){ 0 }, 4)));
  ck_assert_double_eq(cmivae_hue_distance(350, 10), 20);
  ck_assert_double_eq(cmivae_hue_distance(10, 190), 180);
}
END_TEST

START_TEST(colorize_copies_with_exact_hues) {
  char grey[1024], out[1024], again[1024], other[1024];
  snprintf(grey, sizeof grey, "%s", test_tmp_path("cmivae-grey.dat"));
  snprintf(out, sizeof out, "%s", test_tmp_path("cmivae-colour.dat"));
  snprintf(again, sizeof again, "%s", test_tmp_path("cmivae-colour2.dat"));
  snprintf(other, sizeof other, "%s", test_tmp_path("cmivae-colour3.dat"));
  write_grey_set(grey, 12, 3);
  ut_dataset *g = ut_dataset_open(grey);
  ck_assert_ut_ptr(g);
  ck_assert_ut_ok(cmivae_colorize(g, 5, out));
  ck_assert_ut_ok(cmivae_colorize(g, 5, again));
  ck_assert_ut_ok(cmivae_colorize(g, 6, other));
  ut_dataset *c = ut_dataset_open(out), *c2 = ut_dataset_open(again), *c3 = ut_dataset_open(other);
  ck_assert_ut_ptr(c);
  ck_assert_int_eq(ut_dataset_channels(c), 3);
  int a = ut_dataset_find_attribute(c, CMIVAE_HUE_ATTRIBUTE);
  ck_assert_int_eq(a, 0);
  float chw[3 * SIDE * SIDE];
  int differs = 0;
  for (int32_t i = 0; i < ut_dataset_count(c); i++) {
    float hue = ut_dataset_attribute(c, i, a);
    ck_assert_float_eq(hue, cmivae_uniform_hue(5, i));
    ck_assert(hue >= 0 && hue < 360);
    ck_assert_int_eq(ut_dataset_class(c, i), ut_dataset_class(g, i));
    ut_dataset_image_chw(c, i, chw);
    ck_assert_msg(cmivae_hue_distance(cmivae_image_hue(chw, SIDE * SIDE), hue) < 0.2, "image %d", i);
    /* The same seed gives the same bytes; another seed other hues. */
    ck_assert(!memcmp(ut_dataset_image(c, i), ut_dataset_image(c2, i), SIDE * SIDE * 3));
    differs += ut_dataset_attribute(c3, i, a) != hue;
  }
  ck_assert_int_eq(differs, ut_dataset_count(c));
  /* A colour input is refused and nothing is written. */
  remove(other);
  ck_assert_int_eq(cmivae_colorize(c, 5, other), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), out) && strstr(ut_last_error(), "colour images"), "%s", ut_last_error());
  ck_assert_ptr_null(fopen(other, "r"));
  ut_dataset_close(g);
  ut_dataset_close(c);
  ut_dataset_close(c2);
  ut_dataset_close(c3);
}
END_TEST

static ut_tensor *build_soft_hue(ut_graph *g, ut_tensor **in, void *ctx) {
  (void)ctx;
  return cmivae_soft_hue(g, in[0]);
}

START_TEST(soft_hue_forward_and_gradient) {
  enum { B = 2, HW = 9 };
  float *x = gc_random_values(11, B * 3 * HW, -1.0f, 1.0f), expect[B * 2];
  for (int b = 0; b < B; b++) {
    const float *img = x + b * 3 * HW;
    double sa = 0, sb = 0;
    for (int p = 0; p < HW; p++) {
      sa += img[p] - 0.5 * (img[HW + p] + img[2 * HW + p]);
      sb += 0.5 * sqrt(3.0) * (img[HW + p] - img[2 * HW + p]);
    }
    sa /= HW;
    sb /= HW;
    double len = sqrt(sa * sa + sb * sb + 1e-4);
    expect[2 * b] = (float)(sa / len);
    expect[2 * b + 1] = (float)(sb / len);
    /* Its angle is the host measure's. */
    double angle = atan2(expect[2 * b + 1], expect[2 * b]) * 180 / PI;
    ck_assert(cmivae_hue_distance(angle, cmivae_image_hue(img, HW)) < 1e-3);
  }
  gc_case c = { .label = "soft_hue", .n_inputs = 1, .shapes = (ut_shape[]){ UT_SHAPE(B, 3, 3, 3) },
                .values = (const float *[]){ x }, .build = build_soft_hue, .expect = expect,
                .expect_shape = UT_SHAPE(B, 2), .fwd_rel_tol = 1e-4, .fwd_abs_tol = 1e-5 };
  gc_assert_forward(&c);
  gc_assert_gradcheck(&c);
  free(x);
}
END_TEST

/* A tiny model: 16x16 images, width 8, batch 8. */
static cmivae_cfg tiny_cfg(cmivae_feature feature, int channels, int n_classes) {
  cmivae_cfg c = cmivae_preset(CMIVAE_PRESET_SMALL, feature, n_classes);
  c.size = SIDE;
  c.channels = channels;
  c.z1_dim = 4;
  c.z2_dim = 4;
  c.ch = 8;
  c.dis_ch = 8;
  c.e2_hidden = 16;
  c.batch = 8;
  c.lr = 1e-3f;
  c.w_gan = 1.0f; /* the conditional GAN too, which the preset leaves out */
  c.seed = 3;
  return c;
}

typedef struct {
  float images[8 * 3 * SIDE * SIDE], features[8 * 8], fuse[8 * 8];
  int32_t fuse_classes[8];
  float hues[8];
  int32_t classes[8];
} tiny_batch;

/* Painted blobs whose hue (hue feature) or brightness pattern (class feature) varies; x~ is the
 * batch reversed. Images in [-1, 1]. */
static void make_batch(const cmivae_cfg *c, tiny_batch *t) {
  uint64_t state = 17;
  uint8_t grey[SIDE * SIDE], rgb[SIDE * SIDE * 3];
  int64_t per = (int64_t)c->channels * SIDE * SIDE, F = cmivae_feature_width(c);
  for (int i = 0; i < 8; i++) {
    grey_image(&state, grey);
    t->hues[i] = 45.0f * (float)i;
    t->classes[i] = i % (c->n_classes ? c->n_classes : 1);
    if (c->channels == 3) {
      cmivae_paint(grey, SIDE * SIDE, t->hues[i], rgb);
      ut_image_bytes_to_chw(rgb, SIDE * SIDE, 3, t->images + i * per);
    } else {
      /* A class is a band: the blob keeps only rows (class) mod 3. */
      for (int p = 0; p < SIDE * SIDE; p++) grey[p] = (p / SIDE) % 3 == t->classes[i] ? grey[p] : 0;
      ut_image_bytes_to_chw(grey, SIDE * SIDE, 1, t->images + i * per);
    }
  }
  for (int64_t k = 0; k < 8 * per; k++) t->images[k] = 2 * t->images[k] - 1;
  for (int i = 0; i < 8; i++) {
    cmivae_feature_row(c, t->hues[i], t->classes[i], t->features + i * F);
    cmivae_feature_row(c, t->hues[7 - i], t->classes[7 - i], t->fuse + i * F);
    t->fuse_classes[i] = t->classes[7 - i];
  }
}

static cmivae_batch as_batch(tiny_batch *t) {
  return (cmivae_batch){ .images = t->images, .features = t->features, .fuse_features = t->fuse,
                         .classes = t->classes, .fuse_classes = t->fuse_classes };
}

/* Trains `steps` steps on one batch; *first and *last get the losses of the first step and the
 * mean of the last five. */
static void train_steps(cmivae_model *m, tiny_batch *t, int steps, cmivae_losses *first, cmivae_losses *last) {
  cmivae_batch b = as_batch(t);
  *last = (cmivae_losses){ 0 };
  for (int s = 0; s < steps; s++) {
    cmivae_losses l;
    ck_assert_ut_ok(cmivae_train_step(m, &b, &l));
    if (s == 0) *first = l;
    if (s >= steps - 5) {
      last->total += l.total / 5;
      last->recon += l.recon / 5;
      last->feature += l.feature / 5;
    }
  }
}

/* Fused outputs of the batch's images with the reversed features, in [0, 1]. */
static void fused(cmivae_model *m, tiny_batch *t, float *out) {
  const cmivae_cfg *c = cmivae_config(m);
  int64_t per = (int64_t)c->channels * SIDE * SIDE;
  float unit[8 * 3 * SIDE * SIDE], z1[8 * 4];
  for (int64_t k = 0; k < 8 * per; k++) unit[k] = 0.5f * (t->images[k] + 1);
  ck_assert_ut_ok(cmivae_encode(m, unit, 8, z1));
  ck_assert_ut_ok(cmivae_generate(m, z1, t->fuse, 8, out));
}

START_TEST(hue_losses_fall_and_checkpoint_reproduces) {
  cmivae_cfg cfg = tiny_cfg(CMIVAE_FEATURE_HUE, 3, 0);
  cmivae_model *m = cmivae_new(test_runtime(), &cfg);
  ck_assert_ut_ptr(m);
  tiny_batch t;
  make_batch(&cfg, &t);
  cmivae_losses first, last;
  train_steps(m, &t, 80, &first, &last);
  ck_assert_msg(last.total < 0.7 * first.total, "total %g -> %g", first.total, last.total);
  ck_assert_msg(last.recon < 0.7 * first.recon, "recon %g -> %g", first.recon, last.recon);
  ck_assert_msg(last.feature < 0.5 * first.feature, "L_f2 %g -> %g", first.feature, last.feature);

  static float before[8 * 3 * SIDE * SIDE], after[8 * 3 * SIDE * SIDE];
  fused(m, &t, before);
  const char *path = test_tmp_path("cmivae-hue.safetensors");
  ck_assert_ut_ok(cmivae_save(m, path));
  cmivae_model *back = cmivae_new(test_runtime(), &cfg);
  ck_assert_ut_ptr(back);
  ck_assert_ut_ok(cmivae_load(back, path));
  fused(back, &t, after);
  ck_assert(!memcmp(before, after, sizeof before));
  /* A model of another configuration refuses the checkpoint, naming the field. */
  cmivae_cfg wider = cfg;
  wider.ch = 16;
  cmivae_model *other = cmivae_new(test_runtime(), &wider);
  ck_assert_int_eq(cmivae_load(other, path), UT_ERR_MISMATCH);
  ck_assert_msg(strstr(ut_last_error(), "ch = 8, not 16"), "%s", ut_last_error());
  cmivae_free(other);
  cmivae_free(back);
  cmivae_free(m);
}
END_TEST

START_TEST(class_feature_q_learns) {
  cmivae_cfg cfg = tiny_cfg(CMIVAE_FEATURE_CLASS, 1, 3);
  cmivae_model *m = cmivae_new(test_runtime(), &cfg);
  ck_assert_ut_ptr(m);
  tiny_batch t;
  make_batch(&cfg, &t);
  cmivae_losses first, last;
  train_steps(m, &t, 80, &first, &last);
  /* L_f1 starts near log 3 (times lambda3); q learns the classes of the real images and G learns
   * to draw x~'s class so that q reads it in the fused image. */
  ck_assert_msg(fabs(first.feature / cfg.w_f - log(3.0)) < 0.3, "first L_f1 %g", first.feature / cfg.w_f);
  ck_assert_msg(last.feature < 0.5 * first.feature, "L_f1 %g -> %g", first.feature, last.feature);
  ck_assert_msg(last.total < 0.7 * first.total, "total %g -> %g", first.total, last.total);
  cmivae_free(m);
}
END_TEST

START_TEST(bad_configurations_and_data) {
  cmivae_cfg c = tiny_cfg(CMIVAE_FEATURE_HUE, 1, 0);
  ck_assert_ptr_null(cmivae_new(test_runtime(), &c));
  ck_assert_msg(strstr(ut_last_error(), "colour images"), "%s", ut_last_error());
  c = tiny_cfg(CMIVAE_FEATURE_CLASS, 1, 1);
  ck_assert_int_eq(cmivae_cfg_check(&c), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), "2 to 4096 classes"), "%s", ut_last_error());
  c = tiny_cfg(CMIVAE_FEATURE_HUE, 3, 0);
  c.size = 18;
  ck_assert_int_eq(cmivae_cfg_check(&c), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), "size 18"), "%s", ut_last_error());

  /* A grey set has neither the channels nor the hue the hue feature needs. */
  char grey[1024];
  snprintf(grey, sizeof grey, "%s", test_tmp_path("cmivae-bad-grey.dat"));
  write_grey_set(grey, 4, 2);
  ut_dataset *ds = ut_dataset_open(grey);
  c = tiny_cfg(CMIVAE_FEATURE_HUE, 3, 0);
  ck_assert_int_eq(cmivae_check_data(ds, &c), UT_ERR_MISMATCH);
  ck_assert_msg(strstr(ut_last_error(), grey) && strstr(ut_last_error(), "data colorize"), "%s", ut_last_error());
  c = tiny_cfg(CMIVAE_FEATURE_CLASS, 1, 3);
  ck_assert_int_eq(cmivae_check_data(ds, &c), UT_ERR_MISMATCH);
  ck_assert_msg(strstr(ut_last_error(), "has 2 classes"), "%s", ut_last_error());
  ut_dataset_close(ds);

  /* A checkpoint of another model is not a CMI-VAE one. */
  cmivae_cfg read;
  ck_assert_int_ne(cmivae_read_config(test_runtime(), grey, &read), UT_OK);
  ck_assert_msg(strstr(ut_last_error(), grey), "%s", ut_last_error());
  cmivae_batch none = { 0 };
  c = tiny_cfg(CMIVAE_FEATURE_HUE, 3, 0);
  cmivae_model *m = cmivae_new(test_runtime(), &c);
  ck_assert_int_eq(cmivae_train_step(m, &none, NULL), UT_ERR_INVALID_ARGUMENT);
  cmivae_free(m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("cmivae");
  TCase *tc = tcase_create("cmivae");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, painted_hue_is_measured_exactly);
  tcase_add_test(tc, colorize_copies_with_exact_hues);
  tcase_add_test(tc, soft_hue_forward_and_gradient);
  tcase_add_test(tc, hue_losses_fall_and_checkpoint_reproduces);
  tcase_add_test(tc, class_feature_q_learns);
  tcase_add_test(tc, bad_configurations_and_data);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
