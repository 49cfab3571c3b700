/* Every elementwise op of untangle.h: forward against a plain C reference on the host, and the
 * gradient against the host derivative (every element) and central finite differences (a
 * sample). Shapes include sizes that are no multiple of any work-group size, batch 1, and
 * NumPy-style broadcasting with gradients summed back to each input's shape. Inputs stay away
 * from kinks (|x| >= 0.05 around 0) and from the edges of log, sqrt and division. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

/* Exact ops must match the correctly rounded host result bit for bit. */
#define EXACT 1e-30
/* OpenCL's f32 exp, log, tanh, division and sqrt may be a few ulp off. */
#define ULPS 2e-6

/* ---------------------------------------------------------------------------------------------
 * Unary ops.
 */
typedef enum { RANGE_ANY, RANGE_AWAY_FROM_0, RANGE_POSITIVE } range_kind;

typedef struct {
  const char *name;
  ut_tensor *(*make)(ut_graph *g, ut_tensor *x, float a);
  double (*ref)(double x, double a);
  double (*deriv)(double x, double a);
  float a;          /* the op's float attribute (scale, shift, slope, below) */
  range_kind range;
  float hi;         /* inputs in [-hi, hi], or [0.25, hi] for RANGE_POSITIVE */
  double fwd_tol;   /* relative; EXACT for ops with a correctly rounded result */
  double grad_tol;  /* relative, of the analytical gradient against the host derivative */
} unary_op;

static ut_tensor *mk_scale(ut_graph *g, ut_tensor *x, float a) { return ut_scale(g, x, a); }
static ut_tensor *mk_shift(ut_graph *g, ut_tensor *x, float a) { return ut_shift(g, x, a); }
static ut_tensor *mk_neg(ut_graph *g, ut_tensor *x, float a) { (void)a; return ut_neg(g, x); }
static ut_tensor *mk_abs(ut_graph *g, ut_tensor *x, float a) { (void)a; return ut_abs(g, x); }
static ut_tensor *mk_sign(ut_graph *g, ut_tensor *x, float a) { (void)a; return ut_sign(g, x); }
static ut_tensor *mk_exp(ut_graph *g, ut_tensor *x, float a) { (void)a; return ut_exp(g, x); }
static ut_tensor *mk_log(ut_graph *g, ut_tensor *x, float a) { (void)a; return ut_log(g, x); }
static ut_tensor *mk_sqrt(ut_graph *g, ut_tensor *x, float a) { (void)a; return ut_sqrt(g, x); }
static ut_tensor *mk_square(ut_graph *g, ut_tensor *x, float a) { (void)a; return ut_square(g, x); }
static ut_tensor *mk_relu(ut_graph *g, ut_tensor *x, float a) { (void)a; return ut_relu(g, x); }
static ut_tensor *mk_leaky(ut_graph *g, ut_tensor *x, float a) { return ut_leaky_relu(g, x, a); }
static ut_tensor *mk_tanh(ut_graph *g, ut_tensor *x, float a) { (void)a; return ut_tanh(g, x); }
static ut_tensor *mk_sigmoid(ut_graph *g, ut_tensor *x, float a) { (void)a; return ut_sigmoid(g, x); }
static ut_tensor *mk_step(ut_graph *g, ut_tensor *x, float a) { return ut_step(g, x, a); }

