/* Batched matrix products, Gram matrices and batch slices: forward against plain C references on
 * the host, gradients against host references (every element) and central finite differences,
 * gradients of gradients by finite differences of the first gradient. Shapes include batch 1,
 * 1x1 spatial maps, channel counts that are no multiple of 4 and sizes that are no multiple of
 * any work-group size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

/* ---------------------------------------------------------------------------------------------
 * Batched matrix product.
 */
typedef struct {
  int64_t b, m, k, n;
  int ta, tb;
} bmm_case;

static ut_tensor *build_bmm(ut_graph *g, ut_tensor **in, void *ctx) {
  const bmm_case *c = ctx;
  return ut_batched_matmul(g, in[0], in[1], c->ta, c->tb);
}

static const bmm_case bmm_cases[] = {
  { 3, 5, 7, 6, 0, 0 }, { 3, 5, 7, 6, 1, 0 }, { 2, 4, 3, 9, 0, 1 }, { 2, 4, 3, 9, 1, 1 },
  { 1, 6, 5, 3, 0, 1 }, { 4, 1, 1, 1, 0, 0 }, { 2, 33, 17, 19, 0, 1 },
};
#define N_BMM ((int)(sizeof bmm_cases / sizeof bmm_cases[0]))

START_TEST(test_batched_matmul) {
  const bmm_case *c = &bmm_cases[_i];
  int64_t B = c->b, M = c->m, K = c->k, N = c->n;
  ut_shape sa = c->ta ? UT_SHAPE(B, K, M) : UT_SHAPE(B, M, K), sb = c->tb ? UT_SHAPE(B, N, K) : UT_SHAPE(B, K, N);
  float *a = gc_random_values(10 + (uint64_t)_i, B * M * K, -1, 1), *b = gc_random_values(11 + (uint64_t)_i, B * K * N, -1, 1);
  float *w = gc_random_values(12 + (uint64_t)_i, B * M * N, 0.1f, 1), *ref = malloc((size_t)(B * M * N) * sizeof *ref);
  float *ga = malloc((size_t)(B * M * K) * sizeof *ga), *gb = malloc((size_t)(B * K * N) * sizeof *gb);
  /* element (i, j) of op(A) and op(B) of batch entry e, and where it lives */
#define AI(e, i, kk) ((e) * M * K + (c->ta ? (kk) * M + (i) : (i) * K + (kk)))
#define BI(e, kk, j) ((e) * K * N + (c->tb ? (j) * K + (kk) : (kk) * N + (j)))
  for (int64_t e = 0; e < B; e++) {
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        double s = 0;
        for (int64_t kk = 0; kk < K; kk++) s += (double)a[AI(e, i, kk)] * b[BI(e, kk, j)];
        ref[(e * M + i) * N + j] = (float)s;
      }
    for (int64_t i = 0; i < M; i++)
      for (int64_t kk = 0; kk < K; kk++) {
        double s = 0; /* dA = W B^T */
        for (int64_t j = 0; j < N; j++) s += (double)w[(e * M + i) * N + j] * b[BI(e, kk, j)];
        ga[AI(e, i, kk)] = (float)s;
      }
    for (int64_t kk = 0; kk < K; kk++)
      for (int64_t j = 0; j < N; j++) {
        double s = 0; /* dB = A^T W */
        for (int64_t i = 0; i < M; i++) s += (double)a[AI(e, i, kk)] * w[(e * M + i) * N + j];
        gb[BI(e, kk, j)] = (float)s;
      }
  }
