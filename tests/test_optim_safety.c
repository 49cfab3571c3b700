/* Optimisers and random streams that would silently share state are refused: a parameter listed
 * twice, two optimisers under one name (one step counter) over different parameters or of
 * different kinds, one parameter under two optimisers of a graph, two random nodes drawing from
 * one stream in a graph. What must keep working: rebuilding the same optimiser over a fresh graph
 * (the step count goes on), two differently named optimisers over disjoint parameters (a GAN's D
 * and G), one stream name shared by two graphs. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "test_support.h"

#define B 4

static const float xs[B * 3] = { 0.5f, -1, 2, 1, 0.25f, -0.5f, -2, 1.5f, 0, 0.75f, -0.25f, 1 };

/* loss = mean((b(a(x)))^2) with layers "a" (3 -> 2) and "b" (2 -> 1): four parameters. */
typedef struct {
  ut_graph *g;
  ut_tensor *x, *loss;
} net;

static net net_build(ut_store *st) {
  net n = { .g = ut_graph_new(test_runtime(), st) };
  ck_assert_ut_ptr(n.g);
  n.x = ut_input(n.g, "x", UT_F32, UT_SHAPE(B, 3));
  n.loss = ut_mean_all(n.g, ut_square(n.g, ut_linear(n.g, ut_tanh(n.g, ut_linear(n.g, n.x, "a", 2)), "b", 1)));
  ck_assert_ut_ptr(n.loss);
  ck_assert_ut_ok(ut_backward(n.g, n.loss, ut_params(n.g, "")));
  return n;
}

static void assert_refused(ut_status s, ut_graph *g, const char *const *parts) {
  ck_assert_msg(s == UT_ERR_INVALID_ARGUMENT, "status %s, want invalid argument: %s", ut_status_name(s), ut_last_error());
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_INVALID_ARGUMENT);
  for (int i = 0; parts[i]; i++)
    ck_assert_msg(strstr(ut_last_error(), parts[i]) != NULL, "'%s' is not in: %s", parts[i], ut_last_error());
}

#define REFUSED(s, g, ...) assert_refused((s), (g), (const char *const[]){ __VA_ARGS__, NULL })

START_TEST(test_listed_twice) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  net n = net_build(st);
  ut_tensor_list a = ut_params(n.g, "a.w");
  REFUSED(ut_adam(n.g, ut_params_join(n.g, ut_params(n.g, "a."), a), &(ut_adam_cfg){ .lr = 0.1f, .name = "gen" }), n.g,
          "adam 'gen': parameter 'a.w' is listed twice");
  ut_graph_free(n.g);
  n = net_build(st);
  REFUSED(ut_sgd(n.g, ut_params_join(n.g, ut_params(n.g, "b."), ut_params(n.g, "b.b")), &(ut_sgd_cfg){ .lr = 0.1f }), n.g,
          "sgd 'sgd': parameter 'b.b' is listed twice");
  ut_graph_free(n.g);
  /* nothing was registered: the same names work with proper lists */
  n = net_build(st);
  ck_assert_ut_ok(ut_adam(n.g, ut_params(n.g, "a."), &(ut_adam_cfg){ .lr = 0.1f, .name = "gen" }));
  ck_assert_ut_ok(ut_sgd(n.g, ut_params(n.g, "b."), &(ut_sgd_cfg){ .lr = 0.1f }));
  ut_graph_free(n.g);
  ut_store_free(st);
}
END_TEST

START_TEST(test_one_name_two_parameter_sets) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  net n = net_build(st);
  ck_assert_ut_ok(ut_adam(n.g, ut_params(n.g, "a."), &(ut_adam_cfg){ .lr = 0.1f }));
  ut_graph_free(n.g);
  /* another graph over the store: "adam" again, over other parameters */
  n = net_build(st);
  REFUSED(ut_adam(n.g, ut_params(n.g, "b."), &(ut_adam_cfg){ .lr = 0.1f }), n.g, "adam 'adam'", "'a.b'", "cfg->name");
  ut_graph_free(n.g);
  /* a superset: the first parameter only this call lists */
  n = net_build(st);
  REFUSED(ut_adam(n.g, ut_params(n.g, ""), &(ut_adam_cfg){ .lr = 0.1f }), n.g, "adam 'adam'", "'b.b'",
          "listed here but not there", "cfg->name");
  ut_graph_free(n.g);
  /* a subset: the first parameter only the registered optimiser lists */
  n = net_build(st);
  REFUSED(ut_adam(n.g, ut_params(n.g, "a.w"), &(ut_adam_cfg){ .lr = 0.1f }), n.g, "'a.b'", "listed there but not here");
  ut_graph_free(n.g);
  /* the same name in the same graph over disjoint parameters */
  n = net_build(st);
  ck_assert_ut_ok(ut_adam(n.g, ut_params(n.g, "a."), &(ut_adam_cfg){ .lr = 0.1f }));
  REFUSED(ut_adam(n.g, ut_params(n.g, "b."), &(ut_adam_cfg){ .lr = 0.1f }), n.g, "adam 'adam'", "cfg->name");
  ut_graph_free(n.g);
  ut_store_free(st);
}
END_TEST

