/* The fused instance norm and AdaIN (engine/ops/norm_fused.c, cl/norm.cl): forward against a
 * host reference in double and against the composites they replaced (norm_internal.h), their
 * gradients against the composites' and against central finite differences, gradients of
 * gradients against finite differences, and a repeated run for bitwise determinism. Shapes
 * include 1x1 and odd planes (3x5, 37x29), a 256x256 plane and inputs around 1000 +- 1, where
 * a one-pass variance would lose every digit.
 *
 * Each check runs the fused ops at the device's own work-group width per plane (1 on a CPU)
 * and at a forced wider one (WIDE), so that the local-memory reduction a GPU runs is tested on
 * a CPU too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "ops/norm_internal.h"

#define EPS 1e-5f
#define WIDE 64
#define N_WIDTHS 2
static const int widths[N_WIDTHS] = { 0, WIDE };

typedef enum { K_INSTANCE, K_INSTANCE_W, K_INSTANCE_B, K_INSTANCE_WB, K_ADAIN, N_KINDS } kind;
static const char *const kind_names[] = { "instance_norm", "instance_norm+weight", "instance_norm+bias",
                                          "instance_norm+weight+bias", "adain" };

static int has_w(kind k) { return k == K_INSTANCE_W || k == K_INSTANCE_WB || k == K_ADAIN; }
static int has_b(kind k) { return k == K_INSTANCE_B || k == K_INSTANCE_WB || k == K_ADAIN; }

/* Inputs are always (x, w, b); the builders use the ones the kind has. */
typedef struct {
  kind k;
  int reference; /* build the composite instead of the fused op */
  int width;     /* fused: work-items per plane, 0 for the public call (the device's choice) */
} build_ctx;

static ut_tensor *build(ut_graph *g, ut_tensor **in, void *ctx) {
  const build_ctx *c = ctx;
  ut_tensor *w = has_w(c->k) ? in[1] : NULL, *b = has_b(c->k) ? in[2] : NULL;
  if (!c->reference && c->width)
    return ut_plane_norm(g, in[0], w, b, c->k == K_ADAIN ? UT_NORM_PER_PLANE : UT_NORM_PER_CHANNEL, EPS, c->width);
  if (c->k == K_ADAIN) return (c->reference ? ut_adain_reference : ut_adain)(g, in[0], w, b, EPS);
  return (c->reference ? ut_instance_norm_reference : ut_instance_norm)(g, in[0], w, b, EPS);
}

static ut_shape param_shape(kind k, ut_shape s) { return k == K_ADAIN ? UT_SHAPE(s.d[0], s.d[1]) : UT_SHAPE(s.d[1]); }

/* In double: per (b, c) plane, two-pass statistics, biased variance, eps inside the root. */
static void host_reference(kind k, ut_shape s, const float *x, const float *w, const float *b, float *out) {
  int64_t C = s.d[1], P = s.d[2] * s.d[3], planes = s.d[0] * C;
  for (int64_t pl = 0; pl < planes; pl++) {
    const float *xp = x + pl * P;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < P; i++) mean += xp[i];
    mean /= (double)P;
    for (int64_t i = 0; i < P; i++) var += (xp[i] - mean) * (xp[i] - mean);
    var /= (double)P;
    int64_t pi = k == K_ADAIN ? pl : pl % C;
    double scale = has_w(k) ? w[pi] : 1, shift = has_b(k) ? b[pi] : 0;
    for (int64_t i = 0; i < P; i++) out[pl * P + i] = (float)((xp[i] - mean) / sqrt(var + (double)EPS) * scale + shift);
  }
}

typedef struct {
  kind k;
  ut_shape shape;
  float lo, hi; /* range of x */
} fwd_case;

