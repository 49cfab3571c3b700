/* 2-D convolution: the forward pass against a direct (no im2col) convolution on the host, for
 * kernels 1 to 7, strides 1 and 2, zero and reflect padding up to 3, batch 1, channels that
 * are no multiple of 4, H != W and a 1x1 image; the gradients of x, w and bias against the
 * host's exact adjoint (every element) and central finite differences (a sample); a
 * second-order gradient; the layer helper's parameters; and the shape errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

typedef struct {
  int b, c, o, h, w, kh, kw, stride, pad, reflect, bias;
} conv_case;

static const conv_case cases[] = {
  /* b  c  o  h  w  kh kw s  p  refl bias */
  { 2, 3, 5, 6, 7, 1, 1, 1, 0, 0, 1 },  /* 1x1 direct GEMM, batch reordered */
  { 1, 5, 3, 5, 4, 1, 1, 1, 0, 0, 0 },  /* 1x1 direct GEMM, batch 1: no copy at all */
  { 2, 3, 4, 7, 6, 1, 1, 2, 0, 0, 1 },  /* 1x1 with stride goes through im2col */
  { 2, 3, 4, 7, 5, 3, 3, 1, 1, 0, 1 },
  { 2, 3, 4, 7, 5, 3, 3, 1, 1, 1, 1 },
  { 1, 5, 3, 8, 9, 3, 3, 2, 1, 1, 0 },
  { 2, 3, 5, 6, 9, 3, 3, 2, 0, 0, 1 },
  { 1, 3, 2, 3, 4, 3, 3, 1, 3, 0, 1 },  /* pad 3: the output is larger than the image */
  { 2, 5, 4, 9, 8, 4, 4, 2, 1, 0, 1 },  /* DCGAN-style downsampling */
  { 2, 3, 3, 5, 6, 4, 4, 2, 3, 1, 1 },
  { 1, 5, 3, 6, 5, 5, 5, 1, 2, 0, 1 },
  { 2, 3, 2, 3, 5, 5, 5, 2, 2, 1, 1 },  /* reflect pad 2 of height 3: a row read three ways */
  { 2, 3, 4, 8, 9, 7, 7, 1, 3, 1, 1 },  /* LORD's first layer: ReflectionPad2d(3) + 7x7 */
  { 1, 3, 4, 7, 7, 7, 7, 1, 0, 0, 1 },  /* a 1x1 output */
  { 2, 5, 3, 1, 1, 1, 1, 1, 0, 0, 1 },  /* a 1x1 image */
  { 2, 3, 3, 1, 1, 3, 3, 1, 1, 0, 1 },
  { 2, 3, 4, 6, 7, 3, 2, 1, 1, 1, 1 },  /* a non-square kernel */
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static int out_size(int size, int k, int s, int p) { return (size + 2 * p - k) / s + 1; }

static ut_shape x_shape(const conv_case *k) { return UT_SHAPE(k->b, k->c, k->h, k->w); }
static ut_shape w_shape(const conv_case *k) { return UT_SHAPE(k->o, k->c, k->kh, k->kw); }
static ut_shape y_shape(const conv_case *k) {
  return UT_SHAPE(k->b, k->o, out_size(k->h, k->kh, k->stride, k->pad), out_size(k->w, k->kw, k->stride, k->pad));
}
static ut_conv_cfg cfg_of(const conv_case *k) {
  return (ut_conv_cfg){ .stride = k->stride, .pad = k->pad, .pad_mode = k->reflect ? UT_PAD_REFLECT : UT_PAD_ZERO };
}

static void case_str(const conv_case *k, char *buf, size_t size) {
  snprintf(buf, size, "conv x[%d,%d,%d,%d] w[%d,%d,%d,%d] stride %d %s pad %d%s", k->b, k->c, k->h, k->w, k->o, k->c, k->kh,
           k->kw, k->stride, k->reflect ? "reflect" : "zero", k->pad, k->bias ? " +bias" : "");
}

