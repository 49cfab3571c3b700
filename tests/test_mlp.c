/* The MLP builder and the two-spirals trainer (models/mlp.h, models/spirals.h): the MLP
 * computes what a host reference computes from the same store weights, the spirals MLP
 * learns the held-out points, and a run resumed from a checkpoint repeats the uninterrupted
 * run's losses bit for bit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlp.h"
#include "spirals.h"
#include "test_support.h"

static const double pi = 3.14159265358979323846;

START_TEST(test_spirals_data) {
  enum { N = 400 };
  static float xy[2 * N], label[N], xy2[2 * N], label2[N];
  spirals_generate(7, N, 1.5f, 0.03f, xy, label);
  spirals_generate(7, N, 1.5f, 0.03f, xy2, label2);
  ck_assert_msg(memcmp(xy, xy2, sizeof xy) == 0 && memcmp(label, label2, sizeof label) == 0,
                "the same seed must give the same points");
  spirals_generate(8, N, 1.5f, 0.03f, xy2, label2);
  ck_assert_msg(memcmp(xy, xy2, sizeof xy) != 0, "another seed must give other points");
  for (int i = 0; i < N; i++) {
    ck_assert_msg(label[i] == (i % 2 ? -1.0f : 1.0f), "label %d is %g", i, (double)label[i]);
    double r = hypot(xy[2 * i], xy[2 * i + 1]);
    ck_assert_msg(r < 1.3, "point %d lies at radius %g", i, r);
  }
  /* Without noise, a point and its mirror through the origin belong to opposite spirals:
   * the second spiral is the first turned by half a turn. */
  spirals_generate(3, N, 1.5f, 0.0f, xy, label);
  for (int i = 0; i < N; i++) {
    double r = hypot(xy[2 * i], xy[2 * i + 1]);
    double angle = atan2(xy[2 * i + 1], xy[2 * i]) - (i % 2 ? pi : 0) - 2 * pi * 1.5 * r;
    double off = fabs(remainder(angle, 2 * pi));
    ck_assert_msg(off < 1e-3, "point %d is %g rad off its spiral", i, off);
  }
}
END_TEST

START_TEST(test_mlp_config) {
  mlp_cfg m = { .prefix = "m", .n_hidden = 2, .hidden = { 64, 64 }, .out_features = 1,
                .hidden_act = MLP_ACT_TANH, .output_act = MLP_ACT_TANH };
  ck_assert_int_eq(mlp_cfg_check(&m, NULL, 0), UT_OK);
  ck_assert_int_eq(mlp_parameter_count(&m, 2), (2 * 64 + 64) + (64 * 64 + 64) + (64 + 1));
  char why[128];
  mlp_cfg bad = m;
  bad.hidden[1] = 0;
  ck_assert_int_eq(mlp_cfg_check(&bad, why, sizeof why), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(why, "hidden layer 2") != NULL, "the reason names the layer: %s", why);
  bad = m;
  bad.prefix = "";
  ck_assert_int_eq(mlp_cfg_check(&bad, why, sizeof why), UT_ERR_INVALID_ARGUMENT);
  for (int a = MLP_ACT_NONE; a <= MLP_ACT_SIGMOID; a++)
    ck_assert_int_eq(mlp_activation_parse(mlp_activation_name((mlp_activation)a)), a);
  ck_assert_int_eq(mlp_activation_parse("swish"), -1);
}
END_TEST

static double host_act(double v, mlp_activation act) {
  switch (act) {
  case MLP_ACT_NONE: return v;
  case MLP_ACT_RELU: return v > 0 ? v : 0;
  case MLP_ACT_LEAKY_RELU: return v > 0 ? v : 0.2 * v;
  case MLP_ACT_TANH: return tanh(v);
  case MLP_ACT_SIGMOID: return 1 / (1 + exp(-v));
  }
  return NAN;
}

