/* The data-parallel seam (untangle.h): a graph's share of the batch draws its rows of the
 * whole batch's random stream, and a reducer sees one optimiser's gradients packed and changes
 * what the updates use. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

/* Draws `shape` from stream "noise" (normal or uniform) with the graph's share set to
 * (index, count), on a fresh store of seed 7, one run. */
static void draw(int normal, ut_shape shape, int index, int count, float *out) {
  ut_runtime *rt = test_runtime();
  ut_store *st = ut_store_new(rt, 7);
  ut_graph *g = ut_graph_new(rt, st);
  ck_assert_ut_ok(ut_graph_set_share(g, index, count));
  ut_tensor *r = normal ? ut_random_normal(g, "noise", shape) : ut_random_uniform(g, "noise", shape);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &r, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, r, out));
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
}

/* Shares of 3 x 5 (15 elements: windows that start inside a Philox block) and of 4 x 8. */
START_TEST(test_share_draws_its_rows) {
  static const int rows_per_share[2] = { 3, 4 }, cols[2] = { 5, 8 };
  for (int normal = 0; normal < 2; normal++)
    for (int k = 0; k < 2; k++) {
      int r = rows_per_share[k], c = cols[k], n = 3;
      float *whole = malloc((size_t)(n * r * c) * sizeof *whole), *part = malloc((size_t)(r * c) * sizeof *part);
      draw(normal, UT_SHAPE(n * r, c), 0, 1, whole);
      for (int i = 0; i < n; i++) {
        draw(normal, UT_SHAPE(r, c), i, n, part);
        for (int e = 0; e < r * c; e++)
          ck_assert_msg(part[e] == whole[i * r * c + e], "%s %dx%d share %d of %d: element %d is %g, the whole "
                        "batch's is %g", normal ? "normal" : "uniform", r, c, i, n, e, (double)part[e],
                        (double)whole[i * r * c + e]);
      }
      free(whole);
      free(part);
    }
}
END_TEST

START_TEST(test_share_refuses_bad_values) {
  ut_runtime *rt = test_runtime();
  ut_store *st = ut_store_new(rt, 7);
  ut_graph *g = ut_graph_new(rt, st);
  ck_assert_int_eq(ut_graph_set_share(g, 2, 2), UT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "share 2 of 2"));
  ck_assert_int_eq(ut_graph_set_share(g, 0, 0), UT_ERR_INVALID_ARGUMENT);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* ---- the reducer ---------------------------------------------------------------------------- */

#define IN 3
#define OUT 2
#define ROWS 4

typedef struct {
  int calls, fail;
  float factor;
  char optimizer[32];
  int n;
  size_t total;
  float seen[64];
} recorder;

static ut_status record(void *user, const ut_gradient_pack *pack, float *values) {
  recorder *r = user;
  r->calls++;
  snprintf(r->optimizer, sizeof r->optimizer, "%s", pack->optimizer);
  r->n = pack->n;
  r->total = pack->total;
  ck_assert_uint_le(pack->total, 64);
  memcpy(r->seen, values, pack->total * sizeof *values);
  if (r->fail) return ut_fail(UT_ERR_IO, "rank 1 is gone");
  for (size_t i = 0; i < pack->total; i++) values[i] *= r->factor;
  return UT_OK;
}

typedef struct {
  ut_store *st;
  ut_graph *g;
  ut_plan *p;
  ut_tensor *x, *w, *b, *loss;
} fixture;

/* loss = mean((x W + b)^2) with SGD at `lr`; the gradients are plan outputs, so the test can
 * compare them with what the reducer saw. */