static double sigm(double x) { return 1 / (1 + exp(-x)); }
static double r_scale(double x, double a) { return x * a; }
static double d_scale(double x, double a) { (void)x; return a; }
static double r_shift(double x, double a) { return x + a; }
static double d_one(double x, double a) { (void)x; (void)a; return 1; }
static double d_zero(double x, double a) { (void)x; (void)a; return 0; }
static double r_neg(double x, double a) { (void)a; return -x; }
static double d_neg(double x, double a) { (void)x; (void)a; return -1; }
static double r_abs(double x, double a) { (void)a; return fabs(x); }
static double r_sign(double x, double a) { (void)a; return x > 0 ? 1 : x < 0 ? -1 : 0; }
static double r_exp(double x, double a) { (void)a; return exp(x); }
static double r_log(double x, double a) { (void)a; return log(x); }
static double d_log(double x, double a) { (void)a; return 1 / x; }
static double r_sqrt(double x, double a) { (void)a; return sqrt(x); }
static double d_sqrt(double x, double a) { (void)a; return 0.5 / sqrt(x); }
static double r_square(double x, double a) { (void)a; return x * x; }
static double d_square(double x, double a) { (void)a; return 2 * x; }
static double r_relu(double x, double a) { (void)a; return x > 0 ? x : 0; }
static double d_relu(double x, double a) { (void)a; return x > 0 ? 1 : 0; }
static double r_leaky(double x, double a) { return x > 0 ? x : (double)(float)(a * x); }
static double d_leaky(double x, double a) { return x > 0 ? 1 : a; }
static double r_tanh(double x, double a) { (void)a; return tanh(x); }
static double d_tanh(double x, double a) { (void)a; return 1 - tanh(x) * tanh(x); }
static double r_sigmoid(double x, double a) { (void)a; return sigm(x); }
static double d_sigmoid(double x, double a) { (void)a; return sigm(x) * (1 - sigm(x)); }
static double r_step(double x, double a) { return x > 0 ? 1 : a; }

static const unary_op unary_ops[] = {
  { "scale", mk_scale, r_scale, d_scale, -1.75f, RANGE_ANY, 2, EXACT, 1e-6 },
  { "shift", mk_shift, r_shift, d_one, 0.625f, RANGE_ANY, 2, EXACT, 1e-6 },
  { "neg", mk_neg, r_neg, d_neg, 0, RANGE_ANY, 2, EXACT, 1e-6 },
  { "abs", mk_abs, r_abs, r_sign, 0, RANGE_AWAY_FROM_0, 2, EXACT, 1e-6 },
  { "sign", mk_sign, r_sign, d_zero, 0, RANGE_AWAY_FROM_0, 2, EXACT, 1e-6 },
  { "exp", mk_exp, r_exp, r_exp, 0, RANGE_ANY, 3, ULPS, 1e-5 },
  { "log", mk_log, r_log, d_log, 0, RANGE_POSITIVE, 4, ULPS, 1e-5 },
  { "sqrt", mk_sqrt, r_sqrt, d_sqrt, 0, RANGE_POSITIVE, 4, ULPS, 1e-5 },
  { "square", mk_square, r_square, d_square, 0, RANGE_ANY, 2, EXACT, 1e-6 },
  { "relu", mk_relu, r_relu, d_relu, 0, RANGE_AWAY_FROM_0, 2, EXACT, 1e-6 },
  { "leaky_relu", mk_leaky, r_leaky, d_leaky, 0.2f, RANGE_AWAY_FROM_0, 2, EXACT, 1e-6 },
  { "tanh", mk_tanh, r_tanh, d_tanh, 0, RANGE_ANY, 3, ULPS, 1e-4 },
  { "sigmoid", mk_sigmoid, r_sigmoid, d_sigmoid, 0, RANGE_ANY, 4, ULPS, 1e-4 },
  { "step", mk_step, r_step, d_zero, 0.25f, RANGE_AWAY_FROM_0, 2, EXACT, 1e-6 },
};
#define N_UNARY ((int)(sizeof unary_ops / sizeof unary_ops[0]))

static void fill_range(uint64_t *rng, float *x, int64_t n, range_kind range, float hi) {
  switch (range) {
  case RANGE_ANY:
    test_fill_uniform(rng, x, n, -hi, hi);
    break;
  case RANGE_POSITIVE:
    test_fill_uniform(rng, x, n, 0.25f, hi);
    break;
  case RANGE_AWAY_FROM_0:
    test_fill_uniform(rng, x, n, 0.05f, hi);
    for (int64_t i = 0; i < n; i += 2) x[i] = -x[i];
    for (int64_t i = 0; i + 3 < n; i += 5) { /* a mixed sign pattern, not only alternating */
      float t = x[i];
      x[i] = x[i + 3];
      x[i + 3] = t;
    }
    break;
  }
}

