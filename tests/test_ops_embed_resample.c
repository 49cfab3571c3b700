/* Embedding lookups, resampling by two and channel concat/slice/pad: forward against plain C
 * references on the host, gradients against host references (every element) and central
 * finite differences, gradients of gradients by finite differences of the first gradient.
 * Shapes include batch 1, 1x1 spatial, odd sizes, channel counts that are no multiple of 4 and
 * element counts that are no multiple of any work-group size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

/* ---------------------------------------------------------------------------------------------
 * Embedding.
 */
typedef struct {
  int n_rows, dim, batch;
  const int32_t *idx;
} embed_case;

static ut_tensor *build_embed(ut_graph *g, ut_tensor **in, void *ctx) {
  const embed_case *e = ctx;
  return ut_embedding(g, in[0], ut_constant_i32(g, UT_SHAPE(e->batch), e->idx));
}

static void check_embedding(const embed_case *e, int max_samples) {
  int64_t nt = (int64_t)e->n_rows * e->dim, no = (int64_t)e->batch * e->dim;
  float *table = gc_random_values(11 + (uint64_t)e->batch, nt, -1, 1), *w = gc_random_values(12, no, 0.1f, 1);
  float *ref = calloc((size_t)no, sizeof *ref), *gref = calloc((size_t)nt, sizeof *gref);
  double *gacc = calloc((size_t)nt, sizeof *gacc);
  for (int b = 0; b < e->batch; b++) {
    int r = e->idx[b];
    if (r < 0 || r >= e->n_rows) continue; /* documented: a zero row, no gradient */
    for (int d = 0; d < e->dim; d++) {
      ref[b * e->dim + d] = table[r * e->dim + d];
      gacc[r * e->dim + d] += w[b * e->dim + d];
    }
  }
  for (int64_t i = 0; i < nt; i++) gref[i] = (float)gacc[i];
  ut_shape ts = UT_SHAPE(e->n_rows, e->dim);
  char label[64];
  snprintf(label, sizeof label, "embedding N%d D%d B%d", e->n_rows, e->dim, e->batch);
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &ts, .values = (const float *[]){ table },
                                  .build = build_embed, .ctx = (void *)e, .weights = w, .expect = ref, .fwd_abs_tol = 1e-30,
                                  .fwd_rel_tol = 1e-30, .expect_grad = (const float *[]){ gref }, .max_samples = max_samples,
                                  .expect_shape = UT_SHAPE(e->batch, e->dim) });
  free(table);
  free(w);
  free(ref);
  free(gref);
  free(gacc);
}

START_TEST(test_embedding_small) {
  /* repeats (3 three times, 0 twice), an unused row (5), and two out-of-range indices */
  static const int32_t idx[] = { 3, 0, 3, 6, -1, 1, 3, 0, 7 };
  check_embedding(&(embed_case){ 7, 5, 9, idx }, 64);
  static const int32_t one[] = { 2 };
  check_embedding(&(embed_case){ 3, 1, 1, one }, 64);
}
END_TEST

/* More gradient rows than a work-group, many repeats: the scatter's order must not matter. */
START_TEST(test_embedding_large) {
  int32_t idx[300];
  for (int i = 0; i < 300; i++) idx[i] = (i * 7) % 53;
  check_embedding(&(embed_case){ 61, 3, 300, idx }, 48);
}
END_TEST

/* The indices as a real int32 input uploaded per run, twice with different indices. */
START_TEST(test_embedding_input) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  float tv[4 * 3];
  for (int i = 0; i < 12; i++) tv[i] = (float)i;
  ut_tensor *table = ut_constant(g, UT_SHAPE(4, 3), tv);
  ut_tensor *idx = ut_input(g, "idx", UT_I32, UT_SHAPE(2));
  ut_tensor *y = ut_embedding(g, table, idx);
  ck_assert_ut_ptr(y);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &y, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  static const int32_t runs[2][2] = { { 1, 3 }, { 2, 100000 } };
  for (int r = 0; r < 2; r++) {
    float out[6];
    ck_assert_ut_ok(ut_upload(p, idx, runs[r]));
    ck_assert_ut_ok(ut_plan_run(p));
    ck_assert_ut_ok(ut_read(p, y, out));
    for (int b = 0; b < 2; b++)
      for (int d = 0; d < 3; d++) {
        int row = runs[r][b];
        float want = row < 4 ? tv[row * 3 + d] : 0.0f;
        ck_assert_msg(out[b * 3 + d] == want, "run %d [%d,%d] = %g, want %g", r, b, d, out[b * 3 + d], want);
      }
  }
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

