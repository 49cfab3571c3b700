/* Reductions, shape ops, matrix products and losses: forward against a host reference in
 * double, gradients against the host derivative on every element and central differences on
 * a sample. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

static float *fmalloc(int64_t n) { return malloc((size_t)(n > 0 ? n : 1) * sizeof(float)); }

/* Element offsets of a shape of rank <= 4 padded on the left with 1s. */
static void pad4(ut_shape s, int64_t d[4]) {
  for (int i = 0; i < 4; i++) d[i] = 1;
  for (int i = 0; i < s.rank; i++) d[4 - s.rank + i] = s.d[i];
}
static int64_t flat4(const int64_t d[4], const int64_t o[4]) {
  int64_t k = 0;
  for (int i = 0; i < 4; i++) k = k * d[i] + (d[i] == 1 ? 0 : o[i]);
  return k;
}
#define FOR4(o, d)                             \
  for (o[0] = 0; o[0] < d[0]; o[0]++)          \
    for (o[1] = 0; o[1] < d[1]; o[1]++)        \
      for (o[2] = 0; o[2] < d[2]; o[2]++)      \
        for (o[3] = 0; o[3] < d[3]; o[3]++)

/* For a big tensor x and a small shape s (right-aligned, 1 where summed): y = sum_to(x, s) and
 * the gradient of sum(sum_to(x) * w), which is w broadcast back. */
static void host_sum_to(ut_shape xs, const float *x, ut_shape s, double *y) {
  int64_t dx[4], ds[4], o[4];
  pad4(xs, dx);
  pad4(s, ds);
  memset(y, 0, (size_t)gc_numel(s) * sizeof *y);
  int64_t i = 0;
  FOR4(o, dx) y[flat4(ds, o)] += x[i++];
}
static void host_broadcast(ut_shape s, const float *v, ut_shape xs, float *out) {
  int64_t dx[4], ds[4], o[4];
  pad4(xs, dx);
  pad4(s, ds);
  int64_t i = 0;
  FOR4(o, dx) out[i++] = v[flat4(ds, o)];
}

static ut_shape reduced_shape(ut_shape s, unsigned axes) {
  ut_shape r = s;
  for (int i = 0; i < s.rank; i++)
    if (axes & (1u << i)) r.d[i] = 1;
  return r;
}

/* ---------------------------------------------------------------------------------------------
 * sum and mean over axes.
 */
typedef struct {
  ut_shape shape;
  unsigned axes; /* 0: sum_all / mean_all */
} reduce_case;

static const reduce_case reduce_cases[] = {
  { UT_SHAPE(3, 5, 7, 11), 0x1 }, { UT_SHAPE(3, 5, 7, 11), 0x2 }, { UT_SHAPE(3, 5, 7, 11), 0x4 },
  { UT_SHAPE(3, 5, 7, 11), 0x8 }, { UT_SHAPE(3, 5, 7, 11), 0x5 }, { UT_SHAPE(3, 5, 7, 11), 0xA },
  { UT_SHAPE(3, 5, 7, 11), 0x6 }, { UT_SHAPE(3, 5, 7, 11), 0xC }, { UT_SHAPE(3, 5, 7, 11), 0xD },
  { UT_SHAPE(3, 5, 7, 11), 0xF }, { UT_SHAPE(33, 17), 0x1 },      { UT_SHAPE(33, 17), 0x2 },
  { UT_SHAPE(7), 0x1 },           { UT_SHAPE(1, 3, 5, 7), 0xD },  { UT_SHAPE(3, 5, 7, 11), 0 },
  { UT_SHAPE(1), 0 },
};
#define N_REDUCE ((int)(sizeof reduce_cases / sizeof reduce_cases[0]))

typedef struct {
  int mean;
  unsigned axes;
} reduce_ctx;

static ut_tensor *build_reduce(ut_graph *g, ut_tensor **in, void *ctx) {
  const reduce_ctx *c = ctx;
  if (!c->axes) return c->mean ? ut_mean_all(g, in[0]) : ut_sum_all(g, in[0]);
  return c->mean ? ut_mean(g, in[0], c->axes) : ut_sum(g, in[0], c->axes);
}

