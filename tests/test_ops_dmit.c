/* DMIT pieces: spectral normalization and CBIN.
 *
 * Spectral norm: the first run against one power iteration from the stored u computed on the
 * host (result, and the u and v written back to the store); many runs against the top
 * singular value and vector of the weight matrix from a long power iteration in double; eval
 * (frozen) mode against the stored vectors, leaving them unchanged; the training-mode gradient
 * against the host formula (u and v constants); the frozen mode by finite differences. CBIN:
 * forward against a host instance norm plus tanh(linear) (plain, spectrally normalised frozen
 * and training), gradients by finite differences over the input, the code and the layer's
 * parameters. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "kit_layers.h"

/* ---------------------------------------------------------------------------------------------
 * Host helpers.
 */
typedef struct {
  ut_shape s;
  int dim;
} sn_case;

static const sn_case sn_cases[] = {
  { UT_SHAPE(6, 10), 0 },      /* Linear */
  { UT_SHAPE(4, 3, 2, 2), 0 }, /* Conv2d */
  { UT_SHAPE(3, 5, 2, 2), 1 }, /* ConvTranspose2d [C, O, k, k] */
  { UT_SHAPE(1, 7), 0 },       /* one row: sigma is the row's norm */
  { UT_SHAPE(9, 1, 1, 1), 0 }, /* one column */
  { UT_SHAPE(5, 2, 3), 1 },
};
#define N_SN ((int)(sizeof sn_cases / sizeof sn_cases[0]))

static int64_t sn_rows(const sn_case *c) { return c->s.d[c->dim]; }
static int64_t sn_cols(const sn_case *c) { return gc_numel(c->s) / sn_rows(c); }

/* The index in w of matrix element (r, col): dim 0 is a reshape; dim 1 reads w as [A, rows, K]
 * with col = a * K + k. */
static int64_t sn_index(const sn_case *c, int64_t r, int64_t col) {
  if (c->dim == 0) return r * sn_cols(c) + col;
  int64_t rows = sn_rows(c), K = sn_cols(c) / c->s.d[0];
  return ((col / K) * rows + r) * K + col % K;
}

static void normalize_d(double *v, int64_t n) {
  double sq = 0;
  for (int64_t i = 0; i < n; i++) sq += v[i] * v[i];
  double norm = fmax(sqrt(sq), 1e-12);
  for (int64_t i = 0; i < n; i++) v[i] /= norm;
}

/* `iters` power iterations from u (in place): v = normalize(W^T u), u = normalize(W v);
 * returns u . (W v). */
static double power_iterate(const sn_case *c, const float *w, double *u, double *v, int iters) {
  int64_t R = sn_rows(c), K = sn_cols(c);
  double sigma = 0;
  for (int it = 0; it < iters; it++) {
    for (int64_t j = 0; j < K; j++) {
      v[j] = 0;
      for (int64_t r = 0; r < R; r++) v[j] += (double)w[sn_index(c, r, j)] * u[r];
    }
    normalize_d(v, K);
    sigma = 0;
    double *wv = malloc((size_t)R * sizeof *wv);
    for (int64_t r = 0; r < R; r++) {
      wv[r] = 0;
      for (int64_t j = 0; j < K; j++) wv[r] += (double)w[sn_index(c, r, j)] * v[j];
      u[r] = wv[r];
    }
    normalize_d(u, R);
    for (int64_t r = 0; r < R; r++) sigma += u[r] * wv[r];
    free(wv);
  }
  return sigma;
}

static double sigma_frozen(const sn_case *c, const float *w, const float *u, const float *v) {
  double sigma = 0;
  for (int64_t r = 0; r < sn_rows(c); r++) {
    double wv = 0;
    for (int64_t j = 0; j < sn_cols(c); j++) wv += (double)w[sn_index(c, r, j)] * v[j];
    sigma += u[r] * wv;
  }
  return sigma;
}

static void read_store(ut_store *st, const char *name, float *dst) {
  ut_store_tensor *t = ut_store_find(st, name);
  ck_assert_msg(t != NULL, "'%s' is not in the store", name);
  ck_assert_ut_ok(ut_store_tensor_read(st, t, dst));
}

static void assert_close(const char *what, const float *a, const double *b, int64_t n, double abs_tol, double rel_tol) {
  for (int64_t i = 0; i < n; i++)
    ck_assert_msg(fabs(a[i] - b[i]) <= abs_tol + rel_tol * fabs(b[i]), "%s[%lld] = %.8g, reference %.8g", what, (long long)i,
                  a[i], b[i]);
}

