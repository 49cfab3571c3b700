/* Dropout, additive Gaussian noise, the reparameterization and the KL terms.
 *
 * Forward results are compared with host references that rebuild the same random draw: a
 * stream is Philox under key hash64(name, store seed) at run r (engine/philox.h), so the host
 * computes exactly the uniforms (and the normals to a few ulp) the device used.
 *
 * Gradients of the random ops are checked by finite differences with the draw held fixed: the
 * run number of stream "<name>" is the store counter "rng.<name>", which a plan bumps at the
 * start of each run, so resetting it to 0 before every run makes every run see run 1 and the
 * same numbers. fixed_draw_check below does that around each perturbed run (gc_gradcheck
 * cannot: it runs its plans itself). A control case shows the check fails without the reset.
 * The KL terms are deterministic and go through gc_gradcheck. Statistical checks (mask rate,
 * noise moments) use tolerances of five standard errors of the sample size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "kit_losses.h"
#include "philox.h"
#include "runtime_internal.h"

#define SEED 1234

static uint64_t stream_key(const char *name) { return ut_hash64(name, strlen(name), SEED); }

static void reset_streams(ut_store *st, const char *const *streams) {
  for (int i = 0; streams && streams[i]; i++) {
    char c[128];
    snprintf(c, sizeof c, "rng.%s", streams[i]);
    *ut_store_counter(st, c) = 0;
  }
}

/* ---------------------------------------------------------------------------------------------
 * Finite differences with the random draw fixed.
 */
typedef struct {
  const char *label;
  int n_inputs;
  const ut_shape *shapes;
  const float *const *values;
  gc_build_fn build;
  void *ctx;
  const char *const *streams;      /* NULL-terminated names whose run counters are reset */
  int no_reset;                    /* control: let the draw change between runs */
  const float *expect;             /* forward reference at run 1, or NULL */
  double fwd_abs_tol, fwd_rel_tol;
  const float *const *expect_grad; /* host references of d(sum(out * W))/d(input), or NULL */
  double grad_abs_tol, grad_rel_tol;
  const float *weights;            /* W, or NULL for random */
} fd_case;

static double dot(const float *a, const float *w, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)a[i] * (double)w[i];
  return s;
}

/* Returns the worst |analytic - numeric| / (1e-3 + 2e-2 |numeric|) (the gradcheck defaults, h
 * 1e-2); fails the test itself on anything but a gradient mismatch. */