START_TEST(test_reduce) {
  const reduce_case *rc = &reduce_cases[_i / 2];
  reduce_ctx ctx = { .mean = _i % 2, .axes = rc->axes };
  const ut_shape rs = rc->axes ? reduced_shape(rc->shape, rc->axes) : UT_SHAPE(1);
  const int64_t n = gc_numel(rc->shape), nr = gc_numel(rs), count = n / nr;
  float *x = fmalloc(n), *w = fmalloc(nr), *ref = fmalloc(nr), *gref = fmalloc(n);
  double *y = malloc((size_t)nr * sizeof *y);
  uint64_t rng = 10 + (uint64_t)_i;
  test_fill_uniform(&rng, x, n, -2, 2);
  test_fill_uniform(&rng, w, nr, -1, 1);
  /* As right-aligned shapes, the reduced shape of rank r sums exactly the masked dimensions. */
  host_sum_to(rc->shape, x, rc->axes ? rs : UT_SHAPE(1, 1, 1, 1), y);
  for (int64_t i = 0; i < nr; i++) ref[i] = (float)(ctx.mean ? y[i] / (double)count : y[i]);
  host_broadcast(rc->axes ? rs : UT_SHAPE(1, 1, 1, 1), w, rc->shape, gref);
  if (ctx.mean)
    for (int64_t i = 0; i < n; i++) gref[i] = (float)((double)gref[i] / (double)count);
  char label[96], sh[48];
  snprintf(label, sizeof label, "%s(%s, axes 0x%x)", ctx.mean ? "mean" : "sum", ut_shape_str(rc->shape, sh, sizeof sh),
           rc->axes);
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &rc->shape, .values = (const float *[]){ x },
                                  .build = build_reduce, .ctx = &ctx, .weights = w, .expect = ref, .expect_shape = rs,
                                  .fwd_rel_tol = 1e-5, .fwd_abs_tol = 1e-6 + 2e-7 * (double)count * (ctx.mean ? 1.0 / (double)count : 2.0),
                                  .expect_grad = (const float *[]){ gref }, .grad_rel_tol = 1e-6, .grad_abs_tol = 1e-9,
                                  .h = 0.5, .rel_tol = 1e-3, .abs_tol = ctx.mean ? 2e-3 / (double)count : 1e-3,
                                  .max_samples = 32, .seed = 20 + (uint64_t)_i });
  free(x);
  free(w);
  free(ref);
  free(gref);
  free(y);
}
END_TEST

/* Long reductions take more than one work-group (and perhaps more than one pass). */
static ut_tensor *build_sum_all(ut_graph *g, ut_tensor **in, void *ctx) { (void)ctx; return ut_sum_all(g, in[0]); }
static ut_tensor *build_sum_axis0(ut_graph *g, ut_tensor **in, void *ctx) { (void)ctx; return ut_sum(g, in[0], 0x1); }
static ut_tensor *build_mean_axis1(ut_graph *g, ut_tensor **in, void *ctx) { (void)ctx; return ut_mean(g, in[0], 0x2); }