#undef AI
#undef BI
  char label[96];
  snprintf(label, sizeof label, "batched_matmul B%lld %lldx%lldx%lld ta %d tb %d", (long long)B, (long long)M, (long long)K,
           (long long)N, c->ta, c->tb);
  ut_shape shapes[2] = { sa, sb };
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 2, .shapes = shapes, .values = (const float *[]){ a, b },
                                  .build = build_bmm, .ctx = (void *)c, .weights = w, .expect = ref, .fwd_abs_tol = 1e-5,
                                  .expect_shape = UT_SHAPE(B, M, N), .expect_grad = (const float *[]){ ga, gb },
                                  .grad_abs_tol = 1e-5, .grad_rel_tol = 1e-5, .max_samples = 24 });
  if (_i < 4) {
    gc_second_order so = { build_bmm, (void *)c, 2 };
    gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 2, .shapes = shapes, .values = (const float *[]){ a, b },
                                    .build = gc_build_grad_of, .ctx = &so, .max_samples = 12 });
  }
  free(a), free(b), free(w), free(ref), free(ga), free(gb);
}
END_TEST

START_TEST(test_batched_matmul_errors) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *a = ut_input(g, "a", UT_F32, UT_SHAPE(2, 3, 4)), *b = ut_input(g, "b", UT_F32, UT_SHAPE(3, 4, 5));
  ck_assert_ptr_null(ut_batched_matmul(g, a, b, 0, 0));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ck_assert_msg(strstr(ut_last_error(), "[3, 4, 5]") != NULL, "%s", ut_last_error());
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  a = ut_input(g, "a", UT_F32, UT_SHAPE(2, 3, 4));
  ck_assert_ptr_null(ut_batched_matmul(g, a, a, 0, 0));
  ck_assert_msg(strstr(ut_last_error(), "inner") != NULL, "%s", ut_last_error());
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Gram matrices.
 */
static ut_tensor *build_gram(ut_graph *g, ut_tensor **in, void *ctx) {
  (void)ctx;
  return ut_gram(g, in[0]);
}

static const ut_shape gram_shapes[] = { UT_SHAPE(1, 3, 1, 1), UT_SHAPE(2, 5, 3, 7), UT_SHAPE(3, 6, 4, 4), UT_SHAPE(2, 3, 5),
                                        UT_SHAPE(1, 1, 2, 3) };
#define N_GRAM ((int)(sizeof gram_shapes / sizeof gram_shapes[0]))

START_TEST(test_gram) {
  ut_shape s = gram_shapes[_i];
  int64_t B = s.d[0], C = s.d[1], P = gc_numel(s) / (B * C), norm = C * P;
  float *x = gc_random_values(20 + (uint64_t)_i, gc_numel(s), -2, 2), *w = gc_random_values(21 + (uint64_t)_i, B * C * C, 0.1f, 1);
  float *ref = malloc((size_t)(B * C * C) * sizeof *ref), *gx = malloc((size_t)gc_numel(s) * sizeof *gx);
  for (int64_t b = 0; b < B; b++) {
    const float *f = x + b * C * P;
    for (int64_t i = 0; i < C; i++)
      for (int64_t j = 0; j < C; j++) {
        double acc = 0;
        for (int64_t q = 0; q < P; q++) acc += (double)f[i * P + q] * f[j * P + q];
        ref[(b * C + i) * C + j] = (float)(acc / (double)norm);
      }
    /* dF[i, q] = sum_j (W[i, j] + W[j, i]) F[j, q] / norm */
    const float *wb = w + b * C * C;
    for (int64_t i = 0; i < C; i++)
      for (int64_t q = 0; q < P; q++) {
        double acc = 0;
        for (int64_t j = 0; j < C; j++) acc += ((double)wb[i * C + j] + wb[j * C + i]) * f[j * P + q];
        gx[b * C * P + i * P + q] = (float)(acc / (double)norm);
      }
  }
  char label[96], sh[64];
  snprintf(label, sizeof label, "gram %s", ut_shape_str(s, sh, sizeof sh));
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &s, .values = (const float *[]){ x },
                                  .build = build_gram, .weights = w, .expect = ref, .fwd_abs_tol = 1e-6,
                                  .expect_shape = UT_SHAPE(B, C, C), .expect_grad = (const float *[]){ gx },
                                  .grad_abs_tol = 1e-6, .grad_rel_tol = 1e-5, .max_samples = 32 });
  if (_i == 1 || _i == 3) {
    gc_second_order so = { build_gram, NULL, 1 };
    gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &s, .values = (const float *[]){ x },
                                    .build = gc_build_grad_of, .ctx = &so, .max_samples = 16 });
  }
  free(x), free(w), free(ref), free(gx);
}
END_TEST