/* A store holding weight "snw" with random values, and a graph over it. */
static ut_tensor *sn_weight(ut_graph *g, ut_store *st, const sn_case *c, const float *values) {
  ut_tensor *w = ut_param(g, "snw", c->s, (ut_init){ UT_INIT_ZERO, 0, 0 });
  ck_assert_ut_ptr(w);
  ck_assert_ut_ok(ut_store_tensor_write(st, ut_store_find(st, "snw"), values));
  return w;
}

/* ---------------------------------------------------------------------------------------------
 * Spectral norm.
 */
START_TEST(test_spectral_norm_runs) {
  const sn_case *c = &sn_cases[_i];
  int64_t n = gc_numel(c->s), R = sn_rows(c), K = sn_cols(c);
  float *w = gc_random_values(600 + (uint64_t)_i, n, -1, 1), *out = malloc((size_t)n * sizeof *out);
  float *u0 = malloc((size_t)R * sizeof *u0), *v0 = malloc((size_t)K * sizeof *v0);
  float *us = malloc((size_t)R * sizeof *us), *vs = malloc((size_t)K * sizeof *vs);
  double *u = malloc((size_t)R * sizeof *u), *v = malloc((size_t)K * sizeof *v), *ref = malloc((size_t)n * sizeof *ref);
  ut_store *st = ut_store_new(test_runtime(), 41 + (uint64_t)_i);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *y = ut_spectral_norm(g, sn_weight(g, st, c, w), "sn", (ut_sn_cfg){ .dim = c->dim });
  ck_assert_ut_ptr(y);
  ck_assert_msg(ut_shape_equal(ut_tensor_shape(y), c->s), "result shape");
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &y, .n_outputs = 1 });
  ck_assert_ut_ptr(p);

  /* created normalised */
  read_store(st, "sn.u", u0);
  read_store(st, "sn.v", v0);
  double nu = 0, nv = 0;
  for (int64_t i = 0; i < R; i++) nu += (double)u0[i] * u0[i];
  for (int64_t i = 0; i < K; i++) nv += (double)v0[i] * v0[i];
  ck_assert_msg(fabs(sqrt(nu) - 1) < 1e-5 && fabs(sqrt(nv) - 1) < 1e-5, "|u| = %g, |v| = %g", sqrt(nu), sqrt(nv));

  /* the first run: one power iteration from u0 */
  for (int64_t i = 0; i < R; i++) u[i] = u0[i];
  double sigma = power_iterate(c, w, u, v, 1);
  for (int64_t i = 0; i < n; i++) ref[i] = w[i] / sigma;
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, y, out));
  assert_close("w / sigma after one run", out, ref, n, 1e-6, 1e-5);
  read_store(st, "sn.u", us);
  read_store(st, "sn.v", vs);
  assert_close("stored u after one run", us, u, R, 1e-5, 1e-5);
  assert_close("stored v after one run", vs, v, K, 1e-5, 1e-5);

  /* many runs: the top singular value and vector */
  for (int r = 0; r < 150; r++) ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, y, out));
  double top = power_iterate(c, w, u, v, 3000);
  int64_t big = 0;
  for (int64_t i = 1; i < n; i++)
    if (fabsf(w[i]) > fabsf(w[big])) big = i;
  double sigma_dev = w[big] / out[big];
  ck_assert_msg(fabs(sigma_dev - top) <= 1e-4 * top, "sigma after 151 runs %.8g, top singular value %.8g", sigma_dev, top);
  read_store(st, "sn.u", us);
  double sign = 0;
  for (int64_t i = 0; i < R; i++) sign += us[i] * u[i];
  for (int64_t i = 0; i < R; i++) u[i] *= sign < 0 ? -1 : 1;
  assert_close("stored u against the top singular vector", us, u, R, 2e-3, 0);

  /* eval mode on the same store: the stored vectors as they are, and no update */
  read_store(st, "sn.v", vs);
  ut_graph *g2 = ut_graph_new(test_runtime(), st);
  ut_tensor *y2 = ut_spectral_norm(g2, ut_param(g2, "snw", c->s, (ut_init){ UT_INIT_ZERO, 0, 0 }), "sn",
                                   (ut_sn_cfg){ .dim = c->dim, .frozen = 1 });
  ck_assert_ut_ptr(y2);
  ut_plan *p2 = ut_plan_compile(g2, &(ut_plan_cfg){ .outputs = &y2, .n_outputs = 1 });
  ck_assert_ut_ptr(p2);
  sigma = sigma_frozen(c, w, us, vs);
  for (int64_t i = 0; i < n; i++) ref[i] = w[i] / sigma;
  for (int r = 0; r < 2; r++) ck_assert_ut_ok(ut_plan_run(p2));
  ck_assert_ut_ok(ut_read(p2, y2, out));
  assert_close("w / sigma in eval mode", out, ref, n, 1e-6, 1e-5);
  read_store(st, "sn.u", u0);
  for (int64_t i = 0; i < R; i++) ck_assert_msg(u0[i] == us[i], "eval mode changed u[%lld]", (long long)i);

  /* u travels with checkpoints */
  if (_i == 0) {
    const char *path = test_tmp_path("sn.safetensors");
    ck_assert_ut_ok(ut_store_save(st, path));
    ut_store *st2 = ut_store_new(test_runtime(), 1);
    ck_assert_ut_ok(ut_store_load(st2, path));
    read_store(st2, "sn.u", u0);
    for (int64_t i = 0; i < R; i++) ck_assert_msg(u0[i] == us[i], "checkpointed u[%lld] = %g, saved %g", (long long)i, u0[i], us[i]);
    ut_store_free(st2);
    remove(path);
  }

  ut_plan_free(p2);
  ut_graph_free(g2);
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
  free(w), free(out), free(u0), free(v0), free(us), free(vs), free(u), free(v), free(ref);
}
END_TEST