/* The image coordinate a padded coordinate (shifted by -pad) reads, or -1 for a zero. Written
 * from nn.ReflectionPad2d's definition, independently of the kernel's version. */
static int src_coord(int q, int size, int reflect) {
  if (q >= 0 && q < size) return q;
  if (!reflect) return -1;
  return q < 0 ? -q : 2 * (size - 1) - q;
}

/* Visits every (output element, input element, weight element) triple of the convolution. */
typedef void (*visit_fn)(void *ctx, int64_t yi, int64_t xi, int64_t wi, int o);
static void conv_visit(const conv_case *k, visit_fn fn, void *ctx) {
  ut_shape ys = y_shape(k);
  int oh = (int)ys.d[2], ow = (int)ys.d[3];
  for (int b = 0; b < k->b; b++)
    for (int o = 0; o < k->o; o++)
      for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++) {
          int64_t yi = (((int64_t)b * k->o + o) * oh + oy) * ow + ox;
          for (int c = 0; c < k->c; c++)
            for (int ki = 0; ki < k->kh; ki++)
              for (int kj = 0; kj < k->kw; kj++) {
                int iy = src_coord(oy * k->stride + ki - k->pad, k->h, k->reflect);
                int ix = src_coord(ox * k->stride + kj - k->pad, k->w, k->reflect);
                if (iy < 0 || ix < 0) continue;
                int64_t xi = (((int64_t)b * k->c + c) * k->h + iy) * k->w + ix;
                int64_t wi = (((int64_t)o * k->c + c) * k->kh + ki) * k->kw + kj;
                fn(ctx, yi, xi, wi, o);
              }
        }
}

typedef struct {
  const float *x, *w, *gy;
  double *y, *dx, *dw, *db;
} ref_ctx;

static void visit_forward(void *ctx, int64_t yi, int64_t xi, int64_t wi, int o) {
  ref_ctx *r = ctx;
  (void)o;
  r->y[yi] += (double)r->x[xi] * r->w[wi];
}

static void visit_adjoint(void *ctx, int64_t yi, int64_t xi, int64_t wi, int o) {
  ref_ctx *r = ctx;
  (void)o;
  r->dx[xi] += (double)r->gy[yi] * r->w[wi];
  r->dw[wi] += (double)r->gy[yi] * r->x[xi];
}

static void to_float(const double *d, float *f, int64_t n) {
  for (int64_t i = 0; i < n; i++) f[i] = (float)d[i];
}

/* y = conv(x, w) + bias, in double. */
static void ref_forward(const conv_case *k, const float *x, const float *w, const float *bias, float *y) {
  ut_shape ys = y_shape(k);
  int64_t ny = gc_numel(ys), plane = ys.d[2] * ys.d[3];
  double *acc = calloc((size_t)ny, sizeof *acc);
  ref_ctx r = { .x = x, .w = w, .y = acc };
  conv_visit(k, visit_forward, &r);
  if (bias)
    for (int64_t i = 0; i < ny; i++) acc[i] += bias[(i / plane) % k->o];
  to_float(acc, y, ny);
  free(acc);
}

/* The gradients of sum(y * gy): dx and dw by the adjoint of the direct loop, db by summing. */
static void ref_gradients(const conv_case *k, const float *x, const float *w, const float *gy, float *dx, float *dw, float *db) {
  ut_shape ys = y_shape(k);
  int64_t nx = gc_numel(x_shape(k)), nw = gc_numel(w_shape(k)), ny = gc_numel(ys), plane = ys.d[2] * ys.d[3];
  double *ddx = calloc((size_t)nx, sizeof *ddx), *ddw = calloc((size_t)nw, sizeof *ddw), *ddb = calloc((size_t)k->o, sizeof *ddb);
  ref_ctx r = { .x = x, .w = w, .gy = gy, .dx = ddx, .dw = ddw };
  conv_visit(k, visit_adjoint, &r);
  for (int64_t i = 0; i < ny; i++) ddb[(i / plane) % k->o] += gy[i];
  to_float(ddx, dx, nx);
  to_float(ddw, dw, nw);
  to_float(ddb, db, k->o);
  free(ddx), free(ddw), free(ddb);
}

