/* The data-parallel seam (untangle.h): a graph's share of the batch draws its rows of the
 * whole batch's random stream, and a reducer sees one optimiser's gradients packed and changes
 * what the updates use. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

/* Draws `shape` from stream "noise" (normal or uniform) with the graph's share set to
 * (index, count) of a batch of `blocks` blocks, on a fresh store of seed 7, one run. */
static void draw(int normal, ut_shape shape, int index, int count, int blocks, float *out) {
  ut_runtime *rt = test_runtime();
  ut_store *st = ut_store_new(rt, 7);
  ut_graph *g = ut_graph_new(rt, st);
  ck_assert_ut_ok(blocks == 1 ? ut_graph_set_share(g, index, count) : ut_graph_set_share_blocks(g, index, count, blocks));
  ut_tensor *r = normal ? ut_random_normal(g, "noise", shape) : ut_random_uniform(g, "noise", shape);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &r, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, r, out));
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
}

/* Shares of 3 x 5 (15 elements: windows that start inside a Philox block) and of 4 x 8, of a
 * batch of one block and of one of 2 blocks (rows: block 0's shares, then block 1's). */
START_TEST(test_share_draws_its_rows) {
  static const int rows_per_share[2] = { 3, 4 }, cols[2] = { 5, 8 };
  for (int blocks = 1; blocks <= 2; blocks++)
    for (int normal = 0; normal < 2; normal++)
      for (int k = 0; k < 2; k++) {
        int r = rows_per_share[k], c = cols[k], n = 3, per = r * c;
        float *whole = malloc((size_t)(blocks * n * per) * sizeof *whole), *part = malloc((size_t)(blocks * per) * sizeof *part);
        draw(normal, UT_SHAPE(blocks * n * r, c), 0, 1, 1, whole);
        for (int i = 0; i < n; i++) {
          draw(normal, UT_SHAPE(blocks * r, c), i, n, blocks, part);
          for (int b = 0; b < blocks; b++)
            for (int e = 0; e < per; e++) {
              float want = whole[(b * n + i) * per + e];
              ck_assert_msg(part[b * per + e] == want, "%s %dx%d share %d of %d, block %d of %d: element %d is %g, the "
                            "whole batch's is %g", normal ? "normal" : "uniform", r, c, i, n, b, blocks, e,
                            (double)part[b * per + e], (double)want);
            }
        }
        free(whole);
        free(part);
      }
}
END_TEST

/* A share of blocks whose random source's first dimension does not split into them. */
START_TEST(test_share_blocks_refuse_uneven_sources) {
  ut_runtime *rt = test_runtime();
  ut_store *st = ut_store_new(rt, 7);
  ut_graph *g = ut_graph_new(rt, st);
  ck_assert_ut_ok(ut_graph_set_share_blocks(g, 0, 2, 3));
  ut_tensor *r = ut_random_normal(g, "noise", UT_SHAPE(4, 2));
  ck_assert_ptr_null(ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &r, .n_outputs = 1 }));
  ck_assert_msg(strstr(ut_last_error(), "'noise'") && strstr(ut_last_error(), "first dimension 4 does not split into the "
                "batch's 3 blocks"), "%s", ut_last_error());
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