static double fixed_draw_check(const fd_case *c) {
  ut_store *st = ut_store_new(test_runtime(), SEED);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ck_assert_ut_ptr(st && g ? g : NULL);
  ut_tensor *x[GC_MAX_INPUTS];
  ut_store_tensor *xs[GC_MAX_INPUTS];
  float *vals[GC_MAX_INPUTS];
  for (int i = 0; i < c->n_inputs; i++) {
    char name[32];
    snprintf(name, sizeof name, "fd.x%d", i);
    ck_assert_ut_ptr(x[i] = ut_param(g, name, c->shapes[i], (ut_init){ UT_INIT_ZERO, 0, 0 }));
    xs[i] = ut_store_find(st, name);
    vals[i] = malloc((size_t)gc_numel(c->shapes[i]) * sizeof(float));
    memcpy(vals[i], c->values[i], (size_t)gc_numel(c->shapes[i]) * sizeof(float));
    ck_assert_ut_ok(ut_store_tensor_write(st, xs[i], vals[i]));
  }
  ut_tensor *out = c->build(g, x, c->ctx);
  ck_assert_msg(out != NULL, "%s: build: %s", c->label, ut_last_error());
  int64_t n_out = gc_numel(ut_tensor_shape(out));
  float *w = c->weights ? NULL : gc_random_values(99, n_out, -1, 1);
  for (int64_t i = 0; w && i < n_out; i++)
    if (fabsf(w[i]) < 0.1f) w[i] = w[i] < 0 ? -0.5f : 0.5f;
  const float *wv = c->weights ? c->weights : w;
  ut_tensor *loss = ut_sum_all(g, ut_mul(g, out, ut_constant(g, ut_tensor_shape(out), wv)));
  ck_assert_ut_ok(ut_backward(g, loss, (ut_tensor_list){ c->n_inputs, x }));
  ut_tensor *outs[1 + GC_MAX_INPUTS] = { out };
  for (int i = 0; i < c->n_inputs; i++) ck_assert_msg((outs[1 + i] = ut_grad(g, x[i])) != NULL, "%s: no gradient", c->label);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = outs, .n_outputs = 1 + c->n_inputs });
  ck_assert_ut_ptr(p);

  float *o = malloc((size_t)n_out * sizeof *o);
  reset_streams(st, c->streams);
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, out, o));
  if (c->expect) {
    int64_t at;
    double r = test_compare(o, c->expect, n_out, c->fwd_abs_tol, c->fwd_rel_tol, &at);
    ck_assert_msg(r <= 1, "%s: forward [%lld] = %.9g, host %.9g", c->label, (long long)at, o[at], c->expect[at]);
  }
  double worst = 0;
  for (int i = 0; i < c->n_inputs; i++) {
    int64_t n = gc_numel(c->shapes[i]);
    float *grad = malloc((size_t)n * sizeof *grad);
    ck_assert_ut_ok(ut_read(p, outs[1 + i], grad));
    if (c->expect_grad && c->expect_grad[i]) {
      int64_t at;
      double r = test_compare(grad, c->expect_grad[i], n, c->grad_abs_tol, c->grad_rel_tol, &at);
      ck_assert_msg(r <= 1, "%s: d/dx%d [%lld] = %.9g, host %.9g", c->label, i, (long long)at, grad[at], c->expect_grad[i][at]);
    }
    for (int64_t e = 0; e < n; e++) {
      float x0 = vals[i][e];
      double l[2];
      for (int s = 0; s < 2; s++) {
        vals[i][e] = s ? x0 - 1e-2f : x0 + 1e-2f;
        ck_assert_ut_ok(ut_store_tensor_write(st, xs[i], vals[i]));
        if (!c->no_reset) reset_streams(st, c->streams);
        ck_assert_ut_ok(ut_plan_run(p));
        ck_assert_ut_ok(ut_read(p, out, o));
        l[s] = dot(o, wv, n_out);
      }
      double num = (l[0] - l[1]) / ((double)(x0 + 1e-2f) - (double)(x0 - 1e-2f));
      double r = fabs(grad[e] - num) / (1e-3 + 2e-2 * fabs(num));
      if (!(r <= worst)) worst = isnan(r) ? INFINITY : r;
      vals[i][e] = x0;
    }
    ck_assert_ut_ok(ut_store_tensor_write(st, xs[i], vals[i]));
    free(grad);
  }
  for (int i = 0; i < c->n_inputs; i++) free(vals[i]);
  free(o);
  free(w);
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
  return worst;
}

/* Runs a graph of one op over a constant x and returns its output after `runs` runs. */
typedef ut_tensor *(*op_fn)(ut_graph *g, ut_tensor *x, const void *ctx);
static void run_op(uint64_t seed, ut_shape s, const float *x, op_fn fn, const void *ctx, int runs, float *out) {
  ut_store *st = ut_store_new(test_runtime(), seed);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *y = fn(g, ut_constant(g, s, x), ctx);
  ck_assert_ut_ptr(y);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &y, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  for (int r = 0; r < runs; r++) ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, y, out));
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
}

/* ---------------------------------------------------------------------------------------------
 * Dropout.
 */
typedef struct {
  const char *name;
  float p;
} drop_ctx;

static ut_tensor *build_dropout(ut_graph *g, ut_tensor **in, void *ctx) {
  const drop_ctx *d = ctx;
  return ut_dropout(g, in[0], d->name, d->p);
}
static ut_tensor *op_dropout(ut_graph *g, ut_tensor *x, const void *ctx) {
  const drop_ctx *d = ctx;
  return ut_dropout(g, x, d->name, d->p);
}