static ut_tensor *build_conv(ut_graph *g, ut_tensor **in, void *ctx) {
  const conv_case *k = ctx;
  return ut_conv2d(g, in[0], in[1], k->bias ? in[2] : NULL, cfg_of(k));
}

/* Test data for one case: inputs in [-1, 1), a bias, and loss weights. */
typedef struct {
  float *x, *w, *bias, *gy;
  int64_t nx, nw, ny;
} case_data;

static case_data make_data(const conv_case *k, uint64_t seed) {
  case_data d = { .nx = gc_numel(x_shape(k)), .nw = gc_numel(w_shape(k)), .ny = gc_numel(y_shape(k)) };
  d.x = malloc((size_t)d.nx * sizeof(float));
  d.w = malloc((size_t)d.nw * sizeof(float));
  d.bias = malloc((size_t)k->o * sizeof(float));
  d.gy = malloc((size_t)d.ny * sizeof(float));
  uint64_t rng = seed;
  test_fill_uniform(&rng, d.x, d.nx, -1, 1);
  test_fill_uniform(&rng, d.w, d.nw, -1, 1);
  test_fill_uniform(&rng, d.bias, k->o, -1, 1);
  test_fill_uniform(&rng, d.gy, d.ny, -1, 1);
  return d;
}

static void free_data(case_data *d) { free(d->x), free(d->w), free(d->bias), free(d->gy); }

/* f32 sums of up to a few hundred products of values in [-1, 1] (CLBlast orders them its own
 * way); the reference is exact. */
#define SUM_ABS_TOL 5e-5
#define SUM_REL_TOL 1e-4

START_TEST(test_conv_forward) {
  const conv_case *k = &cases[_i];
  char label[160];
  case_str(k, label, sizeof label);
  case_data d = make_data(k, 1000 + (uint64_t)_i);
  float *ref = malloc((size_t)d.ny * sizeof(float));
  ref_forward(k, d.x, d.w, k->bias ? d.bias : NULL, ref);
  const ut_shape shapes[3] = { x_shape(k), w_shape(k), UT_SHAPE(k->o) };
  gc_assert_forward(&(gc_case){ .label = label, .n_inputs = k->bias ? 3 : 2, .shapes = shapes,
                                .values = (const float *[]){ d.x, d.w, d.bias }, .build = build_conv, .ctx = (void *)k,
                                .expect = ref, .expect_shape = y_shape(k), .fwd_abs_tol = SUM_ABS_TOL,
                                .fwd_rel_tol = SUM_REL_TOL });
  free(ref);
  free_data(&d);
}
END_TEST

START_TEST(test_conv_gradient) {
  const conv_case *k = &cases[_i];
  char label[160];
  case_str(k, label, sizeof label);
  case_data d = make_data(k, 2000 + (uint64_t)_i);
  float *ref = malloc((size_t)d.ny * sizeof(float)), *dx = malloc((size_t)d.nx * sizeof(float));
  float *dw = malloc((size_t)d.nw * sizeof(float)), *db = malloc((size_t)k->o * sizeof(float));
  ref_forward(k, d.x, d.w, k->bias ? d.bias : NULL, ref);
  ref_gradients(k, d.x, d.w, d.gy, dx, dw, db);
  const ut_shape shapes[3] = { x_shape(k), w_shape(k), UT_SHAPE(k->o) };
  /* The loss is linear in each input, so central differences are exact but for rounding;
   * the host adjoint checks every element, the differences a sample. */
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = k->bias ? 3 : 2, .shapes = shapes,
                                  .values = (const float *[]){ d.x, d.w, d.bias }, .build = build_conv, .ctx = (void *)k,
                                  .weights = d.gy, .expect = ref, .fwd_abs_tol = SUM_ABS_TOL, .fwd_rel_tol = SUM_REL_TOL,
                                  .expect_grad = (const float *[]){ dx, dw, db }, .grad_abs_tol = SUM_ABS_TOL,
                                  .grad_rel_tol = SUM_REL_TOL, .max_samples = 16, .h = 0.05, .rel_tol = 1e-2,
                                  .abs_tol = 1e-3, .seed = 3000 + (uint64_t)_i });
  free(ref), free(dx), free(dw), free(db);
  free_data(&d);
}
END_TEST

