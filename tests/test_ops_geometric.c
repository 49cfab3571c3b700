/* Geometric transforms (OverLORD's T): affine bilinear resampling against exact pixel
 * permutations (identity, mirror, quarter turn) and against a host reference written from
 * PyTorch's definitions (affine_grid, then grid_sample's unnormalize and bilinear weights, in
 * double); gradients in x and theta against host references and central differences, and
 * second order; the composition of transforms; the random crop, flip and rotation matrices'
 * statistics over many runs and their reproducibility from the seed; the hair-mask product. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ---------------------------------------------------------------------------------------------
 * Host reference.
 */

/* out = S(x, theta) [B, C, oh, ow]; with w (one weight per output element) also the gradients
 * of sum(out * w): gx like x, gt [B, 6]. Follows F.affine_grid and F.grid_sample with
 * align_corners=False, zero padding, bilinear, including the derivative at integer points
 * (taken from the floor cell, as PyTorch's backward). */
static void ref_sample(ut_shape xs, const float *x, const float *theta, int64_t oh, int64_t ow, const float *w, float *out,
                       float *gx, float *gt) {
  int64_t B = xs.d[0], C = xs.d[1], H = xs.d[2], W = xs.d[3];
  double *ax = gx ? calloc((size_t)gc_numel(xs), sizeof *ax) : NULL, *at = calloc((size_t)B * 6, sizeof *at);
  for (int64_t b = 0; b < B; b++) {
    const float *t = theta + 6 * b;
    for (int64_t i = 0; i < oh; i++)
      for (int64_t j = 0; j < ow; j++) {
        double xn = (2.0 * j + 1) / ow - 1, yn = (2.0 * i + 1) / oh - 1;
        double gxn = t[0] * xn + t[1] * yn + t[2], gyn = t[3] * xn + t[4] * yn + t[5];
        double ix = ((gxn + 1) * W - 1) / 2, iy = ((gyn + 1) * H - 1) / 2;
        double fx = floor(ix), fy = floor(iy), wx1 = ix - fx, wy1 = iy - fy;
        int64_t x0 = (int64_t)fx, y0 = (int64_t)fy;
        double dix = 0, diy = 0;
        for (int64_t c = 0; c < C; c++) {
          const float *p = x + (b * C + c) * H * W;
          double v[2][2];
          for (int dy = 0; dy < 2; dy++)
            for (int dx = 0; dx < 2; dx++) {
              int64_t yy = y0 + dy, xx = x0 + dx;
              v[dy][dx] = (yy >= 0 && yy < H && xx >= 0 && xx < W) ? p[yy * W + xx] : 0.0;
            }
          int64_t o = ((b * C + c) * oh + i) * ow + j;
          out[o] = (float)(v[0][0] * (1 - wx1) * (1 - wy1) + v[0][1] * wx1 * (1 - wy1) + v[1][0] * (1 - wx1) * wy1 +
                           v[1][1] * wx1 * wy1);
          if (!w) continue;
          dix += w[o] * ((v[0][1] - v[0][0]) * (1 - wy1) + (v[1][1] - v[1][0]) * wy1);
          diy += w[o] * ((v[1][0] - v[0][0]) * (1 - wx1) + (v[1][1] - v[0][1]) * wx1);
          for (int dy = 0; dy < 2 && ax; dy++)
            for (int dx = 0; dx < 2; dx++) {
              int64_t yy = y0 + dy, xx = x0 + dx;
              if (yy >= 0 && yy < H && xx >= 0 && xx < W)
                ax[(b * C + c) * H * W + yy * W + xx] += w[o] * (dx ? wx1 : 1 - wx1) * (dy ? wy1 : 1 - wy1);
            }
        }
        double sx = dix * W / 2, sy = diy * H / 2, d[6] = { sx * xn, sx * yn, sx, sy * xn, sy * yn, sy };
        for (int k = 0; k < 6; k++) at[b * 6 + k] += d[k];
      }
  }
  for (int64_t k = 0; gx && k < gc_numel(xs); k++) gx[k] = (float)ax[k];
  for (int64_t k = 0; gt && k < B * 6; k++) gt[k] = (float)at[k];
  free(ax);
  free(at);
}