START_TEST(test_embedding_errors) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *table = ut_param(g, "t", UT_SHAPE(4, 3), (ut_init){ UT_INIT_ZERO, 0, 0 });
  ck_assert_ptr_null(ut_embedding(g, table, ut_input(g, "f", UT_F32, UT_SHAPE(2))));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ck_assert_msg(strstr(ut_last_error(), "int32") != NULL, "%s", ut_last_error());
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Resampling.
 */
typedef enum { RS_UP, RS_POOL, RS_GAP } rs_kind;

static ut_tensor *build_rs(ut_graph *g, ut_tensor **in, void *ctx) {
  switch (*(const rs_kind *)ctx) {
  case RS_UP: return ut_upsample_nearest2x(g, in[0]);
  case RS_POOL: return ut_avg_pool2x2(g, in[0]);
  default: return ut_global_avg_pool(g, in[0]);
  }
}

static const ut_shape rs_shapes[] = { UT_SHAPE(1, 3, 1, 1), UT_SHAPE(2, 5, 3, 7), UT_SHAPE(1, 1, 2, 2),
                                      UT_SHAPE(3, 6, 8, 10), UT_SHAPE(2, 3, 7, 9) };
#define N_RS_SHAPES 5

/* Forward result and the gradient every element for loss = sum(out * W), on the host. */
static void rs_reference(rs_kind k, ut_shape s, const float *x, const float *w, ut_shape *os, float *out, float *grad) {
  int64_t B = s.d[0], C = s.d[1], H = s.d[2], W = s.d[3];
  int64_t OH = k == RS_UP ? 2 * H : k == RS_POOL ? H / 2 : 1, OW = k == RS_UP ? 2 * W : k == RS_POOL ? W / 2 : 1;
  *os = UT_SHAPE(B, C, OH, OW);
  memset(grad, 0, (size_t)gc_numel(s) * sizeof *grad);
  for (int64_t pl = 0; pl < B * C; pl++)
    for (int64_t y = 0; y < OH; y++)
      for (int64_t xx = 0; xx < OW; xx++) {
        int64_t o = (pl * OH + y) * OW + xx;
        double acc = 0;
        if (k == RS_UP) {
          int64_t i = (pl * H + y / 2) * W + xx / 2;
          acc = x[i];
          grad[i] += w[o];
        } else if (k == RS_POOL) {
          for (int dy = 0; dy < 2; dy++)
            for (int dx = 0; dx < 2; dx++) {
              int64_t i = (pl * H + 2 * y + dy) * W + 2 * xx + dx;
              acc += 0.25 * x[i];
              grad[i] += 0.25f * w[o];
            }
        } else {
          for (int64_t i = pl * H * W; i < (pl + 1) * H * W; i++) {
            acc += x[i] / (double)(H * W);
            grad[i] += w[o] / (float)(H * W);
          }
        }
        out[o] = (float)acc;
      }
}

START_TEST(test_resample) {
  rs_kind k = (rs_kind)(_i / N_RS_SHAPES);
  ut_shape s = rs_shapes[_i % N_RS_SHAPES];
  if (k == RS_POOL && s.d[2] < 2) return; /* pooling needs a 2x2 window: see test_resample_errors */
  int64_t n = gc_numel(s), no = n * 4 + 16;
  float *x = gc_random_values(40 + (uint64_t)_i, n, -2, 2), *w = gc_random_values(41 + (uint64_t)_i, no, 0.1f, 1);
  float *out = malloc((size_t)no * sizeof *out), *grad = malloc((size_t)n * sizeof *grad);
  ut_shape os;
  rs_reference(k, s, x, w, &os, out, grad);
  static const char *names[] = { "upsample_nearest2x", "avg_pool2x2", "global_avg_pool" };
  char label[96], sh[64];
  snprintf(label, sizeof label, "%s %s", names[k], ut_shape_str(s, sh, sizeof sh));
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &s, .values = (const float *[]){ x },
                                  .build = build_rs, .ctx = &k, .weights = w, .expect = out, .expect_shape = os,
                                  .expect_grad = (const float *[]){ grad }, .max_samples = 32, .fwd_abs_tol = 1e-6 });
  free(x);
  free(w);
  free(out);
  free(grad);
}
END_TEST