START_TEST(test_reduce_long) {
  const int64_t n = 100003;
  float *x = fmalloc(n);
  uint64_t rng = 77;
  test_fill_uniform(&rng, x, n, 0, 1);
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += x[i];
  float ref = (float)s;
  const ut_shape s1 = UT_SHAPE(100003);
  gc_assert_forward(&(gc_case){ .label = "sum_all([100003])", .n_inputs = 1, .shapes = &s1, .values = (const float *[]){ x },
                                .build = build_sum_all, .expect = &ref, .expect_shape = UT_SHAPE(1), .fwd_rel_tol = 2e-6,
                                .fwd_abs_tol = 1e-6 });

  /* [3001, 33] over axis 0 and [7, 9001] over axis 1: long columns and long rows. */
  const ut_shape s2 = UT_SHAPE(3001, 33), s3 = UT_SHAPE(7, 9001);
  float r2[33], r3[7];
  for (int j = 0; j < 33; j++) {
    double a = 0;
    for (int i = 0; i < 3001; i++) a += x[i * 33 + j];
    r2[j] = (float)a;
  }
  for (int i = 0; i < 7; i++) {
    double a = 0;
    for (int j = 0; j < 9001; j++) a += x[i * 9001 + j];
    r3[i] = (float)(a / 9001);
  }
  gc_assert_forward(&(gc_case){ .label = "sum([3001, 33], axis 0)", .n_inputs = 1, .shapes = &s2,
                                .values = (const float *[]){ x }, .build = build_sum_axis0, .expect = r2,
                                .expect_shape = UT_SHAPE(1, 33), .fwd_rel_tol = 2e-6, .fwd_abs_tol = 1e-6 });
  gc_assert_forward(&(gc_case){ .label = "mean([7, 9001], axis 1)", .n_inputs = 1, .shapes = &s3,
                                .values = (const float *[]){ x }, .build = build_mean_axis1, .expect = r3,
                                .expect_shape = UT_SHAPE(7, 1), .fwd_rel_tol = 2e-6, .fwd_abs_tol = 1e-7 });
  free(x);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * The sum's launch paths (cl/reduce.cl): rows (a contiguous inner block, one stage or two),
 * cols (outer dims, inner runs under 8) and the general one, each with its CPU (work-item) and
 * GPU (work-group) form forced through UNTANGLE_REDUCE. Every case checks the path taken (from
 * the profile), the result against the host in double, and that a second run gives the same
 * bits; the smaller ones also check the gradient.
 */
typedef struct {
  ut_shape shape;
  unsigned axes;
  const char *kernel;        /* the first launch's kernel with work-items (CPUs) */
  const char *group_kernel;  /* ... with work-groups (GPUs) */
  int stages;                /* launches; 0: not checked */
} path_case;

static const path_case path_cases[] = {
  { UT_SHAPE(1000000), 0x1, "reduce_rows", "reduce_rows_group", 2 },        /* a full sum of 10^6 over every unit */
  { UT_SHAPE(1, 1, 1, 1000003), 0xF, "reduce_rows", "reduce_rows_group", 2 }, /* odd length: a scalar tail */
  { UT_SHAPE(3, 333333), 0x2, "reduce_rows", "reduce_rows_group", 2 },      /* fewer outputs than compute units */
  { UT_SHAPE(64, 3, 64, 64), 0xD, "reduce_rows", "reduce_rows_group", 2 },  /* (B, H, W): parts cut rows mid-way */
  { UT_SHAPE(2, 3, 5, 9), 0xD, "reduce_rows", "reduce_rows_group", 1 },     /* (B, H, W), short */
  { UT_SHAPE(4, 6, 16, 16), 0xC, "reduce_rows", "reduce_rows_group", 1 },   /* (H, W): one output per plane */
  { UT_SHAPE(2000, 50), 0x2, "reduce_rows", "reduce_rows_group", 1 },       /* more outputs than compute units */
  { UT_SHAPE(7, 1, 3, 1), 0x5, "reduce_rows", "reduce_rows_group", 1 },     /* size-1 dims: one full sum */
  { UT_SHAPE(5, 1, 3), 0x2, "reduce_rows", "reduce_cols", 1 },              /* sums of one element each */
  { UT_SHAPE(1), 0x1, "reduce_rows", "reduce_cols", 1 },
  { UT_SHAPE(400, 3), 0x2, "reduce_rows", "reduce_cols", 0 },               /* rows shorter than a vector */
  { UT_SHAPE(4096, 33), 0x1, "reduce_cols", "reduce_cols", 2 },             /* few long columns, a tail block */
  { UT_SHAPE(32, 64), 0x1, "reduce_cols", "reduce_cols", 1 },               /* a linear layer's bias gradient */
  { UT_SHAPE(300, 6, 2, 2), 0xD, "reduce_cols", "reduce_cols", 2 },         /* (B, H, W) over 2x2 planes */
  { UT_SHAPE(7, 1, 5), 0x3, "reduce_cols", "reduce_cols", 0 },              /* a size-1 dim merges */
  { UT_SHAPE(2, 3, 5, 7), 0xA, "reduce_sum", "reduce_sum", 1 },             /* kept dims on both sides */
  { UT_SHAPE(6, 1, 5, 3), 0x4, "reduce_sum", "reduce_sum", 1 },
};
#define N_PATH ((int)(sizeof path_cases / sizeof path_cases[0]))
static const char *const path_variants[3] = { NULL, "items", "groups" };

static ut_tensor *build_path_sum(ut_graph *g, ut_tensor **in, void *ctx) {
  return ut_sum(g, in[0], ((const path_case *)ctx)->axes);
}

/* loop index: case x variant (default, items, groups) */
START_TEST(test_reduce_paths) {
  const path_case *pc = &path_cases[_i / 3];
  const char *variant = path_variants[_i % 3];
  if (variant) setenv("UNTANGLE_REDUCE", variant, 1);
  else unsetenv("UNTANGLE_REDUCE");
  const ut_shape rs = reduced_shape(pc->shape, pc->axes);
  const int64_t n = gc_numel(pc->shape), nr = gc_numel(rs), count = n / nr;
  float *x = fmalloc(n), *ref = fmalloc(nr), *out = fmalloc(nr), *again = fmalloc(nr);
  double *y = malloc((size_t)nr * sizeof *y);
  uint64_t rng = 900 + (uint64_t)_i;
  test_fill_uniform(&rng, x, n, 0, 1); /* one sign: a relative tolerance means something */
  host_sum_to(pc->shape, x, rs, y);
  for (int64_t i = 0; i < nr; i++) ref[i] = (float)y[i];

  ut_store *st = ut_store_new(test_runtime(), 1);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *in = ut_input(g, "x", UT_F32, pc->shape);
  ut_tensor *s = ut_sum(g, in, pc->axes);
  ck_assert_ut_ptr(s);
  ck_assert(ut_shape_equal(ut_tensor_shape(s), rs));
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &s, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_upload(p, in, x));
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, s, out));
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, s, again));

  char label[96], sh[48];
  snprintf(label, sizeof label, "sum(%s, axes 0x%x, %s)", ut_shape_str(pc->shape, sh, sizeof sh), pc->axes,
           variant ? variant : "default");
  ut_profile_entry *e = NULL;
  int ne = 0;
  ck_assert_ut_ok(ut_plan_profile(p, &e, &ne));
  int groups = variant ? !strcmp(variant, "groups") : ut_runtime_device(test_runtime())->type != UT_DEVICE_CPU;
  const char *want = groups ? pc->group_kernel : pc->kernel;
  ck_assert_msg(ne >= 1 && !strcmp(e[0].kernel, want), "%s: ran %s, expected %s", label, ne ? e[0].kernel : "nothing", want);
  if (pc->stages) {
    ck_assert_msg(ne == pc->stages, "%s: %d launches, expected %d", label, ne, pc->stages);
    if (ne == 2) ck_assert_str_eq(e[1].kernel, "reduce_finish");
  }
  free(e);
  ck_assert_msg(!memcmp(out, again, (size_t)nr * sizeof *out), "%s: a second run gave other bits", label);
  int64_t at = 0;
  /* Values in [0, 1): the sum's f32 rounding grows at most with the length of the shortest
   * run of additions; 1e-6 relative leaves room for a chain of 8-wide partial sums. */
  double r = test_compare(out, ref, nr, 1e-6, 1e-6 + 1e-9 * (double)count, &at);
  ck_assert_msg(r <= 1, "%s: output %lld = %.9g, host %.9g", label, (long long)at, out[at], ref[at]);
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);

  if (n <= 20000) {
    float *w = fmalloc(nr), *gref = fmalloc(n);
    test_fill_uniform(&rng, w, nr, -1, 1);
    host_broadcast(rs, w, pc->shape, gref);
    gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &pc->shape, .values = (const float *[]){ x },
                                    .build = build_path_sum, .ctx = (void *)pc, .weights = w, .expect = ref,
                                    .expect_shape = rs, .fwd_rel_tol = 1e-5, .fwd_abs_tol = 1e-6,
                                    .expect_grad = (const float *[]){ gref }, .grad_rel_tol = 1e-7, .grad_abs_tol = 1e-12,
                                    .h = 0.25, .rel_tol = 1e-3, .abs_tol = 1e-3, .max_samples = 16, .seed = 950 + (uint64_t)_i });
    free(w);
    free(gref);
  }
  unsetenv("UNTANGLE_REDUCE");
  free(x);
  free(ref);
  free(out);
  free(again);
  free(y);
}
END_TEST