/* The theta whose pixel map is ix = a j + b i + c, iy = d j + e i + f (inverting the fold of
 * cl/geometric.cl). With a, b, d, e multiples of 1/4 and c, f = 1/8 mod 1/4 every sample point
 * stays 1/8 pixel away from the grid, where bilinear sampling has its kinks in theta. */
static void theta_from_pixels(const double m[6], int64_t h, int64_t w, int64_t oh, int64_t ow, float *t) {
  double t0 = m[0] * ow / w, t1 = m[1] * oh / w, t3 = m[3] * ow / h, t4 = m[4] * oh / h;
  t[0] = (float)t0, t[1] = (float)t1, t[2] = (float)((2 * m[2] - m[0] - m[1] + 1) / w - 1 + t0 + t1);
  t[3] = (float)t3, t[4] = (float)t4, t[5] = (float)((2 * m[5] - m[3] - m[4] + 1) / h - 1 + t3 + t4);
}

typedef struct {
  int64_t oh, ow; /* 0: the input's size */
  const float *theta; /* NULL: theta is input 1 */
} gs_ctx;

static ut_tensor *build_sample(ut_graph *g, ut_tensor **in, void *ctx) {
  const gs_ctx *c = ctx;
  ut_shape s = ut_tensor_shape(in[0]);
  ut_tensor *theta = c->theta ? ut_constant(g, UT_SHAPE(s.d[0], 2, 3), c->theta) : in[1];
  return c->oh ? ut_affine_grid_sample_to(g, in[0], theta, c->oh, c->ow) : ut_affine_grid_sample(g, in[0], theta);
}

/* ---------------------------------------------------------------------------------------------
 * Exact cases: identity, mirrors, quarter turn, nearest-free crops.
 */
START_TEST(test_exact_permutations) {
  static const float ident[6] = { 1, 0, 0, 0, 1, 0 }, hflip[6] = { -1, 0, 0, 0, 1, 0 }, vflip[6] = { 1, 0, 0, 0, -1, 0 },
                     rot90[6] = { 0, -1, 0, 1, 0, 0 };
  static const ut_shape shapes[] = { UT_SHAPE(2, 3, 5, 7), UT_SHAPE(1, 1, 1, 1), UT_SHAPE(3, 2, 6, 6), UT_SHAPE(1, 5, 9, 9) };
  for (int si = 0; si < 4; si++) {
    ut_shape s = shapes[si];
    int64_t B = s.d[0], C = s.d[1], H = s.d[2], W = s.d[3], n = gc_numel(s);
    float *x = gc_random_values(10 + (uint64_t)si, n, -2, 2), *ref = malloc((size_t)n * sizeof *ref);
    float *theta = malloc((size_t)B * 6 * sizeof *theta);
    for (int kind = 0; kind < 4; kind++) {
      if (kind == 3 && H != W) continue;
      const float *t = kind == 0 ? ident : kind == 1 ? hflip : kind == 2 ? vflip : rot90;
      for (int64_t b = 0; b < B; b++) memcpy(theta + 6 * b, t, 6 * sizeof *t);
      for (int64_t pl = 0; pl < B * C; pl++)
        for (int64_t i = 0; i < H; i++)
          for (int64_t j = 0; j < W; j++) {
            int64_t si2 = kind == 0 ? i : kind == 1 ? i : kind == 2 ? H - 1 - i : j;
            int64_t sj = kind == 0 ? j : kind == 1 ? W - 1 - j : kind == 2 ? j : W - 1 - i;
            ref[(pl * H + i) * W + j] = x[(pl * H + si2) * W + sj];
          }
      static const char *names[] = { "identity", "mirror", "vertical mirror", "quarter turn" };
      char label[96], sh[64];
      snprintf(label, sizeof label, "grid_sample %s %s", names[kind], ut_shape_str(s, sh, sizeof sh));
      gc_assert_forward(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &s, .values = (const float *[]){ x },
                                    .build = build_sample, .ctx = &(gs_ctx){ 0, 0, theta }, .expect = ref, .expect_shape = s,
                                    .fwd_abs_tol = 1e-30, .fwd_rel_tol = 1e-30 });
    }
    free(x);
    free(ref);
    free(theta);
  }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * General forward against the host reference.
 */