static ut_tensor *build_unary(ut_graph *g, ut_tensor **in, void *ctx) {
  const unary_op *op = ctx;
  return op->make(g, in[0], op->a);
}

/* Forward on shapes that are no multiple of a work-group size, all in one plan per op. The
 * ops with a kink also meet exact zeros: sign(0) = 0, step(0) = below, relu(0) = 0. */
static const ut_shape fwd_shapes[] = { UT_SHAPE(1), UT_SHAPE(7), UT_SHAPE(33, 17), UT_SHAPE(3, 5, 7, 11),
                                       UT_SHAPE(1, 3, 5, 7) };
#define N_FWD_SHAPES 5

START_TEST(test_unary_forward) {
  const unary_op *op = &unary_ops[_i];
  ut_store *st = ut_store_new(test_runtime(), 1);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ck_assert_ut_ptr(g);
  ut_tensor *x[N_FWD_SHAPES], *y[N_FWD_SHAPES];
  float *xv[N_FWD_SHAPES];
  uint64_t rng = 100 + (uint64_t)_i;
  for (int s = 0; s < N_FWD_SHAPES; s++) {
    int64_t n = gc_numel(fwd_shapes[s]);
    xv[s] = malloc((size_t)n * sizeof(float));
    fill_range(&rng, xv[s], n, op->range, op->hi);
    if (op->range == RANGE_AWAY_FROM_0 && n > 2) xv[s][n / 2] = 0.0f;
    x[s] = ut_input(g, "x", UT_F32, fwd_shapes[s]);
    y[s] = op->make(g, x[s], op->a);
    ck_assert_ut_ptr(y[s]);
    ck_assert_msg(ut_shape_equal(ut_tensor_shape(y[s]), fwd_shapes[s]), "%s changed the shape", op->name);
  }
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = y, .n_outputs = N_FWD_SHAPES });
  ck_assert_ut_ptr(p);
  for (int s = 0; s < N_FWD_SHAPES; s++) ck_assert_ut_ok(ut_upload(p, x[s], xv[s]));
  ck_assert_ut_ok(ut_plan_run(p));
  for (int s = 0; s < N_FWD_SHAPES; s++) {
    int64_t n = gc_numel(fwd_shapes[s]);
    float *out = malloc((size_t)n * sizeof(float)), *ref = malloc((size_t)n * sizeof(float));
    ck_assert_ut_ok(ut_read(p, y[s], out));
    for (int64_t i = 0; i < n; i++) ref[i] = (float)op->ref(xv[s][i], op->a);
    int64_t at = 0;
    double r = test_compare(out, ref, n, op->fwd_tol == EXACT ? EXACT : 1e-7, op->fwd_tol, &at);
    char sh[64];
    ck_assert_msg(r <= 1, "%s%s: element %lld: %s(%.9g) = %.9g, reference %.9g (ratio %.3g)", op->name,
                  ut_shape_str(fwd_shapes[s], sh, sizeof sh), (long long)at, op->name, xv[s][at], out[at], ref[at], r);
    free(out);
    free(ref);
  }
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
  for (int s = 0; s < N_FWD_SHAPES; s++) free(xv[s]);
}
END_TEST

/* Gradient on [3, 5, 7, 11]: every element against the host derivative times W, and 64 sampled
 * elements against central differences. */
START_TEST(test_unary_gradient) {
  const unary_op *op = &unary_ops[_i];
  const ut_shape shape = UT_SHAPE(3, 5, 7, 11);
  const int64_t n = gc_numel(shape);
  float *x = malloc((size_t)n * sizeof(float)), *w = malloc((size_t)n * sizeof(float));
  float *gref = malloc((size_t)n * sizeof(float)), *ref = malloc((size_t)n * sizeof(float));
  uint64_t rng = 200 + (uint64_t)_i;
  fill_range(&rng, x, n, op->range, op->hi);
  test_fill_uniform(&rng, w, n, -1, 1);
  for (int64_t i = 0; i < n; i++) {
    gref[i] = (float)(op->deriv(x[i], op->a) * w[i]);
    ref[i] = (float)op->ref(x[i], op->a);
  }
  gc_assert_gradcheck(&(gc_case){ .label = op->name, .n_inputs = 1, .shapes = &shape, .values = (const float *[]){ x },
                                  .build = build_unary, .ctx = (void *)op, .weights = w,
                                  .expect = ref, .fwd_rel_tol = op->fwd_tol, .fwd_abs_tol = op->fwd_tol == EXACT ? EXACT : 1e-7,
                                  .expect_grad = (const float *[]){ gref }, .grad_rel_tol = op->grad_tol,
                                  .grad_abs_tol = 1e-6, .rel_tol = 5e-3, .abs_tol = 5e-4, .seed = 300 + (uint64_t)_i });
  free(x);
  free(w);
  free(gref);
  free(ref);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Binary ops with broadcasting.
 */
typedef enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, N_BIN } bin_kind;
static const char *const bin_names[N_BIN] = { "add", "sub", "mul", "div" };