START_TEST(test_resample_second_order) {
  for (int kk = 0; kk < 2; kk++) {
    rs_kind k = (rs_kind)kk;
    ut_shape s = UT_SHAPE(1, 3, 3, 5);
    float *x = gc_random_values(50 + (uint64_t)kk, gc_numel(s), -1, 1);
    gc_second_order so = { build_rs, &k, 1 };
    gc_assert_gradcheck(&(gc_case){ .label = kk ? "avg_pool2x2 second order" : "upsample second order", .n_inputs = 1,
                                    .shapes = &s, .values = (const float *[]){ x }, .build = gc_build_grad_of, .ctx = &so,
                                    .max_samples = 16 });
    free(x);
  }
}
END_TEST

START_TEST(test_resample_errors) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(ut_avg_pool2x2(g, ut_input(g, "x", UT_F32, UT_SHAPE(1, 3, 1, 4))));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ck_assert_msg(strstr(ut_last_error(), "[1, 3, 1, 4]") != NULL, "%s", ut_last_error());
  ck_assert_ptr_null(ut_upsample_nearest2x(g, ut_input(g, "v", UT_F32, UT_SHAPE(3, 4))));
  ck_assert_msg(strstr(ut_last_error(), "upsample") != NULL, "%s", ut_last_error());
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Concat, slice, pad along dimension 1.
 */
typedef enum { CC_CONCAT, CC_SLICE, CC_PAD } cc_kind;
typedef struct {
  cc_kind kind;
  ut_shape a, b;        /* b: the second concat operand */
  int64_t start, count; /* slice: start, count; pad: start, total */
} cc_case;

static ut_tensor *build_cc(ut_graph *g, ut_tensor **in, void *ctx) {
  const cc_case *c = ctx;
  switch (c->kind) {
  case CC_CONCAT: return ut_concat(g, in[0], in[1]);
  case CC_SLICE: return ut_slice_channels(g, in[0], c->start, c->count);
  default: return ut_pad_channels(g, in[0], c->start, c->count);
  }
}

static const cc_case cc_cases[] = {
  { CC_CONCAT, UT_SHAPE(2, 3, 4, 5), UT_SHAPE(2, 1, 4, 5), 0, 0 },
  { CC_CONCAT, UT_SHAPE(1, 5, 1, 1), UT_SHAPE(1, 6, 1, 1), 0, 0 },
  { CC_CONCAT, UT_SHAPE(3, 5), UT_SHAPE(3, 2), 0, 0 },
  { CC_CONCAT, UT_SHAPE(4, 130), UT_SHAPE(4, 129), 0, 0 },
  { CC_SLICE, UT_SHAPE(2, 7, 3, 3), { 0 }, 2, 3 },
  { CC_SLICE, UT_SHAPE(3, 9), { 0 }, 8, 1 },
  { CC_SLICE, UT_SHAPE(1, 5, 1, 1), { 0 }, 0, 2 },
  { CC_PAD, UT_SHAPE(2, 3, 2, 3), { 0 }, 1, 7 },
  { CC_PAD, UT_SHAPE(3, 2), { 0 }, 3, 5 },
};
#define N_CC ((int)(sizeof cc_cases / sizeof cc_cases[0]))

