/* The evaluation classifiers. Probes (models/probe.h): both reach nearly perfect accuracy
 * where a linear rule decides the label, stay at chance when features and labels are
 * independent, report the majority baseline and counts as documented, repeat themselves
 * exactly from a seed, and reject labels out of range. The image classifier
 * (models/image_classifier.h) learns to tell horizontal from vertical stripes and bright from
 * dark images, generalises to fresh images, and repeats itself exactly from a seed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_classifier.h"
#include "kit_random.h"
#include "probe.h"
#include "test_support.h"

START_TEST(test_permutation) {
  enum { N = 37 };
  int64_t a[N], b[N], seen[N] = { 0 };
  kit_permutation(5, N, a);
  kit_permutation(5, N, b);
  ck_assert_msg(memcmp(a, b, sizeof a) == 0, "the same seed must give the same permutation");
  int64_t fixed = 0;
  for (int i = 0; i < N; i++) {
    ck_assert(a[i] >= 0 && a[i] < N);
    seen[a[i]]++;
    fixed += a[i] == i;
  }
  for (int i = 0; i < N; i++) ck_assert_msg(seen[i] == 1, "%d appears %lld times", i, (long long)seen[i]);
  ck_assert_msg(fixed < N / 2, "a shuffle leaves most elements in place (%lld of %d)", (long long)fixed, N);
  kit_permutation(6, N, b);
  ck_assert_msg(memcmp(a, b, sizeof a) != 0, "another seed must give another permutation");
}
END_TEST

/* Labels decided by argmax(W x) over K classes, keeping only points whose top two scores
 * differ by at least `margin`: separable by a linear rule with room to spare. The features
 * get an offset and a scale per dimension so the probe's standardization has work to do. */
static void make_separable(int64_t n, int d, int k, float *x, int32_t *y) {
  uint64_t st = 99;
  float *w = malloc((size_t)(k * d) * sizeof(float));
  test_fill_uniform(&st, w, k * d, -1, 1);
  for (int64_t i = 0; i < n;) {
    float *row = x + i * d;
    test_fill_uniform(&st, row, d, -1, 1);
    double best = -1e30, second = -1e30;
    int arg = 0;
    for (int c = 0; c < k; c++) {
      double s = 0;
      for (int j = 0; j < d; j++) s += (double)w[c * d + j] * row[j];
      if (s > best) {
        second = best;
        best = s;
        arg = c;
      } else if (s > second) {
        second = s;
      }
    }
    if (best - second < 0.3) continue;
    for (int j = 0; j < d; j++) row[j] = row[j] * (float)(1 + j) + 3.0f * (float)j;
    y[i++] = arg;
  }
  free(w);
}

START_TEST(test_probe_separable) {
  enum { N = 1000, D = 12, K = 3 };
  static float x[N * D];
  static int32_t y[N];
  make_separable(N, D, K, x, y);
  probe_result r, again;
  ck_assert_ut_ok(probe_accuracy(test_runtime(), x, N, D, y, K, 3, &r));
  printf("separable: linear %.3f, mlp %.3f, chance %.3f (losses %.4f, %.4f)\n", r.linear_accuracy, r.mlp_accuracy,
         r.chance, r.linear_loss, r.mlp_loss);
  ck_assert_int_eq(r.n_train, 800);
  ck_assert_int_eq(r.n_test, 200);
  ck_assert_int_eq(r.n_classes, K);
  /* The labels are a linear function of the features with a margin, so logistic regression
   * can be exact; 0.95 leaves room for a few test points near a boundary that the 800
   * training points do not pin down. The MLP can represent the same rule. */
  ck_assert_msg(r.linear_accuracy >= 0.95, "logistic regression: %.3f", r.linear_accuracy);
  ck_assert_msg(r.mlp_accuracy >= 0.95, "MLP: %.3f", r.mlp_accuracy);
  ck_assert_msg(r.chance < 0.6, "three classes of similar size: majority share %.3f", r.chance);

  /* Same seed, same device: the same numbers bit for bit. */
  ck_assert_ut_ok(probe_accuracy(test_runtime(), x, N, D, y, K, 3, &again));
  ck_assert_msg(r.linear_accuracy == again.linear_accuracy && r.mlp_accuracy == again.mlp_accuracy &&
                    r.linear_loss == again.linear_loss && r.mlp_loss == again.mlp_loss && r.chance == again.chance,
                "a second run with the same seed differs: %.6f / %.6f vs %.6f / %.6f",
                r.linear_accuracy, r.mlp_accuracy, again.linear_accuracy, again.mlp_accuracy);
}
END_TEST