START_TEST(test_share_refuses_bad_values) {
  ut_runtime *rt = test_runtime();
  ut_store *st = ut_store_new(rt, 7);
  ut_graph *g = ut_graph_new(rt, st);
  ck_assert_int_eq(ut_graph_set_share(g, 2, 2), UT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "share 2 of 2"));
  ck_assert_int_eq(ut_graph_set_share(g, 0, 0), UT_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(ut_graph_set_share_blocks(g, 0, 2, 0), UT_ERR_INVALID_ARGUMENT);
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

/* ---- sums over the team inside the forward pass ------------------------------------------------ */

#define TS_ROWS 4   /* the whole batch */
#define TS_IN 3
#define TS_CALLS 8  /* team sums a run makes, at most */

/* One rank of a team simulated in one process: the ranks run one after another, each sum
 * adding what the other rank handed over at the same call of the previous pass, so after a
 * few passes every sum is the team's (the values a call gets depend on earlier calls only). */
typedef struct rank_sums {
  struct rank_sums *other;
  int calls;
  float mine[TS_CALLS], last[TS_CALLS];
  int have[TS_CALLS];
} rank_sums;

static ut_status replay_sum(void *user, float *values, int n) {
  rank_sums *r = user;
  ck_assert_int_eq(n, 1);
  ck_assert_int_lt(r->calls, TS_CALLS);
  int k = r->calls++;
  r->mine[k] = values[0];
  r->have[k] = 1;
  if (r->other && r->other->have[k]) values[0] += r->other->last[k];
  return UT_OK;
}

/* The quantities a pass leaves for the other rank's next one. */
static void replay_end_pass(rank_sums *r) {
  memcpy(r->last, r->mine, sizeof r->last);
  r->calls = 0;
}

typedef struct {
  ut_store *st;
  ut_graph *g;
  ut_plan *p;
  ut_tensor *loss, *w;
} ratio_net;

/* With y = x w over `rows` rows of the batch, `ranks` ranks in all: loss = A / (B + 0.5) +
 * mean y, where A = mean y^2 and B = mean exp(y) over the whole batch (team means of the
 * rows' means), mean y over this graph's rows: a ratio of batch means beside a per-row term,
 * as DMIT's decoder update has. */
static void ratio_build(ratio_net *f, const float *x, int rows, int ranks, rank_sums *sums) {
  ut_runtime *rt = test_runtime();
  f->st = ut_store_new(rt, 5);
  f->g = ut_graph_new(rt, f->st);
  ut_graph *g = f->g;
  ut_tensor *in = ut_input(g, "x", UT_F32, UT_SHAPE(rows, TS_IN));
  f->w = ut_param(g, "lin.w", UT_SHAPE(TS_IN, 1), (ut_init){ UT_INIT_UNIFORM, -1, 1 });
  ut_tensor *y = ut_matmul(g, in, f->w, 0, 0);
  ut_value_summer fn = sums ? replay_sum : NULL;
  ut_tensor *a = ut_scale(g, ut_team_sum(g, ut_mean_all(g, ut_square(g, y)), fn, sums), 1.0f / (float)ranks);
  ut_tensor *b = ut_scale(g, ut_team_sum(g, ut_mean_all(g, ut_exp(g, y)), fn, sums), 1.0f / (float)ranks);
  f->loss = ut_add(g, ut_div(g, a, ut_shift(g, b, 0.5f)), ut_mean_all(g, y));
  ck_assert_ut_ok(ut_backward(g, f->loss, ut_params(g, "lin.")));
  ut_tensor *outs[2] = { f->loss, ut_grad(g, f->w) };
  f->p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = outs, .n_outputs = 2 });
  ck_assert_ut_ptr(f->p);
  ck_assert_ut_ok(ut_upload(f->p, in, x));
}

static void ratio_read(ratio_net *f, float *loss, float *grad) {
  ck_assert_ut_ok(ut_read(f->p, f->loss, loss));
  ck_assert_ut_ok(ut_read(f->p, ut_grad(f->g, f->w), grad));
}

static void ratio_free(ratio_net *f) {
  ut_plan_free(f->p);
  ut_graph_free(f->g);
  ut_store_free(f->st);
}

/* Two ranks of two rows each against one process over the four: every rank computes the one
 * process's loss, and the mean of the ranks' gradients (the reducer's) is its gradient. A
 * backward that passed the gradient through unsummed would give the ratio's part half. */
