/* Transposed 2-D convolution: the forward pass against nn.ConvTranspose2d's definition looped
 * on the host (every input pixel scatters kernel-weighted copies into the output), for the
 * geometries the models use (k3 s2 p1 op1 and k1 s1 in UNIT, k4 s2 p1 in DMIT) and odd ones
 * (batch 1, a 1x1 input, C = 3, O = 5, H != W, non-square kernels, stride 3, a 1x1 kernel with
 * stride 2); the gradients of x, w and bias against the host's exact adjoint (every element)
 * and central finite differences (a sample); a second-order gradient; the layer helper; and
 * the argument errors. test_ops_conv_paths checks its launch paths against the reference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

typedef struct {
  int b, c, o, h, w, kh, kw, stride, pad, opad, bias;
} tconv_case;

static const tconv_case cases[] = {
  /* b  c  o  h  w  kh kw s  p  op bias */
  { 2, 3, 5, 4, 5, 3, 3, 2, 1, 1, 1 }, /* UNIT v02 decoder: k3 s2 p1 op1 doubles the size */
  { 1, 5, 3, 3, 3, 3, 3, 2, 1, 1, 0 },
  { 2, 3, 5, 4, 6, 1, 1, 1, 0, 0, 1 }, /* UNIT's k1: one GEMM and the reordering (with bias) */
  { 1, 3, 5, 4, 3, 1, 1, 1, 0, 0, 0 }, /* k1, batch 1, no bias: the GEMM alone */
  { 1, 3, 5, 4, 3, 1, 1, 1, 0, 0, 1 },
  { 2, 3, 4, 4, 5, 4, 4, 2, 1, 0, 1 }, /* DMIT: k4 s2 p1 doubles the size */
  { 2, 5, 3, 1, 1, 4, 4, 2, 1, 0, 1 }, /* a 1x1 input */
  { 1, 3, 5, 1, 1, 3, 3, 2, 1, 1, 1 },
  { 2, 3, 2, 3, 5, 3, 3, 1, 1, 0, 1 }, /* stride 1: the size stays */
  { 2, 3, 4, 3, 4, 3, 2, 2, 0, 1, 1 }, /* a non-square kernel */
  { 1, 4, 3, 5, 3, 1, 1, 2, 0, 1, 1 }, /* k1 s2: rows and columns no input reaches hold the bias */
  { 2, 3, 5, 2, 3, 5, 5, 3, 2, 2, 1 }, /* stride 3, output padding 2 */
  { 3, 2, 3, 2, 2, 4, 4, 2, 1, 0, 0 },
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static int out_size(int size, int k, int s, int p, int op) { return (size - 1) * s - 2 * p + k + op; }

static ut_shape x_shape(const tconv_case *k) { return UT_SHAPE(k->b, k->c, k->h, k->w); }
static ut_shape w_shape(const tconv_case *k) { return UT_SHAPE(k->c, k->o, k->kh, k->kw); }
static ut_shape y_shape(const tconv_case *k) {
  return UT_SHAPE(k->b, k->o, out_size(k->h, k->kh, k->stride, k->pad, k->opad),
                  out_size(k->w, k->kw, k->stride, k->pad, k->opad));
}

static void case_str(const tconv_case *k, char *buf, size_t size) {
  snprintf(buf, size, "conv_transpose x[%d,%d,%d,%d] w[%d,%d,%d,%d] stride %d pad %d output_padding %d%s", k->b, k->c,
           k->h, k->w, k->c, k->o, k->kh, k->kw, k->stride, k->pad, k->opad, k->bias ? " +bias" : "");
}

/* Visits every (output element, input element, weight element) triple by the definition:
 * input pixel (iy, ix) adds x * w[c, o, ki, kj] to output (iy*s - p + ki, ix*s - p + kj). */