/* The gradient of a sum through a sum: the broadcast's own backward is a sum_to, so a second
 * order check runs the fast paths on the way back. */
static ut_tensor *build_sum_square(ut_graph *g, ut_tensor **in, void *ctx) {
  return ut_mul(g, ut_sum(g, in[0], *(const unsigned *)ctx), ut_sum(g, in[0], *(const unsigned *)ctx));
}

START_TEST(test_reduce_second_order) {
  static const unsigned masks[3] = { 0xD, 0x1, 0xF };
  const ut_shape shape = UT_SHAPE(3, 4, 5, 6);
  unsigned axes = masks[_i];
  float x[360];
  uint64_t rng = 990 + (uint64_t)_i;
  test_fill_uniform(&rng, x, 360, -1, 1);
  gc_second_order so = { build_sum_square, &axes, 1 };
  char label[64];
  snprintf(label, sizeof label, "d/dx of sum(x, 0x%x)^2", axes);
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &shape, .values = (const float *[]){ x },
                                  .build = gc_build_grad_of, .ctx = &so, .h = 0.01, .rel_tol = 2e-3, .abs_tol = 2e-3,
                                  .max_samples = 16, .seed = 995 + (uint64_t)_i });
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * sum_to, broadcast, reshape.
 */
typedef struct {
  ut_shape big, small;
} to_case;

static const to_case to_cases[] = {
  { UT_SHAPE(2, 3, 5, 7), UT_SHAPE(1, 3, 1, 1) }, { UT_SHAPE(2, 3, 5, 7), UT_SHAPE(2, 1, 1, 1) },
  { UT_SHAPE(2, 3, 5, 7), UT_SHAPE(1, 1, 5, 7) }, { UT_SHAPE(2, 3, 5, 7), UT_SHAPE(3, 1, 1) },
  { UT_SHAPE(2, 3, 5, 7), UT_SHAPE(7) },          { UT_SHAPE(2, 3, 5, 7), UT_SHAPE(2, 3, 5, 7) },
  { UT_SHAPE(4, 5), UT_SHAPE(5) },                { UT_SHAPE(4, 5), UT_SHAPE(1) },
  { UT_SHAPE(3, 4), UT_SHAPE(3, 1) },
};
#define N_TO ((int)(sizeof to_cases / sizeof to_cases[0]))