START_TEST(test_one_name_two_kinds) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  net n = net_build(st);
  ck_assert_ut_ok(ut_adam(n.g, ut_params(n.g, "a."), &(ut_adam_cfg){ .lr = 0.1f, .name = "opt" }));
  ut_graph_free(n.g);
  n = net_build(st);
  REFUSED(ut_sgd(n.g, ut_params(n.g, "a."), &(ut_sgd_cfg){ .lr = 0.1f, .name = "opt" }), n.g, "sgd 'opt'",
          "adam optimiser named 'opt'", "cfg->name");
  ut_graph_free(n.g);
  ut_store_free(st);
}
END_TEST

START_TEST(test_parameter_under_two_optimisers) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  net n = net_build(st);
  ck_assert_ut_ok(ut_adam(n.g, ut_params(n.g, "a."), &(ut_adam_cfg){ .lr = 0.1f, .name = "first" }));
  REFUSED(ut_sgd(n.g, ut_params(n.g, ""), &(ut_sgd_cfg){ .lr = 0.1f, .name = "second" }), n.g, "sgd 'second'",
          "parameter 'a.", "adam 'first'");
  ut_graph_free(n.g);
  /* the same optimiser twice in one graph would update its parameters twice */
  n = net_build(st);
  ck_assert_ut_ok(ut_adam(n.g, ut_params(n.g, "a."), &(ut_adam_cfg){ .lr = 0.1f, .name = "first" }));
  REFUSED(ut_adam(n.g, ut_params(n.g, "a."), &(ut_adam_cfg){ .lr = 0.1f, .name = "first" }), n.g,
          "adam 'first' is added twice", "updated twice");
  ut_graph_free(n.g);
  ut_store_free(st);
}
END_TEST

