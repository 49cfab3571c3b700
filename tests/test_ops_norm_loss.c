/* Normalization layers (instance norm, AdaIN, layer norm) and the classification and GAN
 * losses: forward against plain C references computed in double on the host, gradients
 * against central finite differences (and, for the losses, the host derivative on every
 * element), gradients of gradients (test_ops_norm_fused compares the fused instance norm and
 * AdaIN with the composites they replaced). Shapes include batch 1, 1x1
 * spatial and channel counts that are no multiple of 4; logits include large magnitudes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "kit_losses.h"

/* ---------------------------------------------------------------------------------------------
 * Normalization.
 */
typedef enum { NK_INSTANCE, NK_INSTANCE_AFFINE, NK_ADAIN, NK_LAYER, NK_LAYER_AFFINE } norm_kind;
static const char *const norm_names[] = { "instance_norm", "instance_norm+affine", "adain", "layer_norm",
                                          "layer_norm+affine" };
#define EPS 1e-5f

static ut_tensor *build_norm(ut_graph *g, ut_tensor **in, void *ctx) {
  switch (*(const norm_kind *)ctx) {
  case NK_INSTANCE: return ut_instance_norm(g, in[0], NULL, NULL, EPS);
  case NK_INSTANCE_AFFINE: return ut_instance_norm(g, in[0], in[1], in[2], EPS);
  case NK_ADAIN: return ut_adain(g, in[0], in[1], in[2], EPS);
  case NK_LAYER: return ut_layer_norm(g, in[0], NULL, NULL, EPS);
  default: return ut_layer_norm(g, in[0], in[1], in[2], EPS);
  }
}

/* Host reference in double: groups of `len` contiguous elements normalized, then the affine
 * part indexed per (sample, channel) or per channel. */
static void norm_reference(norm_kind k, ut_shape s, const float *x, const float *w, const float *b, float *out) {
  int64_t B = s.d[0], C = s.d[1], P = gc_numel(s) / (B * C); /* P: elements per channel plane */
  int per_sample = k == NK_LAYER || k == NK_LAYER_AFFINE;
  int64_t len = per_sample ? C * P : P, groups = gc_numel(s) / len;
  for (int64_t gi = 0; gi < groups; gi++) {
    const float *xg = x + gi * len;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < len; i++) mean += xg[i];
    mean /= (double)len;
    for (int64_t i = 0; i < len; i++) var += (xg[i] - mean) * (xg[i] - mean);
    var /= (double)len;
    for (int64_t i = 0; i < len; i++) {
      int64_t e = gi * len + i, bidx = e / (C * P), c = (e / P) % C;
      double y = (xg[i] - mean) / sqrt(var + (double)EPS);
      if (k == NK_ADAIN) y = y * w[bidx * C + c] + b[bidx * C + c];
      else if (k == NK_INSTANCE_AFFINE || k == NK_LAYER_AFFINE) y = y * w[c] + b[c];
      out[e] = (float)y;
    }
  }
}

typedef struct {
  norm_kind kind;
  ut_shape shape;
} norm_case;

static const norm_case norm_cases[] = {
  { NK_INSTANCE, UT_SHAPE(2, 3, 4, 5) },        { NK_INSTANCE, UT_SHAPE(1, 5, 3, 3) },
  { NK_INSTANCE_AFFINE, UT_SHAPE(2, 3, 5, 3) }, { NK_INSTANCE_AFFINE, UT_SHAPE(3, 2, 1, 1) },
  { NK_ADAIN, UT_SHAPE(2, 3, 4, 5) },           { NK_ADAIN, UT_SHAPE(1, 6, 2, 3) },
  { NK_ADAIN, UT_SHAPE(2, 5, 1, 1) },           { NK_LAYER, UT_SHAPE(2, 3, 3, 3) },
  { NK_LAYER, UT_SHAPE(3, 7) },                 { NK_LAYER_AFFINE, UT_SHAPE(2, 5, 2, 3) },
  { NK_LAYER_AFFINE, UT_SHAPE(1, 6) },
};
#define N_NORM ((int)(sizeof norm_cases / sizeof norm_cases[0]))