static ut_tensor *build_binary(ut_graph *g, ut_tensor **in, void *ctx) {
  switch (*(const bin_kind *)ctx) {
  case BIN_ADD: return ut_add(g, in[0], in[1]);
  case BIN_SUB: return ut_sub(g, in[0], in[1]);
  case BIN_MUL: return ut_mul(g, in[0], in[1]);
  case BIN_DIV: return ut_div(g, in[0], in[1]);
  default: return NULL;
  }
}

static double bin_ref(bin_kind k, double a, double b) {
  switch (k) {
  case BIN_ADD: return a + b;
  case BIN_SUB: return a - b;
  case BIN_MUL: return a * b;
  default: return a / b;
  }
}
static double bin_da(bin_kind k, double a, double b) {
  (void)a;
  switch (k) {
  case BIN_ADD: case BIN_SUB: return 1;
  case BIN_MUL: return b;
  default: return 1 / b;
  }
}
static double bin_db(bin_kind k, double a, double b) {
  switch (k) {
  case BIN_ADD: return 1;
  case BIN_SUB: return -1;
  case BIN_MUL: return a;
  default: return -a / (b * b);
  }
}

/* NumPy's rule on the host: shapes aligned at the last dimension, padded to rank 4 with 1s. */
static void pad4(ut_shape s, int64_t d[4]) {
  for (int i = 0; i < 4; i++) d[i] = 1;
  for (int i = 0; i < s.rank; i++) d[4 - s.rank + i] = s.d[i];
}
static ut_shape host_broadcast(ut_shape a, ut_shape b) {
  ut_shape o = { .rank = a.rank > b.rank ? a.rank : b.rank };
  int64_t da[4], db[4];
  pad4(a, da);
  pad4(b, db);
  for (int i = 0; i < o.rank; i++) {
    int k = 4 - o.rank + i;
    o.d[i] = da[k] > db[k] ? da[k] : db[k];
  }
  return o;
}
/* The flat index in a tensor of shape s (padded) of output position o[4]. */
static int64_t bindex(const int64_t d[4], const int64_t o[4]) {
  int64_t k = 0;
  for (int i = 0; i < 4; i++) k = k * d[i] + (d[i] == 1 ? 0 : o[i]);
  return k;
}

typedef struct {
  ut_shape a, b;
} shape_pair;

