/* The R1 gradient penalty (OverLORD's discriminator step, MODELS.md 2b) on a small
 * discriminator: two strided 3x3 convolutions with leaky ReLU and a linear head.
 *
 *   R1 = (gamma / 2) mean_b sum_{c,h,w} (d sum_b D(x) / d x)^2
 *
 * The image gradient comes from ut_backward over the real-image input; a second ut_backward
 * differentiates R1 (a function of that gradient) with respect to the discriminator's weights,
 * which runs the backward builders of the first backward's own nodes (double backward). The
 * weight gradients are checked against central differences of R1, computed on the host in
 * double from the image gradient a forward plan reads after each weight perturbation.
 *
 * Kinks: D is piecewise linear in x, so its image gradient is piecewise constant in the leaky
 * ReLUs' slopes; a perturbation that moves a pre-activation across zero makes a jump that
 * central differences cannot see through. Such elements are detected (the sign pattern of
 * every pre-activation at +h and -h must equal the unperturbed one) and skipped, and the test
 * requires that most elements are checked. Inside one pattern R1 is a polynomial of the
 * weights, so the differences are accurate. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

enum { B = 2, C = 3, H = 8, W = 8, NX = B * C * H * W };
static const float gamma_r1 = 1.0f; /* OverLORD: 0.5 * mean_b sum (grad)^2 */
static const float slope = 0.2f;

typedef struct {
  ut_tensor *x, *d, *pre1, *pre2, *gx, *r1;
} disc;

/* D(x) [B, 1] and, from it, the image gradient and R1. */
static disc build_disc(ut_graph *g) {
  disc m = { 0 };
  m.x = ut_input(g, "real", UT_F32, UT_SHAPE(B, C, H, W));
  m.pre1 = ut_conv2d_layer(g, m.x, "d.c1", 4, 3, UT_CONV(2, 1), 1);                          /* [B, 4, 4, 4] */
  m.pre2 = ut_conv2d_layer(g, ut_leaky_relu(g, m.pre1, slope), "d.c2", 5, 3, UT_CONV(2, 1), 1); /* [B, 5, 2, 2] */
  ut_tensor *h = ut_reshape(g, ut_leaky_relu(g, m.pre2, slope), UT_SHAPE(B, 5 * 2 * 2));
  m.d = ut_linear(g, h, "d.fc", 1);
  ut_tensor *sum = ut_sum_all(g, m.d);
  ck_assert_ut_ptr(sum);
  ck_assert_ut_ok(ut_backward(g, sum, (ut_tensor_list){ 1, &m.x }));
  m.gx = ut_grad(g, m.x);
  ck_assert_ut_ptr(m.gx);
  m.r1 = ut_scale(g, ut_sum_all(g, ut_square(g, m.gx)), 0.5f * gamma_r1 / (float)B);
  ck_assert_ut_ptr(m.r1);
  return m;
}

static double host_r1(const float *gx) {
  double s = 0;
  for (int i = 0; i < NX; i++) s += (double)gx[i] * gx[i];
  return 0.5 * gamma_r1 * s / B;
}

/* Sign pattern of the pre-activations, read from a plan. */
enum { N_PRE = B * 4 * 4 * 4 + B * 5 * 2 * 2 };
static void read_pattern(ut_plan *p, const disc *m, unsigned char *pat) {
  float a[B * 4 * 4 * 4], b[B * 5 * 2 * 2];
  ck_assert_ut_ok(ut_read(p, m->pre1, a));
  ck_assert_ut_ok(ut_read(p, m->pre2, b));
  for (int i = 0; i < B * 64; i++) pat[i] = a[i] > 0;
  for (int i = 0; i < B * 20; i++) pat[B * 64 + i] = b[i] > 0;
}

/* R1 at the store's current weights, and the pre-activation signs. */
static double run_r1(ut_plan *p, const disc *m, unsigned char *pat) {
  float gx[NX];
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, m->gx, gx));
  read_pattern(p, m, pat);
  return host_r1(gx);
}