static const fwd_case fwd_cases[] = {
  { K_INSTANCE, UT_SHAPE(2, 3, 4, 5), -2, 3 },         { K_INSTANCE, UT_SHAPE(3, 2, 1, 1), -2, 3 },
  { K_INSTANCE_W, UT_SHAPE(2, 3, 3, 5), -2, 3 },       { K_INSTANCE_B, UT_SHAPE(1, 5, 3, 5), -2, 3 },
  { K_INSTANCE_WB, UT_SHAPE(2, 3, 37, 29), -1, 1 },    { K_INSTANCE_WB, UT_SHAPE(3, 2, 1, 1), -1, 1 },
  { K_ADAIN, UT_SHAPE(2, 3, 4, 5), -2, 3 },            { K_ADAIN, UT_SHAPE(2, 5, 1, 1), -2, 3 },
  { K_ADAIN, UT_SHAPE(4, 8, 32, 32), -2, 2 },          { K_INSTANCE_WB, UT_SHAPE(1, 2, 256, 256), -1, 1 },
  { K_ADAIN, UT_SHAPE(2, 3, 8, 8), 999, 1001 },        { K_INSTANCE, UT_SHAPE(1, 2, 64, 64), 999, 1001 },
};
#define N_FWD ((int)(sizeof fwd_cases / sizeof fwd_cases[0]))

/* Runs the fused op and the composite over the same inputs in one plan, twice. */
START_TEST(test_forward) {
  const fwd_case *c = &fwd_cases[_i];
  ut_shape s = c->shape, ps = param_shape(c->k, s);
  int64_t n = gc_numel(s), np = gc_numel(ps);
  float *x = gc_random_values(200 + (uint64_t)_i, n, c->lo, c->hi), *w = gc_random_values(201, np, 0.5f, 1.5f);
  float *b = gc_random_values(202, np, -1, 1), *ref = malloc((size_t)n * sizeof *ref);
  float *fused = malloc((size_t)n * sizeof *fused), *again = malloc((size_t)n * sizeof *again);
  float *composite = malloc((size_t)n * sizeof *composite);
  char sh[64];
  ut_shape_str(s, sh, sizeof sh);
  /* Around 1000 the inputs themselves carry f32 steps of 6e-5, a tenth of a percent of the
   * spread; any result computed in f32 deviates that much from the double reference. A
   * one-pass E[x^2] - E[x]^2 would be off by whole units. */
  double tol = c->lo > 100 ? 2e-3 : 2e-5;
  host_reference(c->k, s, x, w, b, ref);

  ut_store *st = ut_store_new(test_runtime(), 3);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *in[3] = { ut_input(g, "x", UT_F32, s), ut_input(g, "w", UT_F32, ps), ut_input(g, "b", UT_F32, ps) };
  ut_tensor *out[1 + N_WIDTHS] = { build(g, in, &(build_ctx){ c->k, 1, 0 }) };
  for (int wi = 0; wi < N_WIDTHS; wi++) out[1 + wi] = build(g, in, &(build_ctx){ c->k, 0, widths[wi] });
  for (int i = 0; i <= N_WIDTHS; i++) ck_assert_ut_ptr(out[i]);
  ck_assert(ut_shape_equal(ut_tensor_shape(out[1]), s));
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = out, .n_outputs = 1 + N_WIDTHS });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_upload(p, in[0], x));
  if (has_w(c->k)) ck_assert_ut_ok(ut_upload(p, in[1], w));
  if (has_b(c->k)) ck_assert_ut_ok(ut_upload(p, in[2], b));
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, out[0], composite));
  int64_t worst;
  double r = test_compare(composite, ref, n, tol, tol, &worst);
  ck_assert_msg(r <= 1, "%s %s: composite[%lld] = %.7g, host reference %.7g (ratio %.3g)", kind_names[c->k], sh,
                (long long)worst, (double)composite[worst], (double)ref[worst], r);
  for (int wi = 0; wi < N_WIDTHS; wi++) {
    ck_assert_ut_ok(ut_plan_run(p));
    ck_assert_ut_ok(ut_read(p, out[1 + wi], fused));
    ck_assert_ut_ok(ut_plan_run(p));
    ck_assert_ut_ok(ut_read(p, out[1 + wi], again));
    r = test_compare(fused, ref, n, tol, tol, &worst);
    ck_assert_msg(r <= 1, "%s %s width %d: fused[%lld] = %.7g, host reference %.7g (ratio %.3g)", kind_names[c->k], sh,
                  widths[wi], (long long)worst, (double)fused[worst], (double)ref[worst], r);
    r = test_compare(fused, composite, n, tol, tol, &worst);
    ck_assert_msg(r <= 1, "%s %s width %d: fused[%lld] = %.7g, composite %.7g (ratio %.3g)", kind_names[c->k], sh,
                  widths[wi], (long long)worst, (double)fused[worst], (double)composite[worst], r);
    ck_assert_msg(!memcmp(fused, again, (size_t)n * sizeof *fused), "%s %s width %d: two runs differ", kind_names[c->k], sh,
                  widths[wi]);
  }

  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
  free(x), free(w), free(b), free(ref), free(fused), free(again), free(composite);
}
END_TEST

