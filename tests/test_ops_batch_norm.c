/* Batch normalization in training and evaluation mode: the forward result against a plain C
 * reference of nn.BatchNorm's formulas (double precision on the host), the gradients of x, the
 * weight and the bias against the textbook closed form and central finite differences, second
 * order, the running averages after two runs against PyTorch's update rule, and the errors.
 * Shapes: [B, C, H, W] with C not a multiple of 4, batch 1, 1x1 maps, [B, C, L] and [B, F]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "kit_layers.h"

#define EPS 1e-5

/* y of nn.BatchNorm over x of shape s (channels on dimension 1), with the batch statistics
 * (training; their biased variance) or the given running ones (eval); w, b may be NULL.
 * mean/var get the batch statistics when not NULL. Optionally dx for loss = sum(y * dy). */
static void bn_reference(ut_shape s, const float *x, const float *w, const float *b, const float *rm, const float *rv, int eval,
                         float *y, double *mean, double *var, const float *dy, float *dx) {
  int64_t B = s.d[0], C = s.d[1], P = gc_numel(s) / (B * C), n = B * P;
  for (int64_t c = 0; c < C; c++) {
    double m = 0, v = 0;
    for (int64_t bi = 0; bi < B; bi++)
      for (int64_t q = 0; q < P; q++) m += x[(bi * C + c) * P + q];
    m /= (double)n;
    for (int64_t bi = 0; bi < B; bi++)
      for (int64_t q = 0; q < P; q++) v += pow(x[(bi * C + c) * P + q] - m, 2);
    v /= (double)n;
    if (mean) mean[c] = m;
    if (var) var[c] = v;
    double um = eval ? rm[c] : m, uv = eval ? rv[c] : v, sd = sqrt(uv + EPS);
    double wc = w ? w[c] : 1, bc = b ? b[c] : 0;
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int64_t bi = 0; bi < B; bi++)
      for (int64_t q = 0; q < P; q++) {
        int64_t i = (bi * C + c) * P + q;
        double xhat = (x[i] - um) / sd;
        y[i] = (float)(xhat * wc + bc);
        if (dy) sum_dy += dy[i], sum_dy_xhat += dy[i] * xhat;
      }
    /* dx = w / sd (dy - mean(dy) - xhat mean(dy xhat)) in training; w / sd dy in evaluation */
    for (int64_t bi = 0; dx && bi < B; bi++)
      for (int64_t q = 0; q < P; q++) {
        int64_t i = (bi * C + c) * P + q;
        double xhat = (x[i] - um) / sd;
        dx[i] = (float)(eval ? wc / sd * dy[i] : wc / sd * (dy[i] - sum_dy / n - xhat * sum_dy_xhat / n));
      }
  }
}

typedef struct {
  const char *prefix;
  kit_batch_norm_cfg cfg;
} bn_ctx;

static ut_tensor *build_bn(ut_graph *g, ut_tensor **in, void *ctx) {
  const bn_ctx *c = ctx;
  return kit_batch_norm(g, in[0], c->prefix, &c->cfg);
}

static void store_write(ut_store *st, const char *name, int64_t c, ut_init init, const float *v) {
  ut_store_tensor *t = ut_store_tensor_get(st, name, UT_SHAPE(c), init);
  ck_assert_ut_ptr(t);
  ck_assert_ut_ok(ut_store_tensor_write(st, t, v));
}

static const ut_shape bn_shapes[] = { UT_SHAPE(4, 3, 5, 7), UT_SHAPE(1, 6, 3, 3), UT_SHAPE(3, 5, 1, 1), UT_SHAPE(2, 3, 4),
                                      UT_SHAPE(5, 7), UT_SHAPE(2, 1, 1, 1) };
#define N_BN ((int)(sizeof bn_shapes / sizeof bn_shapes[0]))

/* Each shape in both modes (loop index / N_BN: 0 training, 1 evaluation), with a random affine
 * part and random running statistics; gradients of x, w and b. */
START_TEST(test_batch_norm) {
  int eval = _i / N_BN;
  ut_shape s = bn_shapes[_i % N_BN];
  int64_t n = gc_numel(s), C = s.d[1];
  float *x = gc_random_values(10 + (uint64_t)_i, n, -2, 3), *dy = gc_random_values(11 + (uint64_t)_i, n, 0.1f, 1);
  float *w = gc_random_values(12, C, 0.5f, 1.5f), *b = gc_random_values(13, C, -1, 1);
  float *rm = gc_random_values(14, C, -0.5f, 0.5f), *rv = gc_random_values(15, C, 0.5f, 2);
  float *y = malloc((size_t)n * sizeof *y), *dx = malloc((size_t)n * sizeof *dx);
  bn_reference(s, x, w, b, rm, rv, eval, y, NULL, NULL, dy, dx);

  ut_store *st = ut_store_new(test_runtime(), 3);
  store_write(st, "bn.w", C, (ut_init){ UT_INIT_ZERO, 0, 0 }, w);
  store_write(st, "bn.b", C, (ut_init){ UT_INIT_ZERO, 0, 0 }, b);
  store_write(st, "bn.running_mean", C, (ut_init){ UT_INIT_ZERO, 0, 0 }, rm);
  store_write(st, "bn.running_var", C, (ut_init){ UT_INIT_ZERO, 0, 0 }, rv);
  bn_ctx ctx = { "bn", { .eval = eval } };
  char label[96], sh[64];
  snprintf(label, sizeof label, "batch_norm %s %s", eval ? "eval" : "train", ut_shape_str(s, sh, sizeof sh));
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &s, .values = (const float *[]){ x }, .build = build_bn,
                                  .ctx = &ctx, .store = st, .check_params = 1, .weights = dy, .expect = y, .fwd_abs_tol = 1e-5,
                                  .fwd_rel_tol = 1e-4, .expect_shape = s, .expect_grad = (const float *[]){ dx },
                                  .grad_abs_tol = 1e-5, .grad_rel_tol = 1e-4, .max_samples = 24 });
  free(x), free(dy), free(w), free(b), free(rm), free(rv), free(y), free(dx);
  ut_store_free(st);
}
END_TEST