START_TEST(test_r1_weight_gradients) {
  ut_runtime *rt = test_runtime();
  ut_store *st = ut_store_new(rt, 21);
  float *xv = gc_random_values(22, NX, -1, 1);

  /* The double-backward graph: R1 and its weight gradients. */
  ut_graph *g = ut_graph_new(rt, st);
  disc m = build_disc(g);
  ut_tensor_list params = ut_params(g, "d.");
  ck_assert_int_eq(params.n, 6);
  ck_assert_ut_ok(ut_backward(g, m.r1, params));
  ut_tensor *outs[8] = { m.r1, m.gx };
  int n_outs = 2;
  for (int k = 0; k < params.n; k++)
    if (ut_grad(g, params.t[k])) outs[n_outs++] = ut_grad(g, params.t[k]);
  ut_plan *pb = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = outs, .n_outputs = n_outs });
  ck_assert_ut_ptr(pb);
  ck_assert_ut_ok(ut_upload(pb, m.x, xv));
  ck_assert_ut_ok(ut_plan_run(pb));
  float r1_dev, gx0[NX];
  ck_assert_ut_ok(ut_read(pb, m.r1, &r1_dev));
  ck_assert_ut_ok(ut_read(pb, m.gx, gx0));
  double r1_host = host_r1(gx0);
  ck_assert_msg(r1_host > 1e-4, "R1 = %g: the test needs a non-trivial penalty", r1_host);
  ck_assert_msg(fabs(r1_dev - r1_host) <= 1e-5 * r1_host, "device R1 %.9g, host %.9g", r1_dev, r1_host);

  /* A second graph over the same store for the perturbed forward runs. */
  ut_graph *gf = ut_graph_new(rt, st);
  disc mf = build_disc(gf);
  ut_plan *pf = ut_plan_compile(gf, &(ut_plan_cfg){ .outputs = (ut_tensor *[]){ mf.gx, mf.pre1, mf.pre2 }, .n_outputs = 3 });
  ck_assert_ut_ptr(pf);
  ck_assert_ut_ok(ut_upload(pf, mf.x, xv));
  unsigned char pat0[N_PRE], patp[N_PRE], patm[N_PRE];
  double r1_check = run_r1(pf, &mf, pat0);
  ck_assert_msg(fabs(r1_check - r1_host) <= 1e-6 * r1_host, "forward plan R1 %.9g, backward plan %.9g", r1_check, r1_host);

  /* R1 is small here (about 1e-3), so the absolute tolerance scales with it; the differences'
   * own noise (f32 image gradients) is about 1e-6 of R1 / h. */
  const double h = 2e-3, rel = 1e-3, abs_tol = 1e-4 * r1_host;
  int checked = 0, skipped = 0, nonzero = 0;
  for (int k = 0; k < params.n; k++) {
    const char *name = ut_tensor_name(params.t[k]);
    ut_store_tensor *t = ut_store_find(st, name);
    int64_t n = gc_numel(ut_store_tensor_shape(t));
    float *v = malloc((size_t)n * sizeof *v), *ga = calloc((size_t)n, sizeof *ga);
    ck_assert_ut_ok(ut_store_tensor_read(st, t, v));
    ut_tensor *gt = ut_grad(g, params.t[k]);
    if (gt) ck_assert_ut_ok(ut_read(pb, gt, ga)); /* NULL: R1 does not depend on it (the head's bias) */
    int samples = n < 24 ? (int)n : 24;
    for (int s = 0; s < samples; s++) {
      int64_t e = ((int64_t)s * 7919 + k) % n; /* distinct: 7919 is a prime larger than n */
      float v0 = v[e];
      v[e] = (float)(v0 + h);
      ck_assert_ut_ok(ut_store_tensor_write(st, t, v));
      double rp = run_r1(pf, &mf, patp);
      v[e] = (float)(v0 - h);
      ck_assert_ut_ok(ut_store_tensor_write(st, t, v));
      double rm = run_r1(pf, &mf, patm);
      v[e] = v0;
      ck_assert_ut_ok(ut_store_tensor_write(st, t, v));
      if (memcmp(patp, pat0, N_PRE) || memcmp(patm, pat0, N_PRE)) {
        skipped++;
        continue;
      }
      double num = (rp - rm) / (2 * h), ana = ga[e];
      ck_assert_msg(fabs(ana - num) <= abs_tol + rel * fabs(num),
                    "dR1/d%s[%lld]: double backward %.7g, central difference %.7g (R1 = %.6g)", name, (long long)e, ana, num,
                    r1_host);
      checked++;
      nonzero += fabs(num) > 10 * abs_tol;
    }
    free(v);
    free(ga);
  }
  /* The check must have teeth: most elements compared, and many with a clearly non-zero slope. */
  ck_assert_msg(checked >= 3 * (checked + skipped) / 4, "only %d of %d elements kept their activation pattern", checked,
                checked + skipped);
  ck_assert_msg(nonzero >= 20, "only %d of %d checked gradients are clearly non-zero", nonzero, checked);
  ut_plan_free(pf);
  ut_plan_free(pb);
  ut_graph_free(gf);
  ut_graph_free(g);
  ut_store_free(st);
  free(xv);
}
END_TEST

