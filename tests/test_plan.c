/* Plans: memory reuse in the arena (and that it changes no result), outputs that stay valid
 * after a run, the profile table; and the optimizers' update nodes against PyTorch's formulas
 * computed on the host, including a learning rate changed between runs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

/* ---------------------------------------------------------------------------------------------
 * A chain of 20 elementwise ops over [64, 64], with a host reference in f32.
 */
#define CH_R 64
#define CH_C 64
#define CH_N (CH_R * CH_C)
#define CH_LEN 20

typedef enum { C_SCALE, C_SHIFT, C_TANH, C_MULX, C_ADDX, C_SQUARE, C_SIGMOID, C_SUBX, C_ABS, C_SQRT, C_LOG, C_NEG, C_EXP,
               C_LEAKY, C_RELU, C_DIVX } chain_op;
typedef struct {
  chain_op op;
  float a;
} chain_step;

/* Each step keeps values in a range where the next is defined: sqrt and log see positive
 * inputs, exp a bounded one, and the division a denominator >= 1. */
static const chain_step chain[CH_LEN] = {
  { C_SCALE, 0.5f }, { C_SHIFT, 0.25f }, { C_TANH, 0 },   { C_MULX, 0 },     { C_ADDX, 0 },
  { C_SQUARE, 0 },   { C_SIGMOID, 0 },   { C_SUBX, 0 },   { C_ABS, 0 },      { C_SHIFT, 0.1f },
  { C_SQRT, 0 },     { C_LOG, 0 },       { C_NEG, 0 },    { C_TANH, 0 },     { C_EXP, 0 },
  { C_LEAKY, 0.2f }, { C_MULX, 0 },      { C_RELU, 0 },   { C_DIVX, 0 },     { C_SCALE, 3.0f },
};

static ut_tensor *chain_node(ut_graph *g, const chain_step *s, ut_tensor *t, ut_tensor *x, ut_tensor *xpos) {
  switch (s->op) {
  case C_SCALE: return ut_scale(g, t, s->a);
  case C_SHIFT: return ut_shift(g, t, s->a);
  case C_TANH: return ut_tanh(g, t);
  case C_MULX: return ut_mul(g, t, x);
  case C_ADDX: return ut_add(g, t, x);
  case C_SQUARE: return ut_square(g, t);
  case C_SIGMOID: return ut_sigmoid(g, t);
  case C_SUBX: return ut_sub(g, t, x);
  case C_ABS: return ut_abs(g, t);
  case C_SQRT: return ut_sqrt(g, t);
  case C_LOG: return ut_log(g, t);
  case C_NEG: return ut_neg(g, t);
  case C_EXP: return ut_exp(g, t);
  case C_LEAKY: return ut_leaky_relu(g, t, s->a);
  case C_RELU: return ut_relu(g, t);
  case C_DIVX: return ut_div(g, t, xpos);
  }
  return NULL;
}

static float chain_host(const chain_step *s, float t, float x) {
  switch (s->op) {
  case C_SCALE: return t * s->a;
  case C_SHIFT: return t + s->a;
  case C_TANH: return tanhf(t);
  case C_MULX: return t * x;
  case C_ADDX: return t + x;
  case C_SQUARE: return t * t;
  case C_SIGMOID: return 1.0f / (1.0f + expf(-t));
  case C_SUBX: return t - x;
  case C_ABS: return fabsf(t);
  case C_SQRT: return sqrtf(t);
  case C_LOG: return logf(t);
  case C_NEG: return -t;
  case C_EXP: return expf(t);
  case C_LEAKY: return t > 0 ? t : t * s->a;
  case C_RELU: return t > 0 ? t : 0;
  case C_DIVX: return t / (x * x + 1.0f);
  }
  return 0;
}

typedef struct {
  ut_store *st;
  ut_graph *g;
  ut_tensor *x;
  ut_tensor *t[CH_LEN];
  float xv[CH_N];
  float ref[CH_LEN][CH_N];
} chain_graph;

