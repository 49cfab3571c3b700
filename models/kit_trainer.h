/* The model kit's trainer: the epoch and step loop every model's training runs in.
 *
 * A model hands over one step function (which may run several plans: a GAN's discriminator
 * and generator updates, each with its own optimiser over the one store) and the trainer does
 * the rest, the same way for every model:
 *  - batches from one loader per stream (a translation model draws each domain from its own
 *    stream, so batches of a paired data set never see the pairing);
 *  - a checkpoint after every epoch and every `save_every` steps, written atomically, with the
 *    number of steps done in its metadata ("train.step");
 *  - losses.tsv: a header line, then one line per step ([phase,] epoch, step, each loss),
 *    appended after the checkpoint it belongs to; a resumed run first drops its phase's lines
 *    past its checkpoint (a model trained in phases, as LORD's two stages, keeps one log);
 *  - a sample grid after every epoch (samples/[prefix]epochNNNN.jpg and grid.jpg);
 *  - resuming from the checkpoint continues bit for bit: the batches follow from (seed,
 *    epoch, position) and every random stream and optimiser state is in the store;
 *  - a non-finite loss stops the run at once, and a non-finite parameter stops it at the next
 *    checkpoint, which is then not written: the last good checkpoint is kept;
 *  - on a team (kit_team.h) each rank trains on its share of every batch, the losses are the
 *    team's means, rank 0 alone writes files and reports progress, and every `check_every`
 *    steps and at every checkpoint the ranks compare a checksum of their stores.
 */
#ifndef UNTANGLE_MODELS_KIT_TRAINER_H
#define UNTANGLE_MODELS_KIT_TRAINER_H

#include "kit_team.h"
#include "untangle.h"
#include "untangle_data.h"

#define KIT_CHECKPOINT "checkpoint.safetensors"
#define KIT_MAX_STREAMS 4
#define KIT_MAX_LOSSES 12

typedef struct {
  const char *name;               /* the model ("unit"), for messages */
  void *model;
  ut_store *store;                /* the model's store: parameters checked, "train.step" kept */
  int n_losses;                   /* 1 .. KIT_MAX_LOSSES */
  const char *const *loss_names;  /* column names of losses.tsv */
  /* One training step on one batch of each stream; losses[n_losses] get the step's losses. `step`
   * counts from 0 over the whole run of `steps` (for learning-rate schedules). */
  ut_status (*step)(void *model, const ut_batch *const *batches, int64_t step, int64_t steps, float *losses);
  /* Writes the model's checkpoint (with its configuration) to path, atomically. */
  ut_status (*save)(void *model, const char *path);
  /* Draws the sample grid into path; may be NULL. */
  ut_status (*write_grid)(void *model, const char *path);
} kit_model;

typedef struct {
  int64_t epoch, epochs;          /* the epoch being trained (from 0) and how many there are */
  int64_t step, steps;            /* steps done in all, and in the whole run */
  const float *losses;            /* the last step's */
  double images_per_second;       /* of the last step, over all streams (the whole team's) */
  double comm_share;              /* of the last step's time, the share spent communicating */
} kit_progress;

typedef struct {
  const char *run_dir;            /* created by the caller */
  const ut_dataset *ds;
  int n_streams;                  /* 1 .. KIT_MAX_STREAMS */
  ut_loader_cfg streams[KIT_MAX_STREAMS]; /* each with its own seed */
  int64_t epochs;                 /* an epoch is as many steps as the shortest stream has batches */
  int64_t save_every;             /* > 0: a checkpoint every that many steps as well */
  const char *step_key;           /* metadata key of the steps done; NULL: "train.step" */
  const char *phase_column;       /* a first column of losses.tsv ("stage"), or NULL for none */
  const char *phase;              /* this run's value in that column ("1") */
  const char *sample_prefix;      /* before "epochNNNN.jpg" in samples/; NULL: none */
  const kit_team *team;           /* NULL: train alone. The model must be set up for it too */
  int64_t check_every;            /* on a team: steps between checksum comparisons; 0: 100 */
  void (*on_step)(void *user, const kit_progress *p);
  void (*on_epoch)(void *user, const kit_progress *p, const char *grid_path);
  void *user;
} kit_train_opts;

/* Trains from the step recorded in the store (o->step_key: 0 for a fresh model, the
 * checkpoint's for one loaded from it) to the end of the last epoch. */
ut_status kit_train(const kit_model *m, const kit_train_opts *o);

#define KIT_STEP_KEY "train.step"
/* Steps done according to the store's metadata `key` (NULL: KIT_STEP_KEY). */
int64_t kit_steps_done(ut_store *st, const char *key);
/* Records `steps` under `key` (NULL: KIT_STEP_KEY) in the store's metadata. */
ut_status kit_set_steps_done(ut_store *st, const char *key, int64_t steps);

/* "<dir>/<name>", malloc'd (NULL with an error when out of memory). */
char *kit_path(const char *dir, const char *name);

#endif