static ut_tensor *build_sum_to(ut_graph *g, ut_tensor **in, void *ctx) {
  return ut_sum_to(g, in[0], ((const to_case *)ctx)->small);
}
static ut_tensor *build_broadcast(ut_graph *g, ut_tensor **in, void *ctx) {
  return ut_broadcast(g, in[0], ((const to_case *)ctx)->big);
}

START_TEST(test_sum_to) {
  const to_case *tc = &to_cases[_i];
  const int64_t nb = gc_numel(tc->big), ns = gc_numel(tc->small);
  float *x = fmalloc(nb), *w = fmalloc(ns), *ref = fmalloc(ns), *gref = fmalloc(nb);
  double *y = malloc((size_t)ns * sizeof *y);
  uint64_t rng = 30 + (uint64_t)_i;
  test_fill_uniform(&rng, x, nb, -2, 2);
  test_fill_uniform(&rng, w, ns, -1, 1);
  host_sum_to(tc->big, x, tc->small, y);
  for (int64_t i = 0; i < ns; i++) ref[i] = (float)y[i];
  host_broadcast(tc->small, w, tc->big, gref);
  char label[96], a[48], b[48];
  snprintf(label, sizeof label, "sum_to(%s -> %s)", ut_shape_str(tc->big, a, sizeof a), ut_shape_str(tc->small, b, sizeof b));
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &tc->big, .values = (const float *[]){ x },
                                  .build = build_sum_to, .ctx = (void *)tc, .weights = w, .expect = ref,
                                  .expect_shape = tc->small, .fwd_rel_tol = 1e-5, .fwd_abs_tol = 1e-6 * (double)(nb / ns),
                                  .expect_grad = (const float *[]){ gref }, .grad_rel_tol = 1e-7, .grad_abs_tol = 1e-12,
                                  .h = 0.5, .rel_tol = 1e-3, .abs_tol = 1e-4, .max_samples = 32, .seed = 40 + (uint64_t)_i });
  free(x);
  free(w);
  free(ref);
  free(gref);
  free(y);
}
END_TEST

START_TEST(test_broadcast) {
  const to_case *tc = &to_cases[_i];
  const int64_t nb = gc_numel(tc->big), ns = gc_numel(tc->small);
  float *x = fmalloc(ns), *w = fmalloc(nb), *ref = fmalloc(nb), *gref = fmalloc(ns);
  double *y = malloc((size_t)ns * sizeof *y);
  uint64_t rng = 50 + (uint64_t)_i;
  test_fill_uniform(&rng, x, ns, -2, 2);
  test_fill_uniform(&rng, w, nb, -1, 1);
  host_broadcast(tc->small, x, tc->big, ref);
  host_sum_to(tc->big, w, tc->small, y);
  for (int64_t i = 0; i < ns; i++) gref[i] = (float)y[i];
  char label[96], a[48], b[48];
  snprintf(label, sizeof label, "broadcast(%s -> %s)", ut_shape_str(tc->small, a, sizeof a),
           ut_shape_str(tc->big, b, sizeof b));
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &tc->small, .values = (const float *[]){ x },
                                  .build = build_broadcast, .ctx = (void *)tc, .weights = w, .expect = ref,
                                  .expect_shape = tc->big, .fwd_rel_tol = 1e-30, .fwd_abs_tol = 1e-30,
                                  .expect_grad = (const float *[]){ gref }, .grad_rel_tol = 1e-5,
                                  .grad_abs_tol = 1e-6 * (double)(nb / ns), .h = 0.5, .rel_tol = 1e-3, .abs_tol = 1e-4,
                                  .max_samples = 32, .seed = 60 + (uint64_t)_i });
  free(x);
  free(w);
  free(ref);
  free(gref);
  free(y);
}
END_TEST

typedef struct {
  ut_shape to;
  int then_square; /* use the view as an input of another op, or return the view itself */
} reshape_ctx;

static ut_tensor *build_reshape(ut_graph *g, ut_tensor **in, void *ctx) {
  const reshape_ctx *c = ctx;
  ut_tensor *v = ut_reshape(g, in[0], c->to);
  return c->then_square ? ut_square(g, v) : v;
}