/* ---- first-order gradients --------------------------------------------------------------------- */

typedef struct {
  kind k;
  ut_shape shape;
} grad_case;

static const grad_case grad_cases[] = {
  { K_INSTANCE, UT_SHAPE(2, 3, 4, 5) },    { K_INSTANCE_W, UT_SHAPE(2, 2, 3, 5) }, { K_INSTANCE_B, UT_SHAPE(2, 2, 3, 3) },
  { K_INSTANCE_WB, UT_SHAPE(2, 3, 5, 3) }, { K_INSTANCE_WB, UT_SHAPE(3, 2, 1, 1) }, { K_ADAIN, UT_SHAPE(2, 3, 4, 5) },
  { K_ADAIN, UT_SHAPE(1, 6, 2, 3) },       { K_ADAIN, UT_SHAPE(2, 5, 1, 1) },      { K_ADAIN, UT_SHAPE(2, 2, 16, 16) },
};
#define N_GRAD ((int)(sizeof grad_cases / sizeof grad_cases[0]))

/* Against finite differences (with the host forward reference on the way). */
START_TEST(test_gradcheck) {
  const grad_case *c = &grad_cases[_i];
  ut_shape s = c->shape, ps = param_shape(c->k, s);
  int64_t n = gc_numel(s), np = gc_numel(ps);
  float *x = gc_random_values(300 + (uint64_t)_i, n, -2, 3), *w = gc_random_values(301, np, 0.5f, 1.5f);
  float *b = gc_random_values(302, np, -1, 1), *ref = malloc((size_t)n * sizeof *ref);
  host_reference(c->k, s, x, w, b, ref);
  ut_shape shapes[3] = { s, ps, ps };
  for (int wi = 0; wi < N_WIDTHS; wi++) {
    build_ctx bc = { c->k, 0, widths[wi] };
    char label[128], sh[64];
    snprintf(label, sizeof label, "fused %s %s width %d", kind_names[c->k], ut_shape_str(s, sh, sizeof sh), widths[wi]);
    gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 3, .shapes = shapes, .values = (const float *[]){ x, w, b },
                                    .build = build, .ctx = &bc, .expect = ref, .fwd_rel_tol = 2e-5, .fwd_abs_tol = 2e-5,
                                    .expect_shape = s, .h = 1e-2, .max_samples = 24 });
  }
  free(x), free(w), free(b), free(ref);
}
END_TEST

/* The fused backward (at both widths) against the composite's autograd, element by element
 * over every input: all compute the same derivative, so they agree to f32 rounding. */