static chain_graph *chain_build(void) {
  chain_graph *c = calloc(1, sizeof *c);
  c->st = ut_store_new(test_runtime(), 1);
  c->g = ut_graph_new(test_runtime(), c->st);
  ck_assert_ut_ptr(c->g);
  c->x = ut_input(c->g, "x", UT_F32, UT_SHAPE(CH_R, CH_C));
  ut_tensor *xpos = ut_shift(c->g, ut_square(c->g, c->x), 1.0f); /* x^2 + 1, outside the chain */
  ut_tensor *t = c->x;
  for (int i = 0; i < CH_LEN; i++) {
    char name[32];
    snprintf(name, sizeof name, "chain.%02d", i + 1);
    t = c->t[i] = ut_name(chain_node(c->g, &chain[i], t, c->x, xpos), name);
    ck_assert_ut_ptr(t);
  }
  uint64_t rng = 5;
  test_fill_uniform(&rng, c->xv, CH_N, -2, 2);
  for (int e = 0; e < CH_N; e++) {
    float v = c->xv[e];
    for (int i = 0; i < CH_LEN; i++) v = c->ref[i][e] = chain_host(&chain[i], v, c->xv[e]);
  }
  return c;
}

static void chain_free(chain_graph *c) {
  ut_graph_free(c->g);
  ut_store_free(c->st);
  free(c);
}

/* With only the chain's end requested, a few [64, 64] buffers serve all 20 steps. */
START_TEST(test_arena_reuse) {
  chain_graph *c = chain_build();
  ut_tensor *last = c->t[CH_LEN - 1];
  ut_plan *p = ut_plan_compile(c->g, &(ut_plan_cfg){ .outputs = &last, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  ut_plan_stats s = ut_plan_get_stats(p);
  const size_t one = CH_N * sizeof(float);
  ck_assert_msg(s.intermediate_bytes >= (size_t)CH_LEN * one, "intermediate_bytes %zu < 20 tensors of %zu",
                s.intermediate_bytes, one);
  ck_assert_msg(2 * s.arena_peak_bytes < s.intermediate_bytes, "arena %zu bytes is not under half of %zu",
                s.arena_peak_bytes, s.intermediate_bytes);
  ck_assert_msg(s.nodes >= CH_LEN && s.launches >= 1, "stats: %d nodes, %d launches", s.nodes, s.launches);
  ck_assert_ut_ok(ut_upload(p, c->x, c->xv));
  ck_assert_ut_ok(ut_plan_run(p));
  float *out = malloc(sizeof c->ref[0]);
  ck_assert_ut_ok(ut_read(p, last, out));
  int64_t at = 0;
  double r = test_compare(out, c->ref[CH_LEN - 1], CH_N, 1e-5, 1e-4, &at);
  ck_assert_msg(r <= 1, "chain end[%lld] = %.9g, host %.9g", (long long)at, out[at], c->ref[CH_LEN - 1][at]);
  /* An intermediate that is no output has had its memory reused: reading it must fail rather
   * than return another tensor's values. */
  ck_assert_int_ne(ut_read(p, c->t[CH_LEN / 2], out), UT_OK);
  ck_assert_msg(strstr(ut_last_error(), "chain.11") != NULL, "the message should name the node: %s", ut_last_error());
  free(out);
  ut_plan_free(p);
  chain_free(c);
}
END_TEST

/* Outputs in the middle of the chain stay valid after the run, and memory reuse changes no bit
 * of any of them. Running twice gives the same bits too. */
START_TEST(test_outputs_and_no_reuse) {
  chain_graph *c = chain_build();
  enum { K = 5 };
  const int which[K] = { 0, 4, 9, 14, 19 };
  ut_tensor *outs[K];
  for (int i = 0; i < K; i++) outs[i] = c->t[which[i]];
  ut_plan *p = ut_plan_compile(c->g, &(ut_plan_cfg){ .outputs = outs, .n_outputs = K });
  ut_plan *q = ut_plan_compile(c->g, &(ut_plan_cfg){ .outputs = outs, .n_outputs = K, .no_memory_reuse = 1 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ptr(q);
  ut_plan_stats sp = ut_plan_get_stats(p), sq = ut_plan_get_stats(q);
  ck_assert_msg(sq.arena_peak_bytes >= sq.intermediate_bytes, "no reuse: arena %zu < intermediates %zu",
                sq.arena_peak_bytes, sq.intermediate_bytes);
  ck_assert_msg(sp.arena_peak_bytes < sq.arena_peak_bytes, "reuse saved nothing: %zu vs %zu", sp.arena_peak_bytes,
                sq.arena_peak_bytes);
  ck_assert_ut_ok(ut_upload(p, c->x, c->xv));
  ck_assert_ut_ok(ut_upload(q, c->x, c->xv));
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_plan_run(q));
  float *a = malloc(sizeof c->ref[0]), *b = malloc(sizeof c->ref[0]);
  for (int i = K - 1; i >= 0; i--) { /* last first: reading must not disturb the others */
    ck_assert_ut_ok(ut_read(p, outs[i], a));
    ck_assert_ut_ok(ut_read(q, outs[i], b));
    int64_t at = 0;
    double r = test_compare(a, c->ref[which[i]], CH_N, 1e-5, 1e-4, &at);
    ck_assert_msg(r <= 1, "output chain.%02d[%lld] = %.9g, host %.9g", which[i] + 1, (long long)at, a[at],
                  c->ref[which[i]][at]);
    ck_assert_msg(memcmp(a, b, sizeof c->ref[0]) == 0, "chain.%02d differs with no_memory_reuse", which[i] + 1);
  }
  /* A second run (uploading the same input again) gives the same bits. */
  ck_assert_ut_ok(ut_read(p, outs[K - 1], b));
  ck_assert_ut_ok(ut_upload(p, c->x, c->xv));
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, outs[K - 1], a));
  ck_assert_msg(memcmp(a, b, sizeof c->ref[0]) == 0, "a second run changed the result");
  free(a);
  free(b);
  ut_plan_free(p);
  ut_plan_free(q);
  chain_free(c);
}
END_TEST

/* Elementwise ops take the memory of an input that dies at them: a chain of ten unary ops
 * after the input runs in one buffer beside the input's (without in-place reuse the chain
 * would alternate between two), and gives the same bits as a plan without any reuse. */
START_TEST(test_inplace_chain) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(CH_R, CH_C));
  ut_tensor *t = ut_scale(g, x, 0.5f);
  for (int i = 0; i < 9; i++) t = i % 3 == 0 ? ut_tanh(g, t) : i % 3 == 1 ? ut_add(g, t, x) : ut_leaky_relu(g, t, 0.2f);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &t, .n_outputs = 1 });
  ut_plan *q = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &t, .n_outputs = 1, .no_memory_reuse = 1 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ptr(q);
  const size_t one = CH_N * sizeof(float);
  ck_assert_msg(ut_plan_get_stats(p).arena_peak_bytes == 2 * one, "arena %zu bytes, expected the input and one buffer (%zu)",
                ut_plan_get_stats(p).arena_peak_bytes, 2 * one);
  float *xv = gc_random_values(3, CH_N, -2, 2), *a = malloc(one), *b = malloc(one);
  ck_assert_ut_ok(ut_upload(p, x, xv));
  ck_assert_ut_ok(ut_upload(q, x, xv));
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_plan_run(q));
  ck_assert_ut_ok(ut_read(p, t, a));
  ck_assert_ut_ok(ut_read(q, t, b));
  ck_assert_msg(memcmp(a, b, one) == 0, "in-place reuse changed the result");
  free(xv), free(a), free(b);
  ut_plan_free(p);
  ut_plan_free(q);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* A plan beyond the 32-bit arena names its largest tensors and a batch that would about fit;
 * a single tensor beyond 32-bit element indices is refused by name. Neither allocates. */
