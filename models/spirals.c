/* The two-spirals data and trainer. The training graph is forward + MSE + backward + Adam in
 * one plan; two more graphs over the same store evaluate the training and the held-out set. */
#include "spirals.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_config.h"
#include "kit_random.h"
#include "spirals_internal.h"

/* A double in [0, 1) from 53 bits. */
static double unit(uint64_t bits) { return (double)(bits >> 11) * (1.0 / 9007199254740992.0); }

void spirals_generate(uint64_t seed, int64_t n, float turns, float noise, float *xy, float *label) {
  const double two_pi = 6.283185307179586;
  uint64_t key = kit_hash64(seed);
  for (int64_t i = 0; i < n; i++) {
    uint64_t base = kit_hash64(key ^ kit_hash64((uint64_t)i));
    /* sqrt makes the density uniform along the arc, whose length grows with the radius. */
    double t = sqrt(unit(kit_hash64(base + 1)));
    double angle = two_pi * turns * t + (i % 2 ? two_pi / 2 : 0);
    /* Box-Muller for the noise; 1 - u keeps the logarithm finite. */
    double radius = sqrt(-2.0 * log(1.0 - unit(kit_hash64(base + 2))));
    double phase = two_pi * unit(kit_hash64(base + 3));
    xy[2 * i] = (float)(t * cos(angle) + noise * radius * cos(phase));
    xy[2 * i + 1] = (float)(t * sin(angle) + noise * radius * sin(phase));
    label[i] = i % 2 ? -1.0f : 1.0f;
  }
}

typedef struct {
  ut_graph *g;
  ut_tensor *x, *out;
  ut_plan *plan;
  int64_t n;
  const float *xy, *label;
} eval_net;

struct spirals_trainer {
  ut_runtime *rt;
  ut_store *st;
  spirals_cfg cfg;
  int64_t batch;        /* points per step, n_train when full batch */
  int64_t *step;        /* the store's step counter */
  float *data;          /* one allocation: train xy, train labels, test xy, test labels, batch */
  float *train_xy, *train_y, *test_xy, *test_y, *batch_xy, *batch_y, *pred;
  ut_graph *g;
  ut_tensor *x, *y, *loss;
  ut_plan *plan;
  eval_net eval[2];
};

/* Distinct streams for the two sets and the batches, so the held-out points are not the
 * training points ("train", "test", "batch" in ASCII). */
static const uint64_t stream_train = 0x747261696eull, stream_test = 0x74657374ull, stream_batch = 0x6261746368ull;

static ut_status build_eval(spirals_trainer *t, eval_net *e, int64_t n, const float *xy, const float *label) {
  mlp_cfg m = spirals_mlp_cfg(&t->cfg);
  e->n = n;
  e->xy = xy;
  e->label = label;
  e->g = ut_graph_new(t->rt, t->st);
  if (!e->g) return UT_ERR_HOST_MEMORY;
  e->x = ut_input(e->g, "spirals.x", UT_F32, UT_SHAPE(n, 2));
  e->out = mlp_forward(e->g, e->x, &m);
  e->plan = ut_plan_compile(e->g, &(ut_plan_cfg){ .outputs = &e->out, .n_outputs = 1 });
  if (!e->plan) {
    ut_error_prefix("spirals: evaluation plan");
    return ut_graph_status(e->g) != UT_OK ? ut_graph_status(e->g) : UT_ERR_STATE;
  }
  return UT_OK;
}

static ut_status build_train(spirals_trainer *t) {
  mlp_cfg m = spirals_mlp_cfg(&t->cfg);
  t->g = ut_graph_new(t->rt, t->st);
  if (!t->g) return UT_ERR_HOST_MEMORY;
  t->x = ut_input(t->g, "spirals.x", UT_F32, UT_SHAPE(t->batch, 2));
  t->y = ut_input(t->g, "spirals.y", UT_F32, UT_SHAPE(t->batch, 1));
  ut_tensor *out = mlp_forward(t->g, t->x, &m);
  t->loss = ut_name(ut_mse_loss(t->g, out, t->y), "spirals.loss");
  ut_tensor_list params = ut_params(t->g, "spirals.mlp.");
  ut_status s = t->loss ? ut_backward(t->g, t->loss, params) : ut_graph_status(t->g);
  if (s == UT_OK) s = ut_adam(t->g, params, &(ut_adam_cfg){ .lr = t->cfg.lr });
  if (s != UT_OK) {
    ut_error_prefix("spirals: training graph");
    return s;
  }
  t->plan = ut_plan_compile(t->g, &(ut_plan_cfg){ .outputs = &t->loss, .n_outputs = 1 });
  if (!t->plan) {
    ut_error_prefix("spirals: training plan");
    return ut_graph_status(t->g) != UT_OK ? ut_graph_status(t->g) : UT_ERR_STATE;
  }
  return UT_OK;
}