/* Without the affine part, and the gradient's own gradient. */
START_TEST(test_batch_norm_second_order) {
  ut_shape s = _i ? UT_SHAPE(3, 2, 2, 3) : UT_SHAPE(4, 3);
  int64_t n = gc_numel(s);
  float *x = gc_random_values(20 + (uint64_t)_i, n, -1, 2), *y = malloc((size_t)n * sizeof *y);
  bn_reference(s, x, NULL, NULL, NULL, NULL, 0, y, NULL, NULL, NULL, NULL);
  bn_ctx ctx = { "plain", { .no_affine = 1 } };
  gc_assert_gradcheck(&(gc_case){ .label = "batch_norm no affine", .n_inputs = 1, .shapes = &s, .values = (const float *[]){ x },
                                  .build = build_bn, .ctx = &ctx, .check_params = 1, .expect = y, .fwd_abs_tol = 1e-5,
                                  .fwd_rel_tol = 1e-4 });
  gc_second_order so = { build_bn, &ctx, 1 };
  gc_assert_gradcheck(&(gc_case){ .label = "batch_norm second order", .n_inputs = 1, .shapes = &s, .values = (const float *[]){ x },
                                  .build = gc_build_grad_of, .ctx = &so, .max_samples = 16 });
  free(x), free(y);
}
END_TEST

/* Two training runs on two batches, then the running statistics against
 *   running = (1 - momentum) running + momentum stat,  stat = mean, or the unbiased variance
 * (torch.nn.BatchNorm2d's update), from the initial 0 and 1; then evaluation mode over the
 * same store uses them and leaves them alone. Both the default and a custom momentum. */
START_TEST(test_batch_norm_running_stats) {
  static const struct {
    ut_shape s;
    float momentum;
  } cases[] = { { UT_SHAPE(3, 5, 4, 3), 0 }, { UT_SHAPE(6, 7), 0.3f } };
  ut_shape s = cases[_i].s;
  double m = cases[_i].momentum ? cases[_i].momentum : 0.1;
  int64_t n = gc_numel(s), C = s.d[1], per_channel = n / C;
  ut_store *st = ut_store_new(test_runtime(), 9);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, s);
  ut_tensor *y = kit_batch_norm(g, x, "enc.bn", &(kit_batch_norm_cfg){ .momentum = cases[_i].momentum });
  ck_assert_ut_ptr(y);
  ck_assert_int_eq(ut_params(g, "enc.bn").n, 2); /* w and b; the running statistics are no parameters */
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &y, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  double want_m[16], want_v[16], mean[16], var[16];
  for (int64_t c = 0; c < C; c++) want_m[c] = 0, want_v[c] = 1;
  float *batch = malloc((size_t)n * sizeof *batch), *out = malloc((size_t)n * sizeof *out), *ref = malloc((size_t)n * sizeof *ref);
  for (int run = 0; run < 2; run++) {
    uint64_t seed = 30 + (uint64_t)run;
    test_fill_uniform(&seed, batch, n, run ? -3.0f : 0.5f, run ? 1.0f : 4.0f);
    ck_assert_ut_ok(ut_upload(p, x, batch));
    ck_assert_ut_ok(ut_plan_run(p));
    ck_assert_ut_ok(ut_read(p, y, out));
    bn_reference(s, batch, NULL, NULL, NULL, NULL, 0, ref, mean, var, NULL, NULL);
    int64_t at;
    ck_assert_msg(test_compare(out, ref, n, 1e-5, 1e-4, &at) <= 1, "run %d: y[%lld] = %g, want %g", run, (long long)at, out[at],
                  ref[at]);
    for (int64_t c = 0; c < C; c++) {
      want_m[c] = (1 - m) * want_m[c] + m * mean[c];
      want_v[c] = (1 - m) * want_v[c] + m * var[c] * per_channel / (per_channel - 1);
    }
  }
  float rm[16], rv[16], want_mf[16], want_vf[16];
  ck_assert_ut_ok(ut_store_tensor_read(st, ut_store_find(st, "enc.bn.running_mean"), rm));
  ck_assert_ut_ok(ut_store_tensor_read(st, ut_store_find(st, "enc.bn.running_var"), rv));
  for (int64_t c = 0; c < C; c++) want_mf[c] = (float)want_m[c], want_vf[c] = (float)want_v[c];
  int64_t at;
  ck_assert_msg(test_compare(rm, want_mf, C, 1e-6, 1e-5, &at) <= 1, "running_mean[%lld] = %.7g, want %.7g", (long long)at, rm[at],
                want_mf[at]);
  ck_assert_msg(test_compare(rv, want_vf, C, 1e-6, 1e-5, &at) <= 1, "running_var[%lld] = %.7g, want %.7g", (long long)at, rv[at],
                want_vf[at]);
  ut_plan_free(p);
  ut_graph_free(g);

  /* Evaluation mode: normalizes with the running statistics and does not move them. */
  g = ut_graph_new(test_runtime(), st);
  x = ut_input(g, "x", UT_F32, s);
  y = kit_batch_norm(g, x, "enc.bn", &(kit_batch_norm_cfg){ .eval = 1 });
  ck_assert_ut_ptr(p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &y, .n_outputs = 1 }));
  float w1[16], b0[16] = { 0 };
  for (int64_t c = 0; c < C; c++) w1[c] = 1;
  for (int run = 0; run < 2; run++) {
    ck_assert_ut_ok(ut_upload(p, x, batch));
    ck_assert_ut_ok(ut_plan_run(p));
  }
  ck_assert_ut_ok(ut_read(p, y, out));
  bn_reference(s, batch, w1, b0, rm, rv, 1, ref, NULL, NULL, NULL, NULL);
  ck_assert_msg(test_compare(out, ref, n, 1e-5, 1e-4, &at) <= 1, "eval y[%lld] = %g, want %g", (long long)at, out[at], ref[at]);
  float rm2[16], rv2[16];
  ck_assert_ut_ok(ut_store_tensor_read(st, ut_store_find(st, "enc.bn.running_mean"), rm2));
  ck_assert_ut_ok(ut_store_tensor_read(st, ut_store_find(st, "enc.bn.running_var"), rv2));
  ck_assert_mem_eq(rm, rm2, (size_t)C * sizeof *rm);
  ck_assert_mem_eq(rv, rv2, (size_t)C * sizeof *rv);
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
  free(batch), free(out), free(ref);
}
END_TEST