START_TEST(test_mlp_forward_matches_host) {
  enum { B = 6, IN = 3, H1 = 5, H2 = 4, OUT = 2 };
  ut_runtime *rt = test_runtime();
  ut_store *st = ut_store_new(rt, 11);
  ck_assert_ut_ptr(st);
  ut_graph *g = ut_graph_new(rt, st);
  ck_assert_ut_ptr(g);
  mlp_cfg m = { .prefix = "t", .n_hidden = 2, .hidden = { H1, H2 }, .out_features = OUT,
                .hidden_act = MLP_ACT_LEAKY_RELU, .output_act = MLP_ACT_SIGMOID };
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(B, IN));
  ut_tensor *y = mlp_forward(g, x, &m);
  ck_assert_ut_ok(ut_graph_status(g));
  ck_assert_ut_ptr(y);
  ck_assert_int_eq(ut_params(g, "t.").n, 6);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &y, .n_outputs = 1 });
  ck_assert_ut_ptr(p);

  float xs[B * IN], ys[B * OUT];
  uint64_t rng = 99;
  test_fill_uniform(&rng, xs, B * IN, -2, 2);
  ck_assert_ut_ok(ut_upload(p, x, xs));
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, y, ys));

  /* The host reference reads the same weights back from the store: y = act(x W^T + b). */
  const int dims[] = { IN, H1, H2, OUT };
  double h[B][8];
  for (int b = 0; b < B; b++)
    for (int i = 0; i < IN; i++) h[b][i] = xs[b * IN + i];
  for (int l = 0; l < 3; l++) {
    char wname[32], bname[32];
    snprintf(wname, sizeof wname, "t.fc%d.w", l + 1);
    snprintf(bname, sizeof bname, "t.fc%d.b", l + 1);
    ut_store_tensor *wt = ut_store_find(st, wname), *bt = ut_store_find(st, bname);
    ck_assert_msg(wt && bt, "the store lacks %s or %s", wname, bname);
    ck_assert_msg(ut_shape_equal(ut_store_tensor_shape(wt), UT_SHAPE(dims[l + 1], dims[l])), "%s has the wrong shape", wname);
    float w[8 * 8], bias[8];
    ck_assert_ut_ok(ut_store_tensor_read(st, wt, w));
    ck_assert_ut_ok(ut_store_tensor_read(st, bt, bias));
    mlp_activation act = l == 2 ? m.output_act : m.hidden_act;
    for (int b = 0; b < B; b++) {
      double next[8];
      for (int o = 0; o < dims[l + 1]; o++) {
        double s = bias[o];
        for (int i = 0; i < dims[l]; i++) s += (double)w[o * dims[l] + i] * h[b][i];
        next[o] = host_act(s, act);
      }
      memcpy(h[b], next, sizeof next);
    }
  }
  float ref[B * OUT];
  for (int b = 0; b < B; b++)
    for (int o = 0; o < OUT; o++) ref[b * OUT + o] = (float)h[b][o];
  int64_t worst;
  double err = test_compare(ys, ref, B * OUT, 1e-5, 1e-4, &worst);
  ck_assert_msg(err <= 1, "element %lld: device %g, host %g", (long long)worst, (double)ys[worst], (double)ref[worst]);

  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

START_TEST(test_spirals_learns) {
  enum { STEPS = 400 };
  spirals_cfg cfg = spirals_default_cfg();
  spirals_trainer *t = spirals_new(test_runtime(), &cfg);
  ck_assert_ut_ptr(t);
  static float losses[STEPS];
  ck_assert_ut_ok(spirals_train(t, STEPS, losses));
  ck_assert_int_eq(spirals_step(t), STEPS);
  double train_acc, test_acc;
  ck_assert_ut_ok(spirals_accuracy(t, SPIRALS_TRAIN, &train_acc));
  ck_assert_ut_ok(spirals_accuracy(t, SPIRALS_TEST, &test_acc));
  fprintf(stderr, "spirals: loss %.4f -> %.5f after %d steps, accuracy %.1f%% train, %.1f%% held out\n",
          (double)losses[0], (double)losses[STEPS - 1], STEPS, 100 * train_acc, 100 * test_acc);
  ck_assert_msg(losses[STEPS - 1] < 0.1f * losses[0], "the loss fell only from %g to %g", (double)losses[0],
                (double)losses[STEPS - 1]);
  ck_assert_msg(test_acc >= 0.95, "held-out accuracy %.1f%% is below 95%%", 100 * test_acc);
  spirals_free(t);
}
END_TEST