/* Runs `steps` steps of adam "opt" over every parameter in a fresh graph over st. */
static void train(ut_store *st, int steps) {
  net n = net_build(st);
  ck_assert_ut_ok(ut_adam(n.g, ut_params(n.g, ""), &(ut_adam_cfg){ .lr = 0.05f, .name = "opt" }));
  ut_plan *p = ut_plan_compile(n.g, &(ut_plan_cfg){ .outputs = &n.loss, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_upload(p, n.x, xs));
  for (int i = 0; i < steps; i++) ck_assert_ut_ok(ut_plan_run(p));
  ut_plan_free(p);
  ut_graph_free(n.g);
}

static void read_param(ut_store *st, const char *name, float *out) {
  ut_store_tensor *t = ut_store_find(st, name);
  ck_assert_ptr_nonnull(t);
  ck_assert_ut_ok(ut_store_tensor_read(st, t, out));
}

static void assert_same_params(ut_store *a, ut_store *b) {
  static const char *const names[] = { "a.w", "a.b", "b.w", "b.b", "a.w.opt.m", "b.w.opt.v" };
  for (int i = 0; i < 6; i++) {
    float va[6], vb[6];
    read_param(a, names[i], va);
    read_param(b, names[i], vb);
    int64_t n = ut_shape_numel(ut_store_tensor_shape(ut_store_find(a, names[i])));
    ck_assert_msg(memcmp(va, vb, (size_t)n * sizeof *va) == 0, "%s differs", names[i]);
  }
}

/* Five steps in one plan equal three steps, a rebuilt graph and plan, and two more steps. */
START_TEST(test_rebuild_continues) {
  ut_store *one = ut_store_new(test_runtime(), 7), *two = ut_store_new(test_runtime(), 7);
  train(one, 5);
  train(two, 3);
  ck_assert_int_eq(*ut_store_counter(two, "opt.step"), 3);
  train(two, 2);
  ck_assert_int_eq(*ut_store_counter(two, "opt.step"), 5);
  assert_same_params(one, two);

  /* a checkpoint of the three-step state, loaded into a fresh store and into the used one */
  ut_store *three = ut_store_new(test_runtime(), 7);
  train(three, 3);
  char path[256];
  snprintf(path, sizeof path, "%s", test_tmp_path("optim_safety.safetensors"));
  ck_assert_ut_ok(ut_store_save(three, path));
  ut_store *fresh = ut_store_new(test_runtime(), 99);
  net n = net_build(fresh);
  ck_assert_ut_ok(ut_adam(n.g, ut_params(n.g, ""), &(ut_adam_cfg){ .lr = 0.05f, .name = "opt" }));
  ut_graph_free(n.g);
  ck_assert_ut_ok(ut_store_load(fresh, path));
  ck_assert_int_eq(*ut_store_counter(fresh, "opt.step"), 3);
  train(fresh, 2);
  assert_same_params(one, fresh);
  ck_assert_ut_ok(ut_store_load(three, path));
  train(three, 2);
  ck_assert_int_eq(*ut_store_counter(three, "opt.step"), 5);
  assert_same_params(one, three);
  unlink(path);
  ut_store_free(fresh);
  ut_store_free(three);
  ut_store_free(one);
  ut_store_free(two);
}
END_TEST

/* The GAN case: "adam_d" over "a." and "adam_g" over "b.", in two graphs and in one. */
START_TEST(test_disjoint_optimisers) {
  ut_store *st = ut_store_new(test_runtime(), 3);
  for (int round = 0; round < 2; round++) {
    net d = net_build(st), g = net_build(st);
    ck_assert_ut_ok(ut_adam(d.g, ut_params(d.g, "a."), &(ut_adam_cfg){ .lr = 0.01f, .name = "adam_d" }));
    ck_assert_ut_ok(ut_adam(g.g, ut_params(g.g, "b."), &(ut_adam_cfg){ .lr = 0.01f, .name = "adam_g" }));
    ut_plan *pd = ut_plan_compile(d.g, &(ut_plan_cfg){ .outputs = &d.loss, .n_outputs = 1 });
    ut_plan *pg = ut_plan_compile(g.g, &(ut_plan_cfg){ .outputs = &g.loss, .n_outputs = 1 });
    ck_assert_ut_ptr(pd);
    ck_assert_ut_ptr(pg);
    ck_assert_ut_ok(ut_upload(pd, d.x, xs));
    ck_assert_ut_ok(ut_upload(pg, g.x, xs));
    ck_assert_ut_ok(ut_plan_run(pd));
    ck_assert_ut_ok(ut_plan_run(pg));
    ut_plan_free(pd);
    ut_plan_free(pg);
    ut_graph_free(d.g);
    ut_graph_free(g.g);
  }
  ck_assert_int_eq(*ut_store_counter(st, "adam_d.step"), 2);
  ck_assert_int_eq(*ut_store_counter(st, "adam_g.step"), 2);
  net both = net_build(st);
  ck_assert_ut_ok(ut_adam(both.g, ut_params(both.g, "a."), &(ut_adam_cfg){ .lr = 0.01f, .name = "adam_d" }));
  ck_assert_ut_ok(ut_adam(both.g, ut_params(both.g, "b."), &(ut_adam_cfg){ .lr = 0.01f, .name = "adam_g" }));
  ut_plan *p = ut_plan_compile(both.g, &(ut_plan_cfg){ .outputs = &both.loss, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  ut_plan_free(p);
  ut_graph_free(both.g);
  ut_store_free(st);
}
END_TEST

START_TEST(test_random_name_once_per_graph) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ck_assert_ut_ptr(ut_random_normal(g, "z", UT_SHAPE(2, 3)));
  ck_assert_ptr_null(ut_random_normal(g, "z", UT_SHAPE(2, 3)));
  REFUSED(ut_graph_status(g), g, "'rng.z'", "own name");
  ut_graph_free(g);

  /* through the layers built on the random sources, and across uniform and normal */
  g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(2, 8));
  ck_assert_ut_ptr(ut_dropout(g, x, "layer", 0.5f));
  ck_assert_ptr_null(ut_gaussian_noise(g, x, "layer", 0.1f));
  REFUSED(ut_graph_status(g), g, "'rng.layer'", "random_uniform 'layer'", "own name");
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  x = ut_input(g, "x", UT_F32, UT_SHAPE(2, 8));
  ck_assert_ut_ptr(ut_reparameterize(g, x, x, "eps"));
  ck_assert_ptr_null(ut_reparameterize(g, x, x, "eps"));
  REFUSED(ut_graph_status(g), g, "'rng.eps'");
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  ck_assert_ut_ptr(ut_random_rotation_theta(g, "aug", 2, 10));
  ck_assert_ptr_null(ut_random_resized_crop_theta(g, "aug", 2, 0.5f, 1, 1));
  REFUSED(ut_graph_status(g), g, "'rng.aug'");
  ut_graph_free(g);

  /* distinct names in one graph, and one name in two graphs over the store, are fine */
  ut_graph *g1 = ut_graph_new(test_runtime(), st), *g2 = ut_graph_new(test_runtime(), st);
  x = ut_input(g1, "x", UT_F32, UT_SHAPE(2, 8));
  ck_assert_ut_ptr(ut_dropout(g1, x, "drop1", 0.5f));
  ck_assert_ut_ptr(ut_dropout(g1, x, "drop2", 0.5f));
  ck_assert_ut_ptr(ut_gaussian_noise(g1, x, "noise", 1));
  ck_assert_ut_ptr(ut_random_normal(g2, "noise", UT_SHAPE(2, 8)));
  ck_assert_ut_ok(ut_graph_status(g1));
  ck_assert_ut_ok(ut_graph_status(g2));
  ut_graph_free(g1);
  ut_graph_free(g2);
  ut_store_free(st);
}
END_TEST

static Suite *optim_safety_suite(void) {
  Suite *s = suite_create("optim_safety");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_listed_twice);
  tcase_add_test(tc, test_one_name_two_parameter_sets);
  tcase_add_test(tc, test_one_name_two_kinds);
  tcase_add_test(tc, test_parameter_under_two_optimisers);
  tcase_add_test(tc, test_rebuild_continues);
  tcase_add_test(tc, test_disjoint_optimisers);
  tcase_add_test(tc, test_random_name_once_per_graph);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(optim_safety_suite()); }
