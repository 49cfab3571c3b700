/* Linear and MLP probes on feature vectors. Each probe gets its own store, a training plan
 * (forward, cross-entropy, backward, Adam) over fixed-size minibatches and a forward-only plan
 * that scores the test part in fixed-size chunks, so nothing is planned inside the loops. */
#include "probe.h"
#include "kit_random.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp.h"

probe_cfg probe_default_cfg(void) {
  return (probe_cfg){ .train_share = 0.8, .epochs = 10, .min_steps = 300, .batch = 256, .hidden = 256, .lr_linear = 1e-2f,
                      .lr_mlp = 1e-3f, .weight_decay = 0.0f };
}

/* What both probes share: the standardized features in split order (training part first). */
typedef struct {
  ut_runtime *rt;
  const probe_cfg *cfg;
  int64_t n_train, n_test, d;
  int n_classes;
  float *x;   /* [n, d], rows permuted and standardized */
  int32_t *y; /* [n] */
} probe_data;

/* Index of the largest logit; ties go to the lowest class, so results are reproducible. */
static int argmax_row(const float *row, int k) {
  int best = 0;
  for (int c = 1; c < k; c++)
    if (row[c] > row[best]) best = c;
  return best;
}

typedef struct {
  ut_store *st;
  ut_graph *train_g, *eval_g;
  ut_tensor *x, *y, *loss, *ex, *logits;
  ut_plan *train_p, *eval_p;
  float *bx, *ex_buf, *out;
  int32_t *by;
} probe_net;

static void net_free(probe_net *n) {
  ut_plan_free(n->train_p);
  ut_plan_free(n->eval_p);
  ut_graph_free(n->train_g);
  ut_graph_free(n->eval_g);
  ut_store_free(n->st);
  free(n->bx);
  free(n->by);
  free(n->ex_buf);
  free(n->out);
}

static ut_status graph_failure(ut_graph *g, const char *what) {
  ut_status s = g && ut_graph_status(g) != UT_OK ? ut_graph_status(g) : UT_ERR_STATE;
  ut_error_prefix("probe: %s", what);
  return s;
}

static ut_status net_build(probe_net *n, const probe_data *pd, int n_hidden, float lr, uint64_t seed, int64_t batch,
                           int64_t chunk) {
  const probe_cfg *cfg = pd->cfg;
  mlp_cfg m = { .prefix = "probe", .n_hidden = n_hidden, .hidden = { cfg->hidden }, .out_features = pd->n_classes,
                .hidden_act = MLP_ACT_RELU, .output_act = MLP_ACT_NONE };
  n->st = ut_store_new(pd->rt, seed);
  n->bx = malloc((size_t)(batch * pd->d) * sizeof(float));
  n->by = malloc((size_t)batch * sizeof(int32_t));
  n->ex_buf = calloc((size_t)(chunk * pd->d), sizeof(float));
  n->out = malloc((size_t)(chunk * pd->n_classes) * sizeof(float));
  if (!n->st || !n->bx || !n->by || !n->ex_buf || !n->out) return ut_fail(UT_ERR_HOST_MEMORY, "probe: out of host memory");

  n->train_g = ut_graph_new(pd->rt, n->st);
  if (!n->train_g) return UT_ERR_HOST_MEMORY;
  n->x = ut_input(n->train_g, "probe.x", UT_F32, UT_SHAPE(batch, pd->d));
  n->y = ut_input(n->train_g, "probe.y", UT_I32, UT_SHAPE(batch));
  n->loss = ut_name(ut_cross_entropy(n->train_g, mlp_forward(n->train_g, n->x, &m), n->y), "probe.loss");
  ut_tensor_list params = ut_params(n->train_g, "probe.");
  ut_status s = n->loss ? ut_backward(n->train_g, n->loss, params) : ut_graph_status(n->train_g);
  if (s == UT_OK) s = ut_adam(n->train_g, params, &(ut_adam_cfg){ .lr = lr, .weight_decay = cfg->weight_decay });
  if (s != UT_OK) return graph_failure(n->train_g, "training graph");
  n->train_p = ut_plan_compile(n->train_g, &(ut_plan_cfg){ .outputs = &n->loss, .n_outputs = 1 });
  if (!n->train_p) return graph_failure(n->train_g, "training plan");

  n->eval_g = ut_graph_new(pd->rt, n->st);
  if (!n->eval_g) return UT_ERR_HOST_MEMORY;
  n->ex = ut_input(n->eval_g, "probe.x", UT_F32, UT_SHAPE(chunk, pd->d));
  n->logits = mlp_forward(n->eval_g, n->ex, &m);
  n->eval_p = ut_plan_compile(n->eval_g, &(ut_plan_cfg){ .outputs = &n->logits, .n_outputs = 1 });
  if (!n->eval_p) return graph_failure(n->eval_g, "evaluation plan");
  return UT_OK;
}