typedef struct {
  ut_shape s;
  int64_t oh, ow;
} fwd_case;

static const fwd_case fwd_cases[] = {
  { UT_SHAPE(1, 1, 1, 1), 0, 0 },  { UT_SHAPE(2, 3, 5, 7), 0, 0 },  { UT_SHAPE(3, 5, 9, 11), 0, 0 },
  { UT_SHAPE(1, 5, 6, 4), 3, 9 },  { UT_SHAPE(2, 1, 17, 13), 8, 8 }, { UT_SHAPE(1, 2, 1, 1), 3, 2 },
};
#define N_FWD ((int)(sizeof fwd_cases / sizeof fwd_cases[0]))

/* Random rotation, anisotropic zoom and translation per sample; some points fall outside. */
static void random_theta(uint64_t seed, int64_t B, float *theta) {
  float u[5];
  uint64_t st = seed;
  for (int64_t b = 0; b < B; b++) {
    test_fill_uniform(&st, u, 5, -1, 1);
    double a = 3.0 * u[0], sx = 0.9 + 0.6 * u[1], sy = 0.9 - 0.5 * u[2];
    float *t = theta + 6 * b;
    t[0] = (float)(sx * cos(a)), t[1] = (float)(-sy * sin(a)), t[2] = 0.4f * u[3];
    t[3] = (float)(sx * sin(a)), t[4] = (float)(sy * cos(a)), t[5] = 0.4f * u[4];
  }
}

START_TEST(test_forward_reference) {
  const fwd_case *fc = &fwd_cases[_i];
  ut_shape s = fc->s;
  int64_t B = s.d[0], oh = fc->oh ? fc->oh : s.d[2], ow = fc->ow ? fc->ow : s.d[3];
  int64_t no = B * s.d[1] * oh * ow;
  float *x = gc_random_values(20 + (uint64_t)_i, gc_numel(s), -2, 2), *ref = malloc((size_t)no * sizeof *ref);
  float theta[6 * 3];
  random_theta(30 + (uint64_t)_i, B, theta);
  if (_i == 2) { /* a plain crop of the centre half and a crop at an offset */
    static const float crop[12] = { 0.5f, 0, 0, 0, 0.5f, 0, 0.6f, 0, 0.3f, 0, 0.6f, -0.35f };
    memcpy(theta, crop, sizeof crop);
  }
  ref_sample(s, x, theta, oh, ow, NULL, ref, NULL, NULL);
  char label[96], sh[64];
  snprintf(label, sizeof label, "grid_sample %s -> %lldx%lld", ut_shape_str(s, sh, sizeof sh), (long long)oh, (long long)ow);
  gc_assert_forward(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &s, .values = (const float *[]){ x },
                                .build = build_sample, .ctx = &(gs_ctx){ fc->oh, fc->ow, theta }, .expect = ref,
                                .expect_shape = UT_SHAPE(B, s.d[1], oh, ow), .fwd_abs_tol = 5e-5, .fwd_rel_tol = 1e-5 });
  free(x);
  free(ref);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Gradients.
 */

/* x and theta both differentiated, theta kink-free (theta_from_pixels), against the host's
 * gradients (every element) and central differences. */