typedef void (*visit_fn)(void *ctx, int64_t yi, int64_t xi, int64_t wi);
static void tconv_visit(const tconv_case *k, visit_fn fn, void *ctx) {
  ut_shape ys = y_shape(k);
  int oh = (int)ys.d[2], ow = (int)ys.d[3];
  for (int b = 0; b < k->b; b++)
    for (int c = 0; c < k->c; c++)
      for (int iy = 0; iy < k->h; iy++)
        for (int ix = 0; ix < k->w; ix++) {
          int64_t xi = (((int64_t)b * k->c + c) * k->h + iy) * k->w + ix;
          for (int o = 0; o < k->o; o++)
            for (int ki = 0; ki < k->kh; ki++)
              for (int kj = 0; kj < k->kw; kj++) {
                int y = iy * k->stride - k->pad + ki, x = ix * k->stride - k->pad + kj;
                if (y < 0 || y >= oh || x < 0 || x >= ow) continue;
                int64_t yi = (((int64_t)b * k->o + o) * oh + y) * ow + x;
                int64_t wi = (((int64_t)c * k->o + o) * k->kh + ki) * k->kw + kj;
                fn(ctx, yi, xi, wi);
              }
        }
}

typedef struct {
  const float *x, *w, *gy;
  double *y, *dx, *dw;
} ref_ctx;

static void visit_forward(void *ctx, int64_t yi, int64_t xi, int64_t wi) {
  ref_ctx *r = ctx;
  r->y[yi] += (double)r->x[xi] * r->w[wi];
}

static void visit_adjoint(void *ctx, int64_t yi, int64_t xi, int64_t wi) {
  ref_ctx *r = ctx;
  r->dx[xi] += (double)r->gy[yi] * r->w[wi];
  r->dw[wi] += (double)r->gy[yi] * r->x[xi];
}

static void to_float(const double *d, float *f, int64_t n) {
  for (int64_t i = 0; i < n; i++) f[i] = (float)d[i];
}

static void ref_forward(const tconv_case *k, const float *x, const float *w, const float *bias, float *y) {
  ut_shape ys = y_shape(k);
  int64_t ny = gc_numel(ys), plane = ys.d[2] * ys.d[3];
  double *acc = calloc((size_t)ny, sizeof *acc);
  ref_ctx r = { .x = x, .w = w, .y = acc };
  tconv_visit(k, visit_forward, &r);
  if (bias)
    for (int64_t i = 0; i < ny; i++) acc[i] += bias[(i / plane) % k->o];
  to_float(acc, y, ny);
  free(acc);
}

static void ref_gradients(const tconv_case *k, const float *x, const float *w, const float *gy, float *dx, float *dw,
                          float *db) {
  ut_shape ys = y_shape(k);
  int64_t nx = gc_numel(x_shape(k)), nw = gc_numel(w_shape(k)), ny = gc_numel(ys), plane = ys.d[2] * ys.d[3];
  double *ddx = calloc((size_t)nx, sizeof *ddx), *ddw = calloc((size_t)nw, sizeof *ddw);
  double *ddb = calloc((size_t)k->o, sizeof *ddb);
  ref_ctx r = { .x = x, .w = w, .gy = gy, .dx = ddx, .dw = ddw };
  tconv_visit(k, visit_adjoint, &r);
  for (int64_t i = 0; i < ny; i++) ddb[(i / plane) % k->o] += gy[i];
  to_float(ddx, dx, nx);
  to_float(ddw, dw, nw);
  to_float(ddb, db, k->o);
  free(ddx), free(ddw), free(ddb);
}

static ut_tensor *build_tconv(ut_graph *g, ut_tensor **in, void *ctx) {
  const tconv_case *k = ctx;
  return ut_conv_transpose2d(g, in[0], in[1], k->bias ? in[2] : NULL, k->stride, k->pad, k->opad);
}

typedef struct {
  float *x, *w, *bias, *gy;
  int64_t nx, nw, ny;
} case_data;