/* Second order, as R1 needs it: out = (d/dx sum(V * tanh(conv(x, w) + b)))^2 differentiated
 * again in x, w and b. This runs backward through the backward ops (col2im, the GEMM's
 * transposes, the reorderings) and checks the result by finite differences. */
typedef struct {
  conv_case k;
  const float *v;
} second_ctx;

static ut_tensor *build_second_order(ut_graph *g, ut_tensor **in, void *ctx) {
  const second_ctx *s = ctx;
  ut_tensor *y = ut_tanh(g, ut_conv2d(g, in[0], in[1], in[2], cfg_of(&s->k)));
  ut_tensor *inner = ut_sum_all(g, ut_mul(g, y, ut_constant(g, y_shape(&s->k), s->v)));
  if (ut_backward(g, inner, (ut_tensor_list){ .n = 1, .t = &in[0] }) != UT_OK) return NULL;
  return ut_square(g, ut_grad(g, in[0]));
}

START_TEST(test_conv_second_order) {
  static const conv_case ks[] = {
    { 2, 3, 4, 5, 6, 3, 3, 2, 1, 1, 1 },
    { 2, 3, 2, 4, 4, 1, 1, 1, 0, 0, 1 },
  };
  const conv_case *k = &ks[_i];
  char label[180];
  case_str(k, label, sizeof label);
  strncat(label, " (second order)", sizeof label - strlen(label) - 1);
  case_data d = make_data(k, 4000 + (uint64_t)_i);
  for (int64_t i = 0; i < d.nw; i++) d.w[i] *= 0.5f; /* keep tanh away from saturation */
  second_ctx s = { *k, d.gy };
  const ut_shape shapes[3] = { x_shape(k), w_shape(k), UT_SHAPE(k->o) };
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 3, .shapes = shapes,
                                  .values = (const float *[]){ d.x, d.w, d.bias }, .build = build_second_order,
                                  .ctx = &s, .max_samples = 24, .h = 1e-2, .rel_tol = 2e-2, .abs_tol = 2e-3,
                                  .seed = 5000 + (uint64_t)_i });
  free_data(&d);
}
END_TEST

/* ut_conv2d_layer: parameter names and shapes, PyTorch's bounds 1/sqrt(C*k*k) for both, and a
 * forward pass equal to ut_conv2d with the same tensors. */