START_TEST(test_too_large_explains) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "huge_images", UT_F32, UT_SHAPE(2, 1 << 29)); /* 4 GiB */
  ut_tensor *y = ut_scale(g, x, 2.0f);                                      /* and 4 more */
  ck_assert_ptr_null(ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &y, .n_outputs = 1 }));
  const char *msg = ut_last_error();
  ck_assert_msg(strstr(msg, "'huge_images'") && strstr(msg, "smaller batch") && strstr(msg, "about 1 instead of 2"),
                "message: %s", msg);
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  x = ut_input(g, "wide", UT_F32, UT_SHAPE(3, 1 << 30));
  ck_assert_ptr_null(ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &x, .n_outputs = 1 }));
  msg = ut_last_error();
  ck_assert_msg(strstr(msg, "'wide'") && strstr(msg, "3221225472") && strstr(msg, "2147483647"), "message: %s", msg);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* ut_read reads inputs too, so an input's memory must survive the run; and a second run
 * without a new upload then computes the same thing again. */
START_TEST(test_input_survives_run) {
  chain_graph *c = chain_build();
  ut_tensor *last = c->t[CH_LEN - 1];
  ut_plan *p = ut_plan_compile(c->g, &(ut_plan_cfg){ .outputs = &last, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_upload(p, c->x, c->xv));
  ck_assert_ut_ok(ut_plan_run(p));
  float *a = malloc(sizeof c->ref[0]), *b = malloc(sizeof c->ref[0]);
  ck_assert_ut_ok(ut_read(p, last, b));
  ck_assert_ut_ok(ut_read(p, c->x, a));
  int64_t at = 0;
  for (at = 0; at < CH_N && a[at] == c->xv[at]; at++) continue;
  ck_assert_msg(at == CH_N, "input x read back after a run: x[%lld] = %.9g, uploaded %.9g (its memory was reused?)",
                (long long)at, at < CH_N ? a[at] : 0, at < CH_N ? c->xv[at] : 0);
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, last, a));
  ck_assert_msg(memcmp(a, b, sizeof c->ref[0]) == 0, "a second run without a new upload changed the result");
  free(a);
  free(b);
  ut_plan_free(p);
  chain_free(c);
}
END_TEST

