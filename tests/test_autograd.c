/* Reverse mode as a whole: gradients of a tensor used several times add up; parameters outside
 * the chosen group get none and stay untouched by an optimizer over another group; backward
 * runs again over a graph that already holds gradient nodes (second order). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

typedef struct {
  ut_store *st;
  ut_graph *g;
} fixture;

static fixture fixture_new(uint64_t seed) {
  fixture f;
  f.st = ut_store_new(test_runtime(), seed);
  ck_assert_ut_ptr(f.st);
  f.g = ut_graph_new(test_runtime(), f.st);
  ck_assert_ut_ptr(f.g);
  return f;
}

static void fixture_free(fixture *f) {
  ut_graph_free(f->g);
  ut_store_free(f->st);
}

static ut_tensor *param_with(fixture *f, const char *name, ut_shape shape, const float *values) {
  ut_tensor *p = ut_param(f->g, name, shape, (ut_init){ UT_INIT_ZERO, 0, 0 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_store_tensor_write(f->st, ut_store_find(f->st, name), values));
  return p;
}

static ut_tensor_list list1(ut_tensor **p) { return (ut_tensor_list){ 1, p }; }

/* Values k/8 in [-2, 2]: every gradient below is then exact in f32, whatever the order in
 * which the engine adds the contributions. */
#define N_X 17
static void dyadic(float *x, int n, int offset) {
  for (int i = 0; i < n; i++) x[i] = (float)((i * 5 + offset) % 33 - 16) / 8.0f;
}

START_TEST(test_used_twice) {
  fixture f = fixture_new(1);
  float x1[N_X], x2[N_X], x3[N_X];
  dyadic(x1, N_X, 0);
  dyadic(x2, N_X, 3);
  dyadic(x3, N_X, 7);
  const ut_shape s = UT_SHAPE(N_X);
  ut_tensor *p1 = param_with(&f, "x1", s, x1), *p2 = param_with(&f, "x2", s, x2), *p3 = param_with(&f, "x3", s, x3);
  ut_graph *g = f.g;
  /* y1 = x*x + x: x feeds both inputs of mul and the add.       dy1/dx = 2x + 1
   * y2 = (x*x + 3x) - (-x): four uses through four ops.            dy2/dx = 2x + 4
   * y3 = h*h + h with h = x*x: an intermediate used three times.   dy3/dx = (2h + 1) 2x */
  ut_tensor *y1 = ut_add(g, ut_mul(g, p1, p1), p1);
  ut_tensor *y2 = ut_sub(g, ut_add(g, ut_mul(g, p2, p2), ut_scale(g, p2, 3)), ut_neg(g, p2));
  ut_tensor *h = ut_mul(g, p3, p3);
  ut_tensor *y3 = ut_add(g, ut_mul(g, h, h), h);
  ut_tensor *loss = ut_add(g, ut_add(g, ut_sum_all(g, y1), ut_sum_all(g, y2)), ut_sum_all(g, y3));
  ck_assert_ut_ptr(loss);
  ck_assert_ut_ok(ut_backward(g, loss, ut_params(g, "x")));
  ut_tensor *outs[3] = { ut_grad(g, p1), ut_grad(g, p2), ut_grad(g, p3) };
  for (int i = 0; i < 3; i++) ck_assert_msg(outs[i] != NULL, "no gradient for x%d", i + 1);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = outs, .n_outputs = 3 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_plan_run(p));
  float g1[N_X], g2[N_X], g3[N_X];
  ck_assert_ut_ok(ut_read(p, outs[0], g1));
  ck_assert_ut_ok(ut_read(p, outs[1], g2));
  ck_assert_ut_ok(ut_read(p, outs[2], g3));
  for (int i = 0; i < N_X; i++) {
    float hh = x3[i] * x3[i];
    ck_assert_msg(g1[i] == 2 * x1[i] + 1, "d(x*x + x)/dx at x = %g: %.9g, expected %g", x1[i], g1[i], 2 * x1[i] + 1);
    ck_assert_msg(g2[i] == 2 * x2[i] + 4, "d(x*x + 3x + x)/dx at x = %g: %.9g, expected %g", x2[i], g2[i], 2 * x2[i] + 4);
    ck_assert_msg(g3[i] == (2 * hh + 1) * 2 * x3[i], "d(h*h + h)/dx at x = %g: %.9g, expected %g", x3[i], g3[i],
                  (2 * hh + 1) * 2 * x3[i]);
  }
  ut_plan_free(p);
  fixture_free(&f);
}
END_TEST

