/* Two plans over one store, as GAN training runs them. A generator maps 2-D noise to 2-D
 * points with one linear layer ("g."); a discriminator is a small MLP with a sigmoid ("d."),
 * trained with least-squares losses. The D plan builds G too but differentiates and updates
 * only "d."; the G plan builds G then D on top and updates only "g.", its gradient flowing
 * through the frozen D. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

#define B 64
static const float target_mean[2] = { 2.0f, -1.0f };
#define TARGET_SD 0.5f

static uint64_t next_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void fill_normal(uint64_t *s, float *x, int n, float mean0, float mean1, float sd) {
  for (int i = 0; i < n; i++) {
    double u1 = ((double)(next_u64(s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(next_u64(s) >> 11) / 9007199254740992.0;
    double z = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
    x[i] = (float)((i % 2 ? mean1 : mean0) + sd * z);
  }
}

static ut_tensor *generator(ut_graph *g, ut_tensor *z) { return ut_linear(g, z, "g.fc", 2); }

static ut_tensor *discriminator(ut_graph *g, ut_tensor *x) {
  ut_tensor *h = ut_leaky_relu(g, ut_linear(g, x, "d.fc1", 16), 0.2f);
  return ut_sigmoid(g, ut_linear(g, h, "d.fc2", 1));
}

typedef struct {
  ut_store *st;
  ut_graph *gd, *gg;
  ut_plan *pd, *pg;
  ut_tensor *d_real, *d_z, *d_loss;
  ut_tensor *g_z, *g_fake, *g_loss, *g_grad_w;
  uint64_t rng;
} gan;

static void gan_build(gan *m) {
  static float ones[B], zeros[B];
  for (int i = 0; i < B; i++) ones[i] = 1, zeros[i] = 0;
  m->st = ut_store_new(test_runtime(), 2024);
  ck_assert_ut_ptr(m->st);
  m->rng = 11;

  /* D step: loss_d = mse(D(real), 1) + mse(D(G(z)), 0) over "d." only. */
  ut_graph *g = m->gd = ut_graph_new(test_runtime(), m->st);
  m->d_real = ut_input(g, "real", UT_F32, UT_SHAPE(B, 2));
  m->d_z = ut_input(g, "z", UT_F32, UT_SHAPE(B, 2));
  ut_tensor *fake = generator(g, m->d_z);
  m->d_loss = ut_add(g, ut_mse_loss(g, discriminator(g, m->d_real), ut_constant(g, UT_SHAPE(B, 1), ones)),
                     ut_mse_loss(g, discriminator(g, fake), ut_constant(g, UT_SHAPE(B, 1), zeros)));
  ck_assert_ut_ptr(m->d_loss);
  ck_assert_int_eq(ut_params(g, "d.").n, 4);
  ck_assert_int_eq(ut_params(g, "g.").n, 2);
  ck_assert_ut_ok(ut_backward(g, m->d_loss, ut_params(g, "d.")));
  ck_assert_ptr_null(ut_grad(g, ut_params(g, "g.").t[0]));
  ck_assert_ut_ok(ut_adam(g, ut_params(g, "d."), &(ut_adam_cfg){ .lr = 0.02f, .beta1 = 0.5f, .name = "adam_d" }));
  m->pd = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &m->d_loss, .n_outputs = 1 });
  ck_assert_ut_ptr(m->pd);

  /* G step: loss_g = mse(D(G(z)), 1) over "g." only. */
  g = m->gg = ut_graph_new(test_runtime(), m->st);
  m->g_z = ut_input(g, "z", UT_F32, UT_SHAPE(B, 2));
  m->g_fake = generator(g, m->g_z);
  m->g_loss = ut_mse_loss(g, discriminator(g, m->g_fake), ut_constant(g, UT_SHAPE(B, 1), ones));
  ck_assert_ut_ptr(m->g_loss);
  ck_assert_ut_ok(ut_backward(g, m->g_loss, ut_params(g, "g.")));
  m->g_grad_w = ut_grad(g, ut_params(g, "g.fc.w").t[0]);
  ck_assert_ptr_nonnull(m->g_grad_w);
  ck_assert_ptr_null(ut_grad(g, ut_params(g, "d.").t[0]));
  ck_assert_ut_ok(ut_adam(g, ut_params(g, "g."), &(ut_adam_cfg){ .lr = 0.05f, .beta1 = 0.5f, .name = "adam_g" }));
  m->pg = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = (ut_tensor *[]){ m->g_loss, m->g_fake, m->g_grad_w },
                                             .n_outputs = 3 });
  ck_assert_ut_ptr(m->pg);
}

