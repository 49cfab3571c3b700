/* Max pooling, general average pooling and bilinear upsampling by two: the forward pass against
 * the PyTorch definitions looped on the host, the gradient against the host's adjoint (every
 * element) and central finite differences, and a gradient of the gradient by finite
 * differences. Shapes: batch 1, a 1x1 image, odd sizes whose last rows a window grid drops,
 * overlapping windows, C = 3 and 5, H != W, element counts no multiple of a work-group. Also
 * max pooling's tie and NaN rule, PyTorch's own numbers for a 2x2 bilinear upsampling, and
 * the argument errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

typedef enum { K_MAX, K_AVG, K_BILINEAR } pool_kind;

typedef struct {
  pool_kind kind;
  ut_shape x;
  int k, s, p, include; /* s = 0: the kernel size */
} pool_case;

static const pool_case cases[] = {
  { K_MAX, UT_SHAPE(2, 3, 5, 7), 2, 2, 0, 0 }, /* VGG's MaxPool2d(2) on odd sizes */
  { K_MAX, UT_SHAPE(2, 3, 6, 8), 2, 2, 0, 0 }, /* 2x2 windows that tile the image (the maxpool2x2 kernels) */
  { K_MAX, UT_SHAPE(1, 5, 7, 6), 3, 2, 0, 0 }, /* overlapping windows */
  { K_MAX, UT_SHAPE(1, 1, 2, 2), 2, 2, 0, 0 }, /* to 1x1 */
  { K_MAX, UT_SHAPE(2, 3, 4, 5), 2, 1, 0, 0 },
  { K_MAX, UT_SHAPE(1, 3, 3, 3), 3, 0, 0, 0 }, /* stride 0 = kernel */
  { K_MAX, UT_SHAPE(3, 2, 9, 5), 3, 2, 0, 0 },
  { K_MAX, UT_SHAPE(1, 3, 1, 1), 1, 1, 0, 0 }, /* a 1x1 image */
  { K_AVG, UT_SHAPE(2, 3, 7, 6), 3, 2, 1, 0 }, /* UNIT: AvgPool2d(3, 2, 1, count_include_pad=False) */
  { K_AVG, UT_SHAPE(2, 3, 7, 6), 3, 2, 1, 1 },
  { K_AVG, UT_SHAPE(1, 5, 1, 1), 3, 2, 1, 0 }, /* a 1x1 image: one element in the window */
  { K_AVG, UT_SHAPE(1, 3, 2, 3), 3, 2, 1, 0 },
  { K_AVG, UT_SHAPE(2, 3, 8, 9), 2, 0, 0, 1 }, /* AvgPool2d(2) */
  { K_AVG, UT_SHAPE(1, 2, 5, 9), 3, 1, 1, 0 },
  { K_AVG, UT_SHAPE(1, 3, 6, 5), 4, 3, 2, 0 }, /* pad = kernel / 2 */
  { K_AVG, UT_SHAPE(1, 3, 6, 5), 4, 3, 2, 1 },
  { K_BILINEAR, UT_SHAPE(1, 1, 1, 1), 0, 0, 0, 0 },
  { K_BILINEAR, UT_SHAPE(2, 3, 1, 4), 0, 0, 0, 0 },
  { K_BILINEAR, UT_SHAPE(1, 3, 3, 5), 0, 0, 0, 0 },
  { K_BILINEAR, UT_SHAPE(2, 5, 4, 4), 0, 0, 0, 0 },
  { K_BILINEAR, UT_SHAPE(1, 2, 7, 2), 0, 0, 0, 0 },
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static ut_tensor *build_pool(ut_graph *g, ut_tensor **in, void *ctx) {
  const pool_case *c = ctx;
  switch (c->kind) {
  case K_MAX: return ut_max_pool2d(g, in[0], c->k, c->s);
  case K_AVG: return ut_avg_pool2d(g, in[0], c->k, c->s, c->p, c->include);
  default: return ut_upsample_bilinear2x(g, in[0]);
  }
}

static void case_str(const pool_case *c, char *buf, size_t size) {
  char sh[64];
  ut_shape_str(c->x, sh, sizeof sh);
  static const char *names[] = { "max_pool2d", "avg_pool2d", "upsample_bilinear2x" };
  snprintf(buf, size, "%s %s k%d s%d p%d%s", names[c->kind], sh, c->k, c->s, c->p,
           c->kind == K_AVG ? (c->include ? " count_include_pad" : " exclude_pad") : "");
}

static int stride_of(const pool_case *c) { return c->s ? c->s : c->k; }

static ut_shape out_shape(const pool_case *c) {
  ut_shape s = c->x;
  if (c->kind == K_BILINEAR) return UT_SHAPE(s.d[0], s.d[1], 2 * s.d[2], 2 * s.d[3]);
  int st = stride_of(c);
  return UT_SHAPE(s.d[0], s.d[1], (s.d[2] + 2 * c->p - c->k) / st + 1, (s.d[3] + 2 * c->p - c->k) / st + 1);
}

/* One axis of PyTorch's bilinear map (align_corners=False, scale 2): output o reads i0 and i1
 * with weights l0 and l1 (area_pixel_compute_source_index, clamped at 0 for linear modes). */
static void bilinear_axis(int o, int size, int *i0, int *i1, double *l0, double *l1) {
  double src = 0.5 * (o + 0.5) - 0.5;
  if (src < 0) src = 0;
  *i0 = (int)floor(src);
  *i1 = *i0 < size - 1 ? *i0 + 1 : *i0;
  *l1 = src - *i0;
  *l0 = 1 - *l1;
}

/* Forward result and, for loss = sum(out * w), the gradient of every input element. */
static void reference(const pool_case *c, const float *x, const float *w, float *out, float *grad) {
  const int64_t P = c->x.d[0] * c->x.d[1], H = c->x.d[2], W = c->x.d[3];
  ut_shape os = out_shape(c);
  const int64_t OH = os.d[2], OW = os.d[3];
  const int k = c->k, s = stride_of(c), p = c->p;
  double *g = calloc((size_t)(P * H * W), sizeof *g);
  for (int64_t pl = 0; pl < P; pl++)
    for (int oy = 0; oy < OH; oy++)
      for (int ox = 0; ox < OW; ox++) {
        const float *xp = x + pl * H * W;
        double *gp = g + pl * H * W;
        int64_t o = (pl * OH + oy) * OW + ox;
        double v = 0;
        if (c->kind == K_MAX) { /* the first maximum in row-major order takes the gradient */
          int64_t best = -1;
          for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
              int64_t i = (int64_t)(oy * s + ky) * W + ox * s + kx;
              if (best < 0 || xp[i] > xp[best]) best = i;
            }
          v = xp[best];
          gp[best] += w[o];
        } else if (c->kind == K_AVG) {
          int count = 0;
          for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
              int y = oy * s - p + ky, xx = ox * s - p + kx;
              count += y >= 0 && y < H && xx >= 0 && xx < W;
            }
          double div = c->include ? (double)k * k : count;
          for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
              int y = oy * s - p + ky, xx = ox * s - p + kx;
              if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
              v += xp[y * W + xx] / div;
              gp[y * W + xx] += w[o] / div;
            }
        } else {
          int y0, y1, x0, x1;
          double ly0, ly1, lx0, lx1;
          bilinear_axis(oy, (int)H, &y0, &y1, &ly0, &ly1);
          bilinear_axis(ox, (int)W, &x0, &x1, &lx0, &lx1);
          v = ly0 * (lx0 * xp[y0 * W + x0] + lx1 * xp[y0 * W + x1]) + ly1 * (lx0 * xp[y1 * W + x0] + lx1 * xp[y1 * W + x1]);
          gp[y0 * W + x0] += ly0 * lx0 * w[o];
          gp[y0 * W + x1] += ly0 * lx1 * w[o];
          gp[y1 * W + x0] += ly1 * lx0 * w[o];
          gp[y1 * W + x1] += ly1 * lx1 * w[o];
        }
        out[o] = (float)v;
      }
  for (int64_t i = 0; i < P * H * W; i++) grad[i] = (float)g[i];
  free(g);
}