/* Trains one probe and returns its test accuracy and its last epoch's mean loss. */
static ut_status run_probe(const probe_data *pd, int n_hidden, float lr, uint64_t seed, double *accuracy, double *loss) {
  const probe_cfg *cfg = pd->cfg;
  int64_t batch = cfg->batch < pd->n_train ? cfg->batch : pd->n_train;
  int64_t chunk = pd->n_test < 1024 ? pd->n_test : 1024;
  int64_t d = pd->d;
  probe_net n = { 0 };
  int64_t *order = malloc((size_t)pd->n_train * sizeof(int64_t));
  ut_status s = order ? net_build(&n, pd, n_hidden, lr, seed, batch, chunk) : ut_fail(UT_ERR_HOST_MEMORY, "probe: out of host memory");

  /* Each epoch visits the training part in a fresh seeded order; the last minibatch wraps
   * around to the epoch's first samples so every step has the planned batch size. */
  int64_t steps = (pd->n_train + batch - 1) / batch;
  int64_t epochs = cfg->epochs;
  if (epochs > 0 && epochs * steps < cfg->min_steps) epochs = (cfg->min_steps + steps - 1) / steps;
  double loss_sum = 0;
  for (int64_t e = 0; s == UT_OK && e < epochs; e++) {
    kit_permutation(kit_hash64(seed) + (uint64_t)e, pd->n_train, order);
    loss_sum = 0;
    for (int64_t st = 0; s == UT_OK && st < steps; st++) {
      for (int64_t k = 0; k < batch; k++) {
        int64_t i = order[(st * batch + k) % pd->n_train];
        memcpy(n.bx + k * d, pd->x + i * d, (size_t)d * sizeof(float));
        n.by[k] = pd->y[i];
      }
      float l = 0;
      s = ut_upload(n.train_p, n.x, n.bx);
      if (s == UT_OK) s = ut_upload(n.train_p, n.y, n.by);
      if (s == UT_OK) s = ut_plan_run(n.train_p);
      if (s == UT_OK) s = ut_read(n.train_p, n.loss, &l);
      loss_sum += l;
    }
  }
  *loss = epochs > 0 ? loss_sum / (double)steps : NAN;

  int64_t right = 0;
  const float *test_x = pd->x + pd->n_train * d;
  const int32_t *test_y = pd->y + pd->n_train;
  for (int64_t at = 0; s == UT_OK && at < pd->n_test; at += chunk) {
    int64_t m = pd->n_test - at < chunk ? pd->n_test - at : chunk;
    /* A short last chunk is padded with zero rows whose predictions are ignored. */
    memset(n.ex_buf, 0, (size_t)(chunk * d) * sizeof(float));
    memcpy(n.ex_buf, test_x + at * d, (size_t)(m * d) * sizeof(float));
    s = ut_upload(n.eval_p, n.ex, n.ex_buf);
    if (s == UT_OK) s = ut_plan_run(n.eval_p);
    if (s == UT_OK) s = ut_read(n.eval_p, n.logits, n.out);
    for (int64_t i = 0; s == UT_OK && i < m; i++)
      right += argmax_row(n.out + i * pd->n_classes, pd->n_classes) == test_y[at + i];
  }
  *accuracy = (double)right / (double)pd->n_test;
  if (s != UT_OK) ut_error_prefix("probe (%s)", n_hidden ? "MLP" : "logistic regression");
  net_free(&n);
  free(order);
  return s;
}

