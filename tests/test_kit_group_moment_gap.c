/* kit_group_moment_gap (kit_losses.h), the invariance term LORD and DMIT share: its value
 * against a plain C computation on the host, with groups of unequal size and a group absent
 * from the batch, its gradient against the closed form and central finite differences, zero
 * where every group has the batch's moments, and bad shapes refused by name. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "kit_losses.h"

enum { B = 7, D = 5, K = 4 };

/* Rows' groups: 3, 2 and 2 rows of groups 0, 2 and 3; group 1 has none. */
static const int group_of[B] = { 0, 2, 0, 3, 2, 0, 3 };

static ut_tensor *build_gap(ut_graph *g, ut_tensor **in, void *ctx) {
  (void)ctx;
  float onehot[B * K] = { 0 };
  for (int i = 0; i < B; i++) onehot[i * K + group_of[i]] = 1;
  return kit_group_moment_gap(g, in[0], ut_constant(g, UT_SHAPE(B, K), onehot));
}

/* The moments' per-dimension group means and batch means of x (power 1) or x^2 (power 2). */
static void means(const float *x, int power, int k, double group[K], double *all) {
  int count[K] = { 0 };
  *all = 0;
  for (int c = 0; c < K; c++) group[c] = 0;
  for (int i = 0; i < B; i++) {
    double v = power == 1 ? x[i * D + k] : (double)x[i * D + k] * x[i * D + k];
    group[group_of[i]] += v;
    count[group_of[i]]++;
    *all += v;
  }
  for (int c = 0; c < K; c++) group[c] = count[c] ? group[c] / count[c] : 0;
  *all /= B;
}

/* The gap as kit_losses.h defines it, and its gradient for loss = w * gap: per element
 * 2 w / (B D) ((m_g - m) + 2 x (s_g - s)), m and s the first and second moments (the group
 * weights' sum over groups of n_g (m_g - m) is zero, so only the row's own group remains). */
static double host_gap(const float *x, float w, float *grad) {
  double total = 0;
  for (int k = 0; k < D; k++) {
    double m1[K], a1, m2[K], a2;
    means(x, 1, k, m1, &a1);
    means(x, 2, k, m2, &a2);
    for (int i = 0; i < B; i++) {
      double g1 = m1[group_of[i]] - a1, g2 = m2[group_of[i]] - a2;
      total += g1 * g1 + g2 * g2;
      if (grad) grad[i * D + k] = (float)(2.0 * w / (B * D) * (g1 + 2.0 * x[i * D + k] * g2));
    }
  }
  return total / (B * D);
}

START_TEST(value_and_gradient) {
  float *x = gc_random_values(11, B * D, -2, 2), grad[B * D];
  const float w = 0.8f;
  float expect = (float)host_gap(x, w, grad);
  ck_assert_msg(expect > 1e-3f, "random codes with a gap of %g test nothing", (double)expect);
  gc_assert_gradcheck(&(gc_case){ .label = "group_moment_gap", .n_inputs = 1, .shapes = (ut_shape[]){ UT_SHAPE(B, D) },
                                  .values = (const float *[]){ x }, .build = build_gap, .weights = &w,
                                  .expect = &expect, .fwd_rel_tol = 1e-5, .expect_shape = UT_SHAPE(1),
                                  .expect_grad = (const float *[]){ grad }, .grad_rel_tol = 1e-4, .grad_abs_tol = 1e-6,
                                  .h = 1e-2, .max_samples = B * D });
  free(x);
}
END_TEST

/* Per dimension, group 0's rows hold -t, 0, t and groups 2 and 3 -u, u with u = t sqrt(2/3):
 * every group has mean 0 and second moment 2 t^2 / 3, so the gap is 0 (to rounding), although
 * no two groups hold the same values. */
START_TEST(zero_when_groups_share_their_moments) {
  float x[B * D];
  int seen[K] = { 0 };
  for (int i = 0; i < B; i++) {
    int at = seen[group_of[i]]++;
    for (int k = 0; k < D; k++) {
      float t = 0.5f + (float)k, u = t * sqrtf(2.0f / 3.0f);
      x[i * D + k] = group_of[i] == 0 ? t * (float)(at - 1) : (at ? u : -u) * (group_of[i] == 2 ? 1.0f : -1.0f);
    }
  }
  ck_assert_double_eq_tol(host_gap(x, 1, NULL), 0, 1e-10);
  float zero = 0;
  gc_assert_forward(&(gc_case){ .label = "group_moment_gap of groups with equal moments", .n_inputs = 1,
                                .shapes = (ut_shape[]){ UT_SHAPE(B, D) }, .values = (const float *[]){ x },
                                .build = build_gap, .expect = &zero, .fwd_abs_tol = 1e-9 });
}
END_TEST

START_TEST(bad_shapes_are_refused) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "codes", UT_F32, UT_SHAPE(B, D));
  ck_assert_ptr_null(kit_group_moment_gap(g, x, ut_input(g, "groups", UT_F32, UT_SHAPE(B + 1, K))));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ck_assert_msg(strstr(ut_last_error(), "group_moment_gap") && strstr(ut_last_error(), "codes"), "%s", ut_last_error());
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(kit_group_moment_gap(g, ut_input(g, "codes", UT_F32, UT_SHAPE(B, D, 2)),
                                          ut_input(g, "groups", UT_F32, UT_SHAPE(B, K))));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

int main(void) {
  Suite *s = suite_create("kit_group_moment_gap");
  TCase *tc = tcase_create("kit_group_moment_gap");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, value_and_gradient);
  tcase_add_test(tc, zero_when_groups_share_their_moments);
  tcase_add_test(tc, bad_shapes_are_refused);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