static void gan_free(gan *m) {
  ut_plan_free(m->pd);
  ut_plan_free(m->pg);
  ut_graph_free(m->gd);
  ut_graph_free(m->gg);
  ut_store_free(m->st);
}

static float d_step(gan *m) {
  float real[B * 2], z[B * 2], loss;
  fill_normal(&m->rng, real, B * 2, target_mean[0], target_mean[1], TARGET_SD);
  fill_normal(&m->rng, z, B * 2, 0, 0, 1);
  ck_assert_ut_ok(ut_upload(m->pd, m->d_real, real));
  ck_assert_ut_ok(ut_upload(m->pd, m->d_z, z));
  ck_assert_ut_ok(ut_plan_run(m->pd));
  ck_assert_ut_ok(ut_read(m->pd, m->d_loss, &loss));
  return loss;
}

/* Returns the loss; *mean gets the batch mean of the generated points (before the update). */
static float g_step(gan *m, float mean[2]) {
  float z[B * 2], fake[B * 2], loss;
  fill_normal(&m->rng, z, B * 2, 0, 0, 1);
  ck_assert_ut_ok(ut_upload(m->pg, m->g_z, z));
  ck_assert_ut_ok(ut_plan_run(m->pg));
  ck_assert_ut_ok(ut_read(m->pg, m->g_loss, &loss));
  ck_assert_ut_ok(ut_read(m->pg, m->g_fake, fake));
  if (mean) {
    double s0 = 0, s1 = 0;
    for (int i = 0; i < B; i++) s0 += fake[2 * i], s1 += fake[2 * i + 1];
    mean[0] = (float)(s0 / B);
    mean[1] = (float)(s1 / B);
  }
  return loss;
}

/* Copies every store tensor whose name starts with prefix (parameters, not the moments). */
typedef struct {
  int n;
  char name[8][64];
  int64_t count[8];
  float *v[8];
} snapshot;

static void snap(ut_store *st, const char *prefix, snapshot *s) {
  memset(s, 0, sizeof *s);
  for (int i = 0; i < ut_store_count(st); i++) {
    ut_store_tensor *t = ut_store_at(st, i);
    const char *name = ut_store_tensor_name(t);
    if (strncmp(name, prefix, strlen(prefix)) || strstr(name, ".adam")) continue;
    ck_assert_int_lt(s->n, 8);
    snprintf(s->name[s->n], sizeof s->name[0], "%s", name);
    s->count[s->n] = ut_shape_numel(ut_store_tensor_shape(t));
    s->v[s->n] = malloc((size_t)s->count[s->n] * sizeof(float));
    ck_assert_ut_ok(ut_store_tensor_read(st, t, s->v[s->n]));
    s->n++;
  }
}

static void snap_free(snapshot *s) {
  for (int i = 0; i < s->n; i++) free(s->v[i]);
}

/* How many tensors of a differ from b; every tensor must still exist with its size. */
static int snap_changed(const snapshot *a, const snapshot *b) {
  ck_assert_int_eq(a->n, b->n);
  int changed = 0;
  for (int i = 0; i < a->n; i++) {
    ck_assert_str_eq(a->name[i], b->name[i]);
    ck_assert_int_eq(a->count[i], b->count[i]);
    changed += memcmp(a->v[i], b->v[i], (size_t)a->count[i] * sizeof(float)) != 0;
  }
  return changed;
}