START_TEST(test_channels) {
  const cc_case *c = &cc_cases[_i];
  int64_t na = gc_numel(c->a), nb = c->kind == CC_CONCAT ? gc_numel(c->b) : 0;
  int64_t B = c->a.d[0], pa = gc_numel(c->a) / B, pl = pa / c->a.d[1];
  int64_t pb = c->kind == CC_CONCAT ? nb / B : 0;
  ut_shape os = c->a;
  os.d[1] = c->kind == CC_CONCAT ? c->a.d[1] + c->b.d[1] : c->count;
  int64_t no = gc_numel(os), po = no / B;
  float *a = gc_random_values(60 + (uint64_t)_i, na, -1, 1), *b = gc_random_values(61 + (uint64_t)_i, nb ? nb : 1, -1, 1);
  float *w = gc_random_values(62 + (uint64_t)_i, no, 0.1f, 1), *ref = malloc((size_t)no * sizeof *ref);
  float *ga = calloc((size_t)na, sizeof *ga), *gb = calloc((size_t)(nb ? nb : 1), sizeof *gb);
  for (int64_t r = 0; r < B; r++)
    for (int64_t j = 0; j < po; j++) {
      int64_t o = r * po + j;
      if (c->kind == CC_CONCAT) {
        if (j < pa) ref[o] = a[r * pa + j], ga[r * pa + j] = w[o];
        else ref[o] = b[r * pb + j - pa], gb[r * pb + j - pa] = w[o];
      } else if (c->kind == CC_SLICE) {
        ref[o] = a[r * pa + c->start * pl + j];
        ga[r * pa + c->start * pl + j] = w[o];
      } else {
        int64_t k = j - c->start * pl;
        ref[o] = k >= 0 && k < pa ? a[r * pa + k] : 0.0f;
        if (k >= 0 && k < pa) ga[r * pa + k] = w[o];
      }
    }
  char label[96], sh[64];
  snprintf(label, sizeof label, "%s %s", c->kind == CC_CONCAT ? "concat" : c->kind == CC_SLICE ? "slice" : "pad",
           ut_shape_str(c->a, sh, sizeof sh));
  ut_shape shapes[2] = { c->a, c->b };
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = c->kind == CC_CONCAT ? 2 : 1, .shapes = shapes,
                                  .values = (const float *[]){ a, b }, .build = build_cc, .ctx = (void *)c, .weights = w,
                                  .expect = ref, .fwd_abs_tol = 1e-30, .fwd_rel_tol = 1e-30, .expect_shape = os,
                                  .expect_grad = (const float *[]){ ga, gb }, .max_samples = 24 });
  /* the gradient ops' own gradients */
  gc_second_order so = { build_cc, (void *)c, c->kind == CC_CONCAT ? 2 : 1 };
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = so.n_inputs, .shapes = shapes,
                                  .values = (const float *[]){ a, b }, .build = gc_build_grad_of, .ctx = &so, .max_samples = 12 });
  free(a);
  free(b);
  free(w);
  free(ref);
  free(ga);
  free(gb);
}
END_TEST

START_TEST(test_channels_errors) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *a = ut_input(g, "a", UT_F32, UT_SHAPE(2, 3, 4, 4)), *b = ut_input(g, "b", UT_F32, UT_SHAPE(2, 3, 4, 5));
  ck_assert_ptr_null(ut_concat(g, a, b));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ck_assert_msg(strstr(ut_last_error(), "[2, 3, 4, 5]") != NULL, "%s", ut_last_error());
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  a = ut_input(g, "a", UT_F32, UT_SHAPE(2, 3, 4, 4));
  ck_assert_ptr_null(ut_slice_channels(g, a, 2, 2));
  ck_assert_msg(strstr(ut_last_error(), "[2, 4)") != NULL, "%s", ut_last_error());
  ck_assert_ptr_eq(ut_slice_channels(g, a, 0, 3), a);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

static Suite *embed_resample_suite(void) {
  Suite *s = suite_create("ops_embed_resample");
  TCase *tc = tcase_create("embedding");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_embedding_small);
  tcase_add_test(tc, test_embedding_large);
  tcase_add_test(tc, test_embedding_input);
  tcase_add_test(tc, test_embedding_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("resample");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_resample, 0, 3 * N_RS_SHAPES);
  tcase_add_test(tc, test_resample_second_order);
  tcase_add_test(tc, test_resample_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("channels");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_channels, 0, N_CC);
  tcase_add_test(tc, test_channels_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(embed_resample_suite()); }