START_TEST(test_gradients) {
  const fwd_case *fc = &fwd_cases[_i];
  ut_shape s = fc->s, ts = UT_SHAPE(s.d[0], 2, 3);
  int64_t B = s.d[0], oh = fc->oh ? fc->oh : s.d[2], ow = fc->ow ? fc->ow : s.d[3];
  int64_t no = B * s.d[1] * oh * ow, n = gc_numel(s);
  float *x = gc_random_values(40 + (uint64_t)_i, n, -2, 2), *w = gc_random_values(41 + (uint64_t)_i, no, 0.1f, 1);
  float *ref = malloc((size_t)no * sizeof *ref), *gx = malloc((size_t)n * sizeof *gx), theta[18], gt[18];
  static const double maps[3][6] = {
    { 0.75, -0.5, 0, 0.5, 0.75, 0 }, { -1.25, 0.25, 0, 0, 1.5, 0 }, { 0.5, 0.5, 0, -0.25, 1, 0 } };
  for (int64_t b = 0; b < B; b++) {
    double m[6];
    memcpy(m, maps[b], sizeof m);
    /* centre to centre, then snapped to 1/8 mod 1/4 */
    double cx = (s.d[3] - 1) / 2.0 - m[0] * (ow - 1) / 2.0 - m[1] * (oh - 1) / 2.0;
    double cy = (s.d[2] - 1) / 2.0 - m[3] * (ow - 1) / 2.0 - m[4] * (oh - 1) / 2.0;
    m[2] = floor(cx * 4) / 4 + 0.125, m[5] = floor(cy * 4) / 4 + 0.125;
    theta_from_pixels(m, s.d[2], s.d[3], oh, ow, theta + 6 * b);
  }
  ref_sample(s, x, theta, oh, ow, w, ref, gx, gt);
  char label[96], sh[64];
  snprintf(label, sizeof label, "grid_sample gradients %s -> %lldx%lld", ut_shape_str(s, sh, sizeof sh), (long long)oh,
           (long long)ow);
  ut_shape shapes[2] = { s, ts };
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 2, .shapes = shapes, .values = (const float *[]){ x, theta },
                                  .build = build_sample, .ctx = &(gs_ctx){ fc->oh, fc->ow, NULL }, .weights = w, .expect = ref,
                                  .fwd_abs_tol = 5e-5, .expect_grad = (const float *[]){ gx, gt }, .grad_rel_tol = 1e-4,
                                  .grad_abs_tol = 1e-4, .h = 5e-3, .max_samples = 24 });
  /* Gradients of the gradient: the adjoint's backward in g and theta, grid_sample's in theta. */
  gc_second_order so = { build_sample, &(gs_ctx){ fc->oh, fc->ow, NULL }, 2 };
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 2, .shapes = shapes, .values = (const float *[]){ x, theta },
                                  .build = gc_build_grad_of, .ctx = &so, .h = 5e-3, .max_samples = 12 });
  free(x);
  free(w);
  free(ref);
  free(gx);
}
END_TEST

/* The adjoint's gather over strong zooms in and out, rotations and singular maps (its
 * whole-image fallback), against the host's scatter over every element. */
START_TEST(test_adjoint_extremes) {
  static const float thetas[][6] = {
    { 0.05f, 0, 0.1f, 0, 0.07f, -0.2f },  /* zoom in 20x: many outputs per input pixel */
    { 3.0f, 0, 0.2f, 0, 2.5f, 0 },        /* zoom out: most inputs get nothing */
    { 0.7071f, -0.7071f, 0, 0.7071f, 0.7071f, 0.05f },
    { 1, 1, 0, 1, 1, 0 },                 /* singular: the whole line x = y */
    { 0, 0, 0.3f, 0, 0, -0.1f },          /* every output reads one point */
    { 0.4f, 0, 0.5f, 0, 0, 0.2f },        /* one row, stretched */
  };
  ut_shape s = UT_SHAPE(1, 2, 9, 10);
  int64_t n = gc_numel(s);
  for (int k = 0; k < (int)(sizeof thetas / sizeof thetas[0]); k++) {
    float *x = gc_random_values(60 + (uint64_t)k, n, -1, 1), *w = gc_random_values(61 + (uint64_t)k, n, 0.1f, 1);
    float *ref = malloc((size_t)n * sizeof *ref), *gx = malloc((size_t)n * sizeof *gx);
    ref_sample(s, x, thetas[k], s.d[2], s.d[3], w, ref, gx, NULL);
    char label[64];
    snprintf(label, sizeof label, "grid_sample adjoint, theta %d", k);
    gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &s, .values = (const float *[]){ x },
                                    .build = build_sample, .ctx = &(gs_ctx){ 0, 0, thetas[k] }, .weights = w, .expect = ref,
                                    .fwd_abs_tol = 5e-5, .expect_grad = (const float *[]){ gx }, .grad_rel_tol = 1e-4,
                                    .grad_abs_tol = 1e-4, .max_samples = 16 });
    free(x);
    free(w);
    free(ref);
    free(gx);
  }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Composition and rotation matrices.
 */