/* Input values: for max pooling a shuffled ladder with steps of 0.05, so no two elements are
 * closer than the finite-difference step can move them and no window's choice flips. */
static float *make_input(const pool_case *c, uint64_t seed) {
  int64_t n = gc_numel(c->x);
  float *x = gc_random_values(seed, n, -2, 2);
  if (c->kind != K_MAX) return x;
  float *r = gc_random_values(seed + 1, n, 0, 1);
  for (int64_t i = 0; i < n; i++) x[i] = 0.05f * (float)i - 0.025f * (float)n;
  for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates with the fixed random values */
    int64_t j = (int64_t)(r[i] * (float)(i + 1));
    if (j > i) j = i;
    float t = x[i];
    x[i] = x[j];
    x[j] = t;
  }
  free(r);
  return x;
}

START_TEST(test_pool) {
  const pool_case *c = &cases[_i];
  ut_shape os = out_shape(c);
  int64_t n = gc_numel(c->x), no = gc_numel(os);
  float *x = make_input(c, 70 + (uint64_t)_i), *w = gc_random_values(170 + (uint64_t)_i, no, 0.1f, 1);
  float *out = malloc((size_t)no * sizeof *out), *grad = malloc((size_t)n * sizeof *grad);
  reference(c, x, w, out, grad);
  char label[128];
  case_str(c, label, sizeof label);
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &c->x, .values = (const float *[]){ x },
                                  .build = build_pool, .ctx = (void *)c, .weights = w, .expect = out, .expect_shape = os,
                                  .fwd_abs_tol = 1e-6, .fwd_rel_tol = 1e-6, .expect_grad = (const float *[]){ grad },
                                  .max_samples = 32, .seed = 270 + (uint64_t)_i });
  free(x), free(w), free(out), free(grad);
}
END_TEST