static const shape_pair bin_pairs[] = {
  { UT_SHAPE(33, 17), UT_SHAPE(33, 17) },         /* same shape, odd sizes */
  { UT_SHAPE(7), UT_SHAPE(7) },
  { UT_SHAPE(2, 3, 5, 7), UT_SHAPE(1, 3, 1, 1) }, /* per channel */
  { UT_SHAPE(2, 3, 5, 7), UT_SHAPE(2, 1, 1, 1) }, /* per sample */
  { UT_SHAPE(1, 3, 1, 1), UT_SHAPE(2, 3, 5, 7) }, /* the small one first */
  { UT_SHAPE(1, 3, 5, 7), UT_SHAPE(1, 3, 1, 1) }, /* batch 1 */
  { UT_SHAPE(4, 5), UT_SHAPE(5) },                /* [B, C] and [C]: ranks differ */
  { UT_SHAPE(5), UT_SHAPE(4, 5) },
  { UT_SHAPE(3, 1), UT_SHAPE(1, 4) },             /* both stretch */
  { UT_SHAPE(3, 5, 7, 11), UT_SHAPE(1) },         /* a [1] scalar */
  { UT_SHAPE(3, 5, 7, 11), UT_SHAPE(3, 5, 1, 1) }, /* per plane, batch > 1 */
  { UT_SHAPE(3, 5, 7, 11), UT_SHAPE(5, 1, 1) },   /* per channel, rank 3 */
  { UT_SHAPE(2, 3, 1, 7), UT_SHAPE(2, 3, 1, 1) }, /* a size-1 dim inside the plane */
  { UT_SHAPE(2, 3, 5, 7), UT_SHAPE(1, 3, 5, 7) }, /* all but the batch */
  { UT_SHAPE(2, 3, 5, 7), UT_SHAPE(2, 3, 5, 1) }, /* per row */
  { UT_SHAPE(2, 3, 5, 7), UT_SHAPE(2, 1, 5, 1) }, /* no 2-D view: the general kernel */
  { UT_SHAPE(3, 1, 5), UT_SHAPE(1, 4, 1) },       /* likewise, both stretch */
};
#define N_PAIRS ((int)(sizeof bin_pairs / sizeof bin_pairs[0]))

START_TEST(test_binary) {
  const bin_kind k = (bin_kind)(_i / N_PAIRS);
  const shape_pair *sp = &bin_pairs[_i % N_PAIRS];
  const ut_shape os = host_broadcast(sp->a, sp->b);
  const int64_t na = gc_numel(sp->a), nb = gc_numel(sp->b), no = gc_numel(os);
  float *a = malloc((size_t)na * sizeof(float)), *b = malloc((size_t)nb * sizeof(float));
  float *w = malloc((size_t)no * sizeof(float)), *ref = malloc((size_t)no * sizeof(float));
  double *ga = calloc((size_t)na, sizeof(double)), *gb = calloc((size_t)nb, sizeof(double));
  float *gaf = malloc((size_t)na * sizeof(float)), *gbf = malloc((size_t)nb * sizeof(float));
  uint64_t rng = 400 + (uint64_t)_i;
  test_fill_uniform(&rng, a, na, -2, 2);
  if (k == BIN_DIV) {
    fill_range(&rng, b, nb, RANGE_AWAY_FROM_0, 2);
    for (int64_t i = 0; i < nb; i++) b[i] = b[i] < 0 ? b[i] - 0.45f : b[i] + 0.45f; /* |b| >= 0.5 */
  } else {
    test_fill_uniform(&rng, b, nb, -2, 2);
  }
  test_fill_uniform(&rng, w, no, -1, 1);

  int64_t da[4], db[4], dout[4];
  pad4(sp->a, da);
  pad4(sp->b, db);
  pad4(os, dout);
  int64_t o[4], flat = 0;
  for (o[0] = 0; o[0] < dout[0]; o[0]++)
    for (o[1] = 0; o[1] < dout[1]; o[1]++)
      for (o[2] = 0; o[2] < dout[2]; o[2]++)
        for (o[3] = 0; o[3] < dout[3]; o[3]++, flat++) {
          int64_t ia = bindex(da, o), ib = bindex(db, o);
          ref[flat] = (float)bin_ref(k, a[ia], b[ib]);
          ga[ia] += w[flat] * bin_da(k, a[ia], b[ib]);
          gb[ib] += w[flat] * bin_db(k, a[ia], b[ib]);
        }
  for (int64_t i = 0; i < na; i++) gaf[i] = (float)ga[i];
  for (int64_t i = 0; i < nb; i++) gbf[i] = (float)gb[i];

  /* A gradient summed over r broadcast elements carries the f32 rounding of that sum. */
  const double r_max = (double)(no / na > no / nb ? no / na : no / nb);
  char label[128], s1[48], s2[48];
  snprintf(label, sizeof label, "%s(%s, %s)", bin_names[k], ut_shape_str(sp->a, s1, sizeof s1),
           ut_shape_str(sp->b, s2, sizeof s2));
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 2, .shapes = (ut_shape[]){ sp->a, sp->b },
                                  .values = (const float *[]){ a, b }, .build = build_binary, .ctx = (void *)&k,
                                  .weights = w, .expect = ref, .expect_shape = os,
                                  .fwd_rel_tol = k == BIN_DIV ? ULPS : EXACT, .fwd_abs_tol = k == BIN_DIV ? 1e-7 : EXACT,
                                  .expect_grad = (const float *[]){ gaf, gbf }, .grad_rel_tol = 1e-5, .grad_abs_tol = 1e-6 + 3e-6 * r_max,
                                  .rel_tol = 5e-3, .abs_tol = 5e-4, .max_samples = 48, .seed = 500 + (uint64_t)_i });
  free(a);
  free(b);
  free(w);
  free(ref);
  free(ga);
  free(gb);
  free(gaf);
  free(gbf);
}
END_TEST