/* out = u > p ? x / (1 - p) : 0 with the host's u of run `run`; grad = W at the kept places. */
static void dropout_reference(const drop_ctx *d, uint64_t run, const float *x, const float *w, int64_t n, float *out,
                              float *grad) {
  float *u = malloc((size_t)n * sizeof *u);
  ut_philox_fill_uniform(stream_key(d->name), run, 0, u, (size_t)n);
  float scale = 1.0f / (1.0f - d->p);
  for (int64_t i = 0; i < n; i++) {
    out[i] = u[i] > d->p ? x[i] * scale : 0.0f;
    if (grad) grad[i] = u[i] > d->p ? w[i] * scale : 0.0f;
  }
  free(u);
}

static const ut_shape drop_shapes[] = { UT_SHAPE(2, 3, 5, 7), UT_SHAPE(1, 1), UT_SHAPE(3, 13), UT_SHAPE(1, 5, 1, 1) };

START_TEST(test_dropout_forward_and_gradient) {
  ut_shape s = drop_shapes[_i];
  int64_t n = gc_numel(s);
  drop_ctx d = { "drop.a", _i == 1 ? 0.3f : 0.5f };
  float *x = gc_random_values(10 + (uint64_t)_i, n, -2, 2), *w = gc_random_values(20 + (uint64_t)_i, n, 0.1f, 1);
  float *ref = malloc((size_t)n * sizeof *ref), *gref = malloc((size_t)n * sizeof *gref);
  dropout_reference(&d, 1, x, w, n, ref, gref);
  char label[64], sh[32];
  snprintf(label, sizeof label, "dropout %s", ut_shape_str(s, sh, sizeof sh));
  double worst = fixed_draw_check(&(fd_case){ .label = label, .n_inputs = 1, .shapes = &s, .values = (const float *[]){ x },
                                              .build = build_dropout, .ctx = &d, .streams = (const char *[]){ d.name, NULL },
                                              .expect = ref, .fwd_abs_tol = 1e-30, .fwd_rel_tol = 1e-30, .weights = w,
                                              .expect_grad = (const float *[]){ gref }, .grad_abs_tol = 1e-30,
                                              .grad_rel_tol = 1e-6 });
  ck_assert_msg(worst <= 1, "%s: finite differences disagree (ratio %g)", label, worst);
  /* the gradient's own gradient (the same mask again) */
  gc_second_order so = { build_dropout, &d, 1 };
  worst = fixed_draw_check(&(fd_case){ .label = label, .n_inputs = 1, .shapes = &s, .values = (const float *[]){ x },
                                       .build = gc_build_grad_of, .ctx = &so, .streams = (const char *[]){ d.name, NULL } });
  ck_assert_msg(worst <= 1, "%s second order: ratio %g", label, worst);
  free(x), free(w), free(ref), free(gref);
}
END_TEST

/* The mask's rate and scale over 2^16 elements, a fresh mask each run, and the same masks from
 * the same seed. The count of zeros is Binomial(n, p): five standard deviations,
 * 5 sqrt(p (1 - p) / n), is 0.0098 for p = 0.5 and 0.0059 for p = 0.1 as a fraction. */
START_TEST(test_dropout_statistics) {
  enum { N = 1 << 16 };
  ut_shape s = UT_SHAPE(64, 1024);
  float *x = malloc(N * sizeof *x), *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *ref = malloc(N * sizeof *ref);
  for (int i = 0; i < N; i++) x[i] = 1.0f + (float)(i % 7);
  static const float ps[] = { 0.5f, 0.1f };
  for (int k = 0; k < 2; k++) {
    drop_ctx d = { "drop.stats", ps[k] };
    run_op(SEED, s, x, op_dropout, &d, 1, a);
    int zeros = 0;
    for (int i = 0; i < N; i++) {
      if (a[i] == 0.0f) zeros++;
      else ck_assert_msg(a[i] == x[i] * (1.0f / (1.0f - d.p)), "kept element %d = %g, want %g", i, a[i], x[i] / (1 - d.p));
    }
    double rate = (double)zeros / N, tol = 5 * sqrt(d.p * (1 - d.p) / N);
    ck_assert_msg(fabs(rate - d.p) <= tol, "p %g: zero rate %g (tolerance %g)", d.p, rate, tol);
    /* run 2 draws a new mask, the host's run 2 */
    run_op(SEED, s, x, op_dropout, &d, 2, b);
    ck_assert(memcmp(a, b, N * sizeof *a) != 0);
    dropout_reference(&d, 2, x, NULL, N, ref, NULL);
    ck_assert_mem_eq(b, ref, N * sizeof *b);
    /* the same seed repeats the first mask; another seed does not */
    run_op(SEED, s, x, op_dropout, &d, 1, b);
    ck_assert_mem_eq(a, b, N * sizeof *a);
    run_op(SEED + 1, s, x, op_dropout, &d, 1, b);
    ck_assert(memcmp(a, b, N * sizeof *a) != 0);
  }
  free(x), free(a), free(b), free(ref);
}
END_TEST