static const pool_case so_cases[] = {
  { K_MAX, UT_SHAPE(1, 3, 5, 5), 3, 2, 0, 0 },
  { K_MAX, UT_SHAPE(2, 1, 4, 3), 2, 2, 0, 0 },
  { K_MAX, UT_SHAPE(1, 2, 4, 4), 2, 2, 0, 0 }, /* tiles */
  { K_AVG, UT_SHAPE(1, 3, 5, 6), 3, 2, 1, 0 },
  { K_BILINEAR, UT_SHAPE(1, 2, 3, 4), 0, 0, 0, 0 },
};
#define N_SO_CASES ((int)(sizeof so_cases / sizeof so_cases[0]))

/* Gradients of gradients: max pooling's backward (a scatter by the window choice) and the
 * adjoints of average pooling and bilinear upsampling differentiated again. */
START_TEST(test_pool_second_order) {
  const pool_case *c = &so_cases[_i];
  float *x = make_input(c, 300 + (uint64_t)_i);
  gc_second_order so = { build_pool, (void *)c, 1 };
  char label[128];
  case_str(c, label, sizeof label);
  strncat(label, " (second order)", sizeof label - strlen(label) - 1);
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &c->x, .values = (const float *[]){ x },
                                  .build = gc_build_grad_of, .ctx = &so, .max_samples = 24, .seed = 400 + (uint64_t)_i });
  free(x);
}
END_TEST

/* Runs y = max_pool2d(x) and the gradient of sum(y * wts) on fixed values; returns y and dx. */
static void run_max_pool(const float *x, ut_shape xs, int k, int s, const float *wts, float *y, float *dx) {
  ut_store *st = ut_store_new(test_runtime(), 3);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *xt = ut_param(g, "x", xs, (ut_init){ UT_INIT_ZERO, 0, 0 });
  ut_tensor *yt = ut_max_pool2d(g, xt, k, s);
  ck_assert_ut_ptr(yt);
  ut_tensor *l = ut_sum_all(g, ut_mul(g, yt, ut_constant(g, ut_tensor_shape(yt), wts)));
  ck_assert_ut_ok(ut_backward(g, l, (ut_tensor_list){ 1, &xt }));
  ut_tensor *outs[2] = { yt, ut_grad(g, xt) };
  ck_assert_ut_ptr(outs[1]);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = outs, .n_outputs = 2 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_store_tensor_write(st, ut_store_find(st, "x"), x));
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, outs[0], y));
  ck_assert_ut_ok(ut_read(p, outs[1], dx));
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
}

/* Ties give the whole gradient to the first maximum in row-major window order; a NaN is the
 * maximum (PyTorch propagates it) and takes the gradient. Overlapping windows that choose
 * the same element add their gradients there. */