/* Which kernel each pair of bin_pairs runs (cl/elementwise.c: same, rows or bcast), and its
 * result bit for bit against the host, on sizes that are no multiple of a work-group. */
START_TEST(test_binary_paths) {
  static const char *const expect[] = { "same", "same", "rows", "rows", "rows", "rows", "rows", "rows", "rows",
                                        "rows", "rows", "rows", "rows", "rows", "rows", "bcast", "bcast" };
  ck_assert_int_eq((int)(sizeof expect / sizeof expect[0]), N_PAIRS);
  const shape_pair *sp = &bin_pairs[_i];
  const ut_shape os = host_broadcast(sp->a, sp->b);
  const int64_t na = gc_numel(sp->a), nb = gc_numel(sp->b), no = gc_numel(os);
  float *a = malloc((size_t)na * sizeof(float)), *b = malloc((size_t)nb * sizeof(float));
  float *out = malloc((size_t)no * sizeof(float)), *ref = malloc((size_t)no * sizeof(float));
  uint64_t rng = 600 + (uint64_t)_i;
  test_fill_uniform(&rng, a, na, -2, 2);
  test_fill_uniform(&rng, b, nb, -2, 2);
  int64_t da[4], db[4], dout[4], o[4], flat = 0;
  pad4(sp->a, da);
  pad4(sp->b, db);
  pad4(os, dout);
  for (o[0] = 0; o[0] < dout[0]; o[0]++)
    for (o[1] = 0; o[1] < dout[1]; o[1]++)
      for (o[2] = 0; o[2] < dout[2]; o[2]++)
        for (o[3] = 0; o[3] < dout[3]; o[3]++, flat++) ref[flat] = a[bindex(da, o)] - b[bindex(db, o)];
  ut_store *st = ut_store_new(test_runtime(), 1);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *ta = ut_input(g, "a", UT_F32, sp->a), *tb = ut_input(g, "b", UT_F32, sp->b);
  ut_tensor *y = ut_sub(g, ta, tb);
  ck_assert_ut_ptr(y);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &y, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_upload(p, ta, a));
  ck_assert_ut_ok(ut_upload(p, tb, b));
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, y, out));
  ut_profile_entry *e = NULL;
  int ne = 0;
  ck_assert_ut_ok(ut_plan_profile(p, &e, &ne));
  char kernel[64], s1[48], s2[48];
  snprintf(kernel, sizeof kernel, "binary_sub_%s", expect[_i]);
  ck_assert_msg(ne == 1 && !strcmp(e[0].kernel, kernel), "sub(%s, %s) ran %s, expected %s", ut_shape_str(sp->a, s1, sizeof s1),
                ut_shape_str(sp->b, s2, sizeof s2), ne ? e[0].kernel : "nothing", kernel);
  free(e);
  for (int64_t i = 0; i < no; i++)
    ck_assert_msg(out[i] == ref[i], "sub(%s, %s)[%lld] = %.9g, host %.9g", ut_shape_str(sp->a, s1, sizeof s1),
                  ut_shape_str(sp->b, s2, sizeof s2), (long long)i, out[i], ref[i]);
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
  free(a);
  free(b);
  free(out);
  free(ref);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Fused activation gradients: ReLU, leaky ReLU, sigmoid and tanh differentiate to one kernel
 * each. Their result must keep the bits of the op chains they replaced, and their own gradient
 * (second order) must agree with central differences.
 */