START_TEST(test_norm) {
  const norm_case *c = &norm_cases[_i];
  norm_kind k = c->kind;
  ut_shape s = c->shape;
  int64_t n = gc_numel(s), B = s.d[0], C = s.d[1];
  int affine = k == NK_INSTANCE_AFFINE || k == NK_ADAIN || k == NK_LAYER_AFFINE;
  ut_shape ps = k == NK_ADAIN ? UT_SHAPE(B, C) : UT_SHAPE(C);
  int64_t np = gc_numel(ps);
  float *x = gc_random_values(80 + (uint64_t)_i, n, -2, 3), *w = gc_random_values(81 + (uint64_t)_i, np, 0.5f, 1.5f);
  float *b = gc_random_values(82 + (uint64_t)_i, np, -1, 1), *ref = malloc((size_t)n * sizeof *ref);
  norm_reference(k, s, x, w, b, ref);
  ut_shape shapes[3] = { s, ps, ps };
  char label[96], sh[64];
  snprintf(label, sizeof label, "%s %s", norm_names[k], ut_shape_str(s, sh, sizeof sh));
  /* 1x1 planes normalize to exactly 0 (0 / sqrt(eps)): the reference must agree absolutely. */
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = affine ? 3 : 1, .shapes = shapes,
                                  .values = (const float *[]){ x, w, b }, .build = build_norm, .ctx = &k, .expect = ref,
                                  .fwd_rel_tol = 2e-5, .fwd_abs_tol = 2e-5, .expect_shape = s, .h = 1e-2,
                                  .max_samples = 24 });
  free(x);
  free(w);
  free(b);
  free(ref);
}
END_TEST

/* AdaIN and instance norm feed R1-style penalties in OverLORD: check the second derivative. */
START_TEST(test_norm_second_order) {
  static const norm_kind kinds[] = { NK_ADAIN, NK_LAYER_AFFINE };
  for (int i = 0; i < 2; i++) {
    norm_kind k = kinds[i];
    ut_shape s = UT_SHAPE(2, 3, 2, 3), ps = k == NK_ADAIN ? UT_SHAPE(2, 3) : UT_SHAPE(3);
    float *x = gc_random_values(90 + (uint64_t)i, gc_numel(s), -2, 2), *w = gc_random_values(91, gc_numel(ps), 0.5f, 1.5f);
    float *b = gc_random_values(92, gc_numel(ps), -1, 1);
    gc_second_order so = { build_norm, &k, 3 };
    ut_shape shapes[3] = { s, ps, ps };
    char label[64];
    snprintf(label, sizeof label, "%s second order", norm_names[k]);
    gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 3, .shapes = shapes, .values = (const float *[]){ x, w, b },
                                    .build = gc_build_grad_of, .ctx = &so, .h = 5e-3, .rel_tol = 3e-2, .abs_tol = 3e-3,
                                    .max_samples = 12 });
    free(x);
    free(w);
    free(b);
  }
}
END_TEST

START_TEST(test_norm_errors) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(2, 3, 4, 4));
  ck_assert_ptr_null(ut_adain(g, x, ut_input(g, "s", UT_F32, UT_SHAPE(2, 4)), ut_input(g, "b", UT_F32, UT_SHAPE(2, 3)), EPS));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ck_assert_msg(strstr(ut_last_error(), "adain") && strstr(ut_last_error(), "[2, 4]"), "%s", ut_last_error());
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  x = ut_input(g, "x", UT_F32, UT_SHAPE(2, 3, 4, 4));
  ck_assert_ptr_null(ut_instance_norm(g, x, ut_input(g, "w", UT_F32, UT_SHAPE(4)), NULL, EPS));
  ck_assert_msg(strstr(ut_last_error(), "weight"), "%s", ut_last_error());
  ck_assert_ptr_null(ut_instance_norm(g, ut_input(g, "v", UT_F32, UT_SHAPE(2, 3)), NULL, NULL, EPS));
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Losses.
 */
typedef enum { LK_SOFTPLUS, LK_BCE, LK_BCE_CONST1, LK_BCE_CONST0, LK_LS_REAL, LK_LS_FAKE, LK_HINGE_REAL, LK_HINGE_FAKE, LK_HINGE_GEN, N_LK } loss_kind;
static const char *const loss_names[] = { "softplus", "bce_with_logits", "bce_with_logits_const(1)",
                                          "bce_with_logits_const(0)", "lsgan_real", "lsgan_fake", "hinge_real",
                                          "hinge_fake", "hinge_gen" };

static ut_tensor *build_loss(ut_graph *g, ut_tensor **in, void *ctx) {
  switch (*(const loss_kind *)ctx) {
  case LK_SOFTPLUS: return ut_softplus(g, in[0]);
  case LK_BCE: return ut_bce_with_logits(g, in[0], in[1]);
  case LK_BCE_CONST1: return ut_bce_with_logits_const(g, in[0], 1.0f);
  case LK_BCE_CONST0: return ut_bce_with_logits_const(g, in[0], 0.0f);
  case LK_LS_REAL: return kit_lsgan_real_loss(g, in[0]);
  case LK_LS_FAKE: return kit_lsgan_fake_loss(g, in[0]);
  case LK_HINGE_REAL: return kit_hinge_real_loss(g, in[0]);
  case LK_HINGE_FAKE: return kit_hinge_fake_loss(g, in[0]);
  default: return kit_hinge_gen_loss(g, in[0]);
  }
}