/* A training step (matmul, broadcasting, reductions, backward, SGD) gives the same bits with
 * and without memory reuse: backward nodes keep forward tensors alive much longer. The two
 * plans live in two stores so that their updates do not mix. */
static void train_step_run(int no_reuse, float *loss, float *gw, float *w_after, float *h_out) {
  ut_store *st = ut_store_new(test_runtime(), 77);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(16, 24));
  ut_tensor *y = ut_input(g, "y", UT_F32, UT_SHAPE(16, 8));
  ut_tensor *h = ut_tanh(g, ut_linear(g, x, "net.fc1", 12));
  ut_tensor *o = ut_linear(g, ut_sigmoid(g, h), "net.fc2", 8);
  ut_tensor *centered = ut_sub(g, o, ut_mean(g, o, 0x1));
  ut_tensor *l = ut_add(g, ut_mse_loss(g, centered, y), ut_scale(g, ut_mean_all(g, ut_square(g, h)), 0.1f));
  ck_assert_ut_ptr(l);
  ck_assert_ut_ok(ut_backward(g, l, ut_params(g, "net.")));
  ut_tensor *w1 = ut_params(g, "net.fc1.w").t[0];
  ut_tensor *gw1 = ut_grad(g, w1);
  ck_assert_ut_ok(ut_sgd(g, ut_params(g, "net."), &(ut_sgd_cfg){ .lr = 0.1f, .momentum = 0.9f }));
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = (ut_tensor *[]){ l, gw1, h }, .n_outputs = 3,
                                                  .no_memory_reuse = no_reuse });
  ck_assert_ut_ptr(p);
  float xv[16 * 24], yv[16 * 8];
  uint64_t rng = 9;
  test_fill_uniform(&rng, xv, 16 * 24, -1, 1);
  test_fill_uniform(&rng, yv, 16 * 8, -1, 1);
  for (int i = 0; i < 2; i++) {
    ck_assert_ut_ok(ut_upload(p, x, xv));
    ck_assert_ut_ok(ut_upload(p, y, yv));
    ck_assert_ut_ok(ut_plan_run(p));
  }
  ck_assert_ut_ok(ut_read(p, l, loss));
  ck_assert_ut_ok(ut_read(p, gw1, gw));
  ck_assert_ut_ok(ut_read(p, h, h_out));
  ck_assert_ut_ok(ut_read(p, w1, w_after));
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
}

START_TEST(test_training_step_no_reuse) {
  float l1, l2, g1[12 * 24], g2[12 * 24], w1[12 * 24], w2[12 * 24], h1[16 * 12], h2[16 * 12];
  train_step_run(0, &l1, g1, w1, h1);
  train_step_run(1, &l2, g2, w2, h2);
  ck_assert_msg(isfinite(l1) && l1 > 0, "loss %g", l1);
  ck_assert_msg(memcmp(&l1, &l2, sizeof l1) == 0, "loss %.9g with reuse, %.9g without", l1, l2);
  ck_assert_msg(memcmp(g1, g2, sizeof g1) == 0, "the gradient differs with no_memory_reuse");
  ck_assert_msg(memcmp(h1, h2, sizeof h1) == 0, "the hidden layer differs with no_memory_reuse");
  ck_assert_msg(memcmp(w1, w2, sizeof w1) == 0, "the updated weight differs with no_memory_reuse");
}
END_TEST