typedef struct {
  const char *name, *kernel;
  int op;       /* index in unary_ops */
} act_case;
static const act_case act_cases[] = {
  { "relu", "leaky_relu_grad", 9 },
  { "leaky_relu", "leaky_relu_grad", 10 },
  { "tanh", "tanh_grad", 11 },
  { "sigmoid", "sigmoid_grad", 12 },
};
#define N_ACT ((int)(sizeof act_cases / sizeof act_cases[0]))

/* The gradient as the engine built it before the fused kernels, from the same ops. */
static ut_tensor *chain_grad(ut_graph *g, const act_case *c, ut_tensor *x, ut_tensor *y, ut_tensor *dy) {
  const unary_op *op = &unary_ops[c->op];
  if (c->op == 9 || c->op == 10) return ut_mul(g, dy, ut_step(g, x, op->a));
  if (c->op == 11) return ut_mul(g, dy, ut_shift(g, ut_neg(g, ut_square(g, y)), 1.0f));
  return ut_mul(g, dy, ut_mul(g, y, ut_shift(g, ut_neg(g, y), 1.0f)));
}

START_TEST(test_act_grad_bits) {
  const act_case *c = &act_cases[_i];
  const unary_op *op = &unary_ops[c->op];
  ck_assert_str_eq(op->name, c->name);
  const ut_shape shape = UT_SHAPE(3, 5, 7, 11);
  const int64_t n = gc_numel(shape);
  float *x = malloc((size_t)n * sizeof(float)), *w = malloc((size_t)n * sizeof(float));
  float *fused = malloc((size_t)n * sizeof(float)), *chain = malloc((size_t)n * sizeof(float));
  uint64_t rng = 700 + (uint64_t)_i;
  fill_range(&rng, x, n, op->range, op->hi);
  x[n / 2] = 0.0f; /* the kink itself: both sides must pick the same value */
  test_fill_uniform(&rng, w, n, -1, 1);
  ut_store *st = ut_store_new(test_runtime(), 1);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *px = ut_param(g, "x", shape, (ut_init){ UT_INIT_ZERO, 0, 0 });
  ck_assert_ut_ok(ut_store_tensor_write(st, ut_store_find(st, "x"), x));
  ut_tensor *dy = ut_constant(g, shape, w);
  ut_tensor *y = op->make(g, px, op->a);
  ut_tensor *loss = ut_sum_all(g, ut_mul(g, y, dy));
  ck_assert_ut_ok(ut_backward(g, loss, (ut_tensor_list){ 1, &px }));
  ut_tensor *outs[2] = { ut_grad(g, px), chain_grad(g, c, px, y, dy) };
  ck_assert_ut_ptr(outs[0]);
  ck_assert_ut_ptr(outs[1]);
  ck_assert_str_eq(ut_tensor_op(outs[0]), c->kernel);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = outs, .n_outputs = 2 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, outs[0], fused));
  ck_assert_ut_ok(ut_read(p, outs[1], chain));
  for (int64_t i = 0; i < n; i++)
    ck_assert_msg(!memcmp(&fused[i], &chain[i], sizeof(float)), "%s: element %lld (x = %.9g): fused %.9g, chain %.9g",
                  c->name, (long long)i, x[i], fused[i], chain[i]);
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
  free(x);
  free(w);
  free(fused);
  free(chain);
}
END_TEST

/* d/dx of sum(f'(x) stuff): gc_build_grad_of differentiates the fused node again (through dy
 * for all four, through y for sigmoid and tanh). */
START_TEST(test_act_grad_second_order) {
  const act_case *c = &act_cases[_i];
  const unary_op *op = &unary_ops[c->op];
  const ut_shape shape = UT_SHAPE(3, 5, 7);
  float x[105];
  uint64_t rng = 800 + (uint64_t)_i;
  fill_range(&rng, x, 105, op->range, op->range == RANGE_ANY ? 2.0f : op->hi);
  gc_second_order so = { build_unary, (void *)op, 1 };
  char label[64];
  snprintf(label, sizeof label, "second order %s", c->name);
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &shape, .values = (const float *[]){ x },
                                  .build = gc_build_grad_of, .ctx = &so, .h = 1e-2, .rel_tol = 5e-3, .abs_tol = 1e-3,
                                  .max_samples = 32, .seed = 850 + (uint64_t)_i });
}
END_TEST

