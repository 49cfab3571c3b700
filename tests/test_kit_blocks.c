/* The kit's blocks: scopes decide sharing (one scope twice is one set of weights, two scopes
 * are two), the shapes each block promises, the N(0, std) initialisation, and a residual block
 * against the same computation written with engine ops. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kit_blocks.h"
#include "test_support.h"

static int params_under(ut_graph *g, const char *prefix) { return ut_params(g, prefix).n; }

START_TEST(scopes_share_or_separate) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(2, 3, 8, 8));
  kit_conv c = KIT_CONV(3, 1, 1);
  c.norm = KIT_NORM_INSTANCE_AFFINE;
  c.act = KIT_ACT_LEAKY;
  kit_conv_block(g, x, "net.same", 5, &c);
  kit_conv_block(g, x, "net.same", 5, &c);
  ck_assert_int_eq(params_under(g, "net.same."), 4); /* w, b, norm.w, norm.b once */
  kit_conv_block(g, x, "net.other", 5, &c);
  ck_assert_int_eq(params_under(g, "net."), 8);
  ck_assert_ut_ok(ut_graph_status(g));
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

START_TEST(shapes) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(2, 4, 8, 8));
  kit_conv down = KIT_CONV(3, 2, 1), up = KIT_CONV(3, 2, 1), res = KIT_CONV(3, 1, 1);
  up.transposed = 1;
  res.norm = KIT_NORM_INSTANCE;
  res.act = KIT_ACT_RELU;
  ck_assert(ut_shape_equal(ut_tensor_shape(kit_conv_block(g, x, "d", 6, &down)), UT_SHAPE(2, 6, 4, 4)));
  ck_assert(ut_shape_equal(ut_tensor_shape(kit_conv_block(g, x, "u", 6, &up)), UT_SHAPE(2, 6, 16, 16)));
  ck_assert(ut_shape_equal(ut_tensor_shape(kit_upsample_conv_block(g, x, "n", 2, &res)), UT_SHAPE(2, 2, 16, 16)));
  ck_assert(ut_shape_equal(ut_tensor_shape(kit_res_blocks(g, x, "r", 2, &res)), UT_SHAPE(2, 4, 8, 8)));
  int64_t ch = 0;
  ut_tensor *s = kit_conv_stack(g, x, "s", 3, 8, 16, &down, &ch);
  ck_assert_int_eq(ch, 16);
  ck_assert(ut_shape_equal(ut_tensor_shape(s), UT_SHAPE(2, 16, 1, 1)));
  ck_assert_ut_ok(ut_graph_status(g));
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

static ut_tensor *one_scale(ut_graph *g, ut_tensor *x, const char *scope, const void *user) {
  (void)user;
  kit_conv c = KIT_CONV(3, 2, 1);
  return kit_conv_block(g, x, scope, 1, &c);
}

/* The multi-scale wrapper: each scale its own scope and the input average-pooled once more. */
START_TEST(multiscale_scales_and_scopes) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(2, 3, 16, 16));
  ut_tensor *outs[3];
  ck_assert_ut_ok(kit_multiscale(g, x, "dis", 3, one_scale, NULL, outs));
  ck_assert(ut_shape_equal(ut_tensor_shape(outs[0]), UT_SHAPE(2, 1, 8, 8)));
  ck_assert(ut_shape_equal(ut_tensor_shape(outs[1]), UT_SHAPE(2, 1, 4, 4)));
  ck_assert(ut_shape_equal(ut_tensor_shape(outs[2]), UT_SHAPE(2, 1, 2, 2)));
  ck_assert_int_eq(params_under(g, "dis.0."), 2);
  ck_assert_int_eq(params_under(g, "dis.2."), 2);
  ck_assert_int_eq(params_under(g, "dis."), 6);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

START_TEST(normal_init) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(1, 64, 4, 4));
  kit_conv c = KIT_CONV(3, 1, 1);
  c.init_std = 0.02f;
  kit_conv_block(g, x, "init", 64, &c);
  ut_store_tensor *w = ut_store_find(st, "init.w");
  ck_assert_ptr_nonnull(w);
  int64_t n = ut_shape_numel(ut_store_tensor_shape(w));
  float *v = malloc((size_t)n * sizeof *v);
  ck_assert_ut_ok(ut_store_tensor_read(st, w, v));
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < n; i++) s += v[i], s2 += (double)v[i] * v[i];
  double mean = s / n, sd = sqrt(s2 / n - mean * mean);
  ck_assert_msg(fabs(mean) < 0.002 && fabs(sd - 0.02) < 0.001, "mean %g sd %g over %lld weights", mean, sd, (long long)n);
  free(v);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* kit_res_block with IN + ReLU against x + IN(conv(relu(IN(conv(x))))) spelled out with ops. */