START_TEST(test_max_pool_ties) {
  const float x[8] = { 1, 3, 3, 0, /* row 2 */ 3, 2, NAN, 5 };
  const float wts[2] = { 10, 20 };
  float y[2], dx[8];
  run_max_pool(x, UT_SHAPE(1, 1, 2, 4), 2, 2, wts, y, dx);
  ck_assert_msg(y[0] == 3 && isnan(y[1]), "max_pool2d of a tie and a NaN gave %g, %g (want 3, nan)", y[0], y[1]);
  const float want[8] = { 0, 10, 0, 0, 0, 0, 20, 0 };
  for (int i = 0; i < 8; i++) ck_assert_msg(dx[i] == want[i], "tie/NaN gradient[%d] = %g, want %g", i, dx[i], want[i]);

  /* Kernel 2, stride 1 on a 2x4 image: windows at columns 0, 1 and 2. x[1] = 7 wins windows
   * 0 and 1 (gradients 1 + 2), the tie 5 / 5 of window 2 goes to column 2. */
  const float x2[8] = { 1, 7, 5, 5, /* row 2 */ 0, 1, 2, 3 };
  const float w2[3] = { 1, 2, 4 };
  float y2[3], dx2[8];
  run_max_pool(x2, UT_SHAPE(1, 1, 2, 4), 2, 1, w2, y2, dx2);
  const float want_y2[3] = { 7, 7, 5 }, want2[8] = { 0, 3, 4, 0, 0, 0, 0, 0 };
  for (int i = 0; i < 3; i++) ck_assert_msg(y2[i] == want_y2[i], "overlap y[%d] = %g, want %g", i, y2[i], want_y2[i]);
  for (int i = 0; i < 8; i++) ck_assert_msg(dx2[i] == want2[i], "overlap gradient[%d] = %g, want %g", i, dx2[i], want2[i]);
}
END_TEST

/* PyTorch's own output for F.interpolate([[1, 2], [3, 4]], scale_factor=2, mode='bilinear',
 * align_corners=False), so the host reference above is not the only witness. */
START_TEST(test_bilinear_known) {
  static const float x[4] = { 1, 2, 3, 4 };
  static const float want[16] = { 1.0f, 1.25f, 1.75f, 2.0f, 1.5f, 1.75f, 2.25f, 2.5f,
                                  2.5f, 2.75f, 3.25f, 3.5f, 3.0f, 3.25f, 3.75f, 4.0f };
  const pool_case c = { K_BILINEAR, UT_SHAPE(1, 1, 2, 2), 0, 0, 0, 0 };
  gc_assert_forward(&(gc_case){ .label = "bilinear 2x2 (PyTorch's numbers)", .n_inputs = 1, .shapes = &c.x,
                                .values = (const float *[]){ x }, .build = build_pool, .ctx = (void *)&c, .expect = want,
                                .expect_shape = UT_SHAPE(1, 1, 4, 4), .fwd_abs_tol = 1e-7, .fwd_rel_tol = 1e-7 });
}
END_TEST

/* Bad arguments fail at graph building with a status and a message naming the op. */
START_TEST(test_pool_errors) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  struct {
    pool_case c;
    ut_status status;
    const char *needle;
  } bad[] = {
    { { K_MAX, UT_SHAPE(1, 3, 2, 5), 3, 2, 0, 0 }, UT_ERR_SHAPE, "[1, 3, 2, 5]" },  /* window larger than H */
    { { K_MAX, UT_SHAPE(1, 3, 4, 4), 0, 1, 0, 0 }, UT_ERR_INVALID_ARGUMENT, "kernel" },
    { { K_MAX, UT_SHAPE(3, 4, 4), 2, 2, 0, 0 }, UT_ERR_SHAPE, "[B, C, H, W]" },
    { { K_AVG, UT_SHAPE(1, 3, 4, 4), 3, 2, 2, 0 }, UT_ERR_INVALID_ARGUMENT, "half" }, /* pad > kernel / 2 */
    { { K_AVG, UT_SHAPE(1, 3, 4, 4), 3, -1, 1, 0 }, UT_ERR_INVALID_ARGUMENT, "stride" },
    { { K_BILINEAR, UT_SHAPE(4, 4), 0, 0, 0, 0 }, UT_ERR_SHAPE, "bilinear" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ut_graph *g = ut_graph_new(test_runtime(), st);
    ut_tensor *x = ut_input(g, "feat", UT_F32, bad[i].c.x);
    ut_tensor *y = build_pool(g, &x, &bad[i].c);
    ck_assert_msg(y == NULL, "case %zu: bad arguments were accepted", i);
    ck_assert_int_eq(ut_graph_status(g), bad[i].status);
    const char *msg = ut_last_error();
    ck_assert_msg(strstr(msg, "feat") && strstr(msg, bad[i].needle), "case %zu: message '%s' lacks 'feat' or '%s'", i, msg,
                  bad[i].needle);
    ut_graph_free(g);
  }
  ut_store_free(st);
}
END_TEST

static Suite *pool_suite(void) {
  Suite *s = suite_create("ops_pool");
  TCase *tc = tcase_create("pool");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_pool, 0, N_CASES);
  tcase_add_loop_test(tc, test_pool_second_order, 0, N_SO_CASES);
  tcase_add_test(tc, test_max_pool_ties);
  tcase_add_test(tc, test_bilinear_known);
  tcase_add_test(tc, test_pool_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(pool_suite()); }
