/* The two-spirals toy task: points on two interleaved spirals, one class each, and an MLP
 * that learns to tell them apart. It is the smallest model that exercises every part of the
 * engine a real trainer needs (graph, autograd, Adam, plans, the store and checkpoints), so
 * it is the first thing to run on a new device.
 *
 *   spirals_cfg cfg = spirals_default_cfg();
 *   spirals_trainer *t = spirals_new(rt, &cfg);
 *   spirals_train(t, 500, losses);           // 500 Adam steps, one loss per step
 *   spirals_accuracy(t, SPIRALS_TEST, &acc);
 *   spirals_save(t, "out/checkpoint.safetensors");
 *
 * Training resumes exactly: parameters, Adam moments and the step counter live in the store
 * and the checkpoint, the data follow from the seed and each minibatch from (seed, step), so a
 * run continued from a checkpoint computes the same losses bit for bit as one not stopped.
 */
#ifndef UNTANGLE_MODELS_SPIRALS_H
#define UNTANGLE_MODELS_SPIRALS_H

#include "mlp.h"
#include "untangle.h"

typedef struct {
  int64_t n_train, n_test; /* points in the training and the held-out set (even: half each class) */
  int64_t batch;           /* points per step; 0 (or n_train or more) trains on the full set */
  float turns;             /* turns of each spiral */
  float noise;             /* standard deviation of the Gaussian noise added to each point */
  int depth;               /* hidden layers */
  int64_t width;           /* units per hidden layer */
  mlp_activation act;      /* hidden activation; the output is always tanh, against +-1 targets */
  float lr;                /* Adam's learning rate */
  uint64_t seed;           /* parameter initialisation, the data and the minibatches */
} spirals_cfg;

/* 512 + 512 points, 1.5 turns, noise 0.03, full batch, 2 -> 64 -> 64 -> 1 tanh, Adam at 0.01,
 * seed 1: reaches about 99% held-out accuracy in a few hundred steps. */
spirals_cfg spirals_default_cfg(void);

/* UT_OK or UT_ERR_INVALID_ARGUMENT with the field named in ut_last_error(). */
ut_status spirals_cfg_check(const spirals_cfg *cfg);

/* Writes n points into xy [n, 2] and their labels into label [n] (+1: first spiral, -1:
 * second); even indices are the first spiral, odd ones the second. The same seed gives the
 * same points; the radius grows to 1 along each spiral, so points lie in about [-1, 1]^2. */
void spirals_generate(uint64_t seed, int64_t n, float turns, float noise, float *xy, float *label);

typedef struct spirals_trainer spirals_trainer;

/* Builds the store, the training graph and plan (forward, MSE, backward, Adam) and two
 * evaluation plans over the same parameters. NULL on failure, with ut_last_error(). */
spirals_trainer *spirals_new(ut_runtime *rt, const spirals_cfg *cfg);
void spirals_free(spirals_trainer *t);

const spirals_cfg *spirals_config(const spirals_trainer *t);
ut_store *spirals_store(spirals_trainer *t);
/* The training step plan, for its statistics (ut_plan_get_stats). */
const ut_plan *spirals_train_plan(const spirals_trainer *t);
/* Steps trained so far (the store counter "spirals.step", saved with checkpoints). */
int64_t spirals_step(const spirals_trainer *t);
int64_t spirals_parameter_count(const spirals_trainer *t);

/* Runs `steps` training steps. When `losses` is not NULL, losses[i] gets the loss of step i
 * of this call (the loss before that step's update). */
ut_status spirals_train(spirals_trainer *t, int64_t steps, float *losses);

typedef enum { SPIRALS_TRAIN = 0, SPIRALS_TEST = 1 } spirals_set;
/* The share of the set's points whose predicted sign matches their label, in [0, 1]. */
ut_status spirals_accuracy(spirals_trainer *t, spirals_set set, double *accuracy);

/* Saves parameters, Adam state, the step counter and the configuration (store metadata
 * "spirals.config", JSON) to `path` atomically. */
ut_status spirals_save(spirals_trainer *t, const char *path);

/* Reads the configuration a checkpoint was trained with, so a run can resume without being
 * told it again. UT_ERR_FORMAT when the file is not a spirals checkpoint. */
ut_status spirals_read_config(ut_runtime *rt, const char *path, spirals_cfg *cfg);

/* Loads a checkpoint written by spirals_save. UT_ERR_MISMATCH, naming the first differing
 * setting, when it was trained with another configuration; the trainer is unchanged then. */
ut_status spirals_load(spirals_trainer *t, const char *path);

#endif