spirals_trainer *spirals_new(ut_runtime *rt, const spirals_cfg *cfg) {
  if (!rt) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "spirals: no runtime");
    return NULL;
  }
  if (spirals_cfg_check(cfg) != UT_OK) return NULL;
  spirals_trainer *t = calloc(1, sizeof *t);
  if (!t) {
    ut_fail(UT_ERR_HOST_MEMORY, "spirals: out of host memory");
    return NULL;
  }
  t->rt = rt;
  t->cfg = *cfg;
  t->batch = cfg->batch > 0 && cfg->batch < cfg->n_train ? cfg->batch : cfg->n_train;
  int64_t n_pred = cfg->n_train > cfg->n_test ? cfg->n_train : cfg->n_test;
  int64_t floats = 3 * cfg->n_train + 3 * cfg->n_test + 3 * t->batch + n_pred;
  t->data = malloc((size_t)floats * sizeof(float));
  if (!t->data) {
    ut_fail(UT_ERR_HOST_MEMORY, "spirals: out of host memory for %lld points", (long long)(cfg->n_train + cfg->n_test));
    free(t);
    return NULL;
  }
  t->train_xy = t->data;
  t->train_y = t->train_xy + 2 * cfg->n_train;
  t->test_xy = t->train_y + cfg->n_train;
  t->test_y = t->test_xy + 2 * cfg->n_test;
  t->batch_xy = t->test_y + cfg->n_test;
  t->batch_y = t->batch_xy + 2 * t->batch;
  t->pred = t->batch_y + t->batch;
  spirals_generate(cfg->seed ^ stream_train, cfg->n_train, cfg->turns, cfg->noise, t->train_xy, t->train_y);
  spirals_generate(cfg->seed ^ stream_test, cfg->n_test, cfg->turns, cfg->noise, t->test_xy, t->test_y);

  ut_status s = UT_OK;
  t->st = ut_store_new(rt, cfg->seed);
  if (!t->st) s = UT_ERR_HOST_MEMORY;
  if (s == UT_OK) {
    t->step = ut_store_counter(t->st, SPIRALS_STEP_COUNTER);
    if (!t->step) s = UT_ERR_HOST_MEMORY;
  }
  if (s == UT_OK) s = build_train(t);
  if (s == UT_OK) s = build_eval(t, &t->eval[SPIRALS_TRAIN], cfg->n_train, t->train_xy, t->train_y);
  if (s == UT_OK) s = build_eval(t, &t->eval[SPIRALS_TEST], cfg->n_test, t->test_xy, t->test_y);
  if (s != UT_OK) {
    spirals_free(t);
    return NULL;
  }
  return t;
}

void spirals_free(spirals_trainer *t) {
  if (!t) return;
  for (int i = 0; i < 2; i++) {
    ut_plan_free(t->eval[i].plan);
    ut_graph_free(t->eval[i].g);
  }
  ut_plan_free(t->plan);
  ut_graph_free(t->g);
  ut_store_free(t->st);
  free(t->data);
  free(t);
}

const spirals_cfg *spirals_config(const spirals_trainer *t) { return &t->cfg; }
ut_store *spirals_store(spirals_trainer *t) { return t->st; }
const ut_plan *spirals_train_plan(const spirals_trainer *t) { return t->plan; }
int64_t spirals_step(const spirals_trainer *t) { return *t->step; }

int64_t spirals_parameter_count(const spirals_trainer *t) {
  mlp_cfg m = spirals_mlp_cfg(&t->cfg);
  return mlp_parameter_count(&m, 2);
}