START_TEST(test_spirals_resume_is_exact) {
  enum { K = 25, M = 20 };
  spirals_cfg cfg = spirals_default_cfg();
  cfg.batch = 64; /* minibatches: the batch of each step must follow from the step counter */
  cfg.seed = 5;
  const char *path = test_tmp_path("spirals-resume.safetensors");
  char saved_path[4096];
  snprintf(saved_path, sizeof saved_path, "%s", path);

  spirals_trainer *a = spirals_new(test_runtime(), &cfg);
  ck_assert_ut_ptr(a);
  ck_assert_ut_ok(spirals_train(a, K, NULL));
  ck_assert_ut_ok(spirals_save(a, saved_path));
  float straight[M], resumed[M];
  ck_assert_ut_ok(spirals_train(a, M, straight));
  spirals_free(a);

  spirals_cfg read;
  ck_assert_ut_ok(spirals_read_config(test_runtime(), saved_path, &read));
  ck_assert_int_eq(read.seed, cfg.seed);
  ck_assert_int_eq(read.batch, cfg.batch);
  ck_assert_msg(read.lr == cfg.lr && read.turns == cfg.turns, "the configuration did not survive the checkpoint");

  spirals_trainer *b = spirals_new(test_runtime(), &read);
  ck_assert_ut_ptr(b);
  ck_assert_int_eq(spirals_step(b), 0);
  ck_assert_ut_ok(spirals_load(b, saved_path));
  ck_assert_int_eq(spirals_step(b), K);
  ck_assert_ut_ok(spirals_train(b, M, resumed));
  ck_assert_int_eq(spirals_step(b), K + M);
  for (int i = 0; i < M; i++)
    if (memcmp(&straight[i], &resumed[i], sizeof(float)) != 0)
      ck_abort_msg("step %d after resuming: loss %.9g, the uninterrupted run had %.9g", K + i, (double)resumed[i],
                   (double)straight[i]);
  spirals_free(b);

  /* A checkpoint of another configuration is refused, and says which setting differs. */
  spirals_cfg other = cfg;
  other.lr = 0.02f;
  spirals_trainer *c = spirals_new(test_runtime(), &other);
  ck_assert_ut_ptr(c);
  ut_status s = spirals_load(c, saved_path);
  ck_assert_msg(s == UT_ERR_MISMATCH, "loading another configuration's checkpoint gave %s", ut_status_name(s));
  ck_assert_msg(strstr(ut_last_error(), "lr") != NULL, "the message does not name lr: %s", ut_last_error());
  ck_assert_int_eq(spirals_step(c), 0);
  spirals_free(c);
  unlink(saved_path);
}
END_TEST

static Suite *mlp_suite(void) {
  Suite *s = suite_create("mlp");
  TCase *host = tcase_create("host");
  tcase_add_test(host, test_spirals_data);
  tcase_add_test(host, test_mlp_config);
  suite_add_tcase(s, host);
  TCase *device = tcase_create("device");
  tcase_set_timeout(device, 300);
  tcase_add_test(device, test_mlp_forward_matches_host);
  tcase_add_test(device, test_spirals_learns);
  tcase_add_test(device, test_spirals_resume_is_exact);
  suite_add_tcase(s, device);
  return s;
}

int main(void) { return test_run_suite(mlp_suite()); }