START_TEST(test_gan_step_isolation) {
  gan m;
  gan_build(&m);
  snapshot g0, d0, g1, d1, g2, d2;
  snap(m.st, "g.", &g0);
  snap(m.st, "d.", &d0);
  ck_assert_int_eq(g0.n, 2);
  ck_assert_int_eq(d0.n, 4);

  float ld = d_step(&m);
  ck_assert_msg(isfinite(ld) && ld > 0, "D loss %g", ld);
  snap(m.st, "g.", &g1);
  snap(m.st, "d.", &d1);
  ck_assert_msg(snap_changed(&g0, &g1) == 0, "a D step changed the generator");
  ck_assert_msg(snap_changed(&d0, &d1) == 4, "a D step updated %d of the 4 discriminator tensors", snap_changed(&d0, &d1));

  float lg = g_step(&m, NULL);
  ck_assert_msg(isfinite(lg) && lg > 0, "G loss %g", lg);
  snap(m.st, "g.", &g2);
  snap(m.st, "d.", &d2);
  ck_assert_msg(snap_changed(&d1, &d2) == 0, "a G step changed the discriminator");
  ck_assert_msg(snap_changed(&g1, &g2) == 2, "a G step updated %d of the 2 generator tensors", snap_changed(&g1, &g2));
  float gw[4];
  ck_assert_ut_ok(ut_read(m.pg, m.g_grad_w, gw));
  double gsum = 0;
  for (int i = 0; i < 4; i++) gsum += fabs(gw[i]);
  ck_assert_msg(gsum > 1e-6 && isfinite(gsum), "no gradient reached g.fc.w through D: |g| = %g", gsum);
  ck_assert_int_eq(*ut_store_counter(m.st, "adam_d.step"), 1);
  ck_assert_int_eq(*ut_store_counter(m.st, "adam_g.step"), 1);
  snap_free(&g0), snap_free(&d0), snap_free(&g1), snap_free(&d1), snap_free(&g2), snap_free(&d2);
  gan_free(&m);
}
END_TEST

/* Alternating steps pull the generated mean to the data's. A GAN circles around its target, so
 * the check takes the generated mean averaged over the last half of the run. */
#define GAN_STEPS 100
START_TEST(test_gan_training) {
  gan m;
  gan_build(&m);
  float mean0[2], mean[2];
  double avg[2] = { 0, 0 };
  g_step(&m, mean0); /* where the generator starts (this G step also trains it once) */
  double dist0 = hypot(mean0[0] - target_mean[0], mean0[1] - target_mean[1]);
  for (int step = 0; step < GAN_STEPS; step++) {
    float ld = d_step(&m), lg = g_step(&m, mean);
    ck_assert_msg(isfinite(ld) && isfinite(lg), "step %d: losses %g %g", step, ld, lg);
    if (step >= GAN_STEPS / 2) avg[0] += mean[0] / (GAN_STEPS / 2.0), avg[1] += mean[1] / (GAN_STEPS / 2.0);
  }
  double dist = hypot(avg[0] - target_mean[0], avg[1] - target_mean[1]);
  ck_assert_msg(dist < 0.3 * dist0,
                "generated mean (%.3f, %.3f) at the start, (%.3f, %.3f) on average over the last %d steps; target (%g, %g): "
                "distance %.3f -> %.3f",
                mean0[0], mean0[1], avg[0], avg[1], GAN_STEPS / 2, target_mean[0], target_mean[1], dist0, dist);
  ck_assert_int_eq(*ut_store_counter(m.st, "adam_d.step"), GAN_STEPS);
  ck_assert_int_eq(*ut_store_counter(m.st, "adam_g.step"), GAN_STEPS + 1);
  gan_free(&m);
}
END_TEST

static Suite *gan_suite(void) {
  Suite *s = suite_create("gan");
  TCase *tc = tcase_create("gan");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_gan_step_isolation);
  tcase_add_test(tc, test_gan_training);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(gan_suite()); }