/* d/dw sum(R * w / sigma) with u, v constant: R / sigma - (sum(w R) / sigma^2) u v^T. */
START_TEST(test_spectral_norm_gradient) {
  const sn_case *c = &sn_cases[_i];
  int64_t n = gc_numel(c->s), R = sn_rows(c), K = sn_cols(c);
  float *w = gc_random_values(700 + (uint64_t)_i, n, -1, 1), *rw = gc_random_values(701 + (uint64_t)_i, n, -1, 1);
  float *grad = malloc((size_t)n * sizeof *grad), *u0 = malloc((size_t)R * sizeof *u0);
  double *u = malloc((size_t)R * sizeof *u), *v = malloc((size_t)K * sizeof *v), *ref = malloc((size_t)n * sizeof *ref);
  ut_store *st = ut_store_new(test_runtime(), 51 + (uint64_t)_i);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *wt = sn_weight(g, st, c, w);
  ut_tensor *y = ut_spectral_norm(g, wt, "sn", (ut_sn_cfg){ .dim = c->dim });
  ck_assert_ptr_eq(ut_spectral_norm(g, wt, "sn", (ut_sn_cfg){ .dim = c->dim }), y); /* once per graph */
  ut_tensor *loss = ut_sum_all(g, ut_mul(g, y, ut_constant(g, c->s, rw)));
  ck_assert_ut_ok(ut_backward(g, loss, ut_params(g, "snw")));
  ut_tensor *gw = ut_grad(g, wt);
  ck_assert_ut_ptr(gw);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &gw, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  read_store(st, "sn.u", u0);
  for (int64_t i = 0; i < R; i++) u[i] = u0[i];
  double sigma = power_iterate(c, w, u, v, 1), wr = 0;
  for (int64_t i = 0; i < n; i++) wr += (double)w[i] * rw[i];
  for (int64_t r = 0; r < R; r++)
    for (int64_t j = 0; j < K; j++) {
      int64_t i = sn_index(c, r, j);
      ref[i] = rw[i] / sigma - wr / (sigma * sigma) * u[r] * v[j];
    }
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, gw, grad));
  assert_close("d loss / d w", grad, ref, n, 1e-5, 1e-4);
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
  free(w), free(rw), free(grad), free(u0), free(u), free(v), free(ref);
}
END_TEST

static ut_tensor *build_sn_frozen(ut_graph *g, ut_tensor **in, void *ctx) {
  const sn_case *c = ctx;
  return ut_spectral_norm(g, in[0], "snf", (ut_sn_cfg){ .dim = c->dim, .frozen = 1 });
}

START_TEST(test_spectral_norm_frozen_gradcheck) {
  const sn_case *c = &sn_cases[_i];
  float *w = gc_random_values(800 + (uint64_t)_i, gc_numel(c->s), -1, 1);
  char label[96], sh[64];
  snprintf(label, sizeof label, "spectral_norm frozen %s dim %d", ut_shape_str(c->s, sh, sizeof sh), c->dim);
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &c->s, .values = (const float *[]){ w },
                                  .build = build_sn_frozen, .ctx = (void *)c, .max_samples = 24, .h = 1e-3 });
  free(w);
}
END_TEST