START_TEST(test_grad_matches_composite) {
  static const grad_case cases[] = { { K_INSTANCE_WB, UT_SHAPE(2, 3, 7, 9) }, { K_INSTANCE, UT_SHAPE(3, 2, 16, 16) },
                                     { K_INSTANCE_W, UT_SHAPE(2, 4, 3, 5) },  { K_ADAIN, UT_SHAPE(2, 3, 32, 32) },
                                     { K_ADAIN, UT_SHAPE(2, 2, 1, 1) } };
  enum { N_VERSIONS = 1 + N_WIDTHS }; /* the composite, then the fused op at each width */
  for (int ci = 0; ci < (int)(sizeof cases / sizeof cases[0]); ci++) {
    const grad_case *c = &cases[ci];
    ut_shape s = c->shape, ps = param_shape(c->k, s);
    int64_t n = gc_numel(s), np = gc_numel(ps), sizes[3] = { n, np, np };
    float *v[3] = { gc_random_values(400 + (uint64_t)ci, n, -2, 3), gc_random_values(401, np, 0.5f, 1.5f),
                    gc_random_values(402, np, -1, 1) };
    float *wt = gc_random_values(403, n, -1, 1);
    ut_store *st = ut_store_new(test_runtime(), 3);
    ut_graph *g = ut_graph_new(test_runtime(), st);
    ut_tensor *in[3] = { ut_input(g, "x", UT_F32, s), ut_input(g, "w", UT_F32, ps), ut_input(g, "b", UT_F32, ps) };
    ut_tensor *weights = ut_constant(g, s, wt), *grads[N_VERSIONS][3], *outs[4 * N_VERSIONS];
    int n_outs = 0;
    for (int r = 0; r < N_VERSIONS; r++) {
      build_ctx bc = { c->k, r == 0, r ? widths[r - 1] : 0 };
      /* the outputs keep every input in the plan, which the bias's gradient alone would not */
      ut_tensor *y = outs[n_outs++] = build(g, in, &bc);
      ut_tensor *loss = ut_sum_all(g, ut_mul(g, y, weights));
      ck_assert_ut_ok(ut_backward(g, loss, (ut_tensor_list){ 3, in }));
      for (int i = 0; i < 3; i++) {
        grads[r][i] = ut_grad(g, in[i]);
        if (grads[r][i]) outs[n_outs++] = grads[r][i];
      }
    }
    ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = outs, .n_outputs = n_outs });
    ck_assert_ut_ptr(p);
    for (int i = 0; i < 3; i++)
      if (i == 0 || (i == 1 ? has_w(c->k) : has_b(c->k))) ck_assert_ut_ok(ut_upload(p, in[i], v[i]));
    ck_assert_ut_ok(ut_plan_run(p));
    char sh[64];
    ut_shape_str(s, sh, sizeof sh);
    for (int r = 1; r < N_VERSIONS; r++)
      for (int i = 0; i < 3; i++) {
        ck_assert_msg(!grads[0][i] == !grads[r][i], "%s %s: input %d has a gradient in one version only", kind_names[c->k],
                      sh, i);
        if (!grads[0][i]) continue;
        float *a = malloc((size_t)sizes[i] * sizeof *a), *e = malloc((size_t)sizes[i] * sizeof *e);
        ck_assert_ut_ok(ut_read(p, grads[r][i], a));
        ck_assert_ut_ok(ut_read(p, grads[0][i], e));
        int64_t worst;
        double q = test_compare(a, e, sizes[i], 1e-4, 1e-4, &worst);
        ck_assert_msg(q <= 1, "%s %s width %d: gradient of input %d [%lld]: fused %.7g, composite %.7g (ratio %.3g)",
                      kind_names[c->k], sh, widths[r - 1], i, (long long)worst, (double)a[worst], (double)e[worst], q);
        free(a), free(e);
      }
    ut_plan_free(p);
    ut_graph_free(g);
    ut_store_free(st);
    for (int i = 0; i < 3; i++) free(v[i]);
    free(wt);
  }
}
END_TEST

/* ---- second order ------------------------------------------------------------------------------- */