/* The minibatch of `step`: points drawn with replacement by hashing (seed, step, k), so any
 * step's batch can be made again from the step counter alone. */
static void fill_batch(spirals_trainer *t, int64_t step) {
  uint64_t key = kit_hash64(kit_hash64(t->cfg.seed ^ stream_batch) ^ kit_hash64((uint64_t)step));
  for (int64_t k = 0; k < t->batch; k++) {
    int64_t i = (int64_t)(kit_hash64(key + (uint64_t)k) % (uint64_t)t->cfg.n_train);
    t->batch_xy[2 * k] = t->train_xy[2 * i];
    t->batch_xy[2 * k + 1] = t->train_xy[2 * i + 1];
    t->batch_y[k] = t->train_y[i];
  }
}

ut_status spirals_train(spirals_trainer *t, int64_t steps, float *losses) {
  if (!t || steps < 0) return ut_fail(UT_ERR_INVALID_ARGUMENT, "spirals_train: no trainer or negative steps");
  int full = t->batch == t->cfg.n_train;
  for (int64_t i = 0; i < steps; i++) {
    const float *xy = t->train_xy, *y = t->train_y;
    if (!full) {
      fill_batch(t, *t->step);
      xy = t->batch_xy;
      y = t->batch_y;
    }
    ut_status s = ut_upload(t->plan, t->x, xy);
    if (s == UT_OK) s = ut_upload(t->plan, t->y, y);
    if (s == UT_OK) s = ut_plan_run(t->plan);
    if (s == UT_OK && losses) s = ut_read(t->plan, t->loss, &losses[i]);
    if (s != UT_OK) {
      ut_error_prefix("spirals: step %lld", (long long)*t->step);
      return s;
    }
    (*t->step)++;
  }
  return UT_OK;
}

ut_status spirals_accuracy(spirals_trainer *t, spirals_set set, double *accuracy) {
  if (!t || (set != SPIRALS_TRAIN && set != SPIRALS_TEST) || !accuracy)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "spirals_accuracy: bad arguments");
  eval_net *e = &t->eval[set];
  ut_status s = ut_upload(e->plan, e->x, e->xy);
  if (s == UT_OK) s = ut_plan_run(e->plan);
  if (s == UT_OK) s = ut_read(e->plan, e->out, t->pred);
  if (s != UT_OK) {
    ut_error_prefix("spirals: accuracy on the %s set", set == SPIRALS_TRAIN ? "training" : "test");
    return s;
  }
  int64_t right = 0;
  for (int64_t i = 0; i < e->n; i++) right += (t->pred[i] > 0) == (e->label[i] > 0);
  *accuracy = (double)right / (double)e->n;
  return UT_OK;
}

ut_status spirals_save(spirals_trainer *t, const char *path) {
  if (!t || !path) return ut_fail(UT_ERR_INVALID_ARGUMENT, "spirals_save: no trainer or path");
  return checkpoint_config_save(t->st, path, "spirals", spirals_cfg_to_json(&t->cfg));
}

ut_status spirals_read_config(ut_runtime *rt, const char *path, spirals_cfg *cfg) {
  if (!rt || !path || !cfg) return ut_fail(UT_ERR_INVALID_ARGUMENT, "spirals_read_config: bad arguments");
  char *json = NULL;
  ut_status s = checkpoint_config_json(rt, path, "spirals", &json);
  if (s == UT_OK && (s = spirals_cfg_from_json(json, cfg)) != UT_OK) ut_error_prefix("%s", path);
  free(json);
  return s;
}

ut_status spirals_load(spirals_trainer *t, const char *path) {
  if (!t || !path) return ut_fail(UT_ERR_INVALID_ARGUMENT, "spirals_load: no trainer or path");
  spirals_cfg saved;
  ut_status s = spirals_read_config(t->rt, path, &saved);
  if (s != UT_OK) return s;
  char why[256];
  if (spirals_cfg_diff(&saved, &t->cfg, why, sizeof why))
    return ut_fail(UT_ERR_MISMATCH, "%s was trained with %s as this run asks", path, why);
  return ut_store_load(t->st, path);
}