START_TEST(test_gram_errors) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(ut_gram(g, ut_input(g, "v", UT_F32, UT_SHAPE(4, 9))));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ck_assert_msg(strstr(ut_last_error(), "gram") && strstr(ut_last_error(), "[4, 9]"), "%s", ut_last_error());
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Batch slices.
 */
typedef struct {
  ut_shape s;
  int64_t start, count;
} slice_case;

static ut_tensor *build_slice(ut_graph *g, ut_tensor **in, void *ctx) {
  const slice_case *c = ctx;
  return ut_slice_batch(g, in[0], c->start, c->count);
}

static const slice_case slice_cases[] = {
  { UT_SHAPE(4, 3, 5, 7), 1, 2 }, { UT_SHAPE(2, 3, 1, 1), 1, 1 }, { UT_SHAPE(5, 13), 0, 3 },
  { UT_SHAPE(7), 6, 1 },          { UT_SHAPE(3, 2, 65), 0, 1 },
};
#define N_SLICE ((int)(sizeof slice_cases / sizeof slice_cases[0]))

START_TEST(test_slice_batch) {
  const slice_case *c = &slice_cases[_i];
  int64_t n = gc_numel(c->s), row = n / c->s.d[0], no = row * c->count;
  ut_shape os = c->s;
  os.d[0] = c->count;
  float *x = gc_random_values(30 + (uint64_t)_i, n, -1, 1), *w = gc_random_values(31 + (uint64_t)_i, no, 0.1f, 1);
  float *ref = malloc((size_t)no * sizeof *ref), *gx = calloc((size_t)n, sizeof *gx);
  for (int64_t i = 0; i < no; i++) {
    ref[i] = x[c->start * row + i];
    gx[c->start * row + i] = w[i];
  }
  char label[96], sh[64];
  snprintf(label, sizeof label, "slice_batch %s [%lld, +%lld)", ut_shape_str(c->s, sh, sizeof sh), (long long)c->start,
           (long long)c->count);
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &c->s, .values = (const float *[]){ x },
                                  .build = build_slice, .ctx = (void *)c, .weights = w, .expect = ref, .fwd_abs_tol = 1e-30,
                                  .fwd_rel_tol = 1e-30, .expect_shape = os, .expect_grad = (const float *[]){ gx },
                                  .grad_abs_tol = 1e-30, .grad_rel_tol = 1e-30, .max_samples = 24 });
  gc_second_order so = { build_slice, (void *)c, 1 };
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &c->s, .values = (const float *[]){ x },
                                  .build = gc_build_grad_of, .ctx = &so, .max_samples = 12 });
  free(x), free(w), free(ref), free(gx);
}
END_TEST

START_TEST(test_slice_batch_errors) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(2, 3, 4, 4));
  ck_assert_ptr_eq(ut_slice_batch(g, x, 0, 2), x);
  ck_assert_ptr_null(ut_slice_batch(g, x, 1, 2));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ck_assert_msg(strstr(ut_last_error(), "[1, 3)") && strstr(ut_last_error(), "[2, 3, 4, 4]"), "%s", ut_last_error());
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

static Suite *gram_suite(void) {
  Suite *s = suite_create("ops_gram");
  TCase *tc = tcase_create("batched_matmul");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_batched_matmul, 0, N_BMM);
  tcase_add_test(tc, test_batched_matmul_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("gram");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_gram, 0, N_GRAM);
  tcase_add_test(tc, test_gram_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("slice_batch");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_slice_batch, 0, N_SLICE);
  tcase_add_test(tc, test_slice_batch_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(gram_suite()); }