/* d/d(in[which]) of sum(y^2 * V): its own gradient runs the backward of plane_norm_grad (for
 * x) or of plane_norm_scale_grad (for the scale). */
typedef struct {
  build_ctx inner;
  int which;
} second_ctx;

static ut_tensor *build_grad_of(ut_graph *g, ut_tensor **in, void *ctx) {
  const second_ctx *c = ctx;
  ut_tensor *y = build(g, in, (void *)&c->inner);
  if (!y) return NULL;
  float *v = gc_random_values(77, gc_numel(ut_tensor_shape(y)), -1, 1);
  ut_tensor *l = ut_sum_all(g, ut_mul(g, ut_square(g, y), ut_constant(g, ut_tensor_shape(y), v)));
  free(v);
  if (ut_backward(g, l, (ut_tensor_list){ 3, in }) != UT_OK) return NULL;
  return ut_grad(g, in[c->which]);
}

START_TEST(test_second_order) {
  static const struct {
    kind k;
    int which;
    ut_shape shape;
  } cases[] = { { K_ADAIN, 0, UT_SHAPE(2, 3, 2, 3) },      { K_INSTANCE_WB, 0, UT_SHAPE(2, 2, 3, 5) },
                { K_ADAIN, 1, UT_SHAPE(2, 3, 2, 3) },      { K_INSTANCE_WB, 1, UT_SHAPE(2, 2, 3, 3) },
                { K_INSTANCE, 0, UT_SHAPE(1, 2, 3, 3) } };
  for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
    kind k = cases[i].k;
    ut_shape s = cases[i].shape, ps = param_shape(k, s);
    float *x = gc_random_values(500 + (uint64_t)i, gc_numel(s), -2, 2), *w = gc_random_values(501, gc_numel(ps), 0.5f, 1.5f);
    float *b = gc_random_values(502, gc_numel(ps), -1, 1);
    ut_shape shapes[3] = { s, ps, ps };
    for (int wi = 0; wi < N_WIDTHS; wi++) {
      second_ctx so = { { k, 0, widths[wi] }, cases[i].which };
      char label[128], sh[64];
      snprintf(label, sizeof label, "fused %s %s width %d: d/d%s, second order", kind_names[k],
               ut_shape_str(s, sh, sizeof sh), widths[wi], cases[i].which ? "scale" : "x");
      gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 3, .shapes = shapes, .values = (const float *[]){ x, w, b },
                                      .build = build_grad_of, .ctx = &so, .h = 5e-3, .rel_tol = 3e-2, .abs_tol = 3e-3,
                                      .max_samples = 12 });
    }
    free(x), free(w), free(b);
  }
}
END_TEST

/* The fused ops' own shape rules (reached through ut_plane_norm, which the public calls only
 * use after their own checks). */
START_TEST(test_shape_errors) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(2, 3, 4, 4));
  ck_assert_ptr_null(ut_plane_norm(g, x, ut_input(g, "s", UT_F32, UT_SHAPE(3)), NULL, UT_NORM_PER_PLANE, EPS, 0));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ck_assert_msg(strstr(ut_last_error(), "plane_norm") && strstr(ut_last_error(), "[2, 3]"), "%s", ut_last_error());
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(ut_plane_norm(g, ut_input(g, "v", UT_F32, UT_SHAPE(2, 3, 4)), NULL, NULL, UT_NORM_PER_CHANNEL, EPS, 0));
  ck_assert_msg(strstr(ut_last_error(), "[B, C, H, W]"), "%s", ut_last_error());
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

static Suite *norm_fused_suite(void) {
  Suite *s = suite_create("ops_norm_fused");
  TCase *tc = tcase_create("forward");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_forward, 0, N_FWD);
  tcase_add_test(tc, test_shape_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("gradients");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_gradcheck, 0, N_GRAD);
  tcase_add_test(tc, test_grad_matches_composite);
  tcase_add_test(tc, test_second_order);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(norm_fused_suite()); }