static case_data make_data(const tconv_case *k, uint64_t seed) {
  case_data d = { .nx = gc_numel(x_shape(k)), .nw = gc_numel(w_shape(k)), .ny = gc_numel(y_shape(k)) };
  d.x = gc_random_values(seed, d.nx, -1, 1);
  d.w = gc_random_values(seed + 1, d.nw, -1, 1);
  d.bias = gc_random_values(seed + 2, k->o, -1, 1);
  d.gy = gc_random_values(seed + 3, d.ny, -1, 1);
  return d;
}

static void free_data(case_data *d) { free(d->x), free(d->w), free(d->bias), free(d->gy); }

#define SUM_ABS_TOL 5e-5
#define SUM_REL_TOL 1e-4

START_TEST(test_tconv_forward) {
  const tconv_case *k = &cases[_i];
  char label[160];
  case_str(k, label, sizeof label);
  case_data d = make_data(k, 100 + 10 * (uint64_t)_i);
  float *ref = malloc((size_t)d.ny * sizeof(float));
  ref_forward(k, d.x, d.w, k->bias ? d.bias : NULL, ref);
  const ut_shape shapes[3] = { x_shape(k), w_shape(k), UT_SHAPE(k->o) };
  gc_assert_forward(&(gc_case){ .label = label, .n_inputs = k->bias ? 3 : 2, .shapes = shapes,
                                .values = (const float *[]){ d.x, d.w, d.bias }, .build = build_tconv, .ctx = (void *)k,
                                .expect = ref, .expect_shape = y_shape(k), .fwd_abs_tol = SUM_ABS_TOL,
                                .fwd_rel_tol = SUM_REL_TOL });
  free(ref);
  free_data(&d);
}
END_TEST

START_TEST(test_tconv_gradient) {
  const tconv_case *k = &cases[_i];
  char label[160];
  case_str(k, label, sizeof label);
  case_data d = make_data(k, 500 + 10 * (uint64_t)_i);
  float *ref = malloc((size_t)d.ny * sizeof(float)), *dx = malloc((size_t)d.nx * sizeof(float));
  float *dw = malloc((size_t)d.nw * sizeof(float)), *db = malloc((size_t)k->o * sizeof(float));
  ref_forward(k, d.x, d.w, k->bias ? d.bias : NULL, ref);
  ref_gradients(k, d.x, d.w, d.gy, dx, dw, db);
  const ut_shape shapes[3] = { x_shape(k), w_shape(k), UT_SHAPE(k->o) };
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = k->bias ? 3 : 2, .shapes = shapes,
                                  .values = (const float *[]){ d.x, d.w, d.bias }, .build = build_tconv, .ctx = (void *)k,
                                  .weights = d.gy, .expect = ref, .fwd_abs_tol = SUM_ABS_TOL, .fwd_rel_tol = SUM_REL_TOL,
                                  .expect_grad = (const float *[]){ dx, dw, db }, .grad_abs_tol = SUM_ABS_TOL,
                                  .grad_rel_tol = SUM_REL_TOL, .max_samples = 16, .h = 0.05, .rel_tol = 1e-2,
                                  .abs_tol = 1e-3, .seed = 900 + (uint64_t)_i });
  free(ref), free(dx), free(dw), free(db);
  free_data(&d);
}
END_TEST

/* Second order: (d/dx sum(V * tanh(tconv(x, w) + b)))^2 differentiated again in x, w and b,
 * which runs backward through im2col, the GEMM's transposes and the reorderings. */
typedef struct {
  tconv_case k;
  const float *v;
} second_ctx;

static ut_tensor *build_second_order(ut_graph *g, ut_tensor **in, void *ctx) {
  const second_ctx *s = ctx;
  const tconv_case *k = &s->k;
  ut_tensor *y = ut_tanh(g, ut_conv_transpose2d(g, in[0], in[1], in[2], k->stride, k->pad, k->opad));
  ut_tensor *inner = ut_sum_all(g, ut_mul(g, y, ut_constant(g, y_shape(k), s->v)));
  if (ut_backward(g, inner, (ut_tensor_list){ .n = 1, .t = &in[0] }) != UT_OK) return NULL;
  return ut_square(g, ut_grad(g, in[0]));
}