static ut_tensor *build_compose(ut_graph *g, ut_tensor **in, void *ctx) {
  (void)ctx;
  return ut_affine_compose(g, in[0], in[1]);
}

static ut_tensor *build_rotation(ut_graph *g, ut_tensor **in, void *ctx) {
  (void)ctx;
  return ut_rotation_theta(g, in[0]);
}

START_TEST(test_compose_and_rotation) {
  enum { B = 3 };
  float *a = gc_random_values(70, B * 6, -2, 2), *b = gc_random_values(71, B * 6, -2, 2), ref[B * 6];
  for (int k = 0; k < B; k++)
    for (int r = 0; r < 2; r++)
      for (int c = 0; c < 3; c++) {
        double acc = c == 2 ? a[k * 6 + r * 3 + 2] : 0;
        for (int m = 0; m < 2; m++) acc += (double)a[k * 6 + r * 3 + m] * b[k * 6 + m * 3 + c];
        ref[k * 6 + r * 3 + c] = (float)acc;
      }
  ut_shape ts[2] = { UT_SHAPE(B, 2, 3), UT_SHAPE(B, 6) };
  gc_assert_gradcheck(&(gc_case){ .label = "affine_compose", .n_inputs = 2, .shapes = ts, .values = (const float *[]){ a, b },
                                  .build = build_compose, .ctx = NULL, .expect = ref, .expect_shape = UT_SHAPE(B, 2, 3) });
  float ang[B] = { -2.5f, 0.3f, 1.2f }, rref[B * 6];
  for (int k = 0; k < B; k++) {
    double c = cos(ang[k]), s = sin(ang[k]);
    float row[6] = { (float)c, (float)-s, 0, (float)s, (float)c, 0 };
    memcpy(rref + 6 * k, row, sizeof row);
  }
  ut_shape as = UT_SHAPE(B);
  gc_assert_gradcheck(&(gc_case){ .label = "rotation_theta", .n_inputs = 1, .shapes = &as, .values = (const float *[]){ ang },
                                  .build = build_rotation, .ctx = NULL, .expect = rref, .fwd_abs_tol = 1e-6,
                                  .expect_shape = UT_SHAPE(B, 2, 3) });
  gc_second_order so = { build_rotation, NULL, 1 };
  gc_assert_gradcheck(&(gc_case){ .label = "rotation_theta second order", .n_inputs = 1, .shapes = &as,
                                  .values = (const float *[]){ ang }, .build = gc_build_grad_of, .ctx = &so });
  free(a);
  free(b);
}
END_TEST

/* Sampling with mirror then quarter turn equals one sampling with their composition, bit for
 * bit; a rotation by pi/2 from ut_rotation_theta is rot90 up to cos(pi/2) in f32. */
START_TEST(test_compose_applies_in_order) {
  ut_runtime *rt = test_runtime();
  ut_store *st = ut_store_new(rt, 3);
  ut_graph *g = ut_graph_new(rt, st);
  enum { B = 2, C = 3, N = 6 };
  static const float mirror[12] = { -1, 0, 0, 0, 1, 0, -1, 0, 0, 0, 1, 0 }, quarter[12] = { 0, -1, 0, 1, 0, 0, 0, -1, 0, 1, 0, 0 };
  float *xv = gc_random_values(80, B * C * N * N, -1, 1), halfpi[B] = { (float)(M_PI / 2), (float)(M_PI / 2) };
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(B, C, N, N));
  ut_tensor *m = ut_constant(g, UT_SHAPE(B, 2, 3), mirror), *q = ut_constant(g, UT_SHAPE(B, 2, 3), quarter);
  ut_tensor *two = ut_affine_grid_sample(g, ut_affine_grid_sample(g, x, m), q);
  ut_tensor *one = ut_affine_grid_sample(g, x, ut_affine_compose(g, m, q));
  ut_tensor *rot = ut_affine_grid_sample(g, x, ut_rotation_theta(g, ut_constant(g, UT_SHAPE(B), halfpi)));
  ut_tensor *qq = ut_affine_grid_sample(g, x, q);
  ck_assert_ut_ptr(rot);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = (ut_tensor *[]){ two, one, rot, qq }, .n_outputs = 4 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_upload(p, x, xv));
  ck_assert_ut_ok(ut_plan_run(p));
  float a[B * C * N * N], b[B * C * N * N], r[B * C * N * N], e[B * C * N * N];
  ck_assert_ut_ok(ut_read(p, two, a));
  ck_assert_ut_ok(ut_read(p, one, b));
  ck_assert_ut_ok(ut_read(p, rot, r));
  ck_assert_ut_ok(ut_read(p, qq, e));
  ck_assert_msg(memcmp(a, b, sizeof a) == 0, "sampling twice differs from sampling with the composition");
  int64_t at = 0;
  double ratio = test_compare(r, e, B * C * N * N, 1e-5, 0, &at);
  ck_assert_msg(ratio <= 1, "rotation by pi/2 [%lld] = %g, rot90 %g", (long long)at, r[at], e[at]);
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
  free(xv);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Random matrices.
 */