/* A whole D step as OverLORD's: BCE on real and fake logits plus R1, one backward over the
 * weights, Adam. It compiles, runs several steps, stays finite, and lowers R1 when R1 alone is
 * the loss (a gradient pointing the wrong way would raise it). */
START_TEST(test_r1_train_step) {
  ut_runtime *rt = test_runtime();
  ut_store *st = ut_store_new(rt, 31);
  ut_graph *g = ut_graph_new(rt, st);
  disc m = build_disc(g);
  ck_assert_ut_ok(ut_backward(g, m.r1, ut_params(g, "d.")));
  ck_assert_ut_ok(ut_adam(g, ut_params(g, "d."), &(ut_adam_cfg){ .lr = 1e-3f, .beta1 = 0.5f }));
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &m.r1, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  float *xv = gc_random_values(32, NX, -1, 1), first = 0, last = 0;
  ck_assert_ut_ok(ut_upload(p, m.x, xv));
  for (int step = 0; step < 20; step++) {
    ck_assert_ut_ok(ut_plan_run(p));
    ck_assert_ut_ok(ut_read(p, m.r1, &last));
    ck_assert_msg(isfinite(last), "step %d: R1 = %g", step, last);
    if (step == 0) first = last;
  }
  ck_assert_msg(last < 0.9f * first, "R1 went from %g to %g in 20 Adam steps on R1 alone", first, last);
  ut_plan_free(p);
  ut_graph_free(g);

  /* The full discriminator loss builds and runs: BCE(D(fake), 0) + BCE(D(real), 1) + R1. */
  g = ut_graph_new(rt, st);
  m = build_disc(g);
  ut_tensor *fake = ut_input(g, "fake", UT_F32, UT_SHAPE(B, C, H, W));
  ut_tensor *h = ut_leaky_relu(g, ut_conv2d_layer(g, fake, "d.c1", 4, 3, UT_CONV(2, 1), 1), slope);
  h = ut_leaky_relu(g, ut_conv2d_layer(g, h, "d.c2", 5, 3, UT_CONV(2, 1), 1), slope);
  ut_tensor *d_fake = ut_linear(g, ut_reshape(g, h, UT_SHAPE(B, 20)), "d.fc", 1);
  ut_tensor *loss = ut_add(g, ut_add(g, ut_bce_with_logits_const(g, d_fake, 0), ut_bce_with_logits_const(g, m.d, 1)), m.r1);
  ck_assert_ut_ptr(loss);
  ck_assert_ut_ok(ut_backward(g, loss, ut_params(g, "d.")));
  ck_assert_ut_ok(ut_adam(g, ut_params(g, "d."), &(ut_adam_cfg){ .lr = 1e-3f, .beta1 = 0.5f }));
  p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &loss, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  float *fv = gc_random_values(33, NX, -1, 1), lv;
  ck_assert_ut_ok(ut_upload(p, m.x, xv));
  ck_assert_ut_ok(ut_upload(p, fake, fv));
  for (int step = 0; step < 3; step++) {
    ck_assert_ut_ok(ut_plan_run(p));
    ck_assert_ut_ok(ut_read(p, loss, &lv));
    ck_assert_msg(isfinite(lv) && lv > 0, "step %d: D loss %g", step, lv);
  }
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
  free(xv);
  free(fv);
}
END_TEST

static Suite *r1_suite(void) {
  Suite *s = suite_create("r1");
  TCase *tc = tcase_create("r1");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_r1_weight_gradients);
  tcase_add_test(tc, test_r1_train_step);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(r1_suite()); }