START_TEST(test_conv_layer) {
  const conv_case k = { 2, 3, 6, 5, 7, 3, 3, 1, 1, 1, 1 };
  ut_store *st = ut_store_new(test_runtime(), 77);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, x_shape(&k));
  ut_tensor *y = ut_conv2d_layer(g, x, "enc.conv1", k.o, k.kh, cfg_of(&k), 1);
  ut_tensor *y_nob = ut_conv2d_layer(g, x, "enc.conv2", k.o, k.kh, cfg_of(&k), 0);
  ck_assert_ut_ptr(y);
  ck_assert_ut_ptr(y_nob);
  ck_assert_msg(ut_shape_equal(ut_tensor_shape(y), y_shape(&k)), "layer output shape");
  ck_assert_ptr_null(ut_store_find(st, "enc.conv2.b"));
  ut_store_tensor *wt = ut_store_find(st, "enc.conv1.w"), *bt = ut_store_find(st, "enc.conv1.b");
  ck_assert_ptr_nonnull(wt);
  ck_assert_ptr_nonnull(bt);
  ck_assert_msg(ut_shape_equal(ut_store_tensor_shape(wt), w_shape(&k)), "weight shape");
  ck_assert_msg(ut_shape_equal(ut_store_tensor_shape(bt), UT_SHAPE(k.o)), "bias shape");
  case_data d = make_data(&k, 6000);
  ck_assert_ut_ok(ut_store_tensor_read(st, wt, d.w));
  ck_assert_ut_ok(ut_store_tensor_read(st, bt, d.bias));
  const double bound = 1 / sqrt((double)(k.c * k.kh * k.kw));
  double wmax = 0, bmax = 0;
  for (int64_t i = 0; i < d.nw; i++) wmax = fmax(wmax, fabs(d.w[i]));
  for (int i = 0; i < k.o; i++) bmax = fmax(bmax, fabs(d.bias[i]));
  ck_assert_msg(wmax <= bound && wmax > 0.5 * bound, "weights within +-%g, max |w| %g", bound, wmax);
  ck_assert_msg(bmax <= bound && bmax > 0.2 * bound, "bias within +-%g, max |b| %g", bound, bmax);

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

/* Shapes that do not fit fail with UT_ERR_SHAPE and a message naming conv2d and the input. */
START_TEST(test_conv_bad_shapes) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  struct {
    ut_shape x, w, b;
    ut_conv_cfg cfg;
    const char *needle;
  } bad[] = {
    { UT_SHAPE(1, 3, 4, 4), UT_SHAPE(2, 4, 3, 3), UT_SHAPE(2), UT_CONV(1, 1), "[O, C, kh, kw]" },     /* channels */
    { UT_SHAPE(3, 4, 4), UT_SHAPE(2, 3, 3, 3), UT_SHAPE(2), UT_CONV(1, 1), "[B, C, H, W]" },          /* rank */
    { UT_SHAPE(1, 3, 4, 4), UT_SHAPE(2, 3, 3, 3), UT_SHAPE(3), UT_CONV(1, 1), "bias" },              /* bias */
    { UT_SHAPE(1, 3, 3, 5), UT_SHAPE(2, 3, 3, 3), UT_SHAPE(2), UT_CONV_REFLECT(1, 3), "reflect" },   /* pad >= H */
    { UT_SHAPE(1, 3, 2, 2), UT_SHAPE(2, 3, 5, 5), UT_SHAPE(2), UT_CONV(1, 1), "larger" },            /* kernel */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ut_graph *g = ut_graph_new(test_runtime(), st);
    ut_tensor *x = ut_input(g, "images", UT_F32, bad[i].x);
    ut_tensor *w = ut_input(g, "kernel", UT_F32, bad[i].w);
    ut_tensor *b = ut_input(g, "offset", UT_F32, bad[i].b);
    ut_tensor *y = ut_conv2d(g, x, w, b, bad[i].cfg);
    ck_assert_msg(y == NULL, "case %zu: a bad convolution was accepted", i);
    ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
    const char *msg = ut_last_error();
    ck_assert_msg(strstr(msg, "conv2d") && strstr(msg, bad[i].needle), "case %zu: message '%s' lacks '%s'", i, msg,
                  bad[i].needle);
    ck_assert_ptr_null(ut_plan_compile(g, NULL));
    ut_graph_free(g);
  }
  ut_store_free(st);
}
END_TEST

static Suite *conv_suite(void) {
  Suite *s = suite_create("ops_conv");
  TCase *tc = tcase_create("forward");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_conv_forward, 0, N_CASES);
  tcase_add_test(tc, test_conv_layer);
  tcase_add_test(tc, test_conv_bad_shapes);
  suite_add_tcase(s, tc);
  tc = tcase_create("gradient");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_conv_gradient, 0, N_CASES);
  tcase_add_loop_test(tc, test_conv_second_order, 0, 2);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(conv_suite()); }