START_TEST(test_team_sum_gives_the_whole_batch_gradient) {
  float x[TS_ROWS * TS_IN];
  uint64_t seed = 21;
  test_fill_uniform(&seed, x, TS_ROWS * TS_IN, -1, 1);
  ratio_net one, rank[2];
  rank_sums sums[2] = { { .other = &sums[1] }, { .other = &sums[0] } };
  ratio_build(&one, x, TS_ROWS, 1, NULL);
  for (int r = 0; r < 2; r++) ratio_build(&rank[r], x + r * (TS_ROWS / 2) * TS_IN, TS_ROWS / 2, 2, &sums[r]);
  ck_assert_ut_ok(ut_plan_run(one.p));
  float loss1, grad1[TS_IN], loss[2], grad[2][TS_IN];
  ratio_read(&one, &loss1, grad1);
  for (int pass = 0; pass < 4; pass++) {
    for (int r = 0; r < 2; r++) ck_assert_ut_ok(ut_plan_run(rank[r].p));
    ck_assert_int_eq(sums[0].calls, 4); /* A and B forward, then their gradients */
    for (int r = 0; r < 2; r++) replay_end_pass(&sums[r]);
  }
  for (int r = 0; r < 2; r++) ratio_read(&rank[r], &loss[r], grad[r]);
  /* Each rank's loss holds its own rows' mean y beside the team's ratio: their mean is the batch's. */
  float mean_loss = 0.5f * (loss[0] + loss[1]);
  ck_assert_msg(fabsf(mean_loss - loss1) <= 1e-6f * fabsf(loss1) + 1e-7f, "the ranks' mean loss %g, one process's %g",
                (double)mean_loss, (double)loss1);
  for (int k = 0; k < TS_IN; k++) {
    float g = 0.5f * (grad[0][k] + grad[1][k]);
    ck_assert_msg(fabsf(g - grad1[k]) <= 1e-5f * fabsf(grad1[k]) + 1e-6f, "dL/dw[%d]: the ranks' mean %g, one "
                  "process's %g", k, (double)g, (double)grad1[k]);
  }
  for (int r = 0; r < 3; r++) ratio_free(r < 2 ? &rank[r] : &one);
}
END_TEST

/* Without a callback the sum is its input (one process: no node, no launch). */
START_TEST(test_team_sum_alone_is_identity) {
  ut_runtime *rt = test_runtime();
  ut_store *st = ut_store_new(rt, 7);
  ut_graph *g = ut_graph_new(rt, st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(2));
  ck_assert_ptr_eq(ut_team_sum(g, x, NULL, NULL), x);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

typedef struct {
  int calls;
} failing_sum;

static ut_status fail_sum(void *user, float *values, int n) {
  (void)values;
  (void)n;
  ((failing_sum *)user)->calls++;
  return ut_fail(UT_ERR_IO, "rank 1 is gone");
}

START_TEST(test_team_sum_failure_fails_the_run) {
  ut_runtime *rt = test_runtime();
  ut_store *st = ut_store_new(rt, 7);
  ut_graph *g = ut_graph_new(rt, st);
  failing_sum f = { 0 };
  ut_tensor *y = ut_name(ut_team_sum(g, ut_input(g, "x", UT_F32, UT_SHAPE(2)), fail_sum, &f), "ratio.den");
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &y, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  ck_assert_int_eq(ut_plan_run(p), UT_ERR_IO);
  ck_assert_int_eq(f.calls, 1);
  ck_assert_msg(strstr(ut_last_error(), "rank 1 is gone") && strstr(ut_last_error(), "'ratio.den'"), "%s", ut_last_error());
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

static Suite *reduce_suite(void) {
  Suite *s = suite_create("reduce");
  TCase *tc = tcase_create("seam");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_share_draws_its_rows);
  tcase_add_test(tc, test_share_refuses_bad_values);
  tcase_add_test(tc, test_share_blocks_refuse_uneven_sources);
  tcase_add_test(tc, test_reducer_changes_the_update);
  tcase_add_test(tc, test_reducer_failure_fails_the_run);
  tcase_add_test(tc, test_reducer_after_optimiser_refused);
  tcase_add_test(tc, test_team_sum_gives_the_whole_batch_gradient);
  tcase_add_test(tc, test_team_sum_alone_is_identity);
  tcase_add_test(tc, test_team_sum_failure_fails_the_run);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(reduce_suite()); }