START_TEST(test_spectral_norm_errors) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *a = ut_param(g, "a", UT_SHAPE(3, 4), (ut_init){ UT_INIT_NORMAL, 0, 1 });
  ut_tensor *b = ut_param(g, "b", UT_SHAPE(3, 4), (ut_init){ UT_INIT_NORMAL, 0, 1 });
  ck_assert_ut_ptr(ut_spectral_norm(g, a, "sa", (ut_sn_cfg){ 0 }));
  ck_assert_ptr_null(ut_spectral_norm(g, b, "sa", (ut_sn_cfg){ 0 }));
  ck_assert_msg(strstr(ut_last_error(), "already applied") != NULL, "%s", ut_last_error());
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(ut_spectral_norm(g, ut_param(g, "c", UT_SHAPE(5), (ut_init){ UT_INIT_ZERO, 0, 0 }), "sc", (ut_sn_cfg){ 0 }));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_INVALID_ARGUMENT);
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  /* "sa.u" exists with 3 elements: a weight with 4 rows under that prefix does not fit */
  ck_assert_ptr_null(ut_spectral_norm(g, ut_param(g, "d", UT_SHAPE(4, 4), (ut_init){ UT_INIT_ZERO, 0, 0 }), "sa", (ut_sn_cfg){ 0 }));
  ck_assert_int_ne(ut_graph_status(g), UT_OK);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * CBIN.
 */
typedef enum { CB_PLAIN, CB_SN_FROZEN, CB_SN_TRAIN } cb_mode;
typedef struct {
  ut_shape x, code;
  cb_mode mode;
} cb_case;

static ut_tensor *build_cbin(ut_graph *g, ut_tensor **in, void *ctx) {
  const cb_case *c = ctx;
  ut_sn_cfg sn = { .frozen = c->mode == CB_SN_FROZEN };
  return kit_cbin(g, in[0], in[1], "cb", c->mode == CB_PLAIN ? NULL : &sn);
}

/* Host CBIN with the effective linear weight we [C, n] and bias b [C]. */
static void cbin_reference(const cb_case *c, const float *x, const float *code, const double *we, const float *b, float *out) {
  int64_t B = c->x.d[0], C = c->x.d[1], P = c->x.d[2] * c->x.d[3], N = c->code.d[1];
  for (int64_t bi = 0; bi < B; bi++)
    for (int64_t ch = 0; ch < C; ch++) {
      double lin = b[ch];
      for (int64_t j = 0; j < N; j++) lin += code[bi * N + j] * we[ch * N + j];
      const float *xp = x + (bi * C + ch) * P;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < P; i++) mean += xp[i];
      mean /= (double)P;
      for (int64_t i = 0; i < P; i++) var += (xp[i] - mean) * (xp[i] - mean);
      var /= (double)P;
      for (int64_t i = 0; i < P; i++) out[(bi * C + ch) * P + i] = (float)((xp[i] - mean) / sqrt(var + 1e-5) + tanh(lin));
    }
}

static const cb_case cb_cases[] = {
  { UT_SHAPE(2, 5, 3, 4), UT_SHAPE(2, 3), CB_PLAIN },
  { UT_SHAPE(1, 3, 1, 1), UT_SHAPE(1, 2), CB_PLAIN },
  { UT_SHAPE(3, 6, 2, 3), UT_SHAPE(3, 10), CB_SN_FROZEN }, /* DMIT: code = 2 attributes + 8 style */
  { UT_SHAPE(2, 7, 5, 3), UT_SHAPE(2, 4), CB_SN_FROZEN },
  { UT_SHAPE(2, 5, 3, 4), UT_SHAPE(2, 3), CB_SN_TRAIN },
};
#define N_CB ((int)(sizeof cb_cases / sizeof cb_cases[0]))