START_TEST(res_block_matches_ops) {
  ut_store *st = ut_store_new(test_runtime(), 4);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(2, 3, 6, 6));
  kit_conv c = KIT_CONV(3, 1, 1);
  c.norm = KIT_NORM_INSTANCE;
  c.act = KIT_ACT_RELU;
  ut_tensor *y = kit_res_block(g, x, "rb", &c);
  ut_tensor *w0 = ut_params(g, "rb.0.w").t[0], *b0 = ut_params(g, "rb.0.b").t[0];
  ut_tensor *w1 = ut_params(g, "rb.1.w").t[0], *b1 = ut_params(g, "rb.1.b").t[0];
  ut_tensor *h = ut_relu(g, ut_instance_norm(g, ut_conv2d(g, x, w0, b0, UT_CONV(1, 1)), NULL, NULL, 1e-5f));
  ut_tensor *ref = ut_add(g, x, ut_instance_norm(g, ut_conv2d(g, h, w1, b1, UT_CONV(1, 1)), NULL, NULL, 1e-5f));
  ut_tensor *outs[2] = { y, ref };
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = outs, .n_outputs = 2 });
  ck_assert_ut_ptr(p);
  float in[2 * 3 * 36], a[2 * 3 * 36], b[2 * 3 * 36];
  uint64_t rng = 3;
  test_fill_uniform(&rng, in, 2 * 3 * 36, -1, 1);
  ck_assert_ut_ok(ut_upload(p, x, in));
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, y, a));
  ck_assert_ut_ok(ut_read(p, ref, b));
  ck_assert_msg(!memcmp(a, b, sizeof a), "the residual block differs from its definition");
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* MUNIT's LayerNorm against its definition in C: per sample, mean and unbiased std over
 * C, H, W, (x - mean) / (std + 1e-5), then the per-channel scale and bias. */
START_TEST(munit_layer_norm_matches_definition) {
  enum { B = 2, C = 3, H = 4, W = 5, PER = C * H * W };
  ut_store *st = ut_store_new(test_runtime(), 8);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(B, C, H, W));
  kit_conv c = { .norm = KIT_NORM_LAYER_MUNIT };
  ut_tensor *y = kit_norm_act(g, x, "ln", &c);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &y, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  float in[B * PER], out[B * PER], gamma[C];
  uint64_t rng = 5;
  test_fill_uniform(&rng, in, B * PER, -2, 3);
  ck_assert_ut_ok(ut_upload(p, x, in));
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, y, out));
  ck_assert_ut_ok(ut_store_tensor_read(st, ut_store_find(st, "ln.norm.w"), gamma));
  for (int k = 0; k < C; k++) ck_assert_msg(gamma[k] >= 0 && gamma[k] <= 1, "scale %g outside U(0, 1)", (double)gamma[k]);
  for (int b = 0; b < B; b++) {
    double mean = 0, ss = 0;
    for (int i = 0; i < PER; i++) mean += in[b * PER + i];
    mean /= PER;
    for (int i = 0; i < PER; i++) ss += (in[b * PER + i] - mean) * (in[b * PER + i] - mean);
    double sd = sqrt(ss / (PER - 1));
    for (int i = 0; i < PER; i++) {
      double want = (in[b * PER + i] - mean) / (sd + 1e-5) * gamma[i / (H * W)];
      ck_assert_msg(fabs(out[b * PER + i] - want) < 1e-5, "y[%d][%d] = %g, want %g", b, i, (double)out[b * PER + i], want);
    }
  }
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

int main(void) {
  Suite *s = suite_create("kit_blocks");
  TCase *tc = tcase_create("kit_blocks");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, scopes_share_or_separate);
  tcase_add_test(tc, shapes);
  tcase_add_test(tc, normal_init);
  tcase_add_test(tc, multiscale_scales_and_scopes);
  tcase_add_test(tc, res_block_matches_ops);
  tcase_add_test(tc, munit_layer_norm_matches_definition);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