START_TEST(test_probe_noise_is_chance) {
  enum { N = 1000, D = 16, K = 4 };
  static float x[N * D];
  static int32_t y[N];
  uint64_t st = 7;
  test_fill_uniform(&st, x, N * D, -1, 1);
  for (int i = 0; i < N; i++) {
    float u;
    test_fill_uniform(&st, &u, 1, 0, K);
    y[i] = (int32_t)u < K ? (int32_t)u : K - 1;
  }
  probe_result r;
  ck_assert_ut_ok(probe_accuracy(test_runtime(), x, N, D, y, K, 11, &r));
  printf("noise: linear %.3f, mlp %.3f, chance %.3f\n", r.linear_accuracy, r.mlp_accuracy, r.chance);

  /* Host check of the documented chance level: the majority class's share of the test part,
   * which is the samples the seed's permutation puts after the first 80%. */
  int64_t perm[N], counts[K] = { 0 }, most = 0;
  kit_permutation(11, N, perm);
  for (int i = 800; i < N; i++)
    if (++counts[y[perm[i]]] > most) most = counts[y[perm[i]]];
  ck_assert_msg(fabs(r.chance - (double)most / 200.0) < 1e-12, "chance %.4f, host %.4f", r.chance, (double)most / 200.0);

  /* Independent labels: the expected test accuracy is 1/4 whatever was learned, with a
   * binomial standard deviation of sqrt(0.25 * 0.75 / 200) = 0.031 over 200 test points.
   * 0.40 is almost 5 deviations up; a probe that leaked test labels or scored the training
   * part (where the MLP can memorise) would pass it. */
  ck_assert_msg(r.linear_accuracy < 0.40 && r.linear_accuracy > 0.10, "logistic regression on noise: %.3f",
                r.linear_accuracy);
  ck_assert_msg(r.mlp_accuracy < 0.40 && r.mlp_accuracy > 0.10, "MLP on noise: %.3f", r.mlp_accuracy);
  ck_assert_msg(r.chance >= 0.25 && r.chance < 0.40, "majority share %.3f", r.chance);
}
END_TEST

/* A stratified split holds every label in both parts in the same proportion: on balanced labels
 * the test part's majority share is exactly 1 / K, the chance a label-free feature scores. */
START_TEST(test_probe_stratified_split) {
  enum { N = 100, D = 2, K = 5 };
  float x[N * D];
  int32_t y[N];
  uint64_t st = 5;
  test_fill_uniform(&st, x, N * D, -1, 1);
  for (int i = 0; i < N; i++) y[i] = i % K;
  probe_cfg cfg = probe_default_cfg();
  cfg.stratified = 1;
  cfg.min_steps = 5;
  probe_result r;
  ck_assert_ut_ok(probe_accuracy_cfg(test_runtime(), x, N, D, y, K, 3, &cfg, &r));
  ck_assert_int_eq(r.n_train, 80);
  ck_assert_int_eq(r.n_test, 20);
  ck_assert_double_eq_tol(r.chance, 1.0 / K, 1e-12);
}
END_TEST