START_TEST(test_dropout_edges) {
  ut_store *st = ut_store_new(test_runtime(), SEED);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(2, 3));
  ck_assert_ptr_eq(ut_dropout(g, x, "d0", 0.0f), x);
  ut_tensor *zero = ut_dropout(g, x, "d1", 1.0f);
  ck_assert_ut_ptr(zero);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &zero, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  float in[6] = { 1, -2, 3, 4, 5, 6 }, out[6];
  ck_assert_ut_ok(ut_upload(p, x, in));
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, zero, out));
  for (int i = 0; i < 6; i++) ck_assert_float_eq(out[i], 0.0f);
  ut_plan_free(p);
  ck_assert_ptr_null(ut_dropout(g, x, "d2", 1.5f));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), "dropout") && strstr(ut_last_error(), "1.5"), "%s", ut_last_error());
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(ut_dropout(g, ut_input(g, "x", UT_F32, UT_SHAPE(2, 3)), NULL, 0.5f));
  ck_assert_msg(strstr(ut_last_error(), "name") != NULL, "%s", ut_last_error());
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Gaussian noise.
 */
typedef struct {
  const char *name;
  float sigma;
} noise_ctx;

static ut_tensor *build_noise(ut_graph *g, ut_tensor **in, void *ctx) {
  const noise_ctx *c = ctx;
  return ut_gaussian_noise(g, in[0], c->name, c->sigma);
}
static ut_tensor *op_noise(ut_graph *g, ut_tensor *x, const void *ctx) {
  const noise_ctx *c = ctx;
  return ut_gaussian_noise(g, x, c->name, c->sigma);
}

START_TEST(test_noise_forward_and_gradient) {
  ut_shape s = _i ? UT_SHAPE(3, 7) : UT_SHAPE(2, 5, 3, 3);
  int64_t n = gc_numel(s);
  noise_ctx c = { "content.noise", _i ? 1.0f : 0.1f };
  float *x = gc_random_values(30 + (uint64_t)_i, n, -1, 1), *w = gc_random_values(31, n, 0.1f, 1);
  float *z = malloc((size_t)n * sizeof *z), *ref = malloc((size_t)n * sizeof *ref);
  ut_philox_fill_normal(stream_key(c.name), 1, 0, z, (size_t)n);
  for (int64_t i = 0; i < n; i++) ref[i] = x[i] + c.sigma * z[i];
  fd_case fc = { .label = "gaussian_noise", .n_inputs = 1, .shapes = &s, .values = (const float *[]){ x }, .build = build_noise,
                 .ctx = &c, .streams = (const char *[]){ c.name, NULL }, .expect = ref, .fwd_abs_tol = 2e-6,
                 .fwd_rel_tol = 1e-5, .weights = w, .expect_grad = (const float *[]){ w }, .grad_abs_tol = 1e-30,
                 .grad_rel_tol = 1e-6 };
  double worst = fixed_draw_check(&fc);
  ck_assert_msg(worst <= 1, "gaussian_noise: finite differences disagree (ratio %g)", worst);
  /* Control: without holding the draw, the differences see new noise and must fail. */
  if (c.sigma == 1.0f) {
    fc.no_reset = 1;
    fc.expect = NULL;
    worst = fixed_draw_check(&fc);
    ck_assert_msg(worst > 1, "a changing draw went unnoticed (ratio %g)", worst);
  }
  free(x), free(w), free(z), free(ref);
}
END_TEST

/* Moments of the noise over 2^16 elements added to zeros: the sample mean has standard error
 * sigma / sqrt(n) and the sample standard deviation about sigma / sqrt(2 n); five of each are
 * allowed (0.00195 and 0.00138 for sigma 0.1). A fresh draw each run. */