/* Runs `runs` times a plan whose output is theta [B, 2, 3] and reads all of them. */
static void read_runs(uint64_t seed, int which, int64_t B, int runs, float *out) {
  ut_runtime *rt = test_runtime();
  ut_store *st = ut_store_new(rt, seed);
  ut_graph *g = ut_graph_new(rt, st);
  ut_tensor *t = which == 0   ? ut_random_resized_crop_theta(g, "aug.crop", B, 0.6f, 1.0f, 1)
                 : which == 1 ? ut_random_resized_crop_theta(g, "aug.crop", B, 0.8f, 1.0f, 0)
                              : ut_random_rotation_theta(g, "aug.rot", B, 30.0f);
  ck_assert_ut_ptr(t);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &t, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  for (int r = 0; r < runs; r++) {
    ck_assert_ut_ok(ut_plan_run(p));
    ck_assert_ut_ok(ut_read(p, t, out + (size_t)r * B * 6));
  }
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
}

/* 8 runs of 500: N = 4000 draws. Each statistic below is a mean of N independent draws, and
 * the bound is 4 standard deviations of that mean (a fixed seed makes the test deterministic;
 * the bound says a correct generator passes for about 99.99% of seeds). */
START_TEST(test_random_crop_statistics) {
  enum { B = 500, RUNS = 8, N = B * RUNS };
  float *t = malloc((size_t)N * 6 * sizeof *t);
  for (int which = 0; which < 2; which++) {
    double smin = which ? 0.8 : 0.6, flips = 0, area = 0, low = 0, cx = 0, cy = 0;
    read_runs(5, which, B, RUNS, t);
    ck_assert_msg(memcmp(t, t + B * 6, B * 6 * sizeof *t) != 0, "run 2 repeated run 1");
    for (int k = 0; k < N; k++) {
      const float *m = t + 6 * k;
      double r = m[4];
      ck_assert_msg(m[1] == 0 && m[3] == 0 && fabsf(m[0]) == m[4], "sample %d: (%g %g %g; %g %g %g) is no square crop", k, m[0],
                    m[1], m[2], m[3], m[4], m[5]);
      ck_assert_msg(r >= sqrt(smin) - 1e-6 && r <= 1 + 1e-6, "sample %d: side %g outside [sqrt(%g), 1]", k, r, smin);
      ck_assert_msg(fabs(m[2]) <= 1 - r + 1e-6 && fabs(m[5]) <= 1 - r + 1e-6, "sample %d: crop (side %g at %g, %g) leaves the image",
                    k, r, m[2], m[5]);
      flips += m[0] < 0;
      area += r * r;
      low += r * r < (smin + 1) / 2;
      if (1 - r > 1e-3) cx += m[2] / (1 - r), cy += m[5] / (1 - r);
    }
    double sd_half = 4 * 0.5 / sqrt(N), sd_area = 4 * (1 - smin) / sqrt(12.0 * N), sd_c = 4 / sqrt(3.0 * N);
    if (which == 0)
      ck_assert_msg(fabs(flips / N - 0.5) <= sd_half, "flip rate %g, expected 0.5 +- %g", flips / N, sd_half);
    else
      ck_assert_msg(flips == 0, "%g flips with flip off", flips);
    ck_assert_msg(fabs(area / N - (smin + 1) / 2) <= sd_area, "mean area %g, expected %g +- %g", area / N, (smin + 1) / 2, sd_area);
    ck_assert_msg(fabs(low / N - 0.5) <= sd_half, "share of areas below the midpoint %g", low / N);
    ck_assert_msg(fabs(cx / N) <= sd_c && fabs(cy / N) <= sd_c, "mean centre (%g, %g) of U(-1, 1)", cx / N, cy / N);
  }
  free(t);
}
END_TEST