static void build(fixture *f, float lr, recorder *r) {
  ut_runtime *rt = test_runtime();
  f->st = ut_store_new(rt, 3);
  f->g = ut_graph_new(rt, f->st);
  if (r) ck_assert_ut_ok(ut_graph_set_reducer(f->g, record, r));
  f->x = ut_input(f->g, "x", UT_F32, UT_SHAPE(ROWS, IN));
  f->w = ut_param(f->g, "lin.w", UT_SHAPE(IN, OUT), (ut_init){ UT_INIT_UNIFORM, -1, 1 });
  f->b = ut_param(f->g, "lin.b", UT_SHAPE(OUT), (ut_init){ UT_INIT_UNIFORM, -1, 1 });
  ut_tensor *y = ut_add(f->g, ut_matmul(f->g, f->x, f->w, 0, 0), f->b);
  f->loss = ut_mean_all(f->g, ut_square(f->g, y));
  ck_assert_ut_ok(ut_backward(f->g, f->loss, ut_params(f->g, "lin.")));
  ck_assert_ut_ok(ut_sgd(f->g, ut_params(f->g, "lin."), &(ut_sgd_cfg){ .lr = lr, .name = "opt" }));
  ut_tensor *outs[3] = { f->loss, ut_grad(f->g, f->w), ut_grad(f->g, f->b) };
  f->p = ut_plan_compile(f->g, &(ut_plan_cfg){ .outputs = outs, .n_outputs = 3 });
  ck_assert_ut_ptr(f->p);
  float x[ROWS * IN];
  uint64_t s = 11;
  test_fill_uniform(&s, x, ROWS * IN, -1, 1);
  ck_assert_ut_ok(ut_upload(f->p, f->x, x));
}

static void fixture_free(fixture *f) {
  ut_plan_free(f->p);
  ut_graph_free(f->g);
  ut_store_free(f->st);
}

/* Gradients doubled by the reducer at lr 0.1 give what lr 0.2 gives without one, bit for
 * bit (both scale by a power of two); the reducer saw the plain gradients, packed. */
START_TEST(test_reducer_changes_the_update) {
  recorder r = { .factor = 2.0f };
  fixture a, b;
  build(&a, 0.1f, &r);
  build(&b, 0.2f, NULL);
  ck_assert_int_eq(ut_plan_get_stats(a.p).nodes, ut_plan_get_stats(b.p).nodes + 1);
  for (int run = 0; run < 3; run++) {
    ck_assert_ut_ok(ut_plan_run(a.p));
    ck_assert_ut_ok(ut_plan_run(b.p));
    ck_assert_int_eq(r.calls, run + 1);
    ck_assert_str_eq(r.optimizer, "opt");
    ck_assert_int_eq(r.n, 2);
    ck_assert_uint_eq(r.total, IN * OUT + OUT);
    float gw[IN * OUT], gb[OUT], pa[IN * OUT], pb[IN * OUT];
    ck_assert_ut_ok(ut_read(b.p, ut_grad(b.g, b.w), gw));
    ck_assert_ut_ok(ut_read(b.p, ut_grad(b.g, b.b), gb));
    for (int i = 0; i < IN * OUT; i++) ck_assert_float_eq(r.seen[i], gw[i]);
    for (int i = 0; i < OUT; i++) ck_assert_float_eq(r.seen[IN * OUT + i], gb[i]);
    ck_assert_ut_ok(ut_read(a.p, a.w, pa));
    ck_assert_ut_ok(ut_read(b.p, b.w, pb));
    for (int i = 0; i < IN * OUT; i++) ck_assert_msg(pa[i] == pb[i], "run %d: w[%d] %g against %g", run, i, (double)pa[i], (double)pb[i]);
  }
  fixture_free(&a);
  fixture_free(&b);
}
END_TEST

START_TEST(test_reducer_failure_fails_the_run) {
  recorder r = { .factor = 1.0f, .fail = 1 };
  fixture a;
  build(&a, 0.1f, &r);
  ck_assert_int_eq(ut_plan_run(a.p), UT_ERR_IO);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "rank 1 is gone"));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "'opt'"));
  fixture_free(&a);
}
END_TEST

START_TEST(test_reducer_after_optimiser_refused) {
  fixture a;
  build(&a, 0.1f, NULL);
  recorder r = { 0 };
  ck_assert_int_eq(ut_graph_set_reducer(a.g, record, &r), UT_ERR_STATE);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "before ut_adam"));
  fixture_free(&a);
}
END_TEST

static Suite *reduce_suite(void) {
  Suite *s = suite_create("reduce");
  TCase *tc = tcase_create("seam");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_share_draws_its_rows);
  tcase_add_test(tc, test_share_refuses_bad_values);
  tcase_add_test(tc, test_reducer_changes_the_update);
  tcase_add_test(tc, test_reducer_failure_fails_the_run);
  tcase_add_test(tc, test_reducer_after_optimiser_refused);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(reduce_suite()); }