static ut_status check_args(ut_runtime *rt, const float *features, int64_t n, int64_t d, const int32_t *labels,
                            int n_classes, const probe_cfg *cfg, probe_result *result) {
  if (!rt || !features || !labels || !result)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "probe_accuracy: no runtime, features, labels or result");
  if (n < 2 || d < 1 || n_classes < 2)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "probe_accuracy: %lld samples of %lld features in %d classes: need at least 2, 1 and 2",
                   (long long)n, (long long)d, n_classes);
  if (!(cfg->train_share > 0 && cfg->train_share < 1) || cfg->epochs < 0 || cfg->min_steps < 0 || cfg->batch < 1 ||
      cfg->hidden < 1 ||
      !(cfg->lr_linear > 0) || !(cfg->lr_mlp > 0) || cfg->weight_decay < 0)
    return ut_fail(UT_ERR_INVALID_ARGUMENT,
                   "probe_accuracy: settings out of range (train share %g, epochs %d, min steps %lld, batch %lld, hidden "
                   "%lld, lr %g / %g, weight decay %g)",
                   cfg->train_share, cfg->epochs, (long long)cfg->min_steps, (long long)cfg->batch, (long long)cfg->hidden, (double)cfg->lr_linear,
                   (double)cfg->lr_mlp, (double)cfg->weight_decay);
  for (int64_t i = 0; i < n; i++)
    if (labels[i] < 0 || labels[i] >= n_classes)
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "probe_accuracy: label %d of sample %lld is outside [0, %d)", (int)labels[i],
                     (long long)i, n_classes);
  return UT_OK;
}

/* Reorders perm (a random order) so that the first floor(share * count) samples of each label
 * come first, keeping the random order within each part; the training part's size goes to
 * *n_train. counts and tmp are scratch of n_classes and n entries. */
static void stratify(const int32_t *labels, int n_classes, double share, int64_t n, int64_t *perm, int64_t *counts,
                     int64_t *tmp, int64_t *n_train) {
  memset(counts, 0, (size_t)n_classes * sizeof *counts);
  for (int64_t i = 0; i < n; i++) counts[labels[i]]++;
  for (int c = 0; c < n_classes; c++) counts[c] = (int64_t)floor(share * (double)counts[c]); /* quotas */
  int64_t front = 0, back = 0;
  for (int64_t i = 0; i < n; i++) {
    int32_t c = labels[perm[i]];
    if (counts[c] > 0) {
      counts[c]--;
      perm[front++] = perm[i];
    } else {
      tmp[back++] = perm[i];
    }
  }
  memcpy(perm + front, tmp, (size_t)back * sizeof *perm);
  *n_train = front;
}

/* Copies the samples in split order and standardizes them with the training part's moments
 * (two passes in double, so large offsets do not cost precision). */
static void prepare(probe_data *pd, const float *features, const int32_t *labels, const int64_t *perm) {
  int64_t n = pd->n_train + pd->n_test, d = pd->d;
  for (int64_t r = 0; r < n; r++) {
    memcpy(pd->x + r * d, features + perm[r] * d, (size_t)d * sizeof(float));
    pd->y[r] = labels[perm[r]];
  }
  for (int64_t j = 0; j < d; j++) {
    double mean = 0, var = 0;
    for (int64_t r = 0; r < pd->n_train; r++) mean += pd->x[r * d + j];
    mean /= (double)pd->n_train;
    for (int64_t r = 0; r < pd->n_train; r++) {
      double v = pd->x[r * d + j] - mean;
      var += v * v;
    }
    double sd = sqrt(var / (double)pd->n_train);
    double inv = sd > 1e-12 ? 1.0 / sd : 1.0;
    for (int64_t r = 0; r < n; r++) pd->x[r * d + j] = (float)((pd->x[r * d + j] - mean) * inv);
  }
}