static double sigm(double x) { return 1 / (1 + exp(-x)); }
static double softplus_ref(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

/* The per-element value and derivative (w.r.t. x) of the loss before the mean. */
static void loss_elem(loss_kind k, double x, double y, double *v, double *d) {
  switch (k) {
  case LK_SOFTPLUS: *v = softplus_ref(x), *d = sigm(x); break;
  case LK_BCE: *v = softplus_ref(x) - x * y, *d = sigm(x) - y; break;
  case LK_BCE_CONST1: *v = softplus_ref(x) - x, *d = sigm(x) - 1; break;
  case LK_BCE_CONST0: *v = softplus_ref(x), *d = sigm(x); break;
  case LK_LS_REAL: *v = (x - 1) * (x - 1), *d = 2 * (x - 1); break;
  case LK_LS_FAKE: *v = x * x, *d = 2 * x; break;
  case LK_HINGE_REAL: *v = 1 - x > 0 ? 1 - x : 0, *d = 1 - x > 0 ? -1 : 0; break;
  case LK_HINGE_FAKE: *v = 1 + x > 0 ? 1 + x : 0, *d = 1 + x > 0 ? 1 : 0; break;
  default: *v = -x, *d = -1; break;
  }
}

START_TEST(test_loss) {
  loss_kind k = (loss_kind)_i;
  const ut_shape s = UT_SHAPE(3, 1, 5, 7); /* 105 elements */
  int64_t n = gc_numel(s);
  float *x = gc_random_values(100 + (uint64_t)_i, n, -3, 3), *y = gc_random_values(101, n, 0, 1);
  /* large logits (BCE and softplus must neither overflow nor lose the tail) */
  if (k <= LK_BCE_CONST0) {
    x[0] = 90.0f, x[1] = -90.0f, x[2] = 0.0f, x[3] = 17.5f, x[4] = -17.5f;
  }
  /* keep hinge inputs away from the kinks at +-1 */
  for (int64_t i = 0; i < n && (k == LK_HINGE_REAL || k == LK_HINGE_FAKE); i++)
    if (fabsf(fabsf(x[i]) - 1) < 0.05f) x[i] += 0.1f;
  float *ref = malloc((size_t)n * sizeof *ref), *gx = malloc((size_t)n * sizeof *gx), *gy = malloc((size_t)n * sizeof *gy);
  float w = 0.75f, *wv = NULL;
  double total = 0;
  int mean = k != LK_SOFTPLUS;
  for (int64_t i = 0; i < n; i++) {
    double v, d;
    loss_elem(k, x[i], y[i], &v, &d);
    total += v;
    ref[i] = (float)v;
    gx[i] = (float)(mean ? w * d / (double)n : 0);
    gy[i] = (float)(-w * x[i] / (double)n);
  }
  if (!mean) { /* softplus is elementwise: weights per element */
    wv = gc_random_values(102, n, 0.1f, 1);
    for (int64_t i = 0; i < n; i++) {
      double v, d;
      loss_elem(k, x[i], 0, &v, &d);
      gx[i] = (float)(wv[i] * d);
    }
  } else {
    ref[0] = (float)(total / (double)n);
  }
  ut_shape shapes[2] = { s, s };
  gc_assert_gradcheck(&(gc_case){ .label = loss_names[k], .n_inputs = k == LK_BCE ? 2 : 1, .shapes = shapes,
                                  .values = (const float *[]){ x, y }, .build = build_loss, .ctx = &k,
                                  .weights = mean ? &w : wv, .expect = ref, .fwd_rel_tol = 2e-6, .fwd_abs_tol = 1e-7,
                                  .expect_shape = mean ? UT_SHAPE(1) : s,
                                  .expect_grad = (const float *[]){ gx, k == LK_BCE ? gy : NULL }, .grad_rel_tol = 1e-5,
                                  .grad_abs_tol = 1e-8, .max_samples = 24, .h = 1e-3, .abs_tol = 1e-4 });
  free(x);
  free(y);
  free(ref);
  free(gx);
  free(gy);
  free(wv);
}
END_TEST

/* ---- cross-entropy ---- */
typedef struct {
  int b, k;
  const int32_t *labels;
} ce_case;

static ut_tensor *build_ce(ut_graph *g, ut_tensor **in, void *ctx) {
  const ce_case *c = ctx;
  return ut_cross_entropy(g, in[0], ut_constant_i32(g, UT_SHAPE(c->b), c->labels));
}

static void check_ce(const ce_case *c, float shift, uint64_t seed) {
  int64_t n = (int64_t)c->b * c->k;
  float *x = gc_random_values(seed, n, -3, 3), *gref = malloc((size_t)n * sizeof *gref);
  for (int64_t i = 0; i < n; i++) x[i] += shift * (float)(i % c->k == 0 ? 1 : -1) + shift;
  double total = 0;
  const float w = 1.25f;
  for (int r = 0; r < c->b; r++) {
    const float *row = x + (int64_t)r * c->k;
    double m = row[0], s = 0;
    for (int j = 1; j < c->k; j++) m = fmax(m, row[j]);
    for (int j = 0; j < c->k; j++) s += exp(row[j] - m);
    total += m + log(s) - row[c->labels[r]];
    for (int j = 0; j < c->k; j++)
      gref[(int64_t)r * c->k + j] = (float)(w * (exp(row[j] - m) / s - (j == c->labels[r])) / c->b);
  }
  float ref = (float)(total / c->b);
  ut_shape s = UT_SHAPE(c->b, c->k);
  char label[64];
  snprintf(label, sizeof label, "cross_entropy B%d K%d shift %g", c->b, c->k, shift);
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &s, .values = (const float *[]){ x },
                                  .build = build_ce, .ctx = (void *)c, .weights = &w, .expect = &ref, .fwd_rel_tol = 1e-5,
                                  .expect_shape = UT_SHAPE(1), .expect_grad = (const float *[]){ gref },
                                  .grad_rel_tol = 1e-4, .grad_abs_tol = 1e-7, .h = 1e-2, .max_samples = 32 });
  free(x);
  free(gref);
}