START_TEST(test_reshape) {
  static const reshape_ctx cases[] = {
    { UT_SHAPE(12, 5), 0 }, { UT_SHAPE(60), 1 }, { UT_SHAPE(5, 3, 4), 1 }, { UT_SHAPE(1, 3, 4, 5), 0 },
  };
  const reshape_ctx *c = &cases[_i];
  const ut_shape xs = UT_SHAPE(3, 4, 5);
  float x[60], w[60], ref[60], gref[60];
  uint64_t rng = 70 + (uint64_t)_i;
  test_fill_uniform(&rng, x, 60, -2, 2);
  test_fill_uniform(&rng, w, 60, -1, 1);
  for (int i = 0; i < 60; i++) {
    ref[i] = c->then_square ? x[i] * x[i] : x[i]; /* the same memory order */
    gref[i] = c->then_square ? 2 * x[i] * w[i] : w[i];
  }
  char label[64], sh[48];
  snprintf(label, sizeof label, "reshape([3, 4, 5] -> %s)%s", ut_shape_str(c->to, sh, sizeof sh),
           c->then_square ? " then square" : "");
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &xs, .values = (const float *[]){ x },
                                  .build = build_reshape, .ctx = (void *)c, .weights = w, .expect = ref,
                                  .expect_shape = c->to, .fwd_rel_tol = 1e-30, .fwd_abs_tol = 1e-30,
                                  .expect_grad = (const float *[]){ gref }, .grad_rel_tol = 1e-6, .grad_abs_tol = 1e-12,
                                  .h = 0.5, .rel_tol = 1e-3, .abs_tol = 1e-4, .max_samples = 16 });
}
END_TEST

START_TEST(test_reshape_bad_count) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(3, 4, 5));
  ck_assert_ptr_nonnull(x);
  ck_assert_ptr_null(ut_reshape(g, x, UT_SHAPE(7, 9)));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * matmul and linear.
 */
typedef struct {
  int64_t m, k, n;
  int ta, tb;
} mm_ctx;

static ut_tensor *build_matmul(ut_graph *g, ut_tensor **in, void *ctx) {
  const mm_ctx *c = ctx;
  return ut_matmul(g, in[0], in[1], c->ta, c->tb);
}

static double mm_a(const mm_ctx *c, const float *a, int64_t i, int64_t p) { return c->ta ? a[p * c->m + i] : a[i * c->k + p]; }
static double mm_b(const mm_ctx *c, const float *b, int64_t p, int64_t j) { return c->tb ? b[j * c->k + p] : b[p * c->n + j]; }
static int64_t mm_ai(const mm_ctx *c, int64_t i, int64_t p) { return c->ta ? p * c->m + i : i * c->k + p; }
static int64_t mm_bi(const mm_ctx *c, int64_t p, int64_t j) { return c->tb ? j * c->k + p : p * c->n + j; }

/* loop index: size (3) x ta (2) x tb (2) */
START_TEST(test_matmul) {
  static const int64_t sizes[3][3] = { { 1, 1, 1 }, { 7, 13, 5 }, { 33, 17, 65 } };
  const int64_t *sz = sizes[_i / 4];
  mm_ctx c = { sz[0], sz[1], sz[2], (_i / 2) % 2, _i % 2 };
  const ut_shape as = c.ta ? UT_SHAPE(c.k, c.m) : UT_SHAPE(c.m, c.k);
  const ut_shape bs = c.tb ? UT_SHAPE(c.n, c.k) : UT_SHAPE(c.k, c.n);
  float *a = fmalloc(c.m * c.k), *b = fmalloc(c.k * c.n), *w = fmalloc(c.m * c.n), *ref = fmalloc(c.m * c.n);
  double *ga = calloc((size_t)(c.m * c.k), sizeof *ga), *gb = calloc((size_t)(c.k * c.n), sizeof *gb);
  float *gaf = fmalloc(c.m * c.k), *gbf = fmalloc(c.k * c.n);
  uint64_t rng = 80 + (uint64_t)_i;
  test_fill_uniform(&rng, a, c.m * c.k, -1, 1);
  test_fill_uniform(&rng, b, c.k * c.n, -1, 1);
  test_fill_uniform(&rng, w, c.m * c.n, -1, 1);
  for (int64_t i = 0; i < c.m; i++)
    for (int64_t j = 0; j < c.n; j++) {
      double s = 0;
      for (int64_t p = 0; p < c.k; p++) {
        s += mm_a(&c, a, i, p) * mm_b(&c, b, p, j);
        ga[mm_ai(&c, i, p)] += (double)w[i * c.n + j] * mm_b(&c, b, p, j);
        gb[mm_bi(&c, p, j)] += (double)w[i * c.n + j] * mm_a(&c, a, i, p);
      }
      ref[i * c.n + j] = (float)s;
    }
  for (int64_t i = 0; i < c.m * c.k; i++) gaf[i] = (float)ga[i];
  for (int64_t i = 0; i < c.k * c.n; i++) gbf[i] = (float)gb[i];
  char label[96];
  snprintf(label, sizeof label, "matmul(M %lld, K %lld, N %lld, ta %d, tb %d)", (long long)c.m, (long long)c.k,
           (long long)c.n, c.ta, c.tb);
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 2, .shapes = (ut_shape[]){ as, bs },
                                  .values = (const float *[]){ a, b }, .build = build_matmul, .ctx = &c, .weights = w,
                                  .expect = ref, .expect_shape = UT_SHAPE(c.m, c.n), .fwd_rel_tol = 1e-5,
                                  .fwd_abs_tol = 2e-7 * (double)c.k, .expect_grad = (const float *[]){ gaf, gbf },
                                  .grad_rel_tol = 1e-5, .grad_abs_tol = 2e-7 * (double)(c.m > c.n ? c.m : c.n),
                                  .h = 0.5, .rel_tol = 1e-3, .abs_tol = 1e-4, .max_samples = 24, .seed = 90 + (uint64_t)_i });
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

