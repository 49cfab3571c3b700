/* The evaluations' class judge (models/image_judge.h): the split holds out the first fifth of
 * each class in the given order, at least one of a class with two or more and none of a class
 * with one; the judge (with the flattened head) learns classes an image shows and passes the
 * guard, and is refused, with the accuracy it reached, on classes the images do not show. */
#include <stdlib.h>
#include <string.h>

#include "image_judge.h"
#include "cli_runner.h"
#include "test_support.h"

START_TEST(split_by_class) {
  /* Class 0: 10 images, class 1: 4, class 2: 1, class 3: none. */
  const int32_t labels[] = { 0, 1, 0, 0, 2, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0 };
  enum { N = sizeof labels / sizeof labels[0] };
  int64_t train[N], held[N], n_train = -1, n_held = -1;
  ck_assert_ut_ok(image_judge_split(labels, N, 4, train, &n_train, held, &n_held));
  ck_assert_int_eq(n_held, 3);  /* two of class 0's ten, one of class 1's four, none of class 2's one */
  ck_assert_int_eq(n_train, 12);
  const int64_t want_held[] = { 0, 1, 2 }; /* the first ones of each class, in order */
  ck_assert_mem_eq(held, want_held, sizeof want_held);
  const int64_t want_train[] = { 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14 };
  ck_assert_mem_eq(train, want_train, sizeof want_train);
}
END_TEST

/* n 8x8 grey images: class k (of 3) is a bright square at one of three places, with noise. */
static void squares(int64_t n, float *x, int32_t *y, uint64_t seed) {
  uint64_t st = seed;
  test_fill_uniform(&st, x, n * 64, 0.0f, 0.3f);
  for (int64_t i = 0; i < n; i++) {
    int k = (int)(i % 3), at = k * 2;
    for (int r = at; r < at + 3; r++)
      for (int c = at; c < at + 3; c++) x[i * 64 + r * 8 + c] = 1.0f;
    y[i] = k;
  }
}

START_TEST(guard_passes_and_refuses) {
  enum { N = 60 };
  float x[N * 64];
  int32_t y[N];
  squares(N, x, y, 3);
  int64_t train[N], held[N], n_train, n_held;
  ck_assert_ut_ok(image_judge_split(y, N, 3, train, &n_train, held, &n_held));
  float xt[N * 64], xh[N * 64];
  int32_t yt[N], yh[N];
  for (int64_t k = 0; k < n_train; k++) memcpy(xt + k * 64, x + train[k] * 64, 64 * sizeof(float)), yt[k] = y[train[k]];
  for (int64_t k = 0; k < n_held; k++) memcpy(xh + k * 64, x + held[k] * 64, 64 * sizeof(float)), yh[k] = y[held[k]];
  image_judge_cfg cfg = { .epochs = 1, .min_accuracy = 0.9, .width = 8, .flatten = 1, .seed = 2 };
  image_judge_report rep = { 0 };
  image_classifier *judge = NULL;
  ck_assert_ut_ok(image_judge_train(test_runtime(), xt, n_train, 1, 8, 8, yt, 3, &cfg, &judge, &rep));
  ck_assert_int_eq(rep.n_train, n_train);
  ck_assert_int_ge(rep.epochs * ((n_train + 31) / 32), IMAGE_JUDGE_MIN_STEPS); /* one epoch asked, 600 steps given */
  ck_assert_ut_ok(image_judge_check(judge, xh, n_held, yh, &cfg, "squares", &rep));
  ck_assert_int_eq(rep.n_heldout, 12);
  ck_assert_msg(rep.heldout_accuracy >= 0.9, "held-out accuracy %.3f", rep.heldout_accuracy);
  image_classifier_free(judge);

  /* The same images labelled (i / 3) % 3, which the squares (i % 3) do not show. */
  for (int64_t k = 0; k < n_train; k++) yt[k] = (int32_t)(train[k] / 3 % 3);
  for (int64_t k = 0; k < n_held; k++) yh[k] = (int32_t)(held[k] / 3 % 3);
  ck_assert_ut_ok(image_judge_train(test_runtime(), xt, n_train, 1, 8, 8, yt, 3, &cfg, &judge, &rep));
  ck_assert_int_eq(image_judge_check(judge, xh, n_held, yh, &cfg, "unshown.dat", &rep), UT_ERR_STATE);
  ck_assert_msg(rep.heldout_accuracy < 0.9, "held-out accuracy %.3f on labels the images do not show",
                rep.heldout_accuracy);
  assert_contains(ut_last_error(), "unshown.dat");
  assert_contains(ut_last_error(), "the class judge recognises only");
  image_classifier_free(judge);

  /* Bad settings are refused before any training. */
  cfg.min_accuracy = 1.5;
  ck_assert_int_eq(image_judge_train(test_runtime(), xt, n_train, 1, 8, 8, yt, 3, &cfg, &judge, &rep),
                   UT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_null(judge);
}
END_TEST

int main(void) {
  Suite *s = suite_create("image_judge");
  TCase *tc = tcase_create("image_judge");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, split_by_class);
  tcase_add_test(tc, guard_passes_and_refuses);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