START_TEST(test_tconv_second_order) {
  static const tconv_case ks[] = {
    { 2, 3, 4, 3, 4, 3, 3, 2, 1, 1, 1 },
    { 2, 3, 2, 3, 3, 1, 1, 1, 0, 0, 1 },
  };
  const tconv_case *k = &ks[_i];
  char label[180];
  case_str(k, label, sizeof label);
  strncat(label, " (second order)", sizeof label - strlen(label) - 1);
  case_data d = make_data(k, 1300 + 10 * (uint64_t)_i);
  for (int64_t i = 0; i < d.nw; i++) d.w[i] *= 0.5f; /* keep tanh away from saturation */
  second_ctx s = { *k, d.gy };
  const ut_shape shapes[3] = { x_shape(k), w_shape(k), UT_SHAPE(k->o) };
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 3, .shapes = shapes,
                                  .values = (const float *[]){ d.x, d.w, d.bias }, .build = build_second_order, .ctx = &s,
                                  .max_samples = 24, .h = 1e-2, .rel_tol = 2e-2, .abs_tol = 2e-3,
                                  .seed = 1400 + (uint64_t)_i });
  free_data(&d);
}
END_TEST

/* ut_conv_transpose2d_layer: parameter names and shapes, PyTorch's bound 1/sqrt(O*k*k) for
 * both (PyTorch takes the fan-in of a [C, O, k, k] weight from dimension 1), and a forward
 * pass equal to the reference with the same tensors. */