static ut_tensor *build_linear(ut_graph *g, ut_tensor **in, void *ctx) {
  (void)ctx;
  return ut_linear(g, in[0], "lin", 4);
}

/* x [3, 5] -> [3, 4] with lin.w [4, 5] and lin.b [4] set to known values in the store. */
START_TEST(test_linear) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ck_assert_ut_ptr(st);
  ut_store_tensor *tw = ut_store_tensor_get(st, "lin.w", UT_SHAPE(4, 5), (ut_init){ UT_INIT_ZERO, 0, 0 });
  ut_store_tensor *tb = ut_store_tensor_get(st, "lin.b", UT_SHAPE(4), (ut_init){ UT_INIT_ZERO, 0, 0 });
  ck_assert_ut_ptr(tw);
  ck_assert_ut_ptr(tb);
  float x[15], wv[20], bv[4], W[12], ref[12], gx[15];
  uint64_t rng = 99;
  test_fill_uniform(&rng, x, 15, -1, 1);
  test_fill_uniform(&rng, wv, 20, -1, 1);
  test_fill_uniform(&rng, bv, 4, -1, 1);
  test_fill_uniform(&rng, W, 12, -1, 1);
  ck_assert_ut_ok(ut_store_tensor_write(st, tw, wv));
  ck_assert_ut_ok(ut_store_tensor_write(st, tb, bv));
  for (int i = 0; i < 3; i++)
    for (int o = 0; o < 4; o++) {
      double s = bv[o];
      for (int k = 0; k < 5; k++) s += (double)x[i * 5 + k] * wv[o * 5 + k];
      ref[i * 4 + o] = (float)s;
    }
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 5; k++) {
      double s = 0;
      for (int o = 0; o < 4; o++) s += (double)W[i * 4 + o] * wv[o * 5 + k];
      gx[i * 5 + k] = (float)s;
    }
  const ut_shape xs = UT_SHAPE(3, 5);
  /* check_params: lin.w and lin.b are differentiated and perturbed too. */
  gc_assert_gradcheck(&(gc_case){ .label = "linear(3x5 -> 4)", .n_inputs = 1, .shapes = &xs,
                                  .values = (const float *[]){ x }, .build = build_linear, .store = st,
                                  .check_params = 1, .weights = W, .expect = ref, .expect_shape = UT_SHAPE(3, 4),
                                  .fwd_rel_tol = 1e-5, .fwd_abs_tol = 1e-6, .expect_grad = (const float *[]){ gx },
                                  .h = 0.25, .rel_tol = 1e-3, .abs_tol = 1e-4 });
  /* The gradcheck restored the parameters it perturbed. */
  float back[20];
  ck_assert_ut_ok(ut_store_tensor_read(st, tw, back));
  ck_assert_mem_eq(back, wv, sizeof wv);
  ut_store_free(st);
}
END_TEST

/* A new linear layer: parameter names and shapes, and PyTorch's U(-1/sqrt(in), 1/sqrt(in)). */
START_TEST(test_linear_init) {
  ut_store *st = ut_store_new(test_runtime(), 6);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(2, 16));
  ut_tensor *y = ut_linear(g, x, "fc", 32);
  ck_assert_ut_ptr(y);
  ck_assert(ut_shape_equal(ut_tensor_shape(y), UT_SHAPE(2, 32)));
  ut_tensor_list l = ut_params(g, "fc.");
  ck_assert_int_eq(l.n, 2);
  ck_assert_str_eq(ut_tensor_name(l.t[0]), "fc.w");
  ck_assert_str_eq(ut_tensor_name(l.t[1]), "fc.b");
  ck_assert(ut_shape_equal(ut_tensor_shape(l.t[0]), UT_SHAPE(32, 16)));
  ck_assert(ut_shape_equal(ut_tensor_shape(l.t[1]), UT_SHAPE(32)));
  float w[512], b[32];
  ck_assert_ut_ok(ut_store_tensor_read(st, ut_store_find(st, "fc.w"), w));
  ck_assert_ut_ok(ut_store_tensor_read(st, ut_store_find(st, "fc.b"), b));
  float wmax = 0, bmax = 0;
  double wmean = 0;
  for (int i = 0; i < 512; i++) {
    ck_assert_msg(fabsf(w[i]) <= 0.25f, "fc.w[%d] = %g outside +-1/sqrt(16)", i, w[i]);
    wmax = fmaxf(wmax, fabsf(w[i]));
    wmean += w[i];
  }
  for (int i = 0; i < 32; i++) {
    ck_assert_msg(fabsf(b[i]) <= 0.25f, "fc.b[%d] = %g outside +-1/sqrt(16)", i, b[i]);
    bmax = fmaxf(bmax, fabsf(b[i]));
  }
  /* 512 uniform draws reach near the bound, and average near 0 (sd of the mean 0.0064). */
  ck_assert_msg(wmax > 0.24f && bmax > 0.15f, "init range too narrow: max |w| %g, max |b| %g", wmax, bmax);
  ck_assert_msg(fabs(wmean / 512) < 0.03, "init mean %g", wmean / 512);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Losses.
 */