START_TEST(test_batch_norm_errors) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(kit_batch_norm(g, ut_input(g, "v", UT_F32, UT_SHAPE(8)), "bn", NULL));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ck_assert_msg(strstr(ut_last_error(), "batch_norm") && strstr(ut_last_error(), "[8]"), "%s", ut_last_error());
  ut_graph_free(g);

  /* one value per channel: nn.BatchNorm refuses to train on it, evaluation is fine */
  g = ut_graph_new(test_runtime(), st);
  ut_tensor *one = ut_input(g, "x", UT_F32, UT_SHAPE(1, 3, 1, 1));
  ck_assert_ptr_null(kit_batch_norm(g, one, "bn1", NULL));
  ck_assert_msg(strstr(ut_last_error(), "more than one value"), "%s", ut_last_error());
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  ck_assert_ut_ptr(kit_batch_norm(g, ut_input(g, "x", UT_F32, UT_SHAPE(1, 3, 1, 1)), "bn1", &(kit_batch_norm_cfg){ .eval = 1 }));
  ck_assert_ptr_null(kit_batch_norm(g, ut_input(g, "z", UT_F32, UT_SHAPE(2, 3)), "bn2", &(kit_batch_norm_cfg){ .momentum = 2 }));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_INVALID_ARGUMENT);
  ut_graph_free(g);

  /* a channel count that does not match the store's running statistics */
  g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(kit_batch_norm(g, ut_input(g, "x", UT_F32, UT_SHAPE(2, 4)), "bn1", &(kit_batch_norm_cfg){ .eval = 1 }));
  ck_assert_msg(strstr(ut_last_error(), "bn1."), "%s", ut_last_error());
  ut_graph_free(g);

  /* reading the running statistics after their update in one graph is refused at compile time */
  g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(2, 3));
  ut_tensor *t = kit_batch_norm(g, x, "bn3", NULL), *e = kit_batch_norm(g, x, "bn3", &(kit_batch_norm_cfg){ .eval = 1 });
  ut_tensor *outs[2] = { t, e };
  ck_assert_ptr_null(ut_plan_compile(g, &(ut_plan_cfg){ .outputs = outs, .n_outputs = 2 }));
  ck_assert_msg(strstr(ut_last_error(), "bn3.running"), "%s", ut_last_error());
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

static Suite *batch_norm_suite(void) {
  Suite *s = suite_create("ops_batch_norm");
  TCase *tc = tcase_create("batch_norm");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_batch_norm, 0, 2 * N_BN);
  tcase_add_loop_test(tc, test_batch_norm_second_order, 0, 2);
  tcase_add_loop_test(tc, test_batch_norm_running_stats, 0, 2);
  tcase_add_test(tc, test_batch_norm_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(batch_norm_suite()); }