START_TEST(test_noise_statistics) {
  enum { N = 1 << 16 };
  ut_shape s = UT_SHAPE(16, 4, 32, 32);
  float *x = calloc(N, sizeof *x), *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
  noise_ctx c = { "noise.stats", 0.1f };
  run_op(SEED, s, x, op_noise, &c, 1, a);
  double sum = 0, sq = 0;
  for (int i = 0; i < N; i++) sum += a[i];
  double mean = sum / N;
  for (int i = 0; i < N; i++) sq += (a[i] - mean) * (a[i] - mean);
  double sd = sqrt(sq / (N - 1));
  ck_assert_msg(fabs(mean) <= 5 * c.sigma / sqrt(N), "noise mean %g", mean);
  ck_assert_msg(fabs(sd - c.sigma) <= 5 * c.sigma / sqrt(2.0 * N), "noise std %g, want %g", sd, c.sigma);
  run_op(SEED, s, x, op_noise, &c, 2, b);
  ck_assert(memcmp(a, b, N * sizeof *a) != 0);
  free(x), free(a), free(b);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Reparameterization.
 */
static ut_tensor *build_reparam(ut_graph *g, ut_tensor **in, void *ctx) {
  return ut_reparameterize(g, in[0], in[1], (const char *)ctx);
}

START_TEST(test_reparameterize) {
  ut_shape s = _i ? UT_SHAPE(1, 8) : UT_SHAPE(3, 5);
  int64_t n = gc_numel(s);
  const char *name = "style.eps";
  float *mu = gc_random_values(40 + (uint64_t)_i, n, -1, 1), *lv = gc_random_values(41 + (uint64_t)_i, n, -2, 1);
  float *w = gc_random_values(42, n, 0.1f, 1), *eps = malloc((size_t)n * sizeof *eps);
  float *ref = malloc((size_t)n * sizeof *ref), *glv = malloc((size_t)n * sizeof *glv);
  ut_philox_fill_normal(stream_key(name), 1, 0, eps, (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    double sd = exp(0.5 * lv[i]);
    ref[i] = (float)(mu[i] + sd * eps[i]);
    glv[i] = (float)(w[i] * 0.5 * sd * eps[i]);
  }
  ut_shape shapes[2] = { s, s };
  double worst = fixed_draw_check(&(fd_case){ .label = "reparameterize", .n_inputs = 2, .shapes = shapes,
                                              .values = (const float *[]){ mu, lv }, .build = build_reparam, .ctx = (void *)name,
                                              .streams = (const char *[]){ name, NULL }, .expect = ref, .fwd_abs_tol = 1e-6,
                                              .fwd_rel_tol = 1e-5, .weights = w, .expect_grad = (const float *[]){ w, glv },
                                              .grad_abs_tol = 1e-6, .grad_rel_tol = 1e-5 });
  ck_assert_msg(worst <= 1, "reparameterize: finite differences disagree (ratio %g)", worst);
  gc_second_order so = { build_reparam, (void *)name, 2 };
  worst = fixed_draw_check(&(fd_case){ .label = "reparameterize second order", .n_inputs = 2, .shapes = shapes,
                                       .values = (const float *[]){ mu, lv }, .build = gc_build_grad_of, .ctx = &so,
                                       .streams = (const char *[]){ name, NULL } });
  ck_assert_msg(worst <= 1, "reparameterize second order: ratio %g", worst);
  free(mu), free(lv), free(w), free(eps), free(ref), free(glv);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * KL terms (deterministic).
 */
static ut_tensor *build_kl(ut_graph *g, ut_tensor **in, void *ctx) {
  (void)ctx;
  return kit_kl_normal(g, in[0], in[1]);
}
static ut_tensor *build_kl_unit(ut_graph *g, ut_tensor **in, void *ctx) {
  (void)ctx;
  return kit_kl_unit_variance(g, in[0]);
}

static const ut_shape kl_shapes[] = { UT_SHAPE(3, 8), UT_SHAPE(1, 5), UT_SHAPE(2, 3, 2, 3), UT_SHAPE(5, 1) };

START_TEST(test_kl_normal) {
  ut_shape s = kl_shapes[_i];
  int64_t n = gc_numel(s), B = s.d[0];
  float *mu = gc_random_values(50 + (uint64_t)_i, n, -1.5f, 1.5f), *lv = gc_random_values(51 + (uint64_t)_i, n, -2, 1.5f);
  float w = 0.7f, gmu[64], glv[64];
  double kl = 0;
  for (int64_t i = 0; i < n; i++) {
    kl += -0.5 * (1 + lv[i] - (double)mu[i] * mu[i] - exp(lv[i]));
    gmu[i] = (float)(w * mu[i] / B);
    glv[i] = (float)(w * -0.5 * (1 - exp(lv[i])) / B);
  }
  float ref = (float)(kl / B);
  ut_shape shapes[2] = { s, s };
  gc_assert_gradcheck(&(gc_case){ .label = "kl_normal", .n_inputs = 2, .shapes = shapes, .values = (const float *[]){ mu, lv },
                                  .build = build_kl, .weights = &w, .expect = &ref, .expect_shape = UT_SHAPE(1),
                                  .expect_grad = (const float *[]){ gmu, glv }, .grad_rel_tol = 1e-5 });
  gc_second_order so = { build_kl, NULL, 2 };
  gc_assert_gradcheck(&(gc_case){ .label = "kl_normal second order", .n_inputs = 2, .shapes = shapes,
                                  .values = (const float *[]){ mu, lv }, .build = gc_build_grad_of, .ctx = &so });
  /* unit variance: mean(mu^2) */
  double m2 = 0;
  for (int64_t i = 0; i < n; i++) {
    m2 += (double)mu[i] * mu[i] / (double)n;
    gmu[i] = (float)(w * 2 * mu[i] / n);
  }
  ref = (float)m2;
  gc_assert_gradcheck(&(gc_case){ .label = "kl_unit_variance", .n_inputs = 1, .shapes = &s, .values = (const float *[]){ mu },
                                  .build = build_kl_unit, .weights = &w, .expect = &ref, .expect_shape = UT_SHAPE(1),
                                  .expect_grad = (const float *[]){ gmu } });
  free(mu), free(lv);
}
END_TEST

/* At mu = 0, logvar = 0 the two distributions are one: KL is exactly 0. */
START_TEST(test_kl_zero_and_errors) {
  float z[6] = { 0 }, ref = 0;
  ut_shape s = UT_SHAPE(2, 3), shapes[2] = { s, s };
  gc_assert_forward(&(gc_case){ .label = "kl at the prior", .n_inputs = 2, .shapes = shapes, .values = (const float *[]){ z, z },
                                .build = build_kl, .expect = &ref, .fwd_abs_tol = 1e-7 });
  ut_store *st = ut_store_new(test_runtime(), SEED);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(kit_kl_normal(g, ut_input(g, "mu", UT_F32, UT_SHAPE(2, 8)), ut_input(g, "lv", UT_F32, UT_SHAPE(2, 7))));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ck_assert_msg(strstr(ut_last_error(), "[2, 7]") != NULL, "%s", ut_last_error());
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(ut_reparameterize(g, ut_input(g, "mu", UT_F32, UT_SHAPE(2, 8)), ut_input(g, "lv", UT_F32, UT_SHAPE(8)), "e"));
  ck_assert_msg(strstr(ut_last_error(), "reparameterize") != NULL, "%s", ut_last_error());
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

static Suite *stochastic_suite(void) {
  Suite *s = suite_create("ops_stochastic");
  TCase *tc = tcase_create("dropout");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_dropout_forward_and_gradient, 0, 4);
  tcase_add_test(tc, test_dropout_statistics);
  tcase_add_test(tc, test_dropout_edges);
  suite_add_tcase(s, tc);
  tc = tcase_create("noise");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_noise_forward_and_gradient, 0, 2);
  tcase_add_test(tc, test_noise_statistics);
  tcase_add_loop_test(tc, test_reparameterize, 0, 2);
  suite_add_tcase(s, tc);
  tc = tcase_create("kl");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_kl_normal, 0, 4);
  tcase_add_test(tc, test_kl_zero_and_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(stochastic_suite()); }