START_TEST(test_probe_errors) {
  float x[6] = { 0, 1, 2, 3, 4, 5 };
  int32_t y[6] = { 0, 1, 0, 1, 2, 0 };
  probe_result r;
  ck_assert_int_eq(probe_accuracy(test_runtime(), x, 6, 1, y, 2, 1, &r), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), "sample 4") != NULL, "the error names the sample: %s", ut_last_error());
  ck_assert_int_eq(probe_accuracy(test_runtime(), x, 1, 1, y, 2, 1, &r), UT_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(probe_accuracy(test_runtime(), NULL, 6, 1, y, 3, 1, &r), UT_ERR_INVALID_ARGUMENT);
  probe_cfg bad = probe_default_cfg();
  bad.train_share = 1.0;
  ck_assert_int_eq(probe_accuracy_cfg(test_runtime(), x, 6, 1, y, 3, 1, &bad, &r), UT_ERR_INVALID_ARGUMENT);

  /* A tiny problem (two test samples, a constant feature, batch larger than the
   * training part) runs and gives an accuracy of 0 or 1. */
  float c[6] = { 1, 1, 1, 1, 1, 1 };
  probe_cfg tiny = probe_default_cfg();
  tiny.epochs = 2;
  tiny.min_steps = 0;
  ck_assert_ut_ok(probe_accuracy_cfg(test_runtime(), c, 6, 1, y, 3, 1, &tiny, &r));
  ck_assert_int_eq(r.n_train, 4);
  ck_assert_int_eq(r.n_test, 2);
  ck_assert(r.linear_accuracy >= 0 && r.linear_accuracy <= 1);
  ck_assert(r.chance >= 0.5);
}
END_TEST

/* Stripes one pixel or more wide across an RGB image: horizontal for label 0, vertical for
 * label 1, each image with its own period (2 to 4), phase and pair of colours, so only the
 * orientation tells the classes apart. */
static void make_stripes(uint64_t *st, int64_t n, int64_t h, int64_t w, float *img, int32_t *label) {
  for (int64_t i = 0; i < n; i++) {
    float r[9];
    test_fill_uniform(st, r, 9, 0, 1);
    int vertical = (int)(i % 2);
    int period = 2 + (int)(r[0] * 3) % 3, phase = (int)(r[1] * (float)period);
    for (int ch = 0; ch < 3; ch++)
      for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
          int64_t t = (vertical ? x : y) + phase;
          int on = (t % period) < (period + 1) / 2;
          float lo = 0.3f * r[2 + ch], hi = 0.6f + 0.4f * r[5 + ch];
          img[((i * 3 + ch) * h + y) * w + x] = on ? hi : lo;
        }
    label[i] = vertical;
  }
}

START_TEST(test_image_classifier_stripes) {
  enum { N = 96, H = 12, W = 12, M = 40 };
  static float img[N * 3 * H * W], fresh[M * 3 * H * W];
  static int32_t y[N], fresh_y[M], pred[M], pred2[M];
  uint64_t st = 21;
  make_stripes(&st, N, H, W, img, y);
  make_stripes(&st, M, H, W, fresh, fresh_y);
  image_classifier_cfg cfg = image_classifier_default_cfg();
  cfg.width = 8;
  cfg.batch = 16;
  cfg.lr = 3e-3f;
  cfg.heldout_share = 0.25;
  image_classifier *clf = NULL, *clf2 = NULL;
  ck_assert_ut_ok(image_classifier_train_cfg(test_runtime(), img, N, 3, H, W, y, 2, 5, 25, &cfg, &clf));
  const image_classifier_report *r = image_classifier_get_report(clf);
  printf("stripes: loss %.4f, train %.3f, held out %.3f (%lld / %lld)\n", r->final_loss, r->train_accuracy,
         r->heldout_accuracy, (long long)r->n_train, (long long)r->n_heldout);
  ck_assert_int_eq(r->n_train, 72);
  ck_assert_int_eq(r->n_heldout, 24);
  ck_assert_int_eq(r->epochs, 25);
  ck_assert_int_eq(image_classifier_classes(clf), 2);
  /* Orientation is what a 3x3 filter sees first; an untrained net is at 0.5 and a net that
   * only learned colours or periods could not beat it, since those are drawn alike. */
  ck_assert_msg(r->final_loss < 0.3, "training cross-entropy %.4f (ln 2 = 0.693 at chance)", r->final_loss);
  ck_assert_msg(r->train_accuracy >= 0.95, "training accuracy %.3f", r->train_accuracy);
  ck_assert_msg(r->heldout_accuracy >= 0.9, "held-out accuracy %.3f", r->heldout_accuracy);

  /* Fresh images (M not a multiple of the batch, so the last chunk is padded). */
  ck_assert_ut_ok(image_classifier_predict(clf, fresh, M, pred));
  int right = 0;
  for (int i = 0; i < M; i++) right += pred[i] == fresh_y[i];
  ck_assert_msg(right >= M * 9 / 10, "%d of %d fresh images right", right, M);

  /* The same seed trains the same classifier. */
  ck_assert_ut_ok(image_classifier_train_cfg(test_runtime(), img, N, 3, H, W, y, 2, 5, 25, &cfg, &clf2));
  ck_assert_ut_ok(image_classifier_predict(clf2, fresh, M, pred2));
  const image_classifier_report *r2 = image_classifier_get_report(clf2);
  ck_assert_msg(r->final_loss == r2->final_loss && r->train_accuracy == r2->train_accuracy &&
                    r->heldout_accuracy == r2->heldout_accuracy,
                "a second training differs: loss %.9g vs %.9g", r->final_loss, r2->final_loss);
  ck_assert_msg(memcmp(pred, pred2, sizeof pred) == 0, "a second training predicts differently");
  image_classifier_free(clf);
  image_classifier_free(clf2);
}
END_TEST