static ut_tensor *build_l1(ut_graph *g, ut_tensor **in, void *ctx) { (void)ctx; return ut_l1_loss(g, in[0], in[1]); }
static ut_tensor *build_mse(ut_graph *g, ut_tensor **in, void *ctx) { (void)ctx; return ut_mse_loss(g, in[0], in[1]); }

/* loop index: loss (2) x shape (2) */
START_TEST(test_loss) {
  const int mse = _i / 2;
  const ut_shape shape = _i % 2 ? UT_SHAPE(3, 5, 7, 11) : UT_SHAPE(5, 7);
  const int64_t n = gc_numel(shape);
  float *a = fmalloc(n), *b = fmalloc(n), *d = fmalloc(n), *ga = fmalloc(n), *gb = fmalloc(n);
  float w = -0.75f, ref;
  uint64_t rng = 110 + (uint64_t)_i;
  test_fill_uniform(&rng, a, n, -2, 2);
  test_fill_uniform(&rng, d, n, 0.05f, 1); /* |a - b| >= 0.05: away from l1's kink */
  double s = 0;
  for (int64_t i = 0; i < n; i++) {
    float sg = (i * 7 % 3) ? 1.0f : -1.0f;
    b[i] = a[i] + sg * d[i];
    double diff = (double)a[i] - (double)b[i];
    s += mse ? diff * diff : fabs(diff);
    double g = mse ? 2 * diff / (double)n : (diff > 0 ? 1.0 : -1.0) / (double)n;
    ga[i] = (float)(w * g);
    gb[i] = (float)(-w * g);
  }
  ref = (float)(s / (double)n);
  char label[64], sh[48];
  snprintf(label, sizeof label, "%s(%s)", mse ? "mse_loss" : "l1_loss", ut_shape_str(shape, sh, sizeof sh));
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 2, .shapes = (ut_shape[]){ shape, shape },
                                  .values = (const float *[]){ a, b }, .build = mse ? build_mse : build_l1, .weights = &w,
                                  .expect = &ref, .expect_shape = UT_SHAPE(1), .fwd_rel_tol = 1e-5, .fwd_abs_tol = 1e-7,
                                  .expect_grad = (const float *[]){ ga, gb }, .grad_rel_tol = 1e-5, .grad_abs_tol = 1e-9,
                                  .h = mse ? 0.25 : 0.04, .rel_tol = 5e-3, .abs_tol = 1e-5, .max_samples = 32, .seed = 120 + (uint64_t)_i });
  free(a);
  free(b);
  free(d);
  free(ga);
  free(gb);
}
END_TEST

static Suite *reduce_suite(void) {
  Suite *s = suite_create("ops_reduce");
  TCase *tc = tcase_create("reduce");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_reduce, 0, 2 * N_REDUCE);
  tcase_add_test(tc, test_reduce_long);
  tcase_add_loop_test(tc, test_reduce_paths, 0, 3 * N_PATH);
  tcase_add_loop_test(tc, test_reduce_second_order, 0, 3);
  suite_add_tcase(s, tc);
  tc = tcase_create("shape");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_sum_to, 0, N_TO);
  tcase_add_loop_test(tc, test_broadcast, 0, N_TO);
  tcase_add_loop_test(tc, test_reshape, 0, 4);
  tcase_add_test(tc, test_reshape_bad_count);
  suite_add_tcase(s, tc);
  tc = tcase_create("matmul");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_matmul, 0, 12);
  tcase_add_test(tc, test_linear);
  tcase_add_test(tc, test_linear_init);
  suite_add_tcase(s, tc);
  tc = tcase_create("loss");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_loss, 0, 4);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(reduce_suite()); }