/* The loss must have one element. */
START_TEST(test_backward_needs_scalar_loss) {
  fixture f = fixture_new(2);
  float v[3] = { 1, 2, 3 };
  ut_tensor *x = param_with(&f, "x", UT_SHAPE(3), v);
  ut_tensor *y = ut_square(f.g, x);
  ck_assert_int_ne(ut_backward(f.g, y, list1(&x)), UT_OK);
  ck_assert_msg(strlen(ut_last_error()) > 0, "no message for a non-scalar loss");
  fixture_free(&f);
}
END_TEST

/* Group "a." trains, group "b." is frozen: no gradient, no moments, values bit-identical. */
START_TEST(test_frozen_group) {
  fixture f = fixture_new(3);
  float av[6] = { 0.5f, -1, 2, 0.625f, -0.75f, 1.5f }, bv[6] = { 1, -2, 0.5f, 3, -0.125f, 0.75f };
  ut_tensor *a = param_with(&f, "a.w", UT_SHAPE(6), av);
  ut_tensor *b = param_with(&f, "b.w", UT_SHAPE(6), bv);
  ut_tensor *loss = ut_sum_all(f.g, ut_square(f.g, ut_mul(f.g, a, b)));
  ck_assert_ut_ok(ut_backward(f.g, loss, ut_params(f.g, "a.")));
  ck_assert_ptr_nonnull(ut_grad(f.g, a));
  ck_assert_ptr_null(ut_grad(f.g, b));
  ut_tensor *ga = ut_grad(f.g, a);
  ck_assert_ut_ok(ut_adam(f.g, ut_params(f.g, "a."), &(ut_adam_cfg){ .lr = 0.1f }));
  ck_assert_ptr_nonnull(ut_store_find(f.st, "a.w.adam.m"));
  ck_assert_ptr_nonnull(ut_store_find(f.st, "a.w.adam.v"));
  ck_assert_ptr_null(ut_store_find(f.st, "b.w.adam.m"));
  ut_plan *p = ut_plan_compile(f.g, &(ut_plan_cfg){ .outputs = &ga, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  float gav[6], a_after[6], b_after[6];
  for (int step = 0; step < 3; step++) ck_assert_ut_ok(ut_plan_run(p));
  /* The gradient read after the third run is that of the values before the third update; it
   * only has to be of the right sign and non-zero, the update values are in test_plan. */
  ck_assert_ut_ok(ut_read(p, ga, gav));
  ck_assert_ut_ok(ut_store_tensor_read(f.st, ut_store_find(f.st, "a.w"), a_after));
  ck_assert_ut_ok(ut_store_tensor_read(f.st, ut_store_find(f.st, "b.w"), b_after));
  ck_assert_msg(memcmp(b_after, bv, sizeof bv) == 0, "the frozen group changed");
  for (int i = 0; i < 6; i++) {
    ck_assert_msg(a_after[i] != av[i], "a.w[%d] did not move", i);
    /* d/da (a b)^2 = 2 a b^2 has the sign of a; Adam moves a towards 0 by about lr per step. */
    ck_assert_msg(fabsf(a_after[i]) < fabsf(av[i]) && fabsf(fabsf(av[i]) - fabsf(a_after[i]) - 0.3f) < 0.05f,
                  "a.w[%d]: %g -> %g, expected about 0.3 closer to 0", i, av[i], a_after[i]);
    ck_assert_msg(gav[i] != 0 && (gav[i] > 0) == (a_after[i] > 0), "gradient of a.w[%d] = %g", i, gav[i]);
  }
  ck_assert_int_eq(*ut_store_counter(f.st, "adam.step"), 3);
  ut_plan_free(p);
  fixture_free(&f);
}
END_TEST

/* d/dx sum((d sum(x^3)/dx)^2) = d/dx sum(9 x^4) = 36 x^3, with the first gradient kept. */
START_TEST(test_second_order_cube) {
  fixture f = fixture_new(4);
  float xv[9] = { -1.5f, -1, -0.5f, -0.25f, 0.125f, 0.3f, 0.75f, 1.1f, 1.4f };
  ut_tensor *x = param_with(&f, "x", UT_SHAPE(9), xv);
  ut_graph *g = f.g;
  ut_tensor *y = ut_sum_all(g, ut_mul(g, ut_mul(g, x, x), x));
  ck_assert_ut_ok(ut_backward(g, y, list1(&x)));
  ut_tensor *gx = ut_grad(g, x);
  ck_assert_ut_ptr(gx);
  ut_tensor *z = ut_sum_all(g, ut_square(g, gx));
  ck_assert_ut_ok(ut_backward(g, z, list1(&x)));
  ut_tensor *gxx = ut_grad(g, x);
  ck_assert_ut_ptr(gxx);
  ck_assert_msg(gxx != gx, "the second backward did not give a new gradient");
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = (ut_tensor *[]){ gx, gxx, z }, .n_outputs = 3 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_plan_run(p));
  float g1[9], g2[9], zv;
  ck_assert_ut_ok(ut_read(p, gx, g1));
  ck_assert_ut_ok(ut_read(p, gxx, g2));
  ck_assert_ut_ok(ut_read(p, z, &zv));
  double zref = 0;
  for (int i = 0; i < 9; i++) {
    double x1 = xv[i], e1 = 3 * x1 * x1, e2 = 36 * x1 * x1 * x1;
    zref += e1 * e1;
    ck_assert_msg(fabs(g1[i] - e1) <= 1e-6 * fabs(e1) + 1e-7, "d sum(x^3)/dx at %g: %.9g, expected %.9g", x1, g1[i], e1);
    ck_assert_msg(fabs(g2[i] - e2) <= 1e-5 * fabs(e2) + 1e-6, "second order at %g: %.9g, expected %.9g", x1, g2[i], e2);
  }
  ck_assert_msg(fabs(zv - zref) <= 1e-5 * zref, "z = %.9g, expected %.9g", zv, zref);
  ut_plan_free(p);
  fixture_free(&f);
}
END_TEST

/* Second order through each elementwise op: the builder returns f'(x) from its own backward,
 * and the checker differentiates that again (f'') and compares with differences of f'. */
typedef enum { R_ANY, R_AWAY, R_POS } so_range;
typedef struct {
  const char *name;
  ut_tensor *(*f)(ut_graph *g, ut_tensor *x);
  double (*d1)(double x);
  double (*d2)(double x);
  so_range range;
  float hi;
} so_op;

static ut_tensor *f_exp(ut_graph *g, ut_tensor *x) { return ut_exp(g, x); }
static ut_tensor *f_log(ut_graph *g, ut_tensor *x) { return ut_log(g, x); }
static ut_tensor *f_sqrt(ut_graph *g, ut_tensor *x) { return ut_sqrt(g, x); }
static ut_tensor *f_square(ut_graph *g, ut_tensor *x) { return ut_square(g, x); }
static ut_tensor *f_tanh(ut_graph *g, ut_tensor *x) { return ut_tanh(g, x); }
static ut_tensor *f_sigmoid(ut_graph *g, ut_tensor *x) { return ut_sigmoid(g, x); }
static ut_tensor *f_abs(ut_graph *g, ut_tensor *x) { return ut_mul(g, ut_abs(g, x), x); }       /* x|x| */
static ut_tensor *f_relu(ut_graph *g, ut_tensor *x) { return ut_square(g, ut_relu(g, x)); }     /* relu^2 */
static ut_tensor *f_leaky(ut_graph *g, ut_tensor *x) { return ut_mul(g, ut_leaky_relu(g, x, 0.1f), x); }
static ut_tensor *f_cube(ut_graph *g, ut_tensor *x) { return ut_mul(g, ut_mul(g, x, x), x); }
static ut_tensor *f_recip(ut_graph *g, ut_tensor *x) { return ut_div(g, ut_scalar(g, 1.0f), x); }
static ut_tensor *f_divsq(ut_graph *g, ut_tensor *x) { return ut_div(g, ut_exp(g, x), ut_shift(g, ut_square(g, x), 1)); }

static double sg(double x) { return 1 / (1 + exp(-x)); }
static double e1(double x) { return exp(x); }
static double l1(double x) { return 1 / x; }
static double l2(double x) { return -1 / (x * x); }
static double s1(double x) { return 0.5 / sqrt(x); }
static double s2(double x) { return -0.25 / (x * sqrt(x)); }
static double q1(double x) { return 2 * x; }
static double q2(double x) { (void)x; return 2; }
static double t1(double x) { return 1 - tanh(x) * tanh(x); }
static double t2(double x) { return -2 * tanh(x) * (1 - tanh(x) * tanh(x)); }
static double g1(double x) { return sg(x) * (1 - sg(x)); }
static double g2(double x) { return sg(x) * (1 - sg(x)) * (1 - 2 * sg(x)); }
static double a1(double x) { return 2 * fabs(x); }
static double a2(double x) { return x > 0 ? 2 : -2; }
static double r1(double x) { return x > 0 ? 2 * x : 0; }
static double r2(double x) { return x > 0 ? 2 : 0; }
static double k1(double x) { return x > 0 ? 2 * x : 0.2 * x; }
static double k2(double x) { return x > 0 ? 2 : 0.2; }
static double c1(double x) { return 3 * x * x; }
static double c2(double x) { return 6 * x; }
static double i1(double x) { return -1 / (x * x); }
static double i2(double x) { return 2 / (x * x * x); }
/* f = e^x / (1 + x^2): f' = f (1 - 2x/(1+x^2)) ... written as f (x - 1)^2 / (1 + x^2). */
static double dq0(double x) { return exp(x) / (1 + x * x); }
static double dq1(double x) { return dq0(x) * (x - 1) * (x - 1) / (1 + x * x); }
static double dq2(double x) {
  double u = 1 + x * x, p = (x - 1) * (x - 1);
  /* d/dx [p / u] = (2(x - 1) u - p 2x) / u^2 */
  return dq1(x) * p / u + dq0(x) * (2 * (x - 1) * u - p * 2 * x) / (u * u);
}

static const so_op so_ops[] = {
  { "exp", f_exp, e1, e1, R_ANY, 2 },
  { "log", f_log, l1, l2, R_POS, 3 },
  { "sqrt", f_sqrt, s1, s2, R_POS, 3 },
  { "square", f_square, q1, q2, R_ANY, 2 },
  { "tanh", f_tanh, t1, t2, R_ANY, 2 },
  { "sigmoid", f_sigmoid, g1, g2, R_ANY, 3 },
  { "x*abs(x)", f_abs, a1, a2, R_AWAY, 2 },
  { "relu(x)^2", f_relu, r1, r2, R_AWAY, 2 },
  { "x*leaky_relu(x, 0.1)", f_leaky, k1, k2, R_AWAY, 2 },
  { "x*x*x", f_cube, c1, c2, R_ANY, 1.5f },
  { "1/x", f_recip, i1, i2, R_AWAY, 2 },
  { "exp(x)/(x^2 + 1)", f_divsq, dq1, dq2, R_ANY, 2 },
};
#define N_SO ((int)(sizeof so_ops / sizeof so_ops[0]))

static ut_tensor *build_first_derivative(ut_graph *g, ut_tensor **in, void *ctx) {
  const so_op *op = ctx;
  ut_tensor *y = ut_sum_all(g, op->f(g, in[0]));
  if (!y || ut_backward(g, y, list1(&in[0])) != UT_OK) return NULL;
  return ut_grad(g, in[0]);
}

START_TEST(test_second_order_ops) {
  const so_op *op = &so_ops[_i];
  enum { N = 23 };
  float x[N], w[N], d1[N], d2[N];
  uint64_t rng = 40 + (uint64_t)_i;
  switch (op->range) {
  case R_ANY: test_fill_uniform(&rng, x, N, -op->hi, op->hi); break;
  case R_POS: test_fill_uniform(&rng, x, N, 0.3f, op->hi); break;
  case R_AWAY:
    test_fill_uniform(&rng, x, N, 0.5f, op->hi);
    for (int i = 0; i < N; i += 2) x[i] = -x[i];
    break;
  }
  test_fill_uniform(&rng, w, N, -1, 1);
  for (int i = 0; i < N; i++) {
    d1[i] = (float)op->d1(x[i]);
    d2[i] = (float)(op->d2(x[i]) * w[i]);
  }
  const ut_shape s = UT_SHAPE(N);
  gc_assert_gradcheck(&(gc_case){ .label = op->name, .n_inputs = 1, .shapes = &s, .values = (const float *[]){ x },
                                  .build = build_first_derivative, .ctx = (void *)op, .weights = w, .expect = d1,
                                  .fwd_rel_tol = 1e-4, .fwd_abs_tol = 1e-6, .expect_grad = (const float *[]){ d2 },
                                  .grad_rel_tol = 1e-3, .grad_abs_tol = 1e-5, .h = 1e-2, .rel_tol = 5e-3, .abs_tol = 5e-4,
                                  .seed = 50 + (uint64_t)_i });
}
END_TEST

static Suite *autograd_suite(void) {
  Suite *s = suite_create("autograd");
  TCase *tc = tcase_create("autograd");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_used_twice);
  tcase_add_test(tc, test_backward_needs_scalar_loss);
  tcase_add_test(tc, test_frozen_group);
  tcase_add_test(tc, test_second_order_cube);
  tcase_add_loop_test(tc, test_second_order_ops, 0, N_SO);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(autograd_suite()); }