START_TEST(test_image_classifier_odd_shapes) {
  /* One channel, 7x5 pixels (3x3 then 2x2 then 1x1 after the strided convolutions), a batch
   * larger than half the data and nothing held out. */
  enum { N = 10, H = 7, W = 5 };
  float img[N * H * W];
  int32_t y[N], pred[N];
  uint64_t st = 3;
  test_fill_uniform(&st, img, N * H * W, -0.1f, 0.1f);
  for (int i = 0; i < N; i++) {
    y[i] = i % 2;
    for (int p = 0; p < H * W; p++) img[i * H * W + p] += y[i] ? 0.8f : 0.2f;
  }
  image_classifier_cfg cfg = image_classifier_default_cfg();
  cfg.width = 4;
  cfg.batch = 6;
  cfg.lr = 1e-2f;
  cfg.heldout_share = 0;
  image_classifier *clf = NULL;
  ck_assert_ut_ok(image_classifier_train_cfg(test_runtime(), img, N, 1, H, W, y, 2, 9, 40, &cfg, &clf));
  const image_classifier_report *r = image_classifier_get_report(clf);
  ck_assert_int_eq(r->n_train, N);
  ck_assert_int_eq(r->n_heldout, 0);
  ck_assert_msg(isnan(r->heldout_accuracy), "nothing held out, yet an accuracy of %g", r->heldout_accuracy);
  ck_assert_msg(r->train_accuracy == 1.0, "bright versus dark: training accuracy %.3f", r->train_accuracy);
  ck_assert_ut_ok(image_classifier_predict(clf, img, N, pred));
  for (int i = 0; i < N; i++) ck_assert_int_eq(pred[i], y[i]);
  image_classifier_free(clf);

  /* Bad input is refused, naming what is wrong, and leaves *out NULL. */
  y[3] = 2;
  clf = (image_classifier *)&cfg; /* not NULL, to see it reset */
  ck_assert_int_eq(image_classifier_train(test_runtime(), img, N, 1, H, W, y, 2, 9, 1, &clf), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), "image 3") != NULL, "the error names the image: %s", ut_last_error());
  ck_assert_ptr_null(clf);
}
END_TEST

static Suite *probe_suite(void) {
  Suite *s = suite_create("probe");
  TCase *tc = tcase_create("probe");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_permutation);
  tcase_add_test(tc, test_probe_separable);
  tcase_add_test(tc, test_probe_noise_is_chance);
  tcase_add_test(tc, test_probe_stratified_split);
  tcase_add_test(tc, test_probe_errors);
  suite_add_tcase(s, tc);
  TCase *ic = tcase_create("image_classifier");
  tcase_set_timeout(ic, 300);
  tcase_add_test(ic, test_image_classifier_stripes);
  tcase_add_test(ic, test_image_classifier_odd_shapes);
  suite_add_tcase(s, ic);
  return s;
}

int main(void) { return test_run_suite(probe_suite()); }