START_TEST(test_cbin) {
  const cb_case *c = &cb_cases[_i];
  int64_t nx = gc_numel(c->x), nc = gc_numel(c->code), C = c->x.d[1], N = c->code.d[1];
  float *x = gc_random_values(900 + (uint64_t)_i, nx, -2, 2), *code = gc_random_values(901 + (uint64_t)_i, nc, -1, 1);
  float *ref = malloc((size_t)nx * sizeof *ref), *out = malloc((size_t)nx * sizeof *out);
  float *w = malloc((size_t)(C * N) * sizeof *w), *b = malloc((size_t)C * sizeof *b), *u = malloc((size_t)C * sizeof *u);
  float *v = malloc((size_t)N * sizeof *v);
  double *we = malloc((size_t)(C * N) * sizeof *we);
  ut_store *st = ut_store_new(test_runtime(), 61 + (uint64_t)_i);
  /* Parameters created once; their initial values drive the reference. */
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *xi = ut_input(g, "x", UT_F32, c->x), *ci = ut_input(g, "code", UT_F32, c->code);
  ut_tensor *y = build_cbin(g, (ut_tensor *[]){ xi, ci }, (void *)c);
  ck_assert_ut_ptr(y);
  read_store(st, "cb.w", w);
  read_store(st, "cb.b", b);
  for (int64_t i = 0; i < C; i++) ck_assert_msg(b[i] == 0.0f, "bias init");
  double sq = 0;
  for (int64_t i = 0; i < C * N; i++) sq += (double)w[i] * w[i];
  ck_assert_msg(sqrt(sq / (double)(C * N)) < 0.05, "weight rms %g, not about 0.02", sqrt(sq / (double)(C * N)));
  double sigma = 1;
  sn_case m = { UT_SHAPE(C, N), 0 };
  if (c->mode == CB_SN_FROZEN) {
    /* Eval mode follows training: converge u and v first, as a trained model's are (random
     * vectors can make u . W v arbitrarily small). */
    ut_graph *gt = ut_graph_new(test_runtime(), st);
    ut_tensor *wn = ut_spectral_norm(gt, ut_param(gt, "cb.w", m.s, (ut_init){ UT_INIT_ZERO, 0, 0 }), "cb", (ut_sn_cfg){ 0 });
    ut_plan *pt = ut_plan_compile(gt, &(ut_plan_cfg){ .outputs = &wn, .n_outputs = 1 });
    ck_assert_ut_ptr(pt);
    for (int r = 0; r < 50; r++) ck_assert_ut_ok(ut_plan_run(pt));
    ut_plan_free(pt);
    ut_graph_free(gt);
    read_store(st, "cb.u", u);
    read_store(st, "cb.v", v);
    sigma = sigma_frozen(&m, w, u, v);
  } else if (c->mode == CB_SN_TRAIN) {
    read_store(st, "cb.u", u);
    double *ud = malloc((size_t)C * sizeof *ud), *vd = malloc((size_t)N * sizeof *vd);
    for (int64_t i = 0; i < C; i++) ud[i] = u[i];
    sigma = power_iterate(&m, w, ud, vd, 1);
    free(ud), free(vd);
  }
  for (int64_t i = 0; i < C * N; i++) we[i] = w[i] / sigma;
  cbin_reference(c, x, code, we, b, ref);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &y, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_upload(p, xi, x));
  ck_assert_ut_ok(ut_upload(p, ci, code));
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, y, out));
  int64_t at;
  double r = test_compare(out, ref, nx, 1e-5, 1e-4, &at);
  ck_assert_msg(r <= 1, "cbin mode %d [%lld] = %.8g, reference %.8g", (int)c->mode, (long long)at, out[at], ref[at]);
  ut_plan_free(p);
  ut_graph_free(g);
  if (c->mode != CB_SN_TRAIN) { /* training mode moves u every run, which finite differences cannot follow */
    ut_shape shapes[2] = { c->x, c->code };
    char label[96], sh[64];
    snprintf(label, sizeof label, "cbin %s mode %d", ut_shape_str(c->x, sh, sizeof sh), (int)c->mode);
    gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 2, .shapes = shapes, .values = (const float *[]){ x, code },
                                    .build = build_cbin, .ctx = (void *)c, .store = st, .check_params = 1, .expect = ref,
                                    .fwd_abs_tol = 1e-5, .fwd_rel_tol = 1e-4, .max_samples = 24, .h = 1e-3 });
  }
  ut_store_free(st);
  free(x), free(code), free(ref), free(out), free(w), free(b), free(u), free(v), free(we);
}
END_TEST

START_TEST(test_cbin_errors) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(kit_cbin(g, ut_input(g, "x", UT_F32, UT_SHAPE(2, 3, 4, 4)), ut_input(g, "c", UT_F32, UT_SHAPE(3, 2)), "cb", NULL));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ck_assert_msg(strstr(ut_last_error(), "[3, 2]") != NULL, "%s", ut_last_error());
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

static Suite *dmit_suite(void) {
  Suite *s = suite_create("ops_dmit");
  TCase *tc = tcase_create("spectral_norm");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_spectral_norm_runs, 0, N_SN);
  tcase_add_loop_test(tc, test_spectral_norm_gradient, 0, N_SN);
  tcase_add_loop_test(tc, test_spectral_norm_frozen_gradcheck, 0, N_SN);
  tcase_add_test(tc, test_spectral_norm_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("cbin");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_cbin, 0, N_CB);
  tcase_add_test(tc, test_cbin_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(dmit_suite()); }