START_TEST(test_random_rotation_statistics) {
  enum { B = 400, RUNS = 5, N = B * RUNS };
  float *t = malloc((size_t)N * 6 * sizeof *t);
  read_runs(9, 2, B, RUNS, t);
  double mean = 0, above = 0, lim = 30 * M_PI / 180;
  for (int k = 0; k < N; k++) {
    const float *m = t + 6 * k;
    double a = atan2(m[3], m[0]);
    ck_assert_msg(fabs(a) <= lim + 1e-5 && m[2] == 0 && m[5] == 0 && m[1] == -m[3] && m[4] == m[0],
                  "sample %d: (%g %g %g; %g %g %g) is no rotation within 30 degrees", k, m[0], m[1], m[2], m[3], m[4], m[5]);
    mean += a;
    above += a > lim / 2;
  }
  double sd_mean = 4 * lim / sqrt(3.0 * N), sd_q = 4 * sqrt(0.25 * 0.75 / N);
  ck_assert_msg(fabs(mean / N) <= sd_mean, "mean angle %g rad", mean / N);
  ck_assert_msg(fabs(above / N - 0.25) <= sd_q, "share above 15 degrees %g, expected 0.25", above / N);
  free(t);
}
END_TEST

/* The same seed and stream give the same matrices run by run in a new store; another seed does not. */
START_TEST(test_random_reproducible) {
  enum { B = 16, RUNS = 3 };
  float a[RUNS * B * 6], b[RUNS * B * 6], c[RUNS * B * 6];
  for (int which = 0; which < 3; which += 2) {
    read_runs(42, which, B, RUNS, a);
    read_runs(42, which, B, RUNS, b);
    read_runs(43, which, B, RUNS, c);
    ck_assert_msg(memcmp(a, b, sizeof a) == 0, "seed 42 gave different matrices twice");
    ck_assert_msg(memcmp(a, c, B * 6 * sizeof *a) != 0, "seeds 42 and 43 gave the same matrices");
  }
}
END_TEST

/* An augmented batch as a model builds it: the image sampled through this run's random crop,
 * checked against the host reference over the matrices the same run produced. */
START_TEST(test_augment_pipeline) {
  ut_runtime *rt = test_runtime();
  ut_store *st = ut_store_new(rt, 11);
  ut_graph *g = ut_graph_new(rt, st);
  enum { B = 3, C = 3, H = 12, W = 12, NX = B * C * H * W };
  float *xv = gc_random_values(90, NX, 0, 1), out[NX], ref[NX], theta[B * 6];
  ut_tensor *x = ut_input(g, "img", UT_F32, UT_SHAPE(B, C, H, W));
  ut_tensor *t = ut_affine_compose(g, ut_random_rotation_theta(g, "aug.rot", B, 10),
                                   ut_random_resized_crop_theta(g, "aug.crop", B, 0.6f, 1, 1));
  ut_tensor *y = ut_affine_grid_sample(g, x, t);
  ck_assert_ut_ptr(y);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = (ut_tensor *[]){ y, t }, .n_outputs = 2 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_upload(p, x, xv));
  for (int r = 0; r < 3; r++) {
    ck_assert_ut_ok(ut_plan_run(p));
    ck_assert_ut_ok(ut_read(p, y, out));
    ck_assert_ut_ok(ut_read(p, t, theta));
    ref_sample(UT_SHAPE(B, C, H, W), xv, theta, H, W, NULL, ref, NULL, NULL);
    int64_t at = 0;
    double ratio = test_compare(out, ref, NX, 5e-5, 1e-5, &at);
    ck_assert_msg(ratio <= 1, "run %d: augmented [%lld] = %.7g, reference %.7g", r, (long long)at, out[at], ref[at]);
  }
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
  free(xv);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Mask (a broadcast ut_mul) and errors.
 */
