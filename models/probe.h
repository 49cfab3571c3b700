/* Linear and MLP probes: how well a label can be predicted from a set of feature vectors.
 * LORD's evaluation (issue 4, `untangle eval` part b) asks how much class information leaks
 * into content codes (and content into class codes): a probe trained on 80% of the codes and
 * scored on the other 20% should be near chance when the codes are disentangled.
 *
 *   probe_result r;
 *   probe_accuracy(rt, codes, n, d, class_ids, n_classes, 7, &r);
 *   printf("linear %.3f  mlp %.3f  chance %.3f\n", r.linear_accuracy, r.mlp_accuracy, r.chance);
 *
 * Everything follows from the seed: the split, the minibatches and the initial weights, so
 * the same call on the same device gives the same numbers.
 */
#ifndef UNTANGLE_MODELS_PROBE_H
#define UNTANGLE_MODELS_PROBE_H

#include "untangle.h"

typedef struct {
  double train_share; /* share of the samples trained on (0.8); the rest are scored */
  int epochs;         /* passes over the training part, for each probe ... */
  int64_t min_steps;  /* ... or more, until this many Adam steps (small sets need more passes) */
  int64_t batch;      /* samples per Adam step (the whole training part when it is smaller) */
  int64_t hidden;     /* width of the MLP's hidden layer (ReLU) */
  float lr_linear;    /* Adam's learning rate for logistic regression */
  float lr_mlp;       /* and for the MLP */
  float weight_decay; /* L2 on the weights, as torch.optim.Adam's weight_decay */
  /* 1: split each label's samples train_share : rest on its own, so both parts hold every label
   * in the same proportion and features that say nothing about the label score chance, not
   * below it (a plain random split leaves the test part's majority label rarer in training).
   * Falls back to the plain split when that would leave a part empty. */
  int stratified;
} probe_cfg;

/* 80/20 split (not stratified), 10 epochs (at least 300 steps) of minibatches of 256, hidden 256, Adam at
 * 1e-2 (linear) and 1e-3 (MLP), no weight decay: about 5 s for 10000 x 256 features on a
 * 2-core CPU with PoCL. More epochs let the MLP overfit a weak signal and score lower. */
probe_cfg probe_default_cfg(void);

typedef struct {
  double linear_accuracy; /* share of the test part classified right by logistic regression */
  double mlp_accuracy;    /* ... by the one-hidden-layer MLP */
  /* The majority baseline: the share of the most frequent class in the test part, i.e. the
   * accuracy of always answering that class (at least 1 / n_classes). */
  double chance;
  double linear_loss, mlp_loss; /* mean training cross-entropy over each probe's last epoch */
  int64_t n_train, n_test;
  int n_classes;
} probe_result;

/* Trains logistic regression (one linear layer) and a small MLP (one hidden ReLU layer) with
 * cross-entropy and Adam to predict labels (int32 [n], each in [0, n_classes)) from features
 * (float [n, d], row-major), on a seeded random share of the samples, and scores both on the
 * rest. Features are standardized per dimension with the training part's mean and standard
 * deviation (a constant dimension is only centred). Needs n >= 2 and n_classes >= 2; a label
 * outside [0, n_classes) is an UT_ERR_INVALID_ARGUMENT naming its index. Parameters live in a
 * store of the probe's own, so the caller's stores are untouched. */
ut_status probe_accuracy(ut_runtime *rt, const float *features, int64_t n, int64_t d, const int32_t *labels,
                         int n_classes, uint64_t seed, probe_result *result);
/* The same with chosen settings (NULL: probe_default_cfg()). */
ut_status probe_accuracy_cfg(ut_runtime *rt, const float *features, int64_t n, int64_t d, const int32_t *labels,
                             int n_classes, uint64_t seed, const probe_cfg *cfg, probe_result *result);

/* The same on a split the caller made: rows 0 .. n_train - 1 train both probes and rows
 * n_train .. n - 1 are scored, in that order (cfg->train_share and cfg->stratified are not
 * used). For grouped or folded splits, where samples that belong together (one object seen in
 * several domains) must stay on one side. Needs 1 <= n_train < n. */
ut_status probe_accuracy_split(ut_runtime *rt, const float *features, int64_t n, int64_t n_train, int64_t d,
                               const int32_t *labels, int n_classes, uint64_t seed, const probe_cfg *cfg,
                               probe_result *result);

#endif