/* Both probes on the samples in the order perm gives, the first n_train trained on. */
static ut_status score_split(ut_runtime *rt, const float *features, int64_t n, int64_t n_train, int64_t d,
                             const int32_t *labels, int n_classes, uint64_t seed, const probe_cfg *cfg,
                             const int64_t *perm, probe_result *result) {
  probe_data pd = { .rt = rt, .cfg = cfg, .d = d, .n_classes = n_classes, .n_train = n_train, .n_test = n - n_train };
  int64_t *counts = calloc((size_t)n_classes, sizeof(int64_t));
  pd.x = malloc((size_t)(n * d) * sizeof(float));
  pd.y = malloc((size_t)n * sizeof(int32_t));
  ut_status s = UT_OK;
  if (!counts || !pd.x || !pd.y) {
    s = ut_fail(UT_ERR_HOST_MEMORY, "probe_accuracy: out of host memory for %lld x %lld features", (long long)n, (long long)d);
  } else {
    prepare(&pd, features, labels, perm);
    int64_t most = 0;
    for (int64_t r = pd.n_train; r < n; r++)
      if (++counts[pd.y[r]] > most) most = counts[pd.y[r]];
    result->chance = (double)most / (double)pd.n_test;
    result->n_train = pd.n_train;
    result->n_test = pd.n_test;
    result->n_classes = n_classes;
    /* Distinct seeds per probe, so the two do not start from related weights. */
    s = run_probe(&pd, 0, cfg->lr_linear, kit_hash64(seed ^ 0x6c696eull), &result->linear_accuracy, &result->linear_loss);
    if (s == UT_OK)
      s = run_probe(&pd, 1, cfg->lr_mlp, kit_hash64(seed ^ 0x6d6c70ull), &result->mlp_accuracy, &result->mlp_loss);
  }
  free(counts);
  free(pd.x);
  free(pd.y);
  return s;
}

ut_status probe_accuracy_cfg(ut_runtime *rt, const float *features, int64_t n, int64_t d, const int32_t *labels,
                             int n_classes, uint64_t seed, const probe_cfg *cfg, probe_result *result) {
  probe_cfg defaults = probe_default_cfg();
  if (!cfg) cfg = &defaults;
  ut_status s = check_args(rt, features, n, d, labels, n_classes, cfg, result);
  if (s != UT_OK) return s;
  memset(result, 0, sizeof *result);

  int64_t n_train = (int64_t)floor(cfg->train_share * (double)n);
  if (n_train < 1) n_train = 1;
  if (n_train > n - 1) n_train = n - 1;
  int64_t *perm = malloc((size_t)n * sizeof(int64_t)), *tmp = malloc((size_t)n * sizeof(int64_t));
  int64_t *counts = calloc((size_t)n_classes, sizeof(int64_t));
  if (!perm || !tmp || !counts) {
    s = ut_fail(UT_ERR_HOST_MEMORY, "probe_accuracy: out of host memory for %lld x %lld features", (long long)n, (long long)d);
  } else {
    kit_permutation(seed, n, perm);
    int64_t stratified_train = 0;
    if (cfg->stratified) stratify(labels, n_classes, cfg->train_share, n, perm, counts, tmp, &stratified_train);
    if (stratified_train >= 1 && stratified_train <= n - 1) {
      n_train = stratified_train;
    } else if (cfg->stratified) {
      kit_permutation(seed, n, perm);
    }
    s = score_split(rt, features, n, n_train, d, labels, n_classes, seed, cfg, perm, result);
  }
  free(perm);
  free(tmp);
  free(counts);
  return s;
}

ut_status probe_accuracy_split(ut_runtime *rt, const float *features, int64_t n, int64_t n_train, int64_t d,
                               const int32_t *labels, int n_classes, uint64_t seed, const probe_cfg *cfg,
                               probe_result *result) {
  probe_cfg defaults = probe_default_cfg();
  if (!cfg) cfg = &defaults;
  ut_status s = check_args(rt, features, n, d, labels, n_classes, cfg, result);
  if (s != UT_OK) return s;
  if (n_train < 1 || n_train >= n)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "probe_accuracy_split: %lld of %lld samples to train on: need 1 .. %lld",
                   (long long)n_train, (long long)n, (long long)(n - 1));
  memset(result, 0, sizeof *result);
  int64_t *perm = malloc((size_t)n * sizeof(int64_t));
  if (!perm) return ut_fail(UT_ERR_HOST_MEMORY, "probe_accuracy: out of host memory");
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  s = score_split(rt, features, n, n_train, d, labels, n_classes, seed, cfg, perm, result);
  free(perm);
  return s;
}

ut_status probe_accuracy(ut_runtime *rt, const float *features, int64_t n, int64_t d, const int32_t *labels,
                         int n_classes, uint64_t seed, probe_result *result) {
  return probe_accuracy_cfg(rt, features, n, d, labels, n_classes, seed, NULL, result);
}