START_TEST(test_profile_table) {
  chain_graph *c = chain_build();
  ut_tensor *last = c->t[CH_LEN - 1];
  ut_plan *p = ut_plan_compile(c->g, &(ut_plan_cfg){ .outputs = &last, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_upload(p, c->x, c->xv));
  for (int i = 0; i < 2; i++) ck_assert_ut_ok(ut_plan_run(p));
  char *table = NULL;
  ck_assert_ut_ok(ut_plan_profile_table(p, &table));
  ck_assert_ptr_nonnull(table);
  for (int i = 0; i < CH_LEN; i++) {
    char name[32];
    snprintf(name, sizeof name, "chain.%02d", i + 1);
    ck_assert_msg(strstr(table, name) != NULL, "the profile table does not list %s:\n%s", name, table);
    ck_assert_msg(strstr(table, ut_tensor_op(c->t[i])) != NULL, "the profile table lacks op %s", ut_tensor_op(c->t[i]));
  }
  ck_assert_msg(strstr(table, "[64, 64]") != NULL, "no shapes in the profile table:\n%s", table);
  free(table);

  /* The same record as data: one entry per launch, each naming a chain node by its index. */
  ut_profile_entry *e = NULL;
  int n = 0;
  ck_assert_ut_ok(ut_plan_profile(p, &e, &n));
  ck_assert_int_eq(n, ut_plan_get_stats(p).launches);
  for (int i = 0; i < n; i++) {
    ck_assert_msg(e[i].ms >= 0, "launch %d has a negative time", i);
    ck_assert_int_lt(e[i].node_index, ut_graph_node_count(c->g));
    ck_assert_msg(e[i].node[0] && e[i].op[0] && e[i].kernel[0], "launch %d has an empty name", i);
  }
  ck_assert_str_eq(e[n - 1].node, ut_tensor_name(last));
  ck_assert_int_eq(ut_shape_equal(e[n - 1].shape, ut_tensor_shape(last)), 1);
  free(e);
  ut_plan_profile_reset(p);
  ck_assert_int_eq(ut_plan_profile(p, &e, &n), UT_ERR_STATE);
  ut_plan_free(p);
  chain_free(c);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Optimizers. loss = sum(c * p^2), so dL/dp = 2 c p, on a 5-element parameter; the host
 * follows torch.optim.Adam / SGD in double.
 */
#define NP 5
static const float p_init[NP] = { 1.0f, -0.5f, 2.0f, 0.3f, -1.5f };
static const float p_coef[NP] = { 0.5f, -1.0f, 0.25f, 2.0f, -0.125f };

typedef struct {
  ut_store *st;
  ut_graph *g;
  ut_tensor *p;
  ut_plan *plan;
} opt_fixture;

static opt_fixture opt_setup(void) {
  opt_fixture f;
  f.st = ut_store_new(test_runtime(), 3);
  f.g = ut_graph_new(test_runtime(), f.st);
  f.p = ut_param(f.g, "opt.p", UT_SHAPE(NP), (ut_init){ UT_INIT_ZERO, 0, 0 });
  ck_assert_ut_ptr(f.p);
  ck_assert_ut_ok(ut_store_tensor_write(f.st, ut_store_find(f.st, "opt.p"), p_init));
  ut_tensor *loss = ut_sum_all(f.g, ut_mul(f.g, ut_square(f.g, f.p), ut_constant(f.g, UT_SHAPE(NP), p_coef)));
  ck_assert_ut_ptr(loss);
  ck_assert_ut_ok(ut_backward(f.g, loss, ut_params(f.g, "opt.")));
  f.plan = NULL;
  return f;
}

static void opt_compile(opt_fixture *f) {
  ut_tensor *gp = ut_grad(f->g, f->p);
  f->plan = ut_plan_compile(f->g, &(ut_plan_cfg){ .outputs = &gp, .n_outputs = 1 });
  ck_assert_ut_ptr(f->plan);
}

static void opt_free(opt_fixture *f) {
  ut_plan_free(f->plan);
  ut_graph_free(f->g);
  ut_store_free(f->st);
}

static void read_store(ut_store *st, const char *name, float *dst) {
  ut_store_tensor *t = ut_store_find(st, name);
  ck_assert_msg(t != NULL, "no store tensor %s", name);
  ck_assert_ut_ok(ut_store_tensor_read(st, t, dst));
}

static void expect_close(const char *what, int step, const float *got, const double *want, int n, double rel, double abs_tol) {
  for (int i = 0; i < n; i++)
    ck_assert_msg(fabs(got[i] - want[i]) <= abs_tol + rel * fabs(want[i]), "%s[%d] after step %d: %.9g, expected %.9g", what,
                  i, step, got[i], want[i]);
}

typedef struct {
  double lr, b1, b2, eps, wd;
} adam_host;

static void adam_host_step(const adam_host *h, int t, double *p, double *m, double *v) {
  for (int i = 0; i < NP; i++) {
    double g = 2 * p_coef[i] * p[i] + h->wd * p[i];
    m[i] = h->b1 * m[i] + (1 - h->b1) * g;
    v[i] = h->b2 * v[i] + (1 - h->b2) * g * g;
    double bc1 = 1 - pow(h->b1, t), bc2 = 1 - pow(h->b2, t);
    p[i] -= h->lr / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + h->eps);
  }
}

/* Adam with every setting given; eps is large enough (0.01 against gradients near 1) that its
 * place in the formula shows. */
START_TEST(test_adam_explicit) {
  opt_fixture f = opt_setup();
  ck_assert_ut_ok(ut_adam(f.g, ut_params(f.g, "opt."), &(ut_adam_cfg){ .lr = 0.05f, .beta1 = 0.8f, .beta2 = 0.95f,
                                                                      .eps = 0.01f, .weight_decay = 0.1f,
                                                                      .name = "myadam" }));
  opt_compile(&f);
  adam_host h = { 0.05f, 0.8f, 0.95f, 0.01f, 0.1f };
  double p[NP], m[NP] = { 0 }, v[NP] = { 0 };
  for (int i = 0; i < NP; i++) p[i] = p_init[i];
  float got[NP];
  for (int t = 1; t <= 3; t++) {
    ck_assert_ut_ok(ut_plan_run(f.plan));
    adam_host_step(&h, t, p, m, v);
    read_store(f.st, "opt.p", got);
    expect_close("opt.p", t, got, p, NP, 2e-6, 1e-7);
  }
  read_store(f.st, "opt.p.myadam.m", got);
  expect_close("opt.p.myadam.m", 3, got, m, NP, 1e-5, 1e-7);
  read_store(f.st, "opt.p.myadam.v", got);
  expect_close("opt.p.myadam.v", 3, got, v, NP, 1e-5, 1e-9);
  ck_assert_int_eq(*ut_store_counter(f.st, "myadam.step"), 3);
  opt_free(&f);
}
END_TEST

/* Zeros in the config mean beta1 0.9, beta2 0.999, eps 1e-8. */
START_TEST(test_adam_defaults) {
  opt_fixture f = opt_setup();
  ck_assert_ut_ok(ut_adam(f.g, ut_params(f.g, "opt."), &(ut_adam_cfg){ .lr = 0.01f }));
  opt_compile(&f);
  adam_host h = { 0.01f, 0.9f, 0.999f, 1e-8f, 0 }; /* the engine's f32 constants */
  double p[NP], m[NP] = { 0 }, v[NP] = { 0 };
  for (int i = 0; i < NP; i++) p[i] = p_init[i];
  float got[NP];
  for (int t = 1; t <= 3; t++) {
    ck_assert_ut_ok(ut_plan_run(f.plan));
    adam_host_step(&h, t, p, m, v);
    read_store(f.st, "opt.p", got);
    expect_close("opt.p", t, got, p, NP, 2e-6, 1e-7);
  }
  read_store(f.st, "opt.p.adam.v", got);
  expect_close("opt.p.adam.v", 3, got, v, NP, 1e-5, 1e-9);
  ck_assert_int_eq(*ut_store_counter(f.st, "adam.step"), 3);
  opt_free(&f);
}
END_TEST

static void sgd_host_step(int t, double lr, double mom, double wd, double *p, double *buf) {
  for (int i = 0; i < NP; i++) {
    double g = 2 * p_coef[i] * p[i] + wd * p[i];
    buf[i] = (t == 1 || mom == 0) ? g : mom * buf[i] + g;
    p[i] -= lr * buf[i];
  }
}

/* loop index: 0 momentum 0.9; 1 momentum 0.5 with weight decay 0.1; 2 plain SGD */
START_TEST(test_sgd) {
  static const double cfgs[3][2] = { { 0.9, 0 }, { 0.5, 0.1 }, { 0, 0 } };
  const double mom = cfgs[_i][0], wd = cfgs[_i][1], lr = 0.1f;
  opt_fixture f = opt_setup();
  ck_assert_ut_ok(ut_sgd(f.g, ut_params(f.g, "opt."),
                         &(ut_sgd_cfg){ .lr = (float)lr, .momentum = (float)mom, .weight_decay = (float)wd }));
  opt_compile(&f);
  double p[NP], buf[NP] = { 0 };
  for (int i = 0; i < NP; i++) p[i] = p_init[i];
  float got[NP];
  for (int t = 1; t <= 3; t++) {
    ck_assert_ut_ok(ut_plan_run(f.plan));
    sgd_host_step(t, lr, mom, wd, p, buf);
    read_store(f.st, "opt.p", got);
    char what[64];
    snprintf(what, sizeof what, "sgd(momentum %g, wd %g) opt.p", mom, wd);
    expect_close(what, t, got, p, NP, 2e-6, 1e-7);
  }
  opt_free(&f);
}
END_TEST

/* A learning rate changed between runs applies from the next run on: SGD and Adam. */
START_TEST(test_hparam_lr) {
  const double lrs[3] = { 0.1, 0.02, 0.3 };
  {
    opt_fixture f = opt_setup();
    ut_hparam *lr = ut_hparam_new(f.g, "lr", (float)lrs[0]);
    ck_assert_ut_ptr(lr);
    ck_assert_ut_ok(ut_sgd(f.g, ut_params(f.g, "opt."), &(ut_sgd_cfg){ .lr_param = lr }));
    opt_compile(&f);
    double p[NP], buf[NP] = { 0 };
    for (int i = 0; i < NP; i++) p[i] = p_init[i];
    float got[NP];
    for (int t = 1; t <= 3; t++) {
      ut_hparam_set(lr, (float)lrs[t - 1]);
      ck_assert(ut_hparam_get(lr) == (float)lrs[t - 1]);
      ck_assert_ut_ok(ut_plan_run(f.plan));
      sgd_host_step(t, (float)lrs[t - 1], 0, 0, p, buf);
      read_store(f.st, "opt.p", got);
      expect_close("sgd with a changing lr: opt.p", t, got, p, NP, 2e-6, 1e-7);
    }
    opt_free(&f);
  }
  {
    opt_fixture f = opt_setup();
    ut_hparam *lr = ut_hparam_new(f.g, "lr", (float)lrs[0]);
    ck_assert_ut_ok(ut_adam(f.g, ut_params(f.g, "opt."), &(ut_adam_cfg){ .lr = 123.0f, .lr_param = lr }));
    opt_compile(&f);
    double p[NP], m[NP] = { 0 }, v[NP] = { 0 };
    for (int i = 0; i < NP; i++) p[i] = p_init[i];
    float got[NP];
    for (int t = 1; t <= 3; t++) {
      ut_hparam_set(lr, (float)lrs[t - 1]);
      ck_assert_ut_ok(ut_plan_run(f.plan));
      adam_host h = { (float)lrs[t - 1], 0.9f, 0.999f, 1e-8f, 0 };
      adam_host_step(&h, t, p, m, v);
      read_store(f.st, "opt.p", got);
      expect_close("adam with a changing lr: opt.p", t, got, p, NP, 2e-6, 1e-7);
    }
    opt_free(&f);
  }
}
END_TEST

static Suite *plan_suite(void) {
  Suite *s = suite_create("plan");
  TCase *tc = tcase_create("memory");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_arena_reuse);
  tcase_add_test(tc, test_outputs_and_no_reuse);
  tcase_add_test(tc, test_input_survives_run);
  tcase_add_test(tc, test_inplace_chain);
  tcase_add_test(tc, test_too_large_explains);
  tcase_add_test(tc, test_training_step_no_reuse);
  tcase_add_test(tc, test_profile_table);
  suite_add_tcase(s, tc);
  tc = tcase_create("optim");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_adam_explicit);
  tcase_add_test(tc, test_adam_defaults);
  tcase_add_loop_test(tc, test_sgd, 0, 3);
  tcase_add_test(tc, test_hparam_lr);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(plan_suite()); }