static ut_tensor *build_mask(ut_graph *g, ut_tensor **in, void *ctx) {
  (void)ctx;
  return ut_mul(g, in[0], in[1]);
}

START_TEST(test_mask) {
  ut_shape xs = UT_SHAPE(2, 3, 4, 5), ms = UT_SHAPE(2, 1, 4, 5);
  int64_t n = gc_numel(xs), P = 20;
  float *x = gc_random_values(100, n, -1, 1), *mask = gc_random_values(101, 2 * P, 0, 1), *w = gc_random_values(102, n, 0.1f, 1);
  float ref[120], gx[120], gm[40] = { 0 };
  for (int64_t b = 0; b < 2; b++)
    for (int64_t c = 0; c < 3; c++)
      for (int64_t k = 0; k < P; k++) {
        int64_t i = (b * 3 + c) * P + k;
        ref[i] = x[i] * mask[b * P + k];
        gx[i] = w[i] * mask[b * P + k];
        gm[b * P + k] += w[i] * x[i];
      }
  ut_shape shapes[2] = { xs, ms };
  gc_assert_gradcheck(&(gc_case){ .label = "image * mask", .n_inputs = 2, .shapes = shapes, .values = (const float *[]){ x, mask },
                                  .build = build_mask, .weights = w, .expect = ref, .expect_shape = xs,
                                  .expect_grad = (const float *[]){ gx, gm }, .grad_abs_tol = 1e-6, .grad_rel_tol = 1e-5 });
  free(x);
  free(mask);
  free(w);
}
END_TEST

START_TEST(test_errors) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "img", UT_F32, UT_SHAPE(2, 3, 4, 4));
  ck_assert_ptr_null(ut_affine_grid_sample(g, x, ut_input(g, "t", UT_F32, UT_SHAPE(3, 2, 3))));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ck_assert_msg(strstr(ut_last_error(), "[3, 2, 3]") && strstr(ut_last_error(), "[2, 3, 4, 4]"), "%s", ut_last_error());
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(ut_affine_grid_sample(g, ut_input(g, "v", UT_F32, UT_SHAPE(2, 12)), ut_input(g, "t", UT_F32, UT_SHAPE(2, 6))));
  ck_assert_msg(strstr(ut_last_error(), "[B, C, H, W]") != NULL, "%s", ut_last_error());
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(ut_affine_grid_sample_to(g, ut_input(g, "x", UT_F32, UT_SHAPE(1, 1, 2, 2)),
                                              ut_input(g, "t", UT_F32, UT_SHAPE(1, 6)), 0, 3));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(ut_random_resized_crop_theta(g, "c", 4, 0.9f, 0.5f, 1));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), "scale") != NULL, "%s", ut_last_error());
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(ut_affine_compose(g, ut_input(g, "a", UT_F32, UT_SHAPE(2, 6)), ut_input(g, "b", UT_F32, UT_SHAPE(3, 2, 3))));
  ck_assert_msg(strstr(ut_last_error(), "[3, 2, 3]") != NULL, "%s", ut_last_error());
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

static Suite *geometric_suite(void) {
  Suite *s = suite_create("ops_geometric");
  TCase *tc = tcase_create("grid_sample");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_exact_permutations);
  tcase_add_loop_test(tc, test_forward_reference, 0, N_FWD);
  tcase_add_loop_test(tc, test_gradients, 0, N_FWD);
  tcase_add_test(tc, test_adjoint_extremes);
  suite_add_tcase(s, tc);
  tc = tcase_create("matrices");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_compose_and_rotation);
  tcase_add_test(tc, test_compose_applies_in_order);
  tcase_add_test(tc, test_random_crop_statistics);
  tcase_add_test(tc, test_random_rotation_statistics);
  tcase_add_test(tc, test_random_reproducible);
  tcase_add_test(tc, test_augment_pipeline);
  suite_add_tcase(s, tc);
  tc = tcase_create("mask_errors");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_mask);
  tcase_add_test(tc, test_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(geometric_suite()); }