/* Incompatible shapes are refused at build time with UT_ERR_SHAPE. */
START_TEST(test_binary_bad_broadcast) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *a = ut_input(g, "a", UT_F32, UT_SHAPE(2, 3, 5, 7));
  ut_tensor *b = ut_input(g, "b", UT_F32, UT_SHAPE(5, 1, 1)); /* aligns 5 with 3 */
  ck_assert_ptr_null(ut_mul(g, a, b));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * The checkers themselves must be able to fail.
 */
START_TEST(test_gradcheck_catches_kink) {
  /* relu at exactly 0: whatever the engine picks (0 or 1), the central difference says 1/2. */
  float x[5] = { -1.0f, 0.5f, 0.0f, 1.5f, -0.25f };
  float w[5] = { 1, 1, 1, 1, 1 };
  const ut_shape shape = UT_SHAPE(5);
  unary_op relu = unary_ops[9];
  ck_assert_str_eq(relu.name, "relu");
  gc_result r = gc_gradcheck(&(gc_case){ .label = "relu at 0", .n_inputs = 1, .shapes = &shape,
                                         .values = (const float *[]){ x }, .build = build_unary, .ctx = &relu,
                                         .weights = w });
  ck_assert_msg(!r.ok, "the checker missed relu's kink: %s", r.msg);
  ck_assert_msg(strstr(r.msg, "[2]") != NULL, "the message should name element 2: %s", r.msg);
  ck_assert_int_eq(r.checked, 5);
  /* Away from the kink the same check passes. */
  x[2] = 0.125f;
  r = gc_gradcheck(&(gc_case){ .label = "relu", .n_inputs = 1, .shapes = &shape, .values = (const float *[]){ x },
                               .build = build_unary, .ctx = &relu, .weights = w });
  ck_assert_msg(r.ok, "%s", r.msg);
}
END_TEST

START_TEST(test_forward_check_catches_error) {
  float x[7] = { -3, -2, -1, 0.5f, 1, 2, 3 }, ref[7];
  const ut_shape shape = UT_SHAPE(7);
  unary_op sq = unary_ops[8];
  ck_assert_str_eq(sq.name, "square");
  for (int i = 0; i < 7; i++) ref[i] = x[i] * x[i];
  gc_case c = { .label = "square", .n_inputs = 1, .shapes = &shape, .values = (const float *[]){ x },
                .build = build_unary, .ctx = &sq, .expect = ref, .expect_shape = shape };
  gc_assert_forward(&c);
  ref[6] += 1e-3f;
  gc_result r = gc_forward(&c);
  ck_assert_msg(!r.ok && strstr(r.msg, "[6]"), "a wrong reference went unnoticed: %s", r.msg);
}
END_TEST

static Suite *elementwise_suite(void) {
  Suite *s = suite_create("ops_elementwise");
  TCase *tc = tcase_create("unary");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_unary_forward, 0, N_UNARY);
  tcase_add_loop_test(tc, test_unary_gradient, 0, N_UNARY);
  suite_add_tcase(s, tc);
  tc = tcase_create("binary");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_binary, 0, N_BIN * N_PAIRS);
  tcase_add_loop_test(tc, test_binary_paths, 0, N_PAIRS);
  tcase_add_test(tc, test_binary_bad_broadcast);
  suite_add_tcase(s, tc);
  tc = tcase_create("activation_gradients");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_act_grad_bits, 0, N_ACT);
  tcase_add_loop_test(tc, test_act_grad_second_order, 0, N_ACT);
  suite_add_tcase(s, tc);
  tc = tcase_create("checkers");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_gradcheck_catches_kink);
  tcase_add_test(tc, test_forward_check_catches_error);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(elementwise_suite()); }