START_TEST(test_tconv_layer) {
  const tconv_case k = { 2, 6, 3, 3, 4, 3, 3, 2, 1, 1, 1 };
  ut_store *st = ut_store_new(test_runtime(), 78);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, x_shape(&k));
  ut_tensor *y = ut_conv_transpose2d_layer(g, x, "dec.up1", k.o, k.kh, k.stride, k.pad, k.opad, 1);
  ut_tensor *y_nob = ut_conv_transpose2d_layer(g, x, "dec.up2", k.o, k.kh, k.stride, k.pad, k.opad, 0);
  ck_assert_ut_ptr(y);
  ck_assert_ut_ptr(y_nob);
  ck_assert_msg(ut_shape_equal(ut_tensor_shape(y), y_shape(&k)), "layer output shape");
  ck_assert_ptr_null(ut_store_find(st, "dec.up2.b"));
  ut_store_tensor *wt = ut_store_find(st, "dec.up1.w"), *bt = ut_store_find(st, "dec.up1.b");
  ck_assert_ptr_nonnull(wt);
  ck_assert_ptr_nonnull(bt);
  ck_assert_msg(ut_shape_equal(ut_store_tensor_shape(wt), w_shape(&k)), "weight shape");
  ck_assert_msg(ut_shape_equal(ut_store_tensor_shape(bt), UT_SHAPE(k.o)), "bias shape");
  case_data d = make_data(&k, 6100);
  ck_assert_ut_ok(ut_store_tensor_read(st, wt, d.w));
  ck_assert_ut_ok(ut_store_tensor_read(st, bt, d.bias));
  const double bound = 1 / sqrt((double)(k.o * k.kh * k.kw));
  double wmax = 0, bmax = 0;
  for (int64_t i = 0; i < d.nw; i++) wmax = fmax(wmax, fabs(d.w[i]));
  for (int i = 0; i < k.o; i++) bmax = fmax(bmax, fabs(d.bias[i]));
  ck_assert_msg(wmax <= bound && wmax > 0.5 * bound, "weights within +-%g, max |w| %g", bound, wmax);
  ck_assert_msg(bmax <= bound && bmax > 0.1 * bound, "bias within +-%g, max |b| %g", bound, bmax);

  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &y, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_upload(p, x, d.x));
  ck_assert_ut_ok(ut_plan_run(p));
  float *out = malloc((size_t)d.ny * sizeof(float)), *ref = malloc((size_t)d.ny * sizeof(float));
  ck_assert_ut_ok(ut_read(p, y, out));
  ref_forward(&k, d.x, d.w, d.bias, ref);
  int64_t at = 0;
  double r = test_compare(out, ref, d.ny, SUM_ABS_TOL, SUM_REL_TOL, &at);
  ck_assert_msg(r <= 1, "layer output[%lld] = %.9g, reference %.9g", (long long)at, out[at], ref[at]);
  free(out), free(ref);
  free_data(&d);
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* Bad arguments fail with a status and a message naming conv_transpose2d and what is wrong. */
START_TEST(test_tconv_errors) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  struct {
    ut_shape x, w, b;
    int stride, pad, opad;
    ut_status status;
    const char *needle;
  } bad[] = {
    { UT_SHAPE(1, 3, 4, 4), UT_SHAPE(4, 2, 3, 3), UT_SHAPE(2), 2, 1, 1, UT_ERR_SHAPE, "[C, O, kh, kw]" }, /* channels */
    { UT_SHAPE(3, 4, 4), UT_SHAPE(3, 2, 3, 3), UT_SHAPE(2), 2, 1, 1, UT_ERR_SHAPE, "[B, C, H, W]" },       /* rank */
    { UT_SHAPE(1, 3, 4, 4), UT_SHAPE(3, 2, 3, 3), UT_SHAPE(3), 2, 1, 1, UT_ERR_SHAPE, "bias" },           /* bias */
    { UT_SHAPE(1, 3, 4, 4), UT_SHAPE(3, 2, 3, 3), UT_SHAPE(2), 2, 1, 2, UT_ERR_INVALID_ARGUMENT, "output padding" },
    { UT_SHAPE(1, 3, 4, 4), UT_SHAPE(3, 2, 3, 3), UT_SHAPE(2), 0, 1, 0, UT_ERR_INVALID_ARGUMENT, "stride" },
    { UT_SHAPE(1, 3, 1, 1), UT_SHAPE(3, 2, 1, 1), UT_SHAPE(2), 1, 1, 0, UT_ERR_SHAPE, "empty" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ut_graph *g = ut_graph_new(test_runtime(), st);
    ut_tensor *x = ut_input(g, "images", UT_F32, bad[i].x);
    ut_tensor *w = ut_input(g, "kernel", UT_F32, bad[i].w);
    ut_tensor *b = ut_input(g, "offset", UT_F32, bad[i].b);
    ut_tensor *y = ut_conv_transpose2d(g, x, w, b, bad[i].stride, bad[i].pad, bad[i].opad);
    ck_assert_msg(y == NULL, "case %zu: a bad transposed convolution was accepted", i);
    ck_assert_int_eq(ut_graph_status(g), bad[i].status);
    const char *msg = ut_last_error();
    ck_assert_msg(strstr(msg, "conv_transpose2d") && strstr(msg, bad[i].needle), "case %zu: message '%s' lacks '%s'", i,
                  msg, bad[i].needle);
    ck_assert_ptr_null(ut_plan_compile(g, NULL));
    ut_graph_free(g);
  }
  ut_store_free(st);
}
END_TEST

static Suite *tconv_suite(void) {
  Suite *s = suite_create("ops_conv_transpose");
  TCase *tc = tcase_create("forward");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_tconv_forward, 0, N_CASES);
  tcase_add_test(tc, test_tconv_layer);
  tcase_add_test(tc, test_tconv_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("gradient");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_tconv_gradient, 0, N_CASES);
  tcase_add_loop_test(tc, test_tconv_second_order, 0, 2);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(tconv_suite()); }