START_TEST(test_cross_entropy) {
  static const int32_t l5[] = { 0, 4, 2, 2, 1 }, l1[] = { 2 }, l7[] = { 6, 0, 3 };
  check_ce(&(ce_case){ 5, 5, l5 }, 0, 110);
  check_ce(&(ce_case){ 1, 3, l1 }, 0, 111);
  check_ce(&(ce_case){ 3, 7, l7 }, 60, 112); /* exp(120) overflows f32 without the max shift */
  int32_t l300[300];
  for (int i = 0; i < 300; i++) l300[i] = (i * 5) % 3;
  check_ce(&(ce_case){ 300, 3, l300 }, 0, 113);
}
END_TEST

START_TEST(test_cross_entropy_second_order) {
  static const int32_t labels[] = { 1, 0, 3 };
  ce_case c = { 3, 4, labels };
  float *x = gc_random_values(120, 12, -2, 2);
  gc_second_order so = { build_ce, &c, 1 };
  gc_assert_gradcheck(&(gc_case){ .label = "cross_entropy second order", .n_inputs = 1, .shapes = &UT_SHAPE(3, 4),
                                  .values = (const float *[]){ x }, .build = gc_build_grad_of, .ctx = &so, .h = 5e-3 });
  free(x);
}
END_TEST

START_TEST(test_one_hot) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *labels = ut_input(g, "labels", UT_I32, UT_SHAPE(4));
  ut_tensor *y = ut_one_hot(g, labels, 3);
  ck_assert_ut_ptr(y);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &y, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  static const int32_t lv[] = { 2, 0, -1, 3 }; /* the last two are out of range: zero rows */
  float out[12];
  ck_assert_ut_ok(ut_upload(p, labels, lv));
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, y, out));
  for (int i = 0; i < 12; i++) ck_assert_msg(out[i] == (float)(i / 3 < 2 && lv[i / 3] == i % 3), "one_hot[%d] = %g", i, out[i]);
  ck_assert_ptr_null(ut_cross_entropy(g, ut_input(g, "z", UT_F32, UT_SHAPE(5, 3)), labels));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ck_assert_msg(strstr(ut_last_error(), "cross_entropy"), "%s", ut_last_error());
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

static Suite *norm_loss_suite(void) {
  Suite *s = suite_create("ops_norm_loss");
  TCase *tc = tcase_create("norm");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_norm, 0, N_NORM);
  tcase_add_test(tc, test_norm_second_order);
  tcase_add_test(tc, test_norm_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("loss");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_loss, 0, N_LK);
  tcase_add_test(tc, test_cross_entropy);
  tcase_add_test(tc, test_cross_entropy_second_order);
  tcase_add_test(tc, test_one_hot);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(norm_loss_suite()); }
